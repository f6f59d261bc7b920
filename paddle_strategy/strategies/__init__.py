"""Every strategy: descriptions validated at construction, built by the one `CombinedStrategy.build`.

    combined.py    CombinedStrategy (the only build) and its scheduler / regularization / clip dicts
    paddlehub.py   PaddleHub 1.x's presets (AdamWeightDecay, DefaultFinetune, L2SPFinetune, ULMFiT)
    fastai.py      fastai's fit policies, fine_tune, freeze / unfreeze and LR spreads
    keras_bert.py  keras_bert's AdamWarmup
    ppocr.py       PaddleOCR's Optimizer section -> a CombinedStrategy (build_optimizer, OptimizerConfig)
    by_name.py     a YAML Strategy / Optimizer section -> a strategy object
"""
from .by_name import STRATEGIES, build_strategy, strategy_from_config
from .combined import DEFAULT_CLIP, DEFAULT_REGULARIZATION, DEFAULT_SCHEDULER, CombinedStrategy
from .fastai import (FineTuneStrategy, FitFlatCosStrategy, FitOneCycleStrategy, FitSGDRStrategy, freeze, freeze_to,
                     unfreeze)
from .keras_bert import AdamWarmupStrategy
from .paddlehub import AdamWeightDecayStrategy, DefaultFinetuneStrategy, L2SPFinetuneStrategy, ULMFiTStrategy
from .ppocr import OptimizerConfig, build_optimizer, ppocr_strategy

__all__ = ["CombinedStrategy", "AdamWeightDecayStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy",
           "ULMFiTStrategy", "FitOneCycleStrategy", "FitFlatCosStrategy", "FitSGDRStrategy", "FineTuneStrategy",
           "freeze", "freeze_to", "unfreeze", "AdamWarmupStrategy", "OptimizerConfig", "build_optimizer",
           "ppocr_strategy", "build_strategy", "strategy_from_config", "STRATEGIES", "DEFAULT_SCHEDULER",
           "DEFAULT_REGULARIZATION", "DEFAULT_CLIP"]
