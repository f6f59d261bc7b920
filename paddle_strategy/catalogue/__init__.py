"""The schedule catalogue's import path, kept: the schedules live in `paddle_strategy.schedules`,
ReduceLROnPlateau in `paddle_strategy.plateau`. The old submodules (registry, parts, ppocr, paddle_classes,
tf_decays, torch_schedulers, hf_schedules, fastai_schedules, keras_bert_lr, _validate) import as before:
each is the moved module itself, not a copy (torch_schedulers also re-exports ReduceLROnPlateau).
"""
from ..plateau import ReduceLROnPlateau
from ..schedules import *  # noqa: F401,F403
from ..schedules import __all__ as _schedule_names
from . import (_validate, fastai_schedules, hf_schedules, keras_bert_lr, paddle_classes, parts, ppocr,  # noqa: F401
               registry, tf_decays, torch_schedulers)

__all__ = list(_schedule_names) + ["ReduceLROnPlateau"]
