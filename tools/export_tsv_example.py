"""Write the tiny example dataset in PaddleHub 1.x's TextClassificationDataset layout, from the embedded corpus.

    python tools/export_tsv_example.py                       # examples/rotten_tomatoes_tsv/ (what the repo ships)
    python tools/export_tsv_example.py --out /tmp/rt_tsv --train 1000

The Rotten Tomatoes snippets of paddle_strategy.data.load_rotten_tomatoes(seed=0) (the small corpus, its fixed
split): the first --train training snippets, the first --dev dev and --test test snippets, and --predict more test
snippets without their labels. Each file is `text_a<TAB>label` with a header line; predict.tsv is `text_a` only;
label.txt lists the labels, one a line (rotten is class 0, fresh class 1, as in the corpus loader). Deterministic:
running it again writes the same bytes. configs/text_classification_tsv.yml fine-tunes MiniLM on it.
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # run from a checkout


def export(out, train=300, dev=100, test=100, predict=20, seed=0):
    """Write train.tsv, dev.tsv, test.tsv, predict.tsv and label.txt to `out`; returns their paths."""
    from paddle_strategy.data import LABELS, load_rotten_tomatoes
    tr, dv, te = load_rotten_tomatoes(seed=seed)
    if train > len(tr) or dev > len(dv) or test + predict > len(te):
        raise ValueError(f"at most {len(tr)} train, {len(dv)} dev and {len(te)} test + predict snippets.")
    os.makedirs(out, exist_ok=True)
    paths = []

    def write(name, lines):
        path = os.path.join(out, name)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(line + "\n" for line in lines))
        paths.append(path)

    for name, rows in (("train.tsv", tr[:train]), ("dev.tsv", dv[:dev]), ("test.tsv", te[:test])):
        # load_rotten_tomatoes joins whitespace, so a snippet holds no tab or newline
        write(name, ["text_a\tlabel"] + [f"{text}\t{LABELS[label]}" for text, label in rows])
    write("predict.tsv", ["text_a"] + [text for text, _ in te[test:test + predict]])
    write("label.txt", list(LABELS))
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "examples", "rotten_tomatoes_tsv"))
    p.add_argument("--train", type=int, default=300)
    p.add_argument("--dev", type=int, default=100)
    p.add_argument("--test", type=int, default=100)
    p.add_argument("--predict", type=int, default=20)
    args = p.parse_args(argv)
    for path in export(args.out, args.train, args.dev, args.test, args.predict):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
