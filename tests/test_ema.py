"""EMA of the weights: the formula per update for each decay type (numpy, float64), eval / predict / best_model on
the averaged weights with the raw ones back exactly, checkpoints and resume, the fingerprint."""
import json
import math
import os
import sys

import numpy as np
import paddle
import pytest

import paddle_strategy as ps
from paddle_strategy.training.checkpoint_files import load_tensors

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from helpers import assert_same_params, checkpoint_steps, final_params, run_trainer_worker  # noqa: E402


def regression(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32") + 0.3).astype("float32")
    return [(x[i], y[i]) for i in range(n)]


def decay_at(d, kind, s):
    """PaddleDetection / timm: the decay of the update after s averaged ones."""
    return {"constant": d, "threshold": min(d, (1 + s) / (10 + s)),
            "exponential": d * (1 - math.exp(-(s + 1) / 2000))}[kind]


def trainer_with_trace(tmp, kind, decay=0.9, epochs=2, eval_ds=None, **kw):
    paddle.seed(0)
    model = paddle.nn.Linear(3, 1)
    cfg = ps.RunConfig(checkpoint_dir=str(tmp), use_cuda=False, batch_size=4, num_epoch=epochs, log_interval=100,
                       ema_decay=decay, ema_decay_type=kind, eval_interval=None,
                       strategy=ps.CombinedStrategy(optimizer_name="sgd", learning_rate=0.05), **kw)
    trainer = ps.Trainer(model, cfg, regression(), eval_ds, loss_fn=paddle.nn.MSELoss())
    weights = [{n: p.numpy().astype("float64") for n, p in model.named_parameters()}]  # before training
    trainer.add_hook("run_step_event", "trace", lambda t, info: weights.append(
        {n: p.numpy().astype("float64") for n, p in model.named_parameters()}))
    return trainer, model, weights


def numpy_ema(weights, decay, kind):
    """ema_0 = w_0; ema_{s+1} = d_s ema_s + (1 - d_s) w_{s+1}."""
    ema = dict(weights[0])
    out = [dict(ema)]
    for s, w in enumerate(weights[1:]):
        d = decay_at(decay, kind, s)
        ema = {n: d * ema[n] + (1 - d) * w[n] for n in ema}
        out.append(dict(ema))
    return out


@pytest.mark.parametrize("kind", ["constant", "threshold", "exponential"])
def test_average_follows_the_formula_after_every_update(tmp_path, kind):
    trainer, model, weights = trainer_with_trace(tmp_path, kind)
    trainer.finetune()
    assert len(weights) == 1 + trainer.max_train_steps == 13
    want = numpy_ema(weights, 0.9, kind)[-1]
    got = trainer.ema_state_dict()
    for n in want:
        assert got[n].dtype == paddle.float32
        np.testing.assert_allclose(got[n].numpy(), want[n], rtol=0, atol=1e-6, err_msg=n)
    # the three types really differ at this length (threshold's warm-up, exponential's tiny early decay)
    assert not np.allclose(want["weight"], numpy_ema(weights, 0.9, "constant" if kind != "constant"
                                                     else "threshold")[-1]["weight"], atol=1e-4)


def test_eval_predict_and_best_model_use_the_average_and_put_the_raw_weights_back(tmp_path):
    dev = regression(8, seed=1)
    trainer, model, weights = trainer_with_trace(tmp_path, "constant", decay=0.8, epochs=2, eval_ds=dev)
    trainer.finetune_and_eval()
    emas = numpy_ema(weights, 0.8, "constant")
    raw = {n: p.numpy().copy() for n, p in model.named_parameters()}
    x = np.stack([s[0] for s in dev]).astype("float64")
    y = np.stack([s[1] for s in dev]).astype("float64")
    final = emas[-1]
    want_loss = float(np.mean((x @ final["weight"] + final["bias"] - y) ** 2))
    assert trainer.eval()["loss"] == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(trainer.predict(dev), x @ final["weight"] + final["bias"], rtol=0, atol=1e-5)
    for n, p in model.named_parameters():  # exactly the raw weights again
        assert np.array_equal(p.numpy(), raw[n]), n
    # the best model is the average at the best step (evaluations at each epoch end: steps 6 and 12)
    assert [h["step"] for h in trainer.history] == [6, 12]
    best = json.load(open(tmp_path / "best_model" / "metrics.json"))
    assert best["weights"] == "ema"
    saved = load_tensors(str(tmp_path / "best_model" / "model.safetensors"))
    for n in ("weight", "bias"):
        np.testing.assert_allclose(saved[n], emas[best["step"]][n], rtol=0, atol=1e-6)
    # training continued from the raw weights: the last raw weights are the traced ones, not the average
    np.testing.assert_allclose(raw["weight"], weights[-1]["weight"], atol=0)


def test_batchnorm_statistics_are_the_models_own(tmp_path):
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Linear(3, 4), paddle.nn.BatchNorm1D(4), paddle.nn.Linear(4, 1))
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path), use_cuda=False, batch_size=4, ema_decay=0.5, log_interval=100)
    trainer = ps.Trainer(model, cfg, regression(), loss_fn=paddle.nn.MSELoss())
    trainer.finetune()
    ema = trainer.ema_state_dict()
    state = model.state_dict()
    assert set(ema) == set(state)
    for name in ("1._mean", "1._variance"):
        assert np.array_equal(ema[name].numpy(), state[name].numpy())  # copied, not averaged
    assert not np.array_equal(ema["0.weight"].numpy(), state["0.weight"].numpy())


def test_checkpoint_holds_the_average_and_resume_is_bit_identical(tmp_path):
    ref = tmp_path / "ref"
    r = run_trainer_worker(ref, "--ema", 0.95)
    assert r.returncode == 0, r.stderr[-2000:]
    step = tmp_path / "run"
    r = run_trainer_worker(step, "--ema", 0.95, "--kill-at", 12)
    assert r.returncode == -9
    last = checkpoint_steps(step)[-1]
    assert last == "step_00000010"
    state = json.load(open(step / last / "trainer_state.json"))
    assert state["ema_updates"] == 10
    assert set(load_tensors(str(step / last / "ema.safetensors"))) == set(final_params(ref))
    r = run_trainer_worker(step, "--ema", 0.95)
    assert r.returncode == 0, r.stderr[-2000:]
    assert_same_params(final_params(step), final_params(ref))
    assert_same_params(dict(np.load(step / "ema.npz")), dict(np.load(ref / "ema.npz")))


@pytest.mark.parametrize("first, second", [(None, 0.9), (0.9, None), (0.9, 0.99)])
def test_a_checkpoint_of_another_ema_setting_is_refused(tmp_path, first, second):
    trainer, _, _ = trainer_with_trace(tmp_path, "constant", decay=first, epochs=1)
    trainer.finetune()
    again, _, _ = trainer_with_trace(tmp_path, "constant", decay=second, epochs=1)
    with pytest.raises(ps.CheckpointError, match="ema_decay") as err:
        again.finetune()
    assert str(first if first is not None else "no weight average") in str(err.value)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"ema_decay": 1.0}, ValueError, ["RunConfig.ema_decay", "(0, 1)"]),
    ({"ema_decay": 0}, ValueError, ["RunConfig.ema_decay"]),
    ({"ema_decay": "0.9"}, TypeError, ["RunConfig.ema_decay"]),
    ({"ema_decay": 0.9, "ema_decay_type": "threshhold"}, ValueError, ["ema_decay_type", "did you mean 'threshold'"]),
])
def test_ema_settings_are_checked(kwargs, exc, words):
    with pytest.raises(exc) as err:
        ps.RunConfig(**kwargs)
    for w in words:
        assert w.lower() in str(err.value).lower()


def test_ema_state_dict_without_ema_or_before_training_says_why(tmp_path):
    trainer, _, _ = trainer_with_trace(tmp_path, "constant", decay=None)
    with pytest.raises(ValueError, match="ema_decay is None"):
        trainer.ema_state_dict()
    trainer, _, _ = trainer_with_trace(tmp_path / "b", "constant", decay=0.9)
    with pytest.raises(ValueError, match="starts with training"):
        trainer.ema_state_dict()
