"""Old import path of `paddle_strategy.schedules._validate`: importing it gives that module itself."""
import sys

from ..schedules import _validate as _moved

sys.modules[__name__] = _moved
