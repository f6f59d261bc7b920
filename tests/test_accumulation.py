"""Gradient accumulation: k micro-batches make one optimizer update equal to one batch of all their samples;
every step count counts updates; a kill or a signal at any micro-batch resumes bit-identically."""
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest

import paddle_strategy as ps

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from helpers import assert_same_params, checkpoint_steps, final_params, run_trainer_worker  # noqa: E402


def data(n, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 2] > 0).astype("int64")
    return [(x[i], y[i]) for i in range(n)]


def net(seed=0):
    paddle.seed(seed)
    return paddle.nn.Sequential(paddle.nn.Linear(6, 16), paddle.nn.ReLU(), paddle.nn.Linear(16, 16),
                                paddle.nn.ReLU(), paddle.nn.Linear(16, 2))


def full_strategy():
    """Warmup + linear decay, 3 discriminative blocks, gradual unfreezing, L2-SP and a global-norm clip."""
    return ps.CombinedStrategy(
        optimizer_name="adam", learning_rate=0.02,
        scheduler={"warmup": 0.2, "linear_decay": {"start_point": 0.4, "end_learning_rate": 0.0},
                   "discriminative": {"blocks": 3, "factor": 2.0}, "gradual_unfreeze": 3},
        regularization={"L2SP": 0.05}, clip={"GlobalNorm": 0.5})


def train(tmp, batch_size, k, samples, epochs=3, **kwargs):
    model = net()
    cfg = ps.RunConfig(log_interval=100, checkpoint_dir=str(tmp), use_cuda=False, num_epoch=epochs,
                       batch_size=batch_size, strategy=full_strategy(), seed=5, gradient_accumulation_steps=k,
                       **kwargs)
    trainer = ps.Trainer(model, cfg, samples, loss_fn=paddle.nn.CrossEntropyLoss())
    trainer.finetune()
    return trainer, {n: p.numpy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("n", [64, 58])  # 58 samples: 15 batches of 4, the last of 2; groups of 16, 16, 16, 10
def test_four_micro_batches_equal_one_batch_of_their_samples(tmp_path, n):
    samples = data(n)
    small, got = train(tmp_path / "k4", 4, 4, samples)
    big, want = train(tmp_path / "k1", 16, 1, samples)
    assert small.batches_per_epoch == -(-n // 4) and big.batches_per_epoch == -(-n // 16)
    assert small.steps_per_epoch == big.steps_per_epoch == -(-n // 16)  # updates: ceil(batches / k)
    assert small.max_train_steps == big.max_train_steps == 3 * -(-n // 16)
    assert small.global_step == big.global_step == small.max_train_steps
    assert small.lr_scheduler.last_epoch == big.lr_scheduler.last_epoch  # the schedule counted updates
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=2e-6, err_msg=name)
    # unfreezing happened per update-epoch: the deepest block moved in both runs (it trains from epoch 2)
    assert not np.allclose(got["0.weight"], net()[0].weight.numpy())


def test_sgd_update_is_the_mean_gradient_of_the_group_short_group_included(tmp_path):
    """Linear regression, plain SGD, one epoch of 10 samples, batch 3, k=2: groups {3+3} and {3+1} samples.
    Each update is lr x the gradient of the mean squared error over exactly the group's samples (numpy)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 3)).astype("float32")
    y = rng.normal(size=(10, 1)).astype("float32")
    samples = [(x[i], y[i]) for i in range(10)]
    paddle.seed(0)
    model = paddle.nn.Linear(3, 1)
    w, b = model.weight.numpy().astype("float64"), model.bias.numpy().astype("float64")
    lr = 0.1
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=3, shuffle=False,
                       gradient_accumulation_steps=2,
                       strategy=ps.CombinedStrategy(optimizer_name="sgd", learning_rate=lr))
    trainer = ps.Trainer(model, cfg, samples, loss_fn=paddle.nn.MSELoss())
    assert trainer.max_train_steps == 2
    trainer.finetune()
    for rows in (range(0, 6), range(6, 10)):  # shuffle=False: the groups are samples 0-5, then 6-9
        xs, ys = x[list(rows)].astype("float64"), y[list(rows)].astype("float64")
        residual = xs @ w + b - ys
        w = w - lr * 2 * xs.T @ residual / len(rows)
        b = b - lr * 2 * residual.mean(axis=0)
    np.testing.assert_allclose(model.weight.numpy(), w, rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.bias.numpy(), b, rtol=0, atol=1e-6)


def test_intervals_and_checkpoints_count_updates(tmp_path, capsys):
    seen = []
    cfg = ps.RunConfig(log_interval=2, eval_interval=3, save_ckpt_interval=4, checkpoint_dir=str(tmp_path),
                       use_cuda=False, batch_size=4, num_epoch=2, gradient_accumulation_steps=3, keep_checkpoints=10)
    samples = data(44)  # 36 to train: 9 batches of 4 -> 3 updates of 3 batches (12 samples) an epoch, 6 in all
    trainer = ps.Trainer(net(), cfg, samples[:36], samples[36:], loss_fn=paddle.nn.CrossEntropyLoss())
    assert (trainer.batches_per_epoch, trainer.steps_per_epoch, trainer.max_train_steps) == (9, 3, 6)
    trainer.add_hook("run_step_event", "record", lambda t, info: seen.append((info["step"], info["micro_batches"],
                                                                              info["samples"])))
    trainer.finetune_and_eval()
    assert seen == [(1, 3, 12), (2, 3, 12), (3, 3, 12), (4, 3, 12), (5, 3, 12), (6, 3, 12)]
    out = capsys.readouterr().out
    assert [int(s) for s in __import__("re").findall(r"\[train\] epoch \d/2 step (\d)/6", out)] == [2, 4, 6]
    evals = [h["step"] for h in trainer.history]
    assert evals == [3, 6]  # every 3 updates; the epoch ends (3, 6) coincide with them
    assert checkpoint_steps(tmp_path) == ["step_00000004", "step_00000006"]


def test_nonfinite_loss_in_a_micro_batch_names_the_update_and_the_micro_batch(tmp_path):
    calls = {"n": 0}
    ce = paddle.nn.CrossEntropyLoss()

    def loss_fn(out, label):
        calls["n"] += 1
        loss = ce(out, label)
        return loss * float("nan") if calls["n"] == 6 else loss

    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=4, gradient_accumulation_steps=4,
                       save_ckpt_interval=1, shuffle=False)
    model = net()
    trainer = ps.Trainer(model, cfg, data(64), loss_fn=loss_fn)
    with pytest.raises(FloatingPointError) as err:
        trainer.finetune()
    msg = str(err.value)
    # call 6 = update 2, its micro-batch 2 of 4 (batch 5 of the epoch)
    assert "loss is nan at step 2" in msg and "micro-batch 2 of 4: batch 5" in msg
    assert "training stopped before that update" in msg and "step_00000001" in msg
    assert checkpoint_steps(tmp_path) == ["step_00000001"]


def test_changing_k_on_resume_is_refused_naming_it(tmp_path):
    samples = data(32)
    train(tmp_path, 4, 2, samples, epochs=1)
    model = net()
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, num_epoch=1, batch_size=4,
                       strategy=full_strategy(), seed=5, gradient_accumulation_steps=1, log_interval=100)
    trainer = ps.Trainer(model, cfg, samples, loss_fn=paddle.nn.CrossEntropyLoss())
    with pytest.raises(ps.CheckpointError, match="gradient_accumulation_steps 2 there, 1 here"):
        trainer.finetune()


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (2.0, TypeError), (True, TypeError), ("4", TypeError)])
def test_accumulation_steps_are_checked(bad, exc):
    with pytest.raises(exc, match="RunConfig.gradient_accumulation_steps"):
        ps.RunConfig(gradient_accumulation_steps=bad)


# ------------------------------------------------------------------------------------------ real processes
@pytest.fixture(scope="module")
def uninterrupted_k2(tmp_path_factory):
    out = tmp_path_factory.mktemp("k2")
    r = run_trainer_worker(out, "--accum", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    return final_params(out)


@pytest.mark.parametrize("call", [19, 22])  # loss call 2u-1 / 2u: micro-batch 1 of update 10; 2 of update 11
def test_sigkill_inside_an_update_resumes_bit_identically(tmp_path, uninterrupted_k2, call):
    """60 samples, batch 8: 8 batches an epoch, k=2: 4 updates an epoch, checkpoints every 5 updates."""
    r = run_trainer_worker(tmp_path, "--accum", 2, "--kill-at-call", call)
    assert r.returncode == -9, r.stderr[-2000:]
    want_ckpt = "step_00000005" if call == 19 else "step_00000010"
    assert checkpoint_steps(tmp_path)[-1] == want_ckpt  # never a partial group
    r = run_trainer_worker(tmp_path, "--accum", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"[resume] from {os.path.join(str(tmp_path), want_ckpt)}" in r.stdout
    assert_same_params(final_params(tmp_path), uninterrupted_k2)


def test_sigterm_inside_an_update_finishes_it_then_stops_and_resumes(tmp_path, uninterrupted_k2):
    r = run_trainer_worker(tmp_path, "--accum", 2, "--term-at-call", 13)  # micro-batch 1 of update 7
    assert r.returncode == 143, r.stderr[-2000:]
    assert "[stop] SIGTERM: training stopped after step 7/12" in r.stdout
    assert checkpoint_steps(tmp_path)[-1] == "step_00000007"
    state = json.load(open(tmp_path / "step_00000007" / "trainer_state.json"))
    assert (state["epoch"], state["batch_in_epoch"]) == (1, 6)  # 7 updates = 1 epoch + 3 groups of 2 batches
    r = run_trainer_worker(tmp_path, "--accum", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_same_params(final_params(tmp_path), uninterrupted_k2)


def test_two_processes_average_once_per_update(tmp_path):
    """2 processes x batch 2 x k=2 equal 1 process x batch 8 (the same global batches), and make exactly as many
    all_reduce calls as 2 processes x batch 4 x k=1 taking the same number of updates."""
    one = tmp_path / "one"
    r = run_trainer_worker(one, "--batch-size", 8, "--dropout", 0, "--samples", 64)
    assert r.returncode == 0, r.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    counts = {}
    for k, b in ((2, 2), (1, 4)):
        out = tmp_path / f"k{k}"
        r = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--devices",
                            "", "--log_dir", str(tmp_path / f"log{k}"), os.path.join(HERE, "trainer_worker.py"),
                            str(out), "--batch-size", str(b), "--dropout", "0", "--samples", "64", "--accum", str(k),
                            "--count-allreduce"], capture_output=True, text=True, timeout=300, env=env,
                           cwd=str(tmp_path))
        logs = "".join(open(tmp_path / f"log{k}" / f).read() for f in sorted(os.listdir(tmp_path / f"log{k}")))
        assert r.returncode == 0, (r.stdout + r.stderr + logs)[-3000:]
        counts[k] = [json.load(open(out / f"allreduce_{rank}.json")) for rank in (0, 1)]
    want = final_params(one)
    got = final_params(tmp_path / "k2")
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=0, err_msg=name)
    assert counts[2] == counts[1]
    updates = counts[2][0]["updates"]
    # hooks run on every process, each seeing its own rank
    assert [(c["run_step_hooks"], c["hook_ranks"]) for c in counts[2]] == [(updates, [0]), (updates, [1])]
    assert updates == 24  # 64 samples / (2 x 2 x 2) = 8 updates an epoch, 3 epochs
    # one gradient all_reduce and one stop-flag all_reduce per update, plus a few per run (lock, epochs)
    assert 2 * updates <= counts[2][0]["all_reduce"] <= 2 * updates + 8
