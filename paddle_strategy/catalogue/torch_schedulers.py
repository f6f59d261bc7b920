"""PyTorch's schedulers (torch.optim.lr_scheduler) as pure functions of the step, plus ReduceLROnPlateau.

Torch counts whatever `scheduler.step()` is called for. Here each time argument says its unit: `*_epochs`
(with `steps_per_epoch`; the LR changes at epoch boundaries, as when torch is stepped once per epoch) or
`*_steps` (as when torch is stepped once per batch). OneCycleLR and CyclicLR are per batch in torch, so their
lengths are in steps. Each has torch's closed form; torch's recursive forms agree with it.
"""
from __future__ import annotations

import math
from bisect import bisect_right

from ._validate import (check_bool, check_choice, check_divisor, check_lr, check_number, check_numbers,
                        check_steps, shown)
from .parts import LRMomentum, Schedule, anneal_cos, anneal_linear, by_epoch, with_restarts

__all__ = ["make_step_lr", "make_multi_step_lr", "make_epoch_table", "make_cosine_annealing_lr",
           "make_cosine_annealing_warm_restarts", "make_one_cycle_lr", "make_cyclic_lr", "ReduceLROnPlateau",
           "one_cycle_curve", "cosine_annealing_curve"]

ANNEALERS = {"cos": anneal_cos, "linear": anneal_linear}


def cosine_annealing_curve(peak: float, period: float, floor: float):
    """floor + (peak - floor) * (1 + cos(pi * t / period)) / 2: periodic, back up after t = period."""
    return lambda t: anneal_cos(peak, floor, t / period)


def one_cycle_curve(total_steps: int, pct_start: float, three_phase: bool, points, anneal) -> Schedule:
    """torch's OneCycleLR phases, for the LR or the momentum (`points` are the values at the phase ends).

    Two phases end at steps pct_start*T - 1 and T - 1 (three: pct_start*T - 1, 2*pct_start*T - 2, T - 1);
    within phase k, which starts where phase k-1 ended (phase 0 at 0),
        value = anneal(points[k], points[k+1], (step - start_k) / (end_k - start_k))
    A phase of zero width gives points[k]; after step T - 1 the last value is held (torch raises there).
    """
    T = total_steps
    ends = ([pct_start * T - 1, 2 * pct_start * T - 2, T - 1] if three_phase else [pct_start * T - 1, T - 1])
    starts = [0.0] + ends[:-1]

    def phased(step):
        step = min(step, T - 1)
        for k, end in enumerate(ends):
            if step <= end or k == len(ends) - 1:
                width = end - starts[k]
                pct = (step - starts[k]) / width if width else 0.0
                return anneal(points[k], points[k + 1], pct)

    return phased


def _clock(where, name, epochs_value, steps_value, steps_per_epoch):
    """(value, steps per unit) for a time argument given as exactly one of `{name}_epochs` / `{name}_steps`."""
    if (epochs_value is None) == (steps_value is None):
        raise ValueError(f"{where}: give exactly one of {name}_epochs and {name}_steps, got "
                         f"{name}_epochs={shown(epochs_value)}, {name}_steps={shown(steps_value)}.")
    if steps_value is not None:
        return steps_value, 1
    if steps_per_epoch is None:
        raise ValueError(f"{where}.{name}_epochs={shown(epochs_value)} needs steps_per_epoch, got None.")
    return epochs_value, check_steps(f"{where}.steps_per_epoch", steps_per_epoch, low=1)


def make_step_lr(learning_rate, *, step_size_epochs=None, step_size_steps=None, gamma=0.1,
                 steps_per_epoch=None) -> Schedule:
    """StepLR: lr * gamma ** (u // step_size), u = epoch (step // steps_per_epoch) or step."""
    where = "step_lr"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    size, spu = _clock(where, "step_size", step_size_epochs, step_size_steps, steps_per_epoch)
    unit = "steps" if step_size_steps is not None else "epochs"
    size = check_steps(f"{where}.step_size_{unit}", size, low=1)
    g = check_number(f"{where}.gamma", gamma, low=0)
    return by_epoch(lambda u: lr * g ** (u // size), spu)


def make_multi_step_lr(learning_rate, *, milestones_epochs=None, milestones_steps=None, gamma=0.1,
                       steps_per_epoch=None) -> Schedule:
    """MultiStepLR: lr * gamma ** (number of milestones <= u); a repeated milestone counts twice, as in torch."""
    where = "multi_step_lr"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    marks, spu = _clock(where, "milestones", milestones_epochs, milestones_steps, steps_per_epoch)
    unit = "steps" if milestones_steps is not None else "epochs"
    marks = sorted(check_numbers(f"{where}.milestones_{unit}", marks, low=0, integer=True))
    g = check_number(f"{where}.gamma", gamma, low=0)
    return by_epoch(lambda u: lr * g ** bisect_right(marks, u), spu)


def make_epoch_table(learning_rate, factors, *, steps_per_epoch) -> Schedule:
    """A LambdaLR over a table: lr * factors[min(epoch, len(factors) - 1)] (the last factor is held)."""
    lr = check_lr("epoch_table.learning_rate", learning_rate)
    table = check_numbers("epoch_table.factors", factors, min_len=1, low=0)
    last = len(table) - 1
    return by_epoch(lambda epoch: lr * table[min(epoch, last)], steps_per_epoch)


def make_cosine_annealing_lr(learning_rate, *, t_max_epochs=None, t_max_steps=None, eta_min=0.0,
                             steps_per_epoch=None) -> Schedule:
    """CosineAnnealingLR: eta_min + (lr - eta_min) * (1 + cos(pi * u / T_max)) / 2, u = epoch or step.

    Like torch's, the curve is periodic: it rises again after T_max.
    """
    where = "cosine_annealing_lr"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    t_max, spu = _clock(where, "t_max", t_max_epochs, t_max_steps, steps_per_epoch)
    t_max = check_steps(f"{where}.t_max_{'steps' if t_max_steps is not None else 'epochs'}", t_max, low=1)
    floor = check_lr(f"{where}.eta_min", eta_min)
    return by_epoch(cosine_annealing_curve(lr, t_max, floor), spu)


def make_cosine_annealing_warm_restarts(learning_rate, *, t_0_epochs=None, t_0_steps=None, t_mult=1,
                                        eta_min=0.0, fractional_epochs=False, restart_warmup_steps=0,
                                        restart_warmup_start_lr=0.0, steps_per_epoch=None) -> Schedule:
    """CosineAnnealingWarmRestarts: cycle i lasts T_i = t_0 * t_mult**i; at T_cur into it,

    eta_min + (lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
    With t_0_epochs, T_cur counts whole epochs (torch stepped per epoch), or with fractional_epochs=True
    step / steps_per_epoch (torch's documented `scheduler.step(epoch + i / iters)`).
    `restart_warmup_steps` (not in torch) ramps linearly into every cycle (see parts.with_restarts).
    """
    where = "cosine_annealing_warm_restarts"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    t_0, spu = _clock(where, "t_0", t_0_epochs, t_0_steps, steps_per_epoch)
    t_0 = check_steps(f"{where}.t_0_{'steps' if t_0_steps is not None else 'epochs'}", t_0, low=1)
    mult = check_steps(f"{where}.t_mult", t_mult, low=1)
    floor = check_lr(f"{where}.eta_min", eta_min)
    smooth = check_bool(f"{where}.fractional_epochs", fractional_epochs)
    if smooth and t_0_steps is not None:
        raise ValueError(f"{where}.fractional_epochs=True applies to t_0_epochs, not t_0_steps={shown(t_0_steps)}.")

    def cycle(t, length, i):
        t_cur = t / spu if smooth else t // spu
        return anneal_cos(lr, floor, t_cur / (length // spu))

    return with_restarts(cycle, t_0 * spu, mult, restart_warmup_steps=restart_warmup_steps,
                         restart_warmup_start_lr=restart_warmup_start_lr, where=where)


def _momentum_pair(where, cycle_momentum, base_momentum, max_momentum):
    cycle = check_bool(f"{where}.cycle_momentum", cycle_momentum)
    base = check_number(f"{where}.base_momentum", base_momentum, low=0, high=1)
    top = check_number(f"{where}.max_momentum", max_momentum, low=0, high=1)
    return cycle, base, top


def make_one_cycle_lr(max_lr, total_steps, pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
                      base_momentum=0.85, max_momentum=0.95, div_factor=25.0, final_div_factor=1e4,
                      three_phase=False) -> LRMomentum:
    """OneCycleLR: initial = max_lr / div_factor -> max_lr -> min = initial / final_div_factor (see
    one_cycle_curve); momentum max -> base -> max (three phases: max -> base -> max -> max).

    Returns an LRMomentum (`.momentum` is None without cycle_momentum).
    """
    where = "one_cycle_lr"
    top = check_lr(f"{where}.max_lr", max_lr)
    T = check_steps(f"{where}.total_steps", total_steps, low=1)
    pct = check_number(f"{where}.pct_start", pct_start, low=0, high=1)
    anneal = ANNEALERS[check_choice(f"{where}.anneal_strategy", anneal_strategy, tuple(ANNEALERS))]
    div = check_divisor(f"{where}.div_factor", div_factor)
    final_div = check_divisor(f"{where}.final_div_factor", final_div_factor)
    three = check_bool(f"{where}.three_phase", three_phase)
    if three and pct >= 0.5:
        raise ValueError(f"{where}.pct_start must be < 0.5 with three_phase=True, got {shown(pct_start)}.")
    cycle, base_m, max_m = _momentum_pair(where, cycle_momentum, base_momentum, max_momentum)
    initial = top / div
    lows = (initial, top, initial, initial / final_div) if three else (initial, top, initial / final_div)
    moms = (max_m, base_m, max_m, max_m) if three else (max_m, base_m, max_m)
    lr = one_cycle_curve(T, pct, three, lows, anneal)
    return LRMomentum(lr, one_cycle_curve(T, pct, three, moms, anneal) if cycle else None)


def make_cyclic_lr(base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular", gamma=1.0,
                   cycle_momentum=True, base_momentum=0.8, max_momentum=0.9) -> LRMomentum:
    """CyclicLR (CLR, Smith 2017); the half-cycle sizes are in steps. With S = up + down and r = up / S:

    cycle = floor(1 + step / S);  x = 1 + step / S - cycle
    h = x / r if x <= r else (x - 1) / (r - 1)
    lr = base_lr + (max_lr - base_lr) * h * scale;  momentum = max_m - (max_m - base_m) * h * scale
    scale: triangular 1; triangular2 1 / 2 ** (cycle - 1); exp_range gamma ** step.
    Returns an LRMomentum (`.momentum` is None without cycle_momentum).
    """
    where = "cyclic_lr"
    low = check_lr(f"{where}.base_lr", base_lr)
    high = check_lr(f"{where}.max_lr", max_lr)
    up = check_steps(f"{where}.step_size_up", step_size_up, low=1)
    down = up if step_size_down is None else check_steps(f"{where}.step_size_down", step_size_down, low=1)
    mode = check_choice(f"{where}.mode", mode, ("triangular", "triangular2", "exp_range"))
    g = check_number(f"{where}.gamma", gamma, low=0, low_open=True)
    cycle_m, base_m, max_m = _momentum_pair(where, cycle_momentum, base_momentum, max_momentum)
    size = float(up + down)
    ratio = up / size

    def height_and_scale(step):
        cycle = math.floor(1 + step / size)
        x = 1.0 + step / size - cycle
        h = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        scale = {"triangular": 1.0, "triangular2": 1 / (2.0 ** (cycle - 1)), "exp_range": g ** step}[mode]
        return h * scale

    lr = lambda step: low + (high - low) * height_and_scale(step)  # noqa: E731
    momentum = (lambda step: max_m - (max_m - base_m) * height_and_scale(step)) if cycle_m else None
    return LRMomentum(lr, momentum)


class ReduceLROnPlateau:
    """torch's ReduceLROnPlateau on one learning rate: `step(metric)` once per evaluation returns the new lr.

    better:  min/rel  m < best * (1 - threshold)    min/abs  m < best - threshold
             max/rel  m > best * (1 + threshold)    max/abs  m > best + threshold
    A better metric becomes `best` and resets the bad count, otherwise the count grows; during cooldown the
    counter ticks down and bad evaluations are not counted. When the count exceeds `patience`:
    new = max(lr * factor, min_lr), applied only if lr - new > eps; then cooldown restarts and the count resets.
    """

    _STATE = ("lr", "best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(self, learning_rate, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        where = "ReduceLROnPlateau"
        self.lr = check_lr(f"{where}.learning_rate", learning_rate)
        self.mode = check_choice(f"{where}.mode", mode, ("min", "max"))
        self.factor = check_number(f"{where}.factor", factor, low=0, high=1, high_open=True)
        self.patience = check_steps(f"{where}.patience", patience)
        self.threshold = check_number(f"{where}.threshold", threshold, low=0)
        self.threshold_mode = check_choice(f"{where}.threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = check_steps(f"{where}.cooldown", cooldown)
        self.min_lr = check_lr(f"{where}.min_lr", min_lr)
        self.eps = check_number(f"{where}.eps", eps, low=0)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, metric: float, best: float) -> bool:
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return metric < best * (1.0 - self.threshold)
            return metric < best - self.threshold
        if self.threshold_mode == "rel":
            return metric > best * (1.0 + self.threshold)
        return metric > best + self.threshold

    def step(self, metric) -> float:
        try:
            current = float(metric)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step metric must be a number, got {shown(metric)} "
                            f"({type(metric).__name__}).") from None
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new = max(self.lr * self.factor, self.min_lr)
            if self.lr - new > self.eps:
                self.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.lr

    def state_dict(self) -> dict:
        return {key: getattr(self, key) for key in self._STATE}

    def set_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise TypeError(f"ReduceLROnPlateau state must be a dict, got {shown(state)} ({type(state).__name__}).")
        missing = [k for k in self._STATE if k not in state]
        extra = [k for k in state if k not in self._STATE]
        if missing or extra:
            raise ValueError(f"ReduceLROnPlateau state: missing keys {missing}, unknown keys {extra}; "
                             f"expected exactly {list(self._STATE)}.")
        self.lr = check_lr("ReduceLROnPlateau state['lr']", state["lr"])
        self.best = float(state["best"])
        self.num_bad_epochs = check_steps("ReduceLROnPlateau state['num_bad_epochs']", state["num_bad_epochs"])
        self.cooldown_counter = check_steps("ReduceLROnPlateau state['cooldown_counter']",
                                            state["cooldown_counter"])
        self.last_epoch = check_steps("ReduceLROnPlateau state['last_epoch']", state["last_epoch"])
