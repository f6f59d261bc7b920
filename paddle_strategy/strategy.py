"""CombinedStrategy and the PaddleHub 1.x presets, built into a stock Paddle optimizer + LR scheduler.

A strategy is a plain, validated description (no model, no tensors). `build(model, ...)` turns it into
  - per-parameter LR multipliers (discriminative fine-tuning), in `p.optimize_attr['learning_rate']`;
  - L2 / L2-SP (applied after clipping, before the update);
  - decoupled weight decay (AdamW for Adam, a thin step() wrapper for the other optimizers);
  - one global-norm or per-tensor clip (clip and L2 / L2-SP both in place: regularizers.InPlaceClipRegularize);
  - a `StrategyLR` scheduler over a pure schedule that also applies gradual unfreezing,
so any loop that calls `optimizer.step()` and `lr_scheduler.step()` once per batch gets all of it.
"""
from __future__ import annotations

import inspect
import re
import sys
import warnings

import paddle

from . import schedules
from ._checks import check_bool, check_keys, check_number, check_strings, did_you_mean, merge_dict, shown
from .blocks import _depths, blocks_from_depths
from .lr import StrategyLR
from .optimizers import check_kwargs, create_all_accumulators, make_optimizer, resolve
from .param_table import ParamTable, Row, bias_and_norm_names
from .regularizers import L1, L2, L2SP, InPlaceClipRegularize, Sum

__all__ = ["CombinedStrategy", "AdamWeightDecayStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy",
           "ULMFiTStrategy", "DEFAULT_SCHEDULER", "DEFAULT_REGULARIZATION", "DEFAULT_CLIP"]

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
        from .plateau import ReduceLROnPlateau
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
                        f"(one of paddle_strategy.catalogue.SCHEDULES), got {shown(sched)}.")
    from .schedules import registry
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


class CombinedStrategy:
    """PaddleHub 1.x's CombinedStrategy: one optimizer, a schedule, regularization and a clip.

    scheduler (merged into DEFAULT_SCHEDULER; t = updates done, T = max_train_steps, W = floor(T*warmup)):
      warmup            lr * t / W for t < W
      linear_decay      {start_point, end_learning_rate}: peak from W to S = max(W, floor(T*start_point)),
                        then end + (lr - end) * (T - t) / (T - S); start_point=1 means no decay
      noam_decay        lr * sqrt(W / t) after warmup (needs warmup > 0)
      slanted_triangle  {cut_fraction, ratio}: ULMFiT's slanted triangular LR (a whole schedule)
      discriminative    {blocks, params_layer, factor}: block k (0 = output side) gets lr * factor**-k;
                        or {name: layer} -> lr * factor**-(max_layer - layer)
      gradual_unfreeze  {blocks, params_layer} or an int: in epoch e blocks 0..e train;
                        or {name: layer} -> trains once layer >= max_layer - e
    regularization: L2 (grad += c*w on pretrained parameters), L2SP (grad += c*(w - w0) on pretrained;
      with both, L2 acts on the others), weight_decay (decoupled: w -= wd * lr_t * multiplier * w; biases
      and normalization parameters are skipped).
    clip: GlobalNorm (one norm over all trainable parameters) or Norm (per tensor).
    optimizer_kwargs go to the paddle.optimizer class named by optimizer_name (case-insensitive).
    """

    def __init__(self, optimizer_name="adam", learning_rate=1e-4, scheduler=None, regularization=None,
                 clip=None, **optimizer_kwargs):
        self._optimizer_cls = resolve(optimizer_name)
        self.optimizer_name = optimizer_name
        self.learning_rate = check_number("learning_rate", learning_rate, low=0)
        self.scheduler = _check_scheduler(scheduler)
        self.regularization = _check_pairs("regularization", regularization, DEFAULT_REGULARIZATION)
        self.clip = _check_pairs("clip", clip, DEFAULT_CLIP)
        if self.clip["GlobalNorm"] > 0 and self.clip["Norm"] > 0:
            raise ValueError(f"clip: GlobalNorm={self.clip['GlobalNorm']} and Norm={self.clip['Norm']} are both "
                             f"set; choose one (the other 0).")
        check_kwargs(self._optimizer_cls, optimizer_kwargs)
        self.optimizer_kwargs = dict(optimizer_kwargs)

    # ------------------------------------------------------------------------------------ description
    def _settings(self):
        kw = "".join(f", {k}={v!r}" for k, v in self.optimizer_kwargs.items())
        return (f"CombinedStrategy(optimizer_name={self.optimizer_name!r}, learning_rate={self.learning_rate!r}, "
                f"scheduler={self.scheduler!r}, regularization={self.regularization!r}, clip={self.clip!r}{kw})")

    def __repr__(self):
        return self._settings()

    __str__ = __repr__

    # ------------------------------------------------------------------------------------ schedule
    def schedule(self, max_train_steps, steps_per_epoch=None):
        """The pure `step -> learning rate` function for a run of `max_train_steps` updates.

        With scheduler['schedule'] = {"name": ..., keys}: catalogue.make_schedule with total_steps =
        max_train_steps and steps_per_epoch filling the schedule's run-length keys; `learning_rate` (when the
        schedule has that key and it is not given) is the strategy's learning_rate.
        """
        T = check_number("max_train_steps", max_train_steps, low=1, integer=True)
        s, lr = self.scheduler, self.learning_rate
        if s["schedule"] is not None:
            if callable(s["schedule"]):
                return s["schedule"]
            from .schedules import registry
            kwargs = {k: v for k, v in s["schedule"].items() if k != "name"}
            if "learning_rate" in registry.schedule_keys(s["schedule"]["name"]):
                kwargs.setdefault("learning_rate", lr)
            return registry.make_run_schedule(s["schedule"]["name"], kwargs, total_steps=T,
                                              steps_per_epoch=steps_per_epoch)
        st = s["slanted_triangle"]
        if st["cut_fraction"] > 0:
            cut = schedules.steps_for_fraction(T, st["cut_fraction"])
            if cut < 1:
                raise ValueError(f"slanted_triangle: cut_fraction={st['cut_fraction']} of max_train_steps={T} is "
                                 f"{T * st['cut_fraction']:g} steps; the increase needs at least 1 "
                                 f"(raise cut_fraction or train longer).")
            return schedules.make_slanted_triangular(lr, T, cut, st["ratio"])
        warmup_steps = schedules.steps_for_fraction(T, s["warmup"])
        if s["noam_decay"]:
            if warmup_steps < 1:
                raise ValueError(f"noam_decay: warmup={s['warmup']} of max_train_steps={T} is 0 steps; "
                                 f"noam needs at least 1 warmup step.")
            return schedules.make_noam_decay(lr, warmup_steps)
        ld = s["linear_decay"]
        decay_start = schedules.steps_for_fraction(T, ld["start_point"])
        return schedules.make_warmup_linear_decay(lr, T, warmup_steps, decay_start, ld["end_learning_rate"])

    # ------------------------------------------------------------------------------------ build
    def build(self, model, max_train_steps, steps_per_epoch=None, sample_input=None, pretrained=None, *,
              schedule=None):
        """Return (optimizer, lr_scheduler) for training `model` for `max_train_steps` updates.

        sample_input: one batch as `model(...)` takes it (a tuple/list is spread as positional
          arguments), used to trace the op graph for blocks. Without it, blocks follow the order in which
          layers registered their parameters, with a warning.
        pretrained: the parameters L2 / L2-SP act on: a sublayer, a list of parameters or structured
          names, or a state_dict; default every trainable parameter.
        steps_per_epoch: needed for gradual unfreezing (the epoch is step // steps_per_epoch).
        schedule: a `step -> lr` function that replaces this strategy's own schedule and its momentum cycling
          (lr_find's sweep); the build is then not a training run, so its length is not warned about.
        Parameters already frozen (stop_gradient=True) are left out of the optimizer and of every block.
        The per-parameter decisions are this strategy's param_table (lr_scheduler.table).
        """
        if not isinstance(model, paddle.nn.Layer):
            raise TypeError(f"build: model must be a paddle.nn.Layer, got {type(model).__name__}.")
        T = check_number("max_train_steps", max_train_steps, low=1, integer=True)
        if steps_per_epoch is not None:
            steps_per_epoch = check_number("steps_per_epoch", steps_per_epoch, low=1, integer=True)
        override = schedule is not None
        if override and not callable(schedule):
            raise TypeError(f"build: schedule must be a function step -> lr, got {shown(schedule)}.")
        if not override:
            schedule = self.schedule(T, steps_per_epoch)  # run-length errors before the trace
        table = self.param_table(model, steps_per_epoch=steps_per_epoch, sample_input=sample_input,
                                 pretrained=pretrained)
        unfreeze = table.unfreeze_groups()
        if unfreeze and not override:
            self._warn_never_unfrozen(unfreeze, T, steps_per_epoch, {id(p): n for n, p in table.parameters.items()})
        reg = self.regularization
        regularizers = table.regularized()
        if self.clip["GlobalNorm"] or self.clip["Norm"] or regularizers:  # clip, then L1 / L2 / L2-SP, in place
            grad_clip = InPlaceClipRegularize(self.clip["GlobalNorm"], self.clip["Norm"], regularizers)
        else:
            grad_clip = None
        plateau = None
        if self.scheduler["reduce_on_plateau"] is not None:
            from .plateau import ReduceLROnPlateau
            plateau = ReduceLROnPlateau(self.learning_rate, **self.scheduler["reduce_on_plateau"])
        lr_scheduler = StrategyLR(schedule, table=table, steps_per_epoch=steps_per_epoch, description=str(self),
                                  plateau=plateau)  # applies the table to the parameters
        params = list(table.parameters.values())
        optimizer = make_optimizer(self._optimizer_cls, lr_scheduler, params, weight_decay=reg["weight_decay"],
                                   decay_params=table.decayed(), grad_clip=grad_clip, kwargs=self.optimizer_kwargs)
        create_all_accumulators(optimizer, params)
        if getattr(schedule, "momentum", None) is not None:
            lr_scheduler.bind_momentum(optimizer, schedule.momentum)
        return optimizer, lr_scheduler

    # ------------------------------------------------------------------------------------ parameter table
    def param_table(self, model, *, steps_per_epoch=None, sample_input=None, pretrained=None) -> ParamTable:
        """What this strategy gives each trainable parameter of `model` (see param_table.ParamTable): built from
        the rules below, which presets override (fastai's spread and phases, keras_bert's decay pattern)."""
        s = self.scheduler
        frz = s["gradual_unfreeze"]
        if (frz["blocks"] or frz["params_layer"]) and steps_per_epoch is None:
            raise ValueError("build: gradual_unfreeze works per epoch and needs steps_per_epoch (got None).")
        named = [(n, p) for n, p in model.named_parameters() if not p.stop_gradient]
        if not named:
            raise ValueError("build: the model has no trainable parameters (all have stop_gradient=True).")
        names = [n for n, _ in named]
        traced = {}

        def blocks(n):  # one trace of the op graph serves every block count asked for
            if not traced:
                traced["depths"], traced["method"] = _depths(model, sample_input)
            return blocks_from_depths(model, n, traced["depths"], traced["method"])

        block_names, block_mults, multiplier = self._lr_rule(model, names, blocks)
        unfreeze = self._unfreeze_rule(model, names, blocks)
        decays = self._decay_rule(model, names)
        regularizer = self._regularizer_rule(model, named, pretrained)
        first = {n: epoch for group, epoch in unfreeze for n in group}
        block_of = {n: k for k, group in enumerate(block_names) for n in group}
        rows = {n: Row(p, multiplier[n], decays=n in decays, regularizer=regularizer.get(n),
                       unfreeze_epoch=first.get(n, 0), block=block_of.get(n)) for n, p in named}
        table = ParamTable(rows, block_names, block_mults, unfreeze=unfreeze)
        self._phase_rule(model, table)
        return table

    def _lr_rule(self, model, names, blocks):
        """(blocks, their multipliers, {name: multiplier}): discriminative blocks or params_layer, then
        layer_lr for the parameters it names."""
        dis = self.scheduler["discriminative"]
        multiplier = dict.fromkeys(names, 1.0)
        block_names, block_mults = [names], [1.0]
        if dis["blocks"]:
            block_names = blocks(dis["blocks"])
            block_mults = [dis["factor"] ** -k for k in range(len(block_names))]
        elif dis["params_layer"]:
            layers = _layer_map("discriminative", dis["params_layer"], model, names)
            top = max(layers.values())
            levels = sorted(set(layers.values()), reverse=True)
            block_names = [[n for n in names if layers.get(n) == lv] for lv in levels]
            block_mults = [(1.0 / dis["factor"]) ** (top - lv) for lv in levels]
            rest = [n for n in names if n not in layers]
            if rest:
                block_names.insert(0, rest)
                block_mults.insert(0, 1.0)
        for group, mult in zip(block_names, block_mults):
            for n in group:
                multiplier[n] = mult
        if self.scheduler["layer_lr"]:  # per-layer LRs replace the block multiplier of the parameters they name
            if not self.learning_rate:
                raise ValueError("scheduler['layer_lr'] needs learning_rate > 0 (each layer's LR is a multiple of it).")
            multiplier.update(_layer_lr_multipliers(self.scheduler["layer_lr"], names, self.learning_rate))
        return block_names, block_mults, multiplier

    def _unfreeze_rule(self, model, names, blocks):
        """[(names, first epoch they train)]: one group per gradual-unfreezing block, or per parameter."""
        frz = self.scheduler["gradual_unfreeze"]
        if frz["blocks"]:
            return [(list(group), k) for k, group in enumerate(blocks(frz["blocks"]))]
        if frz["params_layer"]:
            layers = _layer_map("gradual_unfreeze", frz["params_layer"], model, names)
            top = max(layers.values())
            return [([n], top - lv) for n, lv in layers.items()]
        return []

    def _decay_rule(self, model, names) -> set:
        """The names decoupled weight decay acts on: all but biases and normalization parameters, or all but
        those regularization['no_weight_decay'] names (PaddleOCR's AdamW rule)."""
        rule = self.regularization["no_weight_decay"]
        if rule is None:
            skip = bias_and_norm_names(model)
        else:
            shapes = dict(model.named_parameters())
            skip = {n for n in names if any(sub in n for sub in rule["names"])
                    or (rule["one_dim"] and len(shapes[n].shape) == 1)}
        return {n for n in names if n not in skip}

    def _regularizer_rule(self, model, named, pretrained) -> dict:
        """{name: regularizer}: L2-SP on the pretrained parameters; L2 and L1 on them too, or on the others
        when L2-SP is set."""
        reg = self.regularization
        pre = _pretrained_names(pretrained, model, [n for n, _ in named])
        out = {}
        for n, p in named:
            parts = []
            if reg["L2SP"] and n in pre:
                parts.append(L2SP(reg["L2SP"], p))
            coupled = n not in pre if reg["L2SP"] else n in pre
            if reg["L2"] and coupled:
                parts.append(L2(reg["L2"]))
            if reg["L1"] and coupled:
                parts.append(L1(reg["L1"]))
            if parts:
                out[n] = parts[0] if len(parts) == 1 else Sum(parts)
        return out

    def _phase_rule(self, model, table):
        """Two-phase runs set each row's (before, after) multiplier and the table's boundary (fine_tune)."""

    _frz_name = "scheduler['gradual_unfreeze']['blocks']"          # how the caller sets the number of blocks
    _frz_layer_name = "scheduler['gradual_unfreeze']['params_layer']"

    def _warn_never_unfrozen(self, unfreeze, total_steps, steps_per_epoch, name_of):
        """Warn when gradual unfreezing's run is too short for some blocks ever to train: the updates are
        t = 0 .. total_steps - 1, in epoch t // steps_per_epoch, and a block first trains in its epoch."""
        last = (total_steps - 1) // steps_per_epoch
        never = [(params, first) for params, first in unfreeze if first > last]
        if not never:
            return
        epochs = -(-total_steps // steps_per_epoch)
        need = max(first for _, first in never) + 1
        if self.scheduler["gradual_unfreeze"]["blocks"]:
            names = [f"block {first} ({name_of[id(params[0])]} ... {name_of[id(params[-1])]}, {len(params)} "
                     f"parameters)" for params, first in never]
            change, what = f"{self._frz_name}={last + 1}", f"{len(names)} block(s)"
        else:
            names = [name_of[id(p)] for params, _ in never for p in params]
            change = f"{self._frz_layer_name} with layers that unfreeze within {epochs} epoch(s)"
            what = f"{len(names)} parameter(s)"
        shown_names = "; ".join(names[:6]) + (f"; and {len(names) - 6} more" if len(names) > 6 else "")
        warnings.warn(f"gradual unfreezing: the run has {epochs} epoch(s) of {steps_per_epoch} steps, and one more "
                      f"block unfreezes per epoch, so {what} never train: {shown_names}. Train for "
                      f"{need} epochs (RunConfig(num_epoch={need}) / Global.epoch_num: {need}) or set {change}.",
                      stacklevel=3)


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
class _Preset(CombinedStrategy):
    _args = ()

    def __repr__(self):
        own = ", ".join(f"{k}={getattr(self, '_' + k)!r}" for k in self._args)
        return f"{type(self).__name__}({own}) -> {self._settings()}"

    __str__ = __repr__


class AdamWeightDecayStrategy(_Preset):
    """PaddleHub 1.x's BERT recipe: warmup, then linear (or noam) decay; decoupled weight decay that skips
    biases and normalization parameters; global-norm clip 1.0.

    lr_scheduler="linear_decay": lr * t / W for t < W, then lr * (T - t) / (T - W) down to 0 at T.
    lr_scheduler="noam_decay":   lr * t / W for t < W, then lr * sqrt(W / t).   (W = floor(T * warmup_proportion))
    """

    _args = ("learning_rate", "lr_scheduler", "warmup_proportion", "weight_decay", "optimizer_name")

    def __init__(self, learning_rate=1e-4, lr_scheduler="linear_decay", warmup_proportion=0.0,
                 weight_decay=0.01, optimizer_name="adam"):
        self._learning_rate, self._lr_scheduler = learning_rate, lr_scheduler
        self._warmup_proportion, self._weight_decay = warmup_proportion, weight_decay
        self._optimizer_name = optimizer_name
        if lr_scheduler not in ("linear_decay", "noam_decay"):
            raise ValueError(f"lr_scheduler={shown(lr_scheduler)} is not supported; use 'linear_decay' or "
                             f"'noam_decay'.{did_you_mean(lr_scheduler, ['linear_decay', 'noam_decay'])}")
        wp = check_number("warmup_proportion", warmup_proportion, low=0, high=1, high_open=True)
        if lr_scheduler == "noam_decay":
            if wp == 0:
                raise ValueError("warmup_proportion=0 with lr_scheduler='noam_decay': noam decays as "
                                 "sqrt(W / t) after W warmup steps and needs warmup_proportion > 0.")
            scheduler = {"warmup": wp, "noam_decay": True}
        else:
            scheduler = {"warmup": wp, "linear_decay": {"start_point": wp, "end_learning_rate": 0.0}}
        check_number("weight_decay", weight_decay, low=0)
        super().__init__(optimizer_name=optimizer_name, learning_rate=learning_rate, scheduler=scheduler,
                         regularization={"weight_decay": weight_decay}, clip={"GlobalNorm": 1.0})


class DefaultFinetuneStrategy(_Preset):
    """A constant learning rate and L2 (grad += c * w) on the pretrained parameters."""

    _args = ("learning_rate", "optimizer_name", "regularization_coeff")

    def __init__(self, learning_rate=1e-4, optimizer_name="adam", regularization_coeff=1e-3):
        self._learning_rate, self._optimizer_name = learning_rate, optimizer_name
        self._regularization_coeff = regularization_coeff
        check_number("regularization_coeff", regularization_coeff, low=0)
        super().__init__(optimizer_name=optimizer_name, learning_rate=learning_rate,
                         regularization={"L2": regularization_coeff})


class L2SPFinetuneStrategy(_Preset):
    """A constant learning rate and L2-SP (grad += c * (w - w0)) towards the pretrained weights."""

    _args = ("learning_rate", "optimizer_name", "regularization_coeff")

    def __init__(self, learning_rate=1e-4, optimizer_name="adam", regularization_coeff=1e-3):
        self._learning_rate, self._optimizer_name = learning_rate, optimizer_name
        self._regularization_coeff = regularization_coeff
        check_number("regularization_coeff", regularization_coeff, low=0)
        super().__init__(optimizer_name=optimizer_name, learning_rate=learning_rate,
                         regularization={"L2SP": regularization_coeff})


class ULMFiTStrategy(_Preset):
    """ULMFiT (Howard & Ruder 2018): slanted triangular LR, discriminative fine-tuning (block k at
    lr * factor**-k) and gradual unfreezing (one more block per epoch).

    dis_params_layer / frz_params_layer ({structured name: layer}) replace dis_blocks / frz_blocks when given.
    """

    _frz_name, _frz_layer_name = "frz_blocks", "frz_params_layer"
    _args = ("learning_rate", "optimizer_name", "cut_fraction", "ratio", "dis_blocks", "factor", "dis_params_layer",
             "frz_blocks", "frz_params_layer")  # PaddleHub 1.x's order (v1.8), so positional calls keep working

    def __init__(self, learning_rate=1e-4, optimizer_name="adam", cut_fraction=0.1, ratio=32, dis_blocks=3,
                 factor=2.6, dis_params_layer=None, frz_blocks=3, frz_params_layer=None):
        for k in self._args:
            setattr(self, "_" + k, locals()[k])
        # checked under the names the caller wrote, before they become scheduler entries
        check_number("cut_fraction", cut_fraction, low=0, high=1, high_open=True)
        check_number("ratio", ratio, low=1)
        dis_blocks = check_number("dis_blocks", dis_blocks, low=0, integer=True)
        frz_blocks = check_number("frz_blocks", frz_blocks, low=0, integer=True)
        dis_params_layer = _check_params_layer("dis_params_layer", dis_params_layer)
        frz_params_layer = _check_params_layer("frz_params_layer", frz_params_layer)
        _check_factor("factor", factor, "dis_params_layer" if dis_params_layer else f"dis_blocks={dis_blocks}",
                      _span(0 if dis_params_layer else dis_blocks, dis_params_layer))
        scheduler = {
            "slanted_triangle": {"cut_fraction": cut_fraction, "ratio": ratio},
            "discriminative": {"blocks": 0 if dis_params_layer else dis_blocks,
                               "params_layer": dis_params_layer, "factor": factor},
            "gradual_unfreeze": {"blocks": 0 if frz_params_layer else frz_blocks,
                                 "params_layer": frz_params_layer},
        }
        super().__init__(optimizer_name=optimizer_name, learning_rate=learning_rate, scheduler=scheduler)
