"""Argument checks for the catalogue: every error names the key, the value and what is allowed."""
from __future__ import annotations

import math
from numbers import Integral, Real

from .._checks import check_number, did_you_mean, shown

__all__ = ["check_number", "check_lr", "check_steps", "check_bool", "check_choice", "check_numbers",
           "check_last_epoch", "check_divisor", "did_you_mean",
           "shown"]


def check_lr(where: str, value) -> float:
    """A learning rate (or momentum): a finite number >= 0."""
    return check_number(where, value, low=0)


def check_divisor(where: str, value) -> float:
    """A factor a peak learning rate is divided by (fastai's div / div_final, torch's div_factor): a finite
    number >= 1; below 1 the schedule would start or end above its own peak, and 1e-300 makes it 1e300 times it."""
    value = check_number(where, value, low=0, low_open=True)
    if value < 1:
        raise ValueError(f"{where} must be >= 1 (the peak learning rate is divided by it; {value:g} would put the "
                         f"schedule above its own peak), got {value!r}.")
    return value


def check_steps(where: str, value, *, low: int = 0) -> int:
    """A count of steps, epochs or cycles: an integer >= `low`."""
    return check_number(where, value, low=low, integer=True)


def check_bool(where: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{where} must be True or False, got {shown(value)} ({type(value).__name__}).")
    return value


def check_choice(where: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{where} must be one of {', '.join(repr(a) for a in allowed)}, got {shown(value)}."
                         f"{did_you_mean(value, allowed)}")
    return value


def check_numbers(where: str, values, *, min_len: int = 0, increasing: str = "", low=None,
                  integer: bool = False) -> list:
    """A list/tuple of numbers; `increasing` is '' (any order), 'strict' or 'weak' (duplicates allowed)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{where} must be a list of numbers, got {shown(values)} ({type(values).__name__}).")
    if len(values) < min_len:
        raise ValueError(f"{where} must have at least {min_len} element(s), got {shown(list(values))}.")
    kind = Integral if integer else Real
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):
            raise TypeError(f"{where}[{i}] must be a finite {'integer' if integer else 'number'}, "
                            f"got {shown(v)} in {shown(list(values))}.")
        if low is not None and v < low:
            raise ValueError(f"{where}[{i}] must be >= {low}, got {shown(v)} in {shown(list(values))}.")
        out.append(int(v) if integer else v)
    for a, b in zip(out, out[1:]):
        if (increasing == "strict" and not a < b) or (increasing == "weak" and not a <= b):
            adverb = "strictly " if increasing == "strict" else ""
            raise ValueError(f"{where} must be {adverb}increasing, got {shown(list(values))}.")
    return out


def check_last_epoch(where: str, value) -> None:
    """PaddleOCR/paddle `last_epoch`: only -1. A pure schedule's state is the step: resume by restoring it."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value != -1:
        raise ValueError(f"{where} must be -1, got {shown(value)}: a catalogue schedule is a pure function of the "
                         f"step, so resume by restoring the step count instead of setting last_epoch.")
