"""What several processes need beyond Paddle's collectives: waits with a limit of our own, names for the rank
that left, and leaving with the launcher.

- Paddle 3.3's gloo collectives (all_reduce, barrier, broadcast) give up after a fixed 30 s. Whatever rank 0
  does alone (a checkpoint or best_model write with its manifest hashing, pruning, slow hooks) is therefore
  followed by `RankSync.after_rank0(what)`: the other ranks wait on Paddle's TCPStore (which lives in rank 0's
  process) for up to RunConfig.dist_timeout seconds, then fail naming what they waited for.
- A store call blocks while rank 0 is stopped (SIGSTOP), so each runs on a helper thread under a deadline.
- When a collective fails (a peer died: its socket closed; a peer hung: gloo's 30 s), `who_is_missing` asks
  every rank to check in through the store for a few seconds; the ones that do not are named.
- `die_with_launcher()`: the kernel sends this process SIGTERM when its parent (paddle.distributed.launch)
  dies, even by SIGKILL, so orphans stop at the next update with a checkpoint instead of training on.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["DistributedError", "RankSync", "die_with_launcher", "gather_objects", "broadcast_object"]

_KEY = "paddle_strategy"


class DistributedError(RuntimeError):
    """Another process left, hung or did not arrive in time; the message names it and what was awaited."""


class RankSync:
    """Store-based waits between the `nranks` processes of a run (nothing to do with one process)."""

    def __init__(self, rank, nranks, timeout):
        self.rank, self.nranks, self.timeout = int(rank), int(nranks), float(timeout)
        self._store = None
        self._generation = 0

    @property
    def store(self):
        if self._store is None:
            from paddle.base import core
            self._store = core.create_or_get_global_tcp_store()  # created by init_parallel_env
        return self._store

    def _call(self, what, fn, timeout):
        """fn() (a store call) with a deadline; DistributedError if rank 0's store is gone or does not answer."""
        box = {}

        def run():
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - reported to the caller below
                box["error"] = exc
        worker = threading.Thread(target=run, daemon=True, name="paddle_strategy-store")
        worker.start()
        worker.join(max(timeout, 0.0))
        if worker.is_alive():
            raise DistributedError(f"rank 0 did not answer within {timeout:.0f} s while {what} (its process holds "
                                   f"Paddle's TCPStore: it is stopped or hung).")
        if "error" in box:
            raise DistributedError(f"rank 0 left while {what}: its TCPStore is unreachable "
                                   f"({type(box['error']).__name__}: {str(box['error'])[:200]}).") from box["error"]
        return box["value"]

    @contextlib.contextmanager
    def rank0_section(self, what):
        """Every rank enters; the body does rank 0's solo work (`if is_main:` inside). On leaving, the other ranks
        wait for rank 0 (after_rank0); if rank 0's body raised, they raise a DistributedError saying so."""
        try:
            yield
        except BaseException as exc:
            if self.nranks > 1 and self.rank == 0:
                try:
                    self.after_rank0(what, error=f"{type(exc).__name__}: {exc}")
                except DistributedError:
                    pass
            raise
        self.after_rank0(what)

    def after_rank0(self, what, error=None):
        """Called by every rank after a section rank 0 runs alone: rank 0 says it is done (or that it failed,
        with `error`), the others wait for it up to `timeout` seconds (RunConfig.dist_timeout), polling."""
        if self.nranks == 1:
            return
        self._generation += 1
        key = f"{_KEY}/after_rank0/{self._generation}"
        if self.rank == 0:
            if error is not None:
                self._call(what, lambda: self.store.set(f"{key}/error", error.encode()[:2000]), self.timeout)
            self._call(what, lambda: self.store.add(key, 1 if error is None else 2), self.timeout)
            return
        start = time.monotonic()
        pause = 0.02
        while True:
            left = self.timeout - (time.monotonic() - start)
            if left <= 0:
                raise DistributedError(f"rank {self.rank} waited {self.timeout:g} s (RunConfig.dist_timeout) for "
                                       f"rank 0 to finish {what}; rank 0 did not arrive.")
            done = self._call(what, lambda: self.store.add(key, 0), left)
            if done == 1:
                return
            if done >= 2:
                message = bytes(self._call(what, lambda: self.store.get(f"{key}/error"), left)).decode(errors="replace")
                raise DistributedError(f"rank 0 failed while {what}: {message}")
            time.sleep(min(pause, max(left, 0.0)))
            pause = min(pause * 2, 0.5)

    def who_is_missing(self, wait=5.0):
        """After a failed collective: the ranks that do not check in through the store within `wait` seconds
        (this one checks in too). Raises DistributedError naming rank 0 if the store itself is gone."""
        what = "checking which rank is missing"
        self._call(what, lambda: self.store.add(f"{_KEY}/alive/{self.rank}", 1), wait)
        start = time.monotonic()
        missing = []
        while time.monotonic() - start < wait:
            missing = [r for r in range(self.nranks)
                       if self._call(what, lambda r=r: self.store.add(f"{_KEY}/alive/{r}", 0), wait) == 0]
            if not missing:
                return []
            time.sleep(0.25)
        return missing


def die_with_launcher():
    """Ask the kernel for SIGTERM when the parent process dies (Linux; elsewhere nothing). Returns whether set."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    PR_SET_PDEATHSIG = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def gather_objects(obj):
    """[every rank's obj], in rank order, on every rank (pickled over the process group: our own objects only)."""
    import paddle.distributed as dist
    out = []
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj):
    """Rank 0's obj on every rank."""
    import paddle.distributed as dist
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
