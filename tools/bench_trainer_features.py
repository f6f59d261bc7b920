"""What gradient accumulation and the EMA of weights cost per optimizer update, in one run.

Variants, each training one epoch of the same data with the same strategy-built optimizer (ULMFiT-style:
discriminative LR, no unfreezing), timed between the first and the last optimizer update (updates / s), in
interleaved rounds, medians:

  hand      a hand-written Paddle loop, batch 32 (the plain reference)
  k1        ps.Trainer, batch 32
  k4        ps.Trainer, batch 8 x gradient_accumulation_steps 4 (the same 32 samples per update)
  ema       ps.Trainer, batch 32, ema_decay 0.999

    python tools/bench_trainer_features.py [--model mlp|minilm] [--rounds 3] [--updates 40]

Ratios are per update against the Trainer's k1 (the feature's own cost) and k1 against the hand loop.
k4 does 4 forward/backward passes of 8 samples instead of one of 32: on a CPU smaller matmuls are less
efficient, so part of its cost is the hardware's, not the Trainer's (the hand loop with batch 8 x 4 shows it).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import speed_up_mkl_on_amd  # noqa: E402
from bench_trainer import rate, timed  # noqa: E402

speed_up_mkl_on_amd()

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import paddle_strategy as ps  # noqa: E402

VARIANTS = ("hand", "hand8x4", "k1", "k4", "ema")


def make_model(kind):
    paddle.seed(0)
    if kind == "mlp":
        return paddle.nn.Sequential(*[m for _ in range(4) for m in (paddle.nn.Linear(1024, 1024), paddle.nn.ReLU())],
                                    paddle.nn.Linear(1024, 2))
    from paddle_strategy.minilm import load_minilm
    return load_minilm(num_classes=2, dropout=0.0)[0]


def dataset(kind, n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n).astype("int64")
    if kind == "mlp":
        x = rng.normal(size=(n, 1024)).astype("float32")
        return [(x[i], y[i]) for i in range(n)]
    ids = rng.integers(1000, 20000, size=(n, 64)).astype("int64")
    mask = np.ones((n, 64), dtype="int64")
    return [(ids[i], mask[i], y[i]) for i in range(n)]


def strategy():
    return ps.ULMFiTStrategy(learning_rate=1e-4, dis_blocks=3, frz_blocks=0)


def run_hand(kind, data, batch_size, k):
    model = make_model(kind)
    updates = len(data) // (batch_size * k)
    first = tuple(paddle.to_tensor(np.stack([f for f in field])) for field in zip(*data[:2]))[:-1]
    opt, sched = strategy().build(model, max_train_steps=updates, steps_per_epoch=updates, sample_input=first)
    stamps = timed(opt)
    model.train()
    for u in range(updates):
        for j in range(k):
            rows = data[(u * k + j) * batch_size:(u * k + j + 1) * batch_size]
            fields = [paddle.to_tensor(np.stack(f)) for f in zip(*rows)]
            loss = F.cross_entropy(model(*fields[:-1]), fields[-1])
            (loss / k if k > 1 else loss).backward()
        opt.step()
        opt.clear_grad()
        sched.step()
    return rate(stamps)


EMA_SECONDS = []  # time spent in the EMA's update, per update (measured directly: robust to a busy machine)


def run_trainer(kind, data, batch_size, tmp, **kw):
    model = make_model(kind)
    cfg = ps.RunConfig(log_interval=10 ** 6, use_cuda=False, checkpoint_dir=tmp, num_epoch=1, batch_size=batch_size,
                       strategy=strategy(), shuffle=False, save_final_checkpoint=False, **kw)
    trainer = ps.Trainer(model, cfg, data, loss_fn=paddle.nn.CrossEntropyLoss())
    stamps = timed(trainer.optimizer)
    if trainer.ema is not None:
        update = trainer.ema.update

        def timed_update():
            t = time.perf_counter()
            update()
            EMA_SECONDS.append(time.perf_counter() - t)
        trainer.ema.update = timed_update
    trainer.finetune()
    return rate(stamps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["mlp", "minilm"], default="mlp")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--updates", type=int, default=40)
    args = p.parse_args(argv)
    paddle.set_device("cpu")
    data = dataset(args.model, args.updates * 32)
    rates = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]  # rotated, against drift
            for v in order:
                d = os.path.join(tmp, f"{v}{r}")
                rates[v].append({"hand": lambda: run_hand(args.model, data, 32, 1),
                                 "hand8x4": lambda: run_hand(args.model, data, 8, 4),
                                 "k1": lambda: run_trainer(args.model, data, 32, d),
                                 "k4": lambda: run_trainer(args.model, data, 8, d, gradient_accumulation_steps=4),
                                 "ema": lambda: run_trainer(args.model, data, 32, d, ema_decay=0.999)}[v]())
            print(f"round {r}: " + ", ".join(f"{v} {rates[v][-1]:.3f}" for v in VARIANTS) + " updates/s", flush=True)
    med = {v: statistics.median(x) for v, x in rates.items()}
    print(f"\n{args.model}, 32 samples an update, {args.updates} updates, {args.rounds} rounds (median updates/s):")
    for v in VARIANTS:
        print(f"  {v:8s} {med[v]:8.3f} updates/s   {1000 / med[v]:8.1f} ms/update")
    ema_ms = 1000 * statistics.median(EMA_SECONDS)
    print(f"  per-update time, k=4 x b=8 / k=1 x b=32 (ps.Trainer): {med['k1'] / med['k4']:.3f}x; the same in a "
          f"hand loop: {med['hand'] / med['hand8x4']:.3f}x (what 4 smaller batches cost the hardware)")
    print(f"  ps.Trainer / hand loop, updates/s: k=1 {med['k1'] / med['hand']:.3f}, k=4 {med['k4'] / med['hand8x4']:.3f}")
    print(f"  EMA: ema / k1 per-update time {med['k1'] / med['ema']:.3f}x; timed directly: {ema_ms:.2f} ms per "
          f"update = {ema_ms / (1000 / med['k1']):.2%} of a k1 update")


if __name__ == "__main__":
    main()
