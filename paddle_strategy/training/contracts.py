"""What the Trainer expects of the model's output, loss_fn and the metrics, checked where they are called, so that
misuse is an error naming the culprit and what was expected — not Paddle's error from deep inside a step, nor a
run that trains nothing:

- forward's output must be something loss_fn(output, label) can take (not a dict);
- loss_fn must return a paddle Tensor of one element (the batch's mean loss); its exceptions, and those of the
  backward pass, are re-raised naming loss_fn, the output and the label (the original is `__cause__`);
- the first update must give a gradient to some trainable parameter: a loss that is a constant, a Python number
  or computed under no_grad trains nothing;
- on the constructor's first batch: a paddle.nn loss is called (it runs no user code; a loss function of yours
  is not, as it may count its calls), so a tuple output, `reduction='none'` or float labels for
  CrossEntropyLoss fail before training; each metric is tried (metrics.py checks what it returns).
"""
from __future__ import annotations

import paddle

from .._checks import described, with_context
from .loading import to_numpy

__all__ = ["check_first_batch", "call_loss", "check_loss", "backward_error", "no_gradient_error", "callable_name"]


def callable_name(fn) -> str:
    """A loss or metric as the user knows it: a paddle.nn Layer by its class, a function by its name."""
    fn = getattr(fn, "func", fn)  # functools.partial (a YAML loss or metric with arguments)
    if isinstance(fn, paddle.nn.Layer):
        return type(fn).__name__
    return (getattr(fn, "__qualname__", None) or type(fn).__name__).rpartition("<locals>.")[2]


def _is_paddle_loss(fn) -> bool:
    """One of paddle.nn's losses: no user code runs when it is called."""
    return isinstance(fn, paddle.nn.Layer) and type(fn).__module__.startswith("paddle.nn.")


def _inputs(out, label) -> str:
    """`(output: ...; label: ...)` and a hint when forward's output is a tuple."""
    text = f"(output: {described(out)}; label: {described(label)})"
    if isinstance(out, (tuple, list)):
        text += (f"; forward returned a {type(out).__name__}, which loss_fn gets as it is: return the logits alone "
                 f"from forward, or pick them in loss_fn (lambda out, label: loss(out[0], label))")
    return text


def check_loss(loss, where: str):
    """`loss` must be a Tensor holding one number."""
    if not isinstance(loss, paddle.Tensor):
        raise TypeError(f"Trainer: {where} returned {described(loss)}; it must return a paddle Tensor computed from "
                        f"the model's output (a Python or NumPy number carries no gradient).")
    if loss.size != 1:
        raise ValueError(f"Trainer: {where} returned a loss of shape {list(loss.shape)}; one number per batch is "
                         f"expected, the batch's mean (reduction='mean', or .mean() of a per-sample loss).")
    return loss


def call_loss(loss_fn, out, label):
    """loss_fn(out, label), checked (check_loss); an exception inside it is re-raised naming loss_fn and its
    inputs."""
    name = f"loss_fn {callable_name(loss_fn)}"
    try:
        loss = loss_fn(out, label)
    except Exception as exc:
        raise with_context(exc, f"Trainer: {name}(output, label) raised {type(exc).__name__}: {exc} "
                                f"{_inputs(out, label)}.") from exc
    return check_loss(loss, name)


def backward_error(exc, loss_fn, out, label):
    """The exception to raise `from exc` when backward failed (e.g. CrossEntropyLoss's gradient of float
    labels: 'not implemented for data type float32')."""
    what = "training_step's loss" if loss_fn is None else f"the loss of loss_fn {callable_name(loss_fn)}"
    inputs = "" if loss_fn is None else f" {_inputs(out, label)}"
    return with_context(exc, f"Trainer: the backward pass of {what} raised {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())}{inputs}.")


def no_gradient_error(loss, where: str):
    """The first update gave no trainable parameter a gradient: nothing would ever train."""
    why = ("the loss does not depend on anything trainable (loss.stop_gradient is True: a constant such as "
           "paddle.to_tensor(1.0), or a value computed under paddle.no_grad() or through .numpy() / float())"
           if loss.stop_gradient else "the loss depends on none of the parameters the optimizer updates")
    return RuntimeError(f"Trainer: the first update gave no gradient to any trainable parameter: {why}. {where} "
                        f"must compute the loss from the model's output. Nothing was updated.")


def _check_labels(loss_fn, label):
    """CrossEntropyLoss takes class indices (its gradient has no float-label kernel) unless soft_label."""
    if isinstance(loss_fn, paddle.nn.CrossEntropyLoss) and not getattr(loss_fn, "soft_label", False) \
            and isinstance(label, paddle.Tensor) and label.is_floating_point():
        raise TypeError(f"Trainer: loss_fn CrossEntropyLoss takes class indices as labels (integers, int64), but "
                        f"the first batch's label is {described(label)}: give the dataset integer labels "
                        f"(np.int64), or CrossEntropyLoss(soft_label=True) for class probabilities.")


def check_first_batch(model, loss_fn, metrics, args, kwargs, label):
    """One forward of `model` on the first batch (eval mode, no gradients), checked as the module docstring says."""
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            out = model(*args, **kwargs)
            if isinstance(out, dict):
                raise TypeError(f"Trainer: {type(model).__name__}.forward returned a dict with keys "
                                f"{sorted(map(str, out))[:10]} on the first batch, which loss_fn(output, label) "
                                f"cannot take: return the logits (a Tensor) from forward and compute metrics outside "
                                f"it, or implement PaddleHub 2.x's training_step(batch, batch_idx) / validation_step "
                                f"returning {{'loss': ..., 'metrics': {{...}}}}.")
            if _is_paddle_loss(loss_fn):
                _check_labels(loss_fn, label)
                call_loss(loss_fn, out, label)
    finally:
        if was_training:
            model.train()
    if metrics:
        preds, labels = to_numpy(out), to_numpy(label)
        for m in metrics:
            m.update(preds, labels)
            m.accumulate()
            m.reset()
