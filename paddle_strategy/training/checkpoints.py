"""The Trainer's checkpoints: what a checkpoint holds, saving, pruning, resuming, the directory lock, and the
rewind after an interrupted step. File formats, manifests, the lock and fingerprints are checkpoint_files; what
is checked before a checkpoint is used, checkpoint_checks."""
from __future__ import annotations

import json
import os
import time

from . import checkpoint_files as ckpt
from .checkpoint_checks import CheckpointChecks, Damaged
from .checkpoint_files import CheckpointError
from .distributed import broadcast_object, gather_objects

__all__ = ["Checkpointing", "KEPT_EVALUATIONS"]

KEPT_EVALUATIONS = 1000  # evaluations kept in `history` (and so in every checkpoint): bounded, not quadratic


class Checkpointing(CheckpointChecks):
    """Trainer methods for checkpoints (a mixin: they use the Trainer's model, optimizer, config and counters)."""

    def _make_fingerprint(self):
        cfg = self.config
        return {"parameters": [[n, list(p.shape), str(p.dtype)] for n, p in self.model.named_parameters()],
                "strategy": ckpt.describe(cfg.strategy),
                "data": {"train_samples": len(self.train_dataset), "batch_size": cfg.batch_size,
                         "processes": self.nranks, "num_epoch": cfg.num_epoch, "seed": cfg.seed,
                         "shuffle": cfg.shuffle, "grouped_by_length": self.lengths is not None,
                         "gradient_accumulation_steps": cfg.gradient_accumulation_steps},
                "ema": None if self.ema is None else {"decay": self.ema.decay, "type": self.ema.decay_type}}

    def _take_lock(self):
        """Lock checkpoint_dir (which also proves it writable) and tidy what a killed run left there, before
        any step. Rank 0 alone touches the directory (other ranks may not see it: node-local disks); every rank
        learns whether it could."""
        with self.sync.rank0_section(f"taking the lock on {self.config.checkpoint_dir} and tidying it"):
            if self.is_main:
                self._lock = ckpt.DirLock(self.config.checkpoint_dir, "RunConfig.checkpoint_dir")
                for line in ckpt.heal_dir(self.config.checkpoint_dir):
                    self._say(f"[checkpoint] {line}")
                self._open_scalars()  # a planted link there fails now, not at the first log line

    def _release_lock(self):
        self._close_scalars()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _rewind(self):
        """The last finetune() was left by an exception in the middle of a step (a gradient accumulated, the
        optimizer or the schedule maybe updated): go back to the newest checkpoint on disk, so that no batch
        is applied twice and the schedule is not off by one; refuse if there is none."""
        stuck = f"the last finetune() was stopped inside step {self._step_in_flight}"
        self.global_step = 0
        for p in self.model.parameters():  # a half-done step's gradients (clear_grad skips frozen parameters)
            p.clear_gradient(False)
        resumed = self._resume()
        if self.global_step == 0:
            raise RuntimeError(f"Trainer: {stuck}, and {self.config.checkpoint_dir} holds no intact checkpoint "
                               "to go back to: the model and optimizer are half-way through an update. Build "
                               "the model and Trainer again to start over.")
        self._step_in_flight = None
        self._say(f"[resume] {stuck}; went back to the checkpoint of step {self.global_step}.")
        return resumed

    def _checkpoint_files(self):
        """The files a checkpoint of this run needs (each must be listed in its manifest). ema.safetensors is
        required only once the fingerprint says the checkpoint has an average (_read_checkpoint): a checkpoint
        of a run without EMA must be refused as another run's, not skipped as damaged and trained over."""
        return ["model.safetensors", "optimizer.safetensors", "trainer_state.json"] + [
            f"rng_{r}.json" for r in range(self.nranks)]

    def _step_names(self):
        """step_<n> folder names in checkpoint_dir (and links so named), newest first, intact or not."""
        d = self.config.checkpoint_dir
        if not os.path.isdir(d):
            return []
        names = [n for n in os.listdir(d) if n.startswith("step_") and n[5:].isdigit()
                 and (os.path.isdir(os.path.join(d, n)) or os.path.islink(os.path.join(d, n)))]
        return sorted(names, key=lambda n: int(n[5:]), reverse=True)

    def _problem(self, name):
        """None if checkpoint `name` is intact and fits this run (its trainer_state checked: a folder's name
        matches its step, so ordering by name orders by step), else what is wrong: a string (damaged) or a
        CheckpointError (another run's or an old format's, refused at resume). Each folder is hashed once per
        process, again only if its manifest changed."""
        path = os.path.join(self.config.checkpoint_dir, name)
        try:
            key = os.lstat(os.path.join(path, "MANIFEST.json")).st_mtime_ns
        except OSError:
            key = None
        cached = self._verified.get(name)
        if cached is not None and cached[0] == key and key is not None:
            return cached[1]
        if os.path.islink(path):
            problem = "a symbolic link (the Trainer resumes only from folders it wrote)"
        elif os.path.isfile(os.path.join(path, "optimizer.pkl")):  # paddle_strategy 0.1: refused, never opened
            problem = CheckpointError(
                f"{path} is in paddle_strategy 0.1's checkpoint format, which stores pickles (loading them can run "
                f"code); this version does not load it. Resume it with the version that wrote it, or start afresh "
                f"in another checkpoint_dir.")
        else:
            problem = ckpt.verify_dir(path, required=self._checkpoint_files())
        if problem is None:
            try:
                self._read_state(path)
            except CheckpointError as exc:
                problem = exc
            except (Damaged, ValueError) as exc:
                problem = str(exc)
            except OSError as exc:
                problem = f"unreadable ({type(exc).__name__}: {_short(exc)})"
        self._verified[name] = (key, problem)
        return problem

    def _intact_names(self):
        return [n for n in self._step_names() if self._problem(n) is None]

    def _latest_checkpoint_name(self):
        if not self.is_main:  # only rank 0 reads checkpoint_dir
            return self._last_checkpoint
        names = self._intact_names()
        return os.path.join(self.config.checkpoint_dir, names[0]) if names else None

    def _prune(self):
        """Keep the newest keep_checkpoints intact checkpoints; damaged folders neither count nor get removed
        (they are reported once), so they can never push an intact checkpoint out."""
        d = self.config.checkpoint_dir
        for old in self._intact_names()[self.config.keep_checkpoints:]:
            problem = ckpt.remove_dir(os.path.join(d, old))  # renamed aside first: a kill leaves no half folder
            self._verified.pop(old, None)
            if problem is not None:
                self._say(f"[checkpoint] could not remove {os.path.join(d, old)} ({problem}).")
        for name in self._step_names():
            problem = self._problem(name)
            if problem is not None and name not in self._reported:
                self._reported.add(name)
                what = f"is damaged ({problem})" if isinstance(problem, str) else \
                    f"is not a checkpoint of this run ({str(problem).splitlines()[0]})"
                self._say(f"[checkpoint] {os.path.join(d, name)} {what}; it is not counted among the "
                          f"{self.config.keep_checkpoints} kept and is left in place.")

    def _load_optimizer_state(self, arrays, scheduler_state):
        flat = {var.name: arrays[key] for key, var in self._accumulators_by_name().items()}  # keys checked
        self.optimizer.set_state_dict({"LR_Scheduler": scheduler_state, **flat})

    def _check_parameters_finite(self, what):
        name = ckpt.nonfinite((n, p.numpy()) for n, p in self.model.named_parameters())
        if name is not None:
            raise FloatingPointError(f"parameter {name!r} holds NaN or inf at step {self.global_step}; {what} was "
                                     f"not written (the model is no longer usable).")

    def _save_checkpoint(self):
        cfg = self.config
        final = os.path.join(cfg.checkpoint_dir, f"step_{self.global_step:08d}")
        self._check_parameters_finite(f"checkpoint {final}")
        rng = ckpt.rng_state(cuda=self.device.startswith("gpu"))
        rngs = [rng] if self.nranks == 1 else self._collective(  # every rank's RNG streams, over the group
            f"gathering the RNG states for {final}", lambda: gather_objects(rng))
        del self.history[:-KEPT_EVALUATIONS]  # on every rank, so that a resumed run's history is the same
        with self.sync.rank0_section(f"writing checkpoint {final}"):
            if self.is_main:
                self._write_checkpoint(final, rngs)
        self._saved_at, self._last_checkpoint = self.global_step, final
        return final

    def _write_checkpoint(self, final, rngs):
        """Rank 0: the checkpoint of this step in `final` (atomic, sealed), then pruning."""
        model_state = {k: v.numpy() for k, v in self.model.state_dict().items()}
        opt_state = {k: v.numpy() for k, v in self._accumulators_by_name().items()}
        state = {"format": ckpt.FORMAT, "fingerprint": self._fingerprint, "global_step": self.global_step,
                 "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "best": self.best,
                 "history": self.history, "scheduler": self.lr_scheduler.state_dict(),
                 "amp": self.amp.state_dict(), "hooks": {key: hook.state_dict() for key, hook in
                                                         self._hooks.stateful().items()},
                 "scalars_size": self._scalars_size(),  # scalars.jsonl is cut back to this on resume
                 "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        if self.ema is not None:
            state["ema_updates"] = self.ema.updates
            ema_state = self.ema.arrays()

        def write(tmp):
            ckpt.save_tensors(os.path.join(tmp, "model.safetensors"), model_state)
            ckpt.save_tensors(os.path.join(tmp, "optimizer.safetensors"), opt_state)
            if self.ema is not None:
                ckpt.save_tensors(os.path.join(tmp, "ema.safetensors"), ema_state)
            with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as f:
                json.dump(state, f, indent=1)
            for r, rng in enumerate(rngs):
                with open(os.path.join(tmp, f"rng_{r}.json"), "w", encoding="utf-8") as f:
                    json.dump(rng, f)
        ckpt.write_atomic_dir(final, write)  # hashes each file once, for the manifest
        self._verified[os.path.basename(final)] = (  # so pruning does not hash (nor check) it again
            os.lstat(os.path.join(final, "MANIFEST.json")).st_mtime_ns, None)
        self._prune()

    def _resume(self):
        """Load the newest intact checkpoint in checkpoint_dir (or config.resume_from), if any; damaged ones are
        skipped (said so); an old-format or another run's checkpoint is refused (CheckpointError). Rank 0 finds
        and reads it and sends it to the other ranks, which need not see checkpoint_dir at all."""
        if self.global_step > 0:
            return None  # this Trainer already trained: it continues from where it is
        found = None
        with self.sync.rank0_section("finding and reading the checkpoint to resume from"):
            if self.is_main:
                found = self._find_checkpoint()
        if self.nranks > 1:
            found = self._collective("sending the checkpoint to resume from to every rank",
                                     lambda: broadcast_object(found))
        if found is None:
            return None
        path, (state, model_state, opt_state, rngs, ema_state) = found
        missing, unexpected = self.model.set_state_dict(model_state)
        if missing or unexpected:  # checked on rank 0 before; this would be a bug
            raise RuntimeError(f"the model did not take {path}/model.safetensors (missing {missing[:3]}, unexpected "
                               f"{unexpected[:3]}) although its names and shapes were checked.")
        if self.ema is not None:
            self.ema.load(ema_state, state["ema_updates"])
        self.amp.set_state_dict(state.get("amp") or {})
        saved_hooks = state.get("hooks") or {}
        for key, hook in self._hooks.stateful().items():
            if key in saved_hooks:
                hook.set_state_dict(saved_hooks[key])
        self._load_optimizer_state(opt_state, state["scheduler"])  # the schedule step and frozen blocks too
        ckpt.set_rng_state(rngs[self.rank], cuda=self.device.startswith("gpu"))
        self.global_step, self.epoch = state["global_step"], state["epoch"]
        self.batch_in_epoch = state["batch_in_epoch"]
        self.best, self.history = state["best"], state["history"]
        self._last_checkpoint = path
        self._say(f"[resume] from {path}: step {self.global_step}/{self.max_train_steps}, epoch {self.epoch}, "
                  f"batch {self.batch_in_epoch}")
        return path

    def _find_checkpoint(self):
        """Rank 0: (path, contents) of the newest intact checkpoint that fits this run, or None. Scalars logged after
        it (by the run that was stopped) are removed from scalars.jsonl."""
        named = self.config.resume_from
        if named:
            newer = [n for n in self._intact_names() if int(n[5:]) > int(os.path.basename(named)[5:])]
            if newer:
                raise CheckpointError(f"resume_from={named}, but {self.config.checkpoint_dir} holds newer "
                                      f"checkpoints ({', '.join(newer[:3])}); continuing from the older one would mix "
                                      f"two runs there. Name the newest, or move the newer ones away.")
        names = [os.path.basename(named)] if named else self._step_names()
        for name in names:
            path = os.path.join(self.config.checkpoint_dir, name)
            problem = self._problem(name)
            if isinstance(problem, CheckpointError):
                raise problem
            loaded = None
            if problem is None:
                try:
                    loaded = self._read_checkpoint(path, self._read_state(path))
                except CheckpointError:
                    raise
                except (Damaged, ValueError) as exc:  # each names the file and the cause
                    problem = str(exc)
                except OSError as exc:
                    problem = f"unreadable ({type(exc).__name__}: {_short(exc)})"
            if problem is not None:
                if named:
                    raise CheckpointError(f"resume_from={named!r} is damaged: {problem}.")
                self._say(f"[resume] skipping damaged checkpoint {path}: {problem}")
                continue
            self._truncate_scalars(loaded[0].get("scalars_size"), loaded[0]["global_step"])
            return path, loaded
        return None


def _short(value, limit=200):
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"
