"""Small parts that every schedule is joined from: each formula is written here once.

A schedule is a pure function `schedule(step) -> lr`: `step` is the number of optimizer updates already done
(0 for the first update), and nothing but the step is state. The parts here are either annealers (a value
between two end points at a fraction `pct` of the way) or combinators that take schedules and return one:
join_schedules (pieces on integer steps, each with its own clock), phases (pieces on a continuous position,
each given its own pct), with_warmup, with_floor, with_restarts.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from numbers import Integral
from typing import Callable, Sequence

from .._checks import check_lr, check_number, check_numbers, check_steps, shown

Schedule = Callable[[int], float]

__all__ = ["Schedule", "LRMomentum", "constant", "anneal_linear", "anneal_cos", "anneal_exp", "anneal_poly",
           "by_epoch", "with_warmup", "with_floor", "join_schedules", "phases", "with_restarts", "cycle_position"]


class LRMomentum:
    """A learning-rate schedule that also schedules momentum (one-cycle, cyclical LR).

    Call it like any schedule for the learning rate; `.momentum(step)` is the momentum (or Adam's beta1) for
    the same update, and `.momentum is None` when the schedule leaves momentum alone.
    """

    __slots__ = ("lr", "momentum")

    def __init__(self, lr: Schedule, momentum: Schedule | None = None):
        self.lr = lr
        self.momentum = momentum

    def __call__(self, step: int) -> float:
        return self.lr(step)

    def __repr__(self):
        return f"LRMomentum(lr={self.lr!r}, momentum={self.momentum!r})"


def _same_momentum(new_lr: Schedule, old: Schedule, momentum: Schedule | None = None) -> Schedule:
    """`new_lr`, carrying over `old`'s momentum schedule (or the given one) when `old` has one."""
    old_momentum = getattr(old, "momentum", None)
    if old_momentum is None:
        return new_lr
    return LRMomentum(new_lr, momentum or old_momentum)


def constant(learning_rate: float) -> Schedule:
    """lr(step) = learning_rate."""
    lr = check_lr("constant.learning_rate", learning_rate)
    return lambda step: lr


def anneal_linear(start: float, end: float, pct: float) -> float:
    """start + (end - start) * pct."""
    return start + (end - start) * pct


def anneal_cos(start: float, end: float, pct: float) -> float:
    """Half a cosine from `start` (pct = 0) to `end` (pct = 1): end + (start - end) * (1 + cos(pi * pct)) / 2."""
    return end + (start - end) * (1.0 + math.cos(math.pi * pct)) / 2.0


def anneal_exp(start: float, end: float, pct: float) -> float:
    """Geometric from `start` to `end` (both > 0): start * (end / start) ** pct."""
    return start * (end / start) ** pct


def anneal_poly(start: float, end: float, pct: float, power: float) -> float:
    """start + (end - start) * pct ** power (power 1 is anneal_linear)."""
    return start + (end - start) * pct ** power


def by_epoch(schedule_of_epoch: Callable[[int], float], steps_per_epoch: int) -> Schedule:
    """A per-epoch schedule stepped once per update: lr(step) = schedule_of_epoch(step // steps_per_epoch)."""
    spe = check_steps("steps_per_epoch", steps_per_epoch, low=1)
    if spe == 1:
        return schedule_of_epoch
    return lambda step: schedule_of_epoch(step // spe)


def with_warmup(schedule: Schedule, warmup_steps: int, start_lr: float = 0.0, *, end_lr: float | None = None,
                shift: bool = True) -> Schedule:
    """Linear warmup over the first W = warmup_steps updates.

    step < W:  start_lr + (end_lr - start_lr) * step / W
    shift=True  (paddle LinearWarmup as PaddleOCR uses it, Keras' warmup_target, optax join_schedules):
               the schedule starts its own clock when warmup ends: step >= W -> schedule(step - W);
               end_lr defaults to schedule(0).
    shift=False (timm, transformers): warmup overwrites the schedule's first W steps: step >= W ->
               schedule(step); end_lr defaults to schedule(W).
    """
    W = check_steps("warmup_steps", warmup_steps)
    start = check_lr("warmup start_lr", start_lr)
    if W == 0:
        return schedule
    end = float(schedule(0 if shift else W)) if end_lr is None else check_lr("warmup end_lr", end_lr)
    rise = end - start

    def warmed(step):
        if step < W:
            return rise * step / W + start
        return schedule(step - W) if shift else schedule(step)

    if getattr(schedule, "momentum", None) is not None and shift:
        inner = schedule.momentum
        return LRMomentum(warmed, lambda step: inner(max(0, step - W)))
    return _same_momentum(warmed, schedule)


def with_floor(schedule: Schedule, min_lr: float) -> Schedule:
    """lr(step) = max(schedule(step), min_lr)."""
    floor = check_lr("min_lr", min_lr)
    return _same_momentum(lambda step: max(schedule(step), floor), schedule)


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """optax-style join: schedule i runs from boundaries[i-1] on, with its own clock restarted there.

    i = number of boundaries <= step;  lr(step) = schedules[i](step - boundaries[i-1])  (boundary -1 is 0)
    """
    schedules = list(schedules)
    bounds = check_numbers("join_schedules boundaries", list(boundaries), increasing="weak", low=0,
                           integer=True)
    if len(schedules) != len(bounds) + 1:
        raise ValueError(f"join_schedules needs one more schedule than boundaries, got {len(schedules)} "
                         f"schedules and boundaries {shown(bounds)}.")
    starts = [0] + bounds

    def joined(step):
        i = bisect_right(bounds, step)
        return schedules[i](step - starts[i])

    return joined


def phases(bounds: Sequence[float], pieces: Sequence[Callable[[float], float]], *,
           at_bound: str = "next") -> Callable[[float], float]:
    """Pieces on a continuous position x (a step, or the fraction of the run done): piece k spans bounds[k]
    to bounds[k+1] and gives pieces[k]((x - bounds[k]) / (bounds[k+1] - bounds[k])), its own pct 0 -> 1.

    at_bound="next" (fastai's combine_scheds): x on a bound belongs to the piece that starts there; pieces
        of zero width are never used; before bounds[0] the first piece runs, after bounds[-1] the last one.
    at_bound="previous" (torch's OneCycleLR): x belongs to the first piece k with x <= bounds[k+1], else to
        the last; a piece of zero width gives pieces[k](0.0).
    """
    bounds = [float(b) for b in bounds]
    pieces = list(pieces)
    if len(pieces) != len(bounds) - 1 or not pieces:
        raise ValueError(f"phases needs one piece per interval: {len(bounds)} bounds and {len(pieces)} pieces.")
    if at_bound == "previous":
        ends, last = bounds[1:], len(pieces) - 1

        def phased(x):
            for k, end in enumerate(ends):
                if x <= end or k == last:  # a short loop: torch's phases are 2 or 3
                    width = end - bounds[k]
                    return pieces[k]((x - bounds[k]) / width if width else 0.0)

        return phased
    if at_bound != "next":
        raise ValueError(f"phases: at_bound must be 'next' or 'previous', got {at_bound!r}.")
    live = [k for k in range(len(pieces)) if bounds[k + 1] > bounds[k]]
    if not live:
        raise ValueError(f"phases: every piece has zero width (bounds {shown(bounds)}).")
    starts = [bounds[k] for k in live]

    def joined(x):
        k = live[max(bisect_right(starts, x) - 1, 0)]
        return pieces[k]((x - bounds[k]) / (bounds[k + 1] - bounds[k]))

    return joined


def cycle_position(x, first, mult=1):
    """(index i, offset t, length L) of the cycle holding position x >= 0, cycle i being L = first * mult**i long.

    Cycle i starts at first * (mult**i - 1) / (mult - 1) (i * first when mult == 1). With integer x, first and
    mult the answer is exact; otherwise the logarithm's guess is corrected against the starts themselves.
    """
    if mult == 1:
        i = int(x // first)
        return i, x - i * first, first
    exact = all(isinstance(v, Integral) for v in (x, first, mult))

    def start(i):
        return first * (mult ** i - 1) // (mult - 1) if exact else first * (mult ** i - 1) / (mult - 1)

    i = max(0, int(math.log1p(x * (mult - 1) / first) / math.log(mult)))
    while i > 0 and start(i) > x:
        i -= 1
    while start(i + 1) <= x:
        i += 1
    return i, x - start(i), first * mult ** i


def with_restarts(cycle: Callable[[float, float, int], float], first_cycle_steps, cycle_mult=1, *,
                  restart_warmup_steps: int = 0, restart_warmup_start_lr: float = 0.0,
                  where: str = "with_restarts") -> Schedule:
    """Warm restarts: lr(step) = cycle(t, L, i) in cycle i, which lasts L = first_cycle_steps * cycle_mult**i.

    `cycle_mult` >= 1 may be fractional (TensorFlow's t_mul), and then so may t and L.
    With restart_warmup_steps = W every cycle, the first included, opens with a linear ramp and keeps its
    length:  t < W:  anneal_linear(restart_warmup_start_lr, cycle(W, L, i), t / W)
    """
    first = check_number(f"{where}.first_cycle_steps", first_cycle_steps, low=0, low_open=True)
    first = int(first) if isinstance(first_cycle_steps, Integral) else first
    mult = check_number(f"{where}.cycle_mult", cycle_mult, low=1)
    mult = int(mult) if isinstance(cycle_mult, Integral) or mult == int(mult) else mult
    W = check_steps(f"{where}.restart_warmup_steps", restart_warmup_steps)
    start = check_lr(f"{where}.restart_warmup_start_lr", restart_warmup_start_lr)
    if W >= first:
        raise ValueError(f"{where}.restart_warmup_steps must be < the first cycle's {first} steps, got {W}.")

    def restarted(step):
        i, t, length = cycle_position(step, first, mult)
        if t < W:
            return anneal_linear(start, cycle(W, length, i), t / W)
        return cycle(t, length, i)

    return restarted
