"""PaddleOCR's learning-rate classes (ppocr/optimizer/learning_rate.py, lr_scheduler.py) as pure schedules.

The keys are PaddleOCR's, so a PP-OCR YAML `Optimizer.lr` section maps onto them unchanged. `epochs` and
`step_each_epoch` are what PaddleOCR fills in from Global.epoch_num and the loader length (every class gets
both; those that do not use `epochs` accept and ignore it, as PaddleOCR does). Every other length is in
epochs — warmup_epoch, step_size, decay_epochs, milestones, cycle — and becomes steps by multiplying with
step_each_epoch, as in PaddleOCR. PaddleOCR steps its scheduler once per update, so update t uses the
scheduler's value after t steps: lr(t) below.

Warmup (warmup_epoch > 0) is paddle's LinearWarmup as PaddleOCR builds it: W = round(warmup_epoch *
step_each_epoch) steps (Python's round: half to even), a ramp from 0 to the class's peak, then the decay with
its own clock starting at W — so the decay ends W steps after the run does, exactly as in PaddleOCR.

PaddleOCR keys that PaddleOCR silently ignores and these schedules honour (PaddlePaddle/PaddleOCR,
ppocr/optimizer/learning_rate.py @045e5f6 and lr_scheduler.py @f773f2c; every class there takes **kwargs,
so these keys are accepted and dropped):
  - CyclicalCosine.eta_min: CyclicalCosine.__call__ builds CyclicalCosineDecay(learning_rate, T_max, cycle,
    last_epoch) without it, so the cosine always falls to 0; honoured as the floor of every cycle.
  - OneCycle.pct_start, OneCycle.div_factor, OneCycle.final_div_factor: OneCycle.__call__ passes only max_lr,
    epochs, steps_per_epoch, anneal_strategy, three_phase, last_epoch, so OneCycleDecay always uses its
    defaults 0.3, 25.0, 1e4; honoured.
  - DecayLearningRate.end_lr: its __init__ takes end_lr=0 and then sets self.end_lr = 0; honoured.
  - DecayLearningRate.warmup_epoch: swallowed by **kwargs, no LinearWarmup is built; honoured like the
    other classes' warmup.
  - TwoStepCosine.eta_min: TwoStepCosine.__call__ builds TwoStepCosineDecay without it (always 0); honoured.
Other differences from PaddleOCR: unknown (e.g. misspelt) keys raise instead of being dropped; last_epoch
must be -1 (resume by restoring the step); Piecewise.learning_rate (ignored by PaddleOCR, which starts at
values[0]) must equal values[0] if given; configs that paddle accepts but that make no sense are rejected
(Piecewise values not exactly one longer than decay_epochs — paddle then jumps to values[-1] —, boundaries or
milestones not increasing, negative learning rates or gamma, three_phase with pct_start >= 0.5). Quirks that
are reproduced: fractional warmup_epoch * step_each_epoch is rounded half to even, the decay after a warmup
starts its own clock (ending warmup steps after the run), OneCycle's warmup ramps to max_lr and then drops to
max_lr / div_factor, TwoStepCosine's first cosine is 200 epochs long, and without warmup its recursive
stepping holds eta_min from epoch 200 on (with warmup the second cosine over `epochs` is used).
"""
from __future__ import annotations

from bisect import bisect_right

from .._checks import (check_bool, check_choice, check_divisor, check_lr, check_number, check_numbers,
                       check_steps, shown)
from ._validate import check_last_epoch
from .parts import Schedule, anneal_cos, constant, with_restarts, with_warmup
from .tf import polynomial_curve
from .torch import ANNEALERS, one_cycle_curve

__all__ = ["make_ppocr_linear", "make_ppocr_cosine", "make_ppocr_step", "make_ppocr_piecewise",
           "make_ppocr_multi_step_decay", "make_ppocr_cyclical_cosine", "make_ppocr_one_cycle",
           "make_ppocr_const", "make_ppocr_decay_learning_rate", "make_ppocr_two_step_cosine"]

TWO_STEP_FIRST_EPOCHS = 200  # TwoStepCosine's first cosine is hard-coded to 200 epochs in PaddleOCR


def _steps_per_epoch(where, step_each_epoch, epochs=None, *, need_epochs=False):
    spe = check_steps(f"{where}.step_each_epoch", step_each_epoch, low=1)
    if epochs is None and not need_epochs:
        return spe, None
    return spe, check_steps(f"{where}.epochs", epochs, low=1)


def _warm(where, schedule, warmup_epoch, step_each_epoch, peak, last_epoch) -> Schedule:
    """PaddleOCR's `if warmup_epoch > 0: LinearWarmup(schedule, W, start_lr=0.0, end_lr=peak)`."""
    check_last_epoch(f"{where}.last_epoch", last_epoch)
    W = round(check_number(f"{where}.warmup_epoch", warmup_epoch, low=0) * step_each_epoch)
    if W <= 0:
        return schedule
    if peak <= 0:
        raise ValueError(f"{where}: warmup_epoch={shown(warmup_epoch)} needs a peak learning rate > 0 (paddle's "
                         f"LinearWarmup ramps from 0 up to it), got {shown(peak)}.")
    return with_warmup(schedule, W, 0.0, end_lr=peak, shift=True)


def _polynomial(where, learning_rate, epochs, step_each_epoch, end_lr, power_key, power, warmup_epoch, last_epoch):
    """paddle PolynomialDecay (no cycle) over T = epochs * step_each_epoch steps, with PaddleOCR's warmup;
    `power_key` is the power's name in the class's keys."""
    spe, n = _steps_per_epoch(where, step_each_epoch, epochs, need_epochs=True)
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    curve = polynomial_curve(lr, n * spe, check_lr(f"{where}.end_lr", end_lr),
                             check_number(f"{where}.{power_key}", power, low=0, low_open=True), False)
    return _warm(where, curve, warmup_epoch, spe, lr, last_epoch)


def make_ppocr_linear(learning_rate, epochs, step_each_epoch, end_lr=0.0, power=1.0, warmup_epoch=0,
                      last_epoch=-1) -> Schedule:
    """`Linear`: paddle PolynomialDecay over T = epochs * step_each_epoch steps.

    lr(t) = (learning_rate - end_lr) * (1 - min(t, T) / T) ** power + end_lr
    """
    return _polynomial("Linear", learning_rate, epochs, step_each_epoch, end_lr, "power", power, warmup_epoch,
                       last_epoch)


def make_ppocr_cosine(learning_rate, epochs, step_each_epoch, warmup_epoch=0, last_epoch=-1) -> Schedule:
    """`Cosine`: paddle CosineAnnealingDecay, T_max = epochs * step_each_epoch.

    lr(t) = learning_rate * (1 + cos(pi * t / T_max)) / 2   (periodic after T_max, as paddle's)
    """
    where = "Cosine"
    spe, n = _steps_per_epoch(where, step_each_epoch, epochs, need_epochs=True)
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    T = n * spe
    return _warm(where, lambda t: anneal_cos(lr, 0.0, t / T), warmup_epoch, spe, lr, last_epoch)


def make_ppocr_step(learning_rate, step_size, gamma, step_each_epoch, epochs=None, warmup_epoch=0,
                    last_epoch=-1) -> Schedule:
    """`Step`: paddle StepDecay every S = step_size * step_each_epoch steps: lr(t) = lr * gamma ** (t // S)."""
    where = "Step"
    spe, _ = _steps_per_epoch(where, step_each_epoch, epochs)
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    S = check_steps(f"{where}.step_size", step_size, low=1) * spe
    g = check_number(f"{where}.gamma", gamma, low=0, high=1, high_open=True)
    return _warm(where, lambda t: lr * g ** (t // S), warmup_epoch, spe, lr, last_epoch)


def make_ppocr_piecewise(decay_epochs, values, step_each_epoch, epochs=None, warmup_epoch=0, last_epoch=-1,
                         learning_rate=None) -> Schedule:
    """`Piecewise`: paddle PiecewiseDecay at boundaries b_i = decay_epochs[i] * step_each_epoch.

    lr(t) = values[number of boundaries <= t]  (the boundary step already has the next value)
    Warmup ramps to values[0]. PaddleOCR ignores `learning_rate`; here it must equal values[0] if given.
    """
    where = "Piecewise"
    spe, _ = _steps_per_epoch(where, step_each_epoch, epochs)
    bounds = [e * spe for e in check_numbers(f"{where}.decay_epochs", decay_epochs, min_len=1,
                                             increasing="strict", low=0)]
    vals = [float(v) for v in check_numbers(f"{where}.values", values, low=0)]
    if len(vals) != len(bounds) + 1:
        raise ValueError(f"{where}.values must have one more element than decay_epochs ({len(bounds)}), got "
                         f"{len(vals)}: {shown(list(values))}.")
    if learning_rate is not None and check_lr(f"{where}.learning_rate", learning_rate) != vals[0]:
        raise ValueError(f"{where}.learning_rate={shown(learning_rate)} conflicts with values[0]={shown(vals[0])}: "
                         f"Piecewise starts at values[0] (PaddleOCR silently ignores learning_rate).")
    return _warm(where, lambda t: vals[bisect_right(bounds, t)], warmup_epoch, spe, vals[0], last_epoch)


def make_ppocr_multi_step_decay(learning_rate, milestones, gamma, step_each_epoch, epochs=None, warmup_epoch=0,
                                last_epoch=-1) -> Schedule:
    """`MultiStepDecay`: paddle MultiStepDecay at m_i = milestones[i] * step_each_epoch.

    lr(t) = learning_rate * gamma ** (number of m_i <= t)
    """
    where = "MultiStepDecay"
    spe, _ = _steps_per_epoch(where, step_each_epoch, epochs)
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    marks = [m * spe for m in check_numbers(f"{where}.milestones", milestones, increasing="strict", low=0)]
    g = check_number(f"{where}.gamma", gamma, low=0, high=1, high_open=True)
    return _warm(where, lambda t: lr * g ** bisect_right(marks, t), warmup_epoch, spe, lr, last_epoch)


def make_ppocr_cyclical_cosine(learning_rate, cycle, step_each_epoch, epochs=None, eta_min=0.0, warmup_epoch=0,
                               last_epoch=-1) -> Schedule:
    """`CyclicalCosine`: a cosine restarted every C = round(cycle * step_each_epoch) steps.

    lr(t) = eta_min + (learning_rate - eta_min) * (1 + cos(pi * (t mod C) / C)) / 2
    PaddleOCR never passes eta_min on (its CyclicalCosineDecay always uses 0); here it is honoured.
    """
    where = "CyclicalCosine"
    spe, _ = _steps_per_epoch(where, step_each_epoch, epochs)
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    C = round(check_number(f"{where}.cycle", cycle, low=0, low_open=True) * spe)
    if C < 1:
        raise ValueError(f"{where}.cycle={shown(cycle)} epochs is round({shown(cycle)} * {spe}) = {C} steps; "
                         f"it must be at least 1 step.")
    floor = check_lr(f"{where}.eta_min", eta_min)
    curve = with_restarts(lambda t, length, i: anneal_cos(lr, floor, t / length), C, 1, where=where)
    return _warm(where, curve, warmup_epoch, spe, lr, last_epoch)


def make_ppocr_one_cycle(max_lr, epochs, step_each_epoch, anneal_strategy="cos", three_phase=False,
                         pct_start=0.3, div_factor=25.0, final_div_factor=1e4, warmup_epoch=0,
                         last_epoch=-1) -> Schedule:
    """`OneCycle`: PaddleOCR's OneCycleDecay, torch's OneCycleLR without momentum, over epochs * step_each_epoch
    steps (see torch_schedulers.one_cycle_curve): max_lr / div_factor -> max_lr -> that / final_div_factor.

    PaddleOCR never passes pct_start, div_factor or final_div_factor on (its OneCycleDecay always uses
    0.3, 25, 1e4); here they are honoured. Warmup ramps to max_lr, then drops to max_lr / div_factor where the
    cycle starts, as in PaddleOCR.
    """
    where = "OneCycle"
    spe, n = _steps_per_epoch(where, step_each_epoch, epochs, need_epochs=True)
    top = check_lr(f"{where}.max_lr", max_lr)
    anneal = ANNEALERS[check_choice(f"{where}.anneal_strategy", anneal_strategy, tuple(ANNEALERS))]
    three = check_bool(f"{where}.three_phase", three_phase)
    pct = check_number(f"{where}.pct_start", pct_start, low=0, high=1)
    if three and pct >= 0.5:
        raise ValueError(f"{where}.pct_start must be < 0.5 with three_phase=True, got {shown(pct_start)}.")
    initial = top / check_divisor(f"{where}.div_factor", div_factor)
    low = initial / check_divisor(f"{where}.final_div_factor", final_div_factor)
    points = (initial, top, initial, low) if three else (initial, top, low)
    curve = one_cycle_curve(n * spe, pct, three, points, anneal)
    return _warm(where, curve, warmup_epoch, spe, top, last_epoch)


def make_ppocr_const(learning_rate, step_each_epoch, epochs=None, warmup_epoch=0, last_epoch=-1) -> Schedule:
    """`Const`: lr(t) = learning_rate."""
    where = "Const"
    spe, _ = _steps_per_epoch(where, step_each_epoch, epochs)
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    return _warm(where, constant(lr), warmup_epoch, spe, lr, last_epoch)


def make_ppocr_decay_learning_rate(learning_rate, epochs, step_each_epoch, factor=0.9, end_lr=0.0,
                                   warmup_epoch=0, last_epoch=-1) -> Schedule:
    """`DecayLearningRate`: paddle PolynomialDecay with power = factor over T = epochs * step_each_epoch.

    lr(t) = (learning_rate - end_lr) * (1 - min(t, T) / T) ** factor + end_lr
    PaddleOCR hard-codes end_lr = 0 and never builds a warmup for this class; here both are honoured.
    """
    return _polynomial("DecayLearningRate", learning_rate, epochs, step_each_epoch, end_lr, "factor", factor,
                       warmup_epoch, last_epoch)


def make_ppocr_two_step_cosine(learning_rate, epochs, step_each_epoch, eta_min=0.0, warmup_epoch=0,
                               last_epoch=-1) -> Schedule:
    """`TwoStepCosine`: a cosine over T1 = 200 * step_each_epoch steps, then over T2 = epochs * step_each_epoch.

    t <= T1:  eta_min + (lr - eta_min) * (1 + cos(pi * t / T1)) / 2
    t >  T1:  with warmup_epoch > 0 paddle's LinearWarmup steps the decay by its closed form:
                eta_min + (lr - eta_min) * (1 + cos(pi * t / T2)) / 2
              without warmup PaddleOCR steps it recursively, and the recursion, having reached eta_min at
              T1, stays there until the first step s > T1 with (s - 1 - T2) mod 2*T2 == 0, from which on it
              follows the closed form again. Both are reproduced, so epochs > 200 without warmup keeps
              eta_min from epoch 200 to the end of the run, as in PaddleOCR.
    PaddleOCR never passes eta_min on (its TwoStepCosineDecay always uses 0); here it is honoured.
    """
    where = "TwoStepCosine"
    spe, n = _steps_per_epoch(where, step_each_epoch, epochs, need_epochs=True)
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    floor = check_lr(f"{where}.eta_min", eta_min)
    T1, T2 = TWO_STEP_FIRST_EPOCHS * spe, n * spe
    warmed = round(check_number(f"{where}.warmup_epoch", warmup_epoch, low=0) * spe) > 0
    resume = T1 + 1 + (T2 - T1) % (2 * T2)  # s above: where the recursion leaves eta_min

    def two_step(t):
        if t <= T1:
            return anneal_cos(lr, floor, t / T1)
        if not warmed and t < resume:
            return floor
        return anneal_cos(lr, floor, t / T2)

    return _warm(where, two_step, warmup_epoch, spe, lr, last_epoch)
