"""One Paddle LRScheduler over a pure schedule, which also applies gradual unfreezing."""
from __future__ import annotations

import paddle


class StrategyLR(paddle.optimizer.lr.LRScheduler):
    """`schedule(step) -> lr` as a paddle LRScheduler, stepped once per optimizer update.

    `last_epoch` counts updates done (Paddle's name for it). When `unfreeze` is given — a list of
    (parameters, first trainable epoch) — each step also sets which parameters train in epoch
    `last_epoch // steps_per_epoch`; a parameter that changes state has its gradient dropped, so nothing
    stale is applied after it unfreezes. The state dict is the step count, so restoring it restores both
    the learning rate and which blocks are frozen.

    `block_names` and `block_multipliers` describe the discriminative blocks (block 0 at the output) for
    logging and plots. A strategy's build passes its `table` (param_table.ParamTable) instead, from which
    come the unfreeze groups, the blocks, the parameters and, for two-phase runs, the multipliers of each
    phase: the table is written onto the parameters now and again whenever the phase changes.
    """

    def __init__(self, schedule, *, unfreeze=(), steps_per_epoch=None, block_names=(),
                 block_multipliers=(), description="", plateau=None, table=None):
        self.schedule = schedule
        self.table = table
        if table is not None:
            unfreeze, block_names, block_multipliers = table.unfreeze_groups(), table.blocks, table.block_multipliers
        self.plateau = plateau  # plateau.ReduceLROnPlateau driven by report(metric); lr = schedule * scale
        self.scale = 1.0
        self._plateau_base = plateau.lr if plateau is not None else 1.0
        self.unfreeze = [(list(params), int(epoch)) for params, epoch in unfreeze]
        self.steps_per_epoch = steps_per_epoch
        self.block_names = [list(b) for b in block_names]
        self.block_multipliers = list(block_multipliers)
        self.description = description
        self.parameters_by_name = {} if table is None else table.parameters  # what the optimizer updates
        self._applied_epoch = None
        self._phase = None
        super().__init__(learning_rate=schedule(0), last_epoch=-1)
        if table is not None and table.phase_boundary is None:
            table.apply()

    def get_lr(self):
        return float(self.schedule(self.last_epoch)) * self.scale

    def lr_at(self, step: int) -> float:
        """The learning rate of update `step` (0-based), without moving the scheduler (and with the current
        reduce-on-plateau scale)."""
        return float(self.schedule(step)) * self.scale

    def report(self, metric: float) -> bool:
        """Feed an evaluation result to reduce-on-plateau (if configured); True when the LR was reduced.

        The plateau object tracks the LR it would set for a constant schedule; its ratio to the strategy's
        base LR scales the whole schedule from the next update on.
        """
        if self.plateau is None:
            return False
        before = self.plateau.lr
        after = self.plateau.step(metric)
        self.scale = after / self._plateau_base
        self.last_lr = self.get_lr()
        return after < before

    def state_keys(self):
        self.keys = ["last_epoch", "last_lr"] + (["scale", "plateau_state"] if self.plateau is not None else [])

    def state_dict(self):
        if self.plateau is not None:
            self.plateau_state = self.plateau.state_dict()
        return super().state_dict()

    def epoch(self) -> int:
        """The training epoch of the next update (0 when no steps_per_epoch was given)."""
        return self.last_epoch // self.steps_per_epoch if self.steps_per_epoch else 0

    def _phase_of(self, step):
        """The table's phase of update `step` (None for a one-phase run)."""
        if self.table is None or self.table.phase_boundary is None:
            return None
        return self.table.phase_of(step // self.steps_per_epoch if self.steps_per_epoch else 0)

    def _apply_phase(self):
        phase = self._phase_of(self.last_epoch)
        if phase is not None and phase != self._phase:
            self._phase = phase
            self.table.apply(phase)
            self.block_multipliers = list(self.table.phase_blocks[phase])

    def block_multipliers_at(self, step: int):
        """The blocks' LR multipliers for update `step` (they change only in two-phase runs)."""
        phase = self._phase_of(step)
        return list(self.block_multipliers if phase is None else self.table.phase_blocks[phase])

    def bind_momentum(self, optimizer, momentum):
        """Also set the optimizer's momentum (Momentum's `momentum`, Adam-family `beta1`) to `momentum(step)`
        before every update (one-cycle / cyclical momentum)."""
        for attr in ("_beta1", "_momentum"):
            if hasattr(optimizer, attr):
                self._momentum_target = (optimizer, attr, momentum)
                self._apply_momentum()
                return
        raise ValueError(f"this schedule cycles momentum, but {type(optimizer).__name__} has neither beta1 nor "
                         f"momentum; use Momentum, SGD with momentum, Adam or AdamW.")

    def momentum_at(self, step: int):
        target = getattr(self, "_momentum_target", None)
        return None if target is None else float(target[2](step))

    def _apply_momentum(self):
        target = getattr(self, "_momentum_target", None)
        if target is not None:
            optimizer, attr, momentum = target
            setattr(optimizer, attr, float(momentum(self.last_epoch)))

    def step(self, epoch=None):
        super().step(epoch)
        self._apply_unfreeze()
        self._apply_phase()
        self._apply_momentum()

    def set_state_dict(self, state_dict):
        super().set_state_dict(state_dict)
        if self.plateau is not None:
            self.plateau.set_state_dict(self.plateau_state)
        self.last_lr = self.get_lr()
        self._apply_unfreeze()
        self._apply_phase()
        self._apply_momentum()

    set_dict = set_state_dict

    def _apply_unfreeze(self):
        if not self.unfreeze:
            return
        epoch = self.epoch()
        if epoch == self._applied_epoch:
            return
        self._applied_epoch = epoch
        for params, first in self.unfreeze:
            frozen = epoch < first
            for p in params:
                if p.stop_gradient != frozen:
                    p.stop_gradient = frozen
                    p.clear_gradient(False)  # clear_grad() skips frozen parameters: drop it here
