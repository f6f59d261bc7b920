"""Strategies by name: a YAML `Strategy:` section ({name: <strategy class>, its arguments}) or a PaddleOCR
`Optimizer:` section (strategies.ppocr) -> a strategy object."""
from __future__ import annotations

import inspect

from .._checks import check_keys, did_you_mean, shown
from .ppocr import OptimizerConfig, _prefixed

__all__ = ["build_strategy", "STRATEGIES", "strategy_from_config"]


def _strategies():
    from . import combined, fastai, keras_bert, paddlehub
    found = {}
    for mod in (combined, paddlehub, fastai, keras_bert):
        for name, obj in vars(mod).items():
            if (inspect.isclass(obj) and name.endswith("Strategy") and not name.startswith("_")
                    and issubclass(obj, combined.CombinedStrategy)):
                found[name] = obj
    return found


STRATEGIES = None  # filled on first use: {class name: class}


def build_strategy(config, where="Strategy"):
    """A strategy object from {name: <strategy class name>, its arguments...}."""
    global STRATEGIES
    if STRATEGIES is None:
        STRATEGIES = _strategies()
    if not isinstance(config, dict) or "name" not in config:
        raise TypeError(f"{where} must be a mapping with a name (one of {', '.join(sorted(STRATEGIES))}), "
                        f"got {shown(config)}.")
    cfg = dict(config)
    name = cfg.pop("name")
    if name not in STRATEGIES:
        raise ValueError(f"{where}.name: unknown strategy {shown(name)}. Allowed: {', '.join(sorted(STRATEGIES))}."
                         f"{did_you_mean(name, STRATEGIES)}")
    cls = STRATEGIES[name]
    params = inspect.signature(cls).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        check_keys(f"{where} ({name})", cfg, params)  # the keys are the class's arguments
    try:
        return cls(**cfg)
    except (ValueError, TypeError) as exc:
        raise _prefixed(where, exc) from None


def strategy_from_config(config):
    """The strategy of a whole config: its `Strategy:` section or its `Optimizer:` section (not both)."""
    has_s, has_o = config.get("Strategy") is not None, config.get("Optimizer") is not None
    if has_s and has_o:
        raise ValueError("the config has both a Strategy and an Optimizer section; keep one (Strategy: a PaddleHub "
                         "strategy by name; Optimizer: PaddleOCR's schema).")
    if not (has_s or has_o):
        raise ValueError("the config needs a Strategy section (e.g. {name: ULMFiTStrategy}) or an Optimizer "
                         "section (PaddleOCR's schema).")
    return build_strategy(config["Strategy"]) if has_s else OptimizerConfig(config["Optimizer"])
