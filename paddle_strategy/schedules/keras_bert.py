"""keras_bert's AdamWarmup learning rate (keras_bert/optimizers/warmup.py) and its calc_train_steps helper.

Only the learning-rate part: the Adam update and its bias correction belong to the optimizer.
"""
from __future__ import annotations

from .._checks import check_lr, check_number, check_steps
from .parts import Schedule, anneal_linear

__all__ = ["make_adam_warmup", "calc_train_steps"]


def make_adam_warmup(learning_rate, warmup_steps, decay_steps, min_lr=0.0) -> Schedule:
    """AdamWarmup's learning rate; keras_bert counts t = step + 1 (its update counter after the update).

    t <= warmup_steps:  lr * t / warmup_steps
    otherwise:          min_lr + (lr - min_lr) * (1 - min(t, decay_steps) / decay_steps)
    The decay is a line from (0, lr) to (decay_steps, min_lr) on the same clock as the warmup, so the curve
    drops at the end of warmup unless warmup_steps is small; keras_bert's calc_train_steps gives
    decay_steps = the run's total steps.
    """
    lr = check_lr("adam_warmup.learning_rate", learning_rate)
    W = check_steps("adam_warmup.warmup_steps", warmup_steps)
    D = check_steps("adam_warmup.decay_steps", decay_steps, low=1)
    floor = check_lr("adam_warmup.min_lr", min_lr)

    def warmup_decay(step):
        t = step + 1  # keras_bert's clock: its warmup includes t = W, so it is not parts.with_warmup's
        if t <= W:
            return anneal_linear(0.0, lr, t / W)
        return anneal_linear(floor, lr, 1.0 - min(t, D) / D)  # keras_bert's arithmetic, bit for bit

    return warmup_decay


def calc_train_steps(num_example: int, batch_size: int, epochs: int, warmup_proportion: float = 0.1):
    """keras_bert's (total, warmup) steps: total = ceil(num_example / batch_size) * epochs,
    warmup = int(total * warmup_proportion) (truncated as keras_bert does: 100 * 0.29 gives 28)."""
    n = check_steps("calc_train_steps.num_example", num_example)
    b = check_steps("calc_train_steps.batch_size", batch_size, low=1)
    e = check_steps("calc_train_steps.epochs", epochs)
    p = check_number("calc_train_steps.warmup_proportion", warmup_proportion, low=0, high=1)
    total = (n + b - 1) // b * e
    return total, int(total * p)
