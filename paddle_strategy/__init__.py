"""paddle_strategy: PaddleHub 1.x fine-tuning strategies on Paddle 3 dynamic graphs."""
from .blocks import Blocks, TraceCall, describe_blocks, infer_blocks, param_depths
from .lr import StrategyLR
from .strategy import (AdamWeightDecayStrategy, CombinedStrategy, DefaultFinetuneStrategy,
                       L2SPFinetuneStrategy, ULMFiTStrategy)
from .trainer import CheckpointError, GlobalBatchSampler, RunConfig, Trainer
from .loading import DataError, sample_seed
from .stopping import TrainingInterrupted, TrainingTerminated
from .compat import patch_paddlehub
from .build import build_optimizer, build_strategy
from .lr_find import LRFindResult, lr_find
from .fastai import (FineTuneStrategy, FitFlatCosStrategy, FitOneCycleStrategy, FitSGDRStrategy, freeze, freeze_to,
                     unfreeze)
from .keras_bert import AdamWarmupStrategy

__version__ = "0.1.0"

__all__ = ["AdamWeightDecayStrategy", "CombinedStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy",
           "ULMFiTStrategy", "StrategyLR", "Blocks", "param_depths", "infer_blocks", "describe_blocks", "TraceCall",
           "RunConfig", "Trainer", "CheckpointError", "GlobalBatchSampler", "patch_paddlehub", "build_optimizer",
           "build_strategy", "lr_find", "LRFindResult", "FitOneCycleStrategy", "FitFlatCosStrategy", "FitSGDRStrategy",
           "FineTuneStrategy", "freeze", "freeze_to", "unfreeze", "AdamWarmupStrategy", "DataError", "sample_seed",
           "TrainingInterrupted", "TrainingTerminated"]
