"""Checkpoint files: atomic directories with a manifest, code-free formats, the directory lock, fingerprints.

A checkpoint (or `best_model`) is a directory written as `.tmp-<name>-<unique>` (private to its owner until
sealed: the libraries that write its files follow links) and renamed into place once every file and
`MANIFEST.json` (size and SHA-256 of each file) are on disk, so a reader sees either the old directory or the
complete new one. A directory is removed by renaming it to `.del-<name>-<unique>` first, so that a kill half-way
leaves a name the next start finishes removing, not a half-empty folder that looks damaged. Tensors are stored
with safetensors and everything else as JSON: loading a checkpoint parses data and never runs code (no pickle); a
safetensors header or JSON file too large or nested too deep to parse is refused before parsing. A directory is
*intact* when its manifest is a well-formed mapping that lists every file the reader needs and each listed file
is a plain file (no link) with its size and digest.

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
import struct
import time
import uuid
from numbers import Integral, Real

import numpy as np

from .._checks import shown
from .safe_io import UnsafePath, open_inside, read_json, remove, sealed_mode

__all__ = ["FORMAT", "CheckpointError", "write_atomic_dir", "remove_dir", "verify_dir", "heal_dir", "DirLock",
           "save_tensors", "load_tensors", "load_weights", "save_weights", "rng_state", "rng_restorer",
           "set_rng_state", "canonical", "describe", "differences", "nonfinite"]

FORMAT = 2  # 1: paddle_strategy 0.1 (pickled optimizer / RNG state), refused: unpickling can run code
_TMP, _OLD, _DEL = ".tmp-", ".old-", ".del-"
_LEFTOVERS = (_TMP, _OLD, _DEL, ".rng-")  # .rng-*: RNG staging of data-parallel saves before issue 19
_MAX_HEADER = 100_000_000  # safetensors' own limit on a header


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
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tag():
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def write_atomic_dir(final, write):
    """Write a directory's files with `write(tmp_dir)`, add MANIFEST.json (sizes, SHA-256), then rename it to
    `final` (replacing an older `final`). The temporary directory is private (0o700) while it is written and
    gets the umask's mode when sealed. On any failure it is removed and the first error propagates (with a note
    naming the directory); an existing `final` is left as it was."""
    parent = os.path.dirname(final) or "."
    base = os.path.basename(final)
    tag = _tag()
    tmp = os.path.join(parent, f"{_TMP}{base}-{tag}")
    try:
        os.makedirs(parent, exist_ok=True)
        os.mkdir(tmp, 0o700)
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
        os.chmod(tmp, sealed_mode())
        if os.path.lexists(final):
            # Two renames: a crash between them leaves `.old-<base>-<tag>` and no `final`; heal_dir puts the
            # old one back (or drops it once `final` exists), so nothing is lost and no name is ever reused.
            old = os.path.join(parent, f"{_OLD}{base}-{tag}")
            os.replace(final, old)
            os.replace(tmp, final)
            remove(old)  # what is left (a link: only the link) heal_dir removes at the next start
        else:
            os.replace(tmp, final)
    except BaseException as exc:
        remove(tmp)  # never raises: the first error is the one the user sees
        exc.add_note(f"(while writing {final}; it was not written, earlier checkpoints are untouched)")
        raise


def remove_dir(path):
    """Remove a directory the Trainer wrote: renamed to `.del-<name>-<unique>` first, then deleted (a kill in
    between leaves the `.del-` name, which heal_dir removes at the next start). None, or why it is left."""
    parent, base = os.path.split(path)
    aside = os.path.join(parent, f"{_DEL}{base}-{_tag()}")
    try:
        os.rename(path, aside)
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return remove(aside)


def heal_dir(parent):
    """Finish or undo what a killed writer left in `parent`: `.tmp-*` (unfinished writes), `.del-*` (removals)
    and `.rng-*` are removed; a `.old-<name>-*` directory is renamed back to `<name>` when `<name>` is missing and
    it is intact, else removed. A link with one of these names is removed itself (never what it points to).
    Returns one line per entry. Call it only while holding the directory's lock (a live writer's would go)."""
    if not os.path.isdir(parent):
        return []
    done = []
    for entry in sorted(os.listdir(parent)):
        if not entry.startswith(_LEFTOVERS):
            continue
        path = os.path.join(parent, entry)
        name = entry[len(_TMP):].rsplit("-", 2)[0]  # .<kind>-<name>-<pid>-<random>
        if os.path.islink(path):
            said = f"removed the link {entry}"
        elif entry.startswith(_OLD) and not os.path.lexists(os.path.join(parent, name)) and verify_dir(path) is None:
            os.replace(path, os.path.join(parent, name))
            done.append(f"restored {name} from {entry}")
            continue
        elif entry.startswith(_DEL):
            said = f"finished removing {name} (pruned)"
        else:
            said = f"removed {'superseded' if entry.startswith(_OLD) else 'unfinished'} {entry}"
        problem = remove(path)
        done.append(said if problem is None else f"could not remove {entry} ({problem})")
    return done


def verify_dir(path, required=()):
    """None if the directory is intact, else what is wrong: MANIFEST.json must be a mapping of file name ->
    {"size": int, "sha256": hex}, list every name in `required`, and each listed file must match."""
    try:
        manifest = read_json(os.path.join(path, "MANIFEST.json"), max_bytes=1 << 20)
    except ValueError as exc:
        return str(exc)
    except OSError as exc:
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
        if os.path.islink(file):
            return f"{name} is a symbolic link"
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
            fd = open_inside(directory, ".lock", os.O_RDWR | os.O_CREAT)
        except UnsafePath:
            raise
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
    """A safetensors file -> {name: numpy array} (parses data only; runs no code). ValueError naming the file
    (by its base name) if it is not one, its header length checked before anything is parsed."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    name = os.path.basename(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
    if len(head) < 8:
        raise ValueError(f"{name}: not a safetensors file ({size} bytes, no header length)")
    length = struct.unpack("<Q", head)[0]
    if length > size - 8 or length > _MAX_HEADER:
        raise ValueError(f"{name}: the header length {length} exceeds "
                         + (f"the file ({size} bytes)" if length > size - 8 else f"safetensors' limit ({_MAX_HEADER})")
                         + ": not a safetensors file")
    try:
        return load_file(path)
    except SafetensorError as exc:
        raise ValueError(f"{name}: not a safetensors file (SafetensorError: {str(exc)[:200]})") from None


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


def _numpy_rng_state(generator=np.random):
    kind, keys, pos, has_gauss, gauss = generator.get_state()
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]


def _python_rng_state():
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _generators(saved, live, what):
    """Fresh Paddle GeneratorState objects holding `saved` (one per generator of `live`), each read back to check
    that it holds exactly that state (Paddle accepts some junk silently)."""
    from paddle.base.libpaddle import GeneratorState
    if not isinstance(saved, list) or len(saved) != len(live):
        raise ValueError(f"{len(live)} {what} state(s) expected, found {shown(saved)}")
    out = []
    for i, s in enumerate(saved):  # (__setstate__ on get_rng_state()'s own objects does not restore: PADDLE_FACTS)
        g = GeneratorState.__new__(GeneratorState)
        try:
            if not isinstance(s, list) or len(s) != len(live[i].__getstate__()):
                raise ValueError(f"not a list of {len(live[i].__getstate__())} items")
            g.__setstate__(tuple(s))
            exact = list(g.__getstate__()) == s
        except (RuntimeError, TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{what} {i} is not a state this run can restore ({_cut(exc)})") from None
        if not exact:
            raise ValueError(f"{what} {i} is not a state this run can restore (it does not read back the same)")
        out.append(g)
    return out


def rng_restorer(state, cuda=False):
    """Check `state` (rng_state()'s form) by restoring every stream into fresh objects; returns a function that
    sets this process's streams to it. ValueError naming the stream that cannot be restored exactly."""
    import paddle
    if not isinstance(state, dict) or not {"paddle", "numpy", "python"} <= set(state):
        raise ValueError(f"not a mapping with paddle, numpy and python states: {shown(state)}")
    generators = _generators(state["paddle"], paddle.get_rng_state(), "Paddle generator")
    cuda_generators = None
    if cuda and "cuda" in state:
        cuda_generators = _generators(state["cuda"], paddle.get_cuda_rng_state(), "CUDA generator")
    try:
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        if not isinstance(keys, list) or len(keys) != len(np.random.get_state()[1]):
            raise ValueError(f"{len(np.random.get_state()[1])} keys expected")
        numpy_state = (kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss)
        probe = np.random.RandomState()
        probe.set_state(numpy_state)
        if _numpy_rng_state(probe) != state["numpy"]:
            raise ValueError("it does not read back the same")
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"the NumPy state cannot be restored ({_cut(exc)})") from None
    try:
        version, internal, gauss = state["python"]
        python_state = (version, tuple(internal), gauss)
        random.Random().setstate(python_state)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"the Python state cannot be restored ({_cut(exc)})") from None

    def restore():
        paddle.set_rng_state(generators)
        if cuda_generators is not None:
            paddle.set_cuda_rng_state(cuda_generators)
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return restore


def set_rng_state(state, cuda=False):
    rng_restorer(state, cuda)()


def _cut(exc):
    return " ".join(str(exc).split())[:200]


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
