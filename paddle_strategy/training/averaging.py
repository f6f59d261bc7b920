"""An exponential moving average (EMA) of the model's weights, as timm's ModelEmaV2/V3, PaddleClas and
PaddleDetection keep it.

After every optimizer update (never per micro-batch), with s = the number of updates averaged before this one:

    ema <- d_s * ema + (1 - d_s) * w
    constant      d_s = d                                   (timm, PaddleClas)
    threshold     d_s = min(d, (1 + s) / (10 + s))          (PaddleDetection's 'threshold')
    exponential   d_s = d * (1 - exp(-(s + 1) / 2000))      (PaddleDetection's 'exponential')

The average covers the parameters the optimizer updates (gradual unfreezing's frozen blocks included: they
average to themselves until they thaw) and is kept in float32 whatever the model's dtype. Everything else in the
state dict — buffers and Paddle's non-trainable parameters such as BatchNorm's running mean and variance, and
parameters frozen before training — is not averaged: the model's own values are used with the averaged weights.
It starts as a copy of the weights when training starts.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import paddle

__all__ = ["WeightAverage", "ema_decay"]


def ema_decay(decay, decay_type, s):
    """d_s, the decay of the update that follows `s` averaged updates."""
    if decay_type == "constant":
        return decay
    if decay_type == "threshold":
        return min(decay, (1 + s) / (10 + s))
    if decay_type == "exponential":
        return decay * (1 - math.exp(-(s + 1) / 2000))
    raise ValueError(f"ema_decay_type must be one of 'constant', 'threshold', 'exponential', got {decay_type!r}.")


class WeightAverage:
    """The EMA of `named` = [(structured name, parameter)] of `model`; `updates` = s, the updates averaged so far."""

    def __init__(self, model, named, decay, decay_type="constant"):
        self.decay, self.decay_type = float(decay), decay_type
        self.model = model
        self.named = list(named)
        self.shadow = None  # float32 tensors, one per parameter, once started
        self.updates = 0
        self._swapped = False

    def start(self):
        """The average = a float32 copy of the current weights, no update averaged yet."""
        with paddle.no_grad():
            self.shadow = [p.detach().astype("float32").clone() for _, p in self.named]
        self.updates = 0

    def update(self):
        """One EMA step with the weights as they are now (call right after the optimizer update)."""
        d = ema_decay(self.decay, self.decay_type, self.updates)
        with paddle.no_grad():
            # ema + (1 - d)(w - ema) = d·ema + (1 - d)·w in one fused pass, without a temporary (~2x faster on CPU)
            weight = paddle.full([1], 1.0 - d, dtype="float32")
            for e, (_, p) in zip(self.shadow, self.named):
                e.lerp_(p if p.dtype == paddle.float32 else p.astype("float32"), weight)
        self.updates += 1

    def arrays(self):
        """{structured name: float32 array} of the average (for checkpoints)."""
        return {n: e.numpy() for (n, _), e in zip(self.named, self.shadow)}

    def check(self, arrays, updates):
        """ValueError unless `arrays` / `updates` are an average of this model: every parameter, float32, its
        shape; a non-negative update count."""
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < 0:
            raise ValueError(f"the weight average's update count is {updates!r}, not a non-negative integer")
        names = [n for n, _ in self.named]
        missing = [n for n in names if n not in arrays]
        extra = [n for n in arrays if n not in names]
        if missing or extra:
            raise ValueError(f"the weight average does not fit the model (missing {missing[:3]}, unexpected "
                             f"{extra[:3]})")
        for n, p in self.named:
            a = arrays[n]
            if a.dtype != np.float32 or list(a.shape) != list(p.shape):
                raise ValueError(f"the weight average of {n!r} is {a.dtype} {list(a.shape)}, expected float32 "
                                 f"{list(p.shape)}")

    def load(self, arrays, updates):
        """Restore an average written by arrays() (checked by check())."""
        self.check(arrays, updates)
        names = [n for n, _ in self.named]
        self.shadow = [paddle.to_tensor(arrays[n], dtype="float32") for n in names]
        self.updates = int(updates)

    def state_dict(self):
        """The model's state dict with every parameter replaced by its average (float32); buffers as they are."""
        averaged = dict(zip((n for n, _ in self.named), self.shadow))
        return {k: (averaged[k].clone() if k in averaged else v) for k, v in self.model.state_dict().items()}

    @contextlib.contextmanager
    def swapped_in(self):
        """The model holds the averaged weights inside the block; the raw ones are put back exactly after it
        (nested uses are one swap)."""
        if self.shadow is None or self._swapped:
            yield
            return
        with paddle.no_grad():
            raw = [p.detach().clone() for _, p in self.named]
            for e, (_, p) in zip(self.shadow, self.named):
                p.set_value(e if p.dtype == paddle.float32 else e.astype(p.dtype))
        self._swapped = True
        try:
            yield
        finally:
            with paddle.no_grad():
                for r, (_, p) in zip(raw, self.named):
                    p.set_value(r)
            self._swapped = False
