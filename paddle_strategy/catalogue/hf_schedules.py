"""Two schedules from transformers (src/transformers/optimization.py): warmup-stable-decay, inverse sqrt.

transformers returns a LambdaLR factor; here the factor is multiplied by `learning_rate` (the optimizer's
initial lr in transformers).
"""
from __future__ import annotations

import math

from ._validate import check_choice, check_lr, check_number, check_steps, shown
from .parts import Schedule

__all__ = ["make_warmup_stable_decay", "make_inverse_sqrt"]

_SHAPES = ("linear", "cosine", "1-sqrt")


def make_warmup_stable_decay(learning_rate, num_warmup_steps, num_decay_steps, num_training_steps=None,
                             num_stable_steps=None, warmup_type="linear", decay_type="cosine", min_lr_ratio=0.0,
                             num_cycles=0.5) -> Schedule:
    """get_wsd_schedule: warmup W, stable S, decay D steps; m = min_lr_ratio, lr(step) = learning_rate * f.

    step < W:          p = step / W;  f = m + (1 - m) * g(p),
                       g: linear p, cosine (1 - cos(pi p)) / 2, 1-sqrt 1 - sqrt(1 - p)
    step < W + S:      f = 1
    step < W + S + D:  p = (step - W - S) / D;  f = m + (1 - m) * h(p),
                       h: linear 1 - p, cosine (1 + cos(2 pi num_cycles p)) / 2, 1-sqrt 1 - sqrt(p)
    after:             f = m            (f is never below 0)
    S = num_stable_steps, or num_training_steps - W - D (both may be given only if they agree).
    """
    where = "warmup_stable_decay"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    W = check_steps(f"{where}.num_warmup_steps", num_warmup_steps)
    D = check_steps(f"{where}.num_decay_steps", num_decay_steps)
    if num_stable_steps is None:
        if num_training_steps is None:
            raise ValueError(f"{where}: give num_training_steps or num_stable_steps, got neither.")
        T = check_steps(f"{where}.num_training_steps", num_training_steps)
        S = T - W - D
        if S < 0:
            raise ValueError(f"{where}.num_training_steps={T} must be >= num_warmup_steps + num_decay_steps "
                             f"= {W + D}.")
    else:
        S = check_steps(f"{where}.num_stable_steps", num_stable_steps)
        if num_training_steps is not None and num_training_steps != W + S + D:
            raise ValueError(f"{where}.num_training_steps={shown(num_training_steps)} disagrees with "
                             f"num_warmup_steps + num_stable_steps + num_decay_steps = {W + S + D}.")
    warm = check_choice(f"{where}.warmup_type", warmup_type, _SHAPES)
    decay = check_choice(f"{where}.decay_type", decay_type, _SHAPES)
    m = check_number(f"{where}.min_lr_ratio", min_lr_ratio, low=0, high=1)
    cycles = check_number(f"{where}.num_cycles", num_cycles, low=0)

    def factor(step):
        if step < W:
            p = step / max(1, W)
            f = {"linear": p, "cosine": 0.5 * (1.0 - math.cos(math.pi * p)),
                 "1-sqrt": 1.0 - math.sqrt(1.0 - p)}[warm]
        elif step < W + S:
            return 1.0
        elif step < W + S + D:
            p = (step - W - S) / max(1, D)
            f = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * p)),
                 "1-sqrt": 1.0 - math.sqrt(p)}[decay]
        else:
            return m
        return max(0.0, f * (1.0 - m) + m)

    return lambda step: lr * factor(step)


def make_inverse_sqrt(learning_rate, num_warmup_steps, timescale=None) -> Schedule:
    """get_inverse_sqrt_schedule: lr * step / W while step < W, then lr / sqrt((step + timescale - W) / timescale);
    timescale defaults to W (10_000 when W = 0)."""
    where = "inverse_sqrt"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    W = check_steps(f"{where}.num_warmup_steps", num_warmup_steps)
    tau = (W or 10_000) if timescale is None else check_steps(f"{where}.timescale", timescale, low=1)

    def inverse_sqrt(step):
        if step < W:
            return lr * (step / max(1, W))
        return lr * (1.0 / math.sqrt((step + tau - W) / tau))

    return inverse_sqrt
