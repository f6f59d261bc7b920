"""Mixed precision for the Trainer: paddle.amp.auto_cast around each forward, a GradScaler for float16, and
`paddle.amp.decorate` (float32 master weights) at level O2 — on a GPU. The order of one update lives here and
in Trainer._update: backward of scaled losses -> all_reduce -> unscale -> finite check -> clip, L1/L2/L2-SP
(inside optimizer.step) -> step -> scaler update.

A CPU run with use_amp=True says so in one line and trains in float32, identically to use_amp=False: Paddle
3.3's CPU wheel ignores auto_cast (identical losses at O1 and O2) and has no float16 / bfloat16 kernels for
matmul, layer_norm or softmax.
"""
from __future__ import annotations

import contextlib

import numpy as np
import paddle

__all__ = ["MixedPrecision"]

_said_cpu = False


class MixedPrecision:
    """What use_amp asks for on this device. `active` is False on a CPU (or with use_amp=False)."""

    def __init__(self, config, device):
        global _said_cpu
        self.config = config
        self.active = bool(config.use_amp) and not device.startswith("cpu")
        if config.use_amp and not self.active and not _said_cpu:
            print(f"use_amp=True: training on the CPU, where Paddle's auto_cast changes nothing (no {config.amp_dtype} "
                  f"kernels for matmul / layer_norm / softmax): training in float32, exactly as use_amp=False.")
            _said_cpu = True
        # bfloat16 has float32's exponent range: no loss scaling (as torch and PaddleNLP do)
        self.scaler = None
        if self.active and config.amp_dtype == "float16":
            self.scaler = paddle.amp.GradScaler(init_loss_scaling=config.scale_loss,
                                                use_dynamic_loss_scaling=config.use_dynamic_loss_scaling)
        self.skipped = 0  # updates skipped because the scaled gradients overflowed

    @property
    def skips_overflow(self):
        """Whether a non-finite gradient is a float16 overflow to skip (dynamic loss scaling) rather than an error."""
        return self.scaler is not None and self.config.use_dynamic_loss_scaling

    def decorate(self, model, optimizer):
        """Level O2: the model in amp_dtype with float32 master weights in the optimizer; (model, optimizer)."""
        if self.active and self.config.amp_level == "O2":
            return paddle.amp.decorate(models=model, optimizers=optimizer, level="O2", dtype=self.config.amp_dtype,
                                       master_weight=True)
        return model, optimizer

    def autocast(self):
        if not self.active:
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, level=self.config.amp_level, dtype=self.config.amp_dtype,
                                    custom_white_list=self.config.amp_custom_white_list,
                                    custom_black_list=self.config.amp_custom_black_list)

    def backward(self, loss):
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer):
        """Divide the gradients by the loss scale, in place (before anything reads them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer):
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def skip(self):
        """An overflowed update: no optimizer step; the scaler lowers its scale."""
        self.scaler._cache_found_inf = True  # what scaler.step() records when it skips
        self.scaler.update()
        self.skipped += 1

    def state_dict(self):
        """JSON-able: the scaler's state (scale, counters) and the skipped count."""
        state = {"skipped": self.skipped}
        if self.scaler is not None:
            s = self.scaler.state_dict()
            state["scaler"] = {k: (np.asarray(v).reshape(-1).tolist() if k == "scale" else v) for k, v in s.items()}
        return state

    def set_state_dict(self, state):
        self.skipped = int(state.get("skipped", 0))
        if self.scaler is not None and state.get("scaler"):
            s = dict(state["scaler"])
            s["scale"] = np.asarray(s["scale"], dtype="float32")
            self.scaler.load_state_dict(s)
