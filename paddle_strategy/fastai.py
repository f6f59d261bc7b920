"""Old import path of paddle_strategy.strategies.fastai (the same module object)."""
import sys

from .strategies import fastai as _module

sys.modules[__name__] = _module
