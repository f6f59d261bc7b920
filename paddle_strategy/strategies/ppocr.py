"""Build optimizers from config dicts: PaddleOCR's `Optimizer:` schema and a `Strategy:` section.

    optimizer, lr_scheduler = ps.build_optimizer(config["Optimizer"], epochs, step_each_epoch, model)

`build_optimizer` has PaddleOCR's signature (ppocr/optimizer/__init__.py) and schema:
    Optimizer:
      name: Adam                 # any paddle.optimizer class, case-insensitive, + its own keys (beta1, ...)
      clip_norm: 10              # per-tensor clip (ClipGradByNorm)   | clip_norm_global: global-norm clip
      lr: {name: Cosine, learning_rate: 0.001, warmup_epoch: 2}      # any catalogue schedule
      regularizer: {name: L2, factor: 3.0e-05}                       # L1 | L2 (coupled: grad += term)
      weight_decay: 0.05         # AdamW: decoupled; other optimizers: L2 coefficient (as Paddle reads it)
      no_weight_decay_name: norm bias       # AdamW: substrings of structured names not decayed
      one_dim_param_no_weight_decay: true   # AdamW: no decay on 1-D parameters
PaddleOCR's builder hands the regularizer to the optimizer as its weight_decay (L2Decay as the float factor,
L1Decay as paddle.regularizer.L1Decay), so with AdamW an L2 regularizer's factor becomes the decoupled
weight_decay (`regularizer: {name: L2, factor: 0.0}` means no decay, not AdamW's 0.01), and AdamW with L1
fails there (Paddle's AdamW takes only a number): accepted and refused here the same way, with a notice.
regularizer with weight_decay fails there too (a duplicate weight_decay keyword): refused. Adadelta's epsilon
defaults to PaddleOCR's wrapper's 1e-8 (Paddle's own is 1e-6).
The same building blocks as the strategies: a StrategyLR over a pure catalogue schedule (momentum cycling
bound when the schedule has it), L2 and clipping in place on the gradients, every accumulator created up front.
"""
from __future__ import annotations

import inspect
import warnings

import paddle

from .._checks import check_keys, check_number, did_you_mean, shown
from ..optimizers import check_kwargs, resolve
from .combined import CombinedStrategy

__all__ = ["build_optimizer", "ppocr_strategy", "OptimizerConfig"]

_ADAMW_DEFAULT_DECAY = 0.01  # PaddleOCR's AdamW wrapper default
# PaddleOCR's optimizer wrappers (ppocr/optimizer/optimizer.py) whose defaults differ from Paddle's own.
_PPOCR_DEFAULTS = {"Adadelta": {"epsilon": 1e-8}}  # paddle.optimizer.Adadelta: 1e-6


def _prefixed(where, exc):
    return type(exc)(f"{where}: {exc}")


def _schedule(where, lr_config, total_steps, steps_per_epoch):
    from ..schedules.registry import make_run_schedule
    if isinstance(lr_config, (int, float)) and not isinstance(lr_config, bool):
        lr_config = {"name": "Const", "learning_rate": lr_config}
    if not isinstance(lr_config, dict):
        raise TypeError(f"{where} must be a mapping {{name: <schedule>, ...}} or a number, got {shown(lr_config)}.")
    lr_config = dict(lr_config)
    name = lr_config.pop("name", "Const")
    try:
        return make_run_schedule(name, lr_config, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    except (ValueError, TypeError) as exc:
        raise _prefixed(where, exc) from None


def build_optimizer(config, epochs, step_each_epoch, model, *, where="Optimizer"):
    """(optimizer, lr_scheduler) for `model` from PaddleOCR's Optimizer schema (see the module docstring): the
    section is translated into a CombinedStrategy (ppocr_strategy) and built like every strategy."""
    return ppocr_strategy(config, epochs, step_each_epoch, where=where).build(
        model, max_train_steps=epochs * step_each_epoch, steps_per_epoch=step_each_epoch)


def ppocr_strategy(config, epochs, step_each_epoch, *, where="Optimizer"):
    """The CombinedStrategy that PaddleOCR's Optimizer section describes, every key checked (errors name
    `where` and the key): name -> optimizer_name, lr -> scheduler['schedule'], clip_norm / clip_norm_global ->
    clip Norm / GlobalNorm, regularizer L1 / L2 and a non-AdamW weight_decay -> regularization L1 / L2 (on
    every trainable parameter), AdamW's weight_decay -> the decoupled weight_decay, no_weight_decay_name /
    one_dim_param_no_weight_decay -> regularization['no_weight_decay']."""
    if not isinstance(config, dict):
        raise TypeError(f"{where} must be a mapping, got {shown(config)} ({type(config).__name__}).")
    epochs = check_number(f"{where}: epochs", epochs, low=1, integer=True)
    step_each_epoch = check_number(f"{where}: step_each_epoch", step_each_epoch, low=1, integer=True)
    cfg = dict(config)
    if "name" not in cfg:
        raise ValueError(f"{where}.name is required: a paddle.optimizer class such as Adam, AdamW, Momentum.")
    try:
        cls = resolve(cfg.pop("name"))
    except (ValueError, TypeError) as exc:
        raise _prefixed(f"{where}.name", exc) from None
    if "lr" not in cfg:
        raise ValueError(f"{where}.lr is required, e.g. {{name: Cosine, learning_rate: 0.001, warmup_epoch: 2}} "
                         f"(any schedule in paddle_strategy.schedules.SCHEDULES) or a number (constant).")
    lr_config = cfg.pop("lr")
    _schedule(f"{where}.lr", lr_config, epochs * step_each_epoch, step_each_epoch)  # its errors name the keys

    clip_norm, clip_global = cfg.pop("clip_norm", None), cfg.pop("clip_norm_global", None)
    if clip_norm is not None and clip_global is not None:
        raise ValueError(f"{where}: clip_norm={clip_norm} and clip_norm_global={clip_global} are both set; "
                         f"choose one (PaddleOCR silently used clip_norm).")
    norm = 0.0 if clip_norm is None else check_number(f"{where}.clip_norm", clip_norm, low=0, low_open=True)
    global_norm = 0.0 if clip_global is None else check_number(f"{where}.clip_norm_global", clip_global, low=0,
                                                               low_open=True)

    is_adamw = cls is paddle.optimizer.AdamW
    reg_cfg = cfg.pop("regularizer", None)
    weight_decay = cfg.pop("weight_decay", None)
    no_decay_names = cfg.pop("no_weight_decay_name", None)
    one_dim_no_decay = cfg.pop("one_dim_param_no_weight_decay", False)
    if not is_adamw and (no_decay_names is not None or one_dim_no_decay):
        raise ValueError(f"{where}: no_weight_decay_name / one_dim_param_no_weight_decay apply to AdamW only "
                         f"(name is {cls.__name__}).")
    if reg_cfg is not None and weight_decay is not None:
        raise ValueError(f"{where}: regularizer={shown(reg_cfg)} and weight_decay={shown(weight_decay)} are both "
                         f"set; choose one (PaddleOCR passes both to the optimizer as weight_decay and fails with a "
                         f"TypeError).")
    l2, l1 = 0.0, 0.0
    if reg_cfg is not None:
        if not isinstance(reg_cfg, dict) or "name" not in reg_cfg:
            raise TypeError(f"{where}.regularizer must be {{name: L1 | L2, factor: <number>}}, got {shown(reg_cfg)}.")
        check_keys(f"{where}.regularizer", reg_cfg, ("factor", "name"))
        kind = str(reg_cfg["name"]).upper().removesuffix("DECAY")
        if kind not in ("L1", "L2"):
            raise ValueError(f"{where}.regularizer.name: {shown(reg_cfg['name'])} is not one of L1, L2 (or L1Decay, "
                             f"L2Decay).{did_you_mean(reg_cfg['name'], ['L1', 'L2', 'L1Decay', 'L2Decay'])}")
        factor = check_number(f"{where}.regularizer.factor", reg_cfg.get("factor", 0.0), low=0)
        if is_adamw and kind == "L1":
            raise ValueError(f"{where}: AdamW with regularizer={reg_cfg!r}: PaddleOCR hands L1Decay to AdamW as its "
                             f"weight_decay, which Paddle's AdamW refuses (a number only). Use name: L2 (its factor "
                             f"becomes AdamW's decoupled weight_decay) or weight_decay.")
        if is_adamw:
            weight_decay = factor  # PaddleOCR: L2Decay(factor)() is the float handed to AdamW as weight_decay
            warnings.warn(f"{where}: AdamW with regularizer={reg_cfg!r}: as in PaddleOCR, the factor is AdamW's "
                          f"decoupled weight_decay={factor!r} (w -= lr * {factor!r} * w), not an L2 term on the "
                          f"gradient.", stacklevel=2)
        elif kind == "L2":
            l2 = factor
        else:
            l1 = factor
    decoupled = 0.0
    if is_adamw:
        decoupled = check_number(f"{where}.weight_decay", _ADAMW_DEFAULT_DECAY if weight_decay is None
                                 else weight_decay, low=0)
    elif weight_decay is not None:
        l2 = check_number(f"{where}.weight_decay", weight_decay, low=0)  # Paddle: a float is an L2 coefficient

    kwargs = {**_PPOCR_DEFAULTS.get(cls.__name__, {}), **cfg}
    try:
        check_kwargs(cls, kwargs)
    except (ValueError, TypeError) as exc:
        raise _prefixed(where, exc) from None
    if isinstance(no_decay_names, str):
        no_decay_names = no_decay_names.split()
    regularization = {"L2": l2, "L1": l1, "weight_decay": decoupled,
                      # PaddleOCR's AdamW decays every parameter but the ones these two rules name
                      "no_weight_decay": {"names": list(no_decay_names or []), "one_dim": bool(one_dim_no_decay)}}
    try:
        return _PPOCRStrategy(where, config, lr_config, optimizer_name=cls, learning_rate=_base_lr(lr_config),
                              scheduler={"schedule": _schedule_config(lr_config)}, regularization=regularization,
                              clip={"GlobalNorm": global_norm, "Norm": norm}, **kwargs)
    except (ValueError, TypeError) as exc:
        raise _prefixed(where, exc) from None


def _schedule_config(lr_config):
    if isinstance(lr_config, (int, float)) and not isinstance(lr_config, bool):
        return {"name": "Const", "learning_rate": lr_config}
    return {"name": "Const", **lr_config}


def _base_lr(lr_config):
    """The section's learning rate: its lr.learning_rate, or the schedule's own default for it."""
    from ..schedules import SCHEDULES
    cfg = _schedule_config(lr_config)
    if "learning_rate" in cfg:
        return cfg["learning_rate"]
    param = inspect.signature(SCHEDULES[cfg["name"]]).parameters.get("learning_rate")
    default = None if param is None else param.default
    return default if isinstance(default, (int, float)) and not isinstance(default, bool) else 0.0


class _PPOCRStrategy(CombinedStrategy):
    """The CombinedStrategy a PaddleOCR `Optimizer:` section translates to (described by that section)."""

    def __init__(self, where, config, lr_config, **kwargs):
        self._where, self._config, self._lr_config = where, dict(config), lr_config
        super().__init__(**kwargs)

    def schedule(self, max_train_steps, steps_per_epoch=None):
        """The section's `lr` exactly as written (no learning_rate filled in from the strategy)."""
        return _schedule(f"{self._where}.lr", self._lr_config, max_train_steps, steps_per_epoch or max_train_steps)

    def __repr__(self):
        return f"{self._where}: {self._config!r}"

    __str__ = __repr__


class OptimizerConfig:
    """A PaddleOCR `Optimizer:` section usable wherever a strategy is (RunConfig(strategy=...), Trainer)."""

    def __init__(self, config):
        if not isinstance(config, dict):
            raise TypeError(f"Optimizer must be a mapping, got {shown(config)}.")
        self.config = dict(config)

    def build(self, model, max_train_steps, steps_per_epoch=None, sample_input=None, pretrained=None, *,
              schedule=None):
        spe = steps_per_epoch or max_train_steps
        if max_train_steps % spe:
            raise ValueError(f"Optimizer: max_train_steps={max_train_steps} is not a whole number of epochs of "
                             f"{spe} steps.")
        return ppocr_strategy(self.config, max_train_steps // spe, spe).build(
            model, max_train_steps, spe, sample_input=sample_input, pretrained=pretrained, schedule=schedule)

    def validate(self, epochs, step_each_epoch):
        """Every check build() makes, now: built once on a throw-away one-parameter model."""
        build_optimizer(self.config, epochs, step_each_epoch, paddle.nn.Linear(1, 1))

    def schedule(self, max_train_steps, steps_per_epoch=None):
        """The pure step -> lr function of this section for a run of max_train_steps updates."""
        spe = steps_per_epoch or max_train_steps
        return ppocr_strategy(self.config, max(1, max_train_steps // spe), spe).schedule(max_train_steps, spe)

    def __repr__(self):
        return f"OptimizerConfig({self.config!r})"
