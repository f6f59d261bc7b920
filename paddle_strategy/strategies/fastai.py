"""fastai's fit policies and freezing as strategies: fit_one_cycle, fit_flat_cos, fit_sgdr, fine_tune.

Reproduces fastai v2 (fastai/callback/schedule.py, fastai/optimizer.py, fastai/learner.py) on our blocks:
fastai's parameter groups run from the input (group 0) to the output (last group); our blocks run the other
way, block 0 at the output (the head). So fastai's group i of n is our block n - 1 - i.

Learning rates given as a `slice` are spread over the blocks as fastai's `Optimizer.set_hyper` does:
  slice(lo, hi), lo truthy:  group i gets even_mults(lo, hi, n)[i] = lo * (hi / lo) ** (i / (n - 1)),
                             so block k gets hi * (lo / hi) ** (k / (n - 1)): hi at the head, lo at the input
  slice(hi) (or slice(0, hi): fastai tests `if start:`): hi at the head, hi / 10 on every other block
  a number:                  the same learning rate on every block
The schedules are `paddle_strategy.schedules.fastai`'s: a strategy runs the schedule at the head's
learning rate and gives every block the constant multiplier lr_block / lr_head (fastai's schedules are
linear in lr_max, so that is exactly fastai's per-group schedule).

fastai's Learner defaults are kept: Adam with beta2 (sqr_mom) 0.99 and epsilon 1e-5, decoupled weight decay
0.01 for Adam (0 for the other optimizers, as fastai's SGD/RMSProp), skipping biases and normalization
parameters (wd_bn_bias=False), and train_bn=True: freezing never freezes normalization layers (fastai's
norm_types — BatchNorm, InstanceNorm, LayerNorm — and also GroupNorm, RMSNorm and the other Paddle
normalization layers of param_table.NORM_LAYERS).

Differences from fastai (all small, all forced by Paddle or by running as one strategy):
  - with momentum cycling, Adam's bias correction uses the product of the beta1 values so far (Paddle's
    beta1_pow accumulator) where fastai uses 1 - beta1_now ** step; identical when beta1 is constant.
  - `moms=None` turns momentum cycling off (fastai: None means the Learner's moms); plain SGD has no
    momentum to cycle and needs moms=None.
  - the run length comes from build(max_train_steps, steps_per_epoch) as for every strategy; fit_sgdr and
    fine_tune fix their own number of epochs, and a run of another length is refused.
"""
from __future__ import annotations

import inspect
import warnings
from numbers import Real

import paddle

from .._checks import check_bool, check_divisor, check_number, did_you_mean, shown
from ..schedules.fastai import make_fit_flat_cos, make_fit_one_cycle, make_fit_sgdr
from ..schedules.parts import LRMomentum, join_schedules
from ..lr import StrategyLR
from ..optimizers import resolve
from ..param_table import norm_param_names  # noqa: F401  (re-exported: fastai's train_bn layers)
from .combined import CombinedStrategy

__all__ = ["even_mults", "block_lrs", "norm_param_names", "freeze_to", "freeze", "unfreeze",
           "FitOneCycleStrategy", "FitFlatCosStrategy", "FitSGDRStrategy", "FineTuneStrategy"]

FASTAI_MOMS = (0.95, 0.85, 0.95)   # Learner(moms=...)
FASTAI_LR = 1e-3                   # fastai.basics defaults.lr
# ---------------------------------------------------------------------------------- learning rate spread
def even_mults(start: float, stop: float, n: int) -> list:
    """fastcore's even_mults: n values from start to stop, evenly spaced on a log scale.

    value i = start * (stop / start) ** (i / (n - 1)), i = 0 .. n - 1; [stop] when n = 1.
    """
    if n == 1:
        return [stop]
    step = (stop / start) ** (1 / (n - 1))
    return [start * step ** i for i in range(n)]


def _check_lr(where, lr):
    """A learning rate as fastai takes it: a number > 0, or slice(hi) / slice(lo, hi) with numbers > 0."""
    if isinstance(lr, slice):
        if lr.step is not None:
            raise ValueError(f"{where}={shown(lr)}: a learning-rate slice is slice(hi) or slice(lo, hi), "
                             f"without a step.")
        if lr.stop is None:
            raise ValueError(f"{where}={shown(lr)}: a learning-rate slice needs its upper end (the head's learning "
                             f"rate): slice(hi) or slice(lo, hi).")
        check_number(f"{where}.stop", lr.stop, low=0, low_open=True)
        if lr.start is not None:
            check_number(f"{where}.start", lr.start, low=0)
            if lr.start > lr.stop:
                raise ValueError(f"{where}={shown(lr)}: slice(lo, hi) needs lo <= hi (hi is the head's learning rate, "
                                 f"lo the input block's).")
        return lr
    if isinstance(lr, bool) or not isinstance(lr, Real):
        raise TypeError(f"{where} must be a number or a slice (slice(hi) or slice(lo, hi)), got {shown(lr)} "
                        f"({type(lr).__name__}).")
    check_number(where, lr, low=0, low_open=True)
    return lr


def block_lrs(lr, n_blocks: int) -> list:
    """fastai's learning rates for `n_blocks` parameter groups, in our block order (block 0 = the head).

    lr a number: [lr] * n;  slice(lo, hi) with lo truthy: even_mults(lo, hi, n) reversed;
    slice(hi) or slice(0, hi): [hi] + [hi / 10] * (n - 1)   (fastai: `[v.stop/10]*(n-1) + [v.stop]`).
    """
    lr = _check_lr("lr", lr)
    n = check_number("n_blocks", n_blocks, low=1, integer=True)
    if not isinstance(lr, slice):
        return [float(lr)] * n
    if lr.start:
        return [float(v) for v in reversed(even_mults(lr.start, lr.stop, n))]
    return [float(lr.stop)] + [lr.stop / 10] * (n - 1)


def _head_lr(lr):
    return float(lr.stop if isinstance(lr, slice) else lr)


def _discriminative(lr, blocks):
    """scheduler['discriminative'] giving block k the multiplier block_lrs(lr, n)[k] / block_lrs(lr, n)[0].

    Both of fastai's spreads fit `params_layer` (multiplier = (1 / factor) ** (max_layer - layer)): the
    geometric one with layer = n - 1 - k, the head-vs-rest one with the head at layer 1 and the rest at 0.
    """
    n = len(blocks)
    if not isinstance(lr, slice) or n == 1:
        return None
    if lr.start:
        factor = (lr.stop / lr.start) ** (1 / (n - 1))
        layer = [n - 1 - k for k in range(n)]
    else:
        factor = 10.0
        layer = [1] + [0] * (n - 1)
    if factor == 1.0:
        return None
    return {"blocks": 0, "factor": factor,
            "params_layer": {name: layer[k] for k, block in enumerate(blocks) for name in block}}


# ---------------------------------------------------------------------------------------------- freezing
def _blocks_arg(model, blocks):
    """[[structured names]] from a blocks list (ps.infer_blocks) or a StrategyLR (its block_names)."""
    if not isinstance(model, paddle.nn.Layer):
        raise TypeError(f"model must be a paddle.nn.Layer, got {type(model).__name__}.")
    if isinstance(blocks, StrategyLR):
        blocks = blocks.block_names
    if isinstance(blocks, (str, bytes)) or not isinstance(blocks, (list, tuple)) or not blocks or not all(
            isinstance(b, (list, tuple)) and all(isinstance(n, str) for n in b) for b in blocks):
        raise TypeError(f"blocks must be a non-empty list of blocks, each a list of structured parameter names "
                        f"(ps.infer_blocks(...) or a built strategy's lr_scheduler), got {shown(blocks)}.")
    names = dict(model.named_parameters())
    for block in blocks:
        for n in block:
            if n not in names:
                raise ValueError(f"blocks: {shown(n)} is not a parameter of the model.{did_you_mean(n, names)}")
    return [list(b) for b in blocks], names


def freeze_to(model, blocks, n: int, *, train_bn: bool = True) -> list:
    """fastai's freeze_to(n) on our blocks (block 0 = the head); returns the names now frozen.

    fastai freezes its first n parameter groups (from the input side; n < 0 counts from the end, so
    freeze_to(-1) trains only the last group, the head). Here: of L blocks, the f = n (n >= 0) or L + n
    (n < 0) blocks farthest from the output are frozen, blocks 0 .. L - f - 1 train; f >= L freezes
    everything (with a warning, as fastai). With train_bn, parameters of normalization layers stay trainable.
    A parameter that changes state gets stop_gradient set and its gradient dropped (clear_grad() skips
    frozen parameters). Build the strategy first, then freeze: build leaves out parameters already frozen.
    """
    groups, params = _blocks_arg(model, blocks)
    n = check_number("freeze_to: n", n, integer=True)
    check_bool("train_bn", train_bn)
    L = len(groups)
    frozen_count = n if n >= 0 else L + n  # fastai's frozen_idx
    if frozen_count >= L:
        warnings.warn(f"freeze_to({n}): freezing {frozen_count} blocks; the model has {L}: the whole model is "
                      f"frozen{' (except normalization layers: train_bn=True)' if train_bn else ''}.",
                      stacklevel=2)
    frozen_count = max(0, min(L, frozen_count))
    keep = norm_param_names(model) if train_bn else set()
    frozen = []
    for k, block in enumerate(groups):
        for name in block:
            p = params[name]
            stop = k >= L - frozen_count and name not in keep
            if stop:
                frozen.append(name)
            if p.stop_gradient != stop:
                p.stop_gradient = stop
                p.clear_gradient(False)
    return frozen


def freeze(model, blocks, *, train_bn: bool = True) -> list:
    """fastai's freeze(): freeze_to(-1), only the head (block 0) trains. Needs at least two blocks."""
    groups, _ = _blocks_arg(model, blocks)
    if len(groups) < 2:
        raise ValueError(f"freeze needs at least two blocks (the head and the rest), got {len(groups)}; "
                         f"infer more blocks (ps.infer_blocks(model, n >= 2, sample_input)).")
    return freeze_to(model, groups, -1, train_bn=train_bn)


def unfreeze(model, blocks) -> list:
    """fastai's unfreeze(): freeze_to(0), every block trains. Returns [] (nothing frozen)."""
    return freeze_to(model, blocks, 0)


# -------------------------------------------------------------------------------------------- strategies
def _check_moms(where, moms, optimizer_cls):
    if moms is None:
        return None
    if isinstance(moms, (str, bytes)) or not isinstance(moms, (list, tuple)) or len(moms) != 3:
        raise ValueError(f"{where}: moms must be three momentums (start, middle, end) or None, got {shown(moms)}.")
    moms = tuple(check_number(f"{where}: moms[{i}]", v, low=0, high=1) for i, v in enumerate(moms))
    takes = inspect.signature(optimizer_cls.__init__).parameters
    if "beta1" not in takes and "momentum" not in takes:
        raise ValueError(f"{where}: moms={shown(moms)} cycles momentum, but paddle.optimizer.{optimizer_cls.__name__} "
                         f"has neither beta1 nor momentum; pass moms=None, or use optimizer_name='momentum' "
                         f"or 'adam'.")
    return moms


def _whole_epochs(max_train_steps, steps_per_epoch, n_epochs, no_steps_per_epoch, described):
    """steps_per_epoch for a preset (`described`) that runs exactly n_epochs epochs, checked with the run."""
    T = check_number("max_train_steps", max_train_steps, low=1, integer=True)
    if steps_per_epoch is None:
        raise ValueError(no_steps_per_epoch)
    spe = check_number("steps_per_epoch", steps_per_epoch, low=1, integer=True)
    if T != n_epochs * spe:
        raise ValueError(f"{described} runs {n_epochs} epochs = {n_epochs * spe} steps at steps_per_epoch={spe}, but "
                         f"max_train_steps={T}; train {n_epochs} epochs (RunConfig(num_epoch={n_epochs}), Global.epoch_num).")
    return spe


class _FastaiStrategy(CombinedStrategy):
    """A CombinedStrategy whose schedule runs at the head's learning rate, with fastai's per-block spread.

    Subclasses set `self._lr` (number or slice), `self._n_blocks` and `self._args` (for repr), and override
    `schedule(max_train_steps, steps_per_epoch)`.
    """

    _args = ()

    def _setup(self, lr_key, lr, n_blocks, wd, optimizer_name, optimizer_kwargs):
        name = type(self).__name__
        self._lr = _check_lr(f"{name}: {lr_key}", lr)
        self._n_blocks = check_number(f"{name}: n_blocks", n_blocks, low=1, integer=True)
        cls = resolve(optimizer_name)
        kwargs = dict(optimizer_kwargs)
        if cls in (paddle.optimizer.Adam, paddle.optimizer.AdamW):  # fastai's Adam: sqr_mom=0.99, eps=1e-5
            kwargs.setdefault("beta2", 0.99)
            kwargs.setdefault("epsilon", 1e-5)
        if wd is None:  # fastai's opt_func defaults: Adam(wd=0.01), SGD/RMSProp/... wd=0
            wd = 0.01 if cls in (paddle.optimizer.Adam, paddle.optimizer.AdamW) else 0.0
        check_number(f"{name}: wd", wd, low=0)
        super().__init__(optimizer_name=optimizer_name, learning_rate=_head_lr(self._lr),
                         regularization={"weight_decay": wd}, **kwargs)
        self._wd = wd
        return cls

    def __repr__(self):
        own = ", ".join(f"{k}={getattr(self, '_' + k)!r}" for k in self._args)
        kw = "".join(f", {k}={v!r}" for k, v in self.optimizer_kwargs.items())
        return f"{type(self).__name__}({own}, wd={self._wd!r}, optimizer_name={self.optimizer_name!r}{kw})"

    __str__ = __repr__

    def _uses_blocks(self):
        return isinstance(self._lr, slice) and self._n_blocks > 1

    def _spread(self):
        """The learning rate (number or slice) whose spread gives the blocks' multipliers."""
        return self._lr

    def _lr_rule(self, model, names, blocks):
        """fastai's spread: n_blocks blocks (block 0 the head), block k at block_lrs(lr, n)[k] / the head's."""
        if not self._uses_blocks():
            return super()._lr_rule(model, names, blocks)
        groups = [list(b) for b in blocks(self._n_blocks)]
        self._check_blocks(groups)
        lrs = block_lrs(self._spread(), len(groups))
        mults = [v / lrs[0] for v in lrs]
        return groups, mults, {n: mults[k] for k, group in enumerate(groups) for n in group}

    def _check_blocks(self, groups):
        """Presets that need several blocks refuse a model that has fewer."""


class FitOneCycleStrategy(_FastaiStrategy):
    """fastai's fit_one_cycle: one cosine up from lr_max / div to lr_max over pct_start of the run, one down
    to lr_max / div_final; momentum (Adam's beta1, Momentum's momentum) the other way through moms.

    pos = step / max_train_steps;  SchedCos(a, b)(p) = a + (1 + cos(pi * (1 - p))) * (b - a) / 2
      lr  = SchedCos(lr_max/div, lr_max)(pos/pct_start)  for pos < pct_start,
            SchedCos(lr_max, lr_max/div_final)((pos - pct_start)/(1 - pct_start))  after
      mom = the same with (moms[0], moms[1], moms[2])
    lr_max: a number, or slice(hi) / slice(lo, hi) spread over n_blocks blocks (see the module docstring).
    wd=None: fastai's default for the optimizer (0.01 for Adam, else 0), decoupled.
    """

    _args = ("lr_max", "div", "div_final", "pct_start", "moms", "n_blocks")

    def __init__(self, lr_max=FASTAI_LR, div=25.0, div_final=1e5, pct_start=0.25, moms=FASTAI_MOMS, wd=None, *,
                 n_blocks=3, optimizer_name="adam", **optimizer_kwargs):
        cls = self._setup("lr_max", lr_max, n_blocks, wd, optimizer_name, optimizer_kwargs)
        self._lr_max = self._lr
        self._moms = _check_moms("FitOneCycleStrategy", moms, cls)
        self._div, self._div_final, self._pct_start = div, div_final, pct_start
        make_fit_one_cycle(self.learning_rate, 1, div, div_final, pct_start, self._moms)  # checks the values

    def schedule(self, max_train_steps, steps_per_epoch=None):
        T = check_number("max_train_steps", max_train_steps, low=1, integer=True)
        return make_fit_one_cycle(self.learning_rate, T, self._div, self._div_final, self._pct_start, self._moms)


class FitFlatCosStrategy(_FastaiStrategy):
    """fastai's fit_flat_cos: lr flat until pct_start of the run, then a cosine down to lr / div_final.

    pos = step / max_train_steps;  lr for pos < pct_start, else SchedCos(lr, lr/div_final)((pos - pct)/(1 - pct)).
    lr: a number or a slice spread over n_blocks blocks. Momentum is left at the optimizer's value.
    """

    _args = ("lr", "div_final", "pct_start", "n_blocks")

    def __init__(self, lr=FASTAI_LR, div_final=1e5, pct_start=0.75, wd=None, *, n_blocks=3, optimizer_name="adam",
                 **optimizer_kwargs):
        self._setup("lr", lr, n_blocks, wd, optimizer_name, optimizer_kwargs)
        self._div_final, self._pct_start = div_final, pct_start
        make_fit_flat_cos(self.learning_rate, 1, div_final, pct_start)  # checks the values

    def schedule(self, max_train_steps, steps_per_epoch=None):
        T = check_number("max_train_steps", max_train_steps, low=1, integer=True)
        return make_fit_flat_cos(self.learning_rate, T, self._div_final, self._pct_start)


class FitSGDRStrategy(_FastaiStrategy):
    """fastai's fit_sgdr: n_cycles cosines from lr_max to 0, cycle i lasting cycle_len * cycle_mult**i epochs.

    The run is cycle_len * (cycle_mult**n_cycles - 1) / (cycle_mult - 1) epochs (n_cycles * cycle_len with
    cycle_mult = 1); build needs steps_per_epoch and a max_train_steps of exactly that many epochs.
    At offset t of a cycle of C steps: lr = SchedCos(lr_max, 0)(t / C).
    """

    _args = ("n_cycles", "cycle_len", "lr_max", "cycle_mult", "n_blocks")

    def __init__(self, n_cycles, cycle_len, lr_max=FASTAI_LR, cycle_mult=2, wd=None, *, n_blocks=3,
                 optimizer_name="adam", **optimizer_kwargs):
        self._setup("lr_max", lr_max, n_blocks, wd, optimizer_name, optimizer_kwargs)
        self._lr_max = self._lr
        self._n_cycles = check_number("FitSGDRStrategy: n_cycles", n_cycles, low=1, integer=True)
        self._cycle_len = check_number("FitSGDRStrategy: cycle_len", cycle_len, low=1, integer=True)
        self._cycle_mult = check_number("FitSGDRStrategy: cycle_mult", cycle_mult, low=1, integer=True)

    @property
    def n_epochs(self) -> int:
        """The run's length in epochs: cycle_len * (1 + cycle_mult + ... + cycle_mult**(n_cycles - 1))."""
        return self._cycle_len * sum(self._cycle_mult ** i for i in range(self._n_cycles))

    def schedule(self, max_train_steps, steps_per_epoch=None):
        spe = _whole_epochs(
            max_train_steps, steps_per_epoch, self.n_epochs,
            f"FitSGDRStrategy: its cycles are counted in epochs and need steps_per_epoch (got None); the run is "
            f"{self.n_epochs} epochs.",
            f"FitSGDRStrategy(n_cycles={self._n_cycles}, cycle_len={self._cycle_len}, cycle_mult={self._cycle_mult})")
        return make_fit_sgdr(self.learning_rate, self._n_cycles, self._cycle_len, self._cycle_mult,
                             steps_per_epoch=spe)


class FineTuneStrategy(_FastaiStrategy):
    """fastai's fine_tune as one run of freeze_epochs + epochs epochs.

    Phase 1 (epochs 0 .. freeze_epochs - 1): freeze() — only the head (block 0) trains, plus normalization
    layers with train_bn — under fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99) (div 25): the
    head at base_lr, the other blocks at base_lr / 10.
    Phase 2: unfreeze(), fit_one_cycle(epochs, slice(base_lr / 2 / lr_mult, base_lr / 2), pct_start, div):
    block k (0 = head) at (base_lr / 2) * lr_mult ** (-k / (n - 1)).
    Both phases use div_final and moms; each phase's one-cycle runs on its own clock (pos = step in the
    phase / steps in the phase), and the optimizer state carries over, as in fastai. build needs
    steps_per_epoch and max_train_steps = (freeze_epochs + epochs) * steps_per_epoch.
    """

    _args = ("epochs", "base_lr", "freeze_epochs", "lr_mult", "pct_start", "div", "div_final", "moms",
             "n_blocks", "train_bn")

    def __init__(self, epochs, base_lr=2e-3, freeze_epochs=1, lr_mult=100, pct_start=0.3, div=5.0, *,
                 div_final=1e5, moms=FASTAI_MOMS, wd=None, n_blocks=3, train_bn=True, optimizer_name="adam",
                 **optimizer_kwargs):
        self._epochs = check_number("FineTuneStrategy: epochs", epochs, low=0, integer=True)
        self._freeze_epochs = check_number("FineTuneStrategy: freeze_epochs", freeze_epochs, low=0, integer=True)
        if self._epochs + self._freeze_epochs < 1:
            raise ValueError(f"FineTuneStrategy: epochs={epochs} and freeze_epochs={freeze_epochs} make an empty "
                             f"run; at least one of them must be >= 1.")
        check_number("FineTuneStrategy: n_blocks", n_blocks, low=1, integer=True)
        if n_blocks < 2:
            raise ValueError(f"FineTuneStrategy: n_blocks must be >= 2 (the head and the body it freezes), "
                             f"got {n_blocks}.")
        self._base_lr = check_number("FineTuneStrategy: base_lr", base_lr, low=0, low_open=True)
        self._lr_mult = check_divisor("FineTuneStrategy: lr_mult", lr_mult)  # lowest block: base_lr / 2 / lr_mult
        check_bool("FineTuneStrategy: train_bn", train_bn)
        self._train_bn = train_bn
        # phase 2's spread; the schedule runs at the head's rate of each phase
        cls = self._setup("base_lr", slice(base_lr / 2 / lr_mult, base_lr / 2), n_blocks, wd, optimizer_name,
                          optimizer_kwargs)
        self.learning_rate = float(base_lr)
        self._moms = _check_moms("FineTuneStrategy", moms, cls)
        self._pct_start, self._div, self._div_final = pct_start, div, div_final
        make_fit_one_cycle(base_lr, 1, 25.0, div_final, 0.99, self._moms)     # checks the values
        make_fit_one_cycle(base_lr / 2, 1, div, div_final, pct_start, self._moms)

    def _uses_blocks(self):
        return True

    def _warn_never_unfrozen(self, *args):
        """fine_tune(epochs=0) trains the head alone by design: the body staying frozen is no surprise."""

    def schedule(self, max_train_steps, steps_per_epoch=None):
        """Phase 1's one-cycle (head at base_lr) for freeze_epochs epochs, then phase 2's (head at base_lr / 2)."""
        F, E = self._freeze_epochs, self._epochs
        spe = _whole_epochs(
            max_train_steps, steps_per_epoch, F + E,
            f"FineTuneStrategy: fine_tune unfreezes after freeze_epochs={F} epochs and needs steps_per_epoch "
            f"(got None).", f"FineTuneStrategy(freeze_epochs={F}, epochs={E})")
        phases = []
        if F:
            phases.append(make_fit_one_cycle(self._base_lr, F * spe, 25.0, self._div_final, 0.99, self._moms))
        if E:
            phases.append(make_fit_one_cycle(self._base_lr / 2, E * spe, self._div, self._div_final,
                                             self._pct_start, self._moms))
        if len(phases) == 1:
            return phases[0]
        lr = join_schedules([p.lr for p in phases], [F * spe])
        mom = None if self._moms is None else join_schedules([p.momentum for p in phases], [F * spe])
        return LRMomentum(lr, mom)

    def _spread(self):
        return self._lr if self._epochs else slice(self._base_lr)  # phase 2's spread; phase 1's without one

    def _check_blocks(self, groups):
        if len(groups) < 2:
            raise ValueError(f"FineTuneStrategy: the model splits into {len(groups)} block (asked for "
                             f"n_blocks={self._n_blocks}); fine_tune needs a head and a body to freeze.")

    def _unfreeze_rule(self, model, names, blocks):
        """Phase 1 trains the head (block 0) and, with train_bn, every normalization layer; the rest of the
        body joins at the unfreeze (epoch freeze_epochs)."""
        if not self._freeze_epochs:
            return []
        groups = [list(b) for b in blocks(self._n_blocks)]
        keep = norm_param_names(model) if self._train_bn else set()
        first = [n for k, group in enumerate(groups) for n in group if k == 0 or n in keep]
        later = [n for k, group in enumerate(groups) for n in group if k and n not in keep]
        return [(first, 0)] + ([(later, self._freeze_epochs)] if later else [])

    def _phase_rule(self, model, table):
        """With both phases, the blocks run at phase 1's spread (slice(base_lr): head base_lr, body / 10) until
        the unfreeze and phase 2's after it (what trains in phase 1 outside the head is the normalization
        layers that train_bn keeps training)."""
        if not (self._freeze_epochs and self._epochs):
            return
        n = len(table.blocks)
        phase1 = [v / self._base_lr for v in block_lrs(slice(self._base_lr), n)]
        phase2 = list(table.block_multipliers)
        for row in table.rows.values():
            row.phase = (phase1[row.block], phase2[row.block])
        table.phase_boundary, table.phase_blocks = self._freeze_epochs, (phase1, phase2)
