"""The learning-rate schedule catalogue: PaddleOCR, paddle.optimizer.lr, TensorFlow, PyTorch, keras_bert,
fastai and transformers schedules as pure functions `schedule(step) -> lr`.

`step` is the number of optimizer updates already done (0 for the first). Every schedule comes from a factory
`make_<name>(...)` that checks its arguments when called and returns the function; nothing but the step is
state, so any schedule plugs into `paddle_strategy.lr.StrategyLR`, can be plotted before training and resumes
from one integer. Lengths say their unit (`*_steps`, `*_epochs` with `steps_per_epoch`), except where a
source's own key names are kept so its configs map unchanged (PaddleOCR: epochs, step_each_epoch,
warmup_epoch, step_size, decay_epochs, milestones, cycle are in epochs; paddle classes: in steps). Schedules
that also cycle momentum return an `LRMomentum`: call it for the LR, `.momentum(step)` for the momentum.
`ReduceLROnPlateau` is metric-driven, so it is a small class, not a schedule. `make_schedule(name, ...)`
builds any of them by name (see SCHEDULES), with generic warmup and min-LR floor keys.

PaddleOCR keys that PaddleOCR silently ignores and this catalogue honours (PaddlePaddle/PaddleOCR,
ppocr/optimizer/learning_rate.py @045e5f6 and lr_scheduler.py @f773f2c; every class there takes **kwargs,
so these keys are accepted and dropped):
  - CyclicalCosine.eta_min: CyclicalCosine.__call__ builds CyclicalCosineDecay(learning_rate, T_max, cycle,
    last_epoch) without it, so the cosine always falls to 0; honoured as the floor of every cycle.
  - OneCycle.pct_start, OneCycle.div_factor, OneCycle.final_div_factor: OneCycle.__call__ passes only max_lr,
    epochs, steps_per_epoch, anneal_strategy, three_phase, last_epoch, so OneCycleDecay always uses its
    defaults 0.3, 25.0, 1e4; honoured.
  - DecayLearningRate.end_lr: its __init__ takes end_lr=0 and then sets self.end_lr = 0; honoured.
  - DecayLearningRate.warmup_epoch: swallowed by **kwargs, no LinearWarmup is built; honoured like the
    other classes' warmup.
  - TwoStepCosine.eta_min: TwoStepCosine.__call__ builds TwoStepCosineDecay without it (always 0); honoured.
Other differences from PaddleOCR: unknown (e.g. misspelt) keys raise instead of being dropped; last_epoch
must be -1 (resume by restoring the step); Piecewise.learning_rate (ignored by PaddleOCR, which starts at
values[0]) must equal values[0] if given; configs that paddle accepts but that make no sense are rejected
(Piecewise values not exactly one longer than decay_epochs — paddle then jumps to values[-1] —, boundaries or
milestones not increasing, negative learning rates or gamma, three_phase with pct_start >= 0.5). Quirks that
are reproduced: fractional warmup_epoch * step_each_epoch is rounded half to even, the decay after a warmup
starts its own clock (ending warmup steps after the run), OneCycle's warmup ramps to max_lr and then drops to
max_lr / div_factor, TwoStepCosine's first cosine is 200 epochs long, and without warmup its recursive
stepping holds eta_min from epoch 200 on (with warmup the second cosine over `epochs` is used).
"""
from .fastai_schedules import (make_combine_scheds, make_fit_flat_cos, make_fit_one_cycle, make_fit_sgdr,
                               make_sched_exp, make_sched_poly)
from .hf_schedules import (make_cosine_warmup_with_min_lr, make_cosine_with_min_lr, make_cosine_with_restarts,
                           make_inverse_sqrt, make_warmup_stable_decay)
from .keras_bert_lr import calc_train_steps, make_adam_warmup
from .paddle_classes import PADDLE_CLASSES, make_paddle_lr
from .parts import (LRMomentum, Schedule, anneal_cos, anneal_exp, anneal_linear, anneal_poly, by_epoch, constant,
                    cycle_position, join_schedules, with_floor, with_restarts, with_warmup)
from .ppocr import (make_ppocr_const, make_ppocr_cosine, make_ppocr_cyclical_cosine,
                    make_ppocr_decay_learning_rate, make_ppocr_linear, make_ppocr_multi_step_decay,
                    make_ppocr_one_cycle, make_ppocr_piecewise, make_ppocr_step, make_ppocr_two_step_cosine)
from .registry import GENERIC_KEYS, SCHEDULES, make_schedule, schedule_keys
from .tf_decays import (make_cosine_decay, make_cosine_decay_restarts, make_exponential_decay,
                        make_inverse_time_decay, make_linear_cosine_decay, make_natural_exp_decay,
                        make_noisy_linear_cosine_decay, make_piecewise_constant, make_polynomial_decay)
from .torch_schedulers import (ReduceLROnPlateau, make_chained_scheduler, make_cosine_annealing_lr,
                               make_cosine_annealing_warm_restarts, make_cyclic_lr, make_epoch_table,
                               make_multi_step_lr, make_one_cycle_lr, make_step_lr, make_swa_lr)

__all__ = [
    "Schedule", "LRMomentum", "constant", "anneal_linear", "anneal_cos", "anneal_exp", "anneal_poly", "by_epoch",
    "with_warmup", "with_floor", "join_schedules", "with_restarts", "cycle_position",
    "SCHEDULES", "GENERIC_KEYS", "make_schedule", "schedule_keys",
    "make_ppocr_linear", "make_ppocr_cosine", "make_ppocr_step", "make_ppocr_piecewise",
    "make_ppocr_multi_step_decay", "make_ppocr_cyclical_cosine", "make_ppocr_one_cycle", "make_ppocr_const",
    "make_ppocr_decay_learning_rate", "make_ppocr_two_step_cosine",
    "PADDLE_CLASSES", "make_paddle_lr",
    "make_piecewise_constant", "make_exponential_decay", "make_natural_exp_decay", "make_inverse_time_decay",
    "make_polynomial_decay", "make_cosine_decay", "make_linear_cosine_decay", "make_noisy_linear_cosine_decay",
    "make_cosine_decay_restarts",
    "make_step_lr", "make_multi_step_lr", "make_epoch_table", "make_cosine_annealing_lr",
    "make_cosine_annealing_warm_restarts", "make_one_cycle_lr", "make_cyclic_lr", "make_swa_lr",
    "make_chained_scheduler", "ReduceLROnPlateau",
    "make_adam_warmup", "calc_train_steps",
    "make_fit_one_cycle", "make_fit_flat_cos", "make_fit_sgdr", "make_combine_scheds", "make_sched_exp",
    "make_sched_poly",
    "make_warmup_stable_decay", "make_inverse_sqrt", "make_cosine_with_restarts", "make_cosine_with_min_lr",
    "make_cosine_warmup_with_min_lr",
]
