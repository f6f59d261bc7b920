"""One build path: PaddleOCR's Optimizer section is a CombinedStrategy underneath, so lr_find's sweep
and a rebuild behave the same on both paths (measured with plain SGD / Adam arithmetic from the weights)."""
import numpy as np
import paddle
import pytest

import paddle_strategy as ps
from paddle_strategy.strategies.ppocr import OptimizerConfig, ppocr_strategy
from paddle_strategy.config import load_config
from paddle_strategy.lr_find import lr_find

ONE_CYCLE_SECTION = {"name": "Adam", "beta1": 0.9, "beta2": 0.999,
                     "lr": {"name": "one_cycle_lr", "max_lr": 0.01}}  # cycles beta1 0.95 -> 0.85 -> 0.95


def _data(n=6):
    rng = np.random.default_rng(0)
    return [(paddle.to_tensor(rng.normal(size=(8, 3)).astype("float32")),
             paddle.to_tensor(rng.normal(size=(8, 1)).astype("float32"))) for _ in range(n)]


def _trajectory(adam_beta1=None, **sweep):
    """Weights seen at each sweep step (lr_find restores them afterwards, so they are taken in loss_fn);
    adam_beta1: sweep with a plain paddle Adam of that beta1 over the model instead."""
    paddle.seed(0)
    model = paddle.nn.Linear(3, 1)
    if adam_beta1 is not None:
        sweep["optimizer"] = paddle.optimizer.Adam(beta1=adam_beta1, beta2=0.999, parameters=model.parameters())
    seen = []

    def loss_fn(out, label):
        seen.append(model.weight.numpy().copy())
        return paddle.nn.functional.mse_loss(out, label)

    lr_find(model, loss_fn, _data(), 1e-3, 1e-1, num_it=6, stop_div=False, **sweep)
    return np.stack(seen), model


def test_lr_find_on_a_ppocr_section_sweeps_with_the_optimizers_own_momentum():
    got, model = _trajectory(strategy=OptimizerConfig(ONE_CYCLE_SECTION))
    # the same sweep with the section's optimizer as it is (beta1 0.9, no cycling) ...
    own, _ = _trajectory(adam_beta1=0.9)
    # ... and with the one-cycle momentum the schedule would have set at its first step
    cycled, _ = _trajectory(adam_beta1=0.95)
    assert not np.allclose(own, cycled, rtol=0, atol=1e-7)  # the measurement can tell the two apart
    np.testing.assert_allclose(got, own, rtol=0, atol=1e-7)


def test_lr_find_leaves_fit_one_cycles_momentum_out():
    """FitOneCycleStrategy cycles beta1 0.95 -> 0.85; the sweep must run at the optimizer's own beta1 (0.9) with
    everything else of the strategy: fastai's Adam (beta2 0.99, eps 1e-5) and decoupled wd 0.01 off biases."""
    got, _ = _trajectory(strategy=ps.FitOneCycleStrategy(lr_max=1e-2))

    def fastai_adam(beta1):
        paddle.seed(0)
        model = paddle.nn.Linear(3, 1)
        decayed = {model.weight.name}
        return _trajectory_with(model, paddle.optimizer.AdamW(
            beta1=beta1, beta2=0.99, epsilon=1e-5, weight_decay=0.01, parameters=model.parameters(),
            apply_decay_param_fun=decayed.__contains__))

    assert not np.allclose(fastai_adam(0.95), fastai_adam(0.9), rtol=0, atol=1e-7)
    np.testing.assert_allclose(got, fastai_adam(0.9), rtol=0, atol=1e-7)


def _trajectory_with(model, optimizer):
    seen = []

    def loss_fn(out, label):
        seen.append(model.weight.numpy().copy())
        return paddle.nn.functional.mse_loss(out, label)

    lr_find(model, loss_fn, _data(), 1e-3, 1e-1, num_it=6, stop_div=False, optimizer=optimizer)
    return np.stack(seen)


def test_tools_lr_find_gets_the_ppocr_section_as_a_strategy(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("Global: {epoch_num: 1}\nArchitecture: {name: MiniLMClassifier}\n"
                   "Train: {dataset: {name: RottenTomatoes, size: 64}}\n"
                   "Optimizer: {name: Adam, beta1: 0.9, lr: {name: one_cycle_lr, max_lr: 0.01}}\n")
    from paddle_strategy.program import check_config
    strategy = check_config(load_config(str(cfg)))["_strategy"]  # what tools/lr_find.py hands to lr_find
    assert isinstance(strategy, OptimizerConfig)
    got, _ = _trajectory(strategy=strategy)
    own, _ = _trajectory(adam_beta1=0.9)
    np.testing.assert_allclose(got, own, rtol=0, atol=1e-7)


def _sgd_step_delta(model, optimizer, x, y):
    before = model.weight.numpy().copy()
    loss = paddle.nn.functional.mse_loss(model(x), y)
    loss.backward()
    grad = model.weight.grad.numpy().copy()
    optimizer.step()
    optimizer.clear_grad()
    return before, grad, model.weight.numpy().copy()


@pytest.mark.parametrize("path", ["CombinedStrategy", "Optimizer section"])
def test_rebuild_restores_the_parameters_own_paramattr_regularizer(path):
    own = paddle.regularizer.L2Decay(0.5)
    paddle.seed(0)
    model = paddle.nn.Linear(3, 1, weight_attr=paddle.ParamAttr(regularizer=own), bias_attr=False)
    x, y = _data(1)[0]
    lr = 0.1

    def build(l2):
        if path == "CombinedStrategy":
            return ps.CombinedStrategy("sgd", learning_rate=lr, regularization={"L2": l2}).build(model, 10)
        section = {"name": "SGD", "lr": {"name": "Const", "learning_rate": lr}}
        if l2:
            section["regularizer"] = {"name": "L2", "factor": l2}
        return ps.build_optimizer(section, 1, 10, model)

    opt, _ = build(0.2)  # the strategy's L2 replaces the parameter's own regularizer ...
    w, g, after = _sgd_step_delta(model, opt, x, y)
    np.testing.assert_allclose(after, w - lr * (g + 0.2 * w), rtol=1e-6, atol=1e-7)
    opt, _ = build(0.0)  # ... and a rebuild without it gives the parameter its own L2Decay(0.5) back
    w, g, after = _sgd_step_delta(model, opt, x, y)
    np.testing.assert_allclose(after, w - lr * (g + 0.5 * w), rtol=1e-6, atol=1e-7)


def test_ppocr_section_translates_to_one_combined_strategy():
    s = ppocr_strategy({"name": "AdamW", "weight_decay": 0.05, "no_weight_decay_name": "norm bias",
                        "one_dim_param_no_weight_decay": True, "clip_norm_global": 5,
                        "lr": {"name": "Cosine", "learning_rate": 0.002}}, 2, 10)
    assert isinstance(s, ps.CombinedStrategy)
    assert s.regularization == {"L2": 0.0, "L2SP": 0.0, "L1": 0.0, "weight_decay": 0.05,
                                "no_weight_decay": {"names": ["norm", "bias"], "one_dim": True}}
    assert s.clip == {"GlobalNorm": 5.0, "Norm": 0.0} and s.learning_rate == 0.002
    l1 = ppocr_strategy({"name": "Momentum", "momentum": 0.9, "regularizer": {"name": "L1", "factor": 1e-4},
                         "lr": 0.1}, 1, 5)
    assert l1.regularization["L1"] == 1e-4 and l1.regularization["L2"] == 0.0


def test_l1_in_combined_strategy_is_coeff_times_sign():
    paddle.seed(0)
    model = paddle.nn.Linear(3, 1, bias_attr=False)
    opt, _ = ps.CombinedStrategy("sgd", learning_rate=0.1, regularization={"L1": 0.3}).build(model, 10)
    x, y = _data(1)[0]
    w, g, after = _sgd_step_delta(model, opt, x, y)
    np.testing.assert_allclose(after, w - 0.1 * (g + 0.3 * np.sign(w)), rtol=1e-6, atol=1e-7)


def test_one_batch_rule_for_train_predict_and_lr_find():
    from paddle_strategy.training.loading import split_batch
    x, y = np.ones((2, 3), "float32"), np.zeros((2,), "int64")
    args, kwargs, label = split_batch((x, x, y))
    assert len(args) == 2 and kwargs == {} and isinstance(label, paddle.Tensor)  # NumPy fields become tensors
    args, kwargs, label = split_batch({"input": x, "labels": y})
    assert args == () and list(kwargs) == ["input"] and label.shape == [2]
    assert split_batch([x], has_label=False)[0][0].shape == [2, 3]
    with pytest.raises(TypeError, match=r"lr_find: each batch must be a tuple or list .* got a list of length 1"):
        split_batch([x], where="lr_find")

    class DictModel(paddle.nn.Layer):  # keyword inputs now work in lr_find as in the Trainer
        def __init__(self):
            super().__init__()
            self.fc = paddle.nn.Linear(3, 1)

        def forward(self, input):
            return self.fc(input)

    model = DictModel()
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(3, 8, 3)).astype("float32"), rng.normal(size=(3, 8, 1)).astype("float32")
    data = [{"input": paddle.to_tensor(x), "label": paddle.to_tensor(y)} for x, y in zip(xs, ys)]
    W, b = model.fc.weight.numpy().astype("float64"), model.fc.bias.numpy().astype("float64")
    sgd = paddle.optimizer.SGD(learning_rate=1.0, parameters=model.parameters())
    res = lr_find(model, paddle.nn.functional.mse_loss, data, 1e-4, 1e-2, num_it=5, stop_div=False, optimizer=sgd)
    # the sweep written out: the batches in turn (0, 1, 2, 0, 1) as fc(input=...) against 'label', each loss
    # taken before its SGD update at lr_i = 1e-4 * 100 ** (i / 4)
    lrs, losses = [1e-4 * 100 ** (i / 4) for i in range(5)], []
    for i, lr in enumerate(lrs):
        x, y = xs[i % 3].astype("float64"), ys[i % 3].astype("float64")
        err = x @ W + b - y
        losses.append(float(np.mean(err ** 2)))
        dpred = 2 * err / err.size
        W, b = W - lr * x.T @ dpred, b - lr * dpred.sum(axis=0)
    np.testing.assert_allclose(res.lrs, lrs, rtol=1e-12)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-5)
    assert res.stop_reason == "completed"
