"""Old import path of paddle_strategy.training.stopping (the same module object)."""
import sys

from .training import stopping as _module

sys.modules[__name__] = _module
