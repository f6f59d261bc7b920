"""The Architecture, Loss, Metric, Train and Eval sections: checked (before anything loads) and built.

Each `name` is a built-in or a dotted import path `package.module.Name` (paddle_strategy.registry):

    Architecture   MiniLMClassifier (num_classes, dropout), or a class / function called with the section's other
                   keys that returns a paddle.nn.Layer
    Train / Eval   dataset: RottenTomatoes (split, size, max_len, split_seed, full, tokenizer),
                   TextClassificationDataset (its arguments + split, size), or a class / function called with the
                   other keys that returns a map-style dataset (samples: tuples, the label last, or dicts)
                   loader: batch_size_per_card, shuffle, num_workers; Train.loader.collate_fn (a name or a path)
    Loss           CrossEntropyLoss (the arguments that fit this trainer), any paddle.nn loss by class name, or a
                   path: a class (instantiated with the other keys) or a function loss(output, label, **keys)
    Metric         name: one or a list of acc, f1, precision, recall, matthews or paths (a paddle.metric.Metric
                   class or a callable class, instantiated with keys; or a function fn(preds, labels, **keys));
                   a list item may be {name: path, key: value}
"""
from __future__ import annotations

import inspect
import os

from ._checks import (check_bool, check_choice, check_keys, check_number, check_numbers, check_path, did_you_mean,
                      expand_path, shown)
from .registry import bind_function, check_arguments, paddle_losses, resolve

__all__ = ["check_architecture", "check_part", "check_loss", "check_metric", "build_architecture",
           "build_datasets", "build_loss", "build_metrics", "build_collate", "is_builtin_dataset", "train_size"]

RT_KEYS = {"name": "RottenTomatoes", "split": "train", "size": None, "max_len": 64, "split_seed": 0, "full": False,
           "tokenizer": None}
LOADER_KEYS = {"batch_size_per_card": 32, "shuffle": True, "num_workers": 0}
MAX_SEED = 2 ** 64 - 1


def _text_dataset():
    from .text_dataset import TextClassificationDataset
    return TextClassificationDataset


def _architectures():
    from .minilm import load_minilm
    return {"MiniLMClassifier": load_minilm}


DATASETS = {"RottenTomatoes": None, "TextClassificationDataset": None}  # built by build_datasets
COLLATES = ("collate_padded",)


def _metric_names():
    from .training.metrics import METRIC_NAMES
    return METRIC_NAMES


def _mapping(where, value) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a mapping, got {shown(value)} ({type(value).__name__}).")
    return dict(value)


def _args(section):
    return {k: v for k, v in section.items() if k != "name"}


def _is_function(obj):
    return not inspect.isclass(obj)


# ------------------------------------------------------------------------------------------------ Architecture
def check_architecture(arch) -> dict:
    if not isinstance(arch, dict) or "name" not in arch:
        raise ValueError(f"Architecture must be a mapping with a name ({', '.join(_architectures())} or an import "
                         f"path package.module.Name), got {shown(arch)}.")
    target, builtin = resolve("Architecture.name", arch["name"], _architectures())
    arch = dict(arch)
    if not builtin:
        check_arguments("Architecture", target, _args(arch), name=arch["name"])
        return arch
    allowed = [p for p in inspect.signature(target).parameters if p != "model_dir"]
    check_keys("Architecture", _args(arch), allowed)
    arch["num_classes"] = check_number("Architecture.num_classes", arch.get("num_classes", 2), low=2,
                                       integer=True)  # softmax over one class is always 1
    if "dropout" in arch:
        arch["dropout"] = check_number("Architecture.dropout", arch["dropout"], low=0, high=1, high_open=True)
    return arch


def build_architecture(config):
    """The model of the Architecture section (without Global.pretrained_model)."""
    import paddle
    arch = dict(config["Architecture"])
    name = arch.pop("name")
    target, builtin = resolve("Architecture.name", name, _architectures())
    if builtin:
        return target(**arch)[0]  # load_minilm: (model, tokenizer)
    model = target(**arch)
    if not isinstance(model, paddle.nn.Layer):
        raise TypeError(f"Architecture.name: {name}({', '.join(f'{k}={v!r}' for k, v in arch.items())}) returned "
                        f"{type(model).__name__}, not a paddle.nn.Layer.")
    return model


# ------------------------------------------------------------------------------------------------ Train / Eval
def check_part(part, section) -> dict:
    """A checked copy of the Train / Eval section: {dataset, loader}."""
    sec = check_keys(part, section, ("dataset", "loader"), required=("dataset",))
    ds = _mapping(f"{part}.dataset", sec["dataset"])
    name = ds.get("name", "RottenTomatoes")
    target, builtin = resolve(f"{part}.dataset.name", name, DATASETS)
    default_split = "train" if part == "Train" else "dev"
    if name == "RottenTomatoes":
        check_keys(f"{part}.dataset", ds, RT_KEYS)
        ds = _check_rotten_tomatoes(part, {**RT_KEYS, "split": default_split, **ds})
    elif name == "TextClassificationDataset":
        ds = _check_text_dataset(part, dict(ds, name=name, split=ds.get("split", default_split)))
    else:
        check_arguments(f"{part}.dataset", target, _args(ds), name=name)
        ds = dict(ds)
    loader_keys = dict(LOADER_KEYS, **({"collate_fn": None} if part == "Train" else {}))
    given = sec.get("loader") or {}
    if part == "Eval" and isinstance(given, dict) and "collate_fn" in given:
        raise ValueError(f"Eval.loader.collate_fn: set collate_fn in Train.loader (the Trainer collates training "
                         f"and evaluation batches with the same function), got {shown(given['collate_fn'])}.")
    loader = dict(loader_keys)
    loader.update(check_keys(f"{part}.loader", given, loader_keys))
    loader["batch_size_per_card"] = check_number(f"{part}.loader.batch_size_per_card", loader["batch_size_per_card"],
                                                 low=1, integer=True)
    loader["num_workers"] = check_number(f"{part}.loader.num_workers", loader["num_workers"], low=0, integer=True)
    check_bool(f"{part}.loader.shuffle", loader["shuffle"])
    if loader.get("collate_fn") is not None:
        fn, builtin = resolve("Train.loader.collate_fn", loader["collate_fn"], _collates())
        if not builtin:
            check_arguments("Train.loader.collate_fn", fn, {}, skip=1, name=loader["collate_fn"])
    return {"dataset": ds, "loader": loader}


def _check_rotten_tomatoes(part, ds):
    check_choice(f"{part}.dataset.split", ds["split"], ("train", "dev", "test"))
    if ds["size"] is not None:
        ds["size"] = check_number(f"{part}.dataset.size", ds["size"], low=1, integer=True)
    ds["max_len"] = check_number(f"{part}.dataset.max_len", ds["max_len"], low=3, integer=True)
    ds["split_seed"] = check_number(f"{part}.dataset.split_seed", ds["split_seed"], low=0, high=MAX_SEED,
                                    integer=True)
    check_bool(f"{part}.dataset.full", ds["full"])
    ds["tokenizer"] = _check_tokenizer_path(f"{part}.dataset.tokenizer", ds["tokenizer"])
    return ds


def _check_tokenizer_path(where, path):
    """The path (~ and $NAME expanded) of an existing tokenizer.json, or None."""
    if path is None:
        return None
    path = check_path(where, path, "the path of a tokenizers tokenizer.json (or null: the embedded MiniLM tokenizer)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where}: {path} does not exist.")
    return path


def _check_text_dataset(part, ds):
    from .text_dataset import SPLITS, check_files_exist, check_text_dataset_arguments
    where = f"{part}.dataset"
    args = _args(ds)
    for key in ("base_path", "label_file", *(f"{s}_file" for s in SPLITS)):
        if key in args:
            args[key] = expand_path(f"{where}.{key}", args[key])
    split, size = args.pop("split"), args.pop("size", None)
    check_arguments(where, _text_dataset(), args, name="TextClassificationDataset")
    check_choice(f"{where}.split", split, ("train", "dev", "test"))
    if size is not None:
        size = check_number(f"{where}.size", size, low=1, integer=True)
    check_text_dataset_arguments(where, args)
    if not args.get(f"{split}_file"):
        raise ValueError(f"{where}.split is {split!r}, but {where}.{split}_file is not given.")
    if args.get("tokenizer") is not None:
        args["tokenizer"] = _check_tokenizer_path(f"{where}.tokenizer", args["tokenizer"])
    check_files_exist(where, args)
    return dict(args, name="TextClassificationDataset", split=split, size=size)


def is_builtin_dataset(ds) -> bool:
    return ds.get("name", "RottenTomatoes") in DATASETS


def train_size(config):
    """The number of training samples, known before anything loads (None for a dataset named by a path)."""
    ds = config["Train"]["dataset"]
    if ds["name"] == "RottenTomatoes":
        if ds["size"] is not None:
            return ds["size"]
        from .data import load_rotten_tomatoes
        splits = load_rotten_tomatoes(seed=ds["split_seed"], full=ds["full"])
        return len(dict(zip(("train", "dev", "test"), splits))[ds["split"]])
    if ds["name"] == "TextClassificationDataset":  # the lines of its file; the file is checked when read
        with open(os.path.join(ds["base_path"], ds[f"{ds['split']}_file"]), "rb") as f:
            lines = [line for line in f.read().split(b"\n") if line.strip()]
        n = len(lines) - bool(ds.get(f"{ds['split']}_file_with_header"))
        return n if ds["size"] is None else min(n, ds["size"])
    return None


def build_datasets(config, parts=("Train", "Eval"), tokenizer=None) -> dict:
    """{part: dataset} for the parts the config has. A TextClassificationDataset read once serves every part
    that names the same files."""
    from .data import Snippets, load_rotten_tomatoes
    from .training.loading import is_map_style
    out, text_sets = {}, {}
    for part in parts:
        if not config.get(part):
            continue
        ds = dict(config[part]["dataset"])
        name = ds.pop("name")
        if name == "RottenTomatoes":
            tok = _tokenizer(ds["tokenizer"], tokenizer)
            splits = dict(zip(("train", "dev", "test"), load_rotten_tomatoes(seed=ds["split_seed"], full=ds["full"])))
            examples = splits[ds["split"]]
            out[part] = Snippets(tok, examples[:ds["size"]] if ds["size"] is not None else examples, ds["max_len"])
        elif name == "TextClassificationDataset":
            split, size = ds.pop("split"), ds.pop("size")
            if ds.get("tokenizer") is None and tokenizer is not None:
                ds["tokenizer"] = tokenizer
            key = repr(sorted((k, repr(v)) for k, v in ds.items()))
            if key not in text_sets:
                text_sets[key] = _text_dataset()(**ds)
            data = text_sets[key].split(split)
            out[part] = data.head(size) if size is not None else data
            _check_num_classes(config, part, text_sets[key].label_list)
        else:
            target, _ = resolve(f"{part}.dataset.name", name, DATASETS)
            data = target(**ds)
            if not is_map_style(data):
                raise TypeError(f"{part}.dataset.name: {name} returned {type(data).__name__}, not a map-style dataset "
                                f"(__len__ and __getitem__).")
            out[part] = data
    return out


def _tokenizer(path, given):
    from .text_dataset import load_text_tokenizer
    return load_text_tokenizer(path if path is not None or given is None else given)


def _check_num_classes(config, part, labels):
    n = config["Architecture"].get("num_classes")
    if isinstance(n, int) and n != len(labels):
        raise ValueError(f"Architecture.num_classes is {n}, but {part}.dataset has {len(labels)} labels "
                         f"({', '.join(map(repr, labels[:20]))}); set Architecture.num_classes: {len(labels)}.")


def _collates():
    from .data import collate_padded
    return {"collate_padded": collate_padded}


def build_collate(config):
    """Train.loader.collate_fn; by default collate_padded for the built-in datasets, None (Paddle's default
    collate) for a dataset named by a path."""
    name = config["Train"]["loader"].get("collate_fn")
    if name is None:
        return _collates()["collate_padded"] if is_builtin_dataset(config["Train"]["dataset"]) else None
    return resolve("Train.loader.collate_fn", name, _collates())[0]


# ------------------------------------------------------------------------------------------------ Loss
def check_loss(loss, num_classes):
    """Loss: CrossEntropyLoss and the arguments of paddle.nn.CrossEntropyLoss that fit this trainer (integer
    class labels, logits from the model, a loss averaged over each batch); another paddle.nn loss by class name
    (its arguments; reduction 'mean'); or an import path."""
    loss = dict(loss or {"name": "CrossEntropyLoss"})
    if "name" not in loss:
        raise ValueError(f"Loss: missing key 'name' (CrossEntropyLoss, a paddle.nn loss or an import path), "
                         f"got {shown(loss)}.")
    if isinstance(loss["name"], str) and loss["name"].startswith("paddle.nn.") \
            and loss["name"][len("paddle.nn."):] in paddle_losses():
        loss["name"] = loss["name"][len("paddle.nn."):]  # the same class, with the checks below
    target, builtin = resolve("Loss.name", loss["name"], paddle_losses())
    if not builtin:
        check_arguments("Loss", target, _args(loss), skip=2 if _is_function(target) else 0, name=loss["name"])
        return loss
    check_arguments("Loss", target, _args(loss), name=f"paddle.nn.{loss['name']}")
    if loss.get("reduction", "mean") != "mean":
        raise ValueError(f"Loss.reduction must be 'mean' (the trainer averages the loss over each batch and "
                         f"scales nothing else), got {shown(loss['reduction'])}.")
    for key in ("weight", "pos_weight"):
        if loss.get(key) is not None:
            check_numbers(f"Loss.{key}", loss[key], low=0)
    if loss["name"] == "CrossEntropyLoss":
        _check_cross_entropy(loss, num_classes)
    for key in ("weight", "pos_weight"):
        if loss.get(key) is not None:
            loss[key] = [float(w) for w in loss[key]]
    return loss


def _check_cross_entropy(loss, num_classes):
    if loss.get("weight") is not None:
        weight = loss["weight"]
        if num_classes is not None and len(weight) != num_classes:
            raise ValueError(f"Loss.weight must have one entry per class (Architecture.num_classes={num_classes}), "
                             f"got {len(weight)}: {shown(weight)}.")
        if not any(weight):
            raise ValueError(f"Loss.weight: every class weight is 0, so nothing would train: {shown(weight)}.")
    if "ignore_index" in loss:
        loss["ignore_index"] = check_number("Loss.ignore_index", loss["ignore_index"], integer=True)
    for key, want in (("soft_label", False), ("use_softmax", True)):
        if key in loss and loss[key] is not want:
            why = ("labels are class indices, not distributions" if key == "soft_label"
                   else "the model returns logits, which the loss must softmax")
            raise ValueError(f"Loss.{key} must be {str(want).lower()} here ({why}), got {shown(loss[key])}.")
    if "axis" in loss and (isinstance(loss["axis"], bool) or loss["axis"] not in (-1, 1)):
        raise ValueError(f"Loss.axis must be -1 (the class axis of [batch, classes] logits), "
                         f"got {shown(loss['axis'])}.")
    if "label_smoothing" in loss:
        loss["label_smoothing"] = check_number("Loss.label_smoothing", loss["label_smoothing"], low=0, high=1,
                                               high_open=True)


def build_loss(config):
    """The loss_fn(output, label) of the Loss section."""
    import paddle
    loss = dict(config["Loss"])
    name = loss.pop("name")
    target, builtin = resolve("Loss.name", name, paddle_losses())
    if builtin:
        for key in ("weight", "pos_weight"):
            if loss.get(key) is not None:
                loss[key] = paddle.to_tensor(loss[key], dtype="float32")
        return target(**loss)
    if _is_function(target):
        return bind_function(target, loss)
    made = target(**loss)
    if not callable(made):
        raise TypeError(f"Loss.name: {name}(...) made a {type(made).__name__}, which is not callable as "
                        f"loss(output, label).")
    return made


# ------------------------------------------------------------------------------------------------ Metric
def check_metric(metric) -> dict:
    """{name: [entry, ...]}: a built-in name (str) or {name: path, **arguments} per metric."""
    metric = _mapping("Metric", metric or {"name": "acc"})
    check_keys("Metric", metric, list(metric), required=("name",))
    names = metric["name"] if isinstance(metric["name"], list) else [metric["name"]]
    extra = _args(metric)
    if extra and not (len(names) == 1 and isinstance(names[0], str) and names[0] not in _metric_names()
                      and "." in names[0]):
        key = next(iter(extra))
        raise ValueError(f"Metric: unknown key {key!r} (value {shown(extra[key])}): arguments go to a metric named "
                         f"by an import path; with a list of metrics give them per item, e.g. "
                         f"name: [acc, {{name: mymod.MyMetric, {key}: ...}}]. Allowed keys: name.")
    entries = []
    for i, entry in enumerate(names):
        where = "Metric.name" if len(names) == 1 and not isinstance(metric["name"], list) else f"Metric.name[{i}]"
        if isinstance(entry, dict):
            check_keys(where, entry, list(entry), required=("name",))
            entry = dict(entry)
            if isinstance(entry["name"], str) and entry["name"].lower() in _metric_names():
                if _args(entry):
                    key = next(iter(_args(entry)))
                    raise ValueError(f"{where}: the built-in metric {entry['name']!r} takes no arguments, got {key}="
                                     f"{shown(entry[key])}.")
                entries.append(entry["name"])
                continue
        elif isinstance(entry, str) and (entry.lower() in _metric_names() or "." not in entry):
            if entry.lower() not in _metric_names():
                raise ValueError(f"{where}: {shown(entry)} is not available; allowed: "
                                 f"{', '.join(sorted(_metric_names()))}, or an import path package.module.Name."
                                 f"{did_you_mean(entry, _metric_names())}")
            entries.append(entry)
            continue
        else:
            entry = dict(name=entry, **extra)
        target, _ = resolve(where, entry["name"], _metric_names())
        check_arguments(where if isinstance(names[i], dict) else "Metric", target, _args(entry),
                        skip=2 if _is_function(target) else 0, name=entry["name"])
        entries.append(entry)
    return {"name": entries}


def build_metrics(config) -> list:
    """What Trainer(metrics=...) takes: built-in names, paddle.metric.Metric objects or callables."""
    out = []
    for entry in config["Metric"]["name"]:
        if isinstance(entry, str):
            out.append(entry)
            continue
        args = _args(entry)
        target, _ = resolve("Metric.name", entry["name"], {})
        out.append(bind_function(target, args) if _is_function(target) else target(**args))
    return out
