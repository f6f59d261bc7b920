"""Old import path of paddle_strategy.strategies.keras_bert (the same module object)."""
import sys

from .strategies import keras_bert as _module

sys.modules[__name__] = _module
