"""Old import path of `paddle_strategy.schedules.tf`: importing it gives that module itself."""
import sys

from ..schedules import tf as _moved

sys.modules[__name__] = _moved
