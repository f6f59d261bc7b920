"""The validation vocabulary: every error names the key as the user wrote it, its value (bounded by `shown`)
and what is allowed, with "did you mean" for a misspelt key or choice.

Keys of a mapping: check_keys (unknown / missing), unknown_key_error, missing_keys_error, merge_dict.
Messages: shown (a value, bounded), described (what a value is), with_context (an exception, reworded).
Values: check_number (check_lr, check_divisor, check_steps), check_bool, check_choice, check_numbers,
check_strings, expand_path. Every module of the package validates through these, so one kind of mistake reads
the same wherever it is made.
"""
from __future__ import annotations

import difflib
import math
import os
import re
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


def described(value) -> str:
    """What a value is, for an error message: `Tensor float32 [8, 2]`, `tuple of 2 (Tensor ..., ...)`,
    `float 0.5`."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a Tensor or an array
        return f"{type(value).__name__} {str(value.dtype).replace('paddle.', '')} {list(value.shape)}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(described(v) for v in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"{type(value).__name__} of {len(value)} ({inner})"
    if isinstance(value, dict):
        return f"dict with keys {shown(sorted(map(str, value)), 80)}"
    return f"{type(value).__name__} {shown(value, 60)}"


def with_context(exc: BaseException, message: str) -> BaseException:
    """A new exception saying `message`, of exc's type when that type takes one message as it is (else
    RuntimeError), to be raised `from exc`: the error names what failed and keeps the type callers catch."""
    try:
        new = type(exc)(message)
    except Exception:
        return RuntimeError(message)
    return new if str(new) == message else RuntimeError(message)


def did_you_mean(name, choices) -> str:
    name = name[:SHOWN_LIMIT] if isinstance(name, str) else shown(name)  # difflib is quadratic in length
    by_lower = {str(c).lower(): str(c) for c in choices}
    cutoff = 0.6 if len(str(name)) > 3 else 0.5  # 'f2' -> 'f1' (one of two letters differs)
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=cutoff)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""


_NO_VALUE = object()


def unknown_key_error(where: str, key, allowed, *, value=_NO_VALUE, why: str = "") -> ValueError:
    """`{where}: unknown key 'k' (value v){why}. Allowed keys: a, b. Did you mean 'a'?` (value when given)."""
    allowed = sorted(str(a) for a in allowed)
    given = "" if value is _NO_VALUE else f" (value {shown(value)})"
    return ValueError(f"{where}: unknown key {shown(key)}{given}{why}. Allowed keys: {', '.join(allowed)}."
                      f"{did_you_mean(key, allowed)}")


def missing_keys_error(where: str, missing, allowed, *, hint: str = "") -> ValueError:
    """`{where}: missing key(s) 'a', 'b'. Allowed keys: a, b, c.` and an optional hint after it."""
    allowed = sorted(str(a) for a in allowed)
    return ValueError(f"{where}: missing key(s) {', '.join(map(repr, missing))}. Allowed keys: {', '.join(allowed)}."
                      f"{' ' + hint if hint else ''}")


def check_keys(where: str, given, allowed, required=()) -> dict:
    """Return `given` if it is a mapping whose keys are all in `allowed` and include every `required` one;
    else raise TypeError (not a mapping) or ValueError (the first unknown key, with its value and did-you-mean;
    or every missing key)."""
    if not isinstance(given, dict):
        raise TypeError(f"{where} must be a mapping, got {shown(given)} ({type(given).__name__}).")
    allowed = list(allowed)
    for key, value in given.items():
        if key not in allowed:
            raise unknown_key_error(where, key, allowed, value=value)
    missing = [k for k in required if k not in given]
    if missing:
        raise missing_keys_error(where, missing, allowed)
    return given


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
    """True or False only: 1, "yes" and None are refused (YAML's true / false load as bool)."""
    if not isinstance(value, bool):
        raise TypeError(f"{where} must be True or False, got {shown(value)} ({type(value).__name__}).")
    return value


def check_choice(where: str, value, allowed) -> str:
    """One of the strings in `allowed` (exact, case-sensitive), with did-you-mean."""
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


def check_strings(where: str, values, *, non_empty: bool = False) -> list:
    """A list/tuple of strings (a lone string is refused: it would be taken letter by letter); returns a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{where} must be a list of strings, got {shown(values)} ({type(values).__name__}).")
    for i, v in enumerate(values):
        if not isinstance(v, str) or (non_empty and not v):
            raise TypeError(f"{where}[{i}] must be a {'non-empty ' if non_empty else ''}string, got {shown(v)}.")
    return list(values)


def check_path(where: str, value, what: str = "a non-empty path") -> str:
    """A non-empty path string, with ~ and $NAME expanded (expand_path)."""
    if not isinstance(value, str) or not value.strip():
        raise (TypeError if not isinstance(value, str) else ValueError)(f"{where} must be {what}, got {shown(value)}.")
    return expand_path(where, value)


def expand_path(where: str, value):
    """A path with `~` / `~user` and environment variables ($NAME, ${NAME}) expanded, as a shell would; a
    variable that is not set or a user that does not exist is an error naming `where` (without it `~/runs` and
    `$HOME/runs` became folders named `~` and `$HOME`). Anything but a string is returned as it is."""
    if not isinstance(value, str):
        return value
    for match in re.finditer(r"\$(\w+|\{([^}]*)\})", value):
        name = match.group(2) if match.group(2) is not None else match.group(1)
        if name not in os.environ:
            raise ValueError(f"{where}: {shown(value)} uses the environment variable {match.group(0)}, which is not "
                             f"set (paths expand ~ and $NAME as a shell does).")
    path = os.path.expanduser(value)
    if path.startswith("~"):
        raise ValueError(f"{where}: {shown(value)} starts with {path.split(os.sep)[0]}, but there is no such user "
                         f"(paths expand ~ and $NAME as a shell does).")
    return os.path.expandvars(path)


def merge_dict(where: str, defaults: dict, given, *, nested=()) -> dict:
    """Merge a user's partial dict into `defaults` (one level, plus the keys in `nested`)."""
    if given is None:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    if not isinstance(given, dict):
        raise TypeError(f"{where} must be a dict, got {shown(given)} ({type(given).__name__}).")
    merged = merge_dict(where, defaults, None)
    for key, value in given.items():
        if key not in defaults:
            raise unknown_key_error(where, key, defaults, value=value)
        if key in nested and isinstance(value, dict):
            for sub, sub_value in value.items():
                if sub not in defaults[key]:
                    raise unknown_key_error(f"{where}[{shown(key)}]", sub, defaults[key], value=sub_value)
            merged[key].update(value)
        else:
            merged[key] = value
    return merged
