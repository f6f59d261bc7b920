"""Checkpoint files: atomic directories with a manifest, code-free formats, the directory lock, fingerprints.

A checkpoint (or `best_model`) is a directory written as `.tmp-<name>-<unique>` and renamed into place once
every file and `MANIFEST.json` (size and SHA-256 of each file) are on disk, so a reader sees either the old
directory or the complete new one. Tensors are stored with safetensors and everything else as JSON: loading a
checkpoint parses data and never runs code (no pickle). A directory is *intact* when its manifest is a
well-formed mapping that lists every file the reader needs and each listed file has its size and digest.

`DirLock` is an advisory `flock` on `<checkpoint_dir>/.lock`: the kernel drops it when its process dies, so a
killed run never blocks the next one, while a second live trainer on the same directory is refused.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import math
import os
import random
import shutil
import time
import uuid
from numbers import Integral, Real

import numpy as np

__all__ = ["FORMAT", "CheckpointError", "write_atomic_dir", "verify_dir", "heal_dir", "DirLock",
           "save_tensors", "load_tensors", "load_weights", "save_weights", "rng_state", "set_rng_state",
           "canonical", "describe", "differences", "nonfinite"]

FORMAT = 2  # 1: paddle_strategy 0.1 (pickled optimizer / RNG state), refused: unpickling can run code
_TMP, _OLD = ".tmp-", ".old-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for this run (another model, strategy or data, or damaged)."""


# ---------------------------------------------------------------------------------------------- directories
def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic_dir(final, write):
    """Write a directory's files with `write(tmp_dir)`, add MANIFEST.json (sizes, SHA-256), then rename it to
    `final` (replacing an older `final`). On any failure the temporary directory is removed and the first
    error propagates (with a note naming the directory); an existing `final` is left as it was."""
    parent = os.path.dirname(final) or "."
    base = os.path.basename(final)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = os.path.join(parent, f"{_TMP}{base}-{tag}")
    try:
        os.makedirs(tmp)
        write(tmp)
        manifest = {}
        for name in sorted(os.listdir(tmp)):
            path = os.path.join(tmp, name)
            _fsync(path)
            manifest[name] = {"size": os.path.getsize(path), "sha256": _sha256(path)}
        with open(os.path.join(tmp, "MANIFEST.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if os.path.lexists(final):
            # Two renames: a crash between them leaves `.old-<base>-<tag>` and no `final`; heal_dir puts the
            # old one back (or drops it once `final` exists), so nothing is lost and no name is ever reused.
            old = os.path.join(parent, f"{_OLD}{base}-{tag}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)  # never raises: the first error is the one the user sees
        exc.add_note(f"(while writing {final}; it was not written, earlier checkpoints are untouched)")
        raise


def heal_dir(parent):
    """Finish or undo what a killed writer left in `parent`: `.tmp-*` (and `.rng-*` staging) directories are
    removed; a `.old-<name>-*` directory is renamed back to `<name>` when `<name>` is missing and it is intact,
    else removed. Call it only while holding the directory's lock (a live writer's directories would go)."""
    if not os.path.isdir(parent):
        return []
    done = []
    for entry in sorted(os.listdir(parent)):
        path = os.path.join(parent, entry)
        if entry.startswith((_TMP, ".rng-")):  # unfinished writes; .rng-*: a data-parallel save's RNG staging
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed unfinished {entry}")
        elif entry.startswith(_OLD):
            name = entry[len(_OLD):].rsplit("-", 2)[0]
            final = os.path.join(parent, name)
            if not os.path.lexists(final) and verify_dir(path) is None:
                os.replace(path, final)
                done.append(f"restored {name} from {entry}")
            else:
                shutil.rmtree(path, ignore_errors=True)
                done.append(f"removed superseded {entry}")
    return done


def verify_dir(path, required=()):
    """None if the directory is intact, else what is wrong: MANIFEST.json must be a mapping of file name ->
    {"size": int, "sha256": hex}, list every name in `required`, and each listed file must match."""
    try:
        with open(os.path.join(path, "MANIFEST.json"), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        return f"no readable MANIFEST.json ({type(exc).__name__})"
    if not isinstance(manifest, dict):
        return f"MANIFEST.json is a {type(manifest).__name__}, not a mapping of files"
    for name, want in manifest.items():
        if (not isinstance(want, dict) or not isinstance(want.get("size"), int)
                or not isinstance(want.get("sha256"), str)):
            return f"MANIFEST.json entry for {name!r} is malformed (needs size and sha256)"
        if os.path.basename(name) != name or name in (".", ".."):
            return f"MANIFEST.json names {name!r}, which is not a file of this directory"
    for name in required:
        if name not in manifest:
            return f"MANIFEST.json does not list {name}"
    for name, want in manifest.items():
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            return f"{name} is missing"
        if os.path.getsize(file) != want["size"]:
            return f"{name} has {os.path.getsize(file)} bytes, expected {want['size']}"
        if _sha256(file) != want["sha256"]:
            return f"{name} does not match its SHA-256 digest"
    return None


class DirLock:
    """An exclusive advisory lock on `<directory>/.lock`, released when closed or when the process dies.

    Creating the lock file is also the writability check: a read-only or missing-permission directory fails
    here, before any training step, with an error naming the directory.
    """

    def __init__(self, directory, what="checkpoint_dir"):
        self.path = os.path.join(directory, ".lock")
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OSError(exc.errno, f"{what} {directory!r} is not writable ({exc.strerror}); training would "
                                     f"fail at its first checkpoint. Choose a writable directory.") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise CheckpointError(
                f"{what} {directory!r} is in use by another running trainer ({holder}); two runs in one "
                f"directory would overwrite each other's checkpoints. Use another {what}, or stop that run.")
        except OSError:
            os.close(fd)
            raise
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        except OSError as exc:
            self.close()
            raise OSError(exc.errno, f"{what} {directory!r} is not writable ({exc.strerror}).") from exc

    def close(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------------------------------------- tensors
def save_tensors(path, arrays, metadata=None):
    """{name: numpy array} -> a safetensors file."""
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, path, metadata=metadata)


def load_tensors(path):
    """A safetensors file -> {name: numpy array} (parses data only; runs no code)."""
    from safetensors.numpy import load_file
    return load_file(path)


def save_weights(path, layer):
    """A layer's state_dict (parameters and buffers, by structured name) as a safetensors file."""
    save_tensors(path, {k: v.numpy() for k, v in layer.state_dict().items()})


def load_weights(path):
    """A state_dict {structured name: numpy array} from a checkpoint or best_model directory, a .safetensors
    file, or (Paddle's own format, which unpickles: only for files you trust) a .pdparams file.
    `model.set_state_dict(ps.load_weights(path))` loads it."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights at {path} (a checkpoint or best_model directory, a .safetensors "
                                f"file or a .pdparams file).")
    if path.endswith(".pdparams"):
        import paddle
        return paddle.load(path)
    return load_tensors(path)


def nonfinite(named_arrays):
    """The first name whose values are not all finite, or None (one fused pass when nothing is wrong)."""
    named_arrays = list(named_arrays)
    total = sum(float(np.sum(v, dtype=np.float64)) for _, v in named_arrays if np.issubdtype(v.dtype, np.floating))
    if math.isfinite(total):
        return None
    for name, v in named_arrays:
        if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v)):
            return name
    return None  # the float64 sum overflowed on finite values


# ---------------------------------------------------------------------------------------------- RNG
def rng_state(cuda=False):
    """Paddle's, numpy's and Python's RNG streams as JSON-able data."""
    import paddle
    state = {"paddle": [list(g.__getstate__()) for g in paddle.get_rng_state()],
             "numpy": _numpy_rng_state(),
             "python": _python_rng_state()}
    if cuda:
        state["cuda"] = [list(g.__getstate__()) for g in paddle.get_cuda_rng_state()]
    return state


def _numpy_rng_state():
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _python_rng_state():
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _generators(saved):
    from paddle.base.libpaddle import GeneratorState
    out = []
    for s in saved:  # __setstate__ on the objects get_rng_state() returned does not restore (PADDLE_FACTS)
        g = GeneratorState.__new__(GeneratorState)
        g.__setstate__(tuple(s))
        out.append(g)
    return out


def set_rng_state(state, cuda=False):
    import paddle
    paddle.set_rng_state(_generators(state["paddle"]))
    if cuda and "cuda" in state:
        paddle.set_cuda_rng_state(_generators(state["cuda"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# ---------------------------------------------------------------------------------------------- fingerprints
_NOT_SETTINGS = {"optimizer_name", "_optimizer_name"}  # spelt case-insensitively; `_optimizer_cls` says which


def canonical(value):
    """A stable, JSON-able description of a setting: numbers by value (10 == 10.0), mappings with sorted keys,
    tuples as lists, callables and classes by qualified name, other objects by class and attributes."""
    if value is None or isinstance(value, (bool, np.bool_, str)):
        return bool(value) if isinstance(value, np.bool_) else value
    if isinstance(value, (Integral, Real)):
        v = float(value)
        return v if math.isfinite(v) else repr(v)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [canonical(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, np.ndarray):
        return canonical(value.tolist())
    if isinstance(value, slice):
        return {"slice": canonical([value.start, value.stop, value.step])}
    if isinstance(value, functools.partial):
        return {"partial": canonical(value.func), "args": canonical(value.args),
                "keywords": canonical(value.keywords)}
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return f"<{getattr(value, '__module__', '?')}.{value.__qualname__}>"
    attrs = getattr(value, "__dict__", None)
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(attrs, dict):
        return {"<object>": name, **{k: canonical(v) for k, v in sorted(attrs.items())}}
    return f"<{name}>"


def describe(strategy):
    """A strategy's settings, canonical: its class and every attribute that defines it."""
    settings = {k: v for k, v in vars(strategy).items() if k not in _NOT_SETTINGS}
    return {"class": f"{type(strategy).__module__}.{type(strategy).__qualname__}", **canonical(settings)}


def differences(there, here, path=""):
    """[(key path, value there, value here)] between two canonical descriptions."""
    if isinstance(there, dict) and isinstance(here, dict):
        out = []
        for key in sorted(set(there) | set(here)):
            sub = f"{path}.{key}" if path else key
            if key not in there or key not in here:
                out.append((sub, there.get(key, "<absent>"), here.get(key, "<absent>")))
            else:
                out.extend(differences(there[key], here[key], sub))
        return out
    return [] if there == here else [(path or "<all>", there, here)]
