"""paddle_strategy: PaddleHub 1.x fine-tuning strategies on Paddle 3 dynamic graphs."""
from .blocks import Blocks, TraceCall, describe_blocks, infer_blocks, param_depths
from .lr import StrategyLR
from .strategies import (AdamWarmupStrategy, AdamWeightDecayStrategy, CombinedStrategy, DefaultFinetuneStrategy,
                         FineTuneStrategy, FitFlatCosStrategy, FitOneCycleStrategy, FitSGDRStrategy,
                         L2SPFinetuneStrategy, ULMFiTStrategy, build_optimizer, build_strategy, freeze, freeze_to,
                         unfreeze)
from .training import (CheckpointError, DataError, DistributedError, EarlyStopping, GlobalBatchSampler, HookError,
                       RunConfig, Trainer, TrainingInterrupted, TrainingTerminated, load_weights, sample_seed)
from .compat import patch_paddlehub
from .lr_find import LRFindResult, lr_find
from .text_dataset import TextClassificationDataset
from . import program  # noqa: E402  (ps.program.build_trainer(config) in notebooks)

__version__ = "0.2.0"

__all__ = ["AdamWeightDecayStrategy", "CombinedStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy",
           "ULMFiTStrategy", "StrategyLR", "Blocks", "param_depths", "infer_blocks", "describe_blocks", "TraceCall",
           "RunConfig", "Trainer", "CheckpointError", "load_weights", "GlobalBatchSampler", "patch_paddlehub", "build_optimizer",
           "build_strategy", "lr_find", "LRFindResult", "FitOneCycleStrategy", "FitFlatCosStrategy", "FitSGDRStrategy",
           "FineTuneStrategy", "freeze", "freeze_to", "unfreeze", "AdamWarmupStrategy", "DataError", "sample_seed",
           "TrainingInterrupted", "TrainingTerminated", "EarlyStopping", "HookError", "DistributedError",
           "TextClassificationDataset", "program"]
