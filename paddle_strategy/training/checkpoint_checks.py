"""Whether a checkpoint fits this run: checked on rank 0 before any of it is used.

A sealed manifest says the files are the ones written, not that they fit: they may come from another version,
a hand edit re-sealed, or a writer with a bug. So, before anything is applied:

- trainer_state.json: parsed within limits (size, nesting); its format and fingerprint (another run's is
  refused with CheckpointError, as before); every field's type and range — global_step an integer in
  1..max_train_steps that matches the folder's name, epoch and batch_in_epoch where that step puts them, the
  scheduler and mixed-precision states with the keys and value types of this run's, the best result and
  history, hook states accepted by a copy of their hook;
- model.safetensors, optimizer.safetensors, ema.safetensors: every tensor's name, shape and dtype against the
  live model / optimizer / average (no missing or unexpected one), every value finite;
- rng_<rank>.json: every stream restored into fresh objects and read back (rng_restorer).

Anything else marks the checkpoint damaged (`Damaged`, with the file and the cause); the next older one is
tried.
"""
from __future__ import annotations

import copy
import math
import os

import paddle

from .._checks import shown
from . import checkpoint_files as ckpt
from .checkpoint_files import CheckpointError
from .safe_io import read_json

__all__ = ["Damaged", "CheckpointChecks"]


class Damaged(Exception):
    """A checkpoint folder that cannot be used; the message says which file and why."""


_NUMPY_DTYPES = {}


def _numpy_dtype(dtype):
    """The numpy dtype name `Tensor.numpy()` gives for a Paddle dtype (bfloat16 is stored as uint16)."""
    if dtype not in _NUMPY_DTYPES:
        _NUMPY_DTYPES[dtype] = paddle.zeros([1], dtype=dtype).numpy().dtype.name
    return _NUMPY_DTYPES[dtype]


def _same_keys(saved, live, where, whose):
    """Damaged unless `saved` has exactly the keys of `live`."""
    for key in live:
        if key not in saved:
            raise Damaged(f"{where} lacks {key!r}")
    for key in saved:
        if key not in live:
            raise Damaged(f"{where} has {key!r}, which {whose} has not")


def _check_arrays(file, arrays, live, owner, what):
    """Damaged unless `arrays` has exactly the names of `live` ({name: Tensor}), each with its shape and dtype,
    and every value is finite."""
    _same_keys(arrays, live, file, f"the {owner}")
    for name, tensor in live.items():
        a, want = arrays[name], (_numpy_dtype(tensor.dtype), list(tensor.shape))
        if (a.dtype.name, list(a.shape)) != want:
            raise Damaged(f"{file}: {name!r} is {a.dtype.name} {list(a.shape)}, the {owner}'s is {want[0]} {want[1]}")
    _check_finite(file, arrays, what)


def _check_finite(file, arrays, what):
    bad = ckpt.nonfinite(arrays.items())
    if bad is not None:
        raise Damaged(f"{file}: {what} {bad!r} holds NaN or inf")


def _integer(state, key, low, high, where=""):
    value = _field(state, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Damaged(f"trainer_state.json: {where}{key} is {shown(value)}, not an integer")
    if not low <= value <= high:
        raise Damaged(f"trainer_state.json: {where}{key} {value} is outside {low}..{high}")
    return value


def _field(state, key, where=""):
    if key not in state:
        raise Damaged(f"trainer_state.json: {where.rstrip('.')} lacks {key!r}" if where else
                      f"trainer_state.json lacks {key!r}")
    return state[key]


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _like(saved, live, where):
    """Damaged unless `saved` has the form of `live` (a state_dict() of this run): the same keys, and values of
    the same JSON types (numbers are numbers, integer or not: a value may be 1 at first and 0.5 later; a value
    that is None here may be any scalar). Integer fields are checked by _integer."""
    if isinstance(live, dict):
        if not isinstance(saved, dict):
            raise Damaged(f"trainer_state.json: {where} is {shown(saved)}, not a mapping")
        _same_keys(saved, live, f"trainer_state.json: {where}", "this run's")
        for key in live:
            _like(saved[key], live[key], f"{where}.{key}")
        return
    if isinstance(live, (list, tuple)):
        fits = isinstance(saved, list) and len(saved) == len(live)
        if fits:
            for i, (s, v) in enumerate(zip(saved, live)):
                _like(s, v, f"{where}[{i}]")
    elif isinstance(live, bool):
        fits = isinstance(saved, bool)
    elif _is_number(live):
        fits = _is_number(saved)
    elif isinstance(live, str):
        fits = isinstance(saved, str)
    else:  # None, or a type JSON does not have
        fits = saved is None or _is_number(saved) or isinstance(saved, str)
    if not fits:
        raise Damaged(f"trainer_state.json: {where} is {shown(saved)}, where this run has {shown(live)}")


class CheckpointChecks:
    """Trainer methods that check a checkpoint against the run (a mixin of Checkpointing)."""

    def _read_state(self, path):
        """The trainer_state of checkpoint folder `path`, checked (see the module docstring)."""
        state = read_json(os.path.join(path, "trainer_state.json"))
        if not isinstance(state, dict):
            raise Damaged(f"trainer_state.json is {shown(state)}, not a mapping")
        if state.get("format") != ckpt.FORMAT:
            raise CheckpointError(f"{path}: checkpoint format {shown(state.get('format'))}; this version reads "
                                  f"{ckpt.FORMAT}.")
        fp = _field(state, "fingerprint")
        if not (isinstance(fp, dict) and isinstance(fp.get("parameters"), list)
                and all(isinstance(p, list) and len(p) == 3 and isinstance(p[0], str) for p in fp["parameters"])
                and isinstance(fp.get("strategy"), dict) and isinstance(fp.get("data"), dict)
                and isinstance(fp.get("ema"), (dict, type(None)))):
            raise Damaged("trainer_state.json: the fingerprint is malformed")
        self._check_fingerprint(path, fp)
        self._check_state(state, os.path.basename(path))
        return state

    def _check_state(self, state, name):
        cfg = self.config
        step = _integer(state, "global_step", 1, self.max_train_steps)
        if name != f"step_{step:08d}":
            raise Damaged(f"named {name}, but it holds the checkpoint of step {step}")
        k, per_epoch = cfg.gradient_accumulation_steps, self.steps_per_epoch
        epoch = _integer(state, "epoch", 0, cfg.num_epoch)
        batch = _integer(state, "batch_in_epoch", 0, self.batches_per_epoch - 1)
        if batch % k or epoch * per_epoch + batch // k != step:
            raise Damaged(f"trainer_state.json: epoch {epoch}, batch_in_epoch {batch} do not match global_step "
                          f"{step} (epoch {step // per_epoch}, batch {step % per_epoch * k})")
        _like(_field(state, "scheduler"), self.lr_scheduler.state_dict(), "scheduler")
        _integer(state["scheduler"], "last_epoch", 0, step, "scheduler.")
        if not math.isfinite(state["scheduler"]["last_lr"]):
            raise Damaged(f"trainer_state.json: scheduler.last_lr is {state['scheduler']['last_lr']}")
        if state.get("amp") is not None:  # (older checkpoints have none)
            _like(state["amp"], self.amp.state_dict(), "amp")
            _integer(state["amp"], "skipped", 0, step, "amp.")
        self._check_results(state, step)
        if self.ema is not None:
            _integer(state, "ema_updates", 0, step)
        if "scalars_size" in state:
            _integer(state, "scalars_size", 0, 1 << 62)
        hooks = state.get("hooks") or {}
        if not isinstance(hooks, dict):
            raise Damaged(f"trainer_state.json: hooks is {shown(hooks)}, not a mapping")
        for key, hook in self._hooks.stateful().items():
            if key in hooks:
                try:  # on a copy: the hook itself gets the state only once the whole checkpoint is accepted
                    copy.copy(hook).set_state_dict(hooks[key])
                except Exception as exc:  # noqa: BLE001 - user code: whatever it raises, it refused the state
                    raise Damaged(f"trainer_state.json: the state of hook {key!r} was refused by its set_state_dict "
                                  f"({type(exc).__name__}: {str(exc)[:200]})") from None

    @staticmethod
    def _check_results(state, step):
        best = _field(state, "best")
        if best is not None:
            if not isinstance(best, dict):
                raise Damaged(f"trainer_state.json: best is {shown(best)}, not null or a mapping")
            _integer(best, "step", 1, step, "best.")
            if not isinstance(best.get("metric"), str) or not _is_number(best.get("value")) \
                    or not isinstance(best.get("eval"), dict):
                raise Damaged(f"trainer_state.json: best is {shown(best)}, not a metric name, value and evaluation")
        history = _field(state, "history")
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise Damaged(f"trainer_state.json: history is {shown(history)}, not a list of evaluations")
        for h in history:
            _integer(h, "step", 1, step, "history[].")

    def _check_fingerprint(self, path, got):
        want = self._fingerprint
        got_ema, want_ema = got.get("ema"), want["ema"]  # checkpoints from before EMA existed have none
        if got_ema != want_ema:
            def said(e):
                return "no weight average (ema_decay=None)" if e is None else \
                    f"ema_decay={shown(e.get('decay'))}, ema_decay_type={shown(e.get('type'))}"
            raise CheckpointError(f"{path} was written with {said(got_ema)}, this run has {said(want_ema)}; the "
                                  f"average cannot be continued (nor started afresh from the middle of a run) "
                                  f"exactly. Use the same setting or another checkpoint_dir.")
        if got["parameters"] != want["parameters"]:
            have = {n: (s, d) for n, s, d in got["parameters"]}
            mine = {n: (s, d) for n, s, d in want["parameters"]}
            diff = [n for n in mine if have.get(n) != mine[n]] + [n for n in have if n not in mine]
            n = diff[0]
            raise CheckpointError(
                f"{path} was written for a different model: parameter {n!r} is {have.get(n, 'absent')} there and "
                f"{mine.get(n, 'absent')} here ({len(diff)} difference(s)). Use another checkpoint_dir.")
        diffs = ckpt.differences(got["strategy"], want["strategy"])
        if diffs:
            listed = "\n".join(f"  {k}: {shown(a)} there, {shown(b)} here" for k, a, b in diffs[:5])
            raise CheckpointError(f"{path} was written with a different strategy ({len(diffs)} setting(s) differ):\n"
                                  f"{listed}\nUse another checkpoint_dir to start afresh.")
        got_data = {"gradient_accumulation_steps": 1, **got["data"]}  # older checkpoints: k was always 1
        if got_data != want["data"]:
            keys = [k for k in want["data"] if got_data.get(k) != want["data"][k]]
            raise CheckpointError(f"{path} was written for a different run: "
                                  + ", ".join(f"{k} {shown(got_data.get(k))} there, {want['data'][k]!r} here"
                                              for k in keys) + ". Use another checkpoint_dir.")

    def _read_checkpoint(self, path, state):
        """(state, model arrays, optimizer arrays, every rank's RNG state, EMA arrays) of checkpoint `path` whose
        checked trainer_state is `state`, each part checked against the run; Damaged naming the part that does
        not fit. Rank 0 reads it for everyone."""
        model_state = ckpt.load_tensors(os.path.join(path, "model.safetensors"))
        _check_arrays("model.safetensors", model_state, self.model.state_dict(), "model", "parameter")
        opt_state = ckpt.load_tensors(os.path.join(path, "optimizer.safetensors"))
        _check_arrays("optimizer.safetensors", opt_state, self._accumulators_by_name(), "optimizer",
                      "optimizer state")
        rngs = []
        for r in range(self.nranks):
            file = f"rng_{r}.json"
            rngs.append(read_json(os.path.join(path, file)))
            try:
                ckpt.rng_restorer(rngs[-1], cuda=self.device.startswith("gpu"))  # a dry run: nothing is set
            except ValueError as exc:
                raise Damaged(f"{file}: {exc}") from None
        ema_state = None
        if self.ema is not None:
            if "ema.safetensors" not in read_json(os.path.join(path, "MANIFEST.json")):
                raise Damaged("MANIFEST.json does not list ema.safetensors")  # only listed files are verified
            ema_state = ckpt.load_tensors(os.path.join(path, "ema.safetensors"))
            try:
                self.ema.check(ema_state, state["ema_updates"])
            except ValueError as exc:
                raise Damaged(f"ema.safetensors: {exc}") from None
            _check_finite("ema.safetensors", ema_state, "the weight average of")
        return state, model_state, opt_state, rngs, ema_state

    def _accumulators_by_name(self):
        """{"<structured parameter name>/<accumulator>": Tensor} of the optimizer (how checkpoints key them:
        Paddle's own keys depend on creation order and on how many optimizers this process made)."""
        by_name = {p.name: n for n, p in self.model.named_parameters()}
        return {f"{by_name[pname]}/{acc}": var for acc, per_param in self.optimizer._accumulators.items()
                for pname, var in per_param.items() if pname in by_name}
