"""How the Trainer turns a dataset into batches: one rule for training, eval(), predict() and the first-batch
peek of the constructor.

- num_workers=0: a batch is fetched and collated in the calling thread, so an exception in `__getitem__` or
  `collate_fn` surfaces at once as a DataError that names the sample, with the original chained
  (paddle.io.DataLoader fetches in a buffer thread, where such an exception can leave the caller blocked).
- num_workers>0: one paddle.io.DataLoader per pass (an epoch, an evaluation) over whole batches; its workers
  are shut down when the pass ends, fails or is abandoned, and they die with the main process (Linux
  PR_SET_PDEATHSIG), so no worker outlives the run, not even a SIGKILLed one.
- Random augmentation: before sample i of epoch e is fetched, Python's `random`, NumPy's global RNG and
  Paddle's generators are seeded from (seed, e, i), and before collate_fn from (seed, e, the batch's first
  index); the caller's streams are put back after each batch. A sample's augmentation therefore depends
  neither on the worker that fetches it, nor on the batch size or process count, nor on where a run was
  resumed, and dropout's stream is not touched. `sample_seed()` gives the same number to augmentation that
  keeps its own generator. Only where user code runs: a list / tuple / array / TensorDataset is indexed, and
  Paddle's default collate runs, without reseeding (~10 us a sample saved; they draw no random numbers).
"""
from __future__ import annotations

import ctypes
import os
import random
import signal
import sys
import traceback

import numpy as np
import paddle
from paddle.io.dataloader.collate import default_collate_fn

__all__ = ["DataError", "Batches", "sample_seed", "split_batch", "batch_size", "to_numpy", "is_map_style",
           "check_map_style", "check_length"]

_MASK64 = (1 << 64) - 1
_STREAMS = {"train": 0, "eval": 1}
_current_seed = None


class DataError(RuntimeError):
    """A dataset's `__getitem__` or the collate_fn raised. In the main process the original exception is
    `__cause__`; from a worker process its traceback is part of the message."""


def _mix(*values):
    """A 64-bit hash of non-negative ints (splitmix64 steps): cheap, and stable across processes and runs."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = ((h ^ (v & _MASK64)) * 0xBF58476D1CE4E5B9) & _MASK64
        h ^= h >> 31
        h = (h * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 29
    return h


def sample_seed():
    """The seed of the sample (or collate call) being fetched by the Trainer, an int in [0, 2**32).

    Inside `__getitem__` / `collate_fn` during Trainer fetches the global RNGs are already seeded with it;
    augmentation that keeps its own generator can draw from `np.random.default_rng(ps.sample_seed())`.
    None outside a fetch.
    """
    return _current_seed


def _seed_all(seed):
    global _current_seed
    _current_seed = seed
    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def _paddle_states():
    """Paddle's generator states: the CPU one, plus the current device's when that is not the CPU."""
    states = [("cpu", paddle.get_rng_state("cpu"))]
    if not isinstance(paddle.framework._current_expected_place_(), paddle.CPUPlace):
        states.append((None, paddle.get_rng_state()))
    return states


def _to_tensors(obj):
    """numpy arrays -> paddle Tensors through lists, tuples and dicts, as paddle.io.DataLoader delivers them."""
    if isinstance(obj, np.ndarray):
        return paddle.to_tensor(obj)
    if isinstance(obj, dict):
        return {k: _to_tensors(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_tensors(v) for v in obj]
    return obj


_PLAIN_CONTAINERS = (list, tuple, np.ndarray, paddle.io.TensorDataset)

# What a worker returns instead of a batch when the dataset or collate_fn raised: {_FAILURE: message, ...}
# (Paddle would re-raise the exception in its reader thread, from where the caller gets a generic error).
_FAILURE = "__paddle_strategy_data_error__"


class _Fetcher:
    """Fetch and collate batch j of a pass, with the per-sample seeding; the same code runs in the main
    thread (num_workers=0) and, as a map-style dataset of batches, in DataLoader workers."""

    def __init__(self, dataset, index_batches, collate_fn, seed, stream, epoch, first, name):
        self.dataset, self.batches = dataset, index_batches
        self.collate_fn = collate_fn or default_collate_fn
        # Seeding costs ~10 us a sample: only where user code can draw random numbers. Indexing a list, a tuple,
        # an array or a TensorDataset cannot, nor can Paddle's default collate.
        self.seed_samples = not isinstance(dataset, _PLAIN_CONTAINERS)
        self.seed_collate = collate_fn is not None
        self.key = (int(seed), _STREAMS[stream], int(epoch))
        self.name, self.epoch, self.first = name, epoch, first

    def __len__(self):
        return len(self.batches)

    def fetch(self, j):
        """Batch j; raises DataError (original chained) if __getitem__ or collate_fn raised."""
        indices = self.batches[j]
        b = self.first + j
        where = f"(epoch {self.epoch}, batch {b})" if self.key[1] == _STREAMS["train"] else f"(batch {b})"
        samples = []
        for i in indices:
            if self.seed_samples:
                _seed_all(_mix(*self.key, 0, int(i)) & 0xFFFFFFFF)
            try:
                samples.append(self.dataset[i])
            except Exception as exc:
                raise DataError(f"{self.name}[{i}] {where} raised {type(exc).__name__}: {exc}") from exc
        if self.seed_collate:
            _seed_all(_mix(*self.key, 1, int(indices[0])) & 0xFFFFFFFF)
        try:
            return self.collate_fn(samples)
        except Exception as exc:
            shown = ", ".join(map(str, indices[:8])) + (", ..." if len(indices) > 8 else "")
            raise DataError(f"collate_fn raised {type(exc).__name__}: {exc} on {self.name} samples [{shown}] "
                            f"{where}") from exc

    def fetch_keeping_streams(self, j):
        """fetch(j), then put the caller's random streams back as they were."""
        global _current_seed
        if not (self.seed_samples or self.seed_collate):
            return self.fetch(j)  # nothing reseeded: the caller's streams are untouched
        py, npy, pd = random.getstate(), np.random.get_state(), _paddle_states()
        try:
            return self.fetch(j)
        finally:
            _current_seed = None
            random.setstate(py)
            np.random.set_state(npy)
            for device, state in pd:
                paddle.set_rng_state(state, device)

    def __getitem__(self, j):  # in a DataLoader worker: its own streams need no restoring
        try:
            return self.fetch(j)
        except DataError as exc:
            # with one array in it: Paddle's transport of a batch assumes at least one tensor
            return {_FAILURE: str(exc), "traceback": traceback.format_exc(), "tensor": np.zeros(1, "float32")}


def _identity(batch):
    return batch


def _die_with_parent(parent):
    """worker_init_fn: have the kernel SIGKILL this worker when the main process dies (any death, SIGKILL
    included). Linux only; elsewhere workers rely on Paddle's own parent watchdog."""
    def init(worker_id):
        if sys.platform.startswith("linux"):
            PR_SET_PDEATHSIG = 1
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed in a DataLoader worker")
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
    return init


class Batches:
    """Iterate the collated batches of `dataset` for `index_batches` (lists of sample indices), as paddle
    Tensors. Use as a context manager (or call close()) so that workers stop when the pass is abandoned.

    name: how errors name the dataset ("train_dataset", ...); first: the number of the first batch in its epoch
    (for messages, after a mid-epoch resume). seed / stream / epoch: the augmentation seeds.
    """

    def __init__(self, dataset, index_batches, *, collate_fn=None, num_workers=0, seed=0, stream="train",
                 epoch=0, first=0, name="dataset"):
        self._fetcher = _Fetcher(dataset, [list(b) for b in index_batches], collate_fn, seed, stream, epoch, first,
                                 name)
        self._next, self._iter = 0, None
        if num_workers > 0 and len(self._fetcher):
            loader = paddle.io.DataLoader(self._fetcher, batch_size=None, collate_fn=_identity,
                                          num_workers=num_workers, return_list=True,
                                          worker_init_fn=_die_with_parent(os.getpid()))
            state = np.random.get_state()  # Paddle draws the workers' base seed from NumPy's global RNG
            try:
                self._iter = iter(loader)
            finally:
                np.random.set_state(state)

    def __len__(self):
        return len(self._fetcher)

    def __iter__(self):
        return self

    def __next__(self):
        if self._next >= len(self._fetcher):
            self.close()
            raise StopIteration
        try:
            if self._iter is None:
                batch = _to_tensors(self._fetcher.fetch_keeping_streams(self._next))
            else:
                batch = next(self._iter)
                if isinstance(batch, dict) and _FAILURE in batch:
                    raise DataError(f"{batch[_FAILURE]} (in a DataLoader worker, whose traceback "
                                    f"was:)\n{batch['traceback']}")
        except BaseException:
            self.close()
            raise
        self._next += 1
        return batch

    def close(self):
        """Stop and join the workers (if any); idempotent."""
        it, self._iter = self._iter, None
        if it is not None:
            it._try_shutdown_all()  # Paddle's own teardown: the only way to stop an unfinished pass's workers

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------- datasets
def is_map_style(ds) -> bool:
    """__len__ and __getitem__ that work: a paddle.io.IterableDataset has both, raising."""
    return hasattr(ds, "__len__") and hasattr(ds, "__getitem__") and not isinstance(ds, paddle.io.IterableDataset)


def check_map_style(where, ds):
    if isinstance(ds, paddle.io.IterableDataset):
        raise TypeError(f"{where} is a paddle.io.IterableDataset ({type(ds).__name__}), a stream without a length; "
                        f"the Trainer needs a map-style dataset (__len__ and __getitem__) to order, shard and resume "
                        f"the data: a paddle.io.Dataset, or a list of samples.")
    if not is_map_style(ds):
        raise TypeError(f"{where} must be a map-style dataset (__len__ and __getitem__), got {type(ds).__name__}.")


def check_length(name, ds, expected):
    """The dataset still has the `expected` samples the Trainer was built for."""
    if len(ds) != expected:
        raise ValueError(f"Trainer: {name} has {len(ds)} samples now, {expected} when the Trainer was built, which "
                         f"fixed the run's length, schedule and data order; build a new Trainer for the new data.")


# ---------------------------------------------------------------------------------------------- batches
def split_batch(batch, *, has_label=True, where="Trainer"):
    """(positional inputs, keyword inputs, label) of a collated batch — the one rule for training, eval(),
    predict() and lr_find: the last field is the label, or a dict's 'label' / 'labels' entry; NumPy arrays
    become tensors. has_label=False: every field is an input (label None)."""
    if isinstance(batch, dict):
        rest = {k: _tensor(v) for k, v in batch.items()}
        for key in ("label", "labels"):
            if key in rest:
                label = rest.pop(key)
                return (), rest, (label if has_label else None)
        if has_label:
            raise ValueError(f"{where}: a dict batch needs a 'label' or 'labels' entry; got keys {sorted(batch)}.")
        return (), rest, None
    if isinstance(batch, (list, tuple)) and (len(batch) >= 2 or (batch and not has_label)):
        items = [_tensor(x) for x in batch]
        return (tuple(items[:-1]), {}, items[-1]) if has_label else (tuple(items), {}, None)
    got = f"a {type(batch).__name__} of length {len(batch)}" if isinstance(batch, (list, tuple)) else \
        type(batch).__name__
    raise TypeError(f"{where}: each batch must be a tuple or list (inputs..., label) with at least 2 items, or a "
                    f"dict with a 'label' / 'labels' entry; got {got}.")


def _tensor(x):
    return paddle.to_tensor(x) if isinstance(x, np.ndarray) else x


def batch_size(batch):
    first = batch[0] if isinstance(batch, (list, tuple)) else next(iter(batch.values()))
    return int(first.shape[0]) if hasattr(first, "shape") else len(first)


def to_numpy(x):
    if isinstance(x, (list, tuple)):
        x = x[0]
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)
