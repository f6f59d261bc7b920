"""RunConfig and Trainer: 1.x defaults, data order, SGD arithmetic, resume, damaged checkpoints, NaN stop,
PaddleHub 2.x protocol models, metrics, logging, best model, data parallel."""
import inspect
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

import paddle_strategy as ps
from paddle_strategy.training.checkpoint_files import verify_dir as _verify_dir

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import trainer_worker  # noqa: E402
from helpers import final_params as params  # noqa: E402
from helpers import run_trainer_worker as run_worker  # noqa: E402


def regression_data(n=20, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32") + 0.3).astype("float32")
    return [(x[i], y[i]) for i in range(n)]


def classification_data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    return [(x[i], y[i]) for i in range(n)]


# ------------------------------------------------------------------------------------------------ RunConfig
def test_runconfig_signature_and_defaults_are_paddlehub_1x(tmp_path):
    hub1x = {"log_interval": 10, "eval_interval": 100, "use_pyreader": True, "use_data_parallel": True,
             "save_ckpt_interval": None, "use_cuda": True, "checkpoint_dir": None, "num_epoch": 1,
             "batch_size": 32, "enable_memory_optim": False, "strategy": None}
    sig = inspect.signature(ps.RunConfig)
    positional = [n for n, p in sig.parameters.items() if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == list(hub1x)  # same order, so positional 1.x calls still work
    assert {n: repr(sig.parameters[n].default) for n in hub1x} == {n: repr(v) for n, v in hub1x.items()}
    cfg = ps.RunConfig()
    for name, value in hub1x.items():
        if name not in ("checkpoint_dir", "strategy"):
            assert getattr(cfg, name) == value, name
    assert re.fullmatch(r"ckpt_\d{14}", cfg.checkpoint_dir)
    # strategy=None is 1.x's DefaultStrategy: Adam, constant 1e-4, nothing else
    s = cfg.strategy
    assert isinstance(s, ps.CombinedStrategy) and s.optimizer_name == "adam" and s.learning_rate == 1e-4
    sched = s.schedule(100)
    assert [sched(t) for t in (0, 50, 99)] == [1e-4] * 3
    assert s.regularization == {"L2": 0.0, "L2SP": 0.0, "weight_decay": 0.0, "L1": 0.0, "no_weight_decay": None}


def test_ignored_arguments_get_one_line_notice(capsys):
    ps.RunConfig()
    assert capsys.readouterr().out == ""
    ps.RunConfig(use_pyreader=False, enable_memory_optim=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "use_pyreader=False" in lines[0] and "ignored" in lines[0]
    assert "enable_memory_optim=True" in lines[1]


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"batch_size": 0}, ValueError, ["RunConfig.batch_size", "0", ">= 1"]),
    ({"num_epoch": 1.5}, TypeError, ["RunConfig.num_epoch", "1.5", "integer"]),
    ({"log_interval": -1}, ValueError, ["RunConfig.log_interval", "-1"]),
    ({"use_cuda": "yes"}, TypeError, ["RunConfig.use_cuda", "'yes'"]),
    ({"strategy": "ulmfit"}, TypeError, ["RunConfig.strategy", "'ulmfit'"]),
])
def test_runconfig_refuses_bad_values(kwargs, exc, words):
    with pytest.raises(exc) as err:
        ps.RunConfig(**kwargs)
    for w in words:
        assert w in str(err.value)


def test_trainer_refuses_bad_input_before_training(tmp_path):
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False)
    model = paddle.nn.Linear(4, 2)
    with pytest.raises(ValueError, match="loss_fn is required"):
        ps.Trainer(model, cfg, classification_data())
    with pytest.raises(ValueError, match=r"unknown metric 'f2'.*Did you mean 'f1'"):
        ps.Trainer(model, cfg, classification_data(), loss_fn=paddle.nn.CrossEntropyLoss(), metrics=["acc", "f2"])
    with pytest.raises(ValueError, match="train_dataset is empty"):
        ps.Trainer(model, cfg, [], loss_fn=paddle.nn.CrossEntropyLoss())
    with pytest.raises(TypeError, match="config must be a RunConfig"):
        ps.Trainer(model, {"batch_size": 4}, classification_data(), loss_fn=paddle.nn.CrossEntropyLoss())
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------------------------------ data order
def test_steps_come_from_data_and_config(tmp_path):
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, num_epoch=3, batch_size=32)
    t = ps.Trainer(paddle.nn.Linear(4, 2), cfg, classification_data(100), loss_fn=paddle.nn.CrossEntropyLoss())
    assert t.steps_per_epoch == 4 and t.max_train_steps == 12  # ceil(100 / 32) = 4 batches (the last has 4)
    assert t.lr_scheduler.steps_per_epoch == 4


def test_global_order_does_not_depend_on_process_count():
    n, b, seed = 50, 4, 7
    one = ps.GlobalBatchSampler(n, 2 * b, nranks=1, rank=0, seed=seed)
    ranks = [ps.GlobalBatchSampler(n, b, nranks=2, rank=r, seed=seed) for r in range(2)]
    for epoch in range(3):
        want = np.random.default_rng([seed, epoch]).permutation(n)
        for s in [one, *ranks]:
            s.set_epoch(epoch)
        singles = list(one)
        assert [i for batch in singles for i in batch] == want.tolist()  # 7 batches of 8, then 2
        assert [len(x) for x in singles] == [8] * 6 + [2]
        pairs = list(zip(*[list(s) for s in ranks]))
        assert len(pairs) == 6  # several processes drop the incomplete last global batch
        assert [r0 + r1 for r0, r1 in pairs] == singles[:6]


def test_skip_resumes_mid_epoch_and_lengths_group_batches():
    s = ps.GlobalBatchSampler(30, 4, seed=1)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, skip=3)
    assert list(s) == full[3:] and len(s) == len(full) - 3
    lengths = np.random.default_rng(0).integers(1, 100, size=200)
    g = ps.GlobalBatchSampler(200, 10, seed=0, lengths=lengths)
    batches = list(g)
    assert sorted(i for b in batches for i in b) == list(range(200))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[np.arange(200)[i:i + 10]]) for i in range(0, 200, 10)])
    assert spread < random_spread / 3


# ------------------------------------------------------------------------------------------------ arithmetic
def test_sgd_trainer_equals_the_update_rule_on_the_global_order(tmp_path):
    """Plain SGD, MSE: w <- w - lr * dL/dw, batches in default_rng([seed, epoch]).permutation order."""
    data = regression_data(20)
    paddle.seed(0)
    model = paddle.nn.Linear(3, 1)
    w, b = model.weight.numpy().astype("float64"), model.bias.numpy().astype("float64")
    lr, bs, seed = 0.1, 8, 5
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, num_epoch=2, batch_size=bs, seed=seed,
                       strategy=ps.CombinedStrategy("sgd", learning_rate=lr), log_interval=100)
    ps.Trainer(model, cfg, data, loss_fn=paddle.nn.MSELoss()).finetune()
    x = np.stack([d[0] for d in data]).astype("float64")
    y = np.stack([d[1] for d in data]).astype("float64")
    for epoch in range(2):
        order = np.random.default_rng([seed, epoch]).permutation(20)
        for s in range(0, 20, bs):
            idx = order[s:s + bs]
            err = x[idx] @ w + b - y[idx]          # MSE = mean(err^2)
            w = w - lr * 2 * x[idx].T @ err / len(idx)
            b = b - lr * 2 * err.mean(axis=0)
    np.testing.assert_allclose(model.weight.numpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.bias.numpy(), b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ resume
def test_killed_run_resumes_mid_epoch_bit_identical(tmp_path, uninterrupted):
    # 60 samples / batch 8 = 8 steps per epoch; checkpoints every 5 steps; killed after update 13, so it
    # resumes from step 10: epoch 1, batch 2 - after block 1 unfroze, with dropout and Adam moments
    r = run_worker(tmp_path, "--kill-at", 13)
    assert r.returncode == -9
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("step_")) == ["step_00000005", "step_00000010"]
    r = run_worker(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[resume] from" in r.stdout and "step 10/24, epoch 1, batch 2" in r.stdout
    got = params(tmp_path)
    assert got.keys() == uninterrupted.keys()
    for k in got:
        assert np.array_equal(got[k], uninterrupted[k]), k


def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, uninterrupted):
    r = run_worker(tmp_path, "--kill-at", 13)
    assert r.returncode == -9
    model_file = tmp_path / "step_00000010" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:100])  # truncated
    r = run_worker(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"skipping damaged checkpoint .*step_00000010: model.safetensors has 100 bytes", r.stdout)
    assert "step 5/24, epoch 0, batch 5" in r.stdout
    got = params(tmp_path)
    for k in got:
        assert np.array_equal(got[k], uninterrupted[k]), k


def test_checkpoint_of_another_model_or_strategy_is_refused(tmp_path):
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8, log_interval=100,
                       strategy=ps.ULMFiTStrategy(learning_rate=1e-3, cut_fraction=0.25, dis_blocks=2, frz_blocks=2))
    data = classification_data()
    ps.Trainer(paddle.nn.Linear(4, 2), cfg, data, loss_fn=paddle.nn.CrossEntropyLoss()).finetune()
    other = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8, log_interval=100,
                         strategy=ps.ULMFiTStrategy(learning_rate=2e-3, cut_fraction=0.25, dis_blocks=2, frz_blocks=2))
    with pytest.raises(ps.CheckpointError, match="different strategy"):
        ps.Trainer(paddle.nn.Linear(4, 2), other, data, loss_fn=paddle.nn.CrossEntropyLoss()).finetune()
    bigger = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.Linear(3, 2))
    with pytest.raises(ps.CheckpointError, match="different model: parameter '0.weight'"):
        ps.Trainer(bigger, cfg, data, loss_fn=paddle.nn.CrossEntropyLoss()).finetune()
    cfg.batch_size = 4
    with pytest.raises(ps.CheckpointError, match="batch_size 8 there, 4 here"):
        ps.Trainer(paddle.nn.Linear(4, 2), cfg, data, loss_fn=paddle.nn.CrossEntropyLoss()).finetune()


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError) as err:
        trainer_worker.main([str(tmp_path), "--nan-at", "8"])
    msg = str(err.value)
    assert "loss is nan at step 8" in msg and "step_00000005" in msg and "intact" in msg
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith("step_")) == ["step_00000005"]
    assert _verify_dir(str(tmp_path / "step_00000005")) is None


# ------------------------------------------------------------------------------------------------ protocols
class HubTask(paddle.nn.Layer):
    """A model following PaddleHub 2.x's task protocol."""

    def __init__(self):
        super().__init__()
        self.body = paddle.nn.Linear(4, 8)
        self.head = paddle.nn.Linear(8, 2)

    def forward(self, x):
        return self.head(paddle.nn.functional.relu(self.body(x)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        acc = float((logits.argmax(-1) == y).astype("float32").mean())
        return {"loss": paddle.nn.functional.cross_entropy(logits, y), "metrics": {"acc": acc}}

    def validation_step(self, batch, batch_idx):
        return self.training_step(batch, batch_idx)


def test_paddlehub_protocol_model_trains_and_evaluates(tmp_path, capsys):
    data = classification_data(40)
    paddle.seed(0)
    model = HubTask()
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8, num_epoch=4, log_interval=5,
                       eval_interval=10, strategy=ps.ULMFiTStrategy(learning_rate=0.05, dis_blocks=2, frz_blocks=2))
    t = ps.Trainer(model, cfg, data[:30], data[30:])
    assert t.lr_scheduler.block_names == [["head.weight", "head.bias"], ["body.weight", "body.bias"]]
    summary = t.finetune_and_eval()
    assert summary["steps"] == 16 and summary["best"]["metric"] == "acc"
    # eval averages the per-batch metrics weighted by batch size (8 + 2): the overall accuracy
    x = paddle.to_tensor(np.stack([d[0] for d in data[30:]]))
    y = np.array([d[1] for d in data[30:]])
    want = float((model(x).argmax(-1).numpy() == y).mean())
    assert t.eval()["acc"] == pytest.approx(want, abs=1e-6)
    out = capsys.readouterr().out
    assert out.count("[train]") == 4 and out.count("[eval]") >= 4


def test_metrics_match_a_hand_worked_confusion_matrix():
    from paddle_strategy.training.metrics import make_metrics
    labels = np.array([1, 1, 0, 0, 1, 0])
    preds = np.array([[0, 1], [1, 0], [1, 0], [0, 1], [0, 1], [1, 0]], dtype="float32")  # 1, 0, 0, 1, 1, 0
    # tp = 2, fn = 1, fp = 1, tn = 2
    want = {"acc": 4 / 6, "precision": 2 / 3, "recall": 2 / 3, "f1": 2 * 2 / (2 * 2 + 1 + 1),
            "matthews": (2 * 2 - 1 * 1) / math.sqrt(3 * 3 * 3 * 3)}
    ms = make_metrics(list(want))
    for m in ms:
        m.update(preds[:4], labels[:4])
        m.update(preds[4:], labels[4:])
    assert {m.name: m.accumulate() for m in ms} == pytest.approx(want)


def test_predict_returns_model_outputs_and_drops_labels(tmp_path):
    data = classification_data(10)
    model = paddle.nn.Linear(4, 2)
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=4)
    t = ps.Trainer(model, cfg, data, loss_fn=paddle.nn.CrossEntropyLoss())
    x = np.stack([d[0] for d in data])
    want = x @ model.weight.numpy() + model.bias.numpy()
    np.testing.assert_allclose(t.predict(data), want, rtol=1e-5, atol=1e-6)          # (x, label): label dropped
    np.testing.assert_allclose(t.predict([(d[0],) for d in data]), want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ logging, best
def test_logged_learning_rates_follow_the_schedule(tmp_path, capsys):
    T, lr, cut, ratio, factor = 12, 0.01, 0.25, 32, 2.6
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=10, num_epoch=3, log_interval=2,
                       strategy=ps.ULMFiTStrategy(learning_rate=lr, cut_fraction=cut, ratio=ratio, dis_blocks=2,
                                                  factor=factor, frz_blocks=1))
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 4), paddle.nn.Linear(4, 2))
    ps.Trainer(model, cfg, classification_data(40), loss_fn=paddle.nn.CrossEntropyLoss()).finetune()

    def stlr(t):  # ULMFiT eq. 3, cut = floor(T * cut_fraction) = 3
        c = 3
        p = t / c if t < c else 1 - (t - c) / (T - c)
        return lr * (1 + p * (ratio - 1)) / ratio
    rows = [json.loads(line) for line in open(tmp_path / "visualization" / "scalars.jsonl")]
    logged = {(r["step"], r["tag"]): r["value"] for r in rows}
    for step in range(2, T + 1, 2):  # the LR of the last update in each window (update step - 1)
        assert logged[(step, "train/lr")] == pytest.approx(stlr(step - 1))
        assert logged[(step, "train/lr_block1")] == pytest.approx(stlr(step - 1) / factor)
    assert capsys.readouterr().out.count("[train]") == T // 2


def test_best_model_is_the_best_evaluation(tmp_path):
    data = classification_data(60)
    paddle.seed(1)
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 2))
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8, num_epoch=3, eval_interval=2,
                       log_interval=100, strategy=ps.CombinedStrategy("sgd", learning_rate=0.5))
    t = ps.Trainer(model, cfg, data[:40], data[40:], loss_fn=paddle.nn.CrossEntropyLoss(), metrics=["acc"])
    summary = t.finetune_and_eval()
    accs = [h["acc"] for h in summary["history"]]
    best = max(accs)
    first_best_step = summary["history"][accs.index(best)]["step"]
    saved = json.load(open(tmp_path / "best_model" / "metrics.json"))
    assert saved["value"] == best and saved["step"] == first_best_step
    model.set_state_dict(ps.load_weights(tmp_path / "best_model"))
    assert t.eval()["acc"] == best
    assert _verify_dir(str(tmp_path / "best_model")) is None


def test_use_cuda_without_a_gpu_says_so_once(tmp_path, capsys, monkeypatch):
    if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        pytest.skip("this machine has a GPU")
    import paddle_strategy.training.trainer as tr
    monkeypatch.setattr(tr, "_said_no_gpu", False)
    for _ in range(2):
        ps.Trainer(paddle.nn.Linear(4, 2), ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=True),
                   classification_data(), loss_fn=paddle.nn.CrossEntropyLoss())
    assert capsys.readouterr().out.count("training on the CPU") == 1


# ------------------------------------------------------------------------------------------------ data parallel
def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path):
    """2 CPU processes (gloo) with batch_size 4 vs 1 process with batch_size 8: same global batches, same
    averaged gradients, so the same final parameters (to float rounding)."""
    one = tmp_path / "one"
    r = run_worker(one, "--batch-size", 8, "--dropout", 0, "--samples", 64)
    assert r.returncode == 0, r.stderr[-2000:]
    two = tmp_path / "two"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--devices", "",
                        "--log_dir", str(tmp_path / "log"), os.path.join(HERE, "trainer_worker.py"), str(two),
                        "--batch-size", "4", "--dropout", "0", "--samples", "64"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    logs = "".join(open(tmp_path / "log" / f).read() for f in sorted(os.listdir(tmp_path / "log")))
    assert r.returncode == 0, (r.stdout + r.stderr + logs)[-3000:]
    a, b = params(one), params(two)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], atol=1e-5, rtol=0, err_msg=k)
    assert "[train]" in open(tmp_path / "log" / "workerlog.0").read()
    assert "[train]" not in open(tmp_path / "log" / "workerlog.1").read()  # rank 0 alone logs


def test_visualdl_gets_the_scalars_when_installed(tmp_path):
    pytest.importorskip("visualdl")  # installed with paddlehub (requirements.txt); scalars.jsonl is always written
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=8, log_interval=1,
                       strategy=ps.ULMFiTStrategy(learning_rate=0.01, cut_fraction=0.25, dis_blocks=2, frz_blocks=1))
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 4), paddle.nn.Linear(4, 2))
    ps.Trainer(model, cfg, classification_data(40), loss_fn=paddle.nn.CrossEntropyLoss()).finetune()
    vis = tmp_path / "visualization"
    records = [f for f in os.listdir(vis) if f.startswith("vdlrecords")]
    assert records and os.path.getsize(vis / records[0]) > 0
    from visualdl import LogReader
    reader = LogReader(file_path=str(vis / records[0]))
    assert {"train/loss", "train/lr", "train/lr_block0", "train/lr_block1"} <= set(reader.get_tags()["scalar"])
    assert [round(r.value, 9) for r in reader.get_data("scalar", "train/lr_block1")][:1] == \
        [round(0.01 / 32 / 2.6, 9)]  # slanted triangle at step 0: lr / ratio, block 1 divided by factor
