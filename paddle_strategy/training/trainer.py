"""The Trainer: set-up (device, data order, the strategy built on the first batch) and the run loop (signals,
events, evaluation, checkpoints). Its other jobs are mixins beside it: updates.py (one optimizer update:
accumulation, AMP, averaging, the finite check), events.py (hooks), checkpoints.py, evaluation.py, scalars.py;
RunConfig is run_config.py, the EMA averaging.py, mixed precision precision.py.

    config = ps.RunConfig(num_epoch=3, batch_size=32, strategy=ps.ULMFiTStrategy(), checkpoint_dir="ckpt")
    trainer = ps.Trainer(model, config, train_ds, dev_ds, loss_fn=paddle.nn.CrossEntropyLoss(), metrics=["acc"])
    trainer.finetune_and_eval()

Checkpoints live in `checkpoint_dir/step_<n>/` (model, optimizer by structured parameter names, schedule and
unfreeze state, RNG streams and the data position, with a manifest of sizes and SHA-256 digests); running the
same script again with the same `checkpoint_dir` resumes from the newest intact one.
"""
from __future__ import annotations

import os
import signal
import time

import paddle

from .._checks import check_number
from ..blocks import TraceCall
from .checkpoint_files import CheckpointError
from .averaging import WeightAverage
from .checkpoints import Checkpointing
from .distributed import DistributedError, RankSync, die_with_launcher
from .evaluation import Evaluation
from .events import Events
from .contracts import check_first_batch
from .loading import Batches, check_length, check_map_style, split_batch
from .metrics import make_metrics
from .precision import MixedPrecision
from .run_config import RunConfig
from .sampling import GlobalBatchSampler
from .scalars import Logging
from .stopping import StopSignals, stopped
from .updates import Updates, groups

__all__ = ["RunConfig", "Trainer", "CheckpointError", "GlobalBatchSampler"]

_said_no_gpu = False


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


# ---------------------------------------------------------------------------------------------- trainer
class Trainer(Updates, Events, Checkpointing, Logging, Evaluation):
    """Train `model` with `config.strategy`.

    model: a paddle.nn.Layer called as `model(*inputs)` on each batch (inputs = every field but the last,
      the label; or a dict batch without its 'label'/'labels' entry as keyword arguments), with
      `loss_fn(output, label)`; or a PaddleHub 2.x task model with `training_step(batch, batch_idx)` and
      `validation_step(batch, batch_idx)` returning {'loss': ..., 'metrics': {...}}.
    metrics: names ('acc', 'f1', 'precision', 'recall', 'matthews'), paddle.metric.Metric instances or
      callables fn(preds, labels) -> float; the first is the main metric that picks the best model
      (default: the eval loss, lower is better).
    What loss_fn and the metrics must return, and what the constructor tries on the first batch (a paddle.nn
      loss, each metric; never a loss function of yours), is in contracts.py.
    lengths: optional per-sample lengths (or a function sample -> length): batches are then grouped by
      length (shuffled within runs of 16 batches) so padding stays small.
    pretrained: what L2 / L2-SP act on (see CombinedStrategy.build); default every trainable parameter.
    eval_batch_size: batch size of eval() and predict() (default config.batch_size).
    Hooks (PaddleHub 1.x's Task API): add_hook / delete_hook / modify_hook / hook_info, see events.py; a hook
    may set `trainer.stop_training = True` to end the run after the current update, with a checkpoint.
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
            if ds is not None:
                check_map_style(f"Trainer: {name}", ds)
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
        self.amp = MixedPrecision(config, self.device)
        self.ema = None  # the weight average (config.ema_decay), made with the optimizer
        self.is_main = self.rank == 0
        self._init_events()
        self._setup_done = False
        self._saved_at = None  # the step of the last checkpoint this process wrote
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
        self._last_checkpoint = None  # what rank 0 last wrote or resumed from (other ranks may not see its disk)
        self.sync = RankSync(self.rank, self.nranks, config.dist_timeout)
        if self.nranks > 1:
            die_with_launcher()  # an orphan (the launcher SIGKILLed) stops at the next update with a checkpoint
            paddle.distributed.init_parallel_env()
            self._collective("broadcasting rank 0's weights", self._broadcast_weights)
        if train_dataset is not None:
            self._setup_training()

    def _broadcast_weights(self):
        with paddle.no_grad():
            for p in self.model.parameters():  # every rank starts from rank 0's weights
                paddle.distributed.broadcast(p, src=0)

    # ------------------------------------------------------------------------------------------ set-up
    def _setup_training(self):
        cfg = self.config
        self.sampler = GlobalBatchSampler(len(self.train_dataset), cfg.batch_size, nranks=self.nranks,
                                          rank=self.rank, seed=cfg.seed, shuffle=cfg.shuffle, lengths=self.lengths)
        self.batches_per_epoch = self.sampler.steps_per_epoch()
        if self.batches_per_epoch < 1:
            raise ValueError(f"Trainer: {len(self.train_dataset)} training samples make no full batch of "
                             f"batch_size={cfg.batch_size} x {self.nranks} processes.")
        k = cfg.gradient_accumulation_steps  # every step count is in optimizer updates
        self.steps_per_epoch = -(-self.batches_per_epoch // k)
        self.max_train_steps = self.steps_per_epoch * cfg.num_epoch
        self.sampler.set_epoch(0)
        with self._batches(self.sampler, num_workers=0) as peek:  # no workers started for one batch
            sample = next(peek)
        if self.hub_protocol:
            sample_input = TraceCall(lambda batch: self.model.training_step(batch, 0)["loss"], sample)
        else:
            args, kwargs, label = split_batch(sample)
            check_first_batch(self.model, self.loss_fn, self.metrics, args, kwargs, label)
            sample_input = TraceCall(self.model, *args, **kwargs)
        self.optimizer, self.lr_scheduler = cfg.strategy.build(
            self.model, max_train_steps=self.max_train_steps, steps_per_epoch=self.steps_per_epoch,
            sample_input=sample_input, pretrained=self.pretrained)
        self.model, self.optimizer = self.amp.decorate(self.model, self.optimizer)
        # what the optimizer updates, gradual unfreezing's frozen blocks included
        self._trainable = list(self.lr_scheduler.parameters_by_name.items())
        if cfg.ema_decay is not None:
            self.ema = WeightAverage(self.model, self._trainable, cfg.ema_decay, cfg.ema_decay_type)
        self._fingerprint = self._make_fingerprint()
        self._step_in_flight = None  # the step being taken (None between steps): if an exception leaves it set,
        # the model/optimizer/schedule may be half-way through an update
        self._had_gradients = False  # until an update has seen a gradient (contracts.no_gradient_error)
        self._setup_done = True

    def _batches(self, sampler, *, num_workers=None, dataset=None, name="train_dataset", stream="train",
                 index_batches=None):
        """The batches of `sampler`'s index lists (see loading.Batches), augmentation seeded by config.seed."""
        cfg = self.config
        index_batches = list(sampler) if index_batches is None else index_batches
        return Batches(self.train_dataset if dataset is None else dataset, index_batches, collate_fn=self.collate_fn,
                       num_workers=cfg.num_workers if num_workers is None else num_workers, seed=cfg.seed,
                       stream=stream, epoch=getattr(sampler, "epoch", 0), first=getattr(sampler, "skip", 0),
                       name=name)

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

    def _locked_run(self, do_eval):
        cfg = self.config
        self.stop_training = False
        resumed = self._build_env("train", self._prepare_run)
        T = self.max_train_steps
        if self.global_step >= T:
            self._say(f"[done] {cfg.checkpoint_dir} already holds the end of training ({T} steps).")
            return self._summary()
        from tqdm import tqdm
        bar = tqdm(total=T, initial=self.global_step, disable=None if self.is_main else True,
                   dynamic_ncols=True, leave=False)
        self.model.train()
        window = self._new_window()
        for m in self.train_metrics:
            m.reset()
        if resumed:
            self._saved_at = self.global_step  # (after a stop in this process, _saved_at says where it saved)
        batches = None
        k = cfg.gradient_accumulation_steps
        stop = StopSignals().install()  # SIGINT / SIGTERM: finish the update, write a checkpoint, then raise
        try:
            self._fire("finetune_start_event", do_eval=do_eval, resumed_from=resumed)
            while self.epoch < cfg.num_epoch and not any(self._agreed_stop(stop)):
                check_length("train_dataset", self.train_dataset, self.sampler.num_samples)
                self.sampler.set_epoch(self.epoch, skip=self.batch_in_epoch)
                index_batches = list(self.sampler)
                batches = self._batches(self.sampler, index_batches=index_batches)
                for group in groups(index_batches, k):
                    epoch = self.epoch
                    self._step_in_flight = self.global_step + 1
                    value, lr, hub, samples, skipped, outputs = self._update(batches, group,
                                                                             bool(self.train_metrics))
                    self.global_step += 1
                    self.batch_in_epoch += len(group)
                    end_of_epoch = self.batch_in_epoch == self.batches_per_epoch
                    if end_of_epoch:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    self._step_in_flight = None  # from here on the state is consistent (hooks may raise)
                    self._update_metrics(self.train_metrics, outputs)
                    bar.update(1)
                    self._count(window, value, hub, samples, skipped)
                    self._fire("run_step_event", loss=value, lr=lr, samples=samples, micro_batches=len(group),
                               skipped=skipped)
                    logged = self.global_step % cfg.log_interval == 0 or self.global_step == T
                    if logged:
                        self._fire("log_interval_event", **self._train_info(window, lr, epoch))
                        window = self._new_window()
                    periodic = (cfg.eval_interval and self.global_step >= cfg.eval_start_step
                                and self.global_step % cfg.eval_interval == 0)
                    if do_eval and (periodic or end_of_epoch):
                        paused = time.time()
                        self._fire("eval_interval_event", reason="interval" if periodic else "epoch_end")
                        self.model.train()
                        window["t"] += time.time() - paused  # steps/s counts training time only
                    if cfg.save_ckpt_interval and self.global_step % cfg.save_ckpt_interval == 0:
                        paused = time.time()
                        self._fire("save_ckpt_interval_event", checkpoint=None)
                        window["t"] += time.time() - paused
                    self._after_user_hooks(logged, do_eval and (periodic or end_of_epoch), cfg.save_ckpt_interval
                                           and self.global_step % cfg.save_ckpt_interval == 0)
                    if end_of_epoch or any(self._agreed_stop(stop)):
                        break
                batches.close()  # this epoch's workers end with it
            signum, requested = self._agreed_stop(stop)
            ended = self.global_step >= T
            if self._saved_at != self.global_step and self.global_step > 0 and (
                    cfg.save_final_checkpoint or not ended):
                self._save_checkpoint()
            if signum:
                raise self._stopped(signum)
        finally:
            stop.restore()
            if batches is not None:
                batches.close()
            bar.close()
            self._close_scalars()
        summary = self._summary()
        if requested and not ended:
            self._say(f"[stop] a hook set stop_training: training stopped after step {self.global_step}/{T}; "
                      f"checkpoint {summary['checkpoint']} (running again resumes from it).")
        self._fire("finetune_end_event", summary=summary, stopped=bool(requested and not ended))
        return summary

    def _prepare_run(self):
        """Before the first update of a finetune() call: go back from an interrupted update, resume, seed, start
        the weight average. Returns the checkpoint resumed from (None if none)."""
        resumed = self._rewind() if self._step_in_flight is not None else self._resume()
        if self.global_step == 0:  # a resumed run has its RNG streams from the checkpoint instead
            paddle.seed(self.config.seed + self.rank)
        if self.ema is not None and self.ema.shadow is None:
            self.ema.start()
        return resumed

    def _agreed_stop(self, stop):
        """(signal that asked training to stop or 0, 1 if a hook set stop_training else 0), the same on every
        process: one that got SIGTERM / SIGINT or a stop request stops them all at the same update, so that
        they write one checkpoint together."""
        signum, requested = stop.signum or 0, int(bool(self.stop_training))
        if self.nranks > 1:
            flag = paddle.to_tensor([int(signum), requested], dtype="int32")
            self._collective(f"agreeing whether to stop after step {self.global_step}",
                             lambda: paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MAX))
            signum, requested = (int(v) for v in flag.numpy())
        return signum, requested

    def _collective(self, what, fn):
        """fn() (a collective); when it fails because a peer died or hung, a DistributedError naming the rank(s)
        that did not answer and the newest intact checkpoint."""
        try:
            return fn()
        except DistributedError:
            raise
        except (RuntimeError, OSError, ValueError) as exc:
            try:
                missing = self.sync.who_is_missing()
                who = (f"rank(s) {', '.join(map(str, missing))} left or stopped answering" if missing else
                       "no rank is missing now (a transient failure?)")
            except DistributedError as gone:
                who = str(gone).rstrip(".")
            last = self._latest_checkpoint_name()
            raise DistributedError(
                f"rank {self.rank}: {what} failed: {who} (Paddle said: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:300]}). "
                + (f"The newest intact checkpoint is {last}; run the same command again to resume from it."
                   if last else "No checkpoint was written yet.")) from exc

    def _stopped(self, signum):
        name = signal.Signals(signum).name
        last = self._latest_checkpoint_name()
        how = ("call finetune() again to continue, or run the script again to resume from it"
               if signum == signal.SIGINT else "run the script again with the same checkpoint_dir to resume")
        message = (f"{name}: training stopped after step {self.global_step}/{self.max_train_steps}; checkpoint "
                   f"{last} written; {how}.")
        self._say("[stop] " + message)
        return stopped(signum, message, self.global_step, last)

    def _summary(self):
        return {"steps": self.global_step, "max_train_steps": self.max_train_steps, "best": self.best,
                "history": list(self.history), "checkpoint": self._latest_checkpoint_name(),
                "skipped_updates": self.amp.skipped}

    def _say_done(self):
        cfg = self.config
        self._say(f"[done] {self.global_step} steps; checkpoint {self._latest_checkpoint_name()}"
                  + (f"; best {self.best['metric']} {self.best['value']:.4f} at step {self.best['step']} "
                     f"(in {os.path.join(cfg.checkpoint_dir, 'best_model')})" if self.best else ""))

    def ema_state_dict(self):
        """The averaged weights by structured name (float32; buffers as the model has them), ready for
        `model.set_state_dict`. Raises if RunConfig.ema_decay is None or training has not started."""
        if self.ema is None:
            raise ValueError("Trainer.ema_state_dict: RunConfig.ema_decay is None, so no weight average is kept.")
        if self.ema.shadow is None:
            raise ValueError("Trainer.ema_state_dict: the weight average starts with training; call finetune() "
                             "first.")
        return self.ema.state_dict()
