"""YAML configs, -o overrides, build_optimizer (PaddleOCR's schema), the Strategy section, and the tools."""
import glob
import json
import math
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest
import yaml

import paddle_strategy as ps
from paddle_strategy.config import apply_overrides, load_config, parse_overrides, yaml_value
from paddle_strategy.program import check_config
from helpers import DEMO, PLOTS, needs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yml"), recursive=True))


# ------------------------------------------------------------------------------------------------ -o
def test_overrides_all_apply_typed_and_may_contain_equals():
    pairs = parse_overrides([["Global.epoch_num=3", "Optimizer.lr.learning_rate=1e-3"],
                             ["A.b=x=y C.d=true"], ["E.f=[1, 2e-2]"], ["G.h=null"]])
    assert pairs == [(["Global", "epoch_num"], 3), (["Optimizer", "lr", "learning_rate"], 0.001),
                     (["A", "b"], "x=y"), (["C", "d"], True), (["E", "f"], [1, 0.02]), (["G", "h"], None)]
    assert isinstance(pairs[1][1], float)  # PyYAML alone reads 1e-3 as the string '1e-3'
    assert yaml.safe_load("1e-3") == "1e-3" and yaml_value("1e-3") == 0.001 and yaml_value("5E+2") == 500.0
    cfg = apply_overrides({"Global": {"epoch_num": 1}}, pairs[:2])
    assert cfg == {"Global": {"epoch_num": 3}, "Optimizer": {"lr": {"learning_rate": 0.001}}}
    with pytest.raises(ValueError, match="expected Key.path=value"):
        parse_overrides([["Global.epoch_num"]])
    with pytest.raises(ValueError, match="Global.epoch_num is 3, not a section"):
        apply_overrides({"Global": {"epoch_num": 3}}, [(["Global", "epoch_num", "x"], 1)])


def test_yaml_is_loaded_safely_and_floats_are_floats(tmp_path):
    f = tmp_path / "c.yml"
    f.write_text("Optimizer:\n  lr: {learning_rate: 1e-3, warmup: 5e2}\n")
    assert load_config(f) == {"Optimizer": {"lr": {"learning_rate": 0.001, "warmup": 500.0}}}
    f.write_text("Global: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(yaml.YAMLError):
        load_config(f)


def _base():
    return load_config(os.path.join(ROOT, "configs", "ppocr_adam_cosine.yml"))


@pytest.mark.parametrize("override, exc, words", [
    ("Globl.epoch_num=2", ValueError, ["config: unknown key 'Globl' (value {'epoch_num': 2})",
                                       "Did you mean 'Global'"]),
    ("Global.epoch_nums=2", ValueError, ["Global: unknown key 'epoch_nums' (value 2)", "Did you mean 'epoch_num'"]),
    ("Global.epoch_num=0", ValueError, ["Global.epoch_num", "0"]),
    ("Optimizer.lr.learning_rat=0.1", ValueError, ["Optimizer.lr", "'learning_rat'", "Did you mean 'learning_rate'"]),
    ("Optimizer.lr.name=Cosin", ValueError, ["Optimizer.lr", "'Cosin'", "Did you mean 'Cosine'"]),
    ("Optimizer.name=Adma", ValueError, ["Optimizer.name", "'Adma'"]),
    ("Optimizer.bata1=0.9", ValueError, ["Optimizer", "'bata1'", "Did you mean 'beta1'"]),
    ("Optimizer.regularizer.name=L3", ValueError, ["Optimizer.regularizer.name", "'L3'", "Did you mean 'L2'"]),
    ("Optimizer.clip_norm_global=1.0", ValueError, ["clip_norm=10", "clip_norm_global=1.0"]),
    ("Train.loader.batch_size=8", ValueError, ["Train.loader: unknown key 'batch_size' (value 8)",
                                               "Did you mean 'batch_size_per_card'"]),
    ("Metric.name=[acc, f2]", ValueError, ["Metric.name", "'f2'"]),
    ("Architecture.name=MiniLM", ValueError, ["Architecture.name", "'MiniLM'", "MiniLMClassifier"]),
    ("Global.gradient_accumulation_steps=0", ValueError, ["Global.gradient_accumulation_steps", "0"]),
    ("Global.use_amp=maybe", TypeError, ["Global.use_amp", "'maybe'"]),
    ("Global.amp_level=O3", ValueError, ["Global.amp_level", "'O3'", "'O1', 'O2'"]),
    ("Global.amp_dtype=float61", ValueError, ["Global.amp_dtype", "Did you mean 'float16'"]),
    ("Global.scale_loss=-1", ValueError, ["Global.scale_loss", "-1"]),
    ("Global.amp_custom_black_list=softmax", TypeError, ["Global.amp_custom_black_list", "'softmax'"]),
    ("Global.early_stopping={patience: 0}", ValueError, ["Global.early_stopping.patience", "0"]),
    ("Global.early_stopping={patients: 2}", ValueError, ["Global.early_stopping", "'patients'",
                                                         "Did you mean 'patience'"]),
    ("Global.save_final_checkpoint=1", TypeError, ["Global.save_final_checkpoint"]),
    ("Global.dist_timeout=0", ValueError, ["Global.dist_timeout", "0"]),
    ("EMA.decay=1.5", ValueError, ["EMA.decay", "1.5"]),
    ("EMA.tpye=constant", ValueError, ["EMA: unknown key 'tpye'", "Did you mean 'type'"]),
    ("EMA={decay: 0.9, type: linear}", ValueError, ["EMA.type", "'linear'", "'threshold'"]),
])
def test_config_errors_name_the_key_path(override, exc, words):
    with pytest.raises(exc) as err:
        check_config(apply_overrides(_base(), parse_overrides([[override]])))
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_strategy_section_errors_and_exclusivity():
    cfg = load_config(os.path.join(ROOT, "configs", "ulmfit.yml"))
    with pytest.raises(ValueError, match=r"Strategy \(ULMFiTStrategy\): unknown key 'frz_block' \(value 2\)\. "
                                         r"Allowed keys: .*frz_blocks.*\. Did you mean 'frz_blocks'"):
        check_config(apply_overrides(cfg, parse_overrides([["Strategy.frz_block=2"]])))
    with pytest.raises(ValueError, match="unknown strategy 'ULMFitStrategy'.*Did you mean 'ULMFiTStrategy'"):
        check_config(apply_overrides(cfg, parse_overrides([["Strategy.name=ULMFitStrategy"]])))
    both = apply_overrides(cfg, parse_overrides([["Optimizer.name=Adam"]]))
    with pytest.raises(ValueError, match="both a Strategy and an Optimizer"):
        check_config(both)


# ------------------------------------------------------------------------------------------------ build_optimizer
def _sgd_probe(model, optimizer, lr_scheduler, steps, seed=0):
    """Per step: (lr actually applied to each parameter, measured as -delta / grad on an SGD optimizer)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        x = paddle.to_tensor(rng.normal(size=(8, 4)).astype("float32"))
        before = {n: p.numpy().copy() for n, p in model.named_parameters()}
        loss = (model(x) ** 2).mean()
        loss.backward()
        grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
        optimizer.step()
        optimizer.clear_grad()
        lr_scheduler.step()
        out.append((before, grads, {n: p.numpy().copy() for n, p in model.named_parameters()}))
    return out


def test_ppocr_cosine_with_warmup_and_l2_moves_weights_by_the_formula():
    """PaddleOCR Cosine: LinearWarmup(0 -> lr over round(warmup_epoch * spe)), then cosine over epochs * spe
    on its own clock; L2 regularizer: grad += factor * w (PaddleOCR's L2Decay)."""
    paddle.seed(0)
    model = paddle.nn.Linear(4, 3)
    lr, spe, epochs, warm, factor = 0.1, 4, 3, 1, 0.01
    cfg = {"name": "SGD", "lr": {"name": "Cosine", "learning_rate": lr, "warmup_epoch": warm},
           "regularizer": {"name": "L2", "factor": factor}}
    opt, sched = ps.build_optimizer(cfg, epochs, spe, model)
    W, T = warm * spe, epochs * spe

    def want_lr(t):
        return lr * t / W if t < W else 0.5 * lr * (1 + math.cos(math.pi * (t - W) / T))
    for t, (before, grads, after) in enumerate(_sgd_probe(model, opt, sched, 10)):
        for n in before:
            np.testing.assert_allclose(after[n], before[n] - want_lr(t) * (grads[n] + factor * before[n]),
                                       rtol=1e-5, atol=1e-7, err_msg=f"step {t} {n}")


def test_ppocr_clip_norm_is_per_tensor():
    paddle.seed(0)
    model = paddle.nn.Linear(4, 3)
    opt, sched = ps.build_optimizer({"name": "SGD", "clip_norm": 0.01, "lr": 0.5}, 1, 5, model)
    (before, grads, after), = _sgd_probe(model, opt, sched, 1)
    for n in before:
        g = grads[n]
        clipped = g * min(1.0, 0.01 / np.linalg.norm(g))
        np.testing.assert_allclose(after[n], before[n] - 0.5 * clipped, rtol=1e-5, atol=1e-7)


def test_adamw_no_weight_decay_name_and_one_dim():
    """Zero gradients: Adam's step is 0, so only decoupled decay moves a weight: w <- w * (1 - lr * wd)."""
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 4), paddle.nn.LayerNorm(4), paddle.nn.Linear(4, 2))
    cfg = {"name": "AdamW", "weight_decay": 0.1, "lr": 0.5, "no_weight_decay_name": "2.weight",
           "one_dim_param_no_weight_decay": True}
    opt, sched = ps.build_optimizer(cfg, 1, 3, model)
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    (model(paddle.ones([2, 4])).sum() * 0.0).backward()
    opt.step()
    decayed = {"0.weight"}  # 2.weight by name; biases and LayerNorm (1-D) by one_dim_param_no_weight_decay
    for n, p in model.named_parameters():
        want = before[n] * (1 - 0.5 * 0.1) if n in decayed else before[n]
        np.testing.assert_allclose(p.numpy(), want, rtol=1e-6, err_msg=n)


def test_adamw_defaults_to_paddleocr_weight_decay_and_takes_an_l2_regularizer_as_ppocr_does():
    model = paddle.nn.Linear(4, 2)
    opt, _ = ps.build_optimizer({"name": "AdamW", "lr": 0.1}, 1, 2, model)
    before = model.weight.numpy().copy()
    (model(paddle.ones([2, 4])).sum() * 0.0).backward()
    opt.step()
    np.testing.assert_allclose(model.weight.numpy(), before * (1 - 0.1 * 0.01), rtol=1e-6)  # PaddleOCR's 0.01
    # PaddleOCR hands L2Decay's factor to AdamW as its weight_decay (tests/test_home_libraries.py: each combination)
    with pytest.warns(UserWarning, match=r"AdamW's decoupled weight_decay=0\.0001"):
        ps.build_optimizer({"name": "AdamW", "lr": 0.1, "regularizer": {"name": "L2", "factor": 1e-4}}, 1, 2, model)
    with pytest.raises(ValueError, match="Optimizer.lr is required"):
        ps.build_optimizer({"name": "Adam"}, 1, 2, model)


def test_combined_strategy_takes_catalogue_schedules_and_cycles_momentum():
    """scheduler={'schedule': {...}}: the same curve as the catalogue; fit_one_cycle also sets momentum
    (fastai: lr_max/25 -> lr_max -> lr_max/1e5; momentum 0.95 -> 0.85 -> 0.95, cosine)."""
    T, lr_max, pct = 20, 0.1, 0.25
    s = ps.CombinedStrategy("momentum", learning_rate=lr_max,
                            scheduler={"schedule": {"name": "fit_one_cycle", "lr_max": lr_max, "pct_start": pct}})
    model = paddle.nn.Linear(4, 2)
    opt, sched = s.build(model, max_train_steps=T, steps_per_epoch=T)

    def cos(a, b, p):  # fastai's SchedCos: start + (1 + cos(pi * (1 - p))) * (end - start) / 2
        return a + (1 + math.cos(math.pi * (1 - p))) * (b - a) / 2
    for t in range(T):
        p = t / T
        if p < pct:
            lr, mom = cos(lr_max / 25, lr_max, p / pct), cos(0.95, 0.85, p / pct)
        else:
            lr, mom = cos(lr_max, lr_max / 1e5, (p - pct) / (1 - pct)), cos(0.85, 0.95, (p - pct) / (1 - pct))
        assert sched.last_lr == pytest.approx(lr, rel=1e-9), t
        assert opt._momentum == pytest.approx(mom, rel=1e-9), t
        sched.step()
    with pytest.raises(ValueError, match="'schedule' is a whole schedule"):
        ps.CombinedStrategy(scheduler={"schedule": {"name": "Cosine"}, "warmup": 0.1})
    with pytest.raises(ValueError, match="unknown key 'lr_maxx'.*Did you mean 'lr_max'"):
        ps.CombinedStrategy(scheduler={"schedule": {"name": "fit_one_cycle", "lr_maxx": 1}})


# ------------------------------------------------------------------------------------------------ configs, tools
@pytest.fixture(scope="module")
def minilm():
    for name in DEMO[:2]:
        pytest.importorskip(name, reason="the embedded model is not installed (tools/requirements-data.txt)")
    from paddle_strategy.minilm import load_minilm
    return load_minilm(num_classes=2)


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.relpath(p, os.path.join(ROOT, "configs")) for p in CONFIGS])
def test_every_config_loads_builds_and_plots_on_the_default_model(path, minilm, tmp_path, monkeypatch):
    """Every file under configs/ (recursively): checked as shipped, then built on the default model for a run of
    320 training samples (as tools/plot_lr.py -o Train.dataset.size=320 does; ULMFiT's slanted triangle needs 10
    updates or more) and its LR curve plotted."""
    monkeypatch.chdir(ROOT)  # data paths in configs are relative to the repository root
    model, tokenizer = minilm
    for p in model.parameters():  # a previous build's gradual unfreezing may have frozen some
        p.stop_gradient = False
    check_config(load_config(path))
    cfg = check_config(load_config(path, [["Train.dataset.size=320"]]))
    assert cfg["Architecture"]["name"] == "MiniLMClassifier"  # the shared model fits every shipped config
    spe = math.ceil(320 / cfg["Train"]["loader"]["batch_size_per_card"])
    T = spe * cfg["Global"]["epoch_num"]
    ids = paddle.to_tensor([[101, 2204, 3185, 102]])
    opt, sched = cfg["_strategy"].build(model, max_train_steps=T, steps_per_epoch=spe,
                                        sample_input=(ids, paddle.ones_like(ids)))
    assert isinstance(opt, paddle.optimizer.Optimizer) and sched.last_epoch == 0
    curve = [sched.lr_at(t) for t in range(T)]
    assert all(math.isfinite(v) and v >= 0 for v in curve) and max(curve) > 0
    pytest.importorskip("matplotlib")
    from paddle_strategy.plotting import plot_lr
    plot_lr(sched, T, str(tmp_path / "lr.png"), title=os.path.basename(path), model=model)
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trainer_keys_reach_the_trainer(tmp_path, minilm):
    """Global's accumulation / AMP / early stopping / final-checkpoint keys and the EMA section become the
    RunConfig and hooks of build_trainer; steps per epoch count updates (48 samples / 8 = 6 batches, k=4: 2)."""
    from paddle_strategy.program import build_trainer, steps_per_epoch
    model, tokenizer = minilm
    for p in model.parameters():
        p.stop_gradient = False
    cfg = apply_overrides(_base(), parse_overrides([[
        "Train.dataset.size=48", "Eval.dataset.size=16", "Train.loader.batch_size_per_card=8",
        "Global.gradient_accumulation_steps=4", "Global.use_amp=true", "Global.amp_level=O2",
        "Global.early_stopping={patience: 2, min_delta: 0.01}", "Global.save_final_checkpoint=false",
        f"Global.save_model_dir={tmp_path}", "EMA.decay=0.999", "EMA.type=threshold", "Global.save_epoch_step=1"]]))
    cfg = check_config(cfg)
    assert steps_per_epoch(cfg, 48) == 2
    trainer, _, _ = build_trainer(cfg, model=model, tokenizer=tokenizer)
    rc = trainer.config
    assert (rc.gradient_accumulation_steps, rc.use_amp, rc.amp_level, rc.save_final_checkpoint) == (4, True, "O2",
                                                                                                    False)
    assert (rc.ema_decay, rc.ema_decay_type, rc.save_ckpt_interval) == (0.999, "threshold", 2)
    assert trainer.steps_per_epoch == 2 and trainer.max_train_steps == 2 * cfg["Global"]["epoch_num"]
    es = trainer._hooks.stateful()["eval_end_event/early_stopping"]
    assert isinstance(es, ps.EarlyStopping) and (es.patience, es.min_delta) == (2, 0.01)


@needs(*DEMO)
def test_train_then_eval_tools_from_yaml(tmp_path):
    out = tmp_path / "run"
    common = ["-c", os.path.join(ROOT, "configs", "ppocr_adam_cosine.yml"),
              "-o", "Train.dataset.size=48", "Eval.dataset.size=32", "Global.epoch_num=1",
              "-o", f"Global.save_model_dir={out}", "Optimizer.lr.warmup_epoch=0"]
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), *common],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.load(open(out / "summary.json"))
    assert summary["steps"] == 2 and summary["best"]["metric"] == "acc"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "eval.py"), *common],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"acc {summary['best']['value']:.4f}" in r.stdout


@needs(*DEMO, *PLOTS)
def test_plot_lr_and_lr_find_tools_write_pngs(tmp_path):
    cfg = os.path.join(ROOT, "configs", "ulmfit.yml")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "plot_lr.py"), "-c", cfg,
                        "-o", "Train.dataset.size=320", "--out", str(tmp_path / "lr.png")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "20 steps, 8 block(s)" in r.stdout  # 320 / 32 = 10 steps x 2 epochs
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "lr_find.py"), "-c", cfg,
                        "-o", "Train.dataset.size=64", "Train.loader.batch_size_per_card=8",
                        "--num-it", "6", "--end-lr", "1e-2", "--out", str(tmp_path / "find.png")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "valley" in r.stdout
