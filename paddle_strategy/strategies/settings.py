"""CombinedStrategy's settings: the defaults of its scheduler / regularization / clip dicts and their
validation (at construction, where the key's name is known), plus the name checks build() makes on a model."""
from __future__ import annotations

import inspect
import re
import sys

import paddle

from .._checks import check_bool, check_keys, check_number, check_strings, did_you_mean, merge_dict, shown

DEFAULT_SCHEDULER = {
    "warmup": 0.0,
    "linear_decay": {"start_point": 1.0, "end_learning_rate": 0.0},
    "noam_decay": False,
    "discriminative": {"blocks": 0, "params_layer": None, "factor": 2.6},
    "gradual_unfreeze": {"blocks": 0, "params_layer": None},
    "slanted_triangle": {"cut_fraction": 0.0, "ratio": 32},
    "schedule": None,   # a catalogue schedule {"name": ..., its keys} or a callable step -> lr (replaces the above)
    "layer_lr": None,   # {sublayer name or regex: learning rate}: per-layer LR (first match wins)
    "reduce_on_plateau": None,  # {mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps}
}
DEFAULT_REGULARIZATION = {"L2": 0.0, "L2SP": 0.0, "weight_decay": 0.0, "L1": 0.0,
                          "no_weight_decay": None}  # None: biases + normalization; or {"names": [...], "one_dim": bool}
DEFAULT_CLIP = {"GlobalNorm": 0.0, "Norm": 0.0}
_BLOCK_KEYS = ("discriminative", "gradual_unfreeze")


def _check_params_layer(where, value):
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise TypeError(f"{where} must be None or a non-empty dict {{structured parameter name: layer}}, "
                        f"got {shown(value)}.")
    for name, layer in value.items():
        if not isinstance(name, str):
            raise TypeError(f"{where}: keys must be structured parameter names (str), got {shown(name)}.")
        check_number(f"{where}[{name!r}]", layer, integer=True)
    return dict(value)


def _check_scheduler(given):
    if given is not None and not isinstance(given, dict):
        raise TypeError(f"scheduler must be a dict, got {shown(given)} ({type(given).__name__}).")
    given = dict(given or {})
    for key in _BLOCK_KEYS:  # the seed writes "gradual_unfreeze": 3 for {"blocks": 3}
        if isinstance(given.get(key), int) and not isinstance(given.get(key), bool):
            given[key] = {"blocks": given[key]}
    s = merge_dict("scheduler", DEFAULT_SCHEDULER, given, nested=("linear_decay", "discriminative",
                                                                   "gradual_unfreeze", "slanted_triangle"))
    for key in ("linear_decay", "discriminative", "gradual_unfreeze", "slanted_triangle"):
        if not isinstance(s[key], dict):
            raise TypeError(f"scheduler[{shown(key)}] must be a dict, got {shown(s[key])}.")
    s["warmup"] = check_number("scheduler['warmup']", s["warmup"], low=0, high=1, high_open=True)
    ld = s["linear_decay"]
    ld["start_point"] = check_number("scheduler['linear_decay']['start_point']", ld["start_point"], low=0, high=1)
    ld["end_learning_rate"] = check_number("scheduler['linear_decay']['end_learning_rate']",
                                           ld["end_learning_rate"], low=0)
    check_bool("scheduler['noam_decay']", s["noam_decay"])
    for key in _BLOCK_KEYS:
        d = s[key]
        d["blocks"] = check_number(f"scheduler[{key!r}]['blocks']", d["blocks"], low=0, integer=True)
        d["params_layer"] = _check_params_layer(f"scheduler[{key!r}]['params_layer']", d["params_layer"])
        if d["blocks"] and d["params_layer"]:
            raise ValueError(f"scheduler[{shown(key)}] sets both blocks={d['blocks']} and params_layer: choose one "
                             f"(blocks=0 to use params_layer).")
    dis = s["discriminative"]
    dis["factor"] = _check_factor("scheduler['discriminative']['factor']", dis["factor"],
                                  "scheduler['discriminative']['params_layer']" if dis["params_layer"] else
                                  f"scheduler['discriminative']['blocks']={dis['blocks']}",
                                  _span(dis["blocks"], dis["params_layer"]))
    st = s["slanted_triangle"]
    st["cut_fraction"] = check_number("scheduler['slanted_triangle']['cut_fraction']", st["cut_fraction"],
                                      low=0, high=1, high_open=True)
    st["ratio"] = check_number("scheduler['slanted_triangle']['ratio']", st["ratio"], low=1)
    if st["cut_fraction"] > 0:
        clash = [k for k, on in (("warmup", s["warmup"] > 0), ("noam_decay", s["noam_decay"]),
                                 ("linear_decay", ld["start_point"] < 1)) if on]
        if clash:
            raise ValueError(f"scheduler: slanted_triangle (cut_fraction={st['cut_fraction']}) is a whole "
                             f"schedule and cannot be combined with {', '.join(clash)}; drop one of them.")
    s["schedule"] = _check_catalogue(s)
    s["layer_lr"] = _check_layer_lr(s["layer_lr"])
    if s["reduce_on_plateau"] is not None:
        from ..plateau import ReduceLROnPlateau
        rop = s["reduce_on_plateau"]
        if not isinstance(rop, dict):
            raise TypeError(f"scheduler['reduce_on_plateau'] must be None or a dict of ReduceLROnPlateau's "
                            f"arguments, got {shown(rop)}.")
        allowed = [k for k in inspect.signature(ReduceLROnPlateau).parameters if k != "learning_rate"]
        check_keys("scheduler['reduce_on_plateau']", rop, allowed)
        ReduceLROnPlateau(1.0, **rop)  # value checks now
        s["reduce_on_plateau"] = dict(rop)
    if s["noam_decay"]:
        if ld["start_point"] < 1:
            raise ValueError(f"scheduler: noam_decay cannot be combined with linear_decay "
                             f"(start_point={ld['start_point']}); set start_point=1.0 or drop noam_decay.")
        if s["warmup"] <= 0:
            raise ValueError("scheduler: noam_decay needs warmup > 0 (it decays as sqrt(W / t) after W warmup "
                             f"steps), got warmup={s['warmup']}.")
    return s


def _span(blocks, params_layer):
    """The largest k in factor**-k: blocks - 1, or the spread of the layers in params_layer."""
    if params_layer:
        return max(params_layer.values()) - min(params_layer.values())
    return max(blocks - 1, 0)


def _check_factor(where, factor, where_blocks, span):
    """Discriminative fine-tuning's factor: block k gets lr * factor**-k, k = 0 (the head) .. span.

    factor < 1 would give the blocks nearer the input a larger learning rate than the head; a factor so large
    that factor**-span is no longer a normal float would give the lowest blocks a learning rate of 0.
    """
    factor = check_number(where, factor, low=0, low_open=True)
    if factor < 1:
        raise ValueError(f"{where} must be >= 1 (block k trains at learning_rate * factor**-k, so {factor:g} would "
                         f"give the blocks nearer the input a larger learning rate than the head), got {factor!r}.")
    try:
        lowest = factor ** -span
    except OverflowError:
        lowest = 0.0
    if lowest < sys.float_info.min:
        raise ValueError(f"{where}={factor!r} with {where_blocks}: the lowest block (k={span}) would train at "
                         f"learning_rate * factor**-{span} = learning_rate * {lowest:g}, i.e. never; use a smaller "
                         f"factor or fewer blocks.")
    return factor


def _check_layer_lr(value):
    """{sublayer name or regex: learning rate}; names are matched as a prefix of the structured parameter
    name ('encoder.layers.0' matches 'encoder.layers.0.query.weight'), else as a regex (re.search)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise TypeError(f"scheduler['layer_lr'] must be None or a non-empty dict {{sublayer name or regex: lr}}, "
                        f"got {shown(value)}.")
    out = {}
    for pattern, lr in value.items():
        if not isinstance(pattern, str):
            raise TypeError(f"scheduler['layer_lr']: keys must be sublayer names or regexes (str), "
                            f"got {shown(pattern)}.")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"scheduler['layer_lr'][{shown(pattern)}] is not a valid regex: {exc}.") from None
        out[pattern] = check_number(f"scheduler['layer_lr'][{pattern!r}]", lr, low=0)
    return out


def _layer_lr_multipliers(layer_lr, names, base_lr):
    """{structured name: lr / base_lr} for the parameters a layer_lr pattern matches (first match wins)."""
    out, used = {}, set()
    for n in names:
        for pattern, lr in layer_lr.items():
            if n == pattern or n.startswith(pattern + ".") or re.search(pattern, n):
                out[n] = lr / base_lr if base_lr else 0.0
                used.add(pattern)
                break
    unused = [p for p in layer_lr if p not in used]
    if unused:
        raise ValueError(f"scheduler['layer_lr']: {', '.join(map(repr, unused))} match(es) no trainable parameter; "
                         f"names look like {shown(names[0])}.{did_you_mean(unused[0], names)}")
    return out


def _check_catalogue(s):
    """scheduler['schedule']: None, a callable step -> lr, or {"name": registered name, its keys}."""
    sched = s["schedule"]
    if sched is None:
        return None
    clash = [k for k, on in (("warmup", s["warmup"] > 0), ("noam_decay", s["noam_decay"]),
                             ("linear_decay", s["linear_decay"]["start_point"] < 1),
                             ("slanted_triangle", s["slanted_triangle"]["cut_fraction"] > 0)) if on]
    if clash:
        raise ValueError(f"scheduler: 'schedule' is a whole schedule and cannot be combined with "
                         f"{', '.join(clash)}; put warmup into the schedule (warmup_steps / its own warmup key).")
    if callable(sched):
        return sched
    if not isinstance(sched, dict) or "name" not in sched:
        raise TypeError(f"scheduler['schedule'] must be None, a callable step -> lr or a dict with a 'name' "
                        f"(one of paddle_strategy.schedules.SCHEDULES), got {shown(sched)}.")
    from ..schedules import registry
    entry = registry._lookup(sched["name"])  # unknown name: ValueError with did-you-mean
    allowed = set(entry.keys) | set(registry.GENERIC_KEYS) | {"name"}
    check_keys(f"scheduler['schedule'] ({shown(sched['name'])})", sched, allowed)
    return dict(sched)


def _check_pairs(where, given, defaults):
    merged = merge_dict(where, defaults, given)
    out = {k: check_number(f"{where}[{k!r}]", v, low=0) for k, v in merged.items() if k != "no_weight_decay"}
    if "no_weight_decay" in merged:
        out["no_weight_decay"] = _check_no_decay(f"{where}['no_weight_decay']", merged["no_weight_decay"])
    return out


def _check_no_decay(where, rule):
    """None, or {"names": [substrings of structured names], "one_dim": bool}: the parameters decoupled weight
    decay skips (PaddleOCR's AdamW no_weight_decay_name / one_dim_param_no_weight_decay)."""
    if rule is None:
        return None
    rule = merge_dict(where, {"names": [], "one_dim": False}, rule)
    names = rule["names"].split() if isinstance(rule["names"], str) else rule["names"]
    return {"names": check_strings(f"{where}['names']", names),
            "one_dim": check_bool(f"{where}['one_dim']", rule["one_dim"])}


def _check_names(where, given, names, all_names):
    known = set(names)
    for n in given:
        if n not in known:
            if n in all_names:
                raise ValueError(f"{where}: parameter {shown(n)} is frozen (stop_gradient=True) and cannot be used.")
            raise ValueError(f"{where}: {shown(n)} is not a parameter of the model.{did_you_mean(n, names)}")


def _layer_map(key, params_layer, model, names):
    _check_names(f"scheduler[{key!r}]['params_layer']", params_layer, names,
                 {n for n, _ in model.named_parameters()})
    return dict(params_layer)


def _pretrained_names(pretrained, model, names):
    if pretrained is None:
        return set(names)
    by_id = {id(p): n for n, p in model.named_parameters()}
    if isinstance(pretrained, paddle.nn.Layer):
        items = list(pretrained.parameters())
    elif isinstance(pretrained, dict):
        items = list(pretrained)
    elif isinstance(pretrained, (list, tuple, set)):
        items = list(pretrained)
    else:
        raise TypeError(f"build: pretrained must be None, a sublayer, a list of parameters or names, or a "
                        f"state_dict; got {type(pretrained).__name__}.")
    found = set()
    for item in items:
        if isinstance(item, str):
            _check_names("build(pretrained=...)", [item], names + list(by_id.values()), set())
            found.add(item)
        elif isinstance(item, paddle.Tensor) and id(item) in by_id:
            found.add(by_id[id(item)])
        else:
            raise ValueError(f"build(pretrained=...): {shown(getattr(item, 'name', item))} is not a parameter of "
                             f"the model.")
    return found


# ---------------------------------------------------------------------------------------- presets
