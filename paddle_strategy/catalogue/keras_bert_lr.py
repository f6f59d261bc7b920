"""Old import path of `paddle_strategy.schedules.keras_bert`: importing it gives that module itself."""
import sys

from ..schedules import keras_bert as _moved

sys.modules[__name__] = _moved
