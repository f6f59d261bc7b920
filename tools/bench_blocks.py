"""Time ps.infer_blocks (one traced forward + the block split) on a BERT-base-sized encoder and ResNet-50.

Cases:
  encoder   paddle.nn.TransformerEncoder(TransformerEncoderLayer(768, 12, 3072), 12), input [1, 16, 768],
            num_blocks=12                                                       goal: median <= 1 s
  resnet50  paddle.vision.models.resnet50(pretrained=False), input [1, 3, 224, 224] and [1, 3, 64, 64],
            num_blocks=6

Each case: one untimed call, then --runs timed calls; median / min / max in seconds. The time is split into
the trace (ps.param_depths: forward + autograd-graph walk) and the rest (the unit split into blocks).

Usage:
  PYTHONPATH=. python tools/bench_blocks.py [--runs 5] [--cases encoder,resnet50]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import paddle

import paddle_strategy as ps
from paddle_strategy.blocks import blocks_from_depths

GOAL_ENCODER_S = 1.0


def cases(selected):
    paddle.seed(0)
    if "encoder" in selected:
        layer = paddle.nn.TransformerEncoderLayer(768, 12, 3072)
        model = paddle.nn.TransformerEncoder(layer, 12)
        yield ("encoder 12 x (768, 12 heads, 3072)", model, paddle.randn([1, 16, 768]), 12, GOAL_ENCODER_S)
    if "resnet50" in selected:
        model = paddle.vision.models.resnet50(pretrained=False)
        for hw in (224, 64):
            yield (f"resnet50 [1,3,{hw},{hw}]", model, paddle.randn([1, 3, hw, hw]), 6, None)


def time_case(model, x, num_blocks, runs):
    ps.infer_blocks(model, num_blocks, x)  # untimed: first-call costs (kernel selection, allocations)
    total, trace = [], []
    blocks = None
    for _ in range(runs):
        t0 = time.perf_counter()
        blocks = ps.infer_blocks(model, num_blocks, x)
        total.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        depths = ps.param_depths(model, x)
        trace.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    blocks_from_depths(model, num_blocks, depths)
    split = time.perf_counter() - t0
    t0 = time.perf_counter()
    with paddle.no_grad():
        model.eval()
        model(x)
    fwd = time.perf_counter() - t0
    return blocks, total, trace, split, fwd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="timed calls per case (default 5)")
    ap.add_argument("--cases", default="encoder,resnet50", help="comma list of encoder, resnet50")
    ap.add_argument("--show", action="store_true", help="print the blocks (ps.describe_blocks)")
    args = ap.parse_args(argv)
    selected = {c.strip() for c in args.cases.split(",") if c.strip()}
    paddle.set_device("cpu")
    print(f"paddle_strategy from {os.path.dirname(ps.__file__)}")
    print(f"paddle {paddle.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; {args.runs} timed runs after 1 untimed")
    header = (f"{'case':<36} {'blocks':>6} {'tensors':>7} {'median s':>9} {'min s':>7} {'max s':>7} "
              f"{'trace s':>8} {'split s':>8} {'fwd s':>7}  goal")
    print(header)
    print("-" * len(header))
    misses = []
    for label, model, x, nb, goal in cases(selected):
        blocks, total, trace, split, fwd = time_case(model, x, nb, args.runs)
        med = statistics.median(total)
        ntensors = sum(len(b) for b in blocks)
        verdict = ""
        if goal is not None:
            verdict = f"<= {goal:g} s " + ("ok" if med <= goal else "MISS")
            if med > goal:
                misses.append(label)
        print(f"{label:<36} {len(blocks):>6} {ntensors:>7} {med:9.3f} {min(total):7.3f} {max(total):7.3f} "
              f"{statistics.median(trace):8.3f} {split:8.3f} {fwd:7.3f}  {verdict}")
        if args.show:
            print(ps.describe_blocks(model, blocks))
    print("trace = ps.param_depths (forward with autograd + graph walk), split = blocks_from_depths, "
          "fwd = one no-grad eval forward for scale")
    if misses:
        print("goal missed: " + ", ".join(misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
