"""Training: RunConfig and the Trainer, split along their jobs.

    run_config.py        RunConfig (PaddleHub 1.x's arguments and defaults)
    sampling.py          the global, seeded data order (GlobalBatchSampler) and evaluation batches
    loading.py           one batch rule: fetch + collate (workers that die with the run), seeded augmentation,
                         splitting a batch into inputs and label
    stopping.py          SIGTERM / SIGINT: stop at a batch boundary
    trainer.py           Trainer: set-up and the run loop
    updates.py           one optimizer update: gradient accumulation, AMP, data-parallel averaging, finite check
    events.py            hooks: PaddleHub 1.x's add_hook / delete_hook / modify_hook / hook_info, the defaults
    hooks.py             the hook registry, HookError, EarlyStopping
    averaging.py         the EMA of the weights
    precision.py         mixed precision (auto_cast, GradScaler, decorate) on a GPU
    distributed.py       several processes: waits for rank 0 bounded by dist_timeout, who left, dying with the
                         launcher
    checkpoints.py       the Trainer's checkpoints: save, prune, resume, lock, rewind
    checkpoint_checks.py what is checked before a checkpoint is used (every field, tensor and RNG stream)
    checkpoint_files.py  atomic directories, manifests, safetensors / JSON, the lock, fingerprints
    safe_io.py           files inside checkpoint_dir: no link followed, untrusted JSON parsed within limits
    evaluation.py        eval(), predict(), the best model
    scalars.py           logs, VisualDL, scalars.jsonl
    metrics.py           acc, f1, precision, recall, matthews
"""
from .checkpoint_files import CheckpointError, load_weights
from .distributed import DistributedError
from .hooks import EVENTS, EarlyStopping, HookError
from .loading import DataError, sample_seed
from .run_config import RunConfig
from .sampling import GlobalBatchSampler
from .stopping import TrainingInterrupted, TrainingTerminated
from .trainer import Trainer

__all__ = ["RunConfig", "Trainer", "GlobalBatchSampler", "CheckpointError", "load_weights", "DataError",
           "sample_seed", "TrainingInterrupted", "TrainingTerminated", "EarlyStopping", "HookError", "EVENTS", "DistributedError"]
