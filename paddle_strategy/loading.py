"""Old import path of paddle_strategy.training.loading (the same module object)."""
import sys

from .training import loading as _module

sys.modules[__name__] = _module
