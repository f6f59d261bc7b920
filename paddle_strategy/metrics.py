"""Old import path of paddle_strategy.training.metrics (the same module object)."""
import sys

from .training import metrics as _module

sys.modules[__name__] = _module
