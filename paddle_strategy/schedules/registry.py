"""Every schedule by name: SCHEDULES and make_schedule, where every key is checked before anything is built,
and chained_scheduler, which builds its parts by name."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from . import fastai as fa
from . import hf
from . import keras_bert as kb
from . import ppocr
from . import tf
from . import torch as th
from .._checks import (check_bool, check_lr, check_steps, did_you_mean, missing_keys_error, shown,
                       unknown_key_error)
from .paddle_classes import PADDLE_CLASSES, make_paddle_lr, paddle_class_keys
from .parts import Schedule, with_floor, with_warmup

__all__ = ["SCHEDULES", "GENERIC_KEYS", "make_schedule", "make_run_schedule", "schedule_keys",
           "make_chained_scheduler"]

# make_schedule's own keys, applied around any schedule that has no parameter of the same name.
GENERIC_KEYS = {
    "warmup_steps": "linear warmup over this many steps before the schedule (parts.with_warmup)",
    "warmup_start_lr": "where that warmup starts (default 0.0)",
    "warmup_shift": "True (default): the schedule starts after warmup, as paddle's LinearWarmup; False: warmup "
                    "overwrites the schedule's first steps",
    "min_lr": "floor: lr = max(schedule(step), min_lr) (parts.with_floor)",
}


def _epochs_of_run(total_steps, steps_per_epoch):
    if total_steps is None or steps_per_epoch is None:
        return None
    if total_steps % steps_per_epoch:
        raise ValueError(f"PaddleOCR schedules run whole epochs: total_steps={total_steps} is not a multiple of "
                         f"steps_per_epoch={steps_per_epoch}; pass epochs= explicitly.")
    return total_steps // steps_per_epoch


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., Schedule]
    keys: dict                                   # key -> required?
    context: dict = field(default_factory=dict)  # key -> f(total_steps, steps_per_epoch), filled when not given
    own_warmup: tuple = ()                       # the schedule's own warmup keys: no generic warmup on top


def _keys_of(factory) -> dict:
    params = inspect.signature(factory).parameters.values()
    return {p.name: p.default is inspect.Parameter.empty for p in params
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _entry(factory, context=None, own_warmup=()):
    return _Entry(factory, _keys_of(factory), dict(context or {}), tuple(own_warmup))


# Schedules that set the LR as torch's LambdaLR does (base_lr * lambda(epoch)) rather than multiply it.
_SETS_LR = ("epoch_table", "LambdaDecay", "paddle.LambdaDecay")


def make_chained_scheduler(learning_rate, schedules, total_steps=None, steps_per_epoch=None) -> Schedule:
    """torch ChainedScheduler: each scheduler.step() steps its schedulers in order, each updating the LR that
    the ones before it left.

    Each entry of `schedules` is a schedule that has a `learning_rate` key, given as {name: ..., its other
    keys} (YAML) or a callable step -> factor (Python); a dict is built with learning_rate = 1.0 (its value is
    its factor) and this run's total_steps / steps_per_epoch (a key of that name must match the run, as in
    make_run_schedule); it must not set learning_rate itself (the chain's is the only base).
    - torch's multiplicative schedulers (StepLR, MultiStepLR, ExponentialLR, ConstantLR, LinearLR,
      MultiplicativeLR; here callables too) multiply the LR by their own change, so torch's recursion gives
          lr(step) = learning_rate * prod_i factor_i(step).
    - epoch_table and LambdaDecay are torch's LambdaLR: its step() sets base_lr * factor(epoch), overwriting
      what the schedulers before it did. Last in the chain: lr(step) = learning_rate * its factor(step), and
      the schedules before it have no effect, as in torch. A schedule after it is refused: it would multiply
      in only its change since the previous scheduler.step(), which depends on whether torch is stepped per
      epoch or per batch.
    - A schedule whose torch recursion reads the LR the others set (CosineAnnealingLR) contributes its
      closed-form factor, which differs from torch.
    """
    where = "chained_scheduler"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    if isinstance(schedules, (str, bytes, dict)) or not isinstance(schedules, (list, tuple)) or not schedules:
        raise TypeError(f"{where}.schedules must be a non-empty list of schedules ({{name: ..., keys}} or "
                        f"callables step -> factor), got {schedules!r}.")
    factors, setter = [], None
    for i, sub in enumerate(schedules):
        at = f"{where}.schedules[{i}]"
        if setter is not None:
            raise ValueError(f"{at} comes after {where}.schedules[{setter[0]}] ({setter[1]!r}), which sets the LR "
                             f"as torch's LambdaLR does (learning_rate x its factor, overwriting the schedulers "
                             f"before it); a scheduler after it would multiply in only its change at each "
                             f"scheduler.step(), which depends on whether torch is stepped per epoch or per batch. "
                             f"Put {setter[1]!r} last, or fold the other factors into its own.")
        if callable(sub):
            factors.append(sub)
            continue
        if not isinstance(sub, dict) or "name" not in sub:
            raise TypeError(f"{at} must be {{name: <schedule>, its keys}} or a callable step -> factor, got {sub!r}.")
        sub = dict(sub)
        name = sub.pop("name")
        try:
            has_lr = "learning_rate" in schedule_keys(name)
        except ValueError as exc:
            raise ValueError(f"{at}: {exc}") from None
        if not has_lr:
            raise ValueError(f"{at}: schedule {name!r} has no learning_rate key, so it has no factor to chain "
                             f"(it sets the LR itself, as OneCycleLR / CyclicLR do in torch).")
        if "learning_rate" in sub:
            raise ValueError(f"{at}: learning_rate={sub['learning_rate']!r} is not allowed: the chain's "
                             f"learning_rate is the base of every factor (a chained schedule runs at 1.0).")
        try:
            built = make_run_schedule(name, {**sub, "learning_rate": 1.0}, total_steps=total_steps,
                                      steps_per_epoch=steps_per_epoch)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{at}: {exc}") from None
        if getattr(built, "momentum", None) is not None:
            raise ValueError(f"{at}: schedule {name!r} also cycles momentum, which a chain of factors cannot "
                             f"combine.")
        factors.append(built)
        if name in _SETS_LR:
            setter = (i, name)
    if setter is not None:
        last = factors[-1]
        return lambda step: lr * last(step)

    def chained(step):
        value = lr
        for factor in factors:
            value *= factor(step)
        return value

    return chained


_SPE = lambda total, spe: spe  # noqa: E731
_TOTAL = lambda total, spe: total  # noqa: E731
_PPOCR = {"step_each_epoch": _SPE, "epochs": _epochs_of_run}

_ENTRIES: dict[str, _Entry] = {
    # PaddleOCR classes, by class name, with PaddleOCR's keys
    "Linear": _entry(ppocr.make_ppocr_linear, _PPOCR, ("warmup_epoch",)),
    "Cosine": _entry(ppocr.make_ppocr_cosine, _PPOCR, ("warmup_epoch",)),
    "Step": _entry(ppocr.make_ppocr_step, _PPOCR, ("warmup_epoch",)),
    "Piecewise": _entry(ppocr.make_ppocr_piecewise, _PPOCR, ("warmup_epoch",)),
    "MultiStepDecay": _entry(ppocr.make_ppocr_multi_step_decay, _PPOCR, ("warmup_epoch",)),
    "CyclicalCosine": _entry(ppocr.make_ppocr_cyclical_cosine, _PPOCR, ("warmup_epoch",)),
    "OneCycle": _entry(ppocr.make_ppocr_one_cycle, _PPOCR, ("warmup_epoch",)),
    "Const": _entry(ppocr.make_ppocr_const, _PPOCR, ("warmup_epoch",)),
    "DecayLearningRate": _entry(ppocr.make_ppocr_decay_learning_rate, _PPOCR, ("warmup_epoch",)),
    "TwoStepCosine": _entry(ppocr.make_ppocr_two_step_cosine, _PPOCR, ("warmup_epoch",)),
    # TensorFlow
    "piecewise_constant": _entry(tf.make_piecewise_constant),
    "exponential_decay": _entry(tf.make_exponential_decay),
    "natural_exp_decay": _entry(tf.make_natural_exp_decay),
    "inverse_time_decay": _entry(tf.make_inverse_time_decay),
    "polynomial_decay": _entry(tf.make_polynomial_decay),
    "cosine_decay": _entry(tf.make_cosine_decay),
    "linear_cosine_decay": _entry(tf.make_linear_cosine_decay),
    "noisy_linear_cosine_decay": _entry(tf.make_noisy_linear_cosine_decay),
    "cosine_decay_restarts": _entry(tf.make_cosine_decay_restarts),
    # PyTorch
    "step_lr": _entry(th.make_step_lr, {"steps_per_epoch": _SPE}),
    "multi_step_lr": _entry(th.make_multi_step_lr, {"steps_per_epoch": _SPE}),
    "epoch_table": _entry(th.make_epoch_table, {"steps_per_epoch": _SPE}),
    "cosine_annealing_lr": _entry(th.make_cosine_annealing_lr, {"steps_per_epoch": _SPE}),
    "cosine_annealing_warm_restarts": _entry(th.make_cosine_annealing_warm_restarts, {"steps_per_epoch": _SPE}),
    "one_cycle_lr": _entry(th.make_one_cycle_lr, {"total_steps": _TOTAL}),
    "cyclic_lr": _entry(th.make_cyclic_lr),
    "swa_lr": _entry(th.make_swa_lr, {"steps_per_epoch": _SPE}),
    "chained_scheduler": _entry(make_chained_scheduler, {"total_steps": _TOTAL, "steps_per_epoch": _SPE}),
    # keras_bert, fastai, transformers
    "adam_warmup": _entry(kb.make_adam_warmup, {"decay_steps": _TOTAL}, ("warmup_steps",)),
    "fit_one_cycle": _entry(fa.make_fit_one_cycle, {"total_steps": _TOTAL}),
    "fit_flat_cos": _entry(fa.make_fit_flat_cos, {"total_steps": _TOTAL}),
    "fit_sgdr": _entry(fa.make_fit_sgdr, {"steps_per_epoch": _SPE}),
    "combine_scheds": _entry(fa.make_combine_scheds, {"total_steps": _TOTAL}),
    "sched_exp": _entry(fa.make_sched_exp, {"total_steps": _TOTAL}),
    "sched_poly": _entry(fa.make_sched_poly, {"total_steps": _TOTAL}),
    "warmup_stable_decay": _entry(hf.make_warmup_stable_decay, {"num_training_steps": _TOTAL},
                                  ("num_warmup_steps",)),
    "inverse_sqrt": _entry(hf.make_inverse_sqrt, {}, ("num_warmup_steps",)),
    "cosine_with_restarts": _entry(hf.make_cosine_with_restarts, {"num_training_steps": _TOTAL},
                                   ("num_warmup_steps",)),
    "cosine_with_min_lr": _entry(hf.make_cosine_with_min_lr, {"num_training_steps": _TOTAL}, ("num_warmup_steps",)),
    "cosine_warmup_with_min_lr": _entry(hf.make_cosine_warmup_with_min_lr, {"num_training_steps": _TOTAL},
                                        ("num_warmup_steps", "warmup_lr_rate")),
}

# Every paddle.optimizer.lr class as "paddle.<Class>", and by its bare name where that is not taken above
# (PaddleOCR's MultiStepDecay keeps the bare name; paddle's is "paddle.MultiStepDecay").
for _name in PADDLE_CLASSES:
    _keys = paddle_class_keys(_name)
    _context = {"total_steps": _TOTAL} if _keys.get("total_steps") else {}
    _paddle = _Entry(partial(make_paddle_lr, _name), _keys, _context,
                     ("warmup_steps",) if _name in ("LinearWarmup", "NoamDecay") else ())
    _ENTRIES[f"paddle.{_name}"] = _paddle
    _ENTRIES.setdefault(_name, _paddle)

SCHEDULES: dict[str, Callable[..., Schedule]] = {name: entry.factory for name, entry in _ENTRIES.items()}


def schedule_keys(name: str) -> dict:
    """{key: required?} for a registered schedule (before make_schedule fills in total/steps_per_epoch)."""
    return dict(_lookup(name).keys)


def _lookup(name):
    if name not in _ENTRIES:
        raise ValueError(f"unknown schedule {shown(name)}. Allowed: {', '.join(sorted(_ENTRIES))}."
                         f"{did_you_mean(name, _ENTRIES)}")
    return _ENTRIES[name]


def _allowed_keys(entry) -> list:
    """The schedule's own keys and the generic ones it does not have (no generic warmup if it has its own)."""
    generic_keys = set(GENERIC_KEYS) - set(entry.keys)
    if entry.own_warmup:
        generic_keys -= {"warmup_steps", "warmup_start_lr", "warmup_shift"}
    return sorted(set(entry.keys) | generic_keys)


def make_schedule(name: str, *, total_steps: int | None = None, steps_per_epoch: int | None = None,
                  **kwargs) -> Schedule:
    """The registered schedule `name` built from `kwargs`, as a pure `schedule(step) -> lr`.

    total_steps / steps_per_epoch fill the schedule's own run-length keys when those are not given (PaddleOCR's
    epochs and step_each_epoch, torch's steps_per_epoch, keras_bert's decay_steps, transformers'
    num_training_steps); a schedule's own `total_steps` key is make_schedule's total_steps. The generic keys
    warmup_steps, warmup_start_lr, warmup_shift and min_lr wrap any schedule that has no key of that name
    (see GENERIC_KEYS). Unknown or missing keys and bad values raise ValueError/TypeError naming the key, the
    value and what is allowed.
    """
    entry = _lookup(name)
    where = f"schedule {name!r}"
    if total_steps is not None:
        total_steps = check_steps(f"{where}: total_steps", total_steps, low=1)
    if steps_per_epoch is not None:
        steps_per_epoch = check_steps(f"{where}: steps_per_epoch", steps_per_epoch, low=1)
    allowed = _allowed_keys(entry)
    for key, value in kwargs.items():
        if entry.own_warmup and key in GENERIC_KEYS and key.startswith("warmup") and key not in entry.keys:
            raise ValueError(f"{where}: has its own warmup ({', '.join(entry.own_warmup)}); use that instead "
                             f"of {key}={shown(value)}.")
        if key not in allowed:
            raise unknown_key_error(where, key, allowed, value=value)
    own = {k: v for k, v in kwargs.items() if k in entry.keys}
    generic = {k: v for k, v in kwargs.items() if k not in entry.keys}
    _fill_context(where, entry, own, total_steps, steps_per_epoch)
    missing = [k for k, required in entry.keys.items() if required and k not in own]
    if missing:
        raise missing_keys_error(where, missing, allowed, hint="Run-length keys can come from make_schedule's "
                                 "total_steps= / steps_per_epoch=.")
    schedule = entry.factory(**own)
    return _wrap(where, entry, schedule, generic)


def make_run_schedule(name: str, config: dict, *, total_steps: int, steps_per_epoch: int | None = None):
    """make_schedule for a training run of `total_steps` updates: `config` holds the schedule's keys as a user
    wrote them. The run sets total_steps / steps_per_epoch; a schedule key of that name in `config` (e.g.
    paddle.LinearLR's total_steps) must agree with the run rather than collide with it."""
    config = dict(config)
    run = {"total_steps": total_steps, "steps_per_epoch": steps_per_epoch}
    for key in run:
        if key not in config:
            continue
        given = config.pop(key)
        if key not in _lookup(name).keys:
            raise unknown_key_error(f"schedule {name!r}", key, _allowed_keys(_lookup(name)), value=given,
                                    why=f"; the run's length is set by the training run ({key}={run[key]}), "
                                        f"not by the schedule")
        if run[key] is None:
            run[key] = given
        elif isinstance(given, bool) or given != run[key]:
            raise ValueError(f"schedule {name!r}: {key}={shown(given)} does not match the run, which has "
                             f"{key}={run[key]} (epochs x steps per epoch); drop {key}: it is filled in from the run.")
    return make_schedule(name, **run, **config)


def _fill_context(where, entry, own, total_steps, steps_per_epoch):
    for key, derive in entry.context.items():
        try:
            value = derive(total_steps, steps_per_epoch)
        except ValueError:
            if entry.keys[key] and key not in own:
                raise
            continue
        if value is None:
            continue
        if key not in own:
            if not (key == "num_training_steps" and own.get("num_stable_steps") is not None):
                own[key] = value
        elif key in ("step_each_epoch", "steps_per_epoch", "epochs") and own[key] != value:
            raise ValueError(f"{where}: {key}={shown(own[key])} conflicts with the run's {key}={shown(value)} "
                             f"(from total_steps={total_steps}, steps_per_epoch={steps_per_epoch}).")


def _wrap(where, entry, schedule, generic):
    if not generic:
        return schedule
    if "warmup_steps" not in generic and {"warmup_start_lr", "warmup_shift"} & set(generic):
        raise ValueError(f"{where}: warmup_start_lr / warmup_shift need warmup_steps, got only "
                         f"{sorted(generic)}.")
    if "warmup_steps" in generic:
        shift = check_bool(f"{where}: warmup_shift", generic.get("warmup_shift", True))
        schedule = with_warmup(schedule, check_steps(f"{where}: warmup_steps", generic["warmup_steps"]),
                               check_lr(f"{where}: warmup_start_lr", generic.get("warmup_start_lr", 0.0)),
                               shift=shift)
    if "min_lr" in generic:
        schedule = with_floor(schedule, check_lr(f"{where}: min_lr", generic["min_lr"]))
    return schedule
