"""Streaming classification metrics for the Trainer, by PaddleHub 1.x's names.

Each metric takes a batch of predictions (logits or probabilities [N, C], or scores [N] for binary) and
integer labels [N], accumulates counts, and gives one number for everything seen since `reset()`. A metric of
yours (a function or a paddle.metric.Metric) that raises, or returns anything but one number, is an error naming
it and what it got.
"""
from __future__ import annotations

from numbers import Real

import numpy as np
import paddle

from .._checks import described, did_you_mean, shown, with_context

__all__ = ["Accuracy", "F1", "Precision", "Recall", "Matthews", "make_metrics", "METRIC_NAMES"]


def _as_classes(preds) -> np.ndarray:
    preds = np.asarray(preds)
    if preds.ndim >= 2 and preds.shape[-1] > 1:
        return preds.argmax(axis=-1).reshape(-1)
    return (preds.reshape(-1) > (0.5 if preds.min(initial=0) >= 0 else 0.0)).astype("int64")


class _Confusion:
    """Counts of (label, predicted class) pairs; subclasses turn them into one number."""

    name = ""

    def __init__(self):
        self.reset()

    def reset(self):
        self.counts = {}

    def update(self, preds, labels):
        pred = _as_classes(preds)
        label = np.asarray(labels).reshape(-1).astype("int64")
        if pred.shape != label.shape:
            raise ValueError(f"metric {shown(self.name)}: {pred.shape[0]} predictions for {label.shape[0]} labels.")
        pairs, n = np.unique(np.stack([label, pred]), axis=1, return_counts=True)
        for (y, p), k in zip(pairs.T.tolist(), n.tolist()):
            self.counts[(y, p)] = self.counts.get((y, p), 0) + k

    def _matrix(self):
        classes = sorted({c for pair in self.counts for c in pair} | {0, 1})
        index = {c: i for i, c in enumerate(classes)}
        m = np.zeros((len(classes), len(classes)), dtype="float64")
        for (y, p), k in self.counts.items():
            m[index[y], index[p]] = k
        return m

    def _per_class(self):
        """(tp, fp, fn) per class."""
        m = self._matrix()
        tp = np.diag(m)
        return tp, m.sum(axis=0) - tp, m.sum(axis=1) - tp


class Accuracy(_Confusion):
    """Correct predictions / all predictions."""

    name = "acc"

    def accumulate(self):
        m = self._matrix()
        return float(np.trace(m) / m.sum()) if m.sum() else 0.0


def _ratio(num, den):
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


class Precision(_Confusion):
    """Binary (2 classes): tp / (tp + fp) of class 1. More classes: the macro average over classes."""

    name = "precision"

    def _value(self, tp, fp, fn):
        return _ratio(tp, tp + fp)

    def accumulate(self):
        values = self._value(*self._per_class())
        return float(values[1] if len(values) == 2 else values.mean())


class Recall(Precision):
    """Binary: tp / (tp + fn) of class 1. More classes: the macro average."""

    name = "recall"

    def _value(self, tp, fp, fn):
        return _ratio(tp, tp + fn)


class F1(Precision):
    """Binary: 2·tp / (2·tp + fp + fn) of class 1 (PaddleHub's F1). More classes: the macro average."""

    name = "f1"

    def _value(self, tp, fp, fn):
        return _ratio(2 * tp, 2 * tp + fp + fn)


class Matthews(_Confusion):
    """Matthews correlation coefficient (binary: (tp·tn − fp·fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn));
    multi-class: Gorodkin's generalization). 0 when a denominator is 0."""

    name = "matthews"

    def accumulate(self):
        m = self._matrix()
        s = m.sum()
        correct = np.trace(m)
        pred, true = m.sum(axis=0), m.sum(axis=1)
        den = np.sqrt((s * s - pred @ pred) * (s * s - true @ true))
        return float((correct * s - pred @ true) / den) if den > 0 else 0.0


class _Yours:
    """A metric of the user's: its calls re-raise naming it, and what it returns must be one number."""

    name = "metric"

    def _call(self, what, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:
            raise with_context(exc, f"metric {self.name!r}: {what} raised {type(exc).__name__}: {exc}") from exc

    def _number(self, what, value, preds=None, labels=None):
        if isinstance(value, (paddle.Tensor, np.ndarray)) and value.size == 1:
            value = value.item()
        if isinstance(value, Real) and not isinstance(value, (bool, np.bool_)):
            return float(value)
        got = "" if preds is None else f" (preds: {described(preds)}; labels: {described(labels)})"
        raise TypeError(f"metric {self.name!r}: {what} must return one number, got {described(value)}{got}.")


class _PaddleMetric(_Yours):
    """A paddle.metric.Metric instance: compute() then update(), as paddle.Model does."""

    def __init__(self, metric):
        self.metric = metric
        names = metric.name()
        self.name = names[0] if isinstance(names, (list, tuple)) else str(names)

    def reset(self):
        self._call("reset()", self.metric.reset)

    def update(self, preds, labels):
        out = self._call("compute(preds, labels)", self.metric.compute, paddle.to_tensor(preds),
                         paddle.to_tensor(labels))
        self._call("update(...)", self.metric.update, *(out if isinstance(out, (list, tuple)) else [out]))

    def accumulate(self):
        value = self._call("accumulate()", self.metric.accumulate)
        return self._number("accumulate()", value[0] if isinstance(value, (list, tuple)) else value)


class _Callable(_Yours):
    """fn(preds, labels) -> float, averaged over batches weighted by batch size."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", "metric")
        self.reset()

    def reset(self):
        self.total, self.count = 0.0, 0

    def update(self, preds, labels):
        n = len(np.asarray(labels).reshape(-1))
        what = f"{self.name}(preds, labels)"
        self.total += self._number(what, self._call(what, self.fn, preds, labels), preds, labels) * n
        self.count += n

    def accumulate(self):
        return self.total / self.count if self.count else 0.0


METRIC_NAMES = {"acc": Accuracy, "accuracy": Accuracy, "f1": F1, "precision": Precision, "recall": Recall,
                "matthews": Matthews, "mcc": Matthews}


def make_metrics(metrics) -> list:
    """Metric objects for `metrics`: names (METRIC_NAMES), paddle.metric.Metric instances or callables."""
    if metrics is None:
        return []
    if isinstance(metrics, (str, paddle.metric.Metric)) or callable(metrics):
        metrics = [metrics]
    out = []
    for i, m in enumerate(metrics):
        if isinstance(m, str):
            if m.lower() not in METRIC_NAMES:
                raise ValueError(f"metrics[{i}]: unknown metric {shown(m)}. Allowed: "
                                 f"{', '.join(sorted(METRIC_NAMES))}, a paddle.metric.Metric or a callable "
                                 f"fn(preds, labels) -> float.{did_you_mean(m, METRIC_NAMES)}")
            out.append(METRIC_NAMES[m.lower()]())
        elif isinstance(m, paddle.metric.Metric):
            out.append(_PaddleMetric(m))
        elif callable(m):
            out.append(_Callable(m))
        else:
            raise TypeError(f"metrics[{i}] must be a metric name, a paddle.metric.Metric or a callable, "
                            f"got {shown(m)} ({type(m).__name__}).")
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise ValueError(f"metrics: names must be distinct, got {names}.")
    return out
