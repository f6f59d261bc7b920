"""The schedules of PaddleHub 1.x's strategies (CombinedStrategy's scheduler dict, ULMFiT), joined from parts.

`step` is the number of optimizer updates already done (0 for the first update). Each factory returns a pure
`schedule(step) -> lr`; lengths are in steps (CombinedStrategy turns its fractions of the run into steps with
steps_for_fraction).
"""
from __future__ import annotations

import math

from .hf import make_inverse_sqrt
from .parts import Schedule, anneal_linear, join_schedules, with_warmup

__all__ = ["steps_for_fraction", "make_warmup_linear_decay", "make_noam_decay", "make_slanted_triangular"]


def steps_for_fraction(total_steps: int, fraction: float) -> int:
    """floor(total_steps * fraction), computed so that e.g. 100 * 0.29 gives 29, not 28."""
    return int(math.floor(total_steps * fraction + 1e-9))


def make_warmup_linear_decay(learning_rate: float, total_steps: int, warmup_steps: int, decay_start_step: int,
                             end_learning_rate: float) -> Schedule:
    """Linear warmup, a flat peak, then linear decay to `end_learning_rate` at `total_steps`.

    step < W:        lr * step / W
    W <= step < S:   lr                      (S = max(W, decay_start_step))
    S <= step < T:   anneal_linear(lr, end, (step - S) / (T - S))
    step >= T:       end   (but the peak stays for good when S >= T: no decay was asked for)
    """
    lr, end, T = learning_rate, end_learning_rate, total_steps
    S = max(warmup_steps, decay_start_step)
    if S >= T:
        body = lambda step: lr  # noqa: E731
    else:
        body = join_schedules([lambda step: lr, lambda step: anneal_linear(lr, end, step / (T - S)),
                               lambda step: end], [S, T])
    return with_warmup(body, warmup_steps, 0.0, end_lr=lr, shift=False)


def make_noam_decay(learning_rate: float, warmup_steps: int) -> Schedule:
    """Noam: linear warmup to `learning_rate` over W steps, then lr * sqrt(W / step). This is transformers'
    inverse square root with timescale W (hf.make_inverse_sqrt), which is what it is built from."""
    return make_inverse_sqrt(learning_rate, warmup_steps)


def make_slanted_triangular(learning_rate: float, total_steps: int, cut_steps: int, ratio: float) -> Schedule:
    """ULMFiT's slanted triangular LR (Howard & Ruder 2018, eq. 3), with low = lr / ratio:

    step < cut:        anneal_linear(low, lr, step / cut)
    cut <= step < T:   anneal_linear(lr, low, (step - cut) / (T - cut))
    step >= T:         low
    (the paper's lr * (1 + p * (ratio - 1)) / ratio with p the rise, then the fall, of the triangle).
    """
    lr, T, cut = learning_rate, total_steps, cut_steps
    low = lr / ratio
    fall = max(1, T - cut)
    return join_schedules([lambda step: anneal_linear(low, lr, step / cut),
                           lambda step: anneal_linear(lr, low, step / fall), lambda step: low], [cut, cut + fall])
