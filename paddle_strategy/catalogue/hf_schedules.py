"""Old import path of `paddle_strategy.schedules.hf`: importing it gives that module itself."""
import sys

from ..schedules import hf as _moved

sys.modules[__name__] = _moved
