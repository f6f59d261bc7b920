"""Per-step overhead of the fine-tuning strategies against a plain AdamW loop.

One process, one model instance per variant (same initial weights, same batch). A step is
forward + backward + optimizer.step() + optimizer.clear_grad() + lr_scheduler.step() (the plain loop has
no scheduler). The variants are timed in interleaved rounds, in a rotated order, after warmup steps;
the table gives the median ms/step over rounds and the median of the per-round ratios to the plain loop
(each ratio is paired with the plain loop's time of the same round, which cancels most machine drift).

Variants:
  plain     paddle.optimizer.AdamW(learning_rate=1e-4, parameters=model.parameters())
  adamwd    ps.AdamWeightDecayStrategy(learning_rate=1e-4, warmup_proportion=0.1)
  l2sp      ps.L2SPFinetuneStrategy(learning_rate=1e-4)
  ulmfit    ps.CombinedStrategy: slanted triangle + discriminative (3 blocks) + gradual unfreeze (3 blocks)
            + L2SP 1e-3 + GlobalNorm clip 1.0, built with steps_per_epoch=1 so that every block is
            unfrozen after 2 updates, i.e. before timing starts (frozen blocks would make it cheaper).

Usage:
  PYTHONPATH=. python tools/bench_overhead.py [--rounds 7] [--steps N] [--warmup 3] [--models mlp,encoder]
      [--variants plain,adamwd,l2sp,ulmfit] [--encoder-layers 2] [--device cpu|gpu]
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time

import numpy as np
import paddle

import paddle_strategy as ps

GOALS = {"mlp": 1.10, "encoder": 1.05}
VARIANTS = ("plain", "adamwd", "l2sp", "ulmfit")
DEFAULT_STEPS = {"mlp": 10, "encoder": 3}  # timed steps per variant per round (~0.1 s vs ~1 s a step here)
LR = 1e-4
MAX_TRAIN_STEPS = 100_000  # far beyond the steps run, so no schedule reaches its end


# ------------------------------------------------------------------------------------------- models
class MLP(paddle.nn.Layer):
    def __init__(self, width=1024, layers=4):
        super().__init__()
        mods = []
        for _ in range(layers):
            mods += [paddle.nn.Linear(width, width), paddle.nn.ReLU()]
        self.body = paddle.nn.Sequential(*mods)

    def forward(self, x):
        return self.body(x)


class Encoder(paddle.nn.Layer):
    def __init__(self, d_model=256, nhead=4, layers=3, classes=4):
        super().__init__()
        layer = paddle.nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout=0.1)
        self.encoder = paddle.nn.TransformerEncoder(layer, layers)
        self.head = paddle.nn.Linear(d_model, classes)

    def forward(self, x):
        return self.head(self.encoder(x).mean(axis=1))


def make_case(name, args):
    """(model factory, input, loss function, description)."""
    rng = np.random.default_rng(0)
    if name == "mlp":
        x = paddle.to_tensor(rng.standard_normal((64, 1024), dtype=np.float32))
        y = paddle.to_tensor(rng.standard_normal((64, 1024), dtype=np.float32))
        return (MLP, x, lambda out: paddle.nn.functional.mse_loss(out, y),
                "MLP 4 x Linear(1024,1024)+ReLU, batch 64, MSE")
    if name == "encoder":
        x = paddle.to_tensor(rng.standard_normal((16, 64, 256), dtype=np.float32))
        y = paddle.to_tensor(rng.integers(0, 4, (16,)).astype(np.int64))
        layers = args.encoder_layers
        return (lambda: Encoder(layers=layers), x, lambda out: paddle.nn.functional.cross_entropy(out, y),
                f"TransformerEncoder {layers} layers, d_model 256, 4 heads, ffn 1024, seq 64, batch 16 "
                f"+ mean-pool + Linear(256,4) head, cross-entropy")
    raise ValueError(f"unknown model {name!r}; use mlp or encoder")


def build_variant(variant, model, x):
    """(optimizer, lr_scheduler or None)."""
    if variant == "plain":
        return paddle.optimizer.AdamW(learning_rate=LR, parameters=model.parameters()), None
    if variant == "adamwd":
        return ps.AdamWeightDecayStrategy(learning_rate=LR, warmup_proportion=0.1).build(
            model, max_train_steps=MAX_TRAIN_STEPS)
    if variant == "l2sp":
        return ps.L2SPFinetuneStrategy(learning_rate=LR).build(model, max_train_steps=MAX_TRAIN_STEPS)
    if variant == "ulmfit":
        strategy = ps.CombinedStrategy(
            learning_rate=LR,
            scheduler={"slanted_triangle": {"cut_fraction": 0.1, "ratio": 32},
                       "discriminative": {"blocks": 3, "factor": 2.6},
                       "gradual_unfreeze": {"blocks": 3}},
            regularization={"L2SP": 1e-3}, clip={"GlobalNorm": 1.0})
        # steps_per_epoch=1: epoch e trains blocks 0..e, so all 3 blocks train from update 2 on.
        return strategy.build(model, MAX_TRAIN_STEPS, steps_per_epoch=1, sample_input=x)
    raise ValueError(variant)


class Runner:
    def __init__(self, variant, factory, state, x, loss_fn):
        paddle.seed(0)
        self.model = factory()
        self.model.set_state_dict(state)
        self.model.train()
        self.opt, self.lr = build_variant(variant, self.model, x)
        self.x, self.loss_fn = x, loss_fn
        self.steps_done = 0

    def run(self, n):
        """(seconds per step, seconds per step in the update part: step + clear_grad + lr.step)."""
        model, opt, lr, x, loss_fn = self.model, self.opt, self.lr, self.x, self.loss_fn
        clock = time.perf_counter
        gc.collect()
        update = 0.0
        t0 = clock()
        for _ in range(n):
            loss = loss_fn(model(x))
            loss.backward()
            t1 = clock()
            opt.step()
            opt.clear_grad()
            if lr is not None:
                lr.step()
            update += clock() - t1
        float(loss)  # CPU kernels run synchronously; this is only a safety barrier
        self.steps_done += n
        return (clock() - t0) / n, update / n

    def frozen(self):
        return sum(1 for p in self.model.parameters() if p.stop_gradient)


def bench_case(name, args):
    factory, x, loss_fn, desc = make_case(name, args)
    paddle.seed(0)
    state = {k: v.clone() for k, v in factory().state_dict().items()}
    runners = {v: Runner(v, factory, state, x, loss_fn) for v in args.variants}
    nparams = sum(int(p.size) for p in runners["plain"].model.parameters())
    ntensors = len(runners["plain"].model.parameters())
    print(f"\n== {name}: {desc}")
    print(f"   {nparams:,} parameters in {ntensors} tensors; warmup {args.warmup} steps/variant, "
          f"{args.rounds} interleaved rounds")
    for r in runners.values():
        r.run(args.warmup)
    if "ulmfit" in runners:
        frozen = runners["ulmfit"].frozen()
        blocks = runners["ulmfit"].lr.block_names
        print(f"   ulmfit: {len(blocks)} blocks, gradual unfreeze done before timing "
              f"(frozen tensors now: {frozen}; epoch {runners['ulmfit'].lr.epoch()})")
        if frozen:
            print("   WARNING: some parameters are still frozen; raise --warmup")
    steps = args.steps or DEFAULT_STEPS[name]
    times = {v: [] for v in runners}
    updates = {v: [] for v in runners}
    ratios = {v: [] for v in runners}
    order = list(runners)
    for rnd in range(args.rounds):
        k = rnd % len(order)
        this = order[k:] + order[:k]  # rotate so no variant always runs first / after the same one
        got = {v: runners[v].run(steps) for v in this}
        for v, (t, u) in got.items():
            times[v].append(t)
            updates[v].append(u)
            ratios[v].append(t / got["plain"][0])
    if "ulmfit" in runners and runners["ulmfit"].frozen():
        print("   WARNING: ulmfit had frozen parameters during timing")
    goal = GOALS[name]
    med = statistics.median
    fb = med([t - u for t, u in zip(times["plain"], updates["plain"])])  # plain loop's forward+backward
    print(f"   {steps} timed steps per variant per round; ratio = median over rounds of (variant / plain of "
          f"the same round);")
    print(f"   update = opt.step + clear_grad + lr.step; est. ratio = (plain fwd+bwd {1e3 * fb:.1f} ms + "
          f"variant update) / (plain fwd+bwd + plain update), less noisy")
    print(f"   {'variant':<8} {'ms/step':>9} {'min':>8} {'max':>8} {'update ms':>9} {'ratio':>7} "
          f"{'est.ratio':>9}  goal <= {goal:.2f}")
    rows = []
    base_update = med(updates["plain"])
    for v in runners:
        ms = [1e3 * t for t in times[v]]
        ratio = med(ratios[v])
        upd = med(updates[v])
        est = (fb + upd) / (fb + base_update)
        ok = "" if v == "plain" else ("ok" if ratio <= goal else "MISS")
        print(f"   {v:<8} {med(ms):9.2f} {min(ms):8.2f} {max(ms):8.2f} {1e3 * upd:9.2f} {ratio:7.3f} "
              f"{est:9.3f}  {ok}")
        rows.append((name, v, med(ms), ratio, ok))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (default 7)")
    ap.add_argument("--steps", type=int, default=0,
                    help="timed steps per variant per round (default: 10 for mlp, 3 for encoder)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first (default 3, >= 3)")
    ap.add_argument("--models", default="mlp,encoder", help="comma list of mlp, encoder")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--encoder-layers", type=int, default=2, help="encoder layers (default 2)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or gpu (tools/gpu_check.sh); the time of each "
                                                   "round ends at a host copy of the loss, so GPU work is counted")
    args = ap.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "plain" not in args.variants:
        args.variants.insert(0, "plain")
    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {bad}; choose from {VARIANTS}")
    if args.warmup < 3 and "ulmfit" in args.variants:
        ap.error("--warmup must be >= 3 so that gradual unfreezing is over before timing")
    paddle.set_device(args.device)
    print(f"paddle_strategy from {os.path.dirname(ps.__file__)}")
    print(f"paddle {paddle.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("step = forward + backward + opt.step() + opt.clear_grad() + lr.step() (plain AdamW: no scheduler)")
    t0 = time.perf_counter()
    rows = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        rows += bench_case(name, args)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    misses = [(m, v, r) for m, v, _, r, ok in rows if ok == "MISS"]
    if misses:
        print("goals missed: " + ", ".join(f"{m}/{v} {r:.3f}" for m, v, r in misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
