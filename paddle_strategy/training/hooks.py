"""PaddleHub 1.x's Task hooks on the Trainer, and EarlyStopping.

Twelve events, each with an ordered set of named hooks; the Trainer's own action for an event is the hook
named "default" (replace or delete it, as in 1.x). A hook is `func(trainer, info)` — or `func(trainer)`, the
1.x shape of the events that took no run_states — where `info` is one dict per firing, shared by that event's
hooks in order (the default runs first unless deleted, so later hooks see what it added, e.g. the
checkpoint path). Hooks only *request*: set `trainer.stop_training = True` and the loop ends the run after the
current update, with a checkpoint.
"""
from __future__ import annotations

import inspect
import math

from .._checks import check_number, did_you_mean, shown

__all__ = ["EVENTS", "Hooks", "HookError", "EarlyStopping"]

EVENTS = ("build_env_start_event", "build_env_end_event", "finetune_start_event", "finetune_end_event",
          "predict_start_event", "predict_end_event", "eval_start_event", "eval_end_event", "log_interval_event",
          "save_ckpt_interval_event", "eval_interval_event", "run_step_event")


class HookError(RuntimeError):
    """A user hook raised; the original exception is `__cause__`. Training stopped between updates, so the
    model, optimizer and the last checkpoint are consistent."""


def _event(hook_type):
    """The canonical event name: 1.8 spelled the types without `_event` ("eval_end"); both are accepted."""
    if isinstance(hook_type, str) and hook_type in EVENTS:
        return hook_type
    if isinstance(hook_type, str) and hook_type + "_event" in EVENTS:
        return hook_type + "_event"
    raise ValueError(f"hook_type {shown(hook_type)} is not an event; allowed: {', '.join(EVENTS)}."
                     f"{did_you_mean(hook_type, EVENTS) if isinstance(hook_type, str) else ''}")


def _arity(func, where):
    """1 or 2: how many positional arguments `func` takes (trainer[, info])."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return 2  # builtins and C callables: assume the full form
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) <= 2 <= len(positional):
        return 2
    if len(required) <= 1 <= len(positional):
        return 1
    raise TypeError(f"{where}: a hook is called as func(trainer, info) or func(trainer); {shown(func)} takes "
                    f"{len(positional)} positional argument(s) ({len(required)} required).")


class Hooks:
    """The registered hooks: {event: {name: (func, arity)}}, in insertion order."""

    def __init__(self, defaults):
        self._hooks = {event: {"default": (defaults[event], 2)} for event in EVENTS}
        self._builtin = list(defaults.values())  # the Trainer's own actions: their errors pass through

    def add(self, hook_type, name=None, func=None):
        event = _event(hook_type)
        if func is None or not callable(func):
            raise TypeError(f"add_hook({event!r}): func must be callable, got {shown(func)}.")
        if name is None:
            name = f"hook_{id(func)}"
        if not isinstance(name, str) or not name:
            raise TypeError(f"add_hook({event!r}): name must be a non-empty string, got {shown(name)}.")
        if name in self._hooks[event]:
            raise ValueError(f"add_hook: {event} already has a hook named {name!r}; use modify_hook to replace it.")
        self._hooks[event][name] = (func, _arity(func, f"add_hook({event!r}, {name!r})"))
        return name

    def _existing(self, what, hook_type, name):
        event = _event(hook_type)
        if name not in self._hooks[event]:
            names = list(self._hooks[event])
            raise ValueError(f"{what}: {event} has no hook named {shown(name)}; it has "
                             f"{', '.join(map(repr, names)) or 'none'}.{did_you_mean(str(name), names)}")
        return event

    def delete(self, hook_type, name):
        del self._hooks[self._existing("delete_hook", hook_type, name)][name]

    def modify(self, hook_type, name, func):
        event = self._existing("modify_hook", hook_type, name)
        if not callable(func):
            raise TypeError(f"modify_hook({event!r}, {name!r}): func must be callable, got {shown(func)}.")
        self._hooks[event][name] = (func, _arity(func, f"modify_hook({event!r}, {name!r})"))

    def table(self, only_customized=False):
        """One line per hook: event, name, the function's qualified name."""
        rows = [(event, name, getattr(func, "__qualname__", type(func).__name__))
                for event, hooks in self._hooks.items() for name, (func, _) in hooks.items()
                if not (only_customized and name == "default")]
        width = max([len("hook_type")] + [len(r[0]) for r in rows])
        name_width = max([len("name")] + [len(r[1]) for r in rows])
        lines = [f"{'hook_type':<{width}}  {'name':<{name_width}}  function"]
        lines += [f"{e:<{width}}  {n:<{name_width}}  {f}" for e, n, f in rows]
        return "\n".join(lines)

    def customized(self, event):
        """Whether `event` has hooks besides the Trainer's own."""
        return any(not any(func is f for f in self._builtin) for func, _ in self._hooks[event].values())

    def stateful(self):
        """{"<event>/<name>": hook} for hooks with state_dict() / set_state_dict() (kept in checkpoints)."""
        return {f"{event}/{name}": func for event, hooks in self._hooks.items() for name, (func, _) in hooks.items()
                if callable(getattr(func, "state_dict", None)) and callable(getattr(func, "set_state_dict", None))}

    def fire(self, event, trainer, info):
        """Run `event`'s hooks in order. A user hook's exception becomes HookError naming it; the default hooks'
        exceptions (a full disk while writing a checkpoint, ...) pass through as they are."""
        for name, (func, arity) in list(self._hooks[event].items()):
            try:
                func(trainer, info) if arity == 2 else func(trainer)
            except Exception as exc:
                if any(func is f for f in self._builtin):
                    raise
                raise HookError(f"hook {name!r} of {event} raised {type(exc).__name__}: {exc} (at step "
                                f"{trainer.global_step}; training stopped between updates, the last checkpoint "
                                f"is intact)") from exc
        return info


def _lower_is_better(metric):
    return metric == "loss" or metric.endswith("_loss")


class EarlyStopping:
    """Stop training when the evaluation metric has not improved for `patience` evaluations in a row
    (HF's EarlyStoppingCallback, paddle.callbacks.EarlyStopping): an eval_end_event hook.

        trainer.add_hook("eval_end_event", "early_stopping", ps.EarlyStopping(patience=3, min_delta=1e-3))

    metric: a key of the evaluation result (default: the Trainer's main metric, the one that picks the best
    model). 'loss' (and names ending in '_loss') improve downwards, everything else upwards. An improvement
    must beat the best so far by more than min_delta; NaN never improves. Its counters are saved in every
    checkpoint and restored on resume. Evaluations outside training (a direct eval() call) are not counted.
    """

    def __init__(self, patience, min_delta=0.0, metric=None):
        self.patience = check_number("EarlyStopping.patience", patience, low=1, integer=True)
        self.min_delta = check_number("EarlyStopping.min_delta", min_delta, low=0)
        if metric is not None and (not isinstance(metric, str) or not metric):
            raise TypeError(f"EarlyStopping.metric must be a metric name (a string) or None, got {shown(metric)}.")
        self.metric = metric
        self.best, self.wait, self.stopped_at = None, 0, None

    def __repr__(self):
        return f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta}, metric={self.metric!r})"

    def __call__(self, trainer, info):
        if not info.get("during_training"):
            return
        result = info["result"]
        name = self.metric or info["metric"]
        if name not in result:
            raise ValueError(f"EarlyStopping.metric={name!r} is not in the evaluation result "
                             f"({', '.join(result)}).{did_you_mean(name, list(result))}")
        value = float(result[name])
        if self._improves(value, name):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_at = info["step"]
            trainer.stop_training = True
            trainer._say(f"[early stopping] {name} has not improved on {self.best} for {self.wait} evaluation(s) "
                         f"(patience {self.patience}, min_delta {self.min_delta}): stopping after step {info['step']}.")

    def _improves(self, value, name):
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if _lower_is_better(name):
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def state_dict(self):
        return {"best": self.best, "wait": self.wait, "stopped_at": self.stopped_at}

    def set_state_dict(self, state):
        """Restore state_dict()'s counters; ValueError / TypeError naming the key that is not one (a checkpoint's
        hook state is tried on a copy first: a refused one marks the checkpoint damaged)."""
        if not isinstance(state, dict) or set(state) != {"best", "wait", "stopped_at"}:
            raise ValueError(f"EarlyStopping state must be a mapping of best, wait, stopped_at; got {shown(state)}.")
        best = state["best"]
        if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
            raise TypeError(f"EarlyStopping state['best'] must be a number or None, got {shown(best)}.")
        stopped_at = state["stopped_at"]
        if stopped_at is not None:
            stopped_at = check_number("EarlyStopping state['stopped_at']", stopped_at, low=1, integer=True)
        self.best, self.stopped_at = best, stopped_at
        self.wait = check_number("EarlyStopping state['wait']", state["wait"], low=0, integer=True)
