"""Validation helpers: every error names the key, the value and what is allowed."""
from __future__ import annotations

import difflib
import math
import sys
from numbers import Integral, Real

SHOWN_LIMIT = 200  # characters of a user's value shown in an error message


class _Full(Exception):
    pass


def shown(value, limit: int = SHOWN_LIMIT) -> str:
    """repr(value) for an error message, cut after `limit` characters without building the whole repr.

    A YAML document of nested aliases (a "billion laughs") is a small object graph whose repr is
    exponentially long, and Python refuses to print an int of more than 4300 digits: both stay bounded here.
    """
    out, left = [], [limit]

    def emit(text):
        out.append(text[:left[0] + 1])
        left[0] -= len(text)
        if left[0] < 0:
            raise _Full

    def walk(v):
        if isinstance(v, dict):
            emit("{")
            for i, (k, x) in enumerate(v.items()):
                emit(", " if i else "")
                walk(k)
                emit(": ")
                walk(x)
            emit("}")
        elif isinstance(v, (list, tuple)) and type(v) in (list, tuple):
            emit("[" if isinstance(v, list) else "(")
            for i, x in enumerate(v):
                emit(", " if i else "")
                walk(x)
            emit("]" if isinstance(v, list) else ("," if len(v) == 1 else "") + ")")
        elif isinstance(v, str):
            emit(repr(v[:limit + 1]) if len(v) > limit else repr(v))
        elif isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 1000:
            emit(f"<an int of {int(v.bit_length() * math.log10(2)) + 1} digits>")
        else:
            emit(repr(v))

    try:
        walk(value)
    except _Full:
        return "".join(out)[:limit] + "..."
    return "".join(out)


def did_you_mean(name, choices) -> str:
    name = name[:SHOWN_LIMIT] if isinstance(name, str) else shown(name)  # difflib is quadratic in length
    by_lower = {str(c).lower(): str(c) for c in choices}
    cutoff = 0.6 if len(str(name)) > 3 else 0.5  # 'f2' -> 'f1' (one of two letters differs)
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=cutoff)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""


def unknown_key_error(where: str, key, allowed) -> ValueError:
    allowed = sorted(str(a) for a in allowed)
    return ValueError(
        f"{where}: unknown key {shown(key)}. Allowed keys: {', '.join(allowed)}.{did_you_mean(key, allowed)}"
    )


def check_number(where: str, value, *, low=None, high=None, low_open=False, high_open=False,
                 integer=False) -> float | int:
    """Return `value` if it is a finite (integer) number inside the given bounds, else raise."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, Integral if integer else Real):
        raise TypeError(f"{where} must be {kind}, got {shown(value)} ({type(value).__name__}).")
    if isinstance(value, Integral):
        if not integer and abs(value) > sys.float_info.max:  # exact as an int, but no float can hold it
            raise ValueError(f"{where} must be within the float range (about 1.8e308), got {shown(value)}.")
    elif not math.isfinite(value):
        raise ValueError(f"{where} must be finite, got {shown(value)}.")
    lo_bad = low is not None and (value <= low if low_open else value < low)
    hi_bad = high is not None and (value >= high if high_open else value > high)
    if lo_bad or hi_bad:
        lo = "" if low is None else f"{'(' if low_open else '['}{low}"
        hi = "" if high is None else f"{high}{')' if high_open else ']'}"
        if low is None:
            allowed = f"<{'' if high_open else '='} {high}"
        elif high is None:
            allowed = f">{'' if low_open else '='} {low}"
        else:
            allowed = f"in {lo}, {hi}"
        raise ValueError(f"{where} must be {allowed}, got {shown(value)}.")
    return int(value) if integer else float(value)


def merge_dict(where: str, defaults: dict, given, *, nested=()) -> dict:
    """Merge a user's partial dict into `defaults` (one level, plus the keys in `nested`)."""
    if given is None:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    if not isinstance(given, dict):
        raise TypeError(f"{where} must be a dict, got {shown(given)} ({type(given).__name__}).")
    merged = merge_dict(where, defaults, None)
    for key, value in given.items():
        if key not in defaults:
            raise unknown_key_error(where, key, defaults)
        if key in nested and isinstance(value, dict):
            for sub in value:
                if sub not in defaults[key]:
                    raise unknown_key_error(f"{where}[{shown(key)}]", sub, defaults[key])
            merged[key].update(value)
        else:
            merged[key] = value
    return merged
