"""How long one Trainer.eval() takes with 1 process and with 2 (paddle.distributed.launch, CPU), same data.

    python tools/bench_eval_processes.py [--model minilm|mlp] [--samples 256] [--repeat 3]

Each process evaluates its share of the batches (batch b on rank b % processes) and the predictions are gathered,
so the metrics equal the one-process ones exactly. Timed inside the processes (median of --repeat), set-up left
out. On a machine with fewer cores than processes x threads the processes share the cores.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def evaluate(args):
    import paddle
    sys.path.insert(0, ROOT)
    import paddle_strategy as ps
    paddle.seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=args.samples).astype("int64")
    if args.model == "mlp":
        model = paddle.nn.Sequential(*[m for _ in range(4) for m in (paddle.nn.Linear(1024, 1024), paddle.nn.ReLU())],
                                     paddle.nn.Linear(1024, 2))
        x = rng.normal(size=(args.samples, 1024)).astype("float32")
        data = [(x[i], y[i]) for i in range(args.samples)]
    else:
        from paddle_strategy.minilm import load_minilm
        model = load_minilm(num_classes=2)[0]
        ids = rng.integers(1000, 20000, size=(args.samples, 64)).astype("int64")
        data = [(ids[i], np.ones(64, "int64"), y[i]) for i in range(args.samples)]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ps.RunConfig(checkpoint_dir=tmp, use_cuda=False, batch_size=32)
        trainer = ps.Trainer(model, cfg, None, data, loss_fn=paddle.nn.CrossEntropyLoss(), metrics=["acc"])
        times, result = [], None
        for _ in range(args.repeat):
            t = time.perf_counter()
            result = trainer.eval()
            times.append(time.perf_counter() - t)
    if paddle.distributed.get_rank() == 0:
        with open(args.result, "w") as f:
            json.dump({"seconds": statistics.median(times), "result": result}, f)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["minilm", "mlp"], default="minilm")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.result:
        return evaluate(args)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        own = ["--model", args.model, "--samples", str(args.samples), "--repeat", str(args.repeat)]
        for n in (1, 2):
            result = os.path.join(tmp, f"r{n}.json")
            cmd = [sys.executable, os.path.abspath(__file__), *own, "--result", result]
            if n == 2:
                cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--devices", "",
                       "--log_dir", os.path.join(tmp, "log"), *cmd[1:]]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out[n] = json.load(open(result))
    assert out[1]["result"] == out[2]["result"], (out[1]["result"], out[2]["result"])
    print(f"{args.model}, {args.samples} samples, batch 32: 1 process {out[1]['seconds']:.2f} s, 2 processes "
          f"{out[2]['seconds']:.2f} s (x{out[1]['seconds'] / out[2]['seconds']:.2f}); identical results "
          f"{out[1]['result']}")


if __name__ == "__main__":
    main()
