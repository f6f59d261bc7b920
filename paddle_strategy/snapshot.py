"""An exact restore point for a trial run on a live model (lr_find's sweep): parameter and buffer values,
pending gradients, stop_gradient flags, the parameters' and the optimizer's attributes (accumulators and
their containers restored in place, so references held elsewhere stay valid), train/eval modes, the CPU,
device, numpy and Python RNG states, and Paddle's unique-name counters."""
from __future__ import annotations

import random

import numpy as np
import paddle
from paddle.base import unique_name

__all__ = ["Snapshot"]


def _unique(tensors):
    seen, out = set(), []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _snapshot(obj, skip):
    """A by-value copy of a container tree: (object, saved contents); tensors keep their identity and a copy of
    their values (those in `skip` are restored elsewhere, and each tensor or container is saved once); other
    objects are kept by reference."""
    if isinstance(obj, (paddle.Tensor, dict, list, tuple, set)):
        if id(obj) in skip:
            return obj, None
        skip.add(id(obj))
    if isinstance(obj, paddle.Tensor):
        return obj, (obj.numpy().copy() if obj._is_initialized() else None)
    if isinstance(obj, dict):
        return obj, [(k, _snapshot(v, skip)) for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return obj, [_snapshot(v, skip) for v in obj]
    if isinstance(obj, set):
        return obj, set(obj)
    return obj, None


def _restore_snapshot(saved_copy):
    """Put a `_snapshot` copy back in place (same container and tensor objects) and return the object."""
    obj, saved = saved_copy
    if saved is None:
        return obj
    if isinstance(obj, paddle.Tensor):
        obj.set_value(saved)
    elif isinstance(obj, dict):
        items = [(k, _restore_snapshot(v)) for k, v in saved]
        obj.clear()
        obj.update(items)
    elif isinstance(obj, list):
        obj[:] = [_restore_snapshot(v) for v in saved]
    elif isinstance(obj, tuple):
        for v in saved:
            _restore_snapshot(v)
    elif isinstance(obj, set):
        obj.clear()
        obj.update(saved)
    return obj


class Snapshot:
    """Everything a trial run (lr_find's sweep) can change, copied by value; `restore()` writes it back into
    the same objects."""

    def __init__(self, model, optimizer):
        self.params = _unique(model.parameters())
        self.buffers = _unique(model.buffers())
        skip = {id(p) for p in self.params}
        self.values = [(t, t.numpy().copy()) for t in self.params + self.buffers if t._is_initialized()]
        self.grads = {id(p): p.grad.numpy().copy() for p in self.params if p.grad is not None}
        self.stop_gradient = [(p, p.stop_gradient) for p in self.params]
        self.param_attrs = [(p, _snapshot(dict(vars(p)), skip)) for p in self.params]
        self.training = [(layer, layer.training) for layer in model.sublayers(include_self=True)]
        self.optimizer = optimizer
        self.optimizer_attrs = None if optimizer is None else _snapshot(dict(vars(optimizer)), skip)
        self.cpu_rng, self.device_rng = paddle.get_rng_state("cpu"), paddle.get_rng_state()
        self.np_rng, self.py_rng = np.random.get_state(), random.getstate()
        self.names = dict(unique_name.generator.ids)
        checker = getattr(unique_name.dygraph_parameter_name_checker, "_name_set", None)
        self.param_names = None if checker is None else set(checker)
        for p in self.params:  # the sweep starts from zero gradients
            p.clear_gradient(False)

    def restore(self):
        if self.optimizer is not None:
            self._restore_attrs(self.optimizer, self.optimizer_attrs)
        for p, attrs in self.param_attrs:
            self._restore_attrs(p, attrs)
        for p, flag in self.stop_gradient:
            p.stop_gradient = flag
        for t, value in self.values:
            t.set_value(value)
        self._restore_grads()
        for layer, flag in self.training:
            layer.training = flag
        paddle.set_rng_state(self.cpu_rng, "cpu")
        paddle.set_rng_state(self.device_rng)
        np.random.set_state(self.np_rng)
        random.setstate(self.py_rng)
        unique_name.generator.ids.clear()
        unique_name.generator.ids.update(self.names)
        if self.param_names is not None:
            unique_name.dygraph_parameter_name_checker._name_set = set(self.param_names)

    def _restore_grads(self):
        """Put pending gradients back through autograd: d/dp sum(p * g) = g exactly. (Assigning p.grad, or
        writing into it, is not enough once clear_grad() has zeroed it: the next backward would overwrite the
        gradient instead of adding to it.)"""
        for p in self.params:
            p.clear_gradient(False)
        pending = [p for p in self.params if id(p) in self.grads]
        if not pending:
            return
        frozen = [p.stop_gradient for p in pending]
        with paddle.set_grad_enabled(True):
            for p in pending:
                p.stop_gradient = False
            total = sum((p * paddle.to_tensor(self.grads[id(p)], place=p.place)).sum() for p in pending)
            total.backward()
        for p, flag in zip(pending, frozen):
            p.stop_gradient = flag

    @staticmethod
    def _restore_attrs(obj, saved_copy):
        saved = _restore_snapshot(saved_copy)
        for key in [k for k in vars(obj) if k not in saved]:
            delattr(obj, key)
        for key, value in saved.items():
            setattr(obj, key, value)
