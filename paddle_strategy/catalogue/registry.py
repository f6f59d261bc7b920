"""Old import path of `paddle_strategy.schedules.registry`: importing it gives that module itself."""
import sys

from ..schedules import registry as _moved

sys.modules[__name__] = _moved
