"""Which parameter gets what: one table, decided in one place.

Every strategy's `build` turns its description into a `ParamTable`: for each trainable parameter (by
structured name) its learning-rate multiplier (and, for two-phase runs such as fastai's fine_tune, the
multiplier before and after the phase boundary), whether decoupled weight decay acts on it, its coupled
regularizer (L1 / L2 / L2-SP), the first epoch it trains (gradual unfreezing) and its block. The table is
plain data, testable without an optimizer; `apply()` writes it onto the parameters (ParamAttr learning-rate
factor, regularizer hook), and the StrategyLR scheduler reads it for unfreezing, phases, logs and plots.

A parameter's own ParamAttr learning rate stays a factor, and its own ParamAttr regularizer comes back when a
later build gives it none: both are remembered per parameter object in this module (weakly), not stamped
onto the parameter.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import paddle

__all__ = ["NORM_LAYERS", "Row", "ParamTable", "norm_param_names", "bias_and_norm_names", "own_attrs"]

# Normalization layers: their parameters are skipped by default weight decay and kept training by fastai's
# train_bn (fastai's norm_types are BatchNorm, InstanceNorm and LayerNorm; the others are normalizations too).
NORM_LAYERS = tuple(
    cls for cls in (
        getattr(paddle.nn, name, None)
        for name in ("LayerNorm", "BatchNorm", "BatchNorm1D", "BatchNorm2D", "BatchNorm3D", "SyncBatchNorm",
                     "GroupNorm", "InstanceNorm1D", "InstanceNorm2D", "InstanceNorm3D", "LocalResponseNorm",
                     "RMSNorm", "SpectralNorm"))
    if isinstance(cls, type))

# id(parameter) -> (weak reference to it, its ParamAttr learning rate, its ParamAttr regularizer). Keyed by id
# and checked by identity: a WeakKeyDictionary would compare two tensors with `==` (elementwise) on a clash.
_OWN = {}
_PURGE_AT = [1024]


def own_attrs(p):
    """(ParamAttr learning rate, ParamAttr regularizer) the user gave `p`, as first seen by a build."""
    entry = _OWN.get(id(p))
    if entry is None or entry[0]() is not p:
        if len(_OWN) >= _PURGE_AT[0]:  # forget parameters that are gone (amortized: when the table doubled)
            for key in [k for k, e in _OWN.items() if e[0]() is None]:
                del _OWN[key]
            _PURGE_AT[0] = max(1024, 2 * len(_OWN))
        entry = _OWN[id(p)] = (weakref.ref(p), p.optimize_attr.get("learning_rate", 1.0), p.regularizer)
    return entry[1], entry[2]


def norm_param_names(model) -> set:
    """Structured names of the parameters of normalization layers (NORM_LAYERS)."""
    names = set()
    for prefix, layer in model.named_sublayers(include_self=True):
        if isinstance(layer, NORM_LAYERS):
            names.update(f"{prefix}.{key}" if prefix else key
                         for key, p in layer._parameters.items() if p is not None)
    return names


def bias_and_norm_names(model) -> set:
    """Biases (a parameter named `bias` or `*_bias`) and normalization layers' parameters: what decoupled
    weight decay skips by default (PaddleHub's AdamWeightDecayStrategy, BERT, fastai's wd_bn_bias=False)."""
    skip = norm_param_names(model)
    for prefix, layer in model.named_sublayers(include_self=True):
        for key, p in layer._parameters.items():
            if p is not None and (key == "bias" or key.endswith("_bias")):
                skip.add(f"{prefix}.{key}" if prefix else key)
    return skip


@dataclass
class Row:
    """What one parameter gets. multiplier: its LR factor (× its own ParamAttr factor); phase: (factor before
    the phase boundary, after) or None; decays: decoupled weight decay acts on it (when the strategy has
    any); regularizer: its coupled L1 / L2 / L2-SP term or None; unfreeze_epoch: the first epoch it trains;
    block: its block index (block 0 at the output) or None."""
    param: object
    multiplier: float = 1.0
    phase: tuple | None = None
    decays: bool = False
    regularizer: object = None
    unfreeze_epoch: int = 0
    block: int | None = None


@dataclass
class ParamTable:
    """{structured name: Row} in the model's parameter order, plus the layout for logs and plots: blocks
    [[names]] (block 0 at the output) with block_multipliers, gradual unfreezing's groups unfreeze
    [([names], first epoch)], and for two-phase runs phase_boundary (an epoch) with phase_blocks (the blocks'
    multipliers before, after)."""
    rows: dict
    blocks: list = field(default_factory=list)
    block_multipliers: list = field(default_factory=list)
    unfreeze: list = field(default_factory=list)
    phase_boundary: int | None = None
    phase_blocks: tuple | None = None

    @property
    def parameters(self) -> dict:
        return {n: r.param for n, r in self.rows.items()}

    def decayed(self) -> list:
        return [r.param for r in self.rows.values() if r.decays]

    def regularized(self) -> list:
        return [(r.param, r.regularizer) for r in self.rows.values() if r.regularizer is not None]

    def unfreeze_groups(self) -> list:
        """[(parameters, first epoch)] for gradual unfreezing (one group per block, or per parameter)."""
        return [([self.rows[n].param for n in names], epoch) for names, epoch in self.unfreeze]

    def phase_of(self, epoch) -> int | None:
        """0 before the phase boundary, 1 from it on; None for a one-phase run."""
        return None if self.phase_boundary is None else int(epoch >= self.phase_boundary)

    def multiplier_of(self, name, phase=None) -> float:
        r = self.rows[name]
        return r.phase[phase] if (r.phase is not None and phase is not None) else r.multiplier

    def apply(self, phase=None):
        """Write the table onto the parameters: ParamAttr LR factor = own factor × multiplier (of `phase` when
        given), and the regularizer hook cleared where the table regularizes in place (else the own one)."""
        for name, r in self.rows.items():
            own_lr, own_reg = own_attrs(r.param)
            r.param.optimize_attr["learning_rate"] = own_lr * self.multiplier_of(name, phase)
            r.param.regularizer = None if r.regularizer is not None else own_reg
