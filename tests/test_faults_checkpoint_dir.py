"""Issue 20, items 1-7: what the Trainer writes in checkpoint_dir follows no link; a folder's name must match its
content; every part of a checkpoint is checked against the run before any of it is used (one that does not fit
or does not parse is damaged, and the next older one is tried); a full disk while logging names the file once;
pruning killed half-way is finished at the next start; scalars are not repeated after a resume; the evaluation
history in a checkpoint stays bounded. Real files, real links, real kills, a real full tmpfs."""
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from paddle_strategy.training import checkpoint_files
from paddle_strategy.training.checkpoint_files import verify_dir

from helpers import assert_same_params as assert_same
from helpers import checkpoint_steps as steps
from helpers import final_params as params
from helpers import run_trainer_worker as run_worker
from helpers import seal
from helpers import needs_mounts

import trainer_worker

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainer_worker.py")

@pytest.fixture(scope="module")
def killed_at_13(tmp_path_factory):
    """trainer_worker's run SIGKILLed after update 13: checkpoints of steps 5 and 10 (copy it, then tamper)."""
    out = tmp_path_factory.mktemp("killed_at_13")
    assert run_worker(out, "--kill-at", 13).returncode == -9
    assert steps(out) == ["step_00000005", "step_00000010"]
    return out


def copy_of(run, tmp_path):
    d = tmp_path / "ckpt"
    shutil.copytree(run, d, symlinks=True)
    return d


# ---------------------------------------------------------------------------------------------- 1 links
@pytest.mark.parametrize("how", ["symlink", "hardlink"])
def test_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path, how):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    ck = tmp_path / "ckpt"
    ck.mkdir()
    os.symlink(notes, ck / ".lock") if how == "symlink" else os.link(notes, ck / ".lock")
    r = run_worker(ck)
    assert r.returncode != 0
    assert notes.read_text() == "my notes\n"  # before: "pid ... since ..."
    what = "is a symbolic link" if how == "symlink" else "has 2 hard links"
    assert f"{ck / '.lock'} {what}" in r.stderr, r.stderr[-2000:]
    assert "[train]" not in r.stdout and steps(ck) == []  # refused before the first step


@pytest.mark.parametrize("planted", ["directory", "file"])
def test_a_planted_visualization_link_is_refused_and_nothing_written_through_it(tmp_path, planted):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "scalars.jsonl").write_text("theirs\n")
    ck = tmp_path / "ckpt"
    ck.mkdir()
    if planted == "directory":
        os.symlink(outside, ck / "visualization")
        link = ck / "visualization"
    else:
        (ck / "visualization").mkdir()
        os.symlink(outside / "scalars.jsonl", ck / "visualization" / "scalars.jsonl")
        link = ck / "visualization" / "scalars.jsonl"
    r = run_worker(ck)
    assert r.returncode != 0
    assert sorted(os.listdir(outside)) == ["scalars.jsonl"] and (outside / "scalars.jsonl").read_text() == "theirs\n"
    assert f"{link} is a symbolic link" in r.stderr, r.stderr[-2000:]
    assert "[train]" not in r.stdout  # refused at the start, not at the first log line


def test_a_checkpoint_dir_that_is_itself_a_link_is_the_users_choice(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "ckpt")
    r = run_worker(tmp_path / "ckpt", "--epochs", 1)
    assert r.returncode == 0, r.stderr[-2000:]
    assert steps(real) == ["step_00000005", "step_00000008"]
    assert (real / "visualization" / "scalars.jsonl").stat().st_size > 0


def test_a_directory_being_written_is_private_until_sealed(tmp_path):
    """Files of a checkpoint are written by libraries that follow links (safetensors): nobody but the owner
    may create entries in the directory while they are written; once sealed it has the umask's mode."""
    seen = {}

    def write(tmp):
        seen["mode"] = os.stat(tmp).st_mode & 0o777
        with open(os.path.join(tmp, "a.json"), "w") as f:
            f.write("{}")
    old = os.umask(0o002)  # a group-shared set-up
    try:
        checkpoint_files.write_atomic_dir(str(tmp_path / "step_00000001"), write)
    finally:
        os.umask(old)
    assert seen["mode"] == 0o700
    assert os.stat(tmp_path / "step_00000001").st_mode & 0o777 == 0o775
    assert verify_dir(str(tmp_path / "step_00000001")) is None


def test_a_linked_file_inside_a_checkpoint_marks_it_damaged(tmp_path, killed_at_13, uninterrupted):
    ck = copy_of(killed_at_13, tmp_path)
    d = ck / "step_00000010"
    shutil.copy(d / "rng_0.json", tmp_path / "rng_0.json")
    os.remove(d / "rng_0.json")
    os.symlink(tmp_path / "rng_0.json", d / "rng_0.json")  # same bytes: only the link is wrong
    r = run_worker(ck)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"skipping damaged checkpoint {d}: rng_0.json is a symbolic link" in r.stdout
    assert "step 5/24" in r.stdout
    assert_same(params(ck), uninterrupted)


# ---------------------------------------------------------------------------------------------- 2 names
@pytest.mark.parametrize("how", ["copy", "link"])
def test_a_folder_named_newer_than_its_content_is_damaged_and_never_prunes(tmp_path, killed_at_13, uninterrupted,
                                                                            how):
    ck = copy_of(killed_at_13, tmp_path)
    if how == "copy":
        shutil.copytree(ck / "step_00000010", ck / "step_00000099")
        why = "named step_00000099, but it holds the checkpoint of step 10"
    else:
        os.symlink("step_00000010", ck / "step_00000099")
        why = "a symbolic link"
    r = run_worker(ck, "--keep", 1)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"skipping damaged checkpoint {ck / 'step_00000099'}: {why}" in r.stdout
    assert "[resume] from" in r.stdout and "step 10/24" in r.stdout
    # before: the step 15, 20, 24 checkpoints were each deleted right after being written
    assert steps(ck) == ["step_00000024", "step_00000099"]
    assert re.search(r"\[done\] 24 steps; checkpoint .*step_00000024", r.stdout)
    assert_same(params(ck), uninterrupted)
    again = run_worker(ck, "--keep", 1)
    assert again.returncode == 0 and "already holds the end of training" in again.stdout


# ---------------------------------------------------------------------------------------------- 3, 4 content
def _tensors(d, name, change):
    arrays = load_file(str(d / name))
    change(arrays)
    save_file(arrays, str(d / name))


def _json(d, name, change):
    with open(d / name) as f:
        value = json.load(f)
    change(value)
    with open(d / name, "w") as f:
        json.dump(value, f)


def _raw(d, name, data):
    (d / name).write_bytes(data)


def _deep(n=100_000):
    return ("[" * n + "]" * n).encode()


def _header_length(d, length):
    data = (d / "model.safetensors").read_bytes()
    _raw(d, "model.safetensors", struct.pack("<Q", length) + data[8:])


TAMPER = {  # name: (change to step_00000010, what the skip line must say), each resealed unless said otherwise
    # 3: parses, does not fit
    "weight_of_another_shape": (lambda d: _tensors(d, "model.safetensors", lambda a: a.update(
        {"3.weight": np.ascontiguousarray(a["3.weight"][:, :8])})),
        "model.safetensors: '3.weight' is float32 [16, 8], the model's is float32 [16, 16]"),
    "missing_tensor": (lambda d: _tensors(d, "model.safetensors", lambda a: a.pop("5.bias")),
                       "model.safetensors lacks '5.bias'"),
    "unexpected_tensor": (lambda d: _tensors(d, "model.safetensors", lambda a: a.update(
        {"9.weight": np.zeros(2, "float32")})), "model.safetensors has '9.weight', which the model has not"),
    "junk_paddle_generator": (lambda d: _json(d, "rng_0.json", lambda r: r["paddle"].__setitem__(0, [1, 2, 3])),
                              "rng_0.json: Paddle generator 0 is not a state this run can restore"),
    "epoch_99": (lambda d: _json(d, "trainer_state.json", lambda s: s.update(epoch=99)),
                 "trainer_state.json: epoch 99 is outside 0..3"),
    "epoch_off_by_one": (lambda d: _json(d, "trainer_state.json", lambda s: s.update(epoch=2)),
                         "trainer_state.json: epoch 2, batch_in_epoch 2 do not match global_step 10 (epoch 1, "
                         "batch 2)"),
    "negative_step": (lambda d: _json(d, "trainer_state.json", lambda s: s.update(global_step=-5)),
                      "trainer_state.json: global_step -5 is outside 1..24"),
    "step_beyond_the_run": (lambda d: _json(d, "trainer_state.json", lambda s: s.update(global_step=25)),
                            "trainer_state.json: global_step 25 is outside 1..24"),
    # 4: does not parse, or parses into the wrong types
    "header_length_2_62": (lambda d: _header_length(d, 2 ** 62),
                           "model.safetensors: the header length 4611686018427387904 exceeds the file"),
    "header_100_mb": (lambda d: _header_length(d, 100_000_001),
                      "model.safetensors: the header length 100000001 exceeds"),
    "pickle": (lambda d: _raw(d, "model.safetensors", pickle.dumps({"0.weight": [0.0] * 100})),
               "model.safetensors: the header length"),
    "header_not_json": (lambda d: _raw(d, "model.safetensors", struct.pack("<Q", 12) + b'{"0.weight":' + b"\0" * 8),
                        "model.safetensors: not a safetensors file (SafetensorError"),
    "state_nested_100000_deep": (lambda d: _raw(d, "trainer_state.json", _deep()),
                                 "trainer_state.json is nested more than 100 levels deep"),
    "manifest_nested_100000_deep": (lambda d: _raw(d, "MANIFEST.json", _deep()),
                                    "MANIFEST.json is nested more than 100 levels deep"),
    "float64_weights": (lambda d: _tensors(d, "model.safetensors", lambda a: a.update(
        {k: v.astype("float64") for k, v in a.items()})),
        "model.safetensors: '0.weight' is float64 [6, 16], the model's is float32 [6, 16]"),
    "accumulator_7x7": (lambda d: _tensors(d, "optimizer.safetensors", lambda a: a.update(
        {"3.weight/moment1": np.zeros((7, 7), "float32")})),
        "optimizer.safetensors: '3.weight/moment1' is float32 [7, 7], the optimizer's is float32 [16, 16]"),
    "step_12_5": (lambda d: _json(d, "trainer_state.json", lambda s: s.update(global_step=12.5)),
                  "trainer_state.json: global_step is 12.5, not an integer"),
    "step_as_text": (lambda d: _json(d, "trainer_state.json", lambda s: s.update(global_step="12")),
                     "trainer_state.json: global_step is '12', not an integer"),
    "scheduler_without_last_lr": (lambda d: _json(d, "trainer_state.json", lambda s: s["scheduler"].pop("last_lr")),
                                  "trainer_state.json: scheduler lacks 'last_lr'"),
    "numpy_state_wrong_size": (lambda d: _json(d, "rng_0.json", lambda r: r["numpy"].__setitem__(
        1, r["numpy"][1][:600])), "rng_0.json: the NumPy state cannot be restored"),
    "python_state_wrong_size": (lambda d: _json(d, "rng_0.json", lambda r: r["python"].__setitem__(1, [1, 2])),
                                "rng_0.json: the Python state cannot be restored"),
    "nan_adam_moment": (lambda d: _tensors(d, "optimizer.safetensors", lambda a: a["0.weight/moment2"].__setitem__(
        (0, 0), np.nan)), "optimizer.safetensors: optimizer state '0.weight/moment2' holds NaN or inf"),
    "best_of_wrong_type": (lambda d: _json(d, "trainer_state.json", lambda s: s.update(best="x")),
                           "trainer_state.json: best is 'x', not null or a mapping"),
}


@pytest.mark.parametrize("case", list(TAMPER))
def test_a_sealed_checkpoint_that_does_not_fit_or_parse_is_skipped(tmp_path, killed_at_13, uninterrupted, capsys,
                                                                   case):
    """Before: resumed with parameters silently at their initial values, a different RNG stream, at the end of
    training, or crashed at every rerun (SafetensorError, RecursionError, AssertionError, TypeError, ...)."""
    ck = copy_of(killed_at_13, tmp_path)
    d = ck / "step_00000010"
    change, why = TAMPER[case]
    change(d)
    if case != "manifest_nested_100000_deep":
        seal(d)
    trainer_worker.main([str(ck)])
    out = capsys.readouterr().out
    assert f"skipping damaged checkpoint {d}: {why}" in out, out[-3000:]
    assert "step 5/24" in out
    assert_same(params(ck), uninterrupted)


# ---------------------------------------------------------------------------------------------- 5 full disk
@needs_mounts
def test_a_full_disk_while_logging_names_the_file_once(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    ck = disk / "ckpt"
    script = f"""
mount -t tmpfs -o size=2m tmpfs {disk}
{sys.executable} {WORKER} {ck} --fill-disk-at 3 > {out}/run.out 2> {out}/run.err
echo $? > {out}/run.rc
"""
    r = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "run.rc").read_text().strip() != "0"
    err = (out / "run.err").read_text()
    assert f"{ck / 'visualization' / 'scalars.jsonl'}: No space left on device" in err, err[-3000:]
    assert err.count("Traceback") == 1, err[-5000:]  # before: three chained tracebacks, none naming the file


# ---------------------------------------------------------------------------------------------- 6 kill in pruning
def test_a_kill_in_the_middle_of_pruning_is_finished_at_the_next_start(tmp_path, uninterrupted):
    r = run_worker(tmp_path, "--kill-in-prune")
    assert r.returncode == -9  # at step 20: step_00000005 half removed
    r = run_worker(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "damaged" not in r.stdout  # before: the half-removed folder was reported and kept for ever
    assert re.search(r"\[checkpoint\] finished removing step_00000005 \(pruned\)", r.stdout), r.stdout[-2000:]
    assert sorted(os.listdir(tmp_path)) == [".lock", "final.npz", "step_00000015", "step_00000020", "step_00000024",
                                            "visualization"]
    assert_same(params(tmp_path), uninterrupted)


# ---------------------------------------------------------------------------------------------- 7 cosmetic
def test_planted_leftover_links_are_removed_once_and_their_targets_kept(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("theirs")
    ck = tmp_path / "ckpt"
    ck.mkdir()
    names = [".tmp-step_00000005-1-abcdef01", ".old-best_model-1-abcdef01", ".rng-00000005", ".del-step_00000005-1-ab"]
    for name in names:
        os.symlink(outside, ck / name)
    r = run_worker(ck, "--epochs", 1)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in names:
        assert f"removed the link {name}" in r.stdout
        assert not os.path.lexists(ck / name)
    assert sorted(os.listdir(outside)) == ["keep.txt"] and (outside / "keep.txt").read_text() == "theirs"
    again = run_worker(ck, "--epochs", 1)  # before: "removed ..." at every start, the links still there
    assert again.returncode == 0 and "removed" not in again.stdout


def test_scalars_are_not_repeated_after_a_resume(tmp_path, uninterrupted):
    ref = tmp_path / "ref"
    assert run_worker(ref).returncode == 0
    run = tmp_path / "run"
    assert run_worker(run, "--kill-at", 13).returncode == -9  # logged step 12, checkpoint of step 10
    r = run_worker(run)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[resume] removed 5 scalar line(s) logged after step 10" in r.stdout, r.stdout[-2000:]
    def logged(out):
        with open(out / "visualization" / "scalars.jsonl") as f:
            return [(line["step"], line["tag"]) for line in map(json.loads, f)]
    assert logged(run) == logged(ref)  # before: step 12 twice (the values differ: its window began at the resume)


def test_the_evaluation_history_in_a_checkpoint_is_bounded(tmp_path, monkeypatch, capsys):
    from paddle_strategy.training import checkpoints
    monkeypatch.setattr(checkpoints, "KEPT_EVALUATIONS", 3)
    trainer_worker.main([str(tmp_path), "--eval"])  # 40 samples: 5 updates an epoch, evaluations at 4, 5, 8, ...
    for name in steps(tmp_path):
        with open(tmp_path / name / "trainer_state.json") as f:
            state = json.load(f)
        assert len(state["history"]) == min(3, len([s for s in (4, 5, 8, 10, 12, 15) if s <= state["global_step"]]))
        assert [h["step"] for h in state["history"]] == sorted(h["step"] for h in state["history"])
    with open(tmp_path / "step_00000015" / "trainer_state.json") as f:
        assert [h["step"] for h in json.load(f)["history"]] == [10, 12, 15]
