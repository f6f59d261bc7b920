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
from .loading import batch_size as _samples_in, check_map_style, split_batch, to_numpy
from .distributed import gather_objects
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
        check_map_style(f"Trainer.eval: {name}", dataset)
        if len(dataset) == 0:
            raise ValueError(f"Trainer.eval: {name} is empty (its loss would be NaN and its metrics made of nothing).")
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

    def _my_batches(self, dataset, batch_size, name):
        """(numbers, Batches) of this process's share of the sequential batches of `dataset`: batch b goes to rank
        b % processes, so each sample is read once per pass over all processes."""
        index_batches = list(SequentialBatches(len(dataset), batch_size))
        mine = list(range(self.rank, len(index_batches), self.nranks))
        return mine, self._batches(None, num_workers=0, dataset=dataset, name=name, stream="eval",
                                   index_batches=[index_batches[b] for b in mine])

    def _in_order(self, records, what):
        """Every process's (batch number, ...) records, gathered and sorted by batch number."""
        if self.nranks > 1:
            records = [r for part in self._collective(what, lambda: gather_objects(records)) for r in part]
        return sorted(records, key=lambda r: r[0])

    def _evaluate(self, dataset, name):
        """The evaluation of `dataset`: each process computes its share of the batches; the losses, predictions and
        labels of all batches are then accumulated in batch order on every process, so every metric equals the
        one-process result exactly."""
        numbers, loader = self._my_batches(dataset, self.eval_batch_size, name)
        was_training = self.model.training
        self.model.eval()
        records = []  # (batch, samples, loss, predictions, labels) or (batch, samples, loss, hub metrics)
        try:
            with paddle.no_grad():
                for b, batch in zip(numbers, loader):
                    n = _samples_in(batch)
                    if self.hub_protocol:
                        result = self.model.validation_step(batch, b)
                        loss = None if result.get("loss") is None else float(result["loss"])
                        records.append((b, n, loss, {k: float(v) for k, v in (result.get("metrics") or {}).items()}))
                    else:
                        args, kwargs, label = split_batch(batch)
                        out = self.model(*args, **kwargs)
                        records.append((b, n, float(self.loss_fn(out, label)), to_numpy(out), to_numpy(label)))
        finally:
            if was_training:
                self.model.train()
        for m in self.metrics:
            m.reset()
        total, count, hub = 0.0, 0, {}
        for record in self._in_order(records, f"gathering the evaluation of {name}"):
            n, loss = record[1], record[2]
            if loss is not None:
                total += loss * n
            if self.hub_protocol:
                for k, v in record[3].items():
                    hub[k] = hub.get(k, 0.0) + v * n
            else:
                for m in self.metrics:
                    m.update(record[3], record[4])
            count += n
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
        if isinstance(value, float) and math.isnan(value) and not getattr(self, "_said_nan", False):
            self._said_nan = True
            self._say(f"[eval] {name} is NaN: NaN is the worst value, so an evaluation with a NaN {name} never "
                      f"becomes the best model (best_model/ is written once {name} is a number; said once).")
        self._scalars({f"eval/{k}": v for k, v in result.items()}, self.global_step)
        if better:
            self.best = {"step": self.global_step, "metric": name, "value": value, "eval": result,
                         "weights": "ema" if self.ema is not None else "raw"}
            final = os.path.join(self.config.checkpoint_dir, "best_model")
            with self.sync.rank0_section(f"writing {final}"):
                if self.is_main:
                    self._write_best(final)

    def _write_best(self, final):
        """Rank 0: the model as it is now (the average, with EMA) and metrics.json, in `final` (atomic)."""
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
        check_map_style("Trainer.predict: dataset", dataset)
        self._build_env("predict")
        with self._averaged_weights():
            self._fire("predict_start_event", num_samples=len(dataset))
            outputs = self._predict(dataset, batch_size, has_label)
            self._fire("predict_end_event", num_samples=len(dataset), outputs=outputs)
        return outputs

    def _predict(self, dataset, batch_size, has_label):
        numbers, loader = self._my_batches(dataset, batch_size or self.eval_batch_size, "dataset")
        was_training = self.model.training
        self.model.eval()
        outputs = []
        try:
            with paddle.no_grad():
                for b, batch in zip(numbers, loader):
                    if not isinstance(batch, (dict, list, tuple)):
                        batch = [batch]
                    # a dict's label / labels entry is always left out; a list's last field when it is a label
                    drop = not isinstance(batch, dict) and (
                        self._drops_label(len(batch)) if has_label is None else bool(has_label))
                    args, kwargs, _ = split_batch(batch, has_label=drop, where="Trainer.predict")
                    outputs.append((b, to_numpy(self.model(*args, **kwargs))))
        finally:
            if was_training:
                self.model.train()
        outputs = [out for _, out in self._in_order(outputs, "gathering the predictions")]
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
