"""Scaling out with real paddle.distributed.launch processes and real signals: rank-0-only pauses longer than
gloo's 30 s, sharded evaluation, two simulated nodes with their own checkpoint directories, a killed node, a
hung rank, and signals to the launcher."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from helpers import assert_same_params, checkpoint_steps, final_params, tagged  # noqa: E402

WORKER = os.path.join(HERE, "trainer_worker.py")
COMMON = ["--batch-size", "4", "--samples", "64"]  # 2 processes x 4: 8 updates an epoch, 24 in all


def env_with(tag=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    if tag:
        env["PS_FAULT_TAG"] = tag
    return env


def launch_cmd(log, script, *args, nnodes=None, rank=None, master=None):
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--devices", "", "--log_dir", str(log)]
    if nnodes:
        cmd += ["--nnodes", str(nnodes), "--nproc_per_node", "1", "--master", master, "--rank", str(rank)]
    else:
        cmd += ["--nproc_per_node", "2"]
    return cmd + [script, *map(str, args)]


def logs(log):
    return "".join(open(os.path.join(log, f), errors="replace").read() for f in sorted(os.listdir(log))
                   if f.startswith("workerlog"))


def launch(tmp, name, *args, timeout=300):
    log = tmp / f"log_{name}"
    r = subprocess.run(launch_cmd(log, WORKER, *args), capture_output=True, text=True, timeout=timeout,
                       env=env_with(), cwd=str(tmp))
    return r, logs(log)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted 2-process run (dropout on: every rank's RNG stream matters on resume)."""
    tmp = tmp_path_factory.mktemp("reference")
    r, text = launch(tmp, "ref", tmp / "out", *COMMON)
    assert r.returncode == 0, (r.stdout + r.stderr + text)[-3000:]
    return final_params(tmp / "out")


# ------------------------------------------------------------------------------------------------ evaluation
def test_two_process_eval_equals_one_process_and_reads_each_sample_once(tmp_path):
    one = tmp_path / "one"
    r = subprocess.run([sys.executable, os.path.join(HERE, "eval_worker.py"), str(one)], capture_output=True,
                       text=True, timeout=120, env=env_with())
    assert r.returncode == 0, r.stderr[-2000:]
    two = tmp_path / "two"
    r = subprocess.run(launch_cmd(tmp_path / "log", os.path.join(HERE, "eval_worker.py"), two), capture_output=True,
                       text=True, timeout=300, env=env_with(), cwd=str(tmp_path))
    assert r.returncode == 0, (r.stdout + r.stderr + logs(tmp_path / "log"))[-3000:]
    want = json.load(open(one / "result_0.json"))
    for rank in (0, 1):
        got = json.load(open(two / f"result_{rank}.json"))
        assert got["eval"] == want["eval"]  # every metric kind, exactly
        assert got["predict"] == want["predict"]  # every row, in dataset order
    # 37 samples, batches of 4: batches 0, 2, ..., 8 on rank 0 (5 batches, 20 samples), 1, 3, ..., 9 on rank 1
    # (the last holds one sample), each read once by eval() and once by predict()
    reads = {rank: [int(x) for x in open(two / f"reads_{rank}.txt")] for rank in (0, 1)}
    assert sorted(reads[0] + reads[1]) == sorted(list(range(37)) * 2)
    assert sorted(set(reads[0])) == [i for i in range(37) if (i // 4) % 2 == 0]
    assert len(want["predict"]) == 37 and set(want["eval"]) == {
        "loss", "acc", "f1", "precision", "recall", "matthews", "paddle_acc", "spread"}


# ------------------------------------------------------------------------------------------------ rank 0 alone
def test_a_40_s_pause_of_rank_0_alone_finishes_like_a_run_without_it(tmp_path, reference):
    """A save_ckpt_interval_event hook sleeps 40 s on rank 0 only (gloo alone gives up after 30 s); rank 1 waits
    on the store and the run ends with the same parameters as without the pause."""
    r, text = launch(tmp_path, "pause", tmp_path / "out", *COMMON, "--hook-sleep", 40, "--hook-sleep-at", 5)
    assert r.returncode == 0, (r.stdout + r.stderr + text)[-3000:]
    assert "rank 0 sleeps 40.0 s" in text
    assert_same_params(final_params(tmp_path / "out"), reference)


def test_a_rank_0_pause_beyond_dist_timeout_names_what_was_awaited(tmp_path):
    r, text = launch(tmp_path, "late", tmp_path / "out", *COMMON, "--hook-sleep", 12, "--hook-sleep-at", 5,
                     "--dist-timeout", 3)
    assert r.returncode != 0
    assert ("rank 1 waited 3 s (RunConfig.dist_timeout) for rank 0 to finish the hooks after update 5; rank 0 did "
            "not arrive") in text, text[-3000:]


# ------------------------------------------------------------------------------------------------ nodes
def two_nodes(tmp, name, out0, out1, *args, tag=None):
    port = free_port()
    procs = []
    for rank, out in ((0, out0), (1, out1)):
        log = tmp / f"log_{name}_{rank}"
        procs.append(subprocess.Popen(
            launch_cmd(log, WORKER, out, *COMMON, *args, nnodes=2, rank=rank, master=f"127.0.0.1:{port}"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_with(tag), cwd=str(tmp)))
    return procs


def test_two_nodes_with_their_own_checkpoint_dirs_survive_a_killed_node_and_resume_exactly(tmp_path, reference):
    out0, out1 = tmp_path / "node0" / "ckpt", tmp_path / "node1" / "ckpt"
    # rank 1 is SIGKILLed inside update 9 (its 9th loss call); rank 0 must leave within 60 s, naming it
    procs = two_nodes(tmp_path, "kill", out0, out1, "--kill-at-call", 9, "--signal-rank", 1)
    for p in procs:
        p.wait(timeout=120)
    assert procs[1].returncode != 0 and procs[0].returncode != 0
    text = logs(tmp_path / "log_kill_0")
    assert "DistributedError" in text and "rank(s) 1 left or stopped answering" in text, text[-3000:]
    assert f"The newest intact checkpoint is {out0 / 'step_00000005'}" in text
    assert checkpoint_steps(out0) == ["step_00000005"]
    assert not out1.exists()  # rank 1 never touches a checkpoint directory: node-local disks work
    procs = two_nodes(tmp_path, "resume", out0, out1)
    for p in procs:
        assert p.wait(timeout=300) == 0, logs(tmp_path / f"log_resume_{procs.index(p)}")[-3000:]
    assert f"[resume] from {out0 / 'step_00000005'}" in logs(tmp_path / "log_resume_0")
    assert_same_params(final_params(out0), reference)


def test_a_hung_rank_is_named_after_the_limit(tmp_path):
    """Rank 1 stops itself with SIGSTOP: rank 0 waits in the gradient all_reduce for gloo's 30 s, then fails
    naming rank 1."""
    tag = uuid.uuid4().hex
    log = tmp_path / "log"
    p = subprocess.Popen(launch_cmd(log, WORKER, tmp_path / "out", *COMMON, "--sigstop-at-call", 10,
                                    "--signal-rank", 1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env_with(tag), cwd=str(tmp_path))
    try:
        wait_for(lambda: log.exists() and "stops itself" in logs(log), 120, "rank 1 to stop itself")
        took = wait_for(lambda: "rank(s) 1 left or stopped answering" in logs(log), 90, "rank 0 to name rank 1")
        assert took < 60, took
        assert "DistributedError" in logs(log)
    finally:
        for pid in tagged(tag):
            os.kill(pid, signal.SIGKILL)
        p.wait(timeout=60)


# ------------------------------------------------------------------------------------------------ launcher
def start_slow(tmp, tag, name):
    """A 2-process run whose loss sleeps 3 s in its 13th call (update 13), so a signal lands mid-run."""
    log = tmp / f"log_{name}"
    p = subprocess.Popen(launch_cmd(log, WORKER, tmp / "out", *COMMON, "--sleep-at", 13, "--sleep", 3),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_with(tag), cwd=str(tmp))
    wait_for(lambda: log.exists() and logs(log).count("sleeping at call 13") == 2, 120, "both ranks at call 13")
    return p, log


def test_sigterm_to_the_launcher_stops_every_rank_at_the_same_update_with_one_checkpoint(tmp_path, reference):
    tag = uuid.uuid4().hex
    p, log = start_slow(tmp_path, tag, "term")
    p.send_signal(signal.SIGTERM)  # the launcher forwards it three times to each rank
    p.wait(timeout=120)
    text = logs(log)
    assert text.count("[stop] SIGTERM: training stopped after step 13/24") == 1, text[-3000:]  # rank 0 says it
    assert "stopped at once" not in text and "FatalError" not in text
    assert checkpoint_steps(tmp_path / "out") == ["step_00000005", "step_00000010", "step_00000013"]
    assert {"rng_0.json", "rng_1.json"} <= set(os.listdir(tmp_path / "out" / "step_00000013"))
    wait_for(lambda: not tagged(tag), 30, "every rank to exit")
    r, text = launch(tmp_path, "again", tmp_path / "out", *COMMON)
    assert r.returncode == 0, (r.stdout + r.stderr + text)[-3000:]
    assert "step 13/24, epoch 1, batch 5" in text
    assert_same_params(final_params(tmp_path / "out"), reference)


def test_sigkill_of_the_launcher_stops_the_ranks_within_seconds(tmp_path, reference):
    tag = uuid.uuid4().hex
    p, log = start_slow(tmp_path, tag, "kill")
    p.kill()
    p.wait(timeout=30)
    took = wait_for(lambda: not tagged(tag), 30, "the orphaned ranks to exit")
    assert took < 20, took
    text = logs(log)
    assert "[stop] SIGTERM: training stopped after step 13/24" in text, text[-3000:]  # PR_SET_PDEATHSIG
    assert checkpoint_steps(tmp_path / "out")[-1] == "step_00000013"
    r, text = launch(tmp_path, "again", tmp_path / "out", *COMMON)
    assert r.returncode == 0, (r.stdout + r.stderr + text)[-3000:]
    assert_same_params(final_params(tmp_path / "out"), reference)


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-5, ValueError), ("60", TypeError), (float("inf"), ValueError)])
def test_dist_timeout_is_checked(bad, exc):
    import paddle_strategy as ps
    with pytest.raises(exc, match="RunConfig.dist_timeout"):
        ps.RunConfig(dist_timeout=bad)
