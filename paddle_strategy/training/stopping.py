"""Stopping a training run cleanly on SIGTERM (schedulers, `docker stop`, `kill`) and SIGINT (Ctrl-C, a
notebook's interrupt button).

While Trainer.finetune() runs, both signals only set a flag; at the next batch boundary the Trainer writes a
checkpoint, puts the previous handlers back and raises
- TrainingInterrupted (a KeyboardInterrupt, and a SystemExit with code 130 = 128 + SIGINT) for SIGINT: calling
  finetune() again continues exactly; uncaught, the process exits with status 130, as shells and schedulers
  expect after Ctrl-C (Python gives a plain KeyboardInterrupt that status, but any subclass of it status 1);
- TrainingTerminated (a SystemExit with code 143 = 128 + SIGTERM) for SIGTERM: uncaught, the process exits
  with status 143, as schedulers expect from a process that obeyed SIGTERM; the next run resumes.
A second signal while stopping raises at once, wherever training is (the last complete checkpoint stays intact),
unless it comes within REPEAT_WINDOW seconds of the first: paddle.distributed.launch forwards one SIGTERM as three
(0.2 s apart) to every rank, and a Ctrl-C in a terminal reaches the launcher and the ranks together; those
repeats are one request to stop.
"""
from __future__ import annotations

import ctypes
import signal
import sys
import threading
import time

__all__ = ["TrainingInterrupted", "TrainingTerminated"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_WINDOW = 2.0  # seconds after the first signal in which more SIGINT / SIGTERM are repeats of it


class _Stopped(SystemExit):
    """A stop by `signum`: a SystemExit with code 128 + signum (the status shells report for a process ended by
    that signal), whose str() is the message."""

    def __init__(self, message, signum, step=None, checkpoint=None):
        super().__init__(128 + int(signum))
        self.message, self.signum, self.step, self.checkpoint = message, signum, step, checkpoint

    def __str__(self):
        return self.message


class TrainingInterrupted(KeyboardInterrupt, _Stopped):
    """SIGINT stopped training at a batch boundary, after writing a checkpoint (attributes: signum, step,
    checkpoint). Calling finetune() again on the same Trainer continues exactly where it stopped. Caught by
    `except KeyboardInterrupt`; uncaught, it ends the process with status 130 (128 + SIGINT), silently after the
    Trainer's `[stop]` line, as a SystemExit with code 130 does."""

    def __init__(self, message, signum=signal.SIGINT, step=None, checkpoint=None):
        _Stopped.__init__(self, message, signum, step, checkpoint)  # (super() would find KeyboardInterrupt's)


class TrainingTerminated(_Stopped):
    """SIGTERM stopped training at a batch boundary, after writing a checkpoint. A SystemExit whose code is
    143 (128 + SIGTERM): uncaught, the process exits with that status and prints nothing more than the
    Trainer's `[stop]` line (SystemExit with an int code is silent)."""

    def __init__(self, message, signum=signal.SIGTERM, step=None, checkpoint=None):
        super().__init__(message, signum, step, checkpoint)


def stopped(signum, message, step=None, checkpoint=None):
    """The exception that reports a stop caused by `signum`."""
    cls = TrainingTerminated if signum == signal.SIGTERM else TrainingInterrupted
    return cls(message, signum, step, checkpoint)


# The C-level handler in force before us (Paddle installs its own for SIGTERM at import, which Python's
# signal module does not know about and would replace by SIG_DFL): saved and restored as opaque bytes.
_SIGACTION_BYTES = 512


def _libc():
    return ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _get_action(libc, signum):
    buf = ctypes.create_string_buffer(_SIGACTION_BYTES)
    return buf if libc.sigaction(int(signum), None, buf) == 0 else None


class StopSignals:
    """Between install() and restore() (or inside `with`), SIGINT/SIGTERM set `signum` (the first one
    received) instead of acting; a second one raises at once. Outside the main thread it installs nothing
    (Python delivers signals to the main thread only) and `signum` stays None."""

    def __init__(self):
        self.signum = None
        self._first_at = None
        self._saved = {}

    def install(self):
        """Catch SIGINT / SIGTERM from now on (until restore()); returns self."""
        if threading.current_thread() is threading.main_thread():
            libc = _libc()
            for sig in _SIGNALS:
                raw = _get_action(libc, sig) if libc is not None else None
                self._saved[sig] = (signal.signal(sig, self._handle), raw)
        return self

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum, self._first_at = signum, time.monotonic()
            return
        if time.monotonic() - self._first_at < REPEAT_WINDOW:
            return  # the launcher's repeats, or one Ctrl-C seen by the launcher and by this process
        self.restore()
        message = (f"{signal.Signals(signum).name} received while stopping after {signal.Signals(self.signum).name}:"
                   " stopped at once (maybe inside a step or a checkpoint write; the last complete checkpoint is "
                   "intact).")
        print("[stop] " + message, file=sys.stderr, flush=True)  # a SystemExit would end the process silently
        raise stopped(signum, message)

    def restore(self):
        """Put the previous handlers back (Python's and, on Linux, the C-level one)."""
        saved, self._saved = self._saved, {}
        libc = _libc() if saved else None
        for sig, (previous, raw) in saved.items():
            # None: installed outside Python; the raw restore below puts it back
            signal.signal(sig, signal.SIG_DFL if previous is None else previous)
            if raw is not None:
                libc.sigaction(int(sig), raw, None)

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.restore()
