"""Learning-rate range test (Smith 2015, "Cyclical Learning Rates"; fastai's `lr_find`).

Train for `num_it` updates with the learning rate growing exponentially from `start_lr` to `end_lr`, record
the loss at each one, then put the model and the optimizer back exactly as they were. The loss curve against
the learning rate (log scale) shows where training is fastest and where it diverges; `valley`, `steep` and
`minimum` turn it into a suggested learning rate, as fastai does.

    lr_i       = start_lr * (end_lr / start_lr) ** (i / (num_it - 1))          i = 0 .. num_it - 1
    avg_i      = smooth * avg_{i-1} + (1 - smooth) * loss_i                      avg_{-1} = 0
    smoothed_i = avg_i / (1 - smooth ** (i + 1))                                 (bias-corrected EMA)

loss_i is measured by the forward pass of update i, before the update made with lr_i (fastai's convention).
The sweep stops once smoothed_i > div_threshold * min_{j<=i} smoothed_j (stop_div, positive losses) or it
is NaN / infinite. The sweep is a schedule (parts.anneal_exp, `sweep_schedule`) run by the same StrategyLR
that training uses.

The exact restore of model, optimizer and RNG state afterwards is `snapshot.Snapshot`.
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import paddle

from ._checks import check_bool, check_number
from .blocks import TraceCall
from .lr import StrategyLR
from .schedules.parts import Schedule, anneal_exp
from .snapshot import Snapshot
from .training.loading import split_batch

__all__ = ["lr_find", "LRFindResult", "sweep_lrs", "sweep_schedule", "smooth_losses", "minimum", "steep", "valley", "suggest"]


# ------------------------------------------------------------------------------------------ formulas
def sweep_schedule(start_lr: float, end_lr: float, num_it: int) -> Schedule:
    """The sweep as a schedule: lr(i) = anneal_exp(start_lr, end_lr, i / (num_it - 1))
    = start_lr * (end_lr / start_lr) ** (i / (num_it - 1)), end_lr held from i = num_it - 1 on."""
    last = num_it - 1
    return lambda i: anneal_exp(start_lr, end_lr, min(i, last) / last)


def sweep_lrs(start_lr: float, end_lr: float, num_it: int) -> np.ndarray:
    """lr_i = start_lr * (end_lr / start_lr) ** (i / (num_it - 1)), i = 0 .. num_it - 1 (float64)."""
    schedule = sweep_schedule(start_lr, end_lr, num_it)
    return np.array([schedule(i) for i in range(num_it)], dtype=np.float64)


def _ema_step(avg: float, loss: float, smooth: float, i: int):
    """One step of the bias-corrected moving average: returns (avg_i, smoothed_i)."""
    avg = smooth * avg + (1.0 - smooth) * loss
    return avg, avg / (1.0 - smooth ** (i + 1))


def smooth_losses(losses, smooth: float = 0.98) -> np.ndarray:
    """smoothed_i = avg_i / (1 - smooth**(i+1)), avg_i = smooth * avg_{i-1} + (1 - smooth) * loss_i, avg_-1 = 0."""
    avg, out = 0.0, []
    for i, loss in enumerate(np.asarray(losses, dtype=np.float64)):
        avg, smoothed = _ema_step(avg, float(loss), smooth, i)
        out.append(smoothed)
    return np.asarray(out, dtype=np.float64)


# ------------------------------------------------------------------------------------------ suggestions
def _curve(lrs, losses, need: int):
    lrs, losses = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    if lrs.ndim != 1 or lrs.shape != losses.shape:
        raise ValueError(f"lrs and losses must be 1-D and of equal length, got shapes {lrs.shape} and "
                         f"{losses.shape}.")
    if len(lrs) < need:
        raise ValueError(f"need at least {need} points, got {len(lrs)}.")
    if not (np.all(np.isfinite(losses)) and np.all(lrs > 0)):
        raise ValueError("losses must be finite and lrs > 0 (cut the curve at its first NaN).")
    return lrs, losses


def minimum(lrs, losses) -> float:
    """lrs[argmin losses] / 10: a tenth of the learning rate at the lowest loss."""
    lrs, losses = _curve(lrs, losses, 1)
    return float(lrs[np.argmin(losses)] / 10)


def steep(lrs, losses) -> float:
    """lrs[i*], i* = argmin_i (losses[i+1] - losses[i]) / (ln lrs[i+1] - ln lrs[i]): where the loss falls
    fastest per unit of log learning rate (the start of the steepest segment)."""
    lrs, losses = _curve(lrs, losses, 2)
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[np.argmin(slopes)])


def valley_index(losses) -> int:
    """The index `valley` picks: d_i = length of the longest strictly decreasing subsequence of losses that
    ends at i; e = the first i with the largest d_i, L = d_e; index = max(0, e - L + floor(L/3) + floor(L/6)),
    i.e. about halfway down the longest valley (fastai's rule, which starts the valley at e - L)."""
    losses = np.asarray(losses, dtype=np.float64)
    longest = np.ones(len(losses), dtype=np.int64)
    for i in range(1, len(losses)):
        higher = losses[:i] > losses[i]
        if higher.any():
            longest[i] = longest[:i][higher].max() + 1
    end = int(np.argmax(longest))
    length = int(longest[end])
    return max(0, end - length + length // 3 + length // 6)


def valley(lrs, losses) -> float:
    """lrs[valley_index(losses)]: about halfway down the longest valley of the loss curve (fastai's `valley`)."""
    lrs, losses = _curve(lrs, losses, 1)
    return float(lrs[valley_index(losses)])


SUGGESTIONS = {"valley": valley, "steep": steep, "minimum": minimum}


def suggest(lrs, smoothed, num_it: int | None = None, skip_end: int = 5) -> dict:
    """{valley, steep, minimum} on the smoothed curve, as fastai: the first num_it // 10 and the last
    `skip_end` points are left out (num_it defaults to the curve's length), then the curve is cut at its first
    NaN / inf. When fewer than 2 points would remain, the whole finite start of the curve is used; with fewer
    than 2 finite points, every suggestion is NaN."""
    lrs, smoothed = np.asarray(lrs, dtype=np.float64), np.asarray(smoothed, dtype=np.float64)
    num_it = len(lrs) if num_it is None else num_it

    def finite_start(a, b):
        bad = np.flatnonzero(~np.isfinite(b))
        n = bad[0] if len(bad) else len(b)
        return a[:n], b[:n]

    kept = slice(num_it // 10, max(0, len(lrs) - skip_end))
    x, y = finite_start(lrs[kept], smoothed[kept])
    if len(x) < 2:
        x, y = finite_start(lrs, smoothed)
    if len(x) < 2:
        return {name: math.nan for name in SUGGESTIONS}
    return {name: fn(x, y) for name, fn in SUGGESTIONS.items()}


# ------------------------------------------------------------------------------------------ result
@dataclass
class LRFindResult:
    """What `lr_find` recorded: lrs[i] and losses[i] (raw) / smoothed[i] for each update made, the suggested
    learning rates {valley, steep, minimum}, and why the sweep stopped ("completed", "diverged",
    "non-finite loss" or "data exhausted")."""

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestions: dict
    stop_reason: str
    num_it: int
    smooth: float = field(default=0.98, repr=False)

    def __repr__(self):
        sug = ", ".join(f"{k}={v:.3g}" for k, v in self.suggestions.items())
        return (f"LRFindResult({len(self.lrs)} of {self.num_it} updates, {self.stop_reason}, lr "
                f"{self.lrs[0]:.3g} .. {self.lrs[-1]:.3g}; {sug})" if len(self.lrs) else
                f"LRFindResult(no updates, {self.stop_reason})")

    def plot(self, path, title: str | None = None):
        """Write a PNG of the smoothed loss (raw loss faint) against the learning rate (log x), with the
        suggestions marked on the curve. Needs matplotlib. Returns `path`."""
        from .plotting import new_figure
        fig = new_figure((7.0, 4.5))
        ax = fig.add_subplot(1, 1, 1)
        finite = np.isfinite(self.smoothed)
        ax.plot(self.lrs, self.losses, color="0.75", linewidth=0.8, label="loss")
        ax.plot(self.lrs[finite], self.smoothed[finite], color="C0", linewidth=1.8,
                label=f"smoothed loss (EMA {self.smooth:g})")
        markers = {"valley": ("o", "C1"), "steep": ("s", "C2"), "minimum": ("^", "C3")}
        x, y = np.log(self.lrs[finite]), self.smoothed[finite]
        for name, lr in self.suggestions.items():
            if not math.isfinite(lr) or len(x) == 0:
                continue
            marker, color = markers.get(name, ("D", "C4"))
            ax.plot([lr], [np.interp(math.log(lr), x, y)], marker=marker, color=color, markersize=8,
                    linestyle="none", label=f"{name}: {lr:.2e}")
        ax.set_xscale("log")
        if finite.any():  # the raw loss may jump far above the curve at the end: keep the curve in view
            raw = self.losses[np.isfinite(self.losses)]
            lo, hi = float(min(np.min(y), np.min(raw))), float(np.max(y))
            pad = 0.08 * (hi - lo) if hi > lo else 0.1 * abs(hi) + 1e-12
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("loss")
        ax.set_title(title or f"LR range test: {len(self.lrs)} of {self.num_it} updates ({self.stop_reason})")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        return path


# ------------------------------------------------------------------------------------------ lr_find
def lr_find(model, loss_fn, data, start_lr=1e-7, end_lr=10, num_it=100, *, optimizer=None, strategy=None,
            sample_input=None, smooth=0.98, stop_div=True, div_threshold=4.0) -> LRFindResult:
    """The LR range test: `num_it` updates at lr_i = start_lr * (end_lr / start_lr) ** (i / (num_it - 1)),
    recording each loss, then the model and optimizer restored exactly. Returns an LRFindResult.

    data: an iterable of batches (inputs..., label), run as `loss_fn(model(*inputs), label)`, e.g. a list or
      a paddle DataLoader; re-iterated when it has fewer than num_it batches (a one-shot iterator is not:
      the sweep stops when it runs out).
    The optimizer (one of):
      default          paddle.optimizer.Adam over the trainable parameters;
      strategy=        strategy.build(model, max_train_steps=num_it, steps_per_epoch=num_it, sample_input=...)
                       with the strategy's schedule (and momentum cycling) left out, so its optimizer,
                       clipping, regularization and discriminative multipliers apply (the swept LR is block 0's,
                       multiplier 1) and gradual unfreezing trains only what its first epoch trains;
                       sample_input defaults to the first batch's inputs;
      optimizer=       an existing optimizer, used as it is (its LR scheduler is set aside, not stepped).
    Per-parameter LR factors (ParamAttr learning_rate) multiply the swept LR in every case.
    Stops early when the smoothed loss exceeds div_threshold times its best (stop_div; only once the best is
    positive) or is NaN / inf. Afterwards parameters, buffers, gradients, stop_gradient flags, training
    flags, the optimizer's state (accumulators, LR, scheduler), Paddle's, NumPy's and Python's RNG states and
    Paddle's name counters are as before, so the next training step is the one it would have been.
    """
    _check_args(model, loss_fn, data, start_lr, end_lr, num_it, optimizer, strategy, sample_input, smooth,
                stop_div, div_threshold)
    schedule = sweep_schedule(float(start_lr), float(end_lr), int(num_it))
    lrs, losses, smoothed = [], [], []
    state = Snapshot(model, optimizer)
    batches = _batches(data)
    try:
        first = next(batches, None)
        if first is None:
            raise ValueError(f"lr_find: data yielded no batches (got {type(data).__name__}).")
        inputs, kwargs, label = split_batch(first, where="lr_find")
        if sample_input is None:
            sample_input = TraceCall(model, *inputs, **kwargs)
        opt = _sweep_optimizer(model, optimizer, strategy, num_it, sample_input)
        sweep = StrategyLR(schedule, description="lr_find sweep")
        opt.set_lr_scheduler(sweep)
        model.train()
        stream = itertools.chain([first], batches)
        avg, best, stop_reason = 0.0, math.inf, "completed"
        for i in range(num_it):
            batch = next(stream, None)
            if batch is None:
                stop_reason = "data exhausted"
                warnings.warn(f"lr_find: data ran out after {i} batches (a one-shot iterator cannot be re-read); "
                              f"pass a list or a DataLoader to sweep all {num_it} learning rates.", stacklevel=2)
                break
            inputs, kwargs, label = split_batch(batch, where="lr_find")
            loss = loss_fn(model(*inputs, **kwargs), label)
            if not isinstance(loss, paddle.Tensor):
                raise TypeError(f"lr_find: loss_fn must return a paddle Tensor, got {type(loss).__name__}.")
            if loss.ndim:
                loss = loss.mean()
            value = float(loss)
            avg, smoothed_i = _ema_step(avg, value, smooth, i)
            lrs.append(sweep.last_lr), losses.append(value), smoothed.append(smoothed_i)
            if not math.isfinite(smoothed_i):
                stop_reason = "non-finite loss"
                break
            best = min(best, smoothed_i)
            if stop_div and best > 0 and smoothed_i > div_threshold * best:
                stop_reason = "diverged"
                break
            loss.backward()
            opt.step()
            opt.clear_grad()
            sweep.step()
    finally:
        batches.close()
        state.restore()
    lrs, smoothed = np.asarray(lrs, dtype=np.float64), np.asarray(smoothed, dtype=np.float64)
    return LRFindResult(lrs=lrs, losses=np.asarray(losses, dtype=np.float64), smoothed=smoothed,
                        suggestions=suggest(lrs, smoothed, num_it), stop_reason=stop_reason, num_it=num_it,
                        smooth=smooth)


def _check_args(model, loss_fn, data, start_lr, end_lr, num_it, optimizer, strategy, sample_input, smooth,
                stop_div, div_threshold):
    if not isinstance(model, paddle.nn.Layer):
        raise TypeError(f"lr_find: model must be a paddle.nn.Layer, got {type(model).__name__}.")
    if not callable(loss_fn):
        raise TypeError(f"lr_find: loss_fn must be callable (output, label) -> loss, got {loss_fn!r}.")
    if isinstance(data, (paddle.Tensor, np.ndarray, str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(f"lr_find: data must be an iterable of batches (a list of (inputs..., label) tuples or a "
                        f"paddle DataLoader), got {type(data).__name__}.")
    start_lr = check_number("start_lr", start_lr, low=0, low_open=True)
    check_number("end_lr", end_lr)
    if end_lr <= start_lr:
        raise ValueError(f"end_lr must be > start_lr (= {start_lr!r}), got {end_lr!r}.")
    check_number("num_it", num_it, low=2, integer=True)
    check_number("smooth", smooth, low=0, high=1, high_open=True)
    check_number("div_threshold", div_threshold, low=1, low_open=True)
    check_bool("stop_div", stop_div)
    if optimizer is not None and strategy is not None:
        raise ValueError("lr_find: give optimizer= or strategy=, not both (strategy builds its own optimizer).")
    if optimizer is not None and not isinstance(optimizer, paddle.optimizer.Optimizer):
        raise TypeError(f"lr_find: optimizer must be a paddle.optimizer.Optimizer, got {type(optimizer).__name__}.")
    if strategy is not None and not callable(getattr(strategy, "build", None)):
        raise TypeError(f"lr_find: strategy must be a paddle_strategy strategy (with build(model, ...)), got "
                        f"{type(strategy).__name__}.")
    if sample_input is not None and strategy is None:
        raise ValueError("lr_find: sample_input is only used with strategy= (to trace the model's blocks); "
                         "drop it or pass a strategy.")
    if strategy is None and optimizer is None and not any(not p.stop_gradient for p in model.parameters()):
        raise ValueError("lr_find: the model has no trainable parameters (all have stop_gradient=True).")


def _sweep_optimizer(model, optimizer, strategy, num_it, sample_input):
    if optimizer is not None:
        return optimizer
    if strategy is None:
        return paddle.optimizer.Adam(parameters=[p for p in model.parameters() if not p.stop_gradient])
    # The sweep replaces the strategy's schedule by a constant (build's explicit override): a schedule that
    # cannot fit in num_it steps (ULMFiT's cut, a long warmup) must not stop the sweep, and momentum stays at
    # the optimizer's own value, as in fastai.
    try:
        built, _ = strategy.build(model, max_train_steps=num_it, steps_per_epoch=num_it, sample_input=sample_input,
                                  schedule=_constant_one)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"lr_find: strategy.build(model, max_train_steps={num_it}, steps_per_epoch={num_it}) "
                        f"failed (the sweep is one epoch of num_it updates): {exc}") from exc
    return built


def _constant_one(step):
    return 1.0


def _batches(data):
    """Yield batches from `data`, starting it again when it ends (unless it is a one-shot iterator)."""
    it = iter(data)
    reiterable = it is not data
    while True:
        empty = True
        for batch in it:
            empty = False
            yield batch
        if empty or not reiterable:
            return
        it = iter(data)
