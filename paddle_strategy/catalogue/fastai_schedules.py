"""fastai's fit policies (fastai/callback/schedule.py): one-cycle, flat-cos and SGDR.

fastai schedules on the fraction of training done, pos = step / total_steps (train_iter / n_iter), with its
annealer SchedCos(start, end)(p) = start + (1 + cos(pi * (1 - p))) * (end - start) / 2, which is
anneal_cos(start, end, p). fastai evaluates the phase positions in float32 (torch's default dtype); these
use float64, so values agree to about 1e-7 relative. From total_steps on, the value at pos = 1 is held.
"""
from __future__ import annotations

from ._validate import check_divisor, check_lr, check_number, check_steps, shown
from .parts import LRMomentum, Schedule, anneal_cos, with_restarts

__all__ = ["make_fit_one_cycle", "make_fit_flat_cos", "make_fit_sgdr", "combined_cos"]


def combined_cos(total_steps: int, pct: float, start: float, middle: float, end: float) -> Schedule:
    """fastai's combined_cos on steps: cosine start -> middle over pos in [0, pct), middle -> end after.

    pos = min(step / total_steps, 1);  pos < pct: anneal_cos(start, middle, pos / pct)
                                       else:      anneal_cos(middle, end, (pos - pct) / (1 - pct))
    """
    def two_cosines(step):
        pos = min(step / total_steps, 1.0)
        if pos < pct:
            return anneal_cos(start, middle, pos / pct)
        return anneal_cos(middle, end, (pos - pct) / (1 - pct)) if pct < 1 else middle

    return two_cosines


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
