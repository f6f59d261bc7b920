"""What one checkpoint of the Trainer costs: writing the files, fsync, hashing them for the manifest, and how many
times each file is hashed per save (once: the manifest's digests are cached for pruning and resume).

    python tools/bench_checkpoint.py [--model minilm|mlp] [--repeat 3]

MiniLM: the pretrained all-MiniLM-L6-v2 classifier with Adam and discriminative LR (two moments per weight), as the
main job trains it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import paddle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import paddle_strategy as ps  # noqa: E402
from paddle_strategy.training import checkpoint_files  # noqa: E402


def make(kind):
    paddle.seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=64).astype("int64")
    if kind == "mlp":
        model = paddle.nn.Sequential(*[m for _ in range(4) for m in (paddle.nn.Linear(1024, 1024), paddle.nn.ReLU())],
                                     paddle.nn.Linear(1024, 2))
        x = rng.normal(size=(64, 1024)).astype("float32")
        return model, [(x[i], y[i]) for i in range(64)]
    from paddle_strategy.minilm import load_minilm
    model = load_minilm(num_classes=2)[0]
    ids = rng.integers(1000, 20000, size=(64, 16)).astype("int64")
    return model, [(ids[i], np.ones(16, "int64"), y[i]) for i in range(64)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["minilm", "mlp"], default="minilm")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    paddle.set_device("cpu")
    model, data = make(args.model)
    hashed, hash_seconds = [], []
    sha = checkpoint_files._sha256

    def counting_sha256(path):
        t = time.perf_counter()
        out = sha(path)
        hash_seconds.append(time.perf_counter() - t)
        hashed.append(os.path.basename(path))
        return out
    checkpoint_files._sha256 = counting_sha256
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ps.RunConfig(checkpoint_dir=tmp, use_cuda=False, batch_size=32, log_interval=10 ** 6, keep_checkpoints=2,
                           strategy=ps.CombinedStrategy(optimizer_name="adam", learning_rate=1e-4,
                                                        scheduler={"discriminative": {"blocks": 3, "factor": 2.6}}))
        trainer = ps.Trainer(model, cfg, data, loss_fn=paddle.nn.CrossEntropyLoss())
        trainer.finetune()  # two updates: every Adam moment exists, a checkpoint is written
        totals, hashes, size = [], [], 0
        for r in range(args.repeat):
            hashed.clear()
            hash_seconds.clear()
            trainer.global_step += 1  # a new step folder each time (pruning keeps 2)
            t = time.perf_counter()
            final = trainer._save_checkpoint()
            totals.append(time.perf_counter() - t)
            hashes.append(sum(hash_seconds))
            size = sum(os.path.getsize(os.path.join(final, f)) for f in os.listdir(final))
            per_file = {name: hashed.count(name) for name in set(hashed)}
            print(f"save {r}: {totals[-1]:.2f} s, of which hashing {hashes[-1]:.2f} s; files hashed: {per_file}")
    t, h = statistics.median(totals), statistics.median(hashes)
    print(f"\n{args.model}: checkpoint of {size / 2 ** 20:.0f} MiB (model + Adam moments + state): {t:.2f} s a save "
          f"(median of {args.repeat}); hashing for the manifest {h:.2f} s ({h / t:.0%}), each file hashed once; "
          f"writing + fsync + pruning {t - h:.2f} s")


if __name__ == "__main__":
    main()
