"""Old import path of paddle_strategy.training.checkpoint_files (the same module object)."""
import sys

from .training import checkpoint_files as _module

sys.modules[__name__] = _module
