"""Old import path of `paddle_strategy.schedules.torch`, and of ReduceLROnPlateau (now paddle_strategy.plateau)."""
from ..plateau import ReduceLROnPlateau
from ..schedules.torch import *  # noqa: F401,F403
from ..schedules.torch import ANNEALERS, __all__ as _torch_names  # noqa: F401

__all__ = list(_torch_names) + ["ReduceLROnPlateau"]
