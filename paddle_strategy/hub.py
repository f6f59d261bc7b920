"""PaddleHub 1.x names for scripts written against `paddlehub` 1.x, without PaddleHub installed.

    from paddle_strategy import hub

    strategy = hub.AdamWeightDecayStrategy(learning_rate=5e-5, warmup_proportion=0.1)
    config = hub.RunConfig(use_cuda=False, num_epoch=1, batch_size=32, strategy=strategy)

Offers exactly:
  hub.RunConfig, hub.Trainer                       paddle_strategy's RunConfig (1.x signature) and Trainer
  hub.AdamWeightDecayStrategy, hub.DefaultFinetuneStrategy, hub.L2SPFinetuneStrategy,
  hub.ULMFiTStrategy, hub.CombinedStrategy         the strategies, as 1.x's top-level `paddlehub` had them
  hub.finetune.strategy.<the five strategies>      as 1.x's `paddlehub.finetune.strategy` had them
                                                   (`from paddle_strategy.hub.finetune.strategy import
                                                   ULMFiTStrategy` works too)

Nothing else of PaddleHub (modules, datasets, readers, tasks) is imitated. To make PaddleHub 2.x's own
`paddlehub` 1.x names real instead, see `paddle_strategy.compat.patch_paddlehub()`.
"""
import sys as _sys
import types as _types

from .strategies import (AdamWeightDecayStrategy, CombinedStrategy, DefaultFinetuneStrategy, L2SPFinetuneStrategy,
                       ULMFiTStrategy)
from .training import RunConfig, Trainer

_STRATEGY_NAMES = ("AdamWeightDecayStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy", "ULMFiTStrategy",
                   "CombinedStrategy")

__all__ = ["RunConfig", "Trainer", "AdamWeightDecayStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy",
           "ULMFiTStrategy", "CombinedStrategy", "finetune"]


def _namespace(name: str, doc: str, **attrs) -> _types.ModuleType:
    module = _types.ModuleType(name, doc)
    module.__dict__.update(attrs)
    module.__all__ = sorted(attrs)
    _sys.modules[name] = module  # so `import paddle_strategy.hub.finetune.strategy` finds it as well
    return module


_strategies = {n: globals()[n] for n in _STRATEGY_NAMES}
finetune = _namespace(
    __name__ + ".finetune", "PaddleHub 1.x's `paddlehub.finetune` namespace: only `strategy` is offered.",
    strategy=_namespace(__name__ + ".finetune.strategy",
                        "PaddleHub 1.x's `paddlehub.finetune.strategy`: the five fine-tuning strategies.",
                        **_strategies))
del _strategies
