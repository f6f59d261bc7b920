"""Old import path of `paddle_strategy.schedules.paddle_classes`: importing it gives that module itself."""
import sys

from ..schedules import paddle_classes as _moved

sys.modules[__name__] = _moved
