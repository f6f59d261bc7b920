"""Schedules from transformers (src/transformers/optimization.py): warmup-stable-decay, inverse sqrt, cosine
with hard restarts, cosine with a minimum LR (two warmup variants).

transformers returns a LambdaLR factor; here the factor is multiplied by `learning_rate` (the optimizer's
initial lr in transformers). Like LambdaLR, the formulas are evaluated as written past num_training_steps too.
"""
from __future__ import annotations

import math
import warnings

from .._checks import check_choice, check_lr, check_number, check_steps
from .parts import Schedule, anneal_cos, anneal_linear, join_schedules, with_warmup

__all__ = ["make_warmup_stable_decay", "make_inverse_sqrt", "make_cosine_with_restarts", "make_cosine_with_min_lr",
           "make_cosine_warmup_with_min_lr"]

# warmup_stable_decay's shapes at pct p of their phase: rise 0 -> 1, fall 1 -> 0 (the cosine fall goes
# num_cycles * 2 half-cosines: 0.5 of them by default).
_RISES = {"linear": lambda p: p, "cosine": lambda p: anneal_cos(0.0, 1.0, p),
          "1-sqrt": lambda p: 1.0 - math.sqrt(1.0 - p)}
_FALLS = {"linear": lambda p, cycles: anneal_linear(1.0, 0.0, p),
          "cosine": lambda p, cycles: anneal_cos(1.0, 0.0, 2.0 * cycles * p),
          "1-sqrt": lambda p, cycles: 1.0 - math.sqrt(p)}


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
    S = num_stable_steps, or num_training_steps - W - D; given both, num_stable_steps is used with a warning
    (as transformers does) when they disagree.
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
        if num_training_steps is not None:
            T = check_steps(f"{where}.num_training_steps", num_training_steps)
            if T != W + S + D:
                warnings.warn(f"{where}: num_training_steps={T} and num_stable_steps={S} are both given and "
                              f"disagree (num_warmup_steps + num_stable_steps + num_decay_steps = {W + S + D}); "
                              f"num_stable_steps is used, as in transformers, and the LR holds at min_lr_ratio "
                              f"from step {W + S + D} on.", stacklevel=2)
    rise = _RISES[check_choice(f"{where}.warmup_type", warmup_type, tuple(_RISES))]
    fall = _FALLS[check_choice(f"{where}.decay_type", decay_type, tuple(_FALLS))]
    m = check_number(f"{where}.min_lr_ratio", min_lr_ratio, low=0, high=1)
    cycles = check_number(f"{where}.num_cycles", num_cycles, low=0)

    def above_min(f):
        return max(0.0, f * (1.0 - m) + m)

    factor = join_schedules([lambda step: above_min(rise(step / max(1, W))), lambda step: 1.0,
                             lambda step: above_min(fall(step / max(1, D), cycles)), lambda step: m],
                            [W, W + S, W + S + D])
    return lambda step: lr * factor(step)


def make_inverse_sqrt(learning_rate, num_warmup_steps, timescale=None) -> Schedule:
    """get_inverse_sqrt_schedule: lr * step / W while step < W, then lr / sqrt((step + timescale - W) / timescale);
    timescale defaults to W (10_000 when W = 0)."""
    where = "inverse_sqrt"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    W = check_steps(f"{where}.num_warmup_steps", num_warmup_steps)
    tau = (W or 10_000) if timescale is None else check_steps(f"{where}.timescale", timescale, low=1)

    return with_warmup(lambda step: lr * (1.0 / math.sqrt((step + tau - W) / tau)), W, end_lr=lr, shift=False)


def _min_lr_rate(where, lr, min_lr, min_lr_rate):
    """transformers: exactly one of min_lr (absolute) and min_lr_rate (a fraction of the initial lr)."""
    if (min_lr is None) == (min_lr_rate is None):
        raise ValueError(f"{where}: give exactly one of min_lr and min_lr_rate, got min_lr={min_lr!r}, "
                         f"min_lr_rate={min_lr_rate!r}.")
    if min_lr_rate is not None:
        return check_number(f"{where}.min_lr_rate", min_lr_rate, low=0)
    floor = check_lr(f"{where}.min_lr", min_lr)
    if lr == 0:
        raise ValueError(f"{where}.min_lr={min_lr!r} is a fraction of learning_rate, which is 0; use min_lr_rate.")
    return floor / lr


def _training_steps(where, W, num_training_steps):
    T = check_steps(f"{where}.num_training_steps", num_training_steps, low=1)
    if T < W:
        raise ValueError(f"{where}.num_training_steps={T} must be >= num_warmup_steps={W}.")
    return T


def _cosine_keys(where, learning_rate, num_warmup_steps, num_training_steps, num_cycles):
    """The keys transformers' cosine schedules share, checked in this order: (lr, W, T, num_cycles)."""
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    W = check_steps(f"{where}.num_warmup_steps", num_warmup_steps)
    T = _training_steps(where, W, num_training_steps)
    return lr, W, T, check_number(f"{where}.num_cycles", num_cycles, low=0)


def make_cosine_with_restarts(learning_rate, num_warmup_steps, num_training_steps, num_cycles=1) -> Schedule:
    """get_cosine_with_hard_restarts_schedule_with_warmup: linear warmup lr * step / W, then with
    p = (step - W) / max(1, T - W):  lr * (1 + cos(pi * ((num_cycles * p) % 1))) / 2 for p < 1, 0 from T on.

    The restarts fall where num_cycles * p crosses an integer, so when T - W is not a multiple of num_cycles
    they are at fractional positions and the first step of a cycle is not at its peak (as in transformers).
    """
    where = "cosine_with_restarts"
    lr, W, T, cycles = _cosine_keys(where, learning_rate, num_warmup_steps, num_training_steps, num_cycles)

    def restarts(step):
        p = (step - W) / max(1, T - W)
        return 0.0 if p >= 1.0 else anneal_cos(lr, 0.0, (cycles * p) % 1.0)

    return with_warmup(restarts, W, shift=False)


def make_cosine_with_min_lr(learning_rate, num_warmup_steps, num_training_steps, num_cycles=0.5, min_lr=None,
                            min_lr_rate=None) -> Schedule:
    """get_cosine_with_min_lr_schedule_with_warmup: linear warmup lr * step / W, then with
    p = (step - W) / max(1, T - W) and m = min_lr_rate (or min_lr / learning_rate):
    lr * max(0, m + (1 - m) * (1 + cos(2 pi num_cycles p)) / 2)  (past T the cosine goes on, as in transformers).
    """
    where = "cosine_with_min_lr"
    lr, W, T, cycles = _cosine_keys(where, learning_rate, num_warmup_steps, num_training_steps, num_cycles)
    m = _min_lr_rate(where, lr, min_lr, min_lr_rate)

    def cosine(step):
        p = (step - W) / max(1, T - W)
        return lr * max(0.0, anneal_cos(1.0, m, 2.0 * cycles * p))

    return with_warmup(cosine, W, shift=False, end_lr=lr)


def make_cosine_warmup_with_min_lr(learning_rate, num_warmup_steps, num_training_steps, num_cycles=0.5,
                                   min_lr=None, min_lr_rate=None, warmup_lr_rate=None) -> Schedule:
    """get_cosine_with_min_lr_schedule_with_warmup_lr_rate ("cosine_warmup_with_min_lr"): one step ahead of
    cosine_with_min_lr, with its own warmup. Factor f, lr(step) = learning_rate * f:

    step < W:  warmup_lr_rate None: (step + 1) / max(1, W);
               else:                warmup_lr_rate + (1 - warmup_lr_rate) * step / max(1, W - 1)
    after:     p = (step - W + 1) / max(1, T - W);  f = max(0, m + (1 - m) * (1 + cos(2 pi num_cycles p)) / 2)
    """
    where = "cosine_warmup_with_min_lr"
    lr, W, T, cycles = _cosine_keys(where, learning_rate, num_warmup_steps, num_training_steps, num_cycles)
    m = _min_lr_rate(where, lr, min_lr, min_lr_rate)
    start = None if warmup_lr_rate is None else check_number(f"{where}.warmup_lr_rate", warmup_lr_rate, low=0,
                                                             high=1)

    def factor(step):
        if step < W:
            if start is None:
                return (step + 1) / max(1, W)
            return anneal_linear(start, 1.0, step / max(1, W - 1))
        p = (step - W + 1) / max(1, T - W)
        return max(0.0, anneal_cos(1.0, m, 2.0 * cycles * p))

    return lambda step: lr * factor(step)
