"""Mixed precision: checked settings; on a CPU one line and float32 training identical to use_amp=False; on a
GPU (skipped without CUDA; tools/gpu_check.sh runs them) auto_cast + GradScaler with unscale before the finite
check and the clip, overflow skips that do not advance the schedule, the scaler's state in checkpoints."""
import json
import os

import numpy as np
import paddle
import pytest

import paddle_strategy as ps

HAS_GPU = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU (run tools/gpu_check.sh on a GPU machine)")


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] - x[:, 3] > 0).astype("int64")
    return [(x[i], y[i]) for i in range(n)]


def run(tmp, strategy=None, epochs=2, **kw):
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Linear(8, 32), paddle.nn.ReLU(), paddle.nn.Linear(32, 2))
    cfg = ps.RunConfig(checkpoint_dir=str(tmp), batch_size=8, num_epoch=epochs, log_interval=3, seed=1,
                       strategy=strategy or ps.CombinedStrategy(optimizer_name="adam", learning_rate=0.01), **kw)
    trainer = ps.Trainer(model, cfg, data(), loss_fn=paddle.nn.CrossEntropyLoss())
    trainer.finetune()
    return trainer, {n: p.numpy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("kwargs, exc, key", [
    ({"use_amp": "yes"}, TypeError, "RunConfig.use_amp"),
    ({"amp_dtype": "fp16"}, ValueError, "RunConfig.amp_dtype"),
    ({"amp_level": "O3"}, ValueError, "RunConfig.amp_level"),
    ({"scale_loss": 0}, ValueError, "RunConfig.scale_loss"),
    ({"use_dynamic_loss_scaling": 1}, TypeError, "RunConfig.use_dynamic_loss_scaling"),
    ({"amp_custom_black_list": "softmax"}, TypeError, "RunConfig.amp_custom_black_list"),
    ({"amp_custom_white_list": [""]}, TypeError, "RunConfig.amp_custom_white_list[0]"),
    ({"save_final_checkpoint": None}, TypeError, "RunConfig.save_final_checkpoint"),
])
def test_amp_settings_are_checked(kwargs, exc, key):
    with pytest.raises(exc) as err:
        ps.RunConfig(**kwargs)
    assert key in str(err.value)


@pytest.mark.skipif(HAS_GPU, reason="the CPU behaviour")
def test_on_a_cpu_amp_says_so_once_and_trains_exactly_as_float32(tmp_path, capsys, monkeypatch):
    from paddle_strategy.training import precision
    monkeypatch.setattr(precision, "_said_cpu", False)
    _, plain = run(tmp_path / "plain", use_cuda=False)
    capsys.readouterr()
    trainer, amp = run(tmp_path / "amp", use_cuda=False, use_amp=True, amp_level="O2", amp_dtype="bfloat16")
    out = capsys.readouterr().out
    assert out.count("use_amp=True: training on the CPU") == 1 and "float32" in out
    assert trainer.amp.scaler is None and trainer.amp.skipped == 0
    for name in plain:
        assert np.array_equal(amp[name], plain[name]), name
    run(tmp_path / "again", use_cuda=False, use_amp=True)
    assert "use_amp=True" not in capsys.readouterr().out  # said once per process


# ------------------------------------------------------------------------------------------------ GPU only
@gpu
def test_gpu_float16_o1_trains_and_keeps_the_scaler_state_in_checkpoints(tmp_path):
    trainer, params = run(tmp_path, use_cuda=True, use_amp=True, save_ckpt_interval=4)
    assert trainer.device.startswith("gpu") and trainer.amp.scaler is not None
    assert all(np.isfinite(v).all() for v in params.values())
    state = json.load(open(os.path.join(trainer._latest_checkpoint_name(), "trainer_state.json")))
    saved = state["amp"]["scaler"]
    assert saved["scale"][0] == pytest.approx(float(trainer.amp.scaler.state_dict()["scale"][0]))
    again, _ = run(tmp_path, use_cuda=True, use_amp=True, save_ckpt_interval=4)  # resumes at the end
    assert float(again.amp.scaler.state_dict()["scale"][0]) == pytest.approx(saved["scale"][0])


@gpu
def test_gpu_gradients_are_unscaled_before_the_clip(tmp_path):
    """SGD with a global-norm clip of 0.5: one update with float16 AMP moves the weights like the float32 update
    (1e-2); clipping the *scaled* gradient (norm ~65536x) and unscaling after would move them ~65536x less."""
    strategy = ps.CombinedStrategy(optimizer_name="sgd", learning_rate=0.5, clip={"GlobalNorm": 0.5})
    paddle.seed(0)
    start = {n: p.numpy() for n, p in paddle.nn.Sequential(paddle.nn.Linear(8, 32), paddle.nn.ReLU(),
                                                           paddle.nn.Linear(32, 2)).named_parameters()}
    _, f32 = run(tmp_path / "a", strategy=strategy, epochs=1, use_cuda=True)
    _, f16 = run(tmp_path / "b", strategy=strategy, epochs=1, use_cuda=True, use_amp=True,
                 use_dynamic_loss_scaling=False)
    for n in start:
        moved32, moved16 = f32[n] - start[n], f16[n] - start[n]
        np.testing.assert_allclose(moved16, moved32, rtol=5e-2, atol=5e-3, err_msg=n)


@gpu
def test_gpu_overflow_skips_do_not_advance_the_schedule_and_are_counted(tmp_path, capsys):
    trainer, params = run(tmp_path, use_cuda=True, use_amp=True, scale_loss=2.0 ** 40)
    skipped = trainer.amp.skipped
    assert skipped > 0 and trainer.global_step == trainer.max_train_steps
    assert trainer.lr_scheduler.last_epoch == trainer.global_step - skipped
    assert "(fp16 overflow)" in capsys.readouterr().out
    assert all(np.isfinite(v).all() for v in params.values())


@gpu
@pytest.mark.parametrize("level, dtype", [("O2", "float16"), ("O1", "bfloat16")])
def test_gpu_levels_and_dtypes_train_with_a_float32_ema(tmp_path, level, dtype):
    trainer, params = run(tmp_path, use_cuda=True, use_amp=True, amp_level=level, amp_dtype=dtype, ema_decay=0.9)
    assert all(np.isfinite(v.astype("float32")).all() for v in params.values())
    assert all(v.dtype == paddle.float32 for v in trainer.ema_state_dict().values() if v.dtype != paddle.int64)
