"""Issue 18, section 1: your own model, data, loss and metric in a YAML config, named by import path.

A tiny user module is written into tmp_path; tools/train.py trains it as a real subprocess with tmp_path on
PYTHONPATH, and the same config builds a Trainer from Python (ps.program.build_trainer)."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import paddle
import pytest

import paddle_strategy as ps
from paddle_strategy.config import apply_overrides, parse_overrides
from paddle_strategy.program import check_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

USER_MODULE = textwrap.dedent('''
    import numpy as np
    import paddle


    class TinyNet(paddle.nn.Layer):
        """Linear(in_features, hidden) -> Linear(hidden, 2); every weight starts at `init`."""

        def __init__(self, in_features, hidden=4, init=0.5):
            super().__init__()
            c = paddle.nn.initializer.Constant(init)
            self.body = paddle.nn.Linear(in_features, hidden, weight_attr=c, bias_attr=c)
            self.head = paddle.nn.Linear(hidden, 2, weight_attr=c, bias_attr=c)

        def forward(self, x):
            return self.head(paddle.nn.functional.relu(self.body(x)))


    def make_net(width):
        return TinyNet(3, hidden=width)


    class MyData(paddle.io.Dataset):
        """n samples (features, label); label 1 for every `every`-th sample, else 0."""

        def __init__(self, n, every=4, features=3):
            self.n, self.every, self.features = n, every, features

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            x = np.full([self.features], (i % 7) / 7.0, dtype="float32")
            return x, np.int64(i % self.every == 0)


    class MyDictData(MyData):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return {"x": x, "label": y}


    def scaled_ce(logits, label, scale):
        return scale * paddle.nn.functional.cross_entropy(logits, label)


    def label_share(preds, labels, cls=1):
        """The share of samples whose label is `cls` (it ignores the predictions)."""
        return float((np.asarray(labels).reshape(-1) == cls).mean())


    class AlwaysHalf(paddle.metric.Metric):
        def __init__(self, value=0.5):
            super().__init__()
            self.value = value

        def name(self):
            return "always"

        def reset(self):
            pass

        def update(self, *args):
            pass

        def accumulate(self):
            return self.value


    def stack(samples):
        xs = np.stack([s[0] for s in samples])
        return paddle.to_tensor(xs), paddle.to_tensor(np.asarray([s[1] for s in samples], dtype="int64"))


    def one_arg_loss(logits):
        return logits.mean()
''')


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    name = f"mymod_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    (tmp_path / f"{name}_broken.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for mod in (name, name + "_broken"):
        sys.modules.pop(mod, None)


def _config(mod, tmp_path, **sections):
    cfg = {"Global": {"epoch_num": 2, "save_model_dir": str(tmp_path / "out"), "print_batch_step": 1},
           "Architecture": {"name": f"{mod}.TinyNet", "in_features": 3, "hidden": 5},
           "Loss": {"name": f"{mod}.scaled_ce", "scale": 1.0},
           "Metric": {"name": [f"{mod}.label_share", "acc"]},
           "Train": {"dataset": {"name": f"{mod}.MyData", "n": 40, "every": 4}, "loader": {"batch_size_per_card": 8}},
           "Eval": {"dataset": {"name": f"{mod}.MyData", "n": 20, "every": 5}, "loader": {"batch_size_per_card": 8}},
           "Strategy": {"name": "CombinedStrategy", "optimizer_name": "adam", "learning_rate": 0.05}}
    cfg.update(sections)
    return cfg


def _check(cfg, *overrides):
    return check_config(apply_overrides(cfg, parse_overrides([list(overrides)])) if overrides else cfg)


def test_the_issue_example_no_longer_refuses_an_import_path(user_module, tmp_path):
    cfg = _check(_config(user_module, tmp_path))
    assert cfg["Architecture"] == {"name": f"{user_module}.TinyNet", "in_features": 3, "hidden": 5}
    assert cfg["Train"]["dataset"] == {"name": f"{user_module}.MyData", "n": 40, "every": 4}
    assert cfg["Metric"]["name"] == [{"name": f"{user_module}.label_share"}, "acc"]


def test_tools_train_trains_the_users_model_data_loss_and_metric(user_module, tmp_path):
    """A real subprocess: scale 0 makes every gradient 0, so Adam leaves the constant 0.5 weights exactly as they
    were (the loss's keyword reached it); label_share(cls=1) on the Eval data (every 5th of 20 samples) is 4/20;
    40 samples / batch 8 = 5 updates per epoch, 2 epochs."""
    import yaml
    cfg = _config(user_module, tmp_path, Loss={"name": f"{user_module}.scaled_ce", "scale": 0.0})
    path = tmp_path / "mine.yml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "-c", str(path)],
                       capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    summary = json.load(open(tmp_path / "out" / "summary.json"))
    assert summary["steps"] == 10
    assert summary["best"]["metric"] == "label_share" and summary["best"]["value"] == pytest.approx(4 / 20)
    from safetensors.numpy import load_file
    weights = load_file(str(tmp_path / "out" / "best_model" / "model.safetensors"))
    assert weights["body.weight"].shape == (3, 5)  # Architecture.hidden reached TinyNet
    for name, w in weights.items():
        np.testing.assert_array_equal(w, np.full(w.shape, 0.5, dtype="float32"), err_msg=name)


def test_the_working_directory_is_searched(user_module, tmp_path):
    """`python tools/train.py` from the folder holding the module, without PYTHONPATH: an error in the config
    (not the import) is what stops it, so the module was found."""
    import yaml
    cfg = _config(user_module, tmp_path, Architecture={"name": f"{user_module}.TinyNet", "in_featurs": 3})
    (tmp_path / "mine.yml").write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = ROOT
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train.py"), "-c", "mine.yml"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))
    assert r.returncode != 0
    assert (f"ValueError: Architecture: unknown key 'in_featurs' (value 3) ({user_module}.TinyNet takes no such "
            f"argument). Allowed keys: hidden, in_features, init. Did you mean 'in_features'?") in r.stderr, \
        r.stderr[-2000:]


def test_build_trainer_from_python_with_dict_samples_a_class_metric_and_a_collate_path(user_module, tmp_path):
    cfg = _config(user_module, tmp_path,
                  Architecture={"name": f"{user_module}.make_net", "width": 2},
                  Metric={"name": f"{user_module}.AlwaysHalf", "value": 0.25},
                  Train={"dataset": {"name": f"{user_module}.MyDictData", "n": 16},
                         "loader": {"batch_size_per_card": 8}},
                  Eval={"dataset": {"name": f"{user_module}.MyDictData", "n": 8}})
    paddle.seed(0)
    trainer, model, _ = ps.program.build_trainer(cfg)  # checked here: it has not been yet
    assert model.body.weight.shape == [3, 2]
    summary = trainer.finetune_and_eval()
    assert summary["steps"] == 4 and summary["best"]["metric"] == "always" and summary["best"]["value"] == 0.25
    assert model.body.weight.numpy().max() != 0.5  # scale 1: it trained

    mod = sys.modules[user_module]
    cfg = _config(user_module, tmp_path, Global={"epoch_num": 1, "save_model_dir": str(tmp_path / "o2")})
    cfg["Train"]["loader"]["collate_fn"] = f"{user_module}.stack"
    trainer, _, _ = ps.program.build_trainer(cfg)
    assert trainer.collate_fn is mod.stack and trainer.loss_fn.keywords == {"scale": 1.0}
    assert trainer.lengths is None  # length grouping is for the built-in text datasets


@pytest.mark.parametrize("override, error, words", [
    ("Architecture.name={mod}.TinyNett", ValueError,
     ["Architecture.name: '{mod}.TinyNett' does not import: module '{mod}'", "has no attribute 'TinyNett'",
      "Did you mean 'TinyNet'?"]),
    ("Architecture.hiden=3", ValueError, ["Architecture: unknown key 'hiden' (value 3)", "Did you mean 'hidden'?"]),
    ("Architecture={{name: {mod}.TinyNet}}", ValueError, ["Architecture: missing key(s) 'in_features'"]),
    ("Train.dataset.name=nosuchmod_xyz.MyData", ValueError,
     ["Train.dataset.name: 'nosuchmod_xyz.MyData' does not import: no module named 'nosuchmod_xyz'"]),
    ("Eval.dataset.name={mod}_broken.MyData", ValueError,
     ["Eval.dataset.name: '{mod}_broken.MyData' does not import: importing '{mod}_broken' raised RuntimeError: "
      "boom at import"]),
    ("Train.dataset.evry=2", ValueError, ["Train.dataset: unknown key 'evry' (value 2)", "Did you mean 'every'?"]),
    ("Train.dataset.name=RottenTomatos", ValueError,
     ["Train.dataset.name: 'RottenTomatos' is not available; allowed: RottenTomatoes, TextClassificationDataset, or "
      "an import path", "Did you mean 'RottenTomatoes'?"]),
    ("Loss={{name: {mod}.scaled_ce}}", ValueError, ["Loss: missing key(s) 'scale'"]),
    ("Loss={{name: {mod}.one_arg_loss}}", TypeError, ["Loss:", "takes 1 positional argument(s); it is called with 2"]),
    ("Loss.scal=2", ValueError, ["Loss: unknown key 'scal' (value 2)", "Did you mean 'scale'?"]),
    ("Loss={{name: BCEWithLogitsLos}}", ValueError, ["Loss.name: 'BCEWithLogitsLos' is not available",
                                                     "Did you mean 'BCEWithLogitsLoss'?"]),
    ("Loss={{name: MSELoss, reduction: sum}}", ValueError, ["Loss.reduction must be 'mean'", "'sum'"]),
    ("Loss={{name: NLLLoss, ignore_idx: 3}}", ValueError, ["Loss: unknown key 'ignore_idx' (value 3)",
                                                           "Did you mean 'ignore_index'?"]),
    ("Metric.name=[acc, {{name: {mod}.label_share, clss: 0}}]", ValueError,
     ["Metric.name[1]: unknown key 'clss' (value 0)", "Did you mean 'cls'?"]),
    ("Metric={{name: [acc, {mod}.label_share], cls: 0}}", ValueError,
     ["Metric: unknown key 'cls' (value 0)", "give them per item"]),
    ("Metric.name=[acc, f2]", ValueError, ["Metric.name[1]: 'f2' is not available", "Did you mean 'f1'?"]),
    ("Metric.name=[acc, {{name: f2}}]", ValueError, ["Metric.name[1]: 'f2' is not available", "Did you mean 'f1'?"]),
    ("Metric.name=[{{name: f1, average: macro}}]", ValueError,
     ["Metric.name[0]: the built-in metric 'f1' takes no arguments, got average='macro'"]),
    ("Train.loader.collate_fn={mod}.stak", ValueError, ["Train.loader.collate_fn: '{mod}.stak' does not import",
                                                         "Did you mean 'stack'?"]),
    ("Eval.loader.collate_fn={mod}.stack", ValueError, ["Eval.loader.collate_fn: set collate_fn in Train.loader"]),
    ("Architecture.name=3", TypeError, ["Architecture.name must be a name (MiniLMClassifier) or an import path",
                                        "got 3 (int)"]),
    ("Architecture.name={mod}.np", TypeError, ["Architecture.name: '{mod}.np' is a module, not a class or a function"]),
])
def test_bad_names_and_arguments_name_the_yaml_key(user_module, tmp_path, override, error, words):
    with pytest.raises(error) as info:
        _check(_config(user_module, tmp_path), override.format(mod=user_module))
    for word in words:
        assert word.format(mod=user_module) in str(info.value), (word, str(info.value))


def test_any_paddle_nn_loss_by_class_name(user_module, tmp_path):
    cfg = _check(_config(user_module, tmp_path, Loss={"name": "CrossEntropyLoss", "weight": [1, 3]}))
    from paddle_strategy.program import build_loss
    loss = build_loss(cfg)
    logits, label = paddle.to_tensor([[2.0, 0.0], [0.0, 1.0]]), paddle.to_tensor([0, 1])
    # weighted mean: sum_i w[y_i] * ce_i / sum_i w[y_i]
    ce = [np.log(1 + np.exp(-2.0)), np.log(1 + np.exp(-1.0))]
    assert float(loss(logits, label)) == pytest.approx((1 * ce[0] + 3 * ce[1]) / 4, rel=1e-5)
    with pytest.raises(ValueError, match="Loss.reduction must be 'mean'"):  # the same class by its path
        _check(_config(user_module, tmp_path, Loss={"name": "paddle.nn.NLLLoss", "reduction": "none"}))
    cfg = _check(_config(user_module, tmp_path, Loss={"name": "SmoothL1Loss", "delta": 2.0}))
    loss = build_loss(cfg)
    assert isinstance(loss, paddle.nn.SmoothL1Loss)
    x, y = paddle.to_tensor([0.0, 3.0]), paddle.to_tensor([1.0, 0.0])
    # Paddle's SmoothL1Loss: 0.5 d^2 if |d| < delta else delta * (|d| - 0.5 delta), averaged
    assert float(loss(x, y)) == pytest.approx((0.5 * 1 + 2.0 * (3 - 1.0)) / 2, rel=1e-6)
