"""How far fastai's float32 combine_scheds is from paddle_strategy.schedules' float64 fastai schedules.

fastai keeps combine_scheds' cumulative phase boundaries in a float32 tensor and computes the position inside a
phase in float32 (fastai/callback/schedule.py); that arithmetic is written out here with numpy float32 and
compared step by step with schedules.make_fit_one_cycle / make_fit_flat_cos / make_fit_sgdr. Prints the worst
relative and absolute (as a fraction of the peak LR) gaps, and every step where fastai's SGDR restarts one
batch late. The figures quoted in paddle_strategy/schedules/fastai.py come from this script.

Usage:
  PYTHONPATH=. python tools/fastai_float32_gap.py
"""
from __future__ import annotations

import math

import numpy as np

from paddle_strategy import schedules as cat


def sched_cos(start, end, pos):
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def combine_float32(pcts, scheds):
    bounds = np.cumsum(np.array([0.0] + list(pcts), dtype=np.float32), dtype=np.float32)
    last = len(bounds) - 2

    def inner(pos):
        p = np.float32(pos)
        idx = min(int(np.nonzero(p >= bounds)[0].max()), last)
        return scheds[idx](float((p - bounds[idx]) / (bounds[idx + 1] - bounds[idx])))

    return inner


def main():
    lr = 1e-2
    worst = {}
    for T in list(range(10, 2001, 7)) + [5000, 10000]:
        cases = {
            "fit_one_cycle": (cat.make_fit_one_cycle(lr, T), combine_float32(
                [0.25, 0.75], [lambda p: sched_cos(lr / 25, lr, p), lambda p: sched_cos(lr, lr / 1e5, p)])),
            "fit_flat_cos": (cat.make_fit_flat_cos(lr, T), combine_float32(
                [0.75, 0.25], [lambda p: sched_cos(lr, lr, p), lambda p: sched_cos(lr, lr / 1e5, p)])),
        }
        for name, (ours, fastai) in cases.items():
            for t in range(T):
                a, b = ours(t), fastai(t / T)
                rel, ab = abs(a - b) / abs(b), abs(a - b) / lr
                w = worst.setdefault(name, {"rel": (0,), "abs": (0,)})
                w["rel"] = max(w["rel"], (rel, T, t))
                w["abs"] = max(w["abs"], (ab, T, t))
    for name, w in worst.items():
        print(f"{name}: max relative {w['rel'][0]:.3g} (T={w['rel'][1]}, step {w['rel'][2]}), "
              f"max |diff| / lr_max {w['abs'][0]:.3g} (T={w['abs'][1]}, step {w['abs'][2]})")
    rel, ab, late = (0,), 0.0, []
    for n, L, m in [(3, 1, 2), (2, 2, 3), (4, 1, 2), (3, 2, 2), (5, 1, 2)]:
        for spe in [10, 50, 64, 100, 391]:
            ours = cat.make_fit_sgdr(0.1, n, L, m, steps_per_epoch=spe)
            n_epoch = L * (m ** n - 1) // (m - 1)
            T = n_epoch * spe
            fastai = combine_float32([L * m ** i / n_epoch for i in range(n)], [lambda p: sched_cos(0.1, 0, p)] * n)
            for t in range(T):
                a, b = ours(t), fastai(t / T)
                if abs(a - b) > 0.01:
                    late.append((n, L, m, spe, t))
                    continue
                ab = max(ab, abs(a - b) / 0.1)
                if b > 1e-9:
                    rel = max(rel, (abs(a - b) / b, n, L, m, spe, t))
    print(f"fit_sgdr: max |diff| / lr_max {ab:.3g}; max relative {rel[0]:.3g} (n_cycles, cycle_len, cycle_mult, "
          f"steps_per_epoch, step = {rel[1:]})")
    print("fit_sgdr restarts one batch late in fastai at (n_cycles, cycle_len, cycle_mult, steps_per_epoch, step):")
    for row in late:
        print("  ", row)


if __name__ == "__main__":
    main()
