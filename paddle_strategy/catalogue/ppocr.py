"""Old import path of `paddle_strategy.schedules.ppocr`: importing it gives that module itself."""
import sys

from ..schedules import ppocr as _moved

sys.modules[__name__] = _moved
