"""Old import path of paddle_strategy.training.trainer (the same module object)."""
import sys

from .training import trainer as _module

sys.modules[__name__] = _module
