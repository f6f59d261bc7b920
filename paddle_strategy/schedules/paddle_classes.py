"""Any `paddle.optimizer.lr` scheduler class, by class name, as a pure function of the step.

The class is instantiated once at construction (so paddle validates the arguments then) and replayed: lr(t)
is the instance's value after t `step()` calls, exactly as a loop that steps it once per update sees it,
recursive forms included. Values are cached as they are reached (8 bytes a step), so evaluating steps in
increasing order is O(1) amortized and any step can be asked for again in any order.
"""
from __future__ import annotations

import inspect
from array import array

import paddle.optimizer.lr as plr

from .._checks import (check_bool, check_lr, check_number, check_numbers, did_you_mean, missing_keys_error,
                       shown, unknown_key_error)

__all__ = ["PADDLE_CLASSES", "paddle_class_keys", "make_paddle_lr"]

# Not a function of the step alone; paddle_strategy.plateau.ReduceLROnPlateau covers plateaus.
_EXCLUDED = {"LRScheduler", "ReduceOnPlateau"}
_NOT_KEYS = {"self", "last_epoch", "verbose"}  # a pure schedule starts at step 0 and prints nothing

PADDLE_CLASSES = {name: getattr(plr, name) for name in plr.__all__
                  if name not in _EXCLUDED and isinstance(getattr(plr, name, None), type)
                  and issubclass(getattr(plr, name), plr.LRScheduler)}


def paddle_class_keys(class_name: str) -> dict:
    """{key: required?} of a paddle scheduler class's constructor, without self/last_epoch/verbose."""
    cls = _resolve(class_name)
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default is inspect.Parameter.empty for p in params
            if p.name not in _NOT_KEYS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _resolve(class_name):
    name = class_name[len("paddle."):] if isinstance(class_name, str) and class_name.startswith("paddle.") \
        else class_name
    if name not in PADDLE_CLASSES:
        hint = " (it is metric-driven: use paddle_strategy.plateau.ReduceLROnPlateau)" if name == "ReduceOnPlateau" else ""
        raise ValueError(f"paddle LR class {shown(class_name)} is not available{hint}. Allowed: "
                         f"{', '.join(sorted(PADDLE_CLASSES))}.{did_you_mean(name, PADDLE_CLASSES)}")
    return PADDLE_CLASSES[name]


def _check_keys(where, class_name, kwargs):
    keys = paddle_class_keys(class_name)
    for key, value in kwargs.items():
        if key not in keys:
            why = " (a pure schedule always starts at step 0; resume by restoring the step)" \
                if key == "last_epoch" else ""
            raise unknown_key_error(where, key, keys, value=value, why=why)
    missing = [k for k, required in keys.items() if required and k not in kwargs]
    if missing:
        raise missing_keys_error(where, missing, keys)


def _is_lr(key):
    return "learning_rate" in key or key.endswith("_lr") or key == "eta_min"


def _check_values(where, class_name, kwargs):
    """Type and range checks from the class's annotations, before paddle sees the values: paddle takes
    `learning_rate=True` as 1.0 and NaN or inf learning rates without a word."""
    params = inspect.signature(_resolve(class_name).__init__).parameters
    for key, value in kwargs.items():
        note, at = params[key].annotation, f"{where}.{key}"
        if note in ("float", "float | LRScheduler"):
            if isinstance(value, dict) and note != "float":
                continue  # a nested LR class, checked when it is built
            check_lr(at, value) if _is_lr(key) else check_number(at, value)
        elif note == "int" or (note == "int | None" and value is not None):
            check_number(at, value, integer=True)
        elif note == "bool":
            check_bool(at, value)
        elif note in ("Sequence[int]", "Sequence[float]"):
            check_numbers(at, value, integer=note == "Sequence[int]", low=0 if key == "values" else None)


def _instantiate(class_name, kwargs):
    """A fresh paddle instance; a nested {'name': ..., ...} learning_rate (LinearWarmup) is built too."""
    where = f"paddle.{_resolve(class_name).__name__}"
    _check_keys(where, class_name, kwargs)
    _check_values(where, class_name, kwargs)
    args = dict(kwargs)
    inner = args.get("learning_rate")
    if isinstance(inner, dict):
        inner = dict(inner)
        if "name" not in inner:
            raise ValueError(f"{where}.learning_rate as a dict needs a 'name' key (a paddle LR class), got "
                             f"{shown(kwargs['learning_rate'])}.")
        args["learning_rate"] = _instantiate(inner.pop("name"), inner)
    try:
        return _resolve(class_name)(**args)
    except (TypeError, ValueError, AssertionError, ZeroDivisionError) as err:
        raise ValueError(f"{where}({', '.join(f'{k}={shown(v)}' for k, v in kwargs.items())}): "
                         f"{str(err).strip() or type(err).__name__}") from err


class _Replay:
    """lr(t) = the paddle instance's learning rate after t step() calls, cached as reached. Where paddle
    refuses to step further (OneCycleLR after total_steps) the last value is held."""

    def __init__(self, instance, description):
        self._instance = instance
        self._values = array("d", [float(instance.last_lr)])
        self._ended = False
        self.description = description

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"{self.description}: step must be >= 0, got {shown(step)}.")
        values = self._values
        while len(values) <= step and not self._ended:
            try:
                self._instance.step()
            except ValueError:
                self._ended = True
                break
            values.append(float(self._instance.last_lr))
        return values[min(step, len(values) - 1)]

    def __repr__(self):
        return f"<{self.description} replayed, {len(self._values)} steps cached>"


def make_paddle_lr(class_name: str, **kwargs):
    """The paddle.optimizer.lr class `class_name` ('CosineAnnealingDecay' or 'paddle.CosineAnnealingDecay'),
    built with its own keyword arguments (LinearWarmup's learning_rate may be a nested {'name': ..., ...}),
    as a pure schedule: lr(t) = its value after t step() calls."""
    instance = _instantiate(class_name, kwargs)
    return _Replay(instance, f"paddle.{type(instance).__name__}")
