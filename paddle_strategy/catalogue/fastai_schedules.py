"""Old import path of `paddle_strategy.schedules.fastai`: importing it gives that module itself."""
import sys

from ..schedules import fastai as _moved

sys.modules[__name__] = _moved
