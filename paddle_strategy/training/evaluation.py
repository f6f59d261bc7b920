"""The Trainer's evaluation and prediction, and the best model (NaN is the worst value). With an EMA of the
weights, evaluation, prediction and the best model use the averaged weights; the raw ones are put back after."""
from __future__ import annotations

import contextlib
import inspect
import json
import math
import os

import numpy as np
import paddle

from . import checkpoint_files as ckpt
from .loading import batch_size as _samples_in, split_batch, to_numpy
from .sampling import SequentialBatches

__all__ = ["Evaluation"]


class Evaluation:
    """Trainer methods for eval(), predict() and keeping the best model (a mixin)."""

    def eval(self, dataset=None):
        """Evaluate on `dataset` (default eval_dataset): {'loss': mean loss, metric: value, ...}."""
        return self._eval(dataset, during_training=False)

    def _eval(self, dataset, during_training):
        dataset = self.eval_dataset if dataset is None else dataset
        if dataset is None:
            raise ValueError("Trainer.eval: no dataset given and no eval_dataset.")
        name = "eval_dataset" if dataset is self.eval_dataset else "dataset"
        self._build_env("eval")
        with self._averaged_weights():
            self._fire("eval_start_event", dataset=name, num_samples=len(dataset), during_training=during_training)
            result = self._evaluate(dataset, name)
            metric, value = self._main_metric(result)
            if during_training:
                self.history.append({"step": self.global_step, "epoch": self.epoch, **result})
            self._fire("eval_end_event", dataset=name, num_samples=len(dataset), during_training=during_training,
                       result=result, metric=metric, value=value)
        if during_training and getattr(self.lr_scheduler, "plateau", None) is not None \
                and self.lr_scheduler.report(value):
            self._say(f"[plateau] {metric} has not improved: learning rate x{self.lr_scheduler.scale:.3g} from now on")
        return result

    def _averaged_weights(self):
        """A context in which the model holds the EMA weights (if any)."""
        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def _evaluate(self, dataset, name):
        loader = self._batches(SequentialBatches(len(dataset), self.eval_batch_size), num_workers=0,
                               dataset=dataset, name=name, stream="eval")
        was_training = self.model.training
        self.model.eval()
        for m in self.metrics:
            m.reset()
        total, count, hub = 0.0, 0, {}
        try:
            with paddle.no_grad():
                for i, batch in enumerate(loader):
                    n = _samples_in(batch)
                    if self.hub_protocol:
                        result = self.model.validation_step(batch, i)
                        if result.get("loss") is not None:
                            total += float(result["loss"]) * n
                        for k, v in (result.get("metrics") or {}).items():
                            hub[k] = hub.get(k, 0.0) + float(v) * n
                    else:
                        args, kwargs, label = split_batch(batch)
                        out = self.model(*args, **kwargs)
                        total += float(self.loss_fn(out, label)) * n
                        preds, labels = to_numpy(out), to_numpy(label)
                        for m in self.metrics:
                            m.update(preds, labels)
                    count += n
        finally:
            if was_training:
                self.model.train()
        result = {"loss": total / count if count else float("nan")}
        result.update({m.name: m.accumulate() for m in self.metrics})
        result.update({k: v / count for k, v in hub.items()})
        return result

    def _main_metric(self, result):
        name = self.main_metric
        if name is None or name not in result:
            extra = [k for k in result if k != "loss"]
            name = extra[0] if (self.hub_protocol and extra and name is None) else "loss"
        return name, result[name]

    def _evaluate_in_training(self):
        """The default eval_interval_event: evaluate eval_dataset (eval_end_event's default keeps the best)."""
        return self._eval(None, during_training=True)

    def _report_and_keep_best(self, info):
        """The default eval_end_event during training: the [eval] line, eval/* scalars, and best_model when the
        main metric beats the best so far (with an EMA, the averaged weights are in the model here)."""
        result, name, value = info["result"], info["metric"], info["value"]
        better = _better(value, None if self.best is None else self.best["value"], lower=name == "loss")
        self._say(f"[eval] step {self.global_step} " + " ".join(f"{k} {v:.4f}" for k, v in result.items())
                  + ("  (best so far, saved)" if better else ""))
        self._scalars({f"eval/{k}": v for k, v in result.items()}, self.global_step)
        if better:
            self.best = {"step": self.global_step, "metric": name, "value": value, "eval": result,
                         "weights": "ema" if self.ema is not None else "raw"}
            if self.is_main:
                final = os.path.join(self.config.checkpoint_dir, "best_model")
                self._check_parameters_finite(final)
                state = {k: v.numpy() for k, v in self.model.state_dict().items()}

                def write(tmp):
                    ckpt.save_tensors(os.path.join(tmp, "model.safetensors"), state)
                    with open(os.path.join(tmp, "metrics.json"), "w", encoding="utf-8") as f:
                        json.dump(self.best, f, indent=1)
                ckpt.write_atomic_dir(final, write)

    def predict(self, dataset, batch_size=None, has_label=None):
        """Model outputs for every sample of `dataset` (numpy, concatenated over batches).

        has_label: whether each sample's last field is a label to leave out; None guesses from the number
        of positional arguments model.forward takes.
        """
        self._build_env("predict")
        with self._averaged_weights():
            self._fire("predict_start_event", num_samples=len(dataset))
            outputs = self._predict(dataset, batch_size, has_label)
            self._fire("predict_end_event", num_samples=len(dataset), outputs=outputs)
        return outputs

    def _predict(self, dataset, batch_size, has_label):
        bs = batch_size or self.eval_batch_size
        loader = self._batches(SequentialBatches(len(dataset), bs), num_workers=0, dataset=dataset, stream="eval")
        was_training = self.model.training
        self.model.eval()
        outputs = []
        try:
            with paddle.no_grad():
                for batch in loader:
                    if not isinstance(batch, (dict, list, tuple)):
                        batch = [batch]
                    # a dict's label / labels entry is always left out; a list's last field when it is a label
                    drop = not isinstance(batch, dict) and (
                        self._drops_label(len(batch)) if has_label is None else bool(has_label))
                    args, kwargs, _ = split_batch(batch, has_label=drop, where="Trainer.predict")
                    out = self.model(*args, **kwargs)
                    outputs.append(to_numpy(out))
        finally:
            if was_training:
                self.model.train()
        return np.concatenate(outputs, axis=0) if outputs else np.zeros((0,))

    def _drops_label(self, fields):
        try:
            params = inspect.signature(self.model.forward).parameters.values()
        except (TypeError, ValueError):
            return False
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            return False
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        return fields > len(positional)


def _better(value, best, lower):
    """Whether an evaluation result beats the best so far; NaN is the worst value (never best, always beaten)."""
    if value is None or math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value < best if lower else value > best
