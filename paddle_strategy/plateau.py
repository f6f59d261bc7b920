"""torch's ReduceLROnPlateau (torch.optim.lr_scheduler) on one learning rate.

It is driven by evaluation results, not by the step count, so it is a small class with a state dict rather
than a schedule; `StrategyLR(plateau=...)` scales a pure schedule by its decisions (strategy scheduler key
`reduce_on_plateau`).
"""
from __future__ import annotations

import math

from ._checks import check_choice, check_lr, check_number, check_steps, shown

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau:
    """torch's ReduceLROnPlateau on one learning rate: `step(metric)` once per evaluation returns the new lr.

    better:  min/rel  m < best * (1 - threshold)    min/abs  m < best - threshold
             max/rel  m > best * (1 + threshold)    max/abs  m > best + threshold
    A better metric becomes `best` and resets the bad count, otherwise the count grows; during cooldown the
    counter ticks down and bad evaluations are not counted. When the count exceeds `patience`:
    new = max(lr * factor, min_lr), applied only if lr - new > eps; then cooldown restarts and the count resets.
    """

    _STATE = ("lr", "best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(self, learning_rate, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        where = "ReduceLROnPlateau"
        self.lr = check_lr(f"{where}.learning_rate", learning_rate)
        self.mode = check_choice(f"{where}.mode", mode, ("min", "max"))
        self.factor = check_number(f"{where}.factor", factor, low=0, high=1, high_open=True)
        self.patience = check_steps(f"{where}.patience", patience)
        self.threshold = check_number(f"{where}.threshold", threshold, low=0)
        self.threshold_mode = check_choice(f"{where}.threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = check_steps(f"{where}.cooldown", cooldown)
        self.min_lr = check_lr(f"{where}.min_lr", min_lr)
        self.eps = check_number(f"{where}.eps", eps, low=0)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, metric: float, best: float) -> bool:
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return metric < best * (1.0 - self.threshold)
            return metric < best - self.threshold
        if self.threshold_mode == "rel":
            return metric > best * (1.0 + self.threshold)
        return metric > best + self.threshold

    def step(self, metric) -> float:
        try:
            current = float(metric)
        except (TypeError, ValueError):
            raise TypeError(f"ReduceLROnPlateau.step metric must be a number, got {shown(metric)} "
                            f"({type(metric).__name__}).") from None
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            new = max(self.lr * self.factor, self.min_lr)
            if self.lr - new > self.eps:
                self.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.lr

    def state_dict(self) -> dict:
        return {key: getattr(self, key) for key in self._STATE}

    def set_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise TypeError(f"ReduceLROnPlateau state must be a dict, got {shown(state)} ({type(state).__name__}).")
        missing = [k for k in self._STATE if k not in state]
        extra = [k for k in state if k not in self._STATE]
        if missing or extra:
            raise ValueError(f"ReduceLROnPlateau state: missing keys {missing}, unknown keys {extra}; "
                             f"expected exactly {list(self._STATE)}.")
        self.lr = check_lr("ReduceLROnPlateau state['lr']", state["lr"])
        self.best = float(state["best"])
        self.num_bad_epochs = check_steps("ReduceLROnPlateau state['num_bad_epochs']", state["num_bad_epochs"])
        self.cooldown_counter = check_steps("ReduceLROnPlateau state['cooldown_counter']",
                                            state["cooldown_counter"])
        self.last_epoch = check_steps("ReduceLROnPlateau state['last_epoch']", state["last_epoch"])
