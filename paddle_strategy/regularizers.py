"""L1, L2 and L2-SP as per-parameter regularizers, and the in-place clip + regularize pipeline.

Paddle applies a parameter's `regularizer` to its gradient after gradient clipping and before the
optimizer update, which is exactly where PaddleHub 1.x put L2 and L2-SP; so both ride on that hook.
"""
from __future__ import annotations

import math

import paddle
from paddle import _C_ops
from paddle.nn.clip import ClipGradBase

class L2(paddle.regularizer.WeightDecayRegularizer):
    """gradient += coeff * w."""

    def __init__(self, coeff: float):
        super().__init__()
        self.coeff = float(coeff)

    def __call__(self, param, grad, block=None):
        return _C_ops.scale(param, self.coeff, 0.0, True)

    def apply_(self, param, grad, scratch):
        """grad += coeff * w in place; `scratch` is a tensor of grad's shape and dtype to compute in."""
        _C_ops.add_(grad, _C_ops.scale(param, self.coeff, 0.0, True, out=scratch))

    def __str__(self):
        return f"L2(coeff={self.coeff})"


class L1(paddle.regularizer.WeightDecayRegularizer):
    """gradient += coeff * sign(w) (Paddle's L1Decay, applied in the same place)."""

    def __init__(self, coeff: float):
        super().__init__()
        self.coeff = float(coeff)

    def __call__(self, param, grad, block=None):
        return _C_ops.scale(_C_ops.sign(param), self.coeff, 0.0, True)

    def apply_(self, param, grad, scratch):
        _C_ops.add_(grad, _C_ops.scale_(_C_ops.sign(param), self.coeff, 0.0, True))

    def __str__(self):
        return f"L1(coeff={self.coeff})"


class Sum(paddle.regularizer.WeightDecayRegularizer):
    """Several regularizers on one parameter: their terms added one after the other."""

    def __init__(self, parts):
        super().__init__()
        self.parts = list(parts)

    def __call__(self, param, grad, block=None):
        return _C_ops.add_n([r(param, grad, block) for r in self.parts])

    def apply_(self, param, grad, scratch):
        for r in self.parts:
            r.apply_(param, grad, scratch)

    def __str__(self):
        return " + ".join(map(str, self.parts))


class L2SP(paddle.regularizer.WeightDecayRegularizer):
    """gradient += coeff * (w - w0), w0 the pretrained value (Li et al. 2018, "L2-SP").

    `InPlaceClipRegularize` adds it to the gradient in place (`apply_`), computing w - w0 in a scratch
    tensor it reuses, so a step creates no new tensor. The reference is held in memory (no file), so every
    data-parallel rank keeps its own copy of the same broadcast weights.
    """

    def __init__(self, coeff: float, reference):
        super().__init__()
        self.coeff = float(coeff)
        ref = reference.detach().astype("float32" if reference.dtype in (paddle.float16, paddle.bfloat16)
                                        else reference.dtype)
        self.reference = ref.clone().detach()

    def __call__(self, param, grad, block=None):
        return _C_ops.scale(_C_ops.subtract(param.astype(self.reference.dtype), self.reference),
                            self.coeff, 0.0, True)

    def apply_(self, param, grad, scratch):
        """grad += coeff * (w - w0) in place; `scratch` is a tensor of grad's shape and dtype to compute in."""
        diff = _C_ops.subtract(param, self.reference, out=scratch)
        _C_ops.add_(grad, _C_ops.scale_(diff, self.coeff, 0.0, True))

    def __str__(self):
        return f"L2SP(coeff={self.coeff})"


class InPlaceClipRegularize(ClipGradBase):
    """The strategies' grad_clip: a global-norm or per-tensor clip, then L2 / L2-SP, in place on the grads.

    The same math in the same order as Paddle's grad_clip= plus per-parameter `regularizer`s (clip, then
    grad += term), without their temporaries: the regularizer hook makes two new full-size tensors per
    parameter per step (the term, then add_n([grad, term])) and ClipGradByGlobalNorm one more
    (grad * factor). On CPU each new multi-MiB tensor is page-faulted in afresh (~1 fault per 4 KiB),
    which was most of the strategies' per-step overhead. Here the terms are computed in one reused scratch
    buffer (as large as the largest regularized parameter) and added in place, so after step() param.grad
    holds the clipped, regularized gradient until clear_grad().
    regularizers: [(parameter, L2 | L2SP)].
    """

    def __init__(self, global_norm=0.0, norm=0.0, regularizers=()):
        super().__init__()
        self.global_norm, self.norm = float(global_norm), float(norm)
        self.regularizers = {p.name: reg for p, reg in regularizers}
        self._scratch_size = max((int(p.size) for p, _ in regularizers), default=0)
        self._scratch = {}  # dtype -> flat buffer, allocated on first use
        self._views = {}    # (param name, dtype) -> view of the buffer with the parameter's shape

    def __str__(self):
        return (f"InPlaceClipRegularize(global_norm={self.global_norm}, norm={self.norm}, "
                f"{len(self.regularizers)} regularized parameters)")

    def _view(self, param, grad):
        key = (param.name, grad.dtype)
        view = self._views.get(key)
        if view is None:
            buf = self._scratch.get(grad.dtype)
            if buf is None:
                buf = self._scratch[grad.dtype] = paddle.empty([self._scratch_size], dtype=grad.dtype)
            view = self._views[key] = buf[:int(param.size)].reshape(param.shape)
        return view

    def _dygraph_clip(self, params_grads):
        with paddle.no_grad():
            grads = [g for p, g in params_grads if g is not None and getattr(p, "need_clip", True)]
            if any(g.is_selected_rows() for g in grads):  # sparse gradients: Paddle's own clips handle them
                clip = (paddle.nn.ClipGradByGlobalNorm(self.global_norm) if self.global_norm else
                        paddle.nn.ClipGradByNorm(self.norm) if self.norm else None)
                params_grads = clip(params_grads) if clip else params_grads
            elif self.global_norm and grads:
                acc = "float64" if any(g.dtype == paddle.float64 for g in grads) else "float32"  # as Paddle's clip
                total = math.sqrt(_C_ops.add_n([_C_ops.squared_l2_norm(g).astype(acc) for g in grads]).item())
                if total > self.global_norm:  # the same as multiplying by min(1, clip / norm)
                    for g in grads:
                        _C_ops.scale_(g, self.global_norm / total, 0.0, True)
            elif self.norm:
                for g in grads:
                    norm = math.sqrt(_C_ops.squared_l2_norm(g).astype(
                        "float64" if g.dtype == paddle.float64 else "float32").item())
                    if norm > self.norm:
                        _C_ops.scale_(g, self.norm / norm, 0.0, True)
            out = []
            for p, g in params_grads:
                reg = self.regularizers.get(p.name)
                if reg is not None and g is not None:
                    if g.is_selected_rows() or p.dtype != g.dtype:  # Paddle's own path, as the hook did
                        g = _C_ops.add_n([g, reg(p.astype(g.dtype), g).astype(g.dtype)])
                    else:
                        reg.apply_(p, g, self._view(p, g))
                out.append((p, g))
        return out
