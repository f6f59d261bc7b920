"""PyTorch's schedulers (torch.optim.lr_scheduler) as pure functions of the step (ReduceLROnPlateau, which is
driven by a metric, is paddle_strategy.plateau).

Torch counts whatever `scheduler.step()` is called for. Here each time argument says its unit: `*_epochs`
(with `steps_per_epoch`; the LR changes at epoch boundaries, as when torch is stepped once per epoch) or
`*_steps` (as when torch is stepped once per batch). OneCycleLR and CyclicLR are per batch in torch, so their
lengths are in steps. Each has torch's closed form; torch's recursive forms agree with it. ChainedScheduler
builds its parts by name, so it is `registry.make_chained_scheduler`.
"""
from __future__ import annotations

import math
from bisect import bisect_right

from .._checks import (check_bool, check_choice, check_divisor, check_lr, check_number, check_numbers,
                       check_steps, shown)
from .parts import LRMomentum, Schedule, anneal_cos, anneal_linear, by_epoch, phases, with_restarts

__all__ = ["make_step_lr", "make_multi_step_lr", "make_epoch_table", "make_cosine_annealing_lr",
           "make_cosine_annealing_warm_restarts", "make_one_cycle_lr", "make_cyclic_lr", "make_swa_lr",
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
    (parts.phases, at_bound="previous"). A phase of zero width gives points[k]. From step T on the value at
    T - 1 is held: torch computes step T
    with the last phase's formula past its end (pct > 1, an extrapolated value that no update uses when
    the scheduler is stepped after each of the T updates) and raises from step T + 1.
    """
    T = total_steps
    ends = ([pct_start * T - 1, 2 * pct_start * T - 2, T - 1] if three_phase else [pct_start * T - 1, T - 1])
    pieces = [lambda pct, a=a, b=b: anneal(a, b, pct) for a, b in zip(points, points[1:])]
    phased = phases([0.0] + ends, pieces, at_bound="previous")
    return lambda step: phased(min(step, T - 1))


def _clock(where, name, epochs_value, steps_value, steps_per_epoch):
    """(value, steps per unit, the key given as `where.key`) for a time argument given as exactly one of
    `{name}_epochs` / `{name}_steps`."""
    if (epochs_value is None) == (steps_value is None):
        raise ValueError(f"{where}: give exactly one of {name}_epochs and {name}_steps, got "
                         f"{name}_epochs={shown(epochs_value)}, {name}_steps={shown(steps_value)}.")
    if steps_value is not None:
        return steps_value, 1, f"{where}.{name}_steps"
    if steps_per_epoch is None:
        raise ValueError(f"{where}.{name}_epochs={shown(epochs_value)} needs steps_per_epoch, got None.")
    return epochs_value, check_steps(f"{where}.steps_per_epoch", steps_per_epoch, low=1), f"{where}.{name}_epochs"


def make_step_lr(learning_rate, *, step_size_epochs=None, step_size_steps=None, gamma=0.1,
                 steps_per_epoch=None) -> Schedule:
    """StepLR: lr * gamma ** (u // step_size), u = epoch (step // steps_per_epoch) or step."""
    where = "step_lr"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    size, spu, key = _clock(where, "step_size", step_size_epochs, step_size_steps, steps_per_epoch)
    size = check_steps(key, size, low=1)
    g = check_number(f"{where}.gamma", gamma, low=0)
    return by_epoch(lambda u: lr * g ** (u // size), spu)


def make_multi_step_lr(learning_rate, *, milestones_epochs=None, milestones_steps=None, gamma=0.1,
                       steps_per_epoch=None) -> Schedule:
    """MultiStepLR: lr * gamma ** (number of milestones <= u); a repeated milestone counts twice, as in torch."""
    where = "multi_step_lr"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    marks, spu, key = _clock(where, "milestones", milestones_epochs, milestones_steps, steps_per_epoch)
    marks = sorted(check_numbers(key, marks, low=0, integer=True))
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
    t_max, spu, key = _clock(where, "t_max", t_max_epochs, t_max_steps, steps_per_epoch)
    t_max = check_steps(key, t_max, low=1)
    floor = check_lr(f"{where}.eta_min", eta_min)
    return by_epoch(cosine_annealing_curve(lr, t_max, floor), spu)


def make_cosine_annealing_warm_restarts(learning_rate, *, t_0_epochs=None, t_0_steps=None, t_mult=1,
                                        eta_min=0.0, fractional_epochs=False, restart_warmup_steps=0,
                                        restart_warmup_start_lr=0.0, steps_per_epoch=None) -> Schedule:
    """CosineAnnealingWarmRestarts: cycle i lasts T_i = t_0 * t_mult**i; at T_cur into it,

    eta_min + (lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
    With t_0_epochs, T_cur counts whole epochs (torch stepped per epoch), or with fractional_epochs=True
    follows torch's documented loop `for i in range(iters): ...; optimizer.step(); scheduler.step(epoch +
    i / iters)`: the scheduler is set *after* each update to that update's own position, so update k
    (k >= 1) trains at T_cur position (k - 1) / iters and update 0 at 0 (the first update of an epoch uses
    the previous epoch's last position; each restart lands one update after the cycle boundary).
    `restart_warmup_steps` (not in torch) ramps linearly into every cycle (see parts.with_restarts).
    """
    where = "cosine_annealing_warm_restarts"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    t_0, spu, key = _clock(where, "t_0", t_0_epochs, t_0_steps, steps_per_epoch)
    t_0 = check_steps(key, t_0, low=1)
    mult = check_steps(f"{where}.t_mult", t_mult, low=1)
    floor = check_lr(f"{where}.eta_min", eta_min)
    smooth = check_bool(f"{where}.fractional_epochs", fractional_epochs)
    if smooth and t_0_steps is not None:
        raise ValueError(f"{where}.fractional_epochs=True applies to t_0_epochs, not t_0_steps={shown(t_0_steps)}.")

    def cycle(t, length, i):
        t_cur = t / spu if smooth else t // spu
        return anneal_cos(lr, floor, t_cur / (length // spu))

    restarted = with_restarts(cycle, t_0 * spu, mult, restart_warmup_steps=restart_warmup_steps,
                              restart_warmup_start_lr=restart_warmup_start_lr, where=where)
    if smooth:  # torch's loop: update k runs at the position the scheduler was set to after update k - 1
        return lambda step: restarted(max(step - 1, 0))
    return restarted


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


# CyclicLR's built-in modes: (scale_fn(x, gamma), the scale_mode torch gives it).
_CYCLIC_MODES = {
    "triangular": (lambda x, gamma: 1.0, "cycle"),
    "triangular2": (lambda x, gamma: 1 / (2.0 ** (x - 1)), "cycle"),
    "exp_range": (lambda x, gamma: gamma ** x, "iterations"),
}


def make_cyclic_lr(base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular", gamma=1.0,
                   scale_fn=None, scale_mode=None, cycle_momentum=True, base_momentum=0.8,
                   max_momentum=0.9) -> LRMomentum:
    """CyclicLR (CLR, Smith 2017); the half-cycle sizes are in steps. With S = up + down and r = up / S:

    cycle = floor(1 + step / S);  x = 1 + step / S - cycle
    h = x / r if x <= r else (x - 1) / (r - 1)
    lr = base_lr + (max_lr - base_lr) * h * scale;  momentum = max_m - (max_m - base_m) * h * scale
    scale = scale_fn(cycle) with scale_mode 'cycle', scale_fn(step) with 'iterations'.
    `mode` picks torch's built-in scale_fn and its scale_mode: triangular 1 ('cycle'); triangular2
    1 / 2 ** (cycle - 1) ('cycle'); exp_range gamma ** step ('iterations').
    scale_fn (torch's custom scale_fn, which replaces `mode`): a callable x -> factor (Python), or one of the
    built-in names above (from YAML; 'exp_range' uses gamma); scale_mode then defaults to 'cycle' as in
    torch. torch ignores `mode` when scale_fn is given and `scale_mode` when it is not; here a `mode` or
    `scale_mode` that would be ignored is refused.
    Returns an LRMomentum (`.momentum` is None without cycle_momentum).
    """
    where = "cyclic_lr"
    low = check_lr(f"{where}.base_lr", base_lr)
    high = check_lr(f"{where}.max_lr", max_lr)
    up = check_steps(f"{where}.step_size_up", step_size_up, low=1)
    down = up if step_size_down is None else check_steps(f"{where}.step_size_down", step_size_down, low=1)
    mode = check_choice(f"{where}.mode", mode, tuple(_CYCLIC_MODES))
    g = check_number(f"{where}.gamma", gamma, low=0, low_open=True)
    if scale_mode is not None:
        check_choice(f"{where}.scale_mode", scale_mode, ("cycle", "iterations"))
    if scale_fn is None:
        fn, own_mode = _CYCLIC_MODES[mode]
        if scale_mode is not None and scale_mode != own_mode:
            raise ValueError(f"{where}.scale_mode={scale_mode!r} applies with a custom scale_fn only; mode={mode!r} "
                             f"scales by {own_mode!r} (torch would silently ignore scale_mode).")
        scale, scale_mode = (lambda x: fn(x, g)), own_mode
    else:
        if mode != "triangular":
            raise ValueError(f"{where}: mode={mode!r} and scale_fn={scale_fn!r} are both set; torch ignores mode "
                             f"when scale_fn is given. Drop one.")
        if callable(scale_fn):
            scale = scale_fn
        else:
            fn, _ = _CYCLIC_MODES[check_choice(f"{where}.scale_fn", scale_fn, tuple(_CYCLIC_MODES))]
            scale = lambda x: fn(x, g)  # noqa: E731
        scale_mode = scale_mode or "cycle"
    by_cycle = scale_mode == "cycle"
    cycle_m, base_m, max_m = _momentum_pair(where, cycle_momentum, base_momentum, max_momentum)
    size = float(up + down)
    ratio = up / size

    def height_and_scale(step):
        cycle = math.floor(1 + step / size)
        x = 1.0 + step / size - cycle
        h = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        return h * scale(cycle if by_cycle else step)

    lr = lambda step: low + (high - low) * height_and_scale(step)  # noqa: E731
    momentum = (lambda step: max_m - (max_m - base_m) * height_and_scale(step)) if cycle_m else None
    return LRMomentum(lr, momentum)


def make_swa_lr(learning_rate, swa_lr, *, anneal_epochs=None, anneal_steps=None, anneal_strategy="cos",
                steps_per_epoch=None) -> Schedule:
    """torch.optim.swa_utils.SWALR: from learning_rate (the optimizer's LR when SWALR is created) to swa_lr
    over anneal_epochs (torch's default 10; stepped once per epoch) or anneal_steps, then swa_lr:

    u = epoch (step // steps_per_epoch) or step;  pct = min(u / E, 1)  (1 when E = 0)
    cos: anneal_cos(learning_rate, swa_lr, pct) = swa_lr * a + learning_rate * (1 - a), a = (1 - cos(pi pct)) / 2
    linear: anneal_linear(learning_rate, swa_lr, pct)
    torch's recursive form recovers learning_rate from the current LR each step; it equals this closed form
    up to float rounding. Put a schedule before it (until swa_start) with join_schedules.
    """
    where = "swa_lr"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    target = check_lr(f"{where}.swa_lr", swa_lr)
    if anneal_epochs is None and anneal_steps is None:
        anneal_epochs = 10  # torch's default
    E, spu, key = _clock(where, "anneal", anneal_epochs, anneal_steps, steps_per_epoch)
    E = check_steps(key, E)
    anneal = ANNEALERS[check_choice(f"{where}.anneal_strategy", anneal_strategy, tuple(ANNEALERS))]
    return by_epoch(lambda u: anneal(lr, target, min(u / E, 1.0) if E else 1.0), spu)
