"""Issue 11, items 1-11: checkpoints are never lost or poisoned (real subprocesses, real kills, real
file systems: a full tmpfs and a read-only mount inside an unprivileged mount namespace)."""
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

import paddle_strategy as ps
from paddle_strategy import program
from paddle_strategy.training.checkpoint_files import verify_dir

from helpers import assert_same_params as assert_same
from helpers import checkpoint_steps as steps
from helpers import final_params as params
from helpers import run_trainer_worker as run_worker
from helpers import needs_mounts, seal

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "trainer_worker.py")
CKPT_FILES = {"MANIFEST.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json", "rng_0.json"}


def classification_data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    return [(x[i], y[i]) for i in range(n)]


# ---------------------------------------------------------------------------------------------- 1
def test_damaged_folders_never_push_out_intact_checkpoints(tmp_path, uninterrupted):
    for n in (90, 91, 92):  # three damaged folders numbered above anything the run writes
        d = tmp_path / f"step_{n:08d}"
        d.mkdir()
        (d / "MANIFEST.json").write_text("{\"model.safetensors\": {\"size\": 5, \"sha256\": \"00\"}}")
    r = run_worker(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    # 24 steps, a checkpoint every 5 and at the end; keep_checkpoints=3 intact ones
    assert steps(tmp_path) == ["step_00000015", "step_00000020", "step_00000024",
                               "step_00000090", "step_00000091", "step_00000092"]
    for n in ("step_00000015", "step_00000020", "step_00000024"):
        assert verify_dir(str(tmp_path / n)) is None
    assert re.search(r"\[done\] 24 steps; checkpoint .*step_00000024", r.stdout)
    assert r.stdout.count("is damaged") == 3  # each reported once
    assert_same(params(tmp_path), uninterrupted)
    again = run_worker(tmp_path)  # the next run finds the end of training, not an empty directory
    assert again.returncode == 0 and "already holds the end of training" in again.stdout


# ---------------------------------------------------------------------------------------------- 2
def test_callable_schedule_resumes_in_a_new_process(tmp_path):
    ref = tmp_path / "ref"
    r = run_worker(ref, "--callable-schedule")
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path / "run"
    assert run_worker(run, "--callable-schedule", "--kill-at", 13).returncode == -9
    r = run_worker(run, "--callable-schedule")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[resume] from" in r.stdout and "step 10/24" in r.stdout
    assert_same(params(run), params(ref))


def test_harmless_edits_resume_and_real_changes_are_named(tmp_path):
    data = classification_data()

    def trainer(**strategy):
        cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8, log_interval=100,
                           strategy=ps.CombinedStrategy("adam", **strategy))
        return ps.Trainer(paddle.nn.Linear(4, 2), cfg, data, loss_fn=paddle.nn.CrossEntropyLoss())

    trainer(learning_rate=1e-3, clip={"GlobalNorm": 10}, beta1=0.9, beta2=0.99).finetune()
    # 10 -> 10.0, keyword order, optimizer name spelt differently: the same strategy
    summary = trainer(beta2=0.99, beta1=0.9, clip={"GlobalNorm": 10.0}, learning_rate=0.001).finetune()
    assert summary["steps"] == 5
    with pytest.raises(ps.CheckpointError) as err:
        trainer(learning_rate=2e-3, clip={"GlobalNorm": 10}, beta1=0.9, beta2=0.99).finetune()
    assert "learning_rate: 0.001 there, 0.002 here" in str(err.value)
    with pytest.raises(ps.CheckpointError) as err:
        trainer(learning_rate=1e-3, clip={"GlobalNorm": 10}, beta1=0.8, beta2=0.99).finetune()
    assert "optimizer_kwargs.beta1: 0.9 there, 0.8 here" in str(err.value)


# ---------------------------------------------------------------------------------------------- 3
def test_nonfinite_gradient_with_finite_loss_stops_before_the_update(tmp_path, uninterrupted):
    # sample 7 has a NaN feature: relu(nan) = 0 keeps the loss finite, the first layer's gradient is NaN
    r = run_worker(tmp_path, "--nan-input", 7)
    assert r.returncode != 0
    m = re.search(r"FloatingPointError: the gradient of parameter '0.weight' holds NaN or inf \(loss [0-9.]+\) "
                  r"at step (\d+) .*training stopped before that update", r.stderr)
    assert m, r.stderr[-2000:]
    stopped_at = int(m.group(1))
    saved = steps(tmp_path)
    assert saved and all(int(n[5:]) < stopped_at for n in saved)
    for n in saved:  # every checkpoint intact and finite
        assert verify_dir(str(tmp_path / n)) is None
        from safetensors.numpy import load_file
        assert all(np.isfinite(v).all() for v in load_file(str(tmp_path / n / "model.safetensors")).values())
    assert f"The last good checkpoint, {tmp_path / saved[-1]}, is intact" in r.stderr


def test_checkpoint_with_nonfinite_weights_is_skipped_on_resume(tmp_path, uninterrupted):
    assert run_worker(tmp_path, "--kill-at", 13).returncode == -9
    # poison step 10's weights and re-seal its manifest, as a run without the gradient check would have
    from safetensors.numpy import load_file, save_file
    d = tmp_path / "step_00000010"
    weights = load_file(str(d / "model.safetensors"))
    weights["0.weight"][0, 0] = np.nan
    save_file(weights, str(d / "model.safetensors"))
    seal(d)
    r = run_worker(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "skipping damaged checkpoint" in r.stdout and "parameter '0.weight' holds NaN or inf" in r.stdout
    assert "step 5/24" in r.stdout
    assert_same(params(tmp_path), uninterrupted)


# ---------------------------------------------------------------------------------------------- 4, 5
def test_nan_metric_is_the_worst_value(tmp_path):
    data = classification_data(60)
    calls = {"n": 0}

    def flaky_acc(preds, labels):  # NaN at the first evaluation (20 samples), accuracy otherwise
        if len(labels) == 20:
            calls["n"] += 1
        return float("nan") if calls["n"] == 1 else float((preds.argmax(-1) == labels).mean())

    paddle.seed(1)
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 2))
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8, num_epoch=3, eval_interval=2,
                       log_interval=100, strategy=ps.CombinedStrategy("sgd", learning_rate=0.5))
    t = ps.Trainer(model, cfg, data[:40], data[40:], loss_fn=paddle.nn.CrossEntropyLoss(), metrics=[flaky_acc],
                   eval_batch_size=20)
    summary = t.finetune_and_eval()
    values = [h["flaky_acc"] for h in summary["history"]]
    assert np.isnan(values[0]) and not any(np.isnan(values[1:]))
    best = max(values[1:])
    assert summary["best"]["value"] == best and summary["best"]["step"] == summary["history"][values.index(best)]["step"]
    assert json.load(open(tmp_path / "best_model" / "metrics.json"))["value"] == best


def test_empty_eval_dataset_is_refused_before_training(tmp_path):
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8)
    with pytest.raises(ValueError, match="eval_dataset is empty"):
        ps.Trainer(paddle.nn.Linear(4, 2), cfg, classification_data(), [], loss_fn=paddle.nn.CrossEntropyLoss())
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------------------------------- 6
def test_second_trainer_on_the_same_directory_is_refused_and_a_dead_ones_lock_is_not(tmp_path, uninterrupted):
    proc = subprocess.Popen([sys.executable, WORKER, str(tmp_path), "--sleep-at", "7", "--sleep", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 60
        line = ""
        while "sleeping" not in line and time.time() < deadline:
            line = proc.stdout.readline()
        assert "sleeping" in line
        cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8, log_interval=100)
        t = ps.Trainer(paddle.nn.Linear(4, 2), cfg, classification_data(), loss_fn=paddle.nn.CrossEntropyLoss())
        before = steps(tmp_path)
        with pytest.raises(ps.CheckpointError, match=rf"in use by another running trainer \(pid {proc.pid} since"):
            t.finetune()
        assert steps(tmp_path) == before == ["step_00000005"]  # nothing written by the refused trainer
    finally:
        proc.kill()
        proc.wait()
    r = run_worker(tmp_path)  # the killed run's lock file is still there; its lock died with it
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[resume] from" in r.stdout and "step 5/24" in r.stdout
    assert_same(params(tmp_path), uninterrupted)


# ---------------------------------------------------------------------------------------------- 7, 8
def test_kill_between_the_best_model_renames_heals(tmp_path):
    r = run_worker(tmp_path, "--eval", "--kill-in-best-swap")
    assert r.returncode == -9
    assert not os.path.exists(tmp_path / "best_model")  # killed with the old one aside, the new not yet in
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".old-best_model-")]
    assert len(leftovers) == 1
    # a second leftover with another run's (reused) pid must not trip anything either
    shutil.copytree(tmp_path / leftovers[0], tmp_path / f".old-best_model-{os.getpid()}-deadbeef")
    r = run_worker(tmp_path, "--eval")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[checkpoint] restored best_model from .old-best_model-" in r.stdout
    assert not [n for n in os.listdir(tmp_path) if n.startswith((".old-", ".tmp-"))]
    assert verify_dir(str(tmp_path / "best_model")) is None


@needs_mounts
def test_full_disk_keeps_earlier_checkpoints_cleans_up_and_names_the_cause(tmp_path, uninterrupted):
    disk = tmp_path / "disk"
    disk.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    ck = disk / "ckpt"
    script = f"""
set -u
mount -t tmpfs -o size=2m tmpfs {disk}
{sys.executable} {WORKER} {ck} --fill-disk-at 8 > {out}/first.out 2> {out}/first.err
echo $? > {out}/first.rc
ls -a {ck} > {out}/after_fail.ls
rm {ck}/filler
{sys.executable} {WORKER} {ck} > {out}/second.out 2> {out}/second.err
echo $? > {out}/second.rc
cp {ck}/final.npz {out}/ 2>/dev/null
"""
    r = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "first.rc").read_text().strip() != "0"
    err = (out / "first.err").read_text()
    assert "No space left on device" in err and "step_00000010" in err and "it was not written, earlier checkpoints are untouched" in err
    assert err.count("Traceback") == 1  # the cleanup raised nothing of its own
    listing = (out / "after_fail.ls").read_text().split()
    assert "step_00000005" in listing and not [n for n in listing if n.startswith(".tmp-")]
    assert (out / "second.rc").read_text().strip() == "0", (out / "second.err").read_text()[-2000:]
    assert "[resume] from" in (out / "second.out").read_text()
    assert_same(params(out), uninterrupted)


def test_unfinished_temporary_directories_are_removed_at_start(tmp_path):
    stale = tmp_path / ".tmp-step_00000005-12345-abcdef01"
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"\0" * 1000)
    r = run_worker(tmp_path, "--epochs", 1)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "removed unfinished .tmp-step_00000005-12345-abcdef01" in r.stdout
    assert not stale.exists()


# ---------------------------------------------------------------------------------------------- 9
class _RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoints_hold_no_pickles_and_an_old_pickled_one_is_refused_unopened(tmp_path):
    assert run_worker(tmp_path, "--kill-at", 7).returncode == -9
    assert set(os.listdir(tmp_path / "step_00000005")) == CKPT_FILES
    # an old-format (pickled) checkpoint with a consistent manifest: refused without unpickling anything
    old = tmp_path / "step_00000006"
    shutil.copytree(tmp_path / "step_00000005", old)
    payload = _RunsCode()
    payload.marker = str(tmp_path / "pwned")
    (old / "optimizer.pkl").write_bytes(pickle.dumps(payload))
    (old / "rng_0.pkl").write_bytes(pickle.dumps(payload))
    seal(old)
    r = run_worker(tmp_path)
    assert r.returncode != 0
    assert "CheckpointError" in r.stderr and "stores pickles" in r.stderr and "step_00000006" in r.stderr
    assert not os.path.exists(tmp_path / "pwned")


@pytest.mark.parametrize("manifest, why", [
    ("[]", "MANIFEST.json is a list"),
    ("null", "MANIFEST.json is a NoneType"),
    ("{\"model.safetensors\": {\"sha256\": \"ab\"}}", "MANIFEST.json entry for 'model.safetensors' is malformed"),
    ("DROP rng_0.json", "MANIFEST.json does not list rng_0.json"),
])
def test_malformed_or_incomplete_manifest_marks_the_folder_damaged(tmp_path, uninterrupted, manifest, why):
    assert run_worker(tmp_path, "--kill-at", 13).returncode == -9
    d = tmp_path / "step_00000010"
    if manifest.startswith("DROP"):
        (d / "rng_0.json").write_text("[]")  # tampered, and its entry dropped so no digest catches it
        entries = json.loads((d / "MANIFEST.json").read_text())
        del entries["rng_0.json"]
        (d / "MANIFEST.json").write_text(json.dumps(entries))
    else:
        (d / "MANIFEST.json").write_text(manifest)
    r = run_worker(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"skipping damaged checkpoint {d}: {why}" in r.stdout
    assert "step 5/24" in r.stdout
    assert_same(params(tmp_path), uninterrupted)


# ---------------------------------------------------------------------------------------------- 10
def test_global_checkpoints_names_a_step_or_is_refused(tmp_path):
    g = dict(program.GLOBAL_KEYS, save_model_dir=str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"Global.checkpoints: .*ouput/step_00000005 does not exist"):
        program.checkpoint_location(dict(g, checkpoints=str(tmp_path / "ouput" / "step_00000005")))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no step_<n> checkpoint"):
        program.checkpoint_location(dict(g, checkpoints=str(empty)))
    # a real run, then resume from the step folder named the way tools/eval.py documents it
    data = classification_data()

    def trainer(**kw):
        cfg = ps.RunConfig(use_cuda=False, batch_size=8, log_interval=100, num_epoch=2, save_ckpt_interval=2,
                           keep_checkpoints=10, **kw)
        return ps.Trainer(paddle.nn.Linear(4, 2), cfg, data, loss_fn=paddle.nn.CrossEntropyLoss())

    run = tmp_path / "run"
    trainer(checkpoint_dir=str(run)).finetune()
    assert steps(run) == ["step_00000002", "step_00000004", "step_00000006", "step_00000008", "step_00000010"]
    loc = program.checkpoint_location(dict(g, checkpoints=str(run / "step_00000010")))
    assert loc == {"checkpoint_dir": None, "resume_from": str(run / "step_00000010")}
    t = trainer(**loc)
    assert t.config.checkpoint_dir == str(run)
    assert t.finetune()["steps"] == 10  # resumed at the end: nothing more to do, nothing nested inside
    assert set(os.listdir(run / "step_00000010")) == CKPT_FILES
    with pytest.raises(ps.CheckpointError, match=r"holds newer checkpoints \(step_00000010, step_00000008"):
        trainer(resume_from=str(run / "step_00000006")).finetune()
    assert program.checkpoint_location(dict(g, checkpoints=str(run))) == {"checkpoint_dir": str(run)}


# ---------------------------------------------------------------------------------------------- 11
@needs_mounts
def test_read_only_checkpoint_dir_fails_before_the_first_step(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    script = f"""
mount -t tmpfs -o size=1m,ro tmpfs {ro}
{sys.executable} {WORKER} {ro}/ckpt > {out}/run.out 2> {out}/run.err
echo $? > {out}/run.rc
"""
    r = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "run.rc").read_text().strip() != "0"
    err = (out / "run.err").read_text()
    assert re.search(r"RunConfig.checkpoint_dir '.*ro/ckpt' is not writable \(Read-only file system\)", err), err
    assert "[train]" not in (out / "run.out").read_text()  # no step was taken
