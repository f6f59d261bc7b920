"""One optimizer update of the Trainer: k micro-batches (gradient accumulation), mixed precision, data-parallel
averaging, the finite check, the step, the schedule and the weight average — in that order, in one place.

    for each micro-batch j of the group (n_j samples, N in the group):
        loss_j = loss_fn(model(inputs_j), label_j)            (under auto_cast with AMP)
        backward(loss_j * n_j / N)                           (scaled by the GradScaler with float16)
    all_reduce the accumulated gradients once (several processes), unscale them (float16),
    check the loss and gradients are finite, then optimizer.step() (clip, then L1 / L2 / L2-SP, then the
    update), clear the gradients, step the schedule (gradual unfreezing), update the EMA.

The update therefore equals one batch of all the group's samples (a mean loss weighted by each micro-batch's
share), whatever k is, and a short last group of an epoch is a batch of exactly its samples. The loss and the
first update's gradients are checked (contracts.py); the training metrics see the update's outputs only once it
is complete, so a metric that raises leaves a consistent state, not an update half-done.
"""
from __future__ import annotations

import math

import paddle

from .._checks import with_context
from .contracts import backward_error, call_loss, check_loss, no_gradient_error
from .loading import split_batch, to_numpy

__all__ = ["Updates", "groups"]


def groups(index_batches, k):
    """The epoch's batches (index lists) cut into groups of k consecutive ones; the last may be shorter."""
    return [index_batches[i:i + k] for i in range(0, len(index_batches), k)]


class Updates:
    """Trainer methods for one optimizer update (a mixin)."""

    def _forward_backward(self, batch, batch_idx, share, keep_outputs):
        """Forward, loss and backward of one micro-batch, its loss weighted by `share` (its part of the update's
        samples). Returns (the weighted loss, per-batch metrics of the hub protocol, (predictions, labels) as
        NumPy when keep_outputs, else None)."""
        out = label = None
        with self.amp.autocast():
            if self.hub_protocol:
                result = self.model.training_step(batch, batch_idx)
                loss = check_loss(result["loss"], f"{type(self.model).__name__}.training_step's 'loss'")
                hub = {k: float(v) for k, v in (result.get("metrics") or {}).items()}
            else:
                args, kwargs, label = split_batch(batch)
                out = self.model(*args, **kwargs)
                loss, hub = call_loss(self.loss_fn, out, label), {}
        if share != 1:
            loss = loss * share
        try:
            self.amp.backward(loss)
        except Exception as exc:
            raise backward_error(exc, None if self.hub_protocol else self.loss_fn, out, label) from exc
        return loss, hub, ((to_numpy(out), to_numpy(label)) if keep_outputs and out is not None else None)

    def _update_metrics(self, metrics, outputs):
        """The training metrics, with the outputs of an update that is complete (so an error here leaves a
        consistent state: finetune() again continues after that update)."""
        try:
            for preds, labels in outputs:
                for m in metrics:
                    m.update(preds, labels)
        except Exception as exc:
            raise with_context(exc, f"{exc} (training metrics of step {self.global_step}, an update that is "
                                    f"complete: finetune() again continues after it)") from exc

    def _all_reduce_grads(self, losses):
        """Average the gradients and the micro-batch losses over the processes (one flat all_reduce); returns
        (losses, sum of every gradient element) as every rank sees them."""
        params = [p for _, p in self._trainable if not p.stop_gradient]
        grads = [p.grad for p in params]
        pieces = [paddle.zeros([int(p.size)], dtype="float32") if g is None else g.reshape([-1]).astype("float32")
                  for p, g in zip(params, grads)]
        k = int(losses.shape[0])
        flat = paddle.concat(pieces + [losses.astype("float32")])
        self._collective(f"the gradient all_reduce of step {self.global_step + 1}",
                         lambda: paddle.distributed.all_reduce(flat))
        flat = flat / self.nranks
        offset = 0
        for p, g in zip(params, grads):
            n = int(p.size)
            if g is not None:
                paddle.assign(flat[offset:offset + n].reshape(g.shape).astype(g.dtype), output=g)
            offset += n
        values = paddle.concat([flat[-k:], paddle.sum(flat[:-k]).reshape([1])]).numpy()
        return [float(v) for v in values[:-1]], float(values[-1])

    def _losses_and_gradient_sum(self, losses):
        """(losses, sum of every gradient element) with one device-to-host copy. The sum is finite exactly when
        every gradient is (unless finite values overflow float32, which _first_nonfinite_gradient sorts out)."""
        grads = [p.grad for _, p in self._trainable if not p.stop_gradient and p.grad is not None]
        total = paddle.add_n([paddle.sum(g).astype("float32") for g in grads]) if grads else paddle.zeros([])
        values = paddle.concat([losses.astype("float32"), total.reshape([1])]).numpy()
        return [float(v) for v in values[:-1]], float(values[-1])

    def _first_nonfinite_gradient(self):
        for name, p in self._trainable:
            if not p.stop_gradient and p.grad is not None and not bool(paddle.isfinite(p.grad).all()):
                return name
        return None

    def _stop(self, what, first_batch, micro=None):
        self.optimizer.clear_grad()
        last = self._latest_checkpoint_name()
        where = f"epoch {self.epoch}, batch {first_batch}"
        if micro is not None:
            j, k = micro
            where = f"epoch {self.epoch}, micro-batch {j + 1} of {k}: batch {first_batch + j}"
        raise FloatingPointError(
            f"{what} at step {self.global_step + 1} ({where}); training stopped before that update. "
            + (f"The last good checkpoint, {last}, is intact." if last else "No checkpoint was written yet."))

    def _update(self, batches, group, keep_outputs):
        """Take one optimizer update over the next len(group) batches of `batches` (group: their index lists).
        Returns (loss of the update, lr used, hub-protocol metrics summed over samples, samples, skipped,
        [(predictions, labels)] of its micro-batches when keep_outputs)."""
        sizes = [len(ix) for ix in group]
        total = sum(sizes)
        first = self.batch_in_epoch
        losses, hub, outputs = [], {}, []
        for j, n in enumerate(sizes):
            # the group's mean: each micro-batch weighted by its share of the samples
            loss, hub_metrics, out = self._forward_backward(next(batches), first + j, n / total, keep_outputs)
            losses.append(loss.detach().reshape([1]).astype("float32"))
            outputs += [out] if out is not None else []
            for key, v in hub_metrics.items():
                hub[key] = hub.get(key, 0.0) + v * n
        if not self._had_gradients:  # a loss not connected to the model would train nothing, silently
            if all(p.grad is None for _, p in self._trainable if not p.stop_gradient):
                raise no_gradient_error(loss, "training_step" if self.hub_protocol else "loss_fn")
            self._had_gradients = True
        losses = paddle.concat(losses)
        if self.nranks > 1:  # one all_reduce per update, whatever k is; its sum is of the scaled gradients,
            values, grad_sum = self._all_reduce_grads(losses)  # finite exactly when the unscaled sum is
            self.amp.unscale(self.optimizer)
        else:
            self.amp.unscale(self.optimizer)
            values, grad_sum = self._losses_and_gradient_sum(losses)
        micro = len(sizes) > 1
        for j, v in enumerate(values):
            if not math.isfinite(v):
                self._stop(f"loss is {v * total / sizes[j] if micro else v}", first, (j, len(sizes)) if micro else None)
        value = math.fsum(values) if micro else values[0]
        if not math.isfinite(grad_sum):  # e.g. relu(nan) = 0 hides a NaN input from the loss
            if self.amp.skips_overflow:  # float16 overflow: skip, lower the scale, keep the schedule where it is
                self.amp.skip()
                self.optimizer.clear_grad()
                return value, self.optimizer.get_lr(), hub, total, True, outputs
            bad = self._first_nonfinite_gradient()
            if bad is not None:
                self._stop(f"the gradient of parameter {bad!r} holds NaN or inf (loss {value:.6g})", first)
        lr = self.optimizer.get_lr()
        self.amp.step(self.optimizer)
        self.optimizer.clear_grad()
        self.lr_scheduler.step()
        if self.ema is not None:
            self.ema.update()
        return value, lr, hub, total, False, outputs
