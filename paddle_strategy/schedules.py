"""Learning-rate schedules as pure functions of the step.

`step` is the number of optimizer updates already done (0 for the first update). Each function
returns the learning rate to use for that update; nothing but the step is state, so a schedule can be
evaluated anywhere, plotted before training and resumed from one integer.
"""
from __future__ import annotations

import math


def steps_for_fraction(total_steps: int, fraction: float) -> int:
    """floor(total_steps * fraction), computed so that e.g. 100 * 0.29 gives 29, not 28."""
    return int(math.floor(total_steps * fraction + 1e-9))


def warmup_linear_decay(step: int, learning_rate: float, total_steps: int, warmup_steps: int,
                        decay_start_step: int, end_learning_rate: float) -> float:
    """Linear warmup, a flat peak, then linear decay to `end_learning_rate` at `total_steps`.

    step < W:        lr * step / W
    W <= step < S:   lr                      (S = max(W, decay_start_step))
    S <= step < T:   end + (lr - end) * (T - step) / (T - S)
    step >= T:       end   (but the peak stays for good when S >= T: no decay was asked for)
    """
    if step < warmup_steps:
        return learning_rate * step / warmup_steps
    decay_start = max(warmup_steps, decay_start_step)
    if step < decay_start or decay_start >= total_steps:  # S >= T: no decay at all, the peak stays
        return learning_rate
    if step >= total_steps:
        return end_learning_rate
    return end_learning_rate + (learning_rate - end_learning_rate) * (total_steps - step) / (
        total_steps - decay_start)


def noam_decay(step: int, learning_rate: float, warmup_steps: int) -> float:
    """Linear warmup to `learning_rate` over W steps, then inverse square root: lr * sqrt(W / step)."""
    if step < warmup_steps:
        return learning_rate * step / warmup_steps
    return learning_rate * math.sqrt(warmup_steps / step)


def slanted_triangular(step: int, learning_rate: float, total_steps: int, cut_steps: int,
                       ratio: float) -> float:
    """ULMFiT's slanted triangular LR (Howard & Ruder 2018, eq. 3).

    p = step / cut for step < cut, else 1 - (step - cut) / (T - cut)  (never below 0)
    lr_t = lr * (1 + p * (ratio - 1)) / ratio
    """
    if step < cut_steps:
        p = step / cut_steps
    else:
        p = max(0.0, 1.0 - (step - cut_steps) / max(1, total_steps - cut_steps))
    return learning_rate * (1.0 + p * (ratio - 1.0)) / ratio


def constant(step: int, learning_rate: float) -> float:
    """The same learning rate at every step."""
    return learning_rate
