"""Old import path: PaddleOCR's Optimizer section (strategies.ppocr) and strategies by name
(strategies.by_name)."""
from .strategies.by_name import STRATEGIES, build_strategy, strategy_from_config  # noqa: F401
from .strategies.ppocr import OptimizerConfig, build_optimizer, ppocr_strategy  # noqa: F401

__all__ = ["build_optimizer", "ppocr_strategy", "OptimizerConfig", "build_strategy", "STRATEGIES",
           "strategy_from_config"]
