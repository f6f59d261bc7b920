"""CombinedStrategy: the one build of every strategy into a stock Paddle optimizer + LR scheduler.

A strategy is a plain, validated description (no model, no tensors). `build(model, ...)` turns it into
  - per-parameter LR multipliers (discriminative fine-tuning), in `p.optimize_attr['learning_rate']`;
  - L2 / L2-SP (applied after clipping, before the update);
  - decoupled weight decay (AdamW for Adam, a thin step() wrapper for the other optimizers);
  - one global-norm or per-tensor clip (clip and L2 / L2-SP both in place: regularizers.InPlaceClipRegularize);
  - a `StrategyLR` scheduler over a pure schedule that also applies gradual unfreezing,
so any loop that calls `optimizer.step()` and `lr_scheduler.step()` once per batch gets all of it.
"""
from __future__ import annotations

import warnings

import paddle

from .. import schedules
from .._checks import check_number, shown
from ..blocks import _depths, blocks_from_depths
from ..lr import StrategyLR
from ..optimizers import check_kwargs, create_all_accumulators, make_optimizer, resolve
from ..param_table import ParamTable, Row, bias_and_norm_names
from ..regularizers import L1, L2, L2SP, InPlaceClipRegularize, Sum
from .settings import (DEFAULT_CLIP, DEFAULT_REGULARIZATION, DEFAULT_SCHEDULER, _check_pairs, _check_scheduler,
                       _layer_lr_multipliers, _layer_map, _pretrained_names)

__all__ = ["CombinedStrategy", "DEFAULT_SCHEDULER", "DEFAULT_REGULARIZATION", "DEFAULT_CLIP"]

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

        With scheduler['schedule'] = {"name": ..., keys}: schedules.make_schedule with total_steps =
        max_train_steps and steps_per_epoch filling the schedule's run-length keys; `learning_rate` (when the
        schedule has that key and it is not given) is the strategy's learning_rate.
        """
        T = check_number("max_train_steps", max_train_steps, low=1, integer=True)
        s, lr = self.scheduler, self.learning_rate
        if s["schedule"] is not None:
            if callable(s["schedule"]):
                return s["schedule"]
            from ..schedules import registry
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
            from ..plateau import ReduceLROnPlateau
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


