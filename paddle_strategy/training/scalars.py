"""The Trainer's logging sinks: console lines (tqdm-safe), VisualDL when installed, and always
checkpoint_dir/visualization/scalars.jsonl."""
from __future__ import annotations

import json
import os
import sys
import time

__all__ = ["Logging"]


class Logging:
    """Trainer methods for logs and scalars (a mixin)."""

    def _say(self, text):
        if self.is_main:
            from tqdm import tqdm
            tqdm.write(text)
            sys.stdout.flush()

    def _scalars(self, tag_values, step):
        if not self.is_main:
            return
        vis = os.path.join(self.config.checkpoint_dir, "visualization")
        if self._log_file is None:
            os.makedirs(vis, exist_ok=True)
            self._log_file = open(os.path.join(vis, "scalars.jsonl"), "a", encoding="utf-8")
            try:
                from visualdl import LogWriter
                self._vdl = LogWriter(logdir=vis)
            except Exception as exc:  # VisualDL is optional: the JSON lines always exist
                self._say(f"VisualDL unavailable ({type(exc).__name__}: {exc}); scalars go to {vis}/scalars.jsonl")
        for tag, value in tag_values.items():
            self._log_file.write(json.dumps({"step": step, "tag": tag, "value": value}) + "\n")
            if self._vdl is not None:
                self._vdl.add_scalar(tag=tag, value=value, step=step)
        self._log_file.flush()

    def _close_scalars(self):
        """Flush and close the scalar writers (reopened, appending, on the next log)."""
        if self._vdl is not None:
            self._vdl.close()
            self._vdl = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _lr_fields(self, lr):
        mults = getattr(self.lr_scheduler, "block_multipliers", [])
        fields = {"lr": lr}
        if len(mults) > 1:
            for k, m in enumerate(mults):
                fields[f"lr_block{k}"] = lr * m
        return fields

    def _log_train(self, window, lr, epoch):
        elapsed = time.time() - window["t"]
        fields = {"loss": window["loss"] / window["n"]}
        for m in self.train_metrics:
            fields[m.name] = m.accumulate()
            m.reset()
        for k, v in window["hub"].items():
            fields[k] = v / window["samples"]
        lr_fields = self._lr_fields(lr)
        speed = window["n"] / elapsed if elapsed > 0 else float("inf")
        blocks = [v for k, v in lr_fields.items() if k.startswith("lr_block")]
        self._say(f"[train] epoch {epoch + 1}/{self.config.num_epoch} step {self.global_step}/{self.max_train_steps} "
                  + " ".join(f"{k} {v:.4f}" for k, v in fields.items())
                  + f" lr {lr:.3e}" + (f" (blocks {' '.join(f'{v:.2e}' for v in blocks)})" if blocks else "")
                  + f" {speed:.2f} steps/s")
        self._scalars({**{f"train/{k}": v for k, v in fields.items()},
                       **{f"train/{k}": v for k, v in lr_fields.items()}}, self.global_step)
        window.update({"loss": 0.0, "n": 0, "samples": 0, "hub": {}, "t": time.time()})
