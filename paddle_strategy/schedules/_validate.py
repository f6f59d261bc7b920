"""Schedule-specific argument checks; the generic ones live in paddle_strategy._checks (re-exported here
for the old import path paddle_strategy.catalogue._validate)."""
from __future__ import annotations

from numbers import Integral

from .._checks import (check_bool, check_choice, check_divisor, check_lr, check_number, check_numbers,  # noqa: F401
                       check_steps, did_you_mean, shown)

__all__ = ["check_number", "check_lr", "check_steps", "check_bool", "check_choice", "check_numbers",
           "check_last_epoch", "check_divisor", "did_you_mean",
           "shown"]


def check_last_epoch(where: str, value) -> None:
    """PaddleOCR/paddle `last_epoch`: only -1. A pure schedule's state is the step: resume by restoring it."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value != -1:
        raise ValueError(f"{where} must be -1, got {shown(value)}: a catalogue schedule is a pure function of the "
                         f"step, so resume by restoring the step count instead of setting last_epoch.")
