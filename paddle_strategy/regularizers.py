"""L2 and L2-SP as per-parameter regularizers, and which parameters decoupled weight decay skips.

Paddle applies a parameter's `regularizer` to its gradient after gradient clipping and before the
optimizer update, which is exactly where PaddleHub 1.x put L2 and L2-SP; so both ride on that hook.
"""
from __future__ import annotations

import paddle
from paddle import _C_ops

_NORM_LAYERS = tuple(
    cls for cls in (
        getattr(paddle.nn, name, None)
        for name in ("LayerNorm", "BatchNorm", "BatchNorm1D", "BatchNorm2D", "BatchNorm3D", "SyncBatchNorm",
                     "GroupNorm", "InstanceNorm1D", "InstanceNorm2D", "InstanceNorm3D", "LocalResponseNorm",
                     "RMSNorm", "SpectralNorm"))
    if isinstance(cls, type))


class L2(paddle.regularizer.WeightDecayRegularizer):
    """gradient += coeff * w."""

    def __init__(self, coeff: float):
        super().__init__()
        self.coeff = float(coeff)

    def __call__(self, param, grad, block=None):
        return _C_ops.scale(param, self.coeff, 0.0, True)

    def __str__(self):
        return f"L2(coeff={self.coeff})"


class L2SP(paddle.regularizer.WeightDecayRegularizer):
    """gradient += coeff * (w - w0), w0 the pretrained value (Li et al. 2018, "L2-SP").

    Computed as one lerp from a stored tensor a = -coeff / (1 - coeff) * w0:
    lerp(a, w, coeff) = (1 - coeff) * a + coeff * w = coeff * (w - w0). That is one kernel per step, the
    same cost as plain L2; the reference is held in memory (no file), so every data-parallel rank keeps
    its own copy of the same broadcast weights.
    """

    def __init__(self, coeff: float, reference):
        super().__init__()
        self.coeff = float(coeff)
        ref = reference.detach().astype("float32" if reference.dtype in (paddle.float16, paddle.bfloat16)
                                        else reference.dtype)
        if self.coeff < 1.0:
            self._anchor, self.reference = (ref * (-self.coeff / (1.0 - self.coeff))).detach(), None
        else:
            self._anchor, self.reference = None, ref.clone().detach()
        self._weight = paddle.full([], self.coeff, dtype=ref.dtype)

    def __call__(self, param, grad, block=None):
        if self._anchor is not None:
            return _C_ops.lerp(self._anchor, param, self._weight)
        return _C_ops.scale(_C_ops.subtract(param, self.reference), self.coeff, 0.0, True)

    def __str__(self):
        return f"L2SP(coeff={self.coeff})"


def decay_excluded(model) -> set:
    """Structured names decoupled weight decay skips: biases and the parameters of normalization layers."""
    skip = set()
    for prefix, layer in model.named_sublayers(include_self=True):
        for key, p in layer._parameters.items():
            if p is None:
                continue
            name = f"{prefix}.{key}" if prefix else key
            if key == "bias" or key.endswith("_bias") or isinstance(layer, _NORM_LAYERS):
                skip.add(name)
    return skip
