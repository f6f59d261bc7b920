"""fastai's schedules (fastai/callback/schedule.py): its annealers, combine_scheds, and the fit policies built
from them (one-cycle, flat-cos, SGDR).

fastai schedules on the fraction of training done, pos = step / total_steps (train_iter / n_iter), with the
annealers SchedLin, SchedCos(start, end)(p) = start + (1 + cos(pi * (1 - p))) * (end - start) / 2 (which is
anneal_cos(start, end, p)), SchedNo, SchedExp and SchedPoly. From total_steps on, the value at pos = 1 is held.

float32: fastai's combine_scheds keeps the cumulative phase boundaries in a float32 tensor and computes the
position inside a phase in float32; these use float64. Measured against that float32 arithmetic written out
(tools/fastai_float32_gap.py: every T from 10 to 2000 in steps of 7, and 5000, 10000;
tests/test_home_libraries.py checks the worst cases): fit_one_cycle differs by up to 2.9e-5 relative
(T = 1424, step 1422) and fit_flat_cos by up to 5.8e-5 relative (T = 1711, step 1710), both in the last steps
of the cosine tail, where the LR is near lr / div_final; in absolute terms at most 9.4e-8 (one-cycle) and
1.9e-7 (flat-cos) of the peak LR.
fit_sgdr (cycle_len 1-2, cycle_mult 2-3, 10-391 batches per epoch): at most 3e-7 of lr_max absolute, up
to 7e-4 relative in the last steps of a cycle, where the LR is ~1e-6 of lr_max. And where a float32 cycle
boundary rounds above the exact one, fastai restarts one batch late: fit_sgdr(3 cycles, cycle_len 1,
cycle_mult 2) with 50 batches per epoch trains step 150 at ~8e-15 (the end of cycle 1) and restarts at step
151; here the restart is at step 150, the exact boundary, deliberately (the same with 10, 64, 100, 391
batches per epoch, and with cycle_len 2; with 4 cycles also at the third boundary, step 350 at 50 per epoch).
"""
from __future__ import annotations

from itertools import accumulate
from typing import Callable, Sequence

from .._checks import (check_choice, check_divisor, check_keys, check_lr, check_number, check_numbers, check_steps,
                       shown)
from .parts import (LRMomentum, Schedule, anneal_cos, anneal_exp, anneal_linear, anneal_poly, phases,
                    with_restarts)

__all__ = ["make_fit_one_cycle", "make_fit_flat_cos", "make_fit_sgdr", "make_combine_scheds", "make_sched_exp",
           "make_sched_poly", "combine_phases", "combined_cos", "fastai_annealer"]

# fastai's annealers by their short name; "SchedCos" etc. are accepted too (see fastai_annealer).
_ANNEALERS = {"lin": anneal_linear, "cos": anneal_cos, "no": lambda start, end, pct: start, "exp": anneal_exp,
              "poly": anneal_poly}


def fastai_annealer(where: str, spec) -> Callable[[float], float]:
    """One phase for combine_scheds: a callable pct -> value (Python), or a dict
    {name: lin | cos | no | exp | poly (or SchedLin, SchedCos, SchedNo, SchedExp, SchedPoly), start, end, power}:
    lin start + (end - start) p; cos anneal_cos; no start; exp start * (end / start) ** p (start > 0);
    poly start + (end - start) * p ** power."""
    if callable(spec):
        return spec
    if not isinstance(spec, dict) or "name" not in spec:
        raise TypeError(f"{where} must be a callable pct -> value or a dict {{name: lin | cos | no | exp | poly, "
                        f"start, end[, power]}}, got {spec!r}.")
    spec = dict(spec)
    name = spec.pop("name")
    short = name[len("Sched"):].lower() if isinstance(name, str) and name.startswith("Sched") else name
    if isinstance(short, bool):  # YAML 1.1 reads a bare `no` as False
        raise ValueError(f"{where}.name must be one of {', '.join(map(repr, _ANNEALERS))}, got {short!r} (YAML reads "
                         f"an unquoted no as false: write 'no' or SchedNo).")
    check_choice(f"{where}.name", short, tuple(_ANNEALERS))
    allowed = {"start", "end"} | ({"power"} if short == "poly" else set())
    required = {"start"} | ({"end"} if short != "no" else set()) | ({"power"} if short == "poly" else set())
    check_keys(f"{where} ({name!r})", spec, allowed, required=sorted(required))
    start = check_number(f"{where}.start", spec["start"], low=0, low_open=short == "exp")
    end = check_lr(f"{where}.end", spec.get("end", start))
    anneal = _ANNEALERS[short]
    if short == "poly":
        power = check_number(f"{where}.power", spec["power"], low=0, low_open=True)
        return lambda pct: anneal(start, end, pct, power)
    return lambda pct: anneal(start, end, pct)


def combine_phases(total_steps: int, pcts: Sequence[float], pieces: Sequence[Callable[[float], float]]) -> Schedule:
    """fastai's combine_scheds on steps: pos = min(step / total_steps, 1); phase i covers [c_i, c_{i+1}), c the
    cumulative pcts (c_0 = 0, c_n = 1), and gives pieces[i]((pos - c_i) / (c_{i+1} - c_i)) (parts.phases).

    A phase of width 0 is never used (fastai: the same, except that a last phase of width 0 gives NaN at
    pos = 1; here the last phase with a width is evaluated at 1 instead).
    """
    bounds = list(accumulate(pcts, initial=0.0))
    last = max(i for i, w in enumerate(pcts) if w > 0)
    bounds[last + 1:] = [1.0] * (len(bounds) - last - 1)  # the run ends at exactly pos = 1
    phased = phases(bounds, pieces, at_bound="next")
    return lambda step: phased(min(step / total_steps, 1.0))


def combined_cos(total_steps: int, pct: float, start: float, middle: float, end: float) -> Schedule:
    """fastai's combined_cos on steps: cosine start -> middle over pos in [0, pct), middle -> end after."""
    return combine_phases(total_steps, [pct, 1.0 - pct],
                          [lambda p: anneal_cos(start, middle, p), lambda p: anneal_cos(middle, end, p)])


def make_combine_scheds(pcts, scheds, total_steps) -> Schedule:
    """fastai combine_scheds(pcts, scheds) over a run of total_steps updates (see combine_phases).

    pcts: phase widths >= 0 summing to 1 (within 1e-9; fastai asserts an exact float sum of 1.0);
    scheds: one phase each, a callable pct -> lr or a dict as fastai_annealer takes, e.g.
    [{name: lin, start: 1e-4, end: 1e-2}, {name: exp, start: 1e-2, end: 1e-5}].
    """
    where = "combine_scheds"
    T = check_steps(f"{where}.total_steps", total_steps, low=1)
    widths = check_numbers(f"{where}.pcts", pcts, min_len=1, low=0)
    if abs(sum(widths) - 1.0) > 1e-9 or not any(widths):
        raise ValueError(f"{where}.pcts must sum to 1, got {list(pcts)!r} (sum {sum(widths)!r}).")
    if isinstance(scheds, (str, bytes, dict)) or not isinstance(scheds, (list, tuple)) or len(scheds) != len(widths):
        raise ValueError(f"{where}.scheds must be a list of {len(widths)} phase(s), one per pct, got {scheds!r}.")
    pieces = [fastai_annealer(f"{where}.scheds[{i}]", s) for i, s in enumerate(scheds)]
    return combine_phases(T, widths, pieces)


def make_sched_exp(start, end, total_steps) -> Schedule:
    """fastai SchedExp over the run: start * (end / start) ** pos, pos = min(step / total_steps, 1); start > 0."""
    phase = fastai_annealer("sched_exp", {"name": "exp", "start": start, "end": end})
    T = check_steps("sched_exp.total_steps", total_steps, low=1)
    return lambda step: phase(min(step / T, 1.0))


def make_sched_poly(start, end, power, total_steps) -> Schedule:
    """fastai SchedPoly over the run: start + (end - start) * pos ** power, pos = min(step / total_steps, 1)."""
    phase = fastai_annealer("sched_poly", {"name": "poly", "start": start, "end": end, "power": power})
    T = check_steps("sched_poly.total_steps", total_steps, low=1)
    return lambda step: phase(min(step / T, 1.0))


def make_fit_one_cycle(lr_max, total_steps, div=25.0, div_final=1e5, pct_start=0.25,
                       moms=(0.95, 0.85, 0.95)) -> LRMomentum:
    """fit_one_cycle: lr combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final), momentum
    combined_cos(pct_start, *moms). Returns an LRMomentum (`.momentum` is None when moms is None)."""
    where = "fit_one_cycle"
    top = check_lr(f"{where}.lr_max", lr_max)
    T = check_steps(f"{where}.total_steps", total_steps, low=1)
    d = check_divisor(f"{where}.div", div)
    d_final = check_divisor(f"{where}.div_final", div_final)
    pct = check_number(f"{where}.pct_start", pct_start, low=0, high=1)
    lr = combined_cos(T, pct, top / d, top, top / d_final)
    if moms is None:
        return LRMomentum(lr)
    if isinstance(moms, (str, bytes)) or not isinstance(moms, (list, tuple)) or len(moms) != 3:
        raise ValueError(f"{where}.moms must be three momentums (start, middle, end) or None, got {shown(moms)}.")
    m = [check_number(f"{where}.moms[{i}]", v, low=0, high=1) for i, v in enumerate(moms)]
    return LRMomentum(lr, combined_cos(T, pct, *m))


def make_fit_flat_cos(lr, total_steps, div_final=1e5, pct_start=0.75) -> Schedule:
    """fit_flat_cos: lr flat until pos = pct_start, then a cosine down to lr / div_final."""
    where = "fit_flat_cos"
    peak = check_lr(f"{where}.lr", lr)
    T = check_steps(f"{where}.total_steps", total_steps, low=1)
    d_final = check_divisor(f"{where}.div_final", div_final)
    pct = check_number(f"{where}.pct_start", pct_start, low=0, high=1)
    return combined_cos(T, pct, peak, peak, peak / d_final)


def make_fit_sgdr(lr_max, n_cycles, cycle_len_epochs, cycle_mult=2, *, steps_per_epoch, restart_warmup_steps=0,
                  restart_warmup_start_lr=0.0) -> Schedule:
    """fit_sgdr: n_cycles cosines from lr_max to 0, cycle i lasting cycle_len_epochs * cycle_mult**i epochs.

    At offset t of a cycle of L steps: anneal_cos(lr_max, 0, t / L); the run has
    cycle_len_epochs * (cycle_mult**n_cycles - 1) / (cycle_mult - 1) epochs (n_cycles * cycle_len_epochs with
    cycle_mult = 1, which fastai cannot do: it divides by cycle_mult - 1), and 0 is held after it.
    `restart_warmup_steps` (not in fastai) ramps linearly into every cycle (see parts.with_restarts).
    """
    where = "fit_sgdr"
    top = check_lr(f"{where}.lr_max", lr_max)
    n = check_steps(f"{where}.n_cycles", n_cycles, low=1)
    first = check_steps(f"{where}.cycle_len_epochs", cycle_len_epochs, low=1)
    mult = check_steps(f"{where}.cycle_mult", cycle_mult, low=1)
    spe = check_steps(f"{where}.steps_per_epoch", steps_per_epoch, low=1)
    total = first * spe * (n if mult == 1 else (mult ** n - 1) // (mult - 1))
    cycles = with_restarts(lambda t, length, i: anneal_cos(top, 0.0, t / length), first * spe, mult,
                           restart_warmup_steps=restart_warmup_steps,
                           restart_warmup_start_lr=restart_warmup_start_lr, where=where)
    return lambda step: cycles(step) if step < total else 0.0
