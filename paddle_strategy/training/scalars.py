"""The Trainer's logging sinks: console lines (tqdm-safe), VisualDL when installed, and always
checkpoint_dir/visualization/scalars.jsonl.

scalars.jsonl is opened without following links (safe_io) and appended with unbuffered writes, so a full disk
raises once, naming the file, and closing it has nothing left to write. Each checkpoint records its size; a
resume cuts it back to that size, so the steps a stopped run logged after its last checkpoint, which the resumed
run takes again, are not there twice. (VisualDL's own records cannot be cut back: they may repeat those steps.)
"""
from __future__ import annotations

import json
import os
import sys
import time
import uuid

from .safe_io import open_inside

__all__ = ["Logging"]

_SCALARS = "visualization/scalars.jsonl"


class Logging:
    """Trainer methods for logs and scalars (a mixin)."""

    def _say(self, text):
        if self.is_main:
            from tqdm import tqdm
            tqdm.write(text)
            sys.stdout.flush()

    def _scalars_path(self):
        return os.path.join(self.config.checkpoint_dir, *_SCALARS.split("/"))

    def _open_scalars(self):
        """Rank 0: open scalars.jsonl for appending (kept open until _close_scalars; no link followed)."""
        if self._log_file is None:
            self._log_file = open_inside(self.config.checkpoint_dir, _SCALARS, os.O_RDWR | os.O_APPEND | os.O_CREAT)

    def _scalars(self, tag_values, step):
        if not self.is_main:
            return
        self._open_scalars()
        data = "".join(json.dumps({"step": step, "tag": tag, "value": value}) + "\n"
                       for tag, value in tag_values.items()).encode()
        try:
            while data:
                data = data[os.write(self._log_file, data):]
        except OSError as exc:  # one error, naming the file (a buffered file would raise again when closed)
            raise OSError(exc.errno, f"{self._scalars_path()}: {exc.strerror} (logging the scalars of step "
                                     f"{step})") from None
        if self._vdl is None:
            self._start_visualdl()
        if self._vdl:
            for tag, value in tag_values.items():
                self._vdl.add_scalar(tag=tag, value=value, step=step)

    def _start_visualdl(self):
        vis = os.path.dirname(self._scalars_path())
        try:  # a name of its own nobody can guess: VisualDL opens it by path, following links
            from visualdl import LogWriter
            self._vdl = LogWriter(logdir=vis, file_name=f"vdlrecords.{int(time.time())}.{uuid.uuid4().hex[:8]}.log")
        except Exception as exc:  # VisualDL is optional: the JSON lines always exist
            self._vdl = False
            self._say(f"VisualDL unavailable ({type(exc).__name__}: {exc}); scalars go to {vis}/scalars.jsonl")

    def _scalars_size(self):
        """Rank 0: the size of scalars.jsonl now (recorded in each checkpoint)."""
        self._open_scalars()
        return os.fstat(self._log_file).st_size

    def _truncate_scalars(self, size, step):
        """Rank 0, resuming from the checkpoint of `step`, which recorded scalars.jsonl's `size` (None: written
        before sizes were recorded): remove what was logged after it, unless the file no longer matches."""
        if size is None:
            return
        self._open_scalars()
        fd, path = self._log_file, self._scalars_path()
        now = os.fstat(fd).st_size
        if now == size:
            return
        if now < size or (size and os.pread(fd, 1, size - 1) != b"\n"):
            self._say(f"[resume] {path} no longer matches the checkpoint of step {step} (it has {now} bytes; it had "
                      f"{size}, ending a line, then): left as it is, so scalars after step {step} may appear twice.")
            return
        dropped = os.pread(fd, now - size, size).count(b"\n")
        os.ftruncate(fd, size)
        self._say(f"[resume] removed {dropped} scalar line(s) logged after step {step} from {path} (they are "
                  f"logged again).")

    def _close_scalars(self):
        """Close the scalar writers (reopened, appending, on the next log). Raises nothing: a failing close must
        not hide the error that ended the run (VisualDL's is said)."""
        if self._vdl:
            try:
                self._vdl.close()
            except Exception as exc:  # noqa: BLE001 - optional sink: report, never raise from cleanup
                self._say(f"VisualDL could not close its records ({type(exc).__name__}: {exc}).")
        self._vdl = None
        if self._log_file is not None:
            os.close(self._log_file)
            self._log_file = None

    def _lr_fields(self, lr):
        mults = getattr(self.lr_scheduler, "block_multipliers", [])
        fields = {"lr": lr}
        if len(mults) > 1:
            for k, m in enumerate(mults):
                fields[f"lr_block{k}"] = lr * m
        return fields

    @staticmethod
    def _new_window():
        """What the [train] line averages since the last one: updates, their losses, samples, time."""
        return {"loss": 0.0, "n": 0, "samples": 0, "hub": {}, "skipped": 0, "t": time.time()}

    @staticmethod
    def _count(window, value, hub, samples, skipped):
        window["loss"] += value
        window["n"] += 1
        window["samples"] += samples
        window["skipped"] += int(skipped)
        for k, v in hub.items():
            window["hub"][k] = window["hub"].get(k, 0.0) + v

    def _train_info(self, window, lr, epoch):
        """The log_interval_event's info: mean loss and metrics since the last line, the LR (and per block),
        updates per second, samples, updates skipped by the float16 loss scaler."""
        elapsed = time.time() - window["t"]
        metrics = {}
        for m in self.train_metrics:
            metrics[m.name] = m.accumulate()
            m.reset()
        for k, v in window["hub"].items():
            metrics[k] = v / window["samples"]
        lr_fields = self._lr_fields(lr)
        return {"epoch": epoch, "loss": window["loss"] / window["n"], "metrics": metrics, "lr": lr,
                "lr_blocks": [v for k, v in lr_fields.items() if k.startswith("lr_block")],
                "steps_per_second": window["n"] / elapsed if elapsed > 0 else float("inf"),
                "samples": window["samples"], "skipped_updates": window["skipped"]}

    def _print_train_line(self, info):
        """The default log_interval_event: the [train] line and the train/* scalars."""
        fields = {"loss": info["loss"], **info["metrics"]}
        blocks = info["lr_blocks"]
        skipped = (f" skipped {info['skipped_updates']} (fp16 overflow)" if self.amp.scaler is not None else "")
        self._say(f"[train] epoch {info['epoch'] + 1}/{self.config.num_epoch} step {self.global_step}/"
                  f"{self.max_train_steps} " + " ".join(f"{k} {v:.4f}" for k, v in fields.items())
                  + f" lr {info['lr']:.3e}" + (f" (blocks {' '.join(f'{v:.2e}' for v in blocks)})" if blocks else "")
                  + skipped + f" {info['steps_per_second']:.2f} steps/s")
        scalars = {**{f"train/{k}": v for k, v in fields.items()}, **{f"train/{k}": v for k, v in
                                                                          self._lr_fields(info["lr"]).items()}}
        if self.amp.scaler is not None:
            scalars["train/skipped_updates"] = info["skipped_updates"]
        self._scalars(scalars, self.global_step)
