"""PaddleHub 1.x's RunConfig: the same arguments, order and defaults, plus a few keyword-only extras."""
from __future__ import annotations

import os
import time

import numpy as np

from .._checks import check_bool, check_choice, check_number, check_strings

__all__ = ["RunConfig", "EMA_TYPES", "AMP_DTYPES", "AMP_LEVELS"]

EMA_TYPES = ("constant", "threshold", "exponential")
AMP_DTYPES = ("float16", "bfloat16")
AMP_LEVELS = ("O1", "O2")


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
    gradient_accumulation_steps: k micro-batches of batch_size make one optimizer update (a short last group of an
    epoch is one update of exactly its samples); every step count (intervals, schedule, epochs) counts updates.
    ema_decay / ema_decay_type: an exponential moving average of the weights, updated after every optimizer
    update (types: constant, threshold, exponential); eval(), predict() and best_model use it.
    use_amp / amp_dtype / amp_level / scale_loss / use_dynamic_loss_scaling / amp_custom_white_list /
    amp_custom_black_list: mixed precision on a GPU (paddle.amp.auto_cast + GradScaler; PaddleOCR's names). On a
    CPU it changes nothing (said once).
    save_final_checkpoint: write a checkpoint at the end of training (False: only the periodic ones and those a
    signal or a stop request writes).
    dist_timeout: seconds the other processes wait for what rank 0 does alone (checkpoint and best_model writes,
    reading a checkpoint, slow hooks) before failing with a message naming it (torch's default, 30 minutes).
    """

    def __init__(self, log_interval=10, eval_interval=100, use_pyreader=_Default(True), use_data_parallel=True,
                 save_ckpt_interval=None, use_cuda=True, checkpoint_dir=None, num_epoch=1, batch_size=32,
                 enable_memory_optim=_Default(False), strategy=None, *, seed=0, keep_checkpoints=3, num_workers=0,
                 shuffle=True, eval_start_step=0, resume_from=None, gradient_accumulation_steps=1, ema_decay=None,
                 ema_decay_type="constant", use_amp=False, amp_dtype="float16", amp_level="O1", scale_loss=65536.0,
                 use_dynamic_loss_scaling=True, amp_custom_white_list=None, amp_custom_black_list=None,
                 save_final_checkpoint=True, dist_timeout=1800):
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
        self.gradient_accumulation_steps = check_number("RunConfig.gradient_accumulation_steps",
                                                        gradient_accumulation_steps, low=1, integer=True)
        self.ema_decay = None if ema_decay is None else check_number(
            "RunConfig.ema_decay", ema_decay, low=0, high=1, low_open=True, high_open=True)
        self.ema_decay_type = check_choice("RunConfig.ema_decay_type", ema_decay_type, EMA_TYPES)
        self.use_amp = check_bool("RunConfig.use_amp", use_amp)
        self.amp_dtype = check_choice("RunConfig.amp_dtype", amp_dtype, AMP_DTYPES)
        self.amp_level = check_choice("RunConfig.amp_level", amp_level, AMP_LEVELS)
        self.scale_loss = float(check_number("RunConfig.scale_loss", scale_loss, low=0, low_open=True))
        self.use_dynamic_loss_scaling = check_bool("RunConfig.use_dynamic_loss_scaling", use_dynamic_loss_scaling)
        self.amp_custom_white_list = None if amp_custom_white_list is None else check_strings(
            "RunConfig.amp_custom_white_list", amp_custom_white_list, non_empty=True)
        self.amp_custom_black_list = None if amp_custom_black_list is None else check_strings(
            "RunConfig.amp_custom_black_list", amp_custom_black_list, non_empty=True)
        self.save_final_checkpoint = check_bool("RunConfig.save_final_checkpoint", save_final_checkpoint)
        self.dist_timeout = float(check_number("RunConfig.dist_timeout", dist_timeout, low=0, low_open=True))
        if resume_from is not None:
            if not isinstance(resume_from, (str, os.PathLike)):
                raise TypeError(f"RunConfig.resume_from must be a path, got {resume_from!r}.")
            resume_from = os.path.normpath(os.fspath(resume_from))
            # only rank 0 reads checkpoints: other ranks may run on nodes that cannot see the directory
            if os.environ.get("PADDLE_TRAINER_ID", "0") == "0" and not os.path.isdir(resume_from):
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
            from ..strategies import CombinedStrategy
            strategy = CombinedStrategy(optimizer_name="adam", learning_rate=1e-4)
        if not callable(getattr(strategy, "build", None)):
            raise TypeError(f"RunConfig.strategy must be a paddle_strategy strategy (e.g. ps.ULMFiTStrategy()), "
                            f"got {strategy!r} ({type(strategy).__name__}).")
        self.strategy = strategy

    def __repr__(self):
        keys = ("log_interval", "eval_interval", "use_data_parallel", "save_ckpt_interval", "use_cuda",
                "checkpoint_dir", "num_epoch", "batch_size", "strategy", "seed", "keep_checkpoints", "num_workers",
                "shuffle", "eval_start_step", "resume_from", "gradient_accumulation_steps", "ema_decay",
                "ema_decay_type", "use_amp", "amp_dtype", "amp_level", "scale_loss", "use_dynamic_loss_scaling",
                "amp_custom_white_list", "amp_custom_black_list", "save_final_checkpoint", "dist_timeout")
        return "RunConfig(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in keys) + ")"
