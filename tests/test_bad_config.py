"""Bad configuration (issue 11, items 17-20): refused before the model loads, naming the key as the user wrote
it and its value (bounded); duplicate YAML keys; alias bombs; gradual unfreezing that a short run never reaches."""
import math
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import paddle
import pytest
import yaml

import paddle_strategy as ps
from paddle_strategy.schedules import make_schedule
from paddle_strategy.config import MAX_YAML_NODES, SafeFloatLoader, apply_overrides, load_config, parse_overrides
from paddle_strategy.program import check_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ULMFIT = os.path.join(ROOT, "configs", "ulmfit.yml")          # Strategy: ULMFiTStrategy
PPOCR = os.path.join(ROOT, "configs", "ppocr_adam_cosine.yml")  # Optimizer: Adam + Cosine
FASTAI = os.path.join(ROOT, "configs", "fastai_one_cycle.yml")  # Optimizer: AdamW + fit_one_cycle


def _checked(path, *overrides):
    """check_config of a shipped config with `-o` overrides, as tools/train.py reads them (YAML-typed)."""
    return check_config(apply_overrides(load_config(path), parse_overrides([list(overrides)])))


# ------------------------------------------------------------------------------------------------ item 17
@pytest.mark.parametrize("path, override, error, words", [
    # ULMFiT's own argument names, not the scheduler dict they become
    (ULMFIT, "Strategy.factor=1e-300", ValueError, ["Strategy", "factor", "1e-300", ">= 1"]),
    (ULMFIT, "Strategy.factor=1e300", ValueError, ["Strategy", "factor=1e+300", "dis_blocks=8"]),
    (ULMFIT, "Strategy.dis_blocks=-1", ValueError, ["Strategy", "dis_blocks", "-1", ">= 0"]),
    (ULMFIT, "Strategy.frz_blocks='2'", TypeError, ["Strategy", "frz_blocks", "'2'", "integer"]),
    (ULMFIT, "Strategy.learning_rate=true", TypeError, ["Strategy", "learning_rate", "True"]),
    (FASTAI, ("Optimizer=null", "Strategy={name: FitOneCycleStrategy, div: 1e-300}"), ValueError,
     ["Strategy", "div", "1e-300", ">= 1"]),
    (FASTAI, ("Optimizer=null", "Strategy={name: FineTuneStrategy, epochs: 1, lr_mult: 0.01}"), ValueError,
     ["Strategy", "lr_mult", "0.01", ">= 1"]),
    (FASTAI, "Optimizer.lr.div=1e-300", ValueError, ["Optimizer.lr", "div", "1e-300", ">= 1"]),
    (FASTAI, "Optimizer.lr.div_final=0.5", ValueError, ["Optimizer.lr", "div_final", "0.5", ">= 1"]),
    # optimizer floats: finite and in range
    (PPOCR, "Optimizer.epsilon=.inf", ValueError, ["Optimizer", "epsilon", "inf", "finite"]),
    (PPOCR, "Optimizer.epsilon=-1e-8", ValueError, ["Optimizer", "epsilon", "-1e-08", ">= 0"]),
    (PPOCR, "Optimizer.beta2=1.0", ValueError, ["Optimizer", "beta2", "1.0", "[0, 1)"]),
    # paddle.<Class> schedules: a real, finite learning rate; the run sets total_steps
    (PPOCR, "Optimizer.lr={name: paddle.StepDecay, learning_rate: .nan, step_size: 10}", ValueError,
     ["Optimizer.lr", "paddle.StepDecay.learning_rate", "nan", "finite"]),
    (PPOCR, "Optimizer.lr={name: paddle.StepDecay, learning_rate: .inf, step_size: 10}", ValueError,
     ["Optimizer.lr", "paddle.StepDecay.learning_rate", "inf"]),
    (PPOCR, "Optimizer.lr={name: paddle.CosineAnnealingDecay, learning_rate: true, T_max: 10}", TypeError,
     ["Optimizer.lr", "learning_rate", "True"]),
    (PPOCR, "Optimizer.lr={name: paddle.LinearLR, learning_rate: 0.1, total_steps: 50}", ValueError,
     ["Optimizer.lr", "paddle.LinearLR", "total_steps=50", "drop total_steps"]),
    (PPOCR, "Optimizer.lr={name: Cosine, learning_rate: 0.1, total_steps: 50}", ValueError,
     ["Optimizer.lr", "'Cosine'", "unknown key 'total_steps'", "50"]),
    # Global: YAML paths, not RunConfig.*
    (ULMFIT, "Global.seed=abc", TypeError, ["Global.seed", "'abc'", "integer"]),
    (ULMFIT, "Global.seed=-1", ValueError, ["Global.seed", "-1"]),
    (ULMFIT, f"Global.seed={2 ** 70}", ValueError, ["Global.seed", str(2 ** 70), str(2 ** 64 - 1)]),
    (ULMFIT, "Global.keep_checkpoints=0", ValueError, ["Global.keep_checkpoints", "0"]),
    (ULMFIT, "Global.save_model_dir=''", ValueError, ["Global.save_model_dir", "''", "non-empty"]),
    (ULMFIT, "Global.checkpoints=''", ValueError, ["Global.checkpoints", "''"]),
    (ULMFIT, "Global.pretrained_model=.", ValueError, ["Global.pretrained_model", "'.'", "is a directory"]),
    (ULMFIT, "Global.pretrained_model=no/such.pdparams", FileNotFoundError,
     ["Global.pretrained_model", "'no/such.pdparams'", "does not exist"]),
    (ULMFIT, "Train.loader.shuffle=yes please", TypeError, ["Train.loader.shuffle", "'yes please'"]),
    (ULMFIT, "Train.dataset.split_seed=x", TypeError, ["Train.dataset.split_seed", "'x'"]),
    # Architecture and Loss
    (ULMFIT, "Architecture.num_classes=0", ValueError, ["Architecture.num_classes", "0", ">= 2"]),
    (ULMFIT, "Architecture.num_classes=1", ValueError, ["Architecture.num_classes", "1", ">= 2"]),
    (ULMFIT, "Architecture.num_classes='2'", TypeError, ["Architecture.num_classes", "'2'", "integer"]),
    (ULMFIT, "Architecture.dropout=1.5", ValueError, ["Architecture.dropout", "1.5", "[0, 1)"]),
    (ULMFIT, "Loss.reduction=none", ValueError, ["Loss.reduction", "'none'", "'mean'"]),
    (ULMFIT, "Loss.weight=[1, 2, 3]", ValueError, ["Loss.weight", "[1, 2, 3]", "num_classes=2", "got 3"]),
    (ULMFIT, "Loss.weight=[1, .nan]", TypeError, ["Loss.weight[1]", "nan"]),
    (ULMFIT, "Loss.ignore_index=x", TypeError, ["Loss.ignore_index", "'x'", "integer"]),
    (ULMFIT, "Loss.soft_label=true", ValueError, ["Loss.soft_label", "True"]),
    (ULMFIT, "Loss.label_smoothing=1", ValueError, ["Loss.label_smoothing", "1", "[0, 1)"]),
])
def test_17_yaml_nonsense_refused_by_check_config_naming_the_yaml_key(path, override, error, words):
    with pytest.raises(error) as info:
        _checked(path, *([override] if isinstance(override, str) else override))
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    for internal in ("RunConfig.", "scheduler[", "make_schedule()", "multiple values"):
        assert internal not in message, (internal, message)


def test_17_good_values_still_pass_and_loss_weight_reaches_the_loss():
    cfg = _checked(ULMFIT, "Loss.weight=[1, 3]", "Loss.ignore_index=-1", "Global.seed=7",
                   "Architecture.num_classes=2")
    assert cfg["Loss"]["weight"] == [1.0, 3.0] and cfg["Global"]["seed"] == 7
    # the run sets total_steps: a value that agrees with it is accepted (30 steps = 3 epochs x 10)
    cfg = _checked(PPOCR, "Train.dataset.size=320", "Train.loader.batch_size_per_card=32", "Global.epoch_num=3",
                   "Optimizer.lr={name: paddle.LinearLR, learning_rate: 0.1, total_steps: 30}")
    lr = cfg["_strategy"].schedule(30, 10)
    # paddle.LinearLR: lr * (start + (end - start) * t / total), start 1/3, end 1
    assert lr(15) == pytest.approx(0.1 * (1 / 3 + (1 - 1 / 3) * 15 / 30))


def test_17_tools_train_reports_the_yaml_path_before_loading_a_model():
    """The real path: tools/train.py -c ... -o Global.seed=abc fails in check_config (no model, no data)."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "-c", ULMFIT,
                           "-o", "Global.seed=abc"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last == "TypeError: Global.seed must be an integer, got 'abc' (str).", proc.stderr[-2000:]
    assert "build_trainer" not in proc.stderr and "load_minilm" not in proc.stderr


@pytest.mark.parametrize("make, error, words", [
    (lambda: ps.ULMFiTStrategy(factor=1e-300), ValueError, ["factor", "1e-300", ">= 1"]),
    (lambda: ps.ULMFiTStrategy(dis_blocks=-1), ValueError, ["dis_blocks", "-1"]),
    (lambda: ps.ULMFiTStrategy(frz_blocks=2.5), TypeError, ["frz_blocks", "2.5"]),
    (lambda: ps.ULMFiTStrategy(ratio=0.5), ValueError, ["ratio", "0.5", ">= 1"]),
    (lambda: ps.ULMFiTStrategy(cut_fraction=1.0), ValueError, ["cut_fraction", "1.0"]),
    (lambda: ps.ULMFiTStrategy(dis_params_layer={"0.weight": "x"}), TypeError, ["dis_params_layer", "'x'"]),
    (lambda: ps.CombinedStrategy(scheduler={"discriminative": {"blocks": 3, "factor": 1e300}}), ValueError,
     ["scheduler['discriminative']['factor']=1e+300", "blocks']=3", "never"]),
    (lambda: ps.CombinedStrategy(epsilon=math.inf), ValueError, ["epsilon", "inf", "finite"]),
    (lambda: ps.CombinedStrategy(optimizer_name="momentum", momentum=math.nan), ValueError, ["momentum", "nan"]),
    (lambda: ps.CombinedStrategy(optimizer_name="rmsprop", rho=1.0), ValueError, ["rho", "1.0", "[0, 1)"]),
    (lambda: ps.FitOneCycleStrategy(div=1e-300), ValueError, ["div", "1e-300", ">= 1"]),
    (lambda: ps.FitOneCycleStrategy(lr_max=slice(1e-2, 1e-4)), ValueError, ["lr_max=slice(0.01, 0.0001", "lo <= hi"]),
    (lambda: ps.FineTuneStrategy(1, lr_mult=0.5), ValueError, ["lr_mult", "0.5", ">= 1"]),
    (lambda: make_schedule("paddle.StepDecay", learning_rate=True, step_size=5), TypeError,
     ["paddle.StepDecay.learning_rate", "True"]),
    (lambda: make_schedule("paddle.NoamDecay", d_model=True, warmup_steps=5), TypeError, ["d_model", "True"]),
    (lambda: make_schedule("paddle.PiecewiseDecay", boundaries=[5], values=[0.1, math.inf]), TypeError,
     ["values[1]", "inf"]),
    (lambda: make_schedule("one_cycle_lr", max_lr=0.1, total_steps=10, div_factor=1e-300), ValueError,
     ["div_factor", ">= 1"]),
    (lambda: ps.RunConfig(checkpoint_dir=""), ValueError, ["RunConfig.checkpoint_dir", "''"]),
    (lambda: ps.RunConfig(seed=2 ** 70), ValueError, ["RunConfig.seed", str(2 ** 70)]),
])
def test_17_python_api_refuses_the_same_values_under_its_own_names(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize("kwargs", [dict(factor=1e-300), dict(factor=1e300), dict(dis_blocks=-1),
                                    dict(frz_blocks=-2), dict(ratio=0), dict(cut_fraction=-0.1),
                                    dict(frz_params_layer={"a": 1.5})])
def test_17_ulmfit_errors_use_its_argument_names(kwargs):
    with pytest.raises((ValueError, TypeError)) as info:
        ps.ULMFiTStrategy(**kwargs)
    assert list(kwargs)[0] in str(info.value) and "scheduler" not in str(info.value), str(info.value)


class _DictForward(paddle.nn.Layer):
    """A forward that returns logits and metrics together: loss_fn cannot take it."""

    def __init__(self):
        super().__init__()
        self.fc = paddle.nn.Linear(4, 2)

    def forward(self, x):
        logits = self.fc(x)
        return {"logits": logits, "acc": paddle.to_tensor(0.5)}


def _dataset(n=32):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return [(x[i], np.int64(x[i, 0] > 0)) for i in range(n)]


def test_17_trainer_names_a_forward_output_the_loss_cannot_take(tmp_path):
    config = ps.RunConfig(checkpoint_dir=str(tmp_path), batch_size=8, use_cuda=False)
    with pytest.raises(TypeError) as info:
        ps.Trainer(_DictForward(), config, _dataset(), loss_fn=paddle.nn.CrossEntropyLoss())
    message = str(info.value)
    for word in ("_DictForward.forward returned a dict with keys ['acc', 'logits']", "return the logits",
                 "training_step"):
        assert word in message, message
    ps.Trainer(paddle.nn.Linear(4, 2), config, _dataset(), loss_fn=paddle.nn.CrossEntropyLoss())  # fine


# ------------------------------------------------------------------------------------------------ item 18
def test_18_duplicate_yaml_keys_refused_with_both_lines(tmp_path):
    text = open(ULMFIT, encoding="utf-8").read()
    lines = text.splitlines()
    first = lines.index("Global:") + 1                              # 1-based line numbers, from the file
    f = tmp_path / "dup.yml"
    f.write_text(text + "Global:\n  epoch_num: 9\n")
    second = len(lines) + 1
    with pytest.raises(ValueError) as info:
        load_config(f)
    assert isinstance(info.value, yaml.YAMLError)
    message = str(info.value)
    assert f"duplicate key 'Global': set at line {first} and again at line {second}" in message, message
    assert str(f) in message

    nested = "Global:\n  seed: 1\n  epoch_num: 2\n  seed: 3\n"
    f.write_text(nested)
    with pytest.raises(ValueError, match="duplicate key 'seed': set at line 2 and again at line 4"):
        load_config(f)
    with pytest.raises(ValueError, match="-o Optimizer.lr=.*duplicate key 'a'"):
        parse_overrides([["Optimizer.lr={a: 1, a: 2}"]])
    # a merge (<<) followed by an explicit key is an override, not a duplicate
    f.write_text("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 5\n")
    assert load_config(f) == {"base": {"x": 1, "y": 2}, "c": {"x": 5, "y": 2}}


def test_18_tools_train_refuses_a_duplicated_section(tmp_path):
    f = tmp_path / "dup.yml"
    f.write_text("Strategy:\n  name: ULMFiTStrategy\n" + open(ULMFIT, encoding="utf-8").read())
    second = 3 + open(ULMFIT, encoding="utf-8").read().splitlines().index("Strategy:")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "-c", str(f)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode != 0
    assert f"duplicate key 'Strategy': set at line 1 and again at line {second}" in proc.stderr, proc.stderr[-2000:]


# ------------------------------------------------------------------------------------------------ item 19
def _laughs(levels=9, width=9):
    """A billion-laughs document: level i is a list of `width` aliases of level i - 1 (width**levels leaves)."""
    out = ["Global:", "  epoch_num: 1", "Lol:", '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        out.append(f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]")
    out += ["Architecture:", "  name: MiniLMClassifier", f"  num_classes: *l{levels}", ""]
    return "\n".join(out)


def test_19_billion_laughs_is_refused_fast(tmp_path):
    f = tmp_path / "laughs.yml"
    f.write_text(_laughs())
    assert os.path.getsize(f) < 1200  # under 1.2 KB, expanding to 9**10 strings
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        load_config(f)
    took = time.perf_counter() - start
    assert took < 2.0, took
    message = str(info.value)
    assert "aliases" in message and f"at most {MAX_YAML_NODES}" in message and str(f) in message, message
    assert len(message) < 1000


def test_19_values_shown_in_messages_are_bounded():
    # below the alias cap, but its repr would still be 9**4 * 7 characters: the message shows 200 of them
    laughs = yaml.load(_laughs(levels=3), Loader=SafeFloatLoader)["Lol"]["l3"]
    assert len(repr(laughs)) > 40000
    config = load_config(ULMFIT)
    config["Architecture"]["num_clases"] = laughs
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        check_config(config)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "Architecture: unknown key 'num_clases' (value [[[['lol', " in message
    assert "Did you mean 'num_classes'" in message
    assert len(message) < 600, len(message)
    # an int too long for Python to print (over 4300 digits) is described, not printed ...
    config = load_config(ULMFIT)
    config["Global"]["seed"] = 10 ** 5000
    with pytest.raises(ValueError) as info:
        check_config(config)
    assert str(info.value) == f"Global.seed must be in [0, {2 ** 64 - 1}], got <an int of 5001 digits>."
    # ... and one written in YAML is refused where it is written, not with Python's int() error
    with pytest.raises(ValueError) as info:
        _checked(ULMFIT, "Global.seed=1" + "0" * 5000)
    assert "-o Global.seed='1000" in str(info.value) and "has 5001 characters" in str(info.value)
    assert len(str(info.value)) < 600


# ------------------------------------------------------------------------------------------------ item 20
def _mlp():
    paddle.seed(0)
    return paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 8), paddle.nn.ReLU(),
                                paddle.nn.Linear(8, 2))


def test_20_ulmfit_with_runconfig_defaults_warns_once_which_blocks_never_train(tmp_path):
    data = _dataset(320)  # 10 steps per epoch at batch_size 32; cut_fraction 0.1 needs >= 10 steps
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ps.Trainer(_mlp(), ps.RunConfig(strategy=ps.ULMFiTStrategy(), checkpoint_dir=str(tmp_path / "a"),
                                        use_cuda=False), data, loss_fn=paddle.nn.CrossEntropyLoss())
    ours = [w for w in seen if "gradual unfreezing" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in seen]
    message = str(ours[0].message)
    # RunConfig(): num_epoch=1, so of ULMFiT's frz_blocks=3 (head = the last Linear) blocks 1 and 2 never train
    for word in ("1 epoch(s) of 10 steps", "2 block(s) never train", "block 1 (2.weight ... 2.bias",
                 "block 2 (0.weight ... 0.bias", "num_epoch=3", "frz_blocks=1"):
        assert word in message, (word, message)
    assert "4.weight" not in message

    with warnings.catch_warnings(record=True) as seen:  # three epochs reach every block: no warning
        warnings.simplefilter("always")
        ps.Trainer(_mlp(), ps.RunConfig(num_epoch=3, strategy=ps.ULMFiTStrategy(), use_cuda=False,
                                        checkpoint_dir=str(tmp_path / "b")), data, loss_fn=paddle.nn.CrossEntropyLoss())
    assert not [w for w in seen if "gradual unfreezing" in str(w.message)]


def test_20_combined_strategy_params_layer_names_the_parameters():
    s = ps.CombinedStrategy(scheduler={"gradual_unfreeze": {"params_layer": {"0.weight": 0, "2.weight": 1,
                                                                              "4.weight": 2}}})
    with pytest.warns(UserWarning) as seen:
        s.build(_mlp(), max_train_steps=20, steps_per_epoch=10)
    message = " ".join(str(w.message) for w in seen if "gradual unfreezing" in str(w.message))
    # layer 2 trains from epoch 0, layer 1 from epoch 1, layer 0 from epoch 2: a 2-epoch run never reaches 0.weight
    assert "1 parameter(s) never train: 0.weight." in message, message
    assert "scheduler['gradual_unfreeze']['params_layer']" in message and "num_epoch=3" in message
