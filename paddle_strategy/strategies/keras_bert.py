"""keras_bert's AdamWarmup (CyberZHG/keras-bert, keras_bert/optimizers/warmup.py) as a strategy.

With t = updates done + 1 (keras' iterations after this update), for every parameter p with gradient g:
  lr(t)   = learning_rate * t / warmup_steps                                        t <= warmup_steps
            min_lr + (learning_rate - min_lr) * (1 - min(t, decay_steps) / decay_steps)   otherwise
  lr_t    = lr(t) * sqrt(1 - beta_2**t) / (1 - beta_1**t)
  m       = beta_1 * m + (1 - beta_1) * g;   v = beta_2 * v + (1 - beta_2) * g**2
  v_hat   = max(v_hat, v) with amsgrad, else v
  update  = m / (sqrt(v_hat) + epsilon)   (+ weight_decay * p  when p's name matches weight_decay_pattern)
  p       = p - lr_t * update
So epsilon is added to the uncorrected sqrt(v) (Paddle's Adam adds epsilon * sqrt(1 - beta_2**t) there; the
optimizer below rescales it every step), and the weight decay is decoupled but scaled by lr_t, bias
correction included (not AdamW's lr * wd).

keras_bert's Keras version honours `weight_decay_pattern` (substrings of the variable name); its tf.keras
version (warmup_v2.py) ignores the pattern and decays every weight, and its amsgrad never stores v_hat (so it
is plain Adam). Here the pattern is honoured, matched against structured parameter names
(`encoder.layers.0.linear1.weight`), and amsgrad is AMSGrad (Paddle's `amsgrad=True`: the same running max
of the uncorrected v as the Keras version).
"""
from __future__ import annotations

import math
import warnings

import paddle

from .._checks import check_bool, check_number, did_you_mean, shown
from ..schedules.keras_bert import calc_train_steps
from ..optimizers import DecoupledWeightDecay
from .combined import CombinedStrategy

__all__ = ["AdamWarmupStrategy", "AdamWarmupOptimizer", "calc_train_steps"]


class AdamWarmupOptimizer(DecoupledWeightDecay, paddle.optimizer.Adam):
    """paddle.optimizer.Adam stepped as keras_bert's AdamWarmup: epsilon added to the uncorrected sqrt(v),
    and the decoupled weight decay p -= lr_t * weight_decay * p (lr_t bias-corrected, times the parameter's
    LR multiplier) on `decay_params`, before the Adam update. t is the global update count (the LR
    scheduler's step + 1)."""

    _kb_epsilon = 1e-7

    def set_keras_bert(self, epsilon, weight_decay=0.0, decay_params=()):
        self._kb_epsilon = float(epsilon)
        self.set_weight_decay(weight_decay, decay_params)

    def _t(self):
        lr = self._learning_rate
        return lr.last_epoch + 1 if isinstance(lr, paddle.optimizer.lr.LRScheduler) else 1

    def decay_lr(self):
        """keras_bert's lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)."""
        t = self._t()
        return self.get_lr() * math.sqrt(1.0 - float(self._beta2) ** t) / (1.0 - float(self._beta1) ** t)

    def step(self):
        correction2 = math.sqrt(1.0 - float(self._beta2) ** self._t())
        self._epsilon = self._kb_epsilon / correction2  # Paddle multiplies it back by sqrt(1 - beta2**t)
        super().step()  # DecoupledWeightDecay.step: the decay, then Adam's update


class AdamWarmupStrategy(CombinedStrategy):
    """keras_bert's AdamWarmup (see the module docstring for the update), with keras_bert's names and defaults.

    decay_steps: the decay line reaches min_lr at t = decay_steps (keras_bert: the run's total steps, see
      calc_train_steps); None: the run's max_train_steps at build.
    warmup_steps: linear warmup to learning_rate over t = 1 .. warmup_steps.
    weight_decay_pattern: None (every parameter decays, biases and normalization included, as keras_bert) or
      a list of substrings of structured parameter names; a parameter decays when its name contains one.
    """

    _args = ("decay_steps", "warmup_steps", "min_lr", "learning_rate", "beta_1", "beta_2", "epsilon",
             "weight_decay", "weight_decay_pattern", "amsgrad")

    def __init__(self, decay_steps, warmup_steps, min_lr=0.0, learning_rate=1e-3, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, weight_decay=0.0, weight_decay_pattern=None, amsgrad=False):
        where = "AdamWarmupStrategy"
        if decay_steps is not None:
            decay_steps = check_number(f"{where}: decay_steps", decay_steps, low=1, integer=True)
        warmup_steps = check_number(f"{where}: warmup_steps", warmup_steps, low=0, integer=True)
        min_lr = check_number(f"{where}: min_lr", min_lr, low=0)
        check_number(f"{where}: learning_rate", learning_rate, low=0)
        beta_1 = check_number(f"{where}: beta_1", beta_1, low=0, high=1, high_open=True)
        beta_2 = check_number(f"{where}: beta_2", beta_2, low=0, high=1, high_open=True)
        epsilon = 1e-7 if epsilon is None else check_number(f"{where}: epsilon", epsilon, low=0)  # K.epsilon()
        weight_decay = check_number(f"{where}: weight_decay", weight_decay, low=0)
        if weight_decay_pattern is not None:
            if isinstance(weight_decay_pattern, (str, bytes)) or not isinstance(weight_decay_pattern,
                                                                                  (list, tuple)):
                raise TypeError(f"{where}: weight_decay_pattern must be None or a list of substrings of parameter "
                                f"names, got {shown(weight_decay_pattern)} ({type(weight_decay_pattern).__name__}).")
            for i, pattern in enumerate(weight_decay_pattern):
                if not isinstance(pattern, str) or not pattern:
                    raise TypeError(f"{where}: weight_decay_pattern[{i}] must be a non-empty string, got "
                                    f"{shown(pattern)}.")
            weight_decay_pattern = list(weight_decay_pattern)
        check_bool(f"{where}: amsgrad", amsgrad)
        for k in self._args:
            setattr(self, "_" + k, locals()[k])
        schedule = {"name": "adam_warmup", "warmup_steps": warmup_steps, "min_lr": min_lr}
        if decay_steps is not None:
            schedule["decay_steps"] = decay_steps
        # AdamWarmupOptimizer: Adam's signature, keras_bert's step
        super().__init__(optimizer_name=AdamWarmupOptimizer, learning_rate=learning_rate,
                         scheduler={"schedule": schedule}, beta1=beta_1, beta2=beta_2, epsilon=epsilon, amsgrad=amsgrad)

    def __repr__(self):
        own = ", ".join(f"{k}={getattr(self, '_' + k)!r}" for k in self._args)
        return f"{type(self).__name__}({own})"

    __str__ = __repr__

    def decayed_names(self, names) -> list:
        """The structured names (of `names`) that weight decay acts on."""
        names = list(names)
        if not self._weight_decay:
            return []
        if self._weight_decay_pattern is None:
            return names
        return [n for n in names if any(pattern in n for pattern in self._weight_decay_pattern)]

    def build(self, model, max_train_steps, steps_per_epoch=None, sample_input=None, pretrained=None, *,
              schedule=None):
        """CombinedStrategy.build with keras_bert's AdamWarmup step; a weight_decay_pattern that matches no
        trainable parameter name is refused (none at all) or warned about (some of the patterns)."""
        optimizer, lr_scheduler = super().build(model, max_train_steps, steps_per_epoch, sample_input, pretrained,
                                                schedule=schedule)
        optimizer.set_keras_bert(self._epsilon, self._weight_decay, lr_scheduler.table.decayed())
        return optimizer, lr_scheduler

    def _decay_rule(self, model, names) -> set:
        """keras_bert's: names containing a weight_decay_pattern entry (every name when it is None)."""
        decayed = set(self.decayed_names(names))
        if self._weight_decay and self._weight_decay_pattern is not None:
            self._check_patterns(names, decayed)
        return decayed

    def _check_patterns(self, names, decayed):
        unused = [pat for pat in self._weight_decay_pattern if not any(pat in n for n in names)]
        if not unused:
            return
        parts = sorted({part for n in names for part in n.split(".") if not part.isdigit()})
        hints = "".join(did_you_mean(pat, parts) for pat in unused)
        message = (f"AdamWarmupStrategy: weight_decay_pattern {unused!r} match no trainable parameter name "
                   f"(names look like {names[0]!r}; their parts: {', '.join(parts[:20])}).{hints}")
        if not decayed:
            raise ValueError(message + " No parameter would decay.")
        warnings.warn(message, stacklevel=3)
