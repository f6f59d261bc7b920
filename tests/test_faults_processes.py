"""Signals, worker processes, data errors and augmentation RNG: real subprocesses, real signals.

Worker processes of a run are found through /proc: every process started by a test's subprocess carries a
unique PS_FAULT_TAG in its environment (DataLoader workers are forked, so they inherit it), which also finds
orphans whose parent is gone. Leftovers are SIGKILLed and the /dev/shm/paddle_<pid>_* files of the run's
processes (the worker pids come from OUT/pids.txt, written by fault_worker.py) removed.
"""
import ctypes
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np
import paddle
import pytest

import paddle_strategy as ps

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import trainer_worker  # noqa: E402
from helpers import assert_same_params as assert_same  # noqa: E402
from helpers import checkpoint_steps as steps  # noqa: E402
from helpers import final_params as params  # noqa: E402
from helpers import tagged  # noqa: E402


class Runs:
    """Starts fault_worker.py runs with a tag; on teardown kills what is left and removes its shm files."""

    def __init__(self):
        self.tag = uuid.uuid4().hex
        self.pids, self.outs = set(), set()

    def run(self, out, *args, timeout=120):
        """Run fault_worker.py; output goes through files, not pipes, which orphaned workers would hold open."""
        env = dict(os.environ, PS_FAULT_TAG=self.tag)
        self.outs.add(str(out))
        with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "fault_worker.py"), str(out), *map(str, args)],
                                 stdout=so, stderr=se, text=True, env=env)
            self.pids.add(p.pid)
            try:
                p.wait(timeout=timeout)
                late = ""
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                late = f"\n[test] killed after {timeout} s"
            so.seek(0)
            se.seek(0)
            return subprocess.CompletedProcess(p.args, p.returncode, so.read(), se.read() + late)

    def alive(self, wait=5.0):
        """The tagged processes still alive after waiting up to `wait` seconds for them to go."""
        deadline = time.time() + wait
        while True:
            pids = tagged(self.tag)
            self.pids.update(pids)
            if not pids or time.time() > deadline:
                return pids
            time.sleep(0.1)

    def cleanup(self):
        for pid in tagged(self.tag):
            self.pids.add(pid)
            os.kill(pid, signal.SIGKILL)
        for out in self.outs:
            if os.path.exists(os.path.join(out, "pids.txt")):
                with open(os.path.join(out, "pids.txt")) as f:
                    self.pids.update(int(line) for line in f)
        for pid in self.pids:
            for f in glob.glob(f"/dev/shm/paddle_{pid}_*"):
                os.remove(f)


@pytest.fixture
def runs():
    r = Runs()
    yield r
    r.cleanup()


@pytest.fixture(scope="module")
def augmented(tmp_path_factory):
    """The uninterrupted run with random augmentation in __getitem__, num_workers=0."""
    r = Runs()
    out = tmp_path_factory.mktemp("augmented")
    try:
        res = r.run(out, "--augment")
    finally:
        r.cleanup()
    assert res.returncode == 0, res.stderr[-2000:]
    return params(out)


# ------------------------------------------------------------------------------------------------ 12 signals
def test_sigterm_stops_at_a_batch_boundary_writes_a_checkpoint_and_exits_143(tmp_path, runs, augmented):
    r = runs.run(tmp_path, "--augment", "--workers", 2, "--signal-at", 13, "--signal", "TERM")
    assert r.returncode == 128 + 15, (r.stdout + r.stderr)[-3000:]
    assert "[stop] SIGTERM: training stopped after step 13/24" in r.stdout
    assert steps(tmp_path) == ["step_00000005", "step_00000010", "step_00000013"]
    assert runs.alive() == []  # the workers are gone with their run
    r = runs.run(tmp_path, "--augment", "--workers", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "step 13/24, epoch 1, batch 5" in r.stdout
    assert_same(params(tmp_path), augmented)


def test_a_second_sigterm_stops_at_once(tmp_path, runs):
    r = runs.run(tmp_path, "--signal-at", 13, "--signal", "TERM", "--signal-twice")
    assert r.returncode == 143, (r.stdout + r.stderr)[-3000:]
    assert "SIGTERM received while stopping after SIGTERM: stopped at once" in r.stderr
    assert steps(tmp_path) == ["step_00000005", "step_00000010"]  # no step 13 checkpoint: it stopped inside


def test_sigkill_leaves_no_worker_alive(tmp_path, runs):
    r = runs.run(tmp_path, "--workers", 2, "--signal-at", 3, "--signal", "KILL")
    assert r.returncode == -9
    assert runs.alive() == []  # PR_SET_PDEATHSIG: the kernel kills the workers with their parent


def test_sigterm_to_one_of_two_processes_stops_both_at_the_same_step(tmp_path, runs):
    """paddle.distributed.launch, 2 CPU processes: only rank 1 gets SIGTERM, after update 4 of 9; both stop
    after step 4 and write one checkpoint together (holding both processes' RNG streams); it resumes."""
    env = dict(os.environ, PS_FAULT_TAG=runs.tag,
               PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "out"
    runs.outs.add(str(out))

    def launch(*args):
        log = tmp_path / f"log{len(args)}"
        r = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--devices",
                            "", "--log_dir", str(log), os.path.join(HERE, "fault_worker.py"), str(out), *args],
                           capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))
        return r, "".join(open(log / f).read() for f in sorted(os.listdir(log)))

    r, logs = launch("--signal-at", "4", "--signal", "TERM", "--signal-rank", "1")
    assert r.returncode != 0 and "Exit code 143" in r.stdout + r.stderr, (r.stdout + r.stderr + logs)[-3000:]
    assert "[stop] SIGTERM: training stopped after step 4/9" in logs
    assert steps(out) == ["step_00000004"]
    assert {"rng_0.json", "rng_1.json"} <= set(os.listdir(out / "step_00000004"))
    assert runs.alive() == []
    r, logs = launch()
    assert r.returncode == 0, (r.stdout + r.stderr + logs)[-3000:]
    assert "step 4/9, epoch 1, batch 1" in logs


# ------------------------------------------------------------------------------------------------ 13 workers
def test_worker_count_stays_constant_and_is_zero_after_the_run(tmp_path, runs, augmented):
    r = runs.run(tmp_path, "--augment", "--workers", 2, "--children-log")
    assert r.returncode == 0, r.stderr[-2000:]
    with open(tmp_path / "children.json") as f:
        counts = json.load(f)
    assert counts["after_constructor"] == 0  # the first-batch peek starts no workers
    assert counts["steps"] == [2] * 24  # 3 epochs: never more than num_workers at a time
    assert counts["after"] == 0
    # a sample's augmentation does not depend on which process fetched it: 2 workers = main thread
    assert_same(params(tmp_path), augmented)


# ------------------------------------------------------------------------------------------------ 14 data errors
def test_data_errors_raise_at_once_naming_the_sample_with_the_cause_chained(tmp_path, runs):
    r = runs.run(tmp_path, "--data-errors", timeout=60)  # before the fix: blocked for ever in the constructor
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    res = {d["scenario"]: d for d in map(json.loads, r.stdout.splitlines()) if "scenario" in d}
    first, later = res["constructor"]["first"], res["constructor"]["later"]
    # the documented data order: permutation seeded by (seed, epoch) = (3, 0), batches of 8
    order = np.random.default_rng([3, 0]).permutation(60)
    assert first == order[0] and later == order[20]
    want = {"constructor": f"train_dataset[{first}] (epoch 0, batch 0) raised ValueError: bad sample {first}",
            "training": f"train_dataset[{later}] (epoch 0, batch 2) raised ValueError: bad sample {later}",
            "eval": "dataset[3] (batch 0) raised ValueError: bad sample 3"}
    for name, message in want.items():
        assert res[name]["raised"] == "DataError" and res[name]["message"] == message, res[name]
        assert res[name]["cause"] == "ValueError"
        assert "The above exception was the direct cause" in res[name]["traceback"]
    assert res["collate"]["raised"] == "DataError" and res["collate"]["cause"] == "TypeError"
    assert res["collate"]["message"].startswith("collate_fn raised TypeError: cannot collate this on train_dataset "
                                                "samples [")
    worker = res["worker"]  # num_workers=2: the worker's traceback comes with the message
    assert worker["raised"] == "DataError"
    assert worker["message"].startswith(f"train_dataset[{later}] (epoch 0, batch 2) raised ValueError: bad sample "
                                        f"{later} (in a DataLoader worker")
    assert "ValueError: bad sample" in worker["message"] and "direct cause" in worker["message"]
    assert all(d["children"] == 0 for d in res.values())  # the failed pass's workers were shut down


# ------------------------------------------------------------------------------------------------ 15 again
@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """trainer_worker's uninterrupted run, in this process."""
    out = tmp_path_factory.mktemp("plain")
    trainer_worker.main([str(out)])
    return params(out)


def interrupted_trainer(out, at, how):
    """trainer_worker's run whose loss function, on its call number `at`, raises KeyboardInterrupt or sends
    this process a real SIGINT."""
    net = trainer_worker.model()
    config = ps.RunConfig(log_interval=4, use_cuda=False, checkpoint_dir=str(out), num_epoch=3, batch_size=8,
                          save_ckpt_interval=5, strategy=trainer_worker.strategy(), seed=3)
    calls = {"n": 0}
    ce = paddle.nn.CrossEntropyLoss()

    def loss_fn(output, label):
        calls["n"] += 1
        loss = ce(output, label)
        if calls["n"] == at:
            if how == "raise":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    return net, ps.Trainer(net, config, trainer_worker.data(), loss_fn=loss_fn)


def final(net):
    return {k: v.numpy() for k, v in net.state_dict().items()}


def sigterm_action():
    """The C-level SIGTERM handler's address (Paddle installs its own at import): struct sigaction's first
    field (the rest of the struct holds bytes glibc leaves undefined)."""
    libc = ctypes.CDLL(None)
    buf = ctypes.create_string_buffer(512)
    assert libc.sigaction(int(signal.SIGTERM), None, buf) == 0
    return buf.raw[:ctypes.sizeof(ctypes.c_void_p)]


def test_finetune_again_after_sigint_continues_exactly(tmp_path, plain):
    net, trainer = interrupted_trainer(tmp_path, 13, "signal")
    paddles_sigterm = sigterm_action()
    with pytest.raises(KeyboardInterrupt) as err:  # Ctrl-C in a notebook
        trainer.finetune()
    assert isinstance(err.value, ps.TrainingInterrupted) and err.value.step == 13
    assert steps(tmp_path)[-1] == "step_00000013"
    # handlers put back: Python's SIGINT handler and Paddle's C-level SIGTERM handler
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert sigterm_action() == paddles_sigterm
    trainer.finetune()
    assert_same(final(net), plain)


def test_finetune_again_after_an_exception_inside_a_step_goes_back_to_the_checkpoint(tmp_path, plain, capsys):
    net, trainer = interrupted_trainer(tmp_path, 13, "raise")  # inside step 13: after forward, before update
    with pytest.raises(KeyboardInterrupt):
        trainer.finetune()
    trainer.finetune()
    assert_same(final(net), plain)  # before: the gradient of step 13 was applied twice
    assert "stopped inside step 13; went back to the checkpoint of step 10" in capsys.readouterr().out


def test_finetune_again_after_an_exception_inside_a_step_without_checkpoint_refuses(tmp_path):
    net, trainer = interrupted_trainer(tmp_path, 3, "raise")
    with pytest.raises(KeyboardInterrupt):
        trainer.finetune()
    for _ in range(2):  # and keeps refusing
        with pytest.raises(RuntimeError, match="stopped inside step 3, and .* holds no intact checkpoint"):
            trainer.finetune()


# ------------------------------------------------------------------------------------------------ 16 augmentation
@pytest.mark.parametrize("workers", [0, 2])
def test_killed_run_with_random_augmentation_resumes_bit_identical(tmp_path, runs, augmented, workers):
    r = runs.run(tmp_path, "--augment", "--workers", workers, "--signal-at", 13, "--signal", "KILL")
    assert r.returncode == -9
    assert runs.alive() == []
    r = runs.run(tmp_path, "--augment", "--workers", workers)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "step 10/24, epoch 1, batch 2" in r.stdout
    assert_same(params(tmp_path), augmented)


class Recording:
    """Records (index, sample_seed, a numpy draw, a paddle draw, python draw) of every fetch."""

    def __init__(self, n, seed_of):
        self.n, self.log, self.seed_of = n, [], seed_of

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        import random
        self.log.append((i, self.seed_of(), float(np.random.rand()), paddle.rand([1]).item(), random.random()))
        return np.full(2, float(i), "float32"), np.int64(i % 2)


def fetches(tmp_path, batch_size, epochs=2):
    data = Recording(12, ps.sample_seed)
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path / f"b{batch_size}"), use_cuda=False, num_epoch=epochs,
                       batch_size=batch_size, log_interval=100, seed=5)
    t = ps.Trainer(paddle.nn.Linear(2, 2), cfg, data, loss_fn=paddle.nn.CrossEntropyLoss())
    data.log.clear()  # the constructor's peek
    np.random.seed(0)
    main_stream = np.random.rand(3)
    np.random.seed(0)
    t.finetune()
    assert np.array_equal(np.random.rand(3), main_stream)  # fetching left the caller's stream alone
    assert ps.sample_seed() is None
    return data.log


def test_augmentation_draws_depend_on_seed_epoch_and_index_only(tmp_path):
    a, b = fetches(tmp_path, 4), fetches(tmp_path, 6)
    assert len(a) == len(b) == 24
    # per epoch each index once, in the (seed, epoch) permutation; a draw depends on (epoch, index) only
    by_key_a = {(k // 12, rec[0]): rec[1:] for k, rec in enumerate(a)}
    by_key_b = {(k // 12, rec[0]): rec[1:] for k, rec in enumerate(b)}
    assert by_key_a == by_key_b  # batch size 4 or 6: same draws for the same sample
    assert len({v[0] for v in by_key_a.values()}) == 24  # different seeds per (epoch, index)
    for i in range(12):  # the same sample gets other noise in the next epoch
        assert by_key_a[(0, i)][1:] != by_key_a[(1, i)][1:]
