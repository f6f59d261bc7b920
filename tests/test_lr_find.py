"""lr_find: the swept learning rates measured from SGD updates, smoothing and early stop against a simulation
done here, suggestions on a hand-worked curve, exact restoration of model and optimizer, validation, PNG."""
import math
import random
import types

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import paddle_strategy as ps
from helpers import PLOTS, batch, mlp, needs
from paddle_strategy.lr_find import LRFindResult, lr_find, minimum, smooth_losses, steep, suggest, valley

PNG = b"\x89PNG\r\n\x1a\n"


class Linear64(nn.Layer):
    """loss = sum(c * w): the gradient is c at every step, so an SGD update w -= lr * c reveals lr."""

    def __init__(self, c, w0=0.0):
        super().__init__()
        self.c = paddle.to_tensor(np.asarray(c, dtype="float64"))
        self.w = self.create_parameter([len(c)], dtype="float64",
                                       default_initializer=nn.initializer.Constant(w0))
        self.seen = []  # w at every forward

    def forward(self, x):
        self.seen.append(self.w.numpy().copy())
        return (self.c * self.w).sum() + x.sum() * 0


class RecordingSGD(paddle.optimizer.SGD):
    """SGD that keeps (w before, gradient, w after) of every update in `log.trace` (lr_find rolls back the
    optimizer's own containers, so the record lives in a plain object)."""

    def __init__(self, param, lr=0.1):
        super().__init__(learning_rate=lr, parameters=[param])
        self.param, self.log = param, types.SimpleNamespace(trace=[])

    def step(self):
        before, grad = self.param.numpy().copy(), self.param.grad.numpy().copy()
        super().step()
        self.log.trace.append((before, grad, self.param.numpy().copy()))


def identity_loss(out, label):
    return out


def x_batches(n=4):
    return [(paddle.to_tensor(np.full([2], float(i))), paddle.to_tensor(np.zeros([1]))) for i in range(n)]


# ------------------------------------------------------------------------------------------ the sweep
def test_sweep_applies_exponential_lrs_one_update_each():
    c = np.array([1.0, 2.0, -0.5])
    model = Linear64(c)
    opt = RecordingSGD(model.w)
    start, end, n = 1e-5, 3.0, 25
    res = lr_find(model, identity_loss, x_batches(), start, end, n, optimizer=opt, stop_div=False)
    expected = np.array([start * (end / start) ** (i / (n - 1)) for i in range(n)])
    assert res.stop_reason == "completed" and len(opt.log.trace) == n
    np.testing.assert_allclose(res.lrs, expected, rtol=1e-12)
    applied = np.array([np.mean((b - a) / g) for b, g, a in opt.log.trace])  # w_after = w_before - lr * grad
    np.testing.assert_allclose(applied, expected, rtol=1e-6)  # Paddle holds the LR in float32
    for b, g, _ in opt.log.trace:
        np.testing.assert_array_equal(g, c)
    # loss_i is measured before update i; raw and smoothed losses follow
    losses = np.array([float((c * w).sum()) for w in model.seen])
    np.testing.assert_allclose(res.losses, losses, rtol=1e-12)
    avg, smoothed = 0.0, []
    for i, loss in enumerate(losses):
        avg = 0.98 * avg + 0.02 * loss
        smoothed.append(avg / (1 - 0.98 ** (i + 1)))
    np.testing.assert_allclose(res.smoothed, smoothed, rtol=1e-12)
    np.testing.assert_allclose(smooth_losses(losses, 0.98), smoothed, rtol=1e-12)
    np.testing.assert_array_equal(model.w.numpy(), np.zeros(3))  # restored


class Quadratic(nn.Layer):
    """loss = (w - 3)^2 + 1: SGD multiplies w - 3 by (1 - 2 lr) per step, so it diverges once lr > 1."""

    def __init__(self, w0=0.0):
        super().__init__()
        self.w = self.create_parameter([1], dtype="float64", default_initializer=nn.initializer.Constant(w0))

    def forward(self, x):
        return ((self.w - 3.0) ** 2).sum() + 1.0 + x.sum() * 0


def simulate_quadratic(lrs, smooth, threshold):
    """The sweep on Quadratic done by hand: (losses, smoothed) up to and including the stopping point."""
    w, avg, best, losses, smoothed = 0.0, 0.0, math.inf, [], []
    for i, lr in enumerate(lrs):
        loss = (w - 3.0) ** 2 + 1.0
        avg = smooth * avg + (1 - smooth) * loss
        s = avg / (1 - smooth ** (i + 1))
        losses.append(loss), smoothed.append(s)
        best = min(best, s)
        if s > threshold * best:
            break
        w -= lr * 2 * (w - 3.0)
    return np.array(losses), np.array(smoothed)


@pytest.mark.parametrize("smooth, threshold", [(0.98, 4.0), (0.5, 2.0)])
def test_stops_when_smoothed_loss_diverges(smooth, threshold):
    start, end, n = 1e-3, 50.0, 80
    lrs = [start * (end / start) ** (i / (n - 1)) for i in range(n)]
    losses, smoothed = simulate_quadratic(lrs, smooth, threshold)
    assert len(losses) < n  # the hand simulation diverges too
    model = Quadratic()
    res = lr_find(model, identity_loss, x_batches(), start, end, n, optimizer=paddle.optimizer.SGD(
        parameters=model.parameters()), smooth=smooth, div_threshold=threshold)
    assert res.stop_reason == "diverged"
    assert len(res.lrs) == len(losses)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-5)
    assert res.smoothed[-1] > threshold * res.smoothed[:-1].min()
    assert np.all(res.smoothed[:-1] <= threshold * np.minimum.accumulate(res.smoothed[:-1]))
    np.testing.assert_array_equal(model.w.numpy(), [0.0])


def test_stop_div_false_runs_on_until_non_finite():
    model = Quadratic()
    res = lr_find(model, identity_loss, x_batches(), 1e-3, 1e4, 200, stop_div=False,
                  optimizer=paddle.optimizer.SGD(parameters=model.parameters()))
    assert res.stop_reason == "non-finite loss"  # (1 - 2 lr)^k overflows float64
    assert not np.isfinite(res.smoothed[-1]) and np.all(np.isfinite(res.smoothed[:-1]))
    assert 50 < len(res.lrs) < 200
    assert all(np.isfinite(v) for v in res.suggestions.values())


def test_nan_loss_stops_and_is_cut_from_suggestions():
    model, data = mlp(), [batch(seed=s) for s in range(3)]
    calls = []

    def loss_fn(out, y):
        calls.append(1)
        loss = nn.functional.cross_entropy(out, y)
        return loss * float("nan") if len(calls) == 30 else loss

    res = lr_find(model, loss_fn, data, num_it=50)
    assert res.stop_reason == "non-finite loss" and len(res.lrs) == 30 and math.isnan(res.smoothed[-1])
    assert all(np.isfinite(v) for v in res.suggestions.values())


def test_data_cycles_and_one_shot_iterators_stop():
    model = Linear64([1.0])
    seen = []
    res = lr_find(model, lambda out, y: seen.append(y.item()) or out, [(paddle.ones([1]), paddle.to_tensor(
        [float(i)])) for i in range(3)], num_it=8, stop_div=False)
    assert len(res.lrs) == 8 and seen == [0, 1, 2, 0, 1, 2, 0, 1]

    gen = ((paddle.ones([1]), paddle.zeros([1])) for _ in range(3))
    with pytest.warns(UserWarning, match="data ran out after 3 batches"):
        res = lr_find(model, identity_loss, gen, num_it=8, stop_div=False)
    assert res.stop_reason == "data exhausted" and len(res.lrs) == 3

    with pytest.raises(ValueError, match="no batches"):
        lr_find(model, identity_loss, [], num_it=8)


def test_paddle_dataloader():
    x, y = batch(n=24)
    loader = paddle.io.DataLoader(paddle.io.TensorDataset([x, y]), batch_size=8, shuffle=True)
    model = mlp()
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    np_state = np.random.get_state()
    res = lr_find(model, nn.CrossEntropyLoss(), loader, num_it=20)
    assert len(res.lrs) == 20
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.numpy(), before[n])
    assert np.array_equal(np.random.get_state()[1], np_state[1]) and np.random.get_state()[2] == np_state[2]


# ------------------------------------------------------------------------------------------ strategy=
class Scale(nn.Layer):
    def __init__(self, n):
        super().__init__()
        self.w = self.create_parameter([n], dtype="float64", default_initializer=nn.initializer.Constant(0.0))

    def forward(self, x):
        return x * self.w


class Shift(Scale):
    def forward(self, x):
        return x.sum() + self.w


class TwoDepth(nn.Layer):
    """out = sum(x * a) + b: `a` is consumed first (block 1), `b` next to the output (block 0); the gradients
    are constant (x, 1), so the weights seen at each forward give every update's learning rate."""

    def __init__(self):
        super().__init__()
        self.first, self.last = Scale(3), Shift(1)
        self.seen = []

    def forward(self, x):
        if self.training:  # build traces the model once, in eval mode
            self.seen.append((self.first.w.numpy().copy(), self.last.w.numpy().copy()))
        return self.last(self.first(x))


def test_strategy_sweeps_block_zero_with_its_multipliers_and_freezing():
    x = paddle.to_tensor(np.array([1.0, 2.0, 3.0]))
    data = [(x, paddle.zeros([1]))]
    start, end, n = 1e-4, 1e-1, 12
    expected = np.array([start * (end / start) ** (i / (n - 1)) for i in range(n)])

    model = TwoDepth()
    s = ps.CombinedStrategy("sgd", 1.0, scheduler={"discriminative": {"blocks": 2, "factor": 2.0}})
    lr_find(model, identity_loss, data, start, end, n, strategy=s, stop_div=False)
    a = np.array([v[0] for v in model.seen])
    b = np.array([v[1] for v in model.seen])
    np.testing.assert_allclose(b[:-1, 0] - b[1:, 0], expected[:-1], rtol=1e-6)               # block 0: lr_i
    np.testing.assert_allclose((a[:-1] - a[1:]) / x.numpy(), np.repeat(expected[:-1, None] / 2, 3, 1),
                               rtol=1e-6)                                                  # block 1: lr_i / 2
    assert [p.optimize_attr["learning_rate"] for p in model.parameters()] == [1.0, 1.0]
    assert not hasattr(model.first.w, "_ps_base_lr")  # build's marks on the parameters are gone again

    model = TwoDepth()  # ULMFiT: the sweep is epoch 0 of gradual unfreezing, only block 0 trains
    u = ps.ULMFiTStrategy(optimizer_name="sgd", dis_blocks=2, frz_blocks=2)
    lr_find(model, identity_loss, data, start, end, n, strategy=u, stop_div=False)
    assert all(np.array_equal(v[0], np.zeros(3)) for v in model.seen)
    assert model.seen[-1][1][0] < 0
    assert not model.first.w.stop_gradient and not model.last.w.stop_gradient


# ------------------------------------------------------------------------------------------ suggestions
# A hand-worked curve: lrs = 10 ** (-5 + 0.5 i), i = 0..10.
HAND_LRS = 10.0 ** (-5 + 0.5 * np.arange(11))
HAND_LOSSES = np.array([5, 6, 4, 4.5, 3, 2, 2.5, 1, 0.5, 3, 9], dtype=float)


def test_suggestions_on_a_hand_worked_curve():
    # minimum: lowest loss 0.5 at i = 8 (lr 1e-1) -> a tenth: 1e-2
    assert minimum(HAND_LRS, HAND_LOSSES) == pytest.approx(1e-2)
    # steep: loss steps 1, -2, 0.5, -1.5, -1, 0.5, -1.5, -0.5, 2.5, 6 over equal log steps: steepest fall is
    # i = 1 -> 2, so lrs[1] = 10^-4.5
    assert steep(HAND_LRS, HAND_LOSSES) == pytest.approx(10 ** -4.5)
    # valley: longest strictly decreasing run ending at each i (any earlier higher points):
    #   i:  0 1 2 3 4 5 6 7 8 9 10
    #   d:  1 1 2 2 3 4 4 5 6 3 1      (e.g. 5 > 4 > 3 > 2 > 1 > 0.5 ends at i = 8)
    # longest: L = 6 ending at e = 8; index = e - L + floor(L/3) + floor(L/6) = 8 - 6 + 2 + 1 = 5
    assert valley(HAND_LRS, HAND_LOSSES) == pytest.approx(HAND_LRS[5])


def test_valley_edge_cases():
    rising = np.arange(1.0, 6.0)             # no decrease at all: every d = 1, e = 0 -> index max(0, -1) = 0
    assert valley(HAND_LRS[:5], rising) == HAND_LRS[0]
    falling = np.arange(9.0, 0.0, -1.0)      # 9 points falling: L = 9, e = 8 -> 8 - 9 + 3 + 1 = 3
    assert valley(HAND_LRS[:9], falling) == HAND_LRS[3]


def test_suggest_trims_like_fastai_and_cuts_at_nan():
    lrs = 10.0 ** (-6 + 0.25 * np.arange(30))
    curve = np.linspace(3.0, 1.0, 30)
    curve[1] = -50.0  # inside the first num_it // 10 = 2 points: left out
    curve[27] = 0.0   # inside the last 5 points: left out
    got = suggest(lrs, curve, num_it=20)
    kept = slice(2, 25)
    assert got["minimum"] == pytest.approx(lrs[24] / 10)
    assert got == {"valley": valley(lrs[kept], curve[kept]), "steep": steep(lrs[kept], curve[kept]),
                   "minimum": minimum(lrs[kept], curve[kept])}
    curve[10] = np.nan  # the curve ends at its first NaN
    got = suggest(lrs, curve, num_it=20)
    assert got["minimum"] == pytest.approx(lrs[9] / 10)
    short = suggest(lrs[:4], np.array([3.0, 2.0, 1.0, 2.0]), num_it=100)  # too short to trim: all of it
    assert short["minimum"] == pytest.approx(lrs[2] / 10)
    assert all(math.isnan(v) for v in suggest(lrs[:1], np.array([1.0])).values())


# ------------------------------------------------------------------------------------------ restoration
class Net(nn.Layer):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1D(8)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(nn.functional.relu(self.fc2(self.drop(nn.functional.relu(self.bn(self.fc1(x)))))))


def make_setup(kind, seed=0):
    """A model with BatchNorm, dropout, a parameter the user froze, a sublayer in eval mode, gradients
    pending, and an optimizer (`kind`) that has already trained a few steps (or none)."""
    paddle.seed(seed)
    model = Net()
    model.fc2.bias.stop_gradient = True
    data = [batch(n=16, seed=s) for s in range(4)]
    sched = None
    if kind == "fresh adam":
        opt = paddle.optimizer.Adam(1e-3, parameters=model.parameters())
    elif kind == "momentum + StepDecay":
        sched = paddle.optimizer.lr.StepDecay(0.05, step_size=2, gamma=0.5)
        opt = paddle.optimizer.Momentum(sched, momentum=0.9, parameters=model.parameters())
    else:  # a ULMFiT strategy mid-run: multipliers, a frozen block, StrategyLR
        s = ps.ULMFiTStrategy(1e-2, dis_blocks=2, frz_blocks=2)
        opt, sched = s.build(model, 40, steps_per_epoch=2, sample_input=data[0][0])
    steps = 0 if kind == "fresh adam" else 3
    for i in range(steps):
        loss = nn.functional.cross_entropy(model(data[i][0]), data[i][1])
        loss.backward()
        opt.step()
        opt.clear_grad()
        if sched is not None:
            sched.step()
    nn.functional.cross_entropy(model(data[3][0]), data[3][1]).backward()  # a gradient left pending
    model.drop.eval()
    return model, opt, sched, data


def state_of(model, opt, sched):
    by_name = {p.name: n for n, p in model.named_parameters()}
    out = {f"param {n}": p.numpy().copy() for n, p in model.named_parameters()}
    out.update({f"buffer {n}": b.numpy().copy() for n, b in model.named_buffers()})
    out.update({f"grad {n}": p.grad.numpy().copy() for n, p in model.named_parameters() if p.grad is not None})
    out.update({f"stop_gradient {n}": p.stop_gradient for n, p in model.named_parameters()})
    out.update({f"lr factor {n}": p.optimize_attr["learning_rate"] for n, p in model.named_parameters()})
    out.update({f"training {n}": layer.training for n, layer in model.named_sublayers(include_self=True)})
    for acc, per_param in opt._accumulators.items():
        out.update({f"{acc} {by_name.get(k, k)}": v.numpy().copy() for k, v in per_param.items()})
    out["optimizer lr"] = opt.get_lr()
    out["optimizer keys"] = sorted(opt.state_dict())
    if sched is not None:
        out["scheduler"] = sched.state_dict()
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


def train_step(model, opt, sched, data):
    model.train()
    loss = nn.functional.cross_entropy(model(data[0][0]), data[0][1])
    loss.backward()
    opt.step()
    opt.clear_grad()
    if sched is not None:
        sched.step()
    return float(loss)


@pytest.mark.parametrize("kind", ["fresh adam", "momentum + StepDecay", "ulmfit mid-run"])
@pytest.mark.parametrize("how", ["optimizer", "default", "strategy"])
def test_restores_exactly_and_next_step_is_unchanged(kind, how):
    kwargs = {"optimizer": "own", "default": {}, "strategy": {"strategy": ps.ULMFiTStrategy(dis_blocks=3)}}[how]
    model, opt, sched, data = make_setup(kind)
    ref_model, ref_opt, ref_sched, _ = make_setup(kind)
    if kwargs == "own":
        kwargs = {"optimizer": opt}
    loss_fn = nn.CrossEntropyLoss()
    before = state_of(model, opt, sched)
    names_before = dict(paddle.base.unique_name.generator.ids)
    rng = (paddle.get_rng_state(), np.random.get_state(), random.getstate())

    res = lr_find(model, loss_fn, data, num_it=30, **kwargs)
    assert len(res.lrs) > 5
    assert_same(before, state_of(model, opt, sched))
    assert dict(paddle.base.unique_name.generator.ids) == names_before
    draws = (paddle.rand([4]).numpy(), np.random.rand(), random.random())
    paddle.set_rng_state(rng[0]), np.random.set_state(rng[1]), random.setstate(rng[2])
    assert np.array_equal(draws[0], paddle.rand([4]).numpy()) and draws[1:] == (np.random.rand(), random.random())

    # the next training step (dropout draws included) is the one it would have been without lr_find
    paddle.seed(7)
    loss = train_step(model, opt, sched, data)
    paddle.seed(7)
    ref_loss = train_step(ref_model, ref_opt, ref_sched, data)
    assert loss == ref_loss
    after, ref_after = state_of(model, opt, sched), state_of(ref_model, ref_opt, ref_sched)
    ref_after["optimizer keys"] = after["optimizer keys"]  # global names differ between the two models
    assert_same(after, ref_after)
    if kind == "fresh adam":  # accumulators made after lr_find get the names they would have had
        assert all(k.endswith("_0") for k in opt.state_dict() if "moment" in k)


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("kwargs, error, match", [
    ({"start_lr": 0}, ValueError, r"start_lr must be > 0, got 0"),
    ({"start_lr": -1e-3}, ValueError, r"start_lr must be > 0, got -0.001"),
    ({"start_lr": "1e-7"}, TypeError, r"start_lr must be a number, got '1e-7'"),
    ({"start_lr": 1e-3, "end_lr": 1e-3}, ValueError, r"end_lr must be > start_lr \(= 0.001\), got 0.001"),
    ({"end_lr": float("inf")}, ValueError, r"end_lr must be finite, got inf"),
    ({"num_it": 1}, ValueError, r"num_it must be >= 2, got 1"),
    ({"num_it": 10.5}, TypeError, r"num_it must be an integer, got 10.5"),
    ({"smooth": 1.0}, ValueError, r"smooth must be in \[0, 1\), got 1.0"),
    ({"div_threshold": 1.0}, ValueError, r"div_threshold must be > 1, got 1.0"),
    ({"stop_div": "yes"}, TypeError, r"stop_div must be True or False, got 'yes'"),
    ({"optimizer": "adam"}, TypeError, r"optimizer must be a paddle.optimizer.Optimizer, got str"),
    ({"strategy": "ulmfit"}, TypeError, r"strategy must be a paddle_strategy strategy .*got str"),
    ({"sample_input": paddle.ones([2, 4])}, ValueError, r"sample_input is only used with strategy="),
])
def test_validation_names_argument_value_and_allowed(kwargs, error, match):
    model = mlp()
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    calls = []
    with pytest.raises(error, match=match):
        lr_find(model, lambda o, y: calls.append(1), [batch()], **kwargs)
    assert not calls and all(np.array_equal(p.numpy(), before[n]) for n, p in model.named_parameters())


def test_validation_of_model_data_and_batches():
    model = mlp()
    with pytest.raises(TypeError, match="model must be a paddle.nn.Layer, got function"):
        lr_find(lambda x: x, nn.CrossEntropyLoss(), [batch()])
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        lr_find(model, "ce", [batch()])
    with pytest.raises(TypeError, match="data must be an iterable of batches .* got Tensor"):
        lr_find(model, nn.CrossEntropyLoss(), paddle.ones([3]))
    with pytest.raises(ValueError, match="optimizer= or strategy=, not both"):
        lr_find(model, nn.CrossEntropyLoss(), [batch()], optimizer=paddle.optimizer.SGD(
            parameters=model.parameters()), strategy=ps.ULMFiTStrategy())
    with pytest.raises(TypeError, match="each batch must be a tuple or list .* got Tensor"):
        lr_find(model, nn.CrossEntropyLoss(), [paddle.ones([2, 4])])
    bad = ps.AdamWarmupStrategy(decay_steps=100, warmup_steps=10, weight_decay=0.01, weight_decay_pattern=["nope"])
    with pytest.raises(ValueError, match="strategy.build\\(model, max_train_steps=3.*No parameter would decay"):
        lr_find(model, nn.CrossEntropyLoss(), [batch()], num_it=3, strategy=bad)


@pytest.mark.parametrize("strategy", [
    ps.ULMFiTStrategy(cut_fraction=0.1),                       # cut = 0.6 steps of a 6-step run
    ps.AdamWeightDecayStrategy(lr_scheduler="noam_decay", warmup_proportion=0.1),
    ps.FitOneCycleStrategy(),                                  # cycles momentum
])
def test_strategy_schedule_is_left_out_of_the_sweep(strategy):
    model = mlp()
    res = lr_find(model, nn.CrossEntropyLoss(), [batch()], 1e-4, 1e-2, num_it=6, strategy=strategy)
    assert len(res.lrs) == 6 and res.stop_reason == "completed"


# ------------------------------------------------------------------------------------------ plot
@needs(*PLOTS)
def test_plot_writes_png(tmp_path):
    model, data = mlp((4, 16, 16, 2)), [batch(seed=s) for s in range(5)]
    res = lr_find(model, nn.CrossEntropyLoss(), data, num_it=60)
    assert isinstance(res, LRFindResult) and set(res.suggestions) == {"valley", "steep", "minimum"}
    assert "valley=" in repr(res)
    path = res.plot(tmp_path / "lr_find.png")
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    res = LRFindResult(lrs=HAND_LRS, losses=HAND_LOSSES, smoothed=HAND_LOSSES,
                       suggestions=suggest(HAND_LRS, HAND_LOSSES), stop_reason="completed", num_it=11)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        res.plot(tmp_path / "x.png")
