"""`from paddle_strategy import hub`: PaddleHub 1.x's names, without PaddleHub installed.

The schedules are checked against the formulas written out here (PaddleHub 1.x's docs / the README), not
against values read back from the code.
"""
import inspect
import math
import subprocess
import sys

import pytest

from paddle_strategy import hub, strategies, training
from helpers import batch, mlp

FIVE = ("AdamWeightDecayStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy", "ULMFiTStrategy",
        "CombinedStrategy")


def test_1x_top_level_names_are_paddle_strategy_classes():
    assert hub.RunConfig is training.RunConfig
    assert hub.Trainer is training.Trainer
    for name in FIVE:
        assert getattr(hub, name) is getattr(strategies, name), name


def test_1x_finetune_strategy_namespace():
    for name in FIVE:
        assert getattr(hub.finetune.strategy, name) is getattr(strategies, name), name
    from paddle_strategy.hub.finetune.strategy import ULMFiTStrategy
    import paddle_strategy.hub.finetune.strategy as ns
    assert ULMFiTStrategy is strategies.ULMFiTStrategy and ns is hub.finetune.strategy


def test_nothing_else_is_imitated():
    public = {n for n in vars(hub) if not n.startswith("_")}
    assert public == {"RunConfig", "Trainer", "finetune", *FIVE}
    assert set(hub.__all__) == public
    assert {n for n in vars(hub.finetune) if not n.startswith("_")} == {"strategy"}
    assert {n for n in vars(hub.finetune.strategy) if not n.startswith("_")} == set(FIVE)


def test_import_path_works_in_a_fresh_interpreter():
    # as a 1.x script would write it, before anything else of paddle_strategy is imported
    code = ("from paddle_strategy.hub.finetune.strategy import ULMFiTStrategy\n"
            "import paddle_strategy\n"
            "assert ULMFiTStrategy is paddle_strategy.ULMFiTStrategy\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


# PaddleHub 1.x (last release) signatures and defaults, written out.
SIGNATURES_1X = {
    "AdamWeightDecayStrategy": dict(learning_rate=1e-4, lr_scheduler="linear_decay", warmup_proportion=0.0,
                                    weight_decay=0.01, optimizer_name="adam"),
    "DefaultFinetuneStrategy": dict(learning_rate=1e-4, optimizer_name="adam", regularization_coeff=1e-3),
    "L2SPFinetuneStrategy": dict(learning_rate=1e-4, optimizer_name="adam", regularization_coeff=1e-3),
    "ULMFiTStrategy": dict(learning_rate=1e-4, optimizer_name="adam", cut_fraction=0.1, ratio=32, dis_blocks=3,
                           factor=2.6, dis_params_layer=None, frz_blocks=3, frz_params_layer=None),
    "CombinedStrategy": dict(optimizer_name="adam", learning_rate=1e-4, scheduler=None, regularization=None,
                             clip=None),
}


@pytest.mark.parametrize("name", FIVE)
def test_strategy_keywords_and_defaults_are_1x(name):
    params = inspect.signature(getattr(hub, name)).parameters
    for key, default in SIGNATURES_1X[name].items():
        assert key in params, f"{name} lacks 1.x keyword {key}"
        assert params[key].default == default, (name, key)


def test_runconfig_1x_arguments_in_1x_order(tmp_path):
    names_1x = ["log_interval", "eval_interval", "use_pyreader", "use_data_parallel", "save_ckpt_interval",
                "use_cuda", "checkpoint_dir", "num_epoch", "batch_size", "enable_memory_optim", "strategy"]
    positional = [p.name for p in inspect.signature(hub.RunConfig).parameters.values()
                  if p.kind == p.POSITIONAL_OR_KEYWORD]
    assert positional == names_1x
    c = hub.RunConfig(checkpoint_dir=str(tmp_path))
    assert (c.log_interval, c.eval_interval, c.use_data_parallel, c.save_ckpt_interval, c.use_cuda,
            c.num_epoch, c.batch_size) == (10, 100, True, None, True, 1, 32)


def test_1x_script_adam_weight_decay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # RunConfig's default checkpoint_dir is relative
    # -- the lines of a PaddleHub 1.x fine-tuning script --
    strategy = hub.AdamWeightDecayStrategy(
        weight_decay=0.01, warmup_proportion=0.1, learning_rate=5e-5, lr_scheduler="linear_decay")
    config = hub.RunConfig(use_cuda=False, num_epoch=1, batch_size=32, strategy=strategy)
    # --
    assert config.strategy is strategy
    assert (config.use_cuda, config.num_epoch, config.batch_size) == (False, 1, 32)
    assert config.checkpoint_dir.startswith("ckpt_")

    model, (x, _) = mlp(), batch()
    T = 20
    optimizer, lr = config.strategy.build(model, max_train_steps=T, sample_input=x)
    assert optimizer._learning_rate is lr
    W = math.floor(T * 0.1)  # warmup steps
    for t in range(T + 2):
        expected = 5e-5 * t / W if t < W else 5e-5 * max(0, T - t) / (T - W)
        assert lr.get_lr() == pytest.approx(expected, rel=1e-12, abs=1e-18), t
        lr.step()


def test_1x_script_ulmfit_through_finetune_strategy(tmp_path):
    strategy = hub.finetune.strategy.ULMFiTStrategy(learning_rate=1e-3, cut_fraction=0.1, ratio=32, dis_blocks=3,
                                                    factor=2.6, frz_blocks=3)
    config = hub.RunConfig(use_cuda=False, num_epoch=3, batch_size=4, strategy=strategy,
                           checkpoint_dir=str(tmp_path))
    assert config.strategy is strategy
    model, (x, _) = mlp(), batch()
    T, S = 30, 10
    optimizer, lr = config.strategy.build(model, max_train_steps=T, steps_per_epoch=S, sample_input=x)
    cut = math.floor(T * 0.1)
    for t in range(T):
        p = t / cut if t < cut else 1 - (t - cut) / (T - cut)
        assert lr.get_lr() == pytest.approx(1e-3 * (1 + p * 31) / 32, rel=1e-12), t
        lr.step()


def test_1x_default_strategy_when_none(tmp_path):
    config = hub.RunConfig(checkpoint_dir=str(tmp_path))  # 1.x: DefaultStrategy = Adam at a constant 1e-4
    model, (x, _) = mlp(), batch()
    optimizer, lr = config.strategy.build(model, max_train_steps=5, sample_input=x)
    for _ in range(6):
        assert lr.get_lr() == pytest.approx(1e-4, rel=1e-12)
        lr.step()


def test_patch_paddlehub_says_what_to_install_when_paddlehub_is_missing(monkeypatch):
    from paddle_strategy.compat import patch_paddlehub
    monkeypatch.setitem(sys.modules, "paddlehub", None)  # `import paddlehub` now fails as if not installed
    with pytest.raises(ImportError, match=r"needs PaddleHub, which is not installed.*pip install.*paddlehub==2\.4\.0"):
        patch_paddlehub()
