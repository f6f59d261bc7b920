"""Schedule-specific argument checks; the generic ones live in paddle_strategy._checks."""
from __future__ import annotations

from numbers import Integral

from .._checks import shown

__all__ = ["check_last_epoch"]


def check_last_epoch(where: str, value) -> None:
    """PaddleOCR/paddle `last_epoch`: only -1. A pure schedule's state is the step: resume by restoring it."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value != -1:
        raise ValueError(f"{where} must be -1, got {shown(value)}: a catalogue schedule is a pure function of the "
                         f"step, so resume by restoring the step count instead of setting last_epoch.")
