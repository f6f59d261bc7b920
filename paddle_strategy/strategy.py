"""Old import path: CombinedStrategy and the PaddleHub presets now live in paddle_strategy.strategies."""
from .strategies.combined import *  # noqa: F401,F403
from .strategies.combined import __all__ as _combined
from .strategies.paddlehub import *  # noqa: F401,F403
from .strategies.paddlehub import __all__ as _presets

__all__ = list(_combined) + list(_presets)
