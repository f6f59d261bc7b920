"""Fine-tune runs for the signal / worker / data-error tests, started as a subprocess.

    python fault_worker.py OUT [--workers N] [--augment] [--signal-at STEP --signal TERM|INT|KILL]
                               [--children-log] [--data-errors]

Same model, data and strategy as trainer_worker.py (60 samples, batch 8, 3 epochs = 24 steps, a checkpoint
every 5). --augment adds NumPy and Paddle noise to every sample in __getitem__. --signal-at sends the signal
to this process right after that optimizer update (--signal-twice: two of them; under paddle.distributed.launch
only rank --signal-rank sends it). --children-log writes the
number of child processes seen at each step, and after the run, to OUT/children.json. --data-errors runs
the data-error scenarios one after the other and prints one JSON line per scenario. Final parameters go to
OUT/final.npz.
"""
import argparse
import json
import os
import signal
import sys
import time
import traceback

import numpy as np
import paddle

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import paddle_strategy as ps  # noqa: E402
import trainer_worker  # noqa: E402


class Augmented:
    """trainer_worker's data with random augmentation drawn from NumPy's and Paddle's global RNGs."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        noise = 0.1 * np.random.normal(size=x.shape) + 0.1 * paddle.randn(x.shape).numpy()
        return (x + noise).astype("float32"), y


class Bad:
    """Raises ValueError for one index."""

    def __init__(self, base, bad):
        self.base, self.bad = base, bad

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"bad sample {i}")
        return self.base[i]


def children():
    """pids of this process's children."""
    me, found = str(os.getpid()), []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = f.read().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if ppid == me:
                found.append(int(pid))
    return found


def recording(loss, out):
    """`loss`, also appending the pids of new child processes (DataLoader workers) to OUT/pids.txt, so that
    the tests can remove their /dev/shm files after a kill."""
    seen = set()

    def loss_fn(output, label):
        new = set(children()) - seen
        if new:
            seen.update(new)
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "pids.txt"), "a") as f:
                f.write("".join(f"{p}\n" for p in new))
        return loss(output, label)
    return loss_fn


def config(out, workers):
    return ps.RunConfig(log_interval=4, use_cuda=False, checkpoint_dir=out, num_epoch=3, batch_size=8,
                        save_ckpt_interval=5, strategy=trainer_worker.strategy(), seed=3, num_workers=workers)


def data_errors(out):
    """Each scenario: what was raised (type, message, the chained cause's type) or 'no error'."""
    first = int(np.random.default_rng([3, 0]).permutation(60)[0])    # in the constructor's first batch
    later = int(np.random.default_rng([3, 0]).permutation(60)[20])   # epoch 0, batch 2
    ce = recording(paddle.nn.CrossEntropyLoss(), out)

    def bad_collate(samples):
        if any(int(s[1]) == 1 and float(s[0][0]) > 1.5 for s in samples):
            raise TypeError("cannot collate this")
        return paddle.io.dataloader.collate.default_collate_fn(samples)

    scenarios = {
        "constructor": lambda: ps.Trainer(trainer_worker.model(), config(os.path.join(out, "a"), 0),
                                          Bad(trainer_worker.data(), first), loss_fn=ce),
        "training": lambda: ps.Trainer(trainer_worker.model(), config(os.path.join(out, "b"), 0),
                                       Bad(trainer_worker.data(), later), loss_fn=ce).finetune(),
        "collate": lambda: ps.Trainer(trainer_worker.model(), config(os.path.join(out, "c"), 0),
                                      trainer_worker.data(), loss_fn=ce, collate_fn=bad_collate).finetune(),
        "eval": lambda: ps.Trainer(trainer_worker.model(), config(os.path.join(out, "d"), 0),
                                   trainer_worker.data(), loss_fn=ce).eval(Bad(trainer_worker.data(), 3)),
        "worker": lambda: ps.Trainer(trainer_worker.model(), config(os.path.join(out, "e"), 2),
                                     Bad(trainer_worker.data(), later), loss_fn=ce).finetune(),
    }
    for name, run in scenarios.items():
        try:
            run()
            result = {"raised": None}
        except Exception as exc:
            result = {"raised": type(exc).__name__, "message": str(exc),
                      "cause": type(exc.__cause__).__name__ if exc.__cause__ else None,
                      "traceback": "".join(traceback.format_exception(exc))}
        print(json.dumps({"scenario": name, "first": first, "later": later, "children": len(children()), **result}),
              flush=True)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--signal-at", type=int, default=0)
    p.add_argument("--signal", default="TERM", choices=["TERM", "INT", "KILL"])
    p.add_argument("--signal-twice", action="store_true")
    p.add_argument("--signal-rank", type=int, default=0, help="under paddle.distributed.launch: the one that signals")
    p.add_argument("--children-log", action="store_true")
    p.add_argument("--data-errors", action="store_true")
    a = p.parse_args(argv)
    if a.data_errors:
        return data_errors(a.out)
    net = trainer_worker.model()
    data = trainer_worker.data()
    if a.augment:
        data = Augmented(data)
    counts = []
    ce = recording(paddle.nn.CrossEntropyLoss(), a.out)

    def loss_fn(out, label):
        if a.children_log:
            counts.append(len(children()))
        return ce(out, label)

    trainer = ps.Trainer(net, config(a.out, a.workers), data, loss_fn=loss_fn)
    if a.signal_at:
        step = trainer.optimizer.step
        sig = getattr(signal, "SIG" + a.signal)

        def step_then_signal():
            step()
            if trainer.lr_scheduler.last_epoch + 1 == a.signal_at and paddle.distributed.get_rank() == a.signal_rank:
                os.kill(os.getpid(), sig)
                if a.signal_twice:  # a second one from the user, after the launcher's repeats would have come
                    time.sleep(ps.training.stopping.REPEAT_WINDOW + 0.5)
                    os.kill(os.getpid(), sig)
        trainer.optimizer.step = step_then_signal
    after_constructor = len(children())
    trainer.finetune()
    if a.children_log:
        with open(os.path.join(a.out, "children.json"), "w") as f:
            json.dump({"after_constructor": after_constructor, "steps": counts, "after": len(children())}, f)
    if paddle.distributed.get_rank() == 0:
        np.savez(os.path.join(a.out, "final.npz"), **{k: v.numpy() for k, v in net.state_dict().items()})


if __name__ == "__main__":
    main()
