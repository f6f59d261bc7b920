"""Old import path of `paddle_strategy.schedules.parts`: importing it gives that module itself."""
import sys

from ..schedules import parts as _moved

sys.modules[__name__] = _moved
