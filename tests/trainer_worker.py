"""A small fine-tune run for the trainer tests, started as a subprocess (or under paddle.distributed.launch).

    python trainer_worker.py CKPT_DIR [--kill-at STEP] [--batch-size B] [--nan-at STEP] [--nan-input N]
        [--callable-schedule] [--sleep-at STEP --sleep S] [--fill-disk-at STEP] [--kill-in-best-swap]
        [--accum K] [--ema DECAY] [--kill-at-call N] [--term-at-call N] [--count-allreduce] [--signal-rank R]
        [--sigstop-at-call N] [--hook-sleep S --hook-sleep-at STEP --hook-sleep-rank R] [--dist-timeout S]
        [--keep N] [--kill-in-prune]

Model: Linear/Dropout/ReLU stack; strategy: slanted triangle + discriminative LR + gradual unfreezing + L2-SP +
global-norm clip on Adam, so a resume must restore moments, schedule, frozen blocks, references and dropout RNG.
With --kill-at the process SIGKILLs itself right after that optimizer update; with --kill-at-call / --term-at-call
it sends itself SIGKILL / SIGTERM inside the N-th loss_fn call (a micro-batch: with --accum K, possibly in the
middle of an update); with --kill-in-prune it deletes one file of the first step_ folder that pruning removes,
then SIGKILLs itself (a kill in the middle of the removal). The final parameters are written to CKPT_DIR/final.npz
(rank 0), the EMA's to ema.npz, and with --count-allreduce each rank writes its number of all_reduce calls and
updates to allreduce_<rank>.json.
"""
import argparse
import os
import signal
import sys
import time

import numpy as np
import paddle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import paddle_strategy as ps  # noqa: E402


def data(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("int64")
    return [(x[i], y[i]) for i in range(n)]


def model(dropout=0.2, seed=0):
    paddle.seed(seed)
    return paddle.nn.Sequential(paddle.nn.Linear(6, 16), paddle.nn.ReLU(), paddle.nn.Dropout(dropout),
                                paddle.nn.Linear(16, 16), paddle.nn.ReLU(), paddle.nn.Linear(16, 2))


def strategy(lr=0.05, callable_schedule=False):
    scheduler = {"discriminative": {"blocks": 3, "factor": 2.0}, "gradual_unfreeze": 3}
    if callable_schedule:  # a new function object in every process (its repr holds its address)
        scheduler["schedule"] = lambda step: lr * 0.97 ** step
    else:
        scheduler["slanted_triangle"] = {"cut_fraction": 0.2, "ratio": 8}
    return ps.CombinedStrategy(optimizer_name="adam", learning_rate=lr, scheduler=scheduler,
                               regularization={"L2SP": 1e-2}, clip={"GlobalNorm": 1.0})


def fill_disk(directory):
    """Write zeros into directory/filler until the file system takes no more bytes (unbuffered, so closing it
    has nothing left to write)."""
    fd = os.open(os.path.join(directory, "filler"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--kill-at", type=int, default=0)
    p.add_argument("--nan-at", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--samples", type=int, default=60)
    p.add_argument("--nan-input", type=int, default=-1, help="sample whose first feature is NaN")
    p.add_argument("--callable-schedule", action="store_true")
    p.add_argument("--sleep-at", type=int, default=0)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--fill-disk-at", type=int, default=0)
    p.add_argument("--kill-in-best-swap", action="store_true", help="SIGKILL between best_model's two renames")
    p.add_argument("--eval", action="store_true", help="finetune_and_eval on the last 20 samples")
    p.add_argument("--accum", type=int, default=1, help="gradient_accumulation_steps")
    p.add_argument("--ema", type=float, default=None, help="ema_decay")
    p.add_argument("--kill-at-call", type=int, default=0)
    p.add_argument("--term-at-call", type=int, default=0)
    p.add_argument("--count-allreduce", action="store_true")
    p.add_argument("--use-cuda", action="store_true", help="train on the GPU (tools/gpu_check.sh)")
    p.add_argument("--stop-at", type=int, default=0, help="a run_step hook sets stop_training after this update")
    p.add_argument("--stop-rank", type=int, default=0, help="... on this rank only")
    p.add_argument("--signal-rank", type=int, default=-1, help="--kill-at-call / --sigstop-at-call on this rank only")
    p.add_argument("--sigstop-at-call", type=int, default=0, help="SIGSTOP this process in that loss_fn call")
    p.add_argument("--hook-sleep", type=float, default=0.0, help="a save_ckpt_interval_event hook sleeps this long")
    p.add_argument("--hook-sleep-at", type=int, default=5)
    p.add_argument("--hook-sleep-rank", type=int, default=0)
    p.add_argument("--dist-timeout", type=float, default=1800)
    p.add_argument("--keep", type=int, default=3, help="keep_checkpoints")
    p.add_argument("--kill-in-prune", action="store_true")
    a = p.parse_args(argv)
    net = model(a.dropout)
    config = ps.RunConfig(log_interval=4, use_cuda=a.use_cuda, checkpoint_dir=a.out, num_epoch=a.epochs,
                          batch_size=a.batch_size, save_ckpt_interval=5, eval_interval=4,
                          strategy=strategy(callable_schedule=a.callable_schedule), seed=3,
                          gradient_accumulation_steps=a.accum, ema_decay=a.ema, dist_timeout=a.dist_timeout,
                          keep_checkpoints=a.keep)
    reduces = {"n": 0}
    if a.count_allreduce:
        all_reduce = paddle.distributed.all_reduce

        def counting_all_reduce(*args, **kwargs):
            reduces["n"] += 1
            return all_reduce(*args, **kwargs)
        paddle.distributed.all_reduce = counting_all_reduce
    calls = {"n": 0}
    ce = paddle.nn.CrossEntropyLoss()

    def loss_fn(out, label):
        calls["n"] += 1
        if calls["n"] == a.sleep_at:
            print(f"sleeping at call {calls['n']}", flush=True)
            time.sleep(a.sleep)
        if calls["n"] == a.fill_disk_at:
            fill_disk(a.out)
        if a.signal_rank in (-1, paddle.distributed.get_rank()):
            if calls["n"] in (a.kill_at_call, a.term_at_call):
                os.kill(os.getpid(), signal.SIGKILL if calls["n"] == a.kill_at_call else signal.SIGTERM)
            if calls["n"] == a.sigstop_at_call:
                print(f"rank {paddle.distributed.get_rank()} stops itself (SIGSTOP) at {time.time():.3f}", flush=True)
                os.kill(os.getpid(), signal.SIGSTOP)
        loss = ce(out, label)
        return loss * float("nan") if calls["n"] == a.nan_at else loss

    samples = data(a.samples)
    if a.nan_input >= 0:
        x, y = samples[a.nan_input]
        x = x.copy()
        x[0] = np.nan
        samples[a.nan_input] = (x, y)
    if a.kill_in_best_swap:
        replace, seen = os.replace, {"best": 0}

        def replace_then_die(src, dst):
            replace(src, dst)
            if os.path.basename(src) == "best_model":  # the old best_model moved aside, the new not yet in
                seen["best"] += 1
                if seen["best"] == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
        os.replace = replace_then_die
    if a.kill_in_prune:
        import shutil
        rmtree = shutil.rmtree

        def rmtree_then_die(path, *args, **kwargs):
            name = os.path.basename(os.fspath(path))
            if "step_" in name and not name.startswith((".tmp-", ".old-")):  # a step_ folder being pruned
                os.remove(os.path.join(path, "model.safetensors"))
                os.kill(os.getpid(), signal.SIGKILL)
            return rmtree(path, *args, **kwargs)
        shutil.rmtree = rmtree_then_die
    if a.eval:
        trainer = ps.Trainer(net, config, samples[:-20], samples[-20:], loss_fn=loss_fn, metrics=["acc"])
    else:
        trainer = ps.Trainer(net, config, samples, loss_fn=loss_fn)
    run_steps = []
    trainer.add_hook("run_step_event", "count", lambda t, info: run_steps.append(info["rank"]))
    if a.hook_sleep:
        def sleep(t, info):
            if info["step"] == a.hook_sleep_at and info["rank"] == a.hook_sleep_rank:
                print(f"rank {info['rank']} sleeps {a.hook_sleep} s in a save_ckpt_interval_event hook", flush=True)
                time.sleep(a.hook_sleep)
        trainer.add_hook("save_ckpt_interval_event", "sleep", sleep)
    if a.stop_at:
        def stop(t, info):
            if info["step"] == a.stop_at and info["rank"] == a.stop_rank:
                t.stop_training = True
        trainer.add_hook("run_step_event", "stop", stop)
    if a.kill_at:
        step = trainer.optimizer.step

        def step_then_maybe_die():
            step()
            if trainer.lr_scheduler.last_epoch + 1 == a.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        trainer.optimizer.step = step_then_maybe_die
    trainer.finetune_and_eval() if a.eval else trainer.finetune()
    if a.count_allreduce:
        import json
        with open(os.path.join(a.out, f"allreduce_{paddle.distributed.get_rank()}.json"), "w") as f:
            json.dump({"all_reduce": reduces["n"], "updates": trainer.global_step,
                       "run_step_hooks": len(run_steps), "hook_ranks": sorted(set(run_steps))}, f)
    if paddle.distributed.get_rank() == 0:
        np.savez(os.path.join(a.out, "final.npz"), **{k: v.numpy() for k, v in net.state_dict().items()})
        if a.ema is not None:
            np.savez(os.path.join(a.out, "ema.npz"), **{k: v.numpy() for k, v in trainer.ema_state_dict().items()})


if __name__ == "__main__":
    main()
