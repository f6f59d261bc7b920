"""Every learning-rate schedule as a pure function `schedule(step) -> lr`: PaddleHub's, PaddleOCR's,
paddle.optimizer.lr's, TensorFlow's, PyTorch's, keras_bert's, fastai's and transformers'.

`step` is the number of optimizer updates already done (0 for the first). Every schedule comes from a factory
`make_<name>(...)` that checks its arguments when called and returns the function; nothing but the step is
state, so any schedule plugs into `paddle_strategy.lr.StrategyLR`, can be plotted before training and resumes
from one integer. Lengths say their unit (`*_steps`, `*_epochs` with `steps_per_epoch`), except where a
source's own key names are kept so its configs map unchanged (PaddleOCR: epochs, step_each_epoch,
warmup_epoch, step_size, decay_epochs, milestones, cycle are in epochs; paddle classes: in steps). Schedules
that also cycle momentum return an `LRMomentum`: call it for the LR, `.momentum(step)` for the momentum.
`make_schedule(name, ...)` builds any of them by name (see SCHEDULES), with generic warmup and min-LR floor
keys. ReduceLROnPlateau is metric-driven, not a schedule: it is `paddle_strategy.plateau`.

Each formula is written once, in `parts` (annealers, join, piecewise phases, warmup, floor, restarts); the
other modules translate a source's keys and conventions onto those parts:

    parts           annealers (linear, cos, exp, poly) and combinators (join, phases, warmup, floor, restarts)
    paddlehub       PaddleHub 1.x strategies' schedules: warmup + linear decay, noam, slanted triangular
    ppocr           PaddleOCR's lr classes with PaddleOCR's keys
    paddle_classes  any paddle.optimizer.lr class, replayed step by step
    tf              TensorFlow's decays
    torch           PyTorch's schedulers
    hf              transformers' schedules
    fastai          fastai's annealers, combine_scheds and fit policies
    keras_bert      keras_bert's AdamWarmup learning rate
    registry        SCHEDULES / make_schedule: every schedule by name, keys checked before building;
                    chained_scheduler (torch's ChainedScheduler), which builds its parts by name
"""
from .fastai import (make_combine_scheds, make_fit_flat_cos, make_fit_one_cycle, make_fit_sgdr, make_sched_exp,
                     make_sched_poly)
from .hf import (make_cosine_warmup_with_min_lr, make_cosine_with_min_lr, make_cosine_with_restarts,
                 make_inverse_sqrt, make_warmup_stable_decay)
from .keras_bert import calc_train_steps, make_adam_warmup
from .paddle_classes import PADDLE_CLASSES, make_paddle_lr
from .paddlehub import make_noam_decay, make_slanted_triangular, make_warmup_linear_decay, steps_for_fraction
from .parts import (LRMomentum, Schedule, anneal_cos, anneal_exp, anneal_linear, anneal_poly, by_epoch, constant,
                    cycle_position, join_schedules, phases, with_floor, with_restarts, with_warmup)
from .ppocr import (make_ppocr_const, make_ppocr_cosine, make_ppocr_cyclical_cosine,
                    make_ppocr_decay_learning_rate, make_ppocr_linear, make_ppocr_multi_step_decay,
                    make_ppocr_one_cycle, make_ppocr_piecewise, make_ppocr_step, make_ppocr_two_step_cosine)
from .registry import GENERIC_KEYS, SCHEDULES, make_chained_scheduler, make_schedule, schedule_keys
from .tf import (make_cosine_decay, make_cosine_decay_restarts, make_exponential_decay, make_inverse_time_decay,
                 make_linear_cosine_decay, make_natural_exp_decay, make_noisy_linear_cosine_decay,
                 make_piecewise_constant, make_polynomial_decay)
from .torch import (make_cosine_annealing_lr, make_cosine_annealing_warm_restarts, make_cyclic_lr, make_epoch_table,
                    make_multi_step_lr, make_one_cycle_lr, make_step_lr, make_swa_lr)

__all__ = [
    "Schedule", "LRMomentum", "constant", "anneal_linear", "anneal_cos", "anneal_exp", "anneal_poly", "by_epoch",
    "with_warmup", "with_floor", "join_schedules", "phases", "with_restarts", "cycle_position",
    "SCHEDULES", "GENERIC_KEYS", "make_schedule", "schedule_keys",
    "steps_for_fraction", "make_warmup_linear_decay", "make_noam_decay", "make_slanted_triangular",
    "make_ppocr_linear", "make_ppocr_cosine", "make_ppocr_step", "make_ppocr_piecewise",
    "make_ppocr_multi_step_decay", "make_ppocr_cyclical_cosine", "make_ppocr_one_cycle", "make_ppocr_const",
    "make_ppocr_decay_learning_rate", "make_ppocr_two_step_cosine",
    "PADDLE_CLASSES", "make_paddle_lr",
    "make_piecewise_constant", "make_exponential_decay", "make_natural_exp_decay", "make_inverse_time_decay",
    "make_polynomial_decay", "make_cosine_decay", "make_linear_cosine_decay", "make_noisy_linear_cosine_decay",
    "make_cosine_decay_restarts",
    "make_step_lr", "make_multi_step_lr", "make_epoch_table", "make_cosine_annealing_lr",
    "make_cosine_annealing_warm_restarts", "make_one_cycle_lr", "make_cyclic_lr", "make_swa_lr",
    "make_chained_scheduler",
    "make_adam_warmup", "calc_train_steps",
    "make_fit_one_cycle", "make_fit_flat_cos", "make_fit_sgdr", "make_combine_scheds", "make_sched_exp",
    "make_sched_poly",
    "make_warmup_stable_decay", "make_inverse_sqrt", "make_cosine_with_restarts", "make_cosine_with_min_lr",
    "make_cosine_warmup_with_min_lr",
]
