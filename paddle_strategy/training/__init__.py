"""Training: RunConfig and the Trainer, split along their jobs.

    run_config.py        RunConfig (PaddleHub 1.x's arguments and defaults)
    sampling.py          the global, seeded data order (GlobalBatchSampler) and evaluation batches
    loading.py           one batch rule: fetch + collate (workers that die with the run), seeded augmentation,
                         splitting a batch into inputs and label
    stopping.py          SIGTERM / SIGINT: stop at a batch boundary
    trainer.py           Trainer: set-up, the step, the run loop
    checkpoints.py       the Trainer's checkpoints: save, prune, resume, lock, rewind
    checkpoint_files.py  atomic directories, manifests, safetensors / JSON, the lock, fingerprints
    evaluation.py        eval(), predict(), the best model
    scalars.py           logs, VisualDL, scalars.jsonl
    metrics.py           acc, f1, precision, recall, matthews
"""
from .checkpoint_files import CheckpointError, load_weights
from .loading import DataError, sample_seed
from .run_config import RunConfig
from .sampling import GlobalBatchSampler
from .stopping import TrainingInterrupted, TrainingTerminated
from .trainer import Trainer

__all__ = ["RunConfig", "Trainer", "GlobalBatchSampler", "CheckpointError", "load_weights", "DataError",
           "sample_seed", "TrainingInterrupted", "TrainingTerminated"]
