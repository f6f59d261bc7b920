"""From a PP-OCR-style YAML config to a Trainer: the sections, their keys, and the objects they build.

    Global:        epoch_num, print_batch_step, eval_batch_step ([start, interval] or interval), save_model_dir,
                   save_epoch_step, use_gpu, pretrained_model (.pdparams loaded before training),
                   checkpoints (a directory of step_<n> checkpoints to resume from), seed, keep_checkpoints,
                   gradient_accumulation_steps, use_amp, amp_dtype, amp_level, scale_loss, use_dynamic_loss_scaling,
                   amp_custom_black_list, amp_custom_white_list (PaddleOCR's AMP keys), early_stopping
                   ({patience, min_delta, metric}), save_final_checkpoint, dist_timeout (seconds other processes
                   wait for rank 0's solo work)
    EMA:           decay, type (constant | threshold | exponential): an average of the weights (PaddleClas's section)
    Architecture, Loss, Metric, Train / Eval: a built-in name or an import path + arguments (sections.py)
    Strategy:      name (a strategy class, e.g. ULMFiTStrategy) + its arguments    } exactly one of the two
    Optimizer:     PaddleOCR's schema (strategies.ppocr.build_optimizer)          }

Every section and key is checked, before any model or data loads: an unknown one is an error naming its path, with
"did you mean"; a value of the wrong type or range names its YAML path (Global.seed, not RunConfig.seed).
From Python: `build_trainer(config)` takes a config dict (checked here when it has not been) or a YAML path.
"""
from __future__ import annotations

import os

import paddle

from ._checks import check_bool, check_choice, check_keys, check_number, check_path, check_strings, shown
from .sections import (build_architecture, build_collate, build_datasets, build_loss, build_metrics,
                       check_architecture, check_loss, check_metric, check_part, is_builtin_dataset, train_size)
from .strategies import strategy_from_config
from .training import EarlyStopping, GlobalBatchSampler, RunConfig, Trainer
from .training.run_config import AMP_DTYPES, AMP_LEVELS, EMA_TYPES

__all__ = ["SECTIONS", "check_config", "build_model", "build_dataset", "build_datasets", "build_loss",
           "build_metrics", "build_collate", "build_trainer", "steps_per_epoch", "sample_input"]

SECTIONS = ("Global", "Architecture", "Loss", "Metric", "Strategy", "Optimizer", "Train", "Eval", "EMA")
GLOBAL_KEYS = {"epoch_num": 1, "print_batch_step": 10, "eval_batch_step": None, "save_model_dir": "./output/run",
               "save_epoch_step": None, "use_gpu": False, "pretrained_model": None, "checkpoints": None, "seed": 0,
               "keep_checkpoints": 3, "gradient_accumulation_steps": 1, "use_amp": False, "amp_dtype": "float16",
               "amp_level": "O1", "scale_loss": 65536.0, "use_dynamic_loss_scaling": True,
               "amp_custom_black_list": None, "amp_custom_white_list": None, "early_stopping": None,
               "save_final_checkpoint": True, "dist_timeout": 1800}
EMA_KEYS = {"decay": None, "type": "constant"}
EARLY_STOPPING_KEYS = {"patience": None, "min_delta": 0.0, "metric": None}
MAX_SEED = 2 ** 64 - 1  # paddle.seed takes an unsigned 64-bit integer


def check_config(config: dict) -> dict:
    """Refuse unknown sections and keys (with their path) and fill the defaults; returns a checked copy."""
    check_keys("config", config, SECTIONS, required=("Global", "Architecture", "Train"))
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    g = dict(GLOBAL_KEYS)
    g.update(check_keys("Global", out["Global"] or {}, GLOBAL_KEYS))
    g["epoch_num"] = check_number("Global.epoch_num", g["epoch_num"], low=1, integer=True)
    g["print_batch_step"] = check_number("Global.print_batch_step", g["print_batch_step"], low=1, integer=True)
    step = g["eval_batch_step"]
    if isinstance(step, (list, tuple)):
        if len(step) != 2:
            raise ValueError(f"Global.eval_batch_step must be an interval or [start, interval], got {shown(step)}.")
        g["eval_batch_step"] = [check_number("Global.eval_batch_step[0]", step[0], low=0, integer=True),
                                check_number("Global.eval_batch_step[1]", step[1], low=1, integer=True)]
    elif step is not None:
        g["eval_batch_step"] = [0, check_number("Global.eval_batch_step", step, low=1, integer=True)]
    if g["save_epoch_step"] is not None:
        g["save_epoch_step"] = check_number("Global.save_epoch_step", g["save_epoch_step"], low=1, integer=True)
    check_bool("Global.use_gpu", g["use_gpu"])
    g["seed"] = check_number("Global.seed", g["seed"], low=0, high=MAX_SEED, integer=True)
    g["keep_checkpoints"] = check_number("Global.keep_checkpoints", g["keep_checkpoints"], low=1, integer=True)
    _check_trainer_keys(g)
    if out.get("EMA") is not None:
        ema = dict(EMA_KEYS)
        ema.update(check_keys("EMA", out["EMA"], EMA_KEYS, required=("decay",)))
        ema["decay"] = check_number("EMA.decay", ema["decay"], low=0, high=1, low_open=True, high_open=True)
        check_choice("EMA.type", ema["type"], EMA_TYPES)
        out["EMA"] = ema
    _check_paths(g)
    out["Global"] = g
    for part in ("Train", "Eval"):
        if out.get(part) is not None:
            out[part] = check_part(part, out[part])
    arch = out["Architecture"] = check_architecture(out["Architecture"])
    num_classes = arch.get("num_classes") if isinstance(arch.get("num_classes"), int) else None
    out["Loss"] = check_loss(out.get("Loss"), num_classes)
    out["Metric"] = check_metric(out.get("Metric"))
    from .training.metrics import make_metrics
    try:  # the built-in names together (e.g. acc and accuracy are the same metric)
        make_metrics([n for n in out["Metric"]["name"] if isinstance(n, str)])
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"Metric.name: {exc}") from None
    strategy = out["_strategy"] = strategy_from_config(out)  # Strategy / Optimizer, checked now
    size = train_size(out)
    if size is None:  # a dataset named by an import path: the Trainer checks the run's length when it builds
        return out
    spe = steps_per_epoch(out, size)
    if hasattr(strategy, "validate"):
        strategy.validate(g["epoch_num"], spe)
    else:  # run-length dependent checks (e.g. a slanted triangle too short) before any model loads
        strategy.schedule(spe * g["epoch_num"], spe)
    return out


def _check_trainer_keys(g):
    """Global's accumulation, AMP, early stopping and final-checkpoint keys, named as the YAML names them."""
    g["gradient_accumulation_steps"] = check_number("Global.gradient_accumulation_steps",
                                                    g["gradient_accumulation_steps"], low=1, integer=True)
    for key in ("use_amp", "use_dynamic_loss_scaling", "save_final_checkpoint"):
        check_bool(f"Global.{key}", g[key])
    check_choice("Global.amp_dtype", g["amp_dtype"], AMP_DTYPES)
    check_choice("Global.amp_level", g["amp_level"], AMP_LEVELS)
    g["scale_loss"] = check_number("Global.scale_loss", g["scale_loss"], low=0, low_open=True)
    g["dist_timeout"] = check_number("Global.dist_timeout", g["dist_timeout"], low=0, low_open=True)
    for key in ("amp_custom_black_list", "amp_custom_white_list"):
        if g[key] is not None:
            g[key] = check_strings(f"Global.{key}", g[key], non_empty=True)
    if g["early_stopping"] is not None:
        es = dict(EARLY_STOPPING_KEYS)
        es.update(check_keys("Global.early_stopping", g["early_stopping"], EARLY_STOPPING_KEYS,
                             required=("patience",)))
        es["patience"] = check_number("Global.early_stopping.patience", es["patience"], low=1, integer=True)
        es["min_delta"] = check_number("Global.early_stopping.min_delta", es["min_delta"], low=0)
        if es["metric"] is not None and (not isinstance(es["metric"], str) or not es["metric"]):
            raise TypeError(f"Global.early_stopping.metric must be a metric name, got {shown(es['metric'])}.")
        g["early_stopping"] = es


def _check_paths(g):
    """Global's paths, expanded; save_model_dir must be a folder or become one, pretrained_model a weights file:
    checked here, not after the model has loaded."""
    g["save_model_dir"] = check_path("Global.save_model_dir", g["save_model_dir"])
    _check_folder("Global.save_model_dir", g["save_model_dir"])
    if g["checkpoints"] is not None:
        g["checkpoints"] = check_path("Global.checkpoints", g["checkpoints"])
    if g["pretrained_model"] is not None:
        path = g["pretrained_model"] = check_path("Global.pretrained_model", g["pretrained_model"])
        if os.path.isdir(path):
            raise ValueError(f"Global.pretrained_model: {shown(path)} is a directory; give the .pdparams file "
                             f"(to resume from a checkpoint directory use Global.checkpoints).")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Global.pretrained_model: {shown(path)} does not exist.")
        _check_weights_file("Global.pretrained_model", path)


def _not_a_folder(path):
    return "a file" if os.path.isfile(path) else "not a folder (a device or another special file)"


def _check_folder(where, path):
    """`path` is a folder, or can be made one: its nearest existing ancestor is a folder."""
    full = existing = os.path.abspath(path)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        inside = "" if existing == full else f"lies inside {existing}, which "
        raise ValueError(f"{where}: {shown(path)} {inside}is {_not_a_folder(existing)}; checkpoints and the best "
                         f"model are written into this folder.")


def _check_weights_file(where, path):
    """A .pdparams file starts like a pickle; anything else must have a safetensors header (read, not the data)."""
    if path.endswith(".pdparams"):
        with open(path, "rb") as f:
            head = f.read(2)
        if head[:1] != b"\x80":
            raise ValueError(f"{where}: {path} is not a .pdparams file (paddle.save writes a pickle, which starts "
                             f"with byte 0x80; this file starts with {head!r}).")
        return
    from safetensors import safe_open
    try:
        with safe_open(path, framework="np"):
            pass
    except Exception as exc:  # SafetensorError: header too large, invalid JSON, ...
        raise ValueError(f"{where}: {path} is not a safetensors file ({exc}); give a .safetensors file (e.g. the "
                         f"model.safetensors of a best_model or step_<n> folder) or a .pdparams file.") from None


def checkpoint_location(g) -> dict:
    """RunConfig's checkpoint_dir / resume_from for the Global section. Global.checkpoints names a step_<n>
    checkpoint to resume from (the run continues in its directory) or a directory of them; a path that does
    not exist or holds no checkpoint is refused, since the user asked to resume."""
    path = g["checkpoints"]
    if path is None:
        return {"checkpoint_dir": g["save_model_dir"]}
    if not isinstance(path, str) or not path:
        raise TypeError(f"Global.checkpoints must be a path, got {path!r}.")
    path = os.path.normpath(path)
    name = os.path.basename(path)
    if name.startswith("step_") and name[5:].isdigit() and os.environ.get("PADDLE_TRAINER_ID", "0") != "0":
        return {"checkpoint_dir": None, "resume_from": path}  # only rank 0 reads checkpoints (node-local disks)
    if os.environ.get("PADDLE_TRAINER_ID", "0") != "0":
        return {"checkpoint_dir": path}
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.lexists(path) else f"is {_not_a_folder(path)}"
        raise ValueError(f"Global.checkpoints: {path} {what} (it names the checkpoint to resume from: a step_<n> "
                         f"directory or the directory holding them; leave it empty to start afresh in "
                         f"Global.save_model_dir).")
    if name.startswith("step_") and name[5:].isdigit():
        return {"checkpoint_dir": None, "resume_from": path}
    if not any(n.startswith("step_") and n[5:].isdigit() for n in os.listdir(path)):
        raise ValueError(f"Global.checkpoints: {path} holds no step_<n> checkpoint to resume from (leave "
                         f"Global.checkpoints empty to start afresh in Global.save_model_dir).")
    return {"checkpoint_dir": path}


def build_model(config):
    """The Architecture section's model, with Global.pretrained_model loaded into it."""
    model = build_architecture(config)
    path = config["Global"]["pretrained_model"]
    if path:
        if not os.path.isfile(path):  # check_config refused it already; the file may have gone since
            raise FileNotFoundError(f"Global.pretrained_model: {path} is not a file.")
        from .training.checkpoint_files import load_weights
        try:
            state = load_weights(path)
        except Exception as exc:  # check_config looked at the header; the data may still be damaged
            raise ValueError(f"Global.pretrained_model: {path} could not be read: {type(exc).__name__}: "
                             f"{shown(str(exc))}") from exc
        missing, unexpected = model.set_state_dict(state) or ([], [])
        if missing or unexpected:
            raise ValueError(f"Global.pretrained_model: {path} does not fit the model (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}).")
    return model


def build_dataset(config, part, tokenizer=None):
    """The dataset of the Train or Eval section (tokenizer: used by the built-in datasets without their own)."""
    return build_datasets(config, (part,), tokenizer)[part]


def sample_input(config, model, dataset, n=4):
    """A TraceCall of `model` on a batch of the first n samples, collated as the Trainer collates them."""
    from paddle.io.dataloader.collate import default_collate_fn
    from .blocks import TraceCall
    from .training.loading import split_batch
    collate = build_collate(config) or default_collate_fn
    args, kwargs, _ = split_batch(collate([dataset[i] for i in range(min(n, len(dataset)))]))
    return TraceCall(model, *args, **kwargs)


def steps_per_epoch(config, num_samples, nranks=1):
    """Optimizer updates per epoch of the Train section: the batches the Trainer's GlobalBatchSampler cuts, in
    groups of Global.gradient_accumulation_steps."""
    batches = GlobalBatchSampler(num_samples, config["Train"]["loader"]["batch_size_per_card"],
                                 nranks=nranks).steps_per_epoch()
    return -(-batches // config["Global"].get("gradient_accumulation_steps", 1))


def build_trainer(config, *, model=None, tokenizer=None):
    """(trainer, model, tokenizer) for a config: a dict (checked first unless check_config made it) or the path
    of a YAML file. As tools/train.py: Paddle is seeded with Global.seed (unless a `model` is given), then the
    datasets load, then the model, so a bad data file fails before the model loads. `tokenizer` (optional)
    tokenizes the built-in datasets that name none."""
    if isinstance(config, (str, os.PathLike)):
        from .config import load_config
        config = load_config(config)
    if "_strategy" not in config:
        config = check_config(config)
    g = config["Global"]
    if model is None:
        paddle.seed(g["seed"])
    data = build_datasets(config, ("Train", "Eval"), tokenizer)
    train, dev = data["Train"], data.get("Eval")
    if model is None:
        model = build_model(config)
    loader = config["Train"]["loader"]
    spe = steps_per_epoch(config, len(train), paddle.distributed.get_world_size())
    eval_start, eval_every = g["eval_batch_step"] or (0, None)
    run = RunConfig(log_interval=g["print_batch_step"], eval_interval=eval_every,
                    save_ckpt_interval=None if g["save_epoch_step"] is None else g["save_epoch_step"] * spe,
                    use_cuda=g["use_gpu"], **checkpoint_location(g),
                    num_epoch=g["epoch_num"], batch_size=loader["batch_size_per_card"], strategy=config["_strategy"],
                    seed=g["seed"], keep_checkpoints=g["keep_checkpoints"], num_workers=loader["num_workers"],
                    shuffle=loader["shuffle"], eval_start_step=eval_start,
                    **{key: g[key] for key in ("gradient_accumulation_steps", "use_amp", "amp_dtype", "amp_level",
                                               "scale_loss", "use_dynamic_loss_scaling", "amp_custom_black_list",
                                               "amp_custom_white_list", "save_final_checkpoint", "dist_timeout")},
                    **({"ema_decay": config["EMA"]["decay"], "ema_decay_type": config["EMA"]["type"]}
                       if config.get("EMA") else {}))
    lengths = train.lengths() if is_builtin_dataset(config["Train"]["dataset"]) else None
    trainer = Trainer(model, run, train, dev, loss_fn=build_loss(config), metrics=build_metrics(config),
                      collate_fn=build_collate(config), lengths=lengths,
                      eval_batch_size=config["Eval"]["loader"]["batch_size_per_card"] if dev is not None else None)
    if g["early_stopping"] is not None:
        trainer.add_hook("eval_end_event", "early_stopping", EarlyStopping(**g["early_stopping"]))
    return trainer, model, tokenizer
