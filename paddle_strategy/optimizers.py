"""Resolve optimizer names, check their arguments, and construct stock Paddle optimizers."""
from __future__ import annotations

import inspect
import warnings
from numbers import Real

import paddle

from ._checks import check_number, did_you_mean, shown, unknown_key_error

# Every paddle.optimizer optimizer, by lower-case name.
OPTIMIZERS = {
    name.lower(): cls
    for name, cls in vars(paddle.optimizer).items()
    if inspect.isclass(cls) and issubclass(cls, paddle.optimizer.Optimizer)
    and cls is not paddle.optimizer.Optimizer
}

# PaddleHub 1.x optimizer names that Paddle 3 no longer has, and what to use instead.
_GONE = {
    "decayedadagrad": "Paddle 3 has no DecayedAdagrad; use 'adagrad' (or 'rmsprop', whose rho is the decay).",
    "ftrl": "Paddle 3 has no FTRL optimizer; use 'adagrad' or 'adam'.",
    "larsmomentum": "Paddle 3 has no LarsMomentum in paddle.optimizer; use 'momentum', or 'lamb' for "
                    "layer-wise adaptive rates.",
    "lbfgs": "LBFGS needs a closure at every step(), which a strategy's training loop does not give; "
             "use 'adam' or 'sgd'.",
}

# Arguments the strategy sets itself: passing them as optimizer kwargs would fight it.
_MANAGED = {
    "learning_rate": "set learning_rate= on the strategy (the schedule is built from it)",
    "parameters": "build(model) takes the model's trainable parameters",
    "weight_decay": "use regularization={'weight_decay': ...} (decoupled) or {'L2': ...}",
    "grad_clip": "use clip={'GlobalNorm': ...} or clip={'Norm': ...}",
    "apply_decay_param_fun": "decoupled weight decay skips biases and normalization parameters by itself",
    "lr_ratio": "use scheduler={'discriminative': ...} for per-block learning rates",
    "exclude_from_weight_decay_fn": "decoupled weight decay skips biases and normalization parameters",
}


def resolve(optimizer_name) -> type:
    """The paddle.optimizer class for a case-insensitive name (or a paddle.optimizer.Optimizer subclass, used
    as it is), else a ValueError/TypeError saying why not."""
    if isinstance(optimizer_name, type) and issubclass(optimizer_name, paddle.optimizer.Optimizer):
        return optimizer_name
    if not isinstance(optimizer_name, str):
        raise TypeError(f"optimizer_name must be a paddle.optimizer name (string) or an Optimizer subclass, got "
                        f"{shown(optimizer_name)}.")
    key = optimizer_name.lower()
    if key in _GONE:
        raise ValueError(f"optimizer_name={shown(optimizer_name)} is not available: {_GONE[key]}")
    if key not in OPTIMIZERS:
        valid = sorted(n for n in OPTIMIZERS if n not in _GONE)
        raise ValueError(f"optimizer_name={shown(optimizer_name)} is not a paddle.optimizer optimizer. Valid names "
                         f"(case-insensitive): {', '.join(valid)}.{did_you_mean(key, valid)}")
    return OPTIMIZERS[key]


def check_kwargs(cls, kwargs: dict) -> None:
    """Refuse kwargs the optimizer does not take, those the strategy manages, and bad values."""
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "name")]
    for key in kwargs:
        if key in _MANAGED:
            raise ValueError(f"optimizer argument {key}={shown(kwargs[key])} is set by the strategy: "
                             f"{_MANAGED[key]}.")
        if key not in allowed:
            choices = [p for p in allowed if p not in _MANAGED]
            raise unknown_key_error(f"paddle.optimizer.{cls.__name__}", key, choices, value=kwargs[key])
        _check_annotation(cls, key, kwargs[key])
        value = kwargs[key]
        if isinstance(value, Real) and not isinstance(value, bool):
            check_number(f"paddle.optimizer.{cls.__name__} argument {key}", value, **_RANGES.get(key, {}))
    # Let Paddle judge the values now, on a throw-away parameter, rather than when training starts.
    probe = paddle.create_parameter([1], "float32")
    try:
        cls(learning_rate=1e-3, parameters=[probe], **kwargs)
    except Exception as exc:
        raise ValueError(f"paddle.optimizer.{cls.__name__} rejected the arguments {kwargs}: {exc}") from None


# Ranges Paddle does not check (or checks only for some classes): eps = inf makes every update 0, a decay rate
# of 1 or more never forgets (or diverges). Every other number must at least be finite.
_OPEN_UNIT = {"low": 0, "high": 1, "high_open": True}
_RANGES = {"epsilon": {"low": 0}, "beta1": _OPEN_UNIT, "beta2": _OPEN_UNIT,
           "momentum": _OPEN_UNIT, "rho": _OPEN_UNIT}

_ANNOTATED = {"float": (int, float), "int": (int,), "bool": (bool,), "None": (type(None),), "str": (str,),
              "Tensor": (paddle.Tensor,)}


def _check_annotation(cls, key, value):
    """Type-check a kwarg against Paddle's annotation where it is made only of simple types."""
    note = inspect.signature(cls.__init__).parameters[key].annotation
    if not isinstance(note, str):
        return
    parts = [t.strip() for t in note.split("|")]
    if parts[0].startswith("tuple"):
        allowed = (tuple, list)
    elif all(t in _ANNOTATED for t in parts):
        allowed = tuple(x for t in parts for x in _ANNOTATED[t])
    else:
        return
    if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
        raise TypeError(f"optimizer argument {key}={shown(value)} for paddle.optimizer.{cls.__name__} must be "
                        f"{note}, got {type(value).__name__}.")


class DecoupledWeightDecay:
    """The one decoupled weight decay of optimizers without Paddle's built-in (AdamW's) decay:
    w <- w - decay_lr() * multiplier * wd * w, with decay_lr() the step's learning rate (keras_bert's
    AdamWarmup: its bias-corrected lr_t).

    Applied to the parameters that get an update this step, from their value before the update, as AdamW
    (and PaddleHub 1.x's AdamWeightDecayStrategy) do.
    """

    _decay_coeff = 0.0
    _decay_params = ()

    def set_weight_decay(self, coeff, params):
        self._decay_coeff, self._decay_params = float(coeff), list(params)

    def decay_lr(self):
        return self.get_lr()

    def step(self):
        if self._decay_coeff:
            lr = self.decay_lr()
            with paddle.no_grad():
                for p in self._decay_params:
                    if p.stop_gradient or p._grad_ivar() is None:
                        continue  # as the update itself: no gradient, no change
                    mult = p.optimize_attr.get("learning_rate", 1.0)
                    p.scale_(1.0 - lr * mult * self._decay_coeff)
        super().step()


def make_optimizer(cls, learning_rate, parameters, *, weight_decay, decay_params, grad_clip, kwargs):
    """Construct `cls` over `parameters`; decoupled weight decay `weight_decay` on `decay_params` only."""
    kwargs = dict(kwargs)
    if cls is paddle.optimizer.Rprop:
        warnings.warn("Paddle's Rprop adapts each step size itself and ignores the global learning rate: the "
                      "strategy's schedule has no effect on its updates (block freezing still applies).",
                      stacklevel=3)
        learning_rate = float(learning_rate())
    if cls is paddle.optimizer.Lamb:
        kwargs.setdefault("lamb_weight_decay", 0.0)  # decay comes from regularization['weight_decay']
    if weight_decay and cls in (paddle.optimizer.Adam, paddle.optimizer.AdamW):
        decay_names = {p.name for p in decay_params}
        return paddle.optimizer.AdamW(learning_rate=learning_rate, parameters=parameters,
                                      weight_decay=weight_decay, grad_clip=grad_clip,
                                      apply_decay_param_fun=decay_names.__contains__, **kwargs)
    if cls is paddle.optimizer.AdamW:
        kwargs.setdefault("weight_decay", 0.0)
    if weight_decay and not issubclass(cls, DecoupledWeightDecay):
        cls = type(cls.__name__, (DecoupledWeightDecay, cls), {"__module__": __name__})
    opt = cls(learning_rate=learning_rate, parameters=parameters, grad_clip=grad_clip, **kwargs)
    if weight_decay:
        opt.set_weight_decay(weight_decay, decay_params)
    return opt


def create_all_accumulators(optimizer, parameters) -> None:
    """Create every parameter's optimizer state now, as the lazy path would on its first update.

    Adam-style optimizers create a parameter's moments on its first gradient; a checkpoint saved while a
    block is still frozen then lacks them, and loading it fails when that block unfreezes.
    """
    create = getattr(optimizer, "_create_accumulators", None)
    if create is None:
        return
    block = paddle.static.default_main_program().global_block()
    try:
        create(block, [p for p in parameters])
    except (NotImplementedError, TypeError, AttributeError):
        pass  # optimizers without accumulators of their own
