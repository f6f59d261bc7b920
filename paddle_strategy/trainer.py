"""PaddleHub 1.x's RunConfig and a Trainer that runs a strategy: logging, evaluation, checkpoints, resume.

    config = ps.RunConfig(num_epoch=3, batch_size=32, strategy=ps.ULMFiTStrategy(), checkpoint_dir="ckpt")
    trainer = ps.Trainer(model, config, train_ds, dev_ds, loss_fn=paddle.nn.CrossEntropyLoss(), metrics=["acc"])
    trainer.finetune_and_eval()

Checkpoints live in `checkpoint_dir/step_<n>/` (model, optimizer by structured parameter names, schedule and
unfreeze state, RNG streams and the data position, with a manifest of sizes and SHA-256 digests); running the
same script again with the same `checkpoint_dir` resumes from the newest intact one.
"""
from __future__ import annotations

import inspect
import json
import math
import os
import shutil
import signal
import sys
import time

import numpy as np
import paddle

from . import checkpoints as ckpt
from ._checks import check_number
from .blocks import TraceCall
from .checkpoints import CheckpointError
from .loading import Batches
from .metrics import make_metrics
from .stopping import StopSignals, stopped

__all__ = ["RunConfig", "Trainer", "CheckpointError"]

_said_no_gpu = False


class _Default:
    """A default value that remembers it was not given (for arguments accepted only for compatibility)."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return repr(self.value)


def _given(value):
    return not isinstance(value, _Default)


def _plain(value):
    return value.value if isinstance(value, _Default) else value


class RunConfig:
    """PaddleHub 1.x's RunConfig: the same arguments and defaults.

    log_interval / eval_interval / save_ckpt_interval are in steps (None: no periodic evaluation or
    checkpoint; evaluation also runs at each epoch end and a checkpoint is written at the end of training).
    batch_size is per process. strategy=None is 1.x's DefaultStrategy: Adam at a constant 1e-4.
    use_cuda=True trains on the GPU when this Paddle has one, else on the CPU (said once).
    use_pyreader and enable_memory_optim are accepted and ignored (a one-line notice when given).
    Keyword-only extras: seed (data order and dropout), keep_checkpoints (how many step checkpoints
    to keep), num_workers (DataLoader worker processes), shuffle (the training data each epoch),
    eval_start_step (no periodic evaluation before this step; PP-OCR's eval_batch_step[0]), resume_from (a
    step_<n> checkpoint directory to resume from; checkpoint_dir then defaults to its parent, and it must be
    the newest checkpoint there, so two runs' checkpoints never mix).
    """

    def __init__(self, log_interval=10, eval_interval=100, use_pyreader=_Default(True), use_data_parallel=True,
                 save_ckpt_interval=None, use_cuda=True, checkpoint_dir=None, num_epoch=1, batch_size=32,
                 enable_memory_optim=_Default(False), strategy=None, *, seed=0, keep_checkpoints=3, num_workers=0,
                 shuffle=True, eval_start_step=0, resume_from=None):
        for name, value in (("use_pyreader", use_pyreader), ("enable_memory_optim", enable_memory_optim)):
            if _given(value):
                print(f"RunConfig: {name}={value!r} is accepted for PaddleHub 1.x compatibility and ignored "
                      f"(Paddle 3 dynamic graphs have no py_reader / memory_optimize).")
        self.use_pyreader = bool(_plain(use_pyreader))
        self.enable_memory_optim = bool(_plain(enable_memory_optim))
        self.log_interval = check_number("RunConfig.log_interval", log_interval, low=1, integer=True)
        self.eval_interval = None if eval_interval is None else check_number(
            "RunConfig.eval_interval", eval_interval, low=1, integer=True)
        self.save_ckpt_interval = None if save_ckpt_interval is None else check_number(
            "RunConfig.save_ckpt_interval", save_ckpt_interval, low=1, integer=True)
        self.num_epoch = check_number("RunConfig.num_epoch", num_epoch, low=1, integer=True)
        self.batch_size = check_number("RunConfig.batch_size", batch_size, low=1, integer=True)
        self.seed = check_number("RunConfig.seed", seed, low=0, high=2 ** 64 - 1, integer=True)  # paddle.seed: uint64
        self.keep_checkpoints = check_number("RunConfig.keep_checkpoints", keep_checkpoints, low=1, integer=True)
        self.num_workers = check_number("RunConfig.num_workers", num_workers, low=0, integer=True)
        self.eval_start_step = check_number("RunConfig.eval_start_step", eval_start_step, low=0, integer=True)
        for name, value in (("use_data_parallel", use_data_parallel), ("use_cuda", use_cuda), ("shuffle", shuffle)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"RunConfig.{name} must be True or False, got {value!r}.")
        self.use_data_parallel, self.use_cuda, self.shuffle = bool(use_data_parallel), bool(use_cuda), bool(shuffle)
        if resume_from is not None:
            if not isinstance(resume_from, (str, os.PathLike)):
                raise TypeError(f"RunConfig.resume_from must be a path, got {resume_from!r}.")
            resume_from = os.path.normpath(os.fspath(resume_from))
            if not os.path.isdir(resume_from):
                raise ValueError(f"RunConfig.resume_from: {resume_from} is not a directory (expected a step_<n> "
                                 f"checkpoint).")
            if not (os.path.basename(resume_from).startswith("step_") and os.path.basename(resume_from)[5:].isdigit()):
                raise ValueError(f"RunConfig.resume_from: {resume_from} is not a step_<n> checkpoint directory.")
            parent = os.path.dirname(resume_from) or "."
            if checkpoint_dir is None:
                checkpoint_dir = parent
            elif os.path.realpath(checkpoint_dir) != os.path.realpath(parent):
                raise ValueError(f"RunConfig.resume_from={resume_from} is not inside checkpoint_dir={checkpoint_dir}; "
                                 f"the run continues where its checkpoint lives.")
        self.resume_from = resume_from
        if checkpoint_dir is None:
            checkpoint_dir = "ckpt_" + time.strftime("%Y%m%d%H%M%S")
        if not isinstance(checkpoint_dir, (str, os.PathLike)):
            raise TypeError(f"RunConfig.checkpoint_dir must be a path, got {checkpoint_dir!r}.")
        if not os.fspath(checkpoint_dir).strip():  # "" would scatter checkpoints over the working directory
            raise ValueError(f"RunConfig.checkpoint_dir must be a non-empty path, got {checkpoint_dir!r} "
                             f"(None: a new ckpt_<time> directory).")
        self.checkpoint_dir = os.fspath(checkpoint_dir)
        if strategy is None:
            from .strategies import CombinedStrategy
            strategy = CombinedStrategy(optimizer_name="adam", learning_rate=1e-4)
        if not callable(getattr(strategy, "build", None)):
            raise TypeError(f"RunConfig.strategy must be a paddle_strategy strategy (e.g. ps.ULMFiTStrategy()), "
                            f"got {strategy!r} ({type(strategy).__name__}).")
        self.strategy = strategy

    def __repr__(self):
        keys = ("log_interval", "eval_interval", "use_data_parallel", "save_ckpt_interval", "use_cuda",
                "checkpoint_dir", "num_epoch", "batch_size", "strategy", "seed", "keep_checkpoints", "num_workers",
                "shuffle", "eval_start_step", "resume_from")
        return "RunConfig(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in keys) + ")"


# ---------------------------------------------------------------------------------------------- data order
class GlobalBatchSampler(paddle.io.BatchSampler):
    """Batches of one process, cut from one seeded global order that does not depend on the process count.

    Each epoch the sample indices are permuted with a generator seeded by (seed, epoch) and cut into global
    batches of batch_size × nranks; process `rank` takes its slice of every global batch. With `lengths`,
    each run of 16 global batches is sorted by length first (little padding) and the batch order shuffled.
    One process keeps the last, smaller batch; several drop an incomplete last global batch so every
    process takes equal steps. `skip` leaves out the first batches of the epoch (a mid-epoch resume).
    """

    def __init__(self, num_samples, batch_size, *, nranks=1, rank=0, seed=0, shuffle=True, lengths=None):
        self.num_samples, self.batch_size = int(num_samples), int(batch_size)
        self.nranks, self.rank, self.seed, self.shuffle = int(nranks), int(rank), int(seed), bool(shuffle)
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch, skip=0):
        self.epoch, self.skip = int(epoch), int(skip)

    def global_batches(self, epoch):
        g = self.batch_size * self.nranks
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.num_samples) if self.shuffle else np.arange(self.num_samples)
        if self.lengths is not None:
            chunk = g * 16
            order = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")]
                                    for c in np.split(order, range(chunk, self.num_samples, chunk))])
        batches = [order[s:s + g] for s in range(0, self.num_samples, g)]
        if self.nranks > 1 and len(batches[-1]) < g:
            batches.pop()
        if self.lengths is not None and self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def steps_per_epoch(self):
        g = self.batch_size * self.nranks
        return self.num_samples // g if self.nranks > 1 else -(-self.num_samples // g)

    def __iter__(self):
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for batch in self.global_batches(self.epoch)[self.skip:]:
            yield batch[lo:hi].tolist()

    def __len__(self):
        return self.steps_per_epoch() - self.skip


class _SequentialBatches(paddle.io.BatchSampler):
    def __init__(self, num_samples, batch_size):
        self.num_samples, self.batch_size = num_samples, batch_size

    def __iter__(self):
        for s in range(0, self.num_samples, self.batch_size):
            yield list(range(s, min(s + self.batch_size, self.num_samples)))

    def __len__(self):
        return -(-self.num_samples // self.batch_size)


# ---------------------------------------------------------------------------------------------- helpers
def _select_device(use_cuda):
    global _said_no_gpu
    if use_cuda:
        if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            device = f"gpu:{paddle.distributed.ParallelEnv().device_id}"
            paddle.set_device(device)
            return device
        if not _said_no_gpu:
            print("use_cuda=True, but this Paddle has no usable GPU "
                  f"(compiled with CUDA: {paddle.is_compiled_with_cuda()}); training on the CPU.")
            _said_no_gpu = True
    paddle.set_device("cpu")
    return "cpu"


def _split_batch(batch):
    """(positional inputs, keyword inputs, label) of a collated batch: the last field is the label, or a
    dict's 'label' / 'labels' entry."""
    if isinstance(batch, dict):
        rest = dict(batch)
        for key in ("label", "labels"):
            if key in rest:
                return (), rest, rest.pop(key)
        raise ValueError(f"a dict batch needs a 'label' or 'labels' entry; got keys {sorted(batch)}.")
    if isinstance(batch, (list, tuple)):
        if len(batch) < 2:
            raise ValueError("each training sample must be (input, ..., label): got one field only.")
        return tuple(batch[:-1]), {}, batch[-1]
    raise TypeError(f"a batch must be a list/tuple (inputs..., label) or a dict, got {type(batch).__name__}.")


def _batch_size(batch):
    first = batch[0] if isinstance(batch, (list, tuple)) else next(iter(batch.values()))
    return int(first.shape[0]) if hasattr(first, "shape") else len(first)


def _numpy(x):
    if isinstance(x, (list, tuple)):
        x = x[0]
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


# ---------------------------------------------------------------------------------------------- trainer
class Trainer:
    """Train `model` with `config.strategy`.

    model: a paddle.nn.Layer called as `model(*inputs)` on each batch (inputs = every field but the last,
      the label; or a dict batch without its 'label'/'labels' entry as keyword arguments), with
      `loss_fn(output, label)`; or a PaddleHub 2.x task model with `training_step(batch, batch_idx)` and
      `validation_step(batch, batch_idx)` returning {'loss': ..., 'metrics': {...}}.
    metrics: names ('acc', 'f1', 'precision', 'recall', 'matthews'), paddle.metric.Metric instances or
      callables fn(preds, labels) -> float; the first is the main metric that picks the best model
      (default: the eval loss, lower is better).
    lengths: optional per-sample lengths (or a function sample -> length): batches are then grouped by
      length (shuffled within runs of 16 batches) so padding stays small.
    pretrained: what L2 / L2-SP act on (see CombinedStrategy.build); default every trainable parameter.
    eval_batch_size: batch size of eval() and predict() (default config.batch_size).
    """

    def __init__(self, model, config=None, train_dataset=None, eval_dataset=None, loss_fn=None, metrics=None,
                 collate_fn=None, *, lengths=None, pretrained=None, main_metric=None, eval_batch_size=None):
        if not isinstance(model, paddle.nn.Layer):
            raise TypeError(f"Trainer: model must be a paddle.nn.Layer, got {type(model).__name__}.")
        config = RunConfig() if config is None else config
        if not isinstance(config, RunConfig):
            raise TypeError(f"Trainer: config must be a RunConfig, got {type(config).__name__}.")
        self.model, self.config = model, config
        self.hub_protocol = callable(getattr(model, "training_step", None))
        if not self.hub_protocol and loss_fn is None:
            raise ValueError("Trainer: loss_fn is required for a plain paddle.nn.Layer (or give the model "
                             "PaddleHub 2.x's training_step / validation_step).")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"Trainer: loss_fn must be callable, got {loss_fn!r}.")
        for name, ds in (("train_dataset", train_dataset), ("eval_dataset", eval_dataset)):
            if ds is not None and not (hasattr(ds, "__len__") and hasattr(ds, "__getitem__")):
                raise TypeError(f"Trainer: {name} must be a map-style dataset (__len__ and __getitem__), "
                                f"got {type(ds).__name__}.")
        if train_dataset is not None and len(train_dataset) == 0:
            raise ValueError("Trainer: train_dataset is empty.")
        if eval_dataset is not None and len(eval_dataset) == 0:
            raise ValueError("Trainer: eval_dataset is empty (evaluation would give a NaN loss and pick the best "
                             "model from nothing); give samples or eval_dataset=None.")
        self.train_dataset, self.eval_dataset = train_dataset, eval_dataset
        self.loss_fn, self.collate_fn, self.pretrained = loss_fn, collate_fn, pretrained
        self.eval_batch_size = config.batch_size if eval_batch_size is None else check_number(
            "Trainer: eval_batch_size", eval_batch_size, low=1, integer=True)
        self.metrics = make_metrics(metrics)
        self.train_metrics = make_metrics(metrics)
        names = [m.name for m in self.metrics]
        if main_metric is not None and main_metric != "loss" and not self.hub_protocol and main_metric not in names:
            raise ValueError(f"Trainer: main_metric={main_metric!r} is not one of the metrics {names} or 'loss'.")
        self.main_metric = main_metric or (names[0] if names else None)

        self.nranks = paddle.distributed.get_world_size()
        self.rank = paddle.distributed.get_rank()
        if self.nranks > 1 and not config.use_data_parallel:
            raise ValueError(f"RunConfig.use_data_parallel=False, but this is one of {self.nranks} processes "
                             f"started by paddle.distributed.launch; set it True or start one process.")
        self.device = _select_device(config.use_cuda)
        self.is_main = self.rank == 0
        self._setup_done = False
        self.optimizer = self.lr_scheduler = None
        self.global_step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best = None  # {"step", "metric", "value", "eval"}
        self.history = []
        if lengths is not None and train_dataset is not None:
            if callable(lengths):
                lengths = [lengths(train_dataset[i]) for i in range(len(train_dataset))]
            if len(lengths) != len(train_dataset):
                raise ValueError(f"Trainer: lengths has {len(lengths)} entries for {len(train_dataset)} samples.")
        self.lengths = lengths
        self._vdl = None
        self._log_file = None
        self._lock = None
        self._verified, self._reported = {}, set()  # checkpoint name -> (manifest mtime, problem); said damaged
        if train_dataset is not None:
            self._setup_training()

    # ------------------------------------------------------------------------------------------ set-up
    def _setup_training(self):
        cfg = self.config
        if self.nranks > 1:
            paddle.distributed.init_parallel_env()
            with paddle.no_grad():
                for p in self.model.parameters():  # every rank starts from rank 0's weights
                    paddle.distributed.broadcast(p, src=0)
        self.sampler = GlobalBatchSampler(len(self.train_dataset), cfg.batch_size, nranks=self.nranks,
                                          rank=self.rank, seed=cfg.seed, shuffle=cfg.shuffle, lengths=self.lengths)
        self.steps_per_epoch = self.sampler.steps_per_epoch()
        if self.steps_per_epoch < 1:
            raise ValueError(f"Trainer: {len(self.train_dataset)} training samples make no full batch of "
                             f"batch_size={cfg.batch_size} x {self.nranks} processes.")
        self.max_train_steps = self.steps_per_epoch * cfg.num_epoch
        self.sampler.set_epoch(0)
        with self._batches(self.sampler, num_workers=0) as peek:  # no workers started for one batch
            sample = next(peek)
        if self.hub_protocol:
            sample_input = TraceCall(lambda batch: self.model.training_step(batch, 0)["loss"], sample)
        else:
            args, kwargs, _ = _split_batch(sample)
            self._check_output(args, kwargs)
            sample_input = TraceCall(self.model, *args, **kwargs)
        self.optimizer, self.lr_scheduler = cfg.strategy.build(
            self.model, max_train_steps=self.max_train_steps, steps_per_epoch=self.steps_per_epoch,
            sample_input=sample_input, pretrained=self.pretrained)
        # what the optimizer updates, gradual unfreezing's frozen blocks included
        self._trainable = list(self.lr_scheduler.parameters_by_name.items())
        self._fingerprint = self._make_fingerprint()
        self._step_in_flight = None  # the step being taken (None between steps): if an exception leaves it set,
        # the model/optimizer/schedule may be half-way through an update
        self._setup_done = True

    def _check_output(self, args, kwargs):
        """One forward on the first batch (eval mode, no gradients), so a forward that returns a dict (e.g. logits
        and metrics together), which loss_fn(output, label) cannot take, fails here, naming what it returned,
        rather than inside the loss at the first step. loss_fn itself is not called: it may count its calls."""
        was_training = self.model.training
        self.model.eval()
        try:
            with paddle.no_grad():
                out = self.model(*args, **kwargs)
        finally:
            if was_training:
                self.model.train()
        if isinstance(out, dict):
            raise TypeError(f"Trainer: {type(self.model).__name__}.forward returned a dict with keys "
                            f"{sorted(map(str, out))[:10]} on the first batch, which loss_fn(output, label) cannot "
                            f"take: return the logits (a Tensor) from forward and compute metrics outside it, or "
                            f"implement PaddleHub 2.x's training_step(batch, batch_idx) / validation_step returning "
                            f"{{'loss': ..., 'metrics': {{...}}}}.")

    def _batches(self, sampler, *, num_workers=None, dataset=None, name="train_dataset", stream="train"):
        """The batches of `sampler`'s index lists (see loading.Batches), augmentation seeded by config.seed."""
        cfg = self.config
        return Batches(self.train_dataset if dataset is None else dataset, list(sampler), collate_fn=self.collate_fn,
                       num_workers=cfg.num_workers if num_workers is None else num_workers, seed=cfg.seed,
                       stream=stream, epoch=getattr(sampler, "epoch", 0), first=getattr(sampler, "skip", 0),
                       name=name)

    def _make_fingerprint(self):
        cfg = self.config
        return {"parameters": [[n, list(p.shape), str(p.dtype)] for n, p in self.model.named_parameters()],
                "strategy": ckpt.describe(cfg.strategy),
                "data": {"train_samples": len(self.train_dataset), "batch_size": cfg.batch_size,
                         "processes": self.nranks, "num_epoch": cfg.num_epoch, "seed": cfg.seed,
                         "shuffle": cfg.shuffle, "grouped_by_length": self.lengths is not None}}

    # ------------------------------------------------------------------------------------------ logging
    def _say(self, text):
        if self.is_main:
            from tqdm import tqdm
            tqdm.write(text)
            sys.stdout.flush()

    def _scalars(self, tag_values, step):
        if not self.is_main:
            return
        vis = os.path.join(self.config.checkpoint_dir, "visualization")
        if self._log_file is None:
            os.makedirs(vis, exist_ok=True)
            self._log_file = open(os.path.join(vis, "scalars.jsonl"), "a", encoding="utf-8")
            try:
                from visualdl import LogWriter
                self._vdl = LogWriter(logdir=vis)
            except Exception as exc:  # VisualDL is optional: the JSON lines always exist
                self._say(f"VisualDL unavailable ({type(exc).__name__}: {exc}); scalars go to {vis}/scalars.jsonl")
        for tag, value in tag_values.items():
            self._log_file.write(json.dumps({"step": step, "tag": tag, "value": value}) + "\n")
            if self._vdl is not None:
                self._vdl.add_scalar(tag=tag, value=value, step=step)
        self._log_file.flush()

    def _close_scalars(self):
        """Flush and close the scalar writers (reopened, appending, on the next log)."""
        if self._vdl is not None:
            self._vdl.close()
            self._vdl = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _lr_fields(self, lr):
        mults = getattr(self.lr_scheduler, "block_multipliers", [])
        fields = {"lr": lr}
        if len(mults) > 1:
            for k, m in enumerate(mults):
                fields[f"lr_block{k}"] = lr * m
        return fields

    # ------------------------------------------------------------------------------------------ steps
    def _forward_loss(self, batch, batch_idx, metrics):
        """(loss tensor, per-batch metric dict for the hub protocol)."""
        if self.hub_protocol:
            result = self.model.training_step(batch, batch_idx)
            return result["loss"], {k: float(v) for k, v in (result.get("metrics") or {}).items()}
        args, kwargs, label = _split_batch(batch)
        out = self.model(*args, **kwargs)
        loss = self.loss_fn(out, label)
        if metrics:
            preds, labels = _numpy(out), _numpy(label)
            for m in metrics:
                m.update(preds, labels)
        return loss, {}

    def _all_reduce_grads(self, loss_value):
        """Average the gradients over the processes (one flat all_reduce) and return the mean loss."""
        params = [p for _, p in self._trainable if not p.stop_gradient]
        grads = [p.grad for p in params]
        pieces = [paddle.zeros([int(p.size)], dtype="float32") if g is None else g.reshape([-1]).astype("float32")
                  for p, g in zip(params, grads)]
        flat = paddle.concat(pieces + [paddle.to_tensor([loss_value], dtype="float32")])
        paddle.distributed.all_reduce(flat)
        flat = flat / self.nranks
        offset = 0
        for p, g in zip(params, grads):
            n = int(p.size)
            if g is not None:
                paddle.assign(flat[offset:offset + n].reshape(g.shape).astype(g.dtype), output=g)
            offset += n
        loss_and_sum = paddle.stack([flat[-1], paddle.sum(flat[:-1])]).numpy()  # every rank sees the same values
        return float(loss_and_sum[0]), float(loss_and_sum[1])

    def _loss_and_gradient_sum(self, loss):
        """(loss, sum of every gradient element) with one device-to-host copy. The sum is finite exactly when
        every gradient is (unless finite values overflow float32, which _first_nonfinite_gradient sorts out)."""
        grads = [p.grad for _, p in self._trainable if not p.stop_gradient and p.grad is not None]
        total = paddle.add_n([paddle.sum(g).astype("float32") for g in grads]) if grads else paddle.zeros([])
        values = paddle.stack([loss.reshape([]).astype("float32"), total.reshape([])]).numpy()
        return float(values[0]), float(values[1])

    def _first_nonfinite_gradient(self):
        for name, p in self._trainable:
            if not p.stop_gradient and p.grad is not None and not bool(paddle.isfinite(p.grad).all()):
                return name
        return None

    def _stop(self, what, batch_idx):
        self.optimizer.clear_grad()
        last = self._latest_checkpoint_name()
        raise FloatingPointError(
            f"{what} at step {self.global_step + 1} (epoch {self.epoch}, batch {batch_idx}); training stopped "
            f"before that update. "
            + (f"The last good checkpoint, {last}, is intact." if last else "No checkpoint was written yet."))

    def _train_step(self, batch, batch_idx, metrics):
        loss, hub_metrics = self._forward_loss(batch, batch_idx, metrics)
        loss.backward()
        if self.nranks > 1:
            value, grad_sum = self._all_reduce_grads(float(loss))
        else:
            value, grad_sum = self._loss_and_gradient_sum(loss)
        if not math.isfinite(value):
            self._stop(f"loss is {value}", batch_idx)
        if not math.isfinite(grad_sum):  # e.g. relu(nan) = 0 hides a NaN input from the loss
            bad = self._first_nonfinite_gradient()
            if bad is not None:
                self._stop(f"the gradient of parameter {bad!r} holds NaN or inf (loss {value:.6g})", batch_idx)
        lr = self.optimizer.get_lr()
        self.optimizer.step()
        self.optimizer.clear_grad()
        self.lr_scheduler.step()
        return value, lr, hub_metrics

    # ------------------------------------------------------------------------------------------ public API
    def finetune(self):
        """Train for config.num_epoch epochs (resuming from checkpoint_dir if it holds a checkpoint)."""
        return self._run(do_eval=False)

    def finetune_and_eval(self):
        """Train, evaluating every eval_interval steps and at each epoch end; keep the best model in
        checkpoint_dir/best_model; evaluate once more at the end. Returns a summary dict."""
        return self._run(do_eval=True)

    def _run(self, do_eval):
        if not self._setup_done:
            raise ValueError("Trainer: no train_dataset was given, so there is nothing to fine-tune.")
        if do_eval and self.eval_dataset is None:
            raise ValueError("Trainer.finetune_and_eval: no eval_dataset was given.")
        self._take_lock()
        try:
            return self._locked_run(do_eval)
        finally:
            self._release_lock()

    def _take_lock(self):
        """Lock checkpoint_dir (which also proves it writable) and tidy what a killed run left there, before
        any step. Rank 0 alone writes; every rank learns whether it could."""
        error = None
        if self.is_main:
            try:
                self._lock = ckpt.DirLock(self.config.checkpoint_dir, "RunConfig.checkpoint_dir")
                for line in ckpt.heal_dir(self.config.checkpoint_dir):
                    self._say(f"[checkpoint] {line}")
            except (OSError, CheckpointError) as exc:
                error = exc
        if self.nranks > 1:
            flag = paddle.to_tensor([0 if error is None else 1], dtype="int32")
            paddle.distributed.all_reduce(flag)
            if error is None and int(flag.numpy().reshape(-1)[0]) > 0:
                self._release_lock()
                raise RuntimeError("rank 0 could not take RunConfig.checkpoint_dir (its error says why).")
        if error is not None:
            raise error

    def _release_lock(self):
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _locked_run(self, do_eval):
        cfg = self.config
        if self._step_in_flight is not None:
            self._rewind()
        self._resume()
        if self.global_step == 0:  # a resumed run has its RNG streams from the checkpoint instead
            paddle.seed(cfg.seed + self.rank)
        T = self.max_train_steps
        if self.global_step >= T:
            self._say(f"[done] {cfg.checkpoint_dir} already holds the end of training ({T} steps).")
            return self._summary()
        from tqdm import tqdm
        bar = tqdm(total=T, initial=self.global_step, disable=None if self.is_main else True,
                   dynamic_ncols=True, leave=False)
        self.model.train()
        window = {"loss": 0.0, "n": 0, "samples": 0, "hub": {}, "t": time.time()}
        for m in self.train_metrics:
            m.reset()
        saved_at, batches = None, None
        stop = StopSignals().install()  # SIGINT / SIGTERM: finish the step, write a checkpoint, then raise
        try:
            while self.epoch < cfg.num_epoch and not self._stop_signal(stop):
                self.sampler.set_epoch(self.epoch, skip=self.batch_in_epoch)
                batches = self._batches(self.sampler)
                for batch in batches:
                    epoch = self.epoch
                    self._step_in_flight = self.global_step + 1
                    value, lr, hub_metrics = self._train_step(batch, self.batch_in_epoch, self.train_metrics)
                    self.global_step += 1
                    self.batch_in_epoch += 1
                    bar.update(1)
                    n = _batch_size(batch)
                    window["loss"] += value
                    window["n"] += 1
                    window["samples"] += n
                    for k, v in hub_metrics.items():
                        window["hub"][k] = window["hub"].get(k, 0.0) + v * n
                    if self.global_step % cfg.log_interval == 0 or self.global_step == T:
                        self._log_train(window, lr, epoch)
                    end_of_epoch = self.batch_in_epoch == self.steps_per_epoch
                    if end_of_epoch:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    self._step_in_flight = None
                    periodic = (cfg.eval_interval and self.global_step >= cfg.eval_start_step
                                and self.global_step % cfg.eval_interval == 0)
                    if do_eval and (periodic or end_of_epoch):
                        paused = time.time()
                        self._evaluate_and_keep_best()
                        self.model.train()
                        window["t"] += time.time() - paused  # steps/s counts training time only
                    if cfg.save_ckpt_interval and self.global_step % cfg.save_ckpt_interval == 0:
                        paused = time.time()
                        self._save_checkpoint()
                        saved_at = self.global_step
                        window["t"] += time.time() - paused
                    if end_of_epoch or self._stop_signal(stop):
                        break
                batches.close()  # this epoch's workers end with it
            if saved_at != self.global_step:
                self._save_checkpoint()
            signum = self._stop_signal(stop)
            if signum:
                raise self._stopped(signum)
        finally:
            stop.restore()
            if batches is not None:
                batches.close()
            bar.close()
            self._close_scalars()
        self._say(f"[done] {T} steps; checkpoint {self._latest_checkpoint_name()}"
                  + (f"; best {self.best['metric']} {self.best['value']:.4f} at step {self.best['step']} "
                     f"(in {os.path.join(cfg.checkpoint_dir, 'best_model')})" if self.best else ""))
        return self._summary()

    def _stop_signal(self, stop):
        """The signal that asked training to stop (0: none), the same on every process: one that got SIGTERM
        or SIGINT stops them all at the same step, so that they write one checkpoint together."""
        signum = stop.signum or 0
        if self.nranks > 1:
            flag = paddle.to_tensor([int(signum)], dtype="int32")
            paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MAX)
            signum = int(flag.numpy()[0])
        return signum

    def _stopped(self, signum):
        name = signal.Signals(signum).name
        last = self._latest_checkpoint_name()
        how = ("call finetune() again to continue, or run the script again to resume from it"
               if signum == signal.SIGINT else "run the script again with the same checkpoint_dir to resume")
        message = (f"{name}: training stopped after step {self.global_step}/{self.max_train_steps}; checkpoint "
                   f"{last} written; {how}.")
        self._say("[stop] " + message)
        return stopped(signum, message, self.global_step, last)

    def _rewind(self):
        """The last finetune() was left by an exception in the middle of a step (a gradient accumulated, the
        optimizer or the schedule maybe updated): go back to the newest checkpoint on disk, so that no batch
        is applied twice and the schedule is not off by one; refuse if there is none."""
        stuck = f"the last finetune() was stopped inside step {self._step_in_flight}"
        self.global_step = 0
        for p in self.model.parameters():  # a half-done step's gradients (clear_grad skips frozen parameters)
            p.clear_gradient(False)
        self._resume()
        if self.global_step == 0:
            raise RuntimeError(f"Trainer: {stuck}, and {self.config.checkpoint_dir} holds no intact checkpoint "
                               "to go back to: the model and optimizer are half-way through an update. Build "
                               "the model and Trainer again to start over.")
        self._step_in_flight = None
        self._say(f"[resume] {stuck}; went back to the checkpoint of step {self.global_step}.")

    def _log_train(self, window, lr, epoch):
        elapsed = time.time() - window["t"]
        fields = {"loss": window["loss"] / window["n"]}
        for m in self.train_metrics:
            fields[m.name] = m.accumulate()
            m.reset()
        for k, v in window["hub"].items():
            fields[k] = v / window["samples"]
        lr_fields = self._lr_fields(lr)
        speed = window["n"] / elapsed if elapsed > 0 else float("inf")
        blocks = [v for k, v in lr_fields.items() if k.startswith("lr_block")]
        self._say(f"[train] epoch {epoch + 1}/{self.config.num_epoch} step {self.global_step}/{self.max_train_steps} "
                  + " ".join(f"{k} {v:.4f}" for k, v in fields.items())
                  + f" lr {lr:.3e}" + (f" (blocks {' '.join(f'{v:.2e}' for v in blocks)})" if blocks else "")
                  + f" {speed:.2f} steps/s")
        self._scalars({**{f"train/{k}": v for k, v in fields.items()},
                       **{f"train/{k}": v for k, v in lr_fields.items()}}, self.global_step)
        window.update({"loss": 0.0, "n": 0, "samples": 0, "hub": {}, "t": time.time()})

    def eval(self, dataset=None):
        """Evaluate on `dataset` (default eval_dataset): {'loss': mean loss, metric: value, ...}."""
        dataset = self.eval_dataset if dataset is None else dataset
        if dataset is None:
            raise ValueError("Trainer.eval: no dataset given and no eval_dataset.")
        name = "eval_dataset" if dataset is self.eval_dataset else "dataset"
        loader = self._batches(_SequentialBatches(len(dataset), self.eval_batch_size), num_workers=0,
                               dataset=dataset, name=name, stream="eval")
        was_training = self.model.training
        self.model.eval()
        for m in self.metrics:
            m.reset()
        total, count, hub = 0.0, 0, {}
        try:
            with paddle.no_grad():
                for i, batch in enumerate(loader):
                    n = _batch_size(batch)
                    if self.hub_protocol:
                        result = self.model.validation_step(batch, i)
                        if result.get("loss") is not None:
                            total += float(result["loss"]) * n
                        for k, v in (result.get("metrics") or {}).items():
                            hub[k] = hub.get(k, 0.0) + float(v) * n
                    else:
                        args, kwargs, label = _split_batch(batch)
                        out = self.model(*args, **kwargs)
                        total += float(self.loss_fn(out, label)) * n
                        preds, labels = _numpy(out), _numpy(label)
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

    def _evaluate_and_keep_best(self):
        result = self.eval()
        name, value = self._main_metric(result)
        better = _better(value, None if self.best is None else self.best["value"], lower=name == "loss")
        record = {"step": self.global_step, "epoch": self.epoch, **result}
        self.history.append(record)
        self._say(f"[eval] step {self.global_step} " + " ".join(f"{k} {v:.4f}" for k, v in result.items())
                  + ("  (best so far, saved)" if better else ""))
        self._scalars({f"eval/{k}": v for k, v in result.items()}, self.global_step)
        if getattr(self.lr_scheduler, "plateau", None) is not None and self.lr_scheduler.report(value):
            self._say(f"[plateau] {name} has not improved: learning rate x{self.lr_scheduler.scale:.3g} from now on")
        if better:
            self.best = {"step": self.global_step, "metric": name, "value": value, "eval": result}
            if self.is_main:
                final = os.path.join(self.config.checkpoint_dir, "best_model")
                self._check_parameters_finite(final)
                state = {k: v.numpy() for k, v in self.model.state_dict().items()}

                def write(tmp):
                    ckpt.save_tensors(os.path.join(tmp, "model.safetensors"), state)
                    with open(os.path.join(tmp, "metrics.json"), "w", encoding="utf-8") as f:
                        json.dump(self.best, f, indent=1)
                ckpt.write_atomic_dir(final, write)
        return result

    def predict(self, dataset, batch_size=None, has_label=None):
        """Model outputs for every sample of `dataset` (numpy, concatenated over batches).

        has_label: whether each sample's last field is a label to leave out; None guesses from the number
        of positional arguments model.forward takes.
        """
        bs = batch_size or self.eval_batch_size
        loader = self._batches(_SequentialBatches(len(dataset), bs), num_workers=0, dataset=dataset, stream="eval")
        was_training = self.model.training
        self.model.eval()
        outputs = []
        try:
            with paddle.no_grad():
                for batch in loader:
                    if isinstance(batch, dict):
                        args, kwargs = (), {k: v for k, v in batch.items() if k not in ("label", "labels")}
                    else:
                        batch = list(batch) if isinstance(batch, (list, tuple)) else [batch]
                        drop = self._drops_label(len(batch)) if has_label is None else bool(has_label)
                        args, kwargs = (batch[:-1] if drop else batch), {}
                    out = self.model(*args, **kwargs)
                    outputs.append(_numpy(out))
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

    def _summary(self):
        return {"steps": self.global_step, "max_train_steps": self.max_train_steps, "best": self.best,
                "history": list(self.history), "checkpoint": self._latest_checkpoint_name()}

    # ------------------------------------------------------------------------------------------ checkpoints
    def _checkpoint_files(self):
        """The files a checkpoint of this run needs (each must be listed in its manifest)."""
        return ["model.safetensors", "optimizer.safetensors", "trainer_state.json"] + [
            f"rng_{r}.json" for r in range(self.nranks)]

    def _step_names(self):
        """step_<n> folder names in checkpoint_dir, newest first (intact or not)."""
        d = self.config.checkpoint_dir
        if not os.path.isdir(d):
            return []
        names = [n for n in os.listdir(d) if n.startswith("step_") and n[5:].isdigit()
                 and os.path.isdir(os.path.join(d, n))]
        return sorted(names, key=lambda n: int(n[5:]), reverse=True)

    def _problem(self, name):
        """None if checkpoint `name` is intact, else what is wrong (each folder is hashed once per process,
        again only if its manifest changed)."""
        path = os.path.join(self.config.checkpoint_dir, name)
        try:
            key = os.stat(os.path.join(path, "MANIFEST.json")).st_mtime_ns
        except OSError:
            key = None
        cached = self._verified.get(name)
        if cached is not None and cached[0] == key and key is not None:
            return cached[1]
        if os.path.isfile(os.path.join(path, "optimizer.pkl")):
            problem = "old format"  # paddle_strategy 0.1: refused in _resume, never opened
        else:
            problem = ckpt.verify_dir(path, required=self._checkpoint_files())
        self._verified[name] = (key, problem)
        return problem

    def _intact_names(self):
        return [n for n in self._step_names() if self._problem(n) is None]

    def _latest_checkpoint_name(self):
        names = self._intact_names()
        return os.path.join(self.config.checkpoint_dir, names[0]) if names else None

    def _prune(self):
        """Keep the newest keep_checkpoints intact checkpoints; damaged folders neither count nor get removed
        (they are reported once), so they can never push an intact checkpoint out."""
        intact = self._intact_names()
        for old in intact[self.config.keep_checkpoints:]:
            shutil.rmtree(os.path.join(self.config.checkpoint_dir, old), ignore_errors=True)
            self._verified.pop(old, None)
        for name in self._step_names():
            problem = self._problem(name)
            if problem is not None and name not in self._reported:
                self._reported.add(name)
                self._say(f"[checkpoint] {os.path.join(self.config.checkpoint_dir, name)} is damaged ({problem}); "
                          f"it is not counted among the {self.config.keep_checkpoints} kept and is left in place.")

    def _optimizer_state(self):
        """The optimizer's accumulators as {"<structured name>/<accumulator>": array} (Paddle's own keys depend
        on creation order and on how many optimizers this process made)."""
        by_name = {p.name: n for n, p in self.model.named_parameters()}
        arrays = {}
        for acc, per_param in self.optimizer._accumulators.items():
            for pname, var in per_param.items():
                if pname in by_name:
                    arrays[f"{by_name[pname]}/{acc}"] = var.numpy()
        return arrays

    def _load_optimizer_state(self, arrays, scheduler_state):
        by_name = {p.name: n for n, p in self.model.named_parameters()}
        flat = {"LR_Scheduler": scheduler_state}
        for acc, per_param in self.optimizer._accumulators.items():
            for pname, var in per_param.items():
                key = f"{by_name.get(pname)}/{acc}"
                if key not in arrays:
                    raise CheckpointError(f"the checkpoint has no optimizer state {acc!r} for parameter "
                                          f"{by_name.get(pname)!r}: it was written by another optimizer.")
                flat[var.name] = arrays[key]
        self.optimizer.set_state_dict(flat)

    def _check_parameters_finite(self, what):
        name = ckpt.nonfinite((n, p.numpy()) for n, p in self.model.named_parameters())
        if name is not None:
            raise FloatingPointError(f"parameter {name!r} holds NaN or inf at step {self.global_step}; {what} was "
                                     f"not written (the model is no longer usable).")

    def _save_checkpoint(self):
        cfg = self.config
        final = os.path.join(cfg.checkpoint_dir, f"step_{self.global_step:08d}")
        self._check_parameters_finite(f"checkpoint {final}")
        rng = ckpt.rng_state(cuda=self.device.startswith("gpu"))
        if self.nranks > 1:  # every rank's RNG streams, gathered through the shared directory as JSON
            staging = os.path.join(cfg.checkpoint_dir, f".rng-{self.global_step:08d}")
            if self.is_main:
                os.makedirs(staging, exist_ok=True)
            paddle.distributed.barrier()
            with open(os.path.join(staging, f"rng_{self.rank}.json"), "w", encoding="utf-8") as f:
                json.dump(rng, f)
            paddle.distributed.barrier()
        if self.is_main:
            model_state = {k: v.numpy() for k, v in self.model.state_dict().items()}
            opt_state = self._optimizer_state()
            state = {"format": ckpt.FORMAT, "fingerprint": self._fingerprint, "global_step": self.global_step,
                     "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "best": self.best,
                     "history": self.history, "scheduler": self.lr_scheduler.state_dict(),
                     "time": time.strftime("%Y-%m-%d %H:%M:%S")}

            def write(tmp):
                ckpt.save_tensors(os.path.join(tmp, "model.safetensors"), model_state)
                ckpt.save_tensors(os.path.join(tmp, "optimizer.safetensors"), opt_state)
                with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as f:
                    json.dump(state, f, indent=1)
                if self.nranks > 1:
                    for r in range(self.nranks):
                        shutil.copy(os.path.join(staging, f"rng_{r}.json"), os.path.join(tmp, f"rng_{r}.json"))
                else:
                    with open(os.path.join(tmp, "rng_0.json"), "w", encoding="utf-8") as f:
                        json.dump(rng, f)
            try:
                ckpt.write_atomic_dir(final, write)
            finally:
                if self.nranks > 1:
                    shutil.rmtree(staging, ignore_errors=True)
            self._verified[os.path.basename(final)] = (
                os.stat(os.path.join(final, "MANIFEST.json")).st_mtime_ns, None)
            self._prune()
        if self.nranks > 1:
            paddle.distributed.barrier()

    def _check_fingerprint(self, path, got):
        want = self._fingerprint
        if got["parameters"] != want["parameters"]:
            have = {n: (s, d) for n, s, d in got["parameters"]}
            mine = {n: (s, d) for n, s, d in want["parameters"]}
            diff = [n for n in mine if have.get(n) != mine[n]] + [n for n in have if n not in mine]
            n = diff[0]
            raise CheckpointError(
                f"{path} was written for a different model: parameter {n!r} is {have.get(n, 'absent')} there and "
                f"{mine.get(n, 'absent')} here ({len(diff)} difference(s)). Use another checkpoint_dir.")
        diffs = ckpt.differences(got["strategy"], want["strategy"])
        if diffs:
            shown = "\n".join(f"  {k}: {_short(a)} there, {_short(b)} here" for k, a, b in diffs[:5])
            raise CheckpointError(f"{path} was written with a different strategy ({len(diffs)} setting(s) differ):\n"
                                  f"{shown}\nUse another checkpoint_dir to start afresh.")
        if got["data"] != want["data"]:
            keys = [k for k in want["data"] if got["data"].get(k) != want["data"][k]]
            raise CheckpointError(f"{path} was written for a different run: "
                                  + ", ".join(f"{k} {got['data'].get(k)!r} there, {want['data'][k]!r} here"
                                              for k in keys) + ". Use another checkpoint_dir.")

    def _read_checkpoint(self, path):
        """(None, (trainer state, model arrays, optimizer arrays, rng)) of an intact checkpoint, or (what is
        wrong, None) when its weights are not finite; CheckpointError if it is another run's."""
        with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as f:
            state = json.load(f)
        got = state.get("format") if isinstance(state, dict) else None
        if got != ckpt.FORMAT:
            raise CheckpointError(f"{path}: checkpoint format {_short(got)}; this version reads {ckpt.FORMAT}.")
        self._check_fingerprint(path, state["fingerprint"])
        model_state = ckpt.load_tensors(os.path.join(path, "model.safetensors"))
        bad = ckpt.nonfinite(model_state.items())
        if bad is not None:
            return f"parameter {bad!r} holds NaN or inf", None
        opt_state = ckpt.load_tensors(os.path.join(path, "optimizer.safetensors"))
        with open(os.path.join(path, f"rng_{self.rank}.json"), encoding="utf-8") as f:
            rng = json.load(f)
        return None, (state, model_state, opt_state, rng)

    def _resume(self):
        """Load the newest intact checkpoint in checkpoint_dir (or config.resume_from), if any; damaged ones are
        skipped (said so); an old-format or another run's checkpoint is refused (CheckpointError)."""
        if self.global_step > 0:
            return  # this Trainer already trained: it continues from where it is
        named = self.config.resume_from
        if named:
            newer = [n for n in self._intact_names() if int(n[5:]) > int(os.path.basename(named)[5:])]
            if newer:
                raise CheckpointError(f"resume_from={named}, but {self.config.checkpoint_dir} holds newer "
                                      f"checkpoints ({', '.join(newer[:3])}); continuing from the older one would mix "
                                      f"two runs there. Name the newest, or move the newer ones away.")
        names = [os.path.basename(named)] if named else self._step_names()
        for name in names:
            path = os.path.join(self.config.checkpoint_dir, name)
            problem = self._problem(name)
            if problem == "old format":
                raise CheckpointError(
                    f"{path} is in paddle_strategy 0.1's checkpoint format, which stores pickles (loading them "
                    f"can run code); this version does not load it. Resume it with the version that wrote it, or "
                    f"start afresh in another checkpoint_dir.")
            loaded = None
            if problem is None:
                try:
                    problem, loaded = self._read_checkpoint(path)
                except CheckpointError:
                    raise
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    problem = f"unreadable ({type(exc).__name__}: {_short(exc)})"
            if problem is not None:
                if named:
                    raise CheckpointError(f"resume_from={named!r} is damaged: {problem}.")
                self._say(f"[resume] skipping damaged checkpoint {path}: {problem}")
                continue
            state, model_state, opt_state, rng = loaded
            self.model.set_state_dict(model_state)
            self._load_optimizer_state(opt_state, state["scheduler"])  # the schedule step and frozen blocks too
            ckpt.set_rng_state(rng, cuda=self.device.startswith("gpu"))
            self.global_step, self.epoch = state["global_step"], state["epoch"]
            self.batch_in_epoch = state["batch_in_epoch"]
            self.best, self.history = state["best"], state["history"]
            self._say(f"[resume] from {path}: step {self.global_step}/{self.max_train_steps}, epoch {self.epoch}, "
                      f"batch {self.batch_in_epoch}")
            return


def _better(value, best, lower):
    """Whether an evaluation result beats the best so far; NaN is the worst value (never best, always beaten)."""
    if value is None or math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value < best if lower else value > best


def _short(value, limit=200):
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
