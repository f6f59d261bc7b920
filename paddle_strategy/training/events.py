"""The Trainer's events: PaddleHub 1.x's hook API (add_hook, delete_hook, modify_hook, hook_info) and the
Trainer's own actions as the hooks named "default".

    event                     when (info keys besides event, rank, step, epoch, max_train_steps)
    build_env_start_event     first finetune() / eval() / predict() of this Trainer, before its set-up (phase)
    build_env_end_event       after it (phase, resumed_from: the checkpoint resumed, or None)
    finetune_start_event      training is about to take its first update of this call (do_eval, resumed_from)
    finetune_end_event        training ended (summary, stopped: True when a hook asked to stop); default: [done]
    predict_start_event       predict() starts (num_samples)
    predict_end_event         predict() ends (num_samples, outputs)
    eval_start_event          an evaluation starts (dataset, num_samples, during_training)
    eval_end_event            it ends (+ result, metric, value); default: during training, the [eval] line,
                              scalars and the best model
    log_interval_event        every log_interval updates (loss, metrics, lr, lr_blocks, steps_per_second,
                              samples, skipped_updates); default: the [train] line and scalars
    save_ckpt_interval_event  every save_ckpt_interval updates (checkpoint: filled by the default, which writes it)
    eval_interval_event       an evaluation is due (reason: 'interval' or 'epoch_end'); default: evaluate
    run_step_event            after every update (loss, lr, samples, micro_batches, skipped)
"""
from __future__ import annotations

from .hooks import EVENTS, Hooks

__all__ = ["Events"]


class Events:
    """Trainer methods for hooks (a mixin)."""

    def _init_events(self):
        self._hooks = Hooks({event: getattr(type(self), f"_default_{event}", no_action) for event in EVENTS})
        self._built_phases = set()
        self.stop_training = False

    # ------------------------------------------------------------------------------------------ 1.x's API
    def add_hook(self, hook_type, name=None, func=None):
        """Add `func(trainer, info)` (or 1.x's `func(trainer)`) to event `hook_type` under `name` (default
        'hook_<id>'); it runs after the hooks already there. Returns the name."""
        return self._hooks.add(hook_type, name, func)

    def delete_hook(self, hook_type, name):
        """Remove a hook; deleting "default" removes the Trainer's own action (e.g. the [train] lines)."""
        self._hooks.delete(hook_type, name)

    def modify_hook(self, hook_type, name, func):
        """Replace the function of an existing hook (the "default" one too), keeping its place."""
        self._hooks.modify(hook_type, name, func)

    def hook_info(self, only_customized=False):
        """The table of hooks (event, name, function): printed and returned."""
        text = self._hooks.table(only_customized)
        print(text)
        return text

    hooks_info = hook_info  # PaddleHub 1.8's spelling

    # ------------------------------------------------------------------------------------------ firing
    def _fire(self, event, **info):
        info = {"event": event, "rank": self.rank, "step": self.global_step, "epoch": self.epoch,
                "max_train_steps": getattr(self, "max_train_steps", None), **info}
        return self._hooks.fire(event, self, info)

    def _build_env(self, phase, setup=None):
        """build_env_start / _end around `setup` the first time `phase` runs (1.x built each phase once)."""
        if phase in self._built_phases:
            return setup() if setup else None
        self._fire("build_env_start_event", phase=phase)
        result = setup() if setup else None
        self._built_phases.add(phase)
        self._fire("build_env_end_event", phase=phase, resumed_from=result)
        return result

    def _after_user_hooks(self, logged, evaluated, saved):
        """With several processes, after the interval events of an update that ran user hooks: wait (up to
        RunConfig.dist_timeout) until rank 0 is through them too, so that a slow hook on rank 0 (an upload, a
        long write) does not leave the others in the next gradient all_reduce, which gloo gives up after 30 s.
        run_step_event hooks are not waited for (a store round trip every update would cost ~50 ms): keep them
        short, or make them do the same on every rank."""
        if self.nranks == 1:
            return
        events = (["log_interval_event"] if logged else []) + (
            ["eval_interval_event", "eval_start_event", "eval_end_event"] if evaluated else []) + (
            ["save_ckpt_interval_event"] if saved else [])
        if any(self._hooks.customized(e) for e in events):
            self.sync.after_rank0(f"the hooks after update {self.global_step}")

    # ------------------------------------------------------------------------------------------ defaults
    def _default_finetune_end_event(self, info):
        self._say_done()

    def _default_eval_end_event(self, info):
        if info["during_training"]:
            self._report_and_keep_best(info)

    def _default_log_interval_event(self, info):
        self._print_train_line(info)

    def _default_save_ckpt_interval_event(self, info):
        info["checkpoint"] = self._save_checkpoint()

    def _default_eval_interval_event(self, info):
        self._evaluate_in_training()


def no_action(trainer, info):
    """The "default" hook of the events on which the Trainer itself does nothing (1.x had one for each)."""
