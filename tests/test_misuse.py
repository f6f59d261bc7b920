"""Issue 20, items 8-11: misuse of the Trainer is named — a loss not connected to the model, errors from inside a
step (metrics, losses, labels, datasets), an always-NaN metric, an empty eval, a dataset that grows, and the exit
status of an uncaught Ctrl-C (a real SIGINT to a real subprocess)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import paddle
import pytest

import paddle_strategy as ps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def samples(n=32, float_labels=False):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32" if float_labels else "int64")
    return [(x[i], y[i]) for i in range(n)]


def config(tmp_path, **kwargs):
    return ps.RunConfig(checkpoint_dir=str(tmp_path / "ckpt"), batch_size=8, use_cuda=False, log_interval=100,
                        **kwargs)


def linear(seed=0):
    paddle.seed(seed)
    return paddle.nn.Linear(4, 2)


def weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


class TupleForward(paddle.nn.Layer):
    """forward returns (logits, features), as many PaddleNLP / PaddleClas models do."""

    def __init__(self):
        super().__init__()
        self.fc = paddle.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x), x


class Stream(paddle.io.IterableDataset):
    def __iter__(self):
        yield from samples()


class Growing:
    """A dataset whose length grows after the Trainer was built (e.g. a list that someone appends to)."""

    def __init__(self):
        self.items = samples()

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


# ------------------------------------------------------------------------------------------------ item 8
def test_8_a_loss_not_connected_to_the_model_is_an_error_at_the_first_update(tmp_path):
    model = linear()
    before = weights(model)
    trainer = ps.Trainer(model, config(tmp_path), samples(), loss_fn=lambda out, label: paddle.to_tensor(1.0))
    with pytest.raises(RuntimeError) as info:  # before: 4 steps, [done], a checkpoint, the weights unchanged
        trainer.finetune()
    message = str(info.value)
    for words in ("the first update gave no gradient to any trainable parameter", "loss.stop_gradient is True",
                  "paddle.to_tensor(1.0)", "loss_fn must compute the loss from the model's output"):
        assert words in message, message
    assert trainer.global_step == 0 and not [n for n in os.listdir(tmp_path / "ckpt") if n.startswith("step_")]
    assert all(np.array_equal(weights(model)[k], v) for k, v in before.items())
    # detached from the graph another way: computed through NumPy
    trainer = ps.Trainer(linear(), config(tmp_path / "b"), samples(), loss_fn=lambda out, label: paddle.to_tensor(
        float(paddle.nn.functional.cross_entropy(out, label))))
    with pytest.raises(RuntimeError, match="no gradient to any trainable parameter"):
        trainer.finetune()


# ------------------------------------------------------------------------------------------------ item 9
@pytest.mark.parametrize("case, error, words", [
    ("tuple forward, CrossEntropyLoss", AttributeError,
     ["loss_fn CrossEntropyLoss(output, label) raised AttributeError: 'tuple' object has no attribute 'shape'",
      "output: tuple of 2 (Tensor float32 [8, 2], Tensor float32 [8, 4]); label: Tensor int64 [8]",
      "forward returned a tuple", "out[0]"]),
    ("reduction='none'", ValueError, ["loss_fn CrossEntropyLoss returned a loss of shape [8]", "reduction='mean'"]),
    ("float labels, CrossEntropyLoss", TypeError,
     ["loss_fn CrossEntropyLoss takes class indices as labels", "Tensor float32 [8]", "np.int64", "soft_label"]),
    ("IterableDataset", TypeError, ["train_dataset is a paddle.io.IterableDataset (Stream)", "map-style"]),
    ("metric returns an array", TypeError,
     ["metric 'per_sample': per_sample(preds, labels) must return one number, got ndarray bool [8]",
      "preds: ndarray float32 [8, 2]; labels: ndarray int64 [8]"]),
    ("metric returns a string", TypeError, ["metric 'verdict'", "must return one number, got str 'good'"]),
])
def test_9_the_first_batch_names_the_loss_metric_or_dataset_at_construction(tmp_path, case, error, words):
    def per_sample(preds, labels):
        return np.asarray(preds).argmax(-1) == np.asarray(labels)

    def verdict(preds, labels):
        return "good"

    kwargs = {"model": linear(), "train_dataset": samples(), "loss_fn": paddle.nn.CrossEntropyLoss()}
    kwargs.update({
        "tuple forward, CrossEntropyLoss": {"model": TupleForward()},
        "reduction='none'": {"loss_fn": paddle.nn.CrossEntropyLoss(reduction="none")},
        "float labels, CrossEntropyLoss": {"train_dataset": samples(float_labels=True)},
        "IterableDataset": {"train_dataset": Stream()},
        "metric returns an array": {"metrics": [per_sample]},
        "metric returns a string": {"metrics": [verdict]},
    }[case])
    with pytest.raises(error) as info:
        ps.Trainer(config=config(tmp_path), **kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


@pytest.mark.parametrize("case, error, words", [
    ("returns a float", TypeError, ["loss_fn loss_fn returned float 0.5", "must return a paddle Tensor"]),
    ("reduction='none'", ValueError, ["loss_fn loss_fn returned a loss of shape [8]", "the batch's mean"]),
    ("tuple forward", AttributeError, ["loss_fn loss_fn(output, label) raised AttributeError",
                                       "forward returned a tuple"]),
    ("float labels", OSError, ["the backward pass of the loss of loss_fn loss_fn raised OSError",
                               "CrossEntropyWithSoftmaxGradCPUKernel", "label: Tensor float32 [8]"]),
])
def test_9_a_loss_function_of_yours_is_named_at_the_first_step_and_not_called_before(tmp_path, case, error, words):
    calls = []

    def loss_fn(out, label):
        calls.append(1)
        if case == "returns a float":
            return 0.5
        if case == "tuple forward":
            return paddle.nn.functional.cross_entropy(out, label)
        return paddle.nn.functional.cross_entropy(out, label, reduction="none" if case == "reduction='none'" else
                                                  "mean")

    model = TupleForward() if case == "tuple forward" else linear()
    trainer = ps.Trainer(model, config(tmp_path), samples(float_labels=case == "float labels"), loss_fn=loss_fn)
    assert calls == []  # the constructor does not call a loss function of yours: it may count its calls
    with pytest.raises(error) as info:
        trainer.finetune()
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    if error in (AttributeError, OSError):  # raised inside the loss or backward: the original is chained
        assert type(info.value.__cause__) is error


def test_9_a_metric_failing_in_training_is_named_and_finetune_continues_after_it(tmp_path):
    calls = {"n": 0, "fail_at": 4}

    def flaky(preds, labels):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise ZeroDivisionError("no positive label")
        return 0.5

    model = linear()
    trainer = ps.Trainer(model, config(tmp_path, num_epoch=2), samples(), loss_fn=paddle.nn.CrossEntropyLoss(),
                         metrics=[flaky])
    assert calls["n"] == 1  # the constructor tried it on the first batch
    with pytest.raises(ZeroDivisionError) as info:
        trainer.finetune()
    message = str(info.value)
    assert message.startswith("metric 'flaky': flaky(preds, labels) raised ZeroDivisionError: no positive label"), \
        message
    assert "training metrics of step 3" in message and isinstance(info.value.__cause__, ZeroDivisionError)
    # before: the step stayed "in flight" and, with no checkpoint yet, finetune() refused for good
    summary = trainer.finetune()
    assert summary["steps"] == 8
    reference = linear()  # the same run without the failure
    ps.Trainer(reference, config(tmp_path / "ref", num_epoch=2), samples(), loss_fn=paddle.nn.CrossEntropyLoss(),
               metrics=[lambda p, l: 0.5]).finetune()
    assert all(np.array_equal(weights(model)[k], v) for k, v in weights(reference).items())


def test_9_a_paddle_metric_that_raises_is_named(tmp_path):
    class Broken(paddle.metric.Accuracy):
        def compute(self, pred, label, *args):
            raise ValueError("shapes do not match")

    with pytest.raises(ValueError, match=r"^metric 'acc': compute\(preds, labels\) raised ValueError: shapes do not "
                                         r"match"):
        ps.Trainer(linear(), config(tmp_path), samples(), loss_fn=paddle.nn.CrossEntropyLoss(), metrics=[Broken()])


# ------------------------------------------------------------------------------------------------ item 10
def test_10_an_always_nan_metric_is_said_once(tmp_path, capsys):
    def nan_metric(preds, labels):
        return float("nan")

    trainer = ps.Trainer(linear(), config(tmp_path, num_epoch=2, eval_interval=2), samples(), samples(16),
                         loss_fn=paddle.nn.CrossEntropyLoss(), metrics=[nan_metric])
    trainer.finetune_and_eval()
    out = capsys.readouterr().out
    assert out.count("nan_metric is NaN") == 1, out  # before: no word, and no best_model
    assert "never becomes the best model" in out and out.count("[eval] step") >= 4
    assert not os.path.exists(tmp_path / "ckpt" / "best_model")


def test_10_eval_of_an_empty_dataset_is_refused(tmp_path):
    trainer = ps.Trainer(linear(), config(tmp_path), samples(), loss_fn=paddle.nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"Trainer.eval: dataset is empty"):  # before: {'loss': nan}
        trainer.eval([])
    with pytest.raises(TypeError, match="Trainer.eval: dataset is a paddle.io.IterableDataset"):
        trainer.eval(Stream())
    assert set(trainer.eval(samples(8))) == {"loss"}


def test_10_a_dataset_that_grows_after_construction_is_refused(tmp_path):
    data = Growing()
    trainer = ps.Trainer(linear(), config(tmp_path), data, loss_fn=paddle.nn.CrossEntropyLoss())
    data.items += samples(8)  # before: trained on the first 32 samples without a word
    with pytest.raises(ValueError) as info:
        trainer.finetune()
    assert "train_dataset has 40 samples now, 32 when the Trainer was built" in str(info.value)
    assert "build a new Trainer" in str(info.value)


# ------------------------------------------------------------------------------------------------ item 11
SLOW_MODULE = textwrap.dedent('''
    import os
    import time

    import numpy as np
    import paddle

    CALLS = {"n": 0}


    class Data(paddle.io.Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            return np.full([4], i / 64, "float32"), np.int64(i % 2)


    def slow_ce(logits, label):
        """Cross-entropy that takes 0.1 s and writes `started` at its third call."""
        CALLS["n"] += 1
        if CALLS["n"] == 3:
            open(os.environ["STARTED_FILE"], "w").close()
        time.sleep(0.1)
        return paddle.nn.functional.cross_entropy(logits, label)
''')

SCRIPT = textwrap.dedent('''
    import paddle
    import paddle_strategy as ps
    import slowmod

    paddle.seed(0)
    trainer = ps.Trainer(paddle.nn.Linear(4, 2), ps.RunConfig(checkpoint_dir="ckpt", batch_size=4, num_epoch=2,
                         use_cuda=False, log_interval=100), slowmod.Data(), loss_fn=slowmod.slow_ce)
    trainer.finetune()
''')

CONFIG = textwrap.dedent('''
    Global: {epoch_num: 2, save_model_dir: ./ckpt, print_batch_step: 100}
    Architecture: {name: paddle.nn.Linear, in_features: 4, out_features: 2}
    Loss: {name: slowmod.slow_ce}
    Train: {dataset: {name: slowmod.Data}, loader: {batch_size_per_card: 4}}
    Strategy: {name: AdamWeightDecayStrategy, learning_rate: 1.0e-2}
''')


@pytest.mark.parametrize("how", ["tools/train.py", "a script"])
def test_11_an_uncaught_ctrl_c_exits_with_status_130_after_a_checkpoint(tmp_path, how):
    (tmp_path / "slowmod.py").write_text(SLOW_MODULE)
    (tmp_path / "run.py").write_text(SCRIPT)
    (tmp_path / "run.yml").write_text(CONFIG)
    started = tmp_path / "started"
    command = ([os.path.join(ROOT, "tools", "train.py"), "-c", "run.yml"] if how == "tools/train.py"
               else ["run.py"])
    env = dict(os.environ, STARTED_FILE=str(started),
               PYTHONPATH=os.pathsep.join([ROOT, str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.Popen([sys.executable, *command], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not started.exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert started.exists(), p.communicate()
        p.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, (p.returncode, out[-2000:], err[-3000:])  # before: 1
    assert "[stop] SIGINT: training stopped after step" in out
    assert "Traceback" not in err, err[-3000:]
    assert [n for n in os.listdir(tmp_path / "ckpt") if n.startswith("step_")]
    r = subprocess.run([sys.executable, *command], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[resume]" in r.stdout and "[done] 32 steps" in r.stdout, r.stdout[-2000:]
