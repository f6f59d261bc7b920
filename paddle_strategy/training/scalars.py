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
