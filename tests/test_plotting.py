"""lr_curves against the formulas written out here (ULMFiT: slanted triangle x factor^-k, frozen before the
block's epoch), block/unfreeze matching, and plot_lr writing readable PNGs."""
import math
import sys
import types

import numpy as np
import paddle
import pytest

import paddle_strategy as ps
from helpers import PLOTS, batch, mlp, needs
from paddle_strategy.plotting import LRCurves, lr_curves, plot_lr

PNG = b"\x89PNG\r\n\x1a\n"


def ulmfit(T=30, spe=10, lr=0.01, cut_fraction=0.1, ratio=32, factor=2.6, **kw):
    model, (x, _) = mlp(), batch()
    s = ps.ULMFiTStrategy(learning_rate=lr, cut_fraction=cut_fraction, ratio=ratio, dis_blocks=3, factor=factor,
                          frz_blocks=3, **kw)
    _, sched = s.build(model, T, steps_per_epoch=spe, sample_input=x)
    return model, sched


def test_ulmfit_curves_equal_the_formula():
    T, spe, lr, ratio, factor = 30, 10, 0.01, 32, 2.6
    model, sched = ulmfit(T, spe, lr, 0.1, ratio, factor)
    c = lr_curves(sched, T, model=model)
    cut = math.floor(T * 0.1)  # 3
    for t in range(T):
        p = t / cut if t < cut else 1 - (t - cut) / (T - cut)
        stlr = lr * (1 + p * (ratio - 1)) / ratio
        for k in range(3):
            assert c.lrs[k, t] == pytest.approx(stlr * factor ** -k, rel=1e-12)
            assert c.frozen[k, t] == (t // spe < k)  # block k trains from epoch k
    assert c.block_names == [["4.weight", "4.bias"], ["2.weight", "2.bias"], ["0.weight", "0.bias"]]
    assert c.unfreeze_epochs == [0, 1, 2] and c.boundaries == [1, 2] and c.momentum is None
    np.testing.assert_array_equal(c.steps, np.arange(T))
    assert c.multipliers == pytest.approx([1, 1 / 2.6, 1 / 2.6 ** 2])


def test_lr_curves_is_pure():
    model, sched = ulmfit()
    flags = [p.stop_gradient for p in model.parameters()]
    state = sched.state_dict()
    lr_curves(sched, 30, model=model)
    assert [p.stop_gradient for p in model.parameters()] == flags and sched.state_dict() == state


def test_block_counts_as_frozen_until_all_its_parameters_train():
    model, (x, _) = mlp(), batch()
    layers = {"4.weight": 2, "4.bias": 2, "2.weight": 0, "2.bias": 1, "0.weight": 0, "0.bias": 0}  # top = 2
    s = ps.CombinedStrategy("sgd", 0.1, scheduler={"discriminative": {"blocks": 3},
                                                   "gradual_unfreeze": {"params_layer": layers}})
    _, sched = s.build(model, 40, steps_per_epoch=10, sample_input=x)
    c = lr_curves(sched, 40, model=model)
    # first epochs: 4.* 0; 2.bias 1, 2.weight 2; 0.* 2 -> blocks [0, 2, 2]
    assert c.unfreeze_epochs == [0, 2, 2] and c.boundaries == [1, 2]
    assert not c.frozen[1, 20] and c.frozen[1, 19]


@needs(*PLOTS)
def test_one_lr_with_gradual_unfreezing_plots_the_unfreezing_groups(tmp_path):
    model, (x, _) = mlp(), batch()
    s = ps.CombinedStrategy("adam", 1e-3, scheduler={"warmup": 0.1, "linear_decay": {"start_point": 0.1},
                                                     "gradual_unfreeze": 3})
    _, sched = s.build(model, 60, steps_per_epoch=20, sample_input=x)
    for m in (model, None):  # the scheduler from build knows its parameters' names: no model needed
        c = lr_curves(sched, 60, model=m)
        assert c.unfreeze_epochs == [0, 1, 2] and c.multipliers == [1.0, 1.0, 1.0]
        np.testing.assert_array_equal(c.frozen.sum(axis=1), [0, 20, 40])
        assert c.block_names[0] == ["4.weight", "4.bias"]
    assert lr_curves(sched, 60, model=model).block_names[0] == ["4.weight", "4.bias"]
    W = 6  # warmup lr * t / W, then linear decay from W to T
    expected = [1e-3 * t / W if t < W else 1e-3 * (60 - t) / (60 - W) for t in range(60)]
    np.testing.assert_allclose(c.lrs[2], expected, rtol=1e-12)
    assert plot_lr(sched, 60, tmp_path / "groups.png", model=model).read_bytes().startswith(PNG)


def test_blocks_and_unfreezing_match_by_name_without_the_model():
    model, sched = ulmfit()
    alone, with_model = lr_curves(sched, 30), lr_curves(sched, 30, model=model)
    assert alone.unfreeze_epochs == with_model.unfreeze_epochs
    np.testing.assert_array_equal(alone.frozen, with_model.frozen)
    sched.parameters_by_name = {}  # a scheduler that does not know its parameters (not from build)
    with pytest.raises(ValueError, match="pass model="):
        lr_curves(sched, 30)
    with pytest.raises(ValueError, match="'4.weight', which is not a parameter of the model"):
        lr_curves(sched, 30, model=paddle.nn.Linear(2, 2))


def test_no_unfreezing_needs_no_model():
    model, (x, _) = mlp(), batch()
    _, sched = ps.AdamWeightDecayStrategy(1e-3, warmup_proportion=0.2).build(model, 20, sample_input=x)
    c = lr_curves(sched, 20)
    assert c.lrs.shape == (1, 20) and not c.frozen.any() and c.unfreeze_epochs == [0]
    assert c.lrs[0, 4] == pytest.approx(1e-3) and c.lrs[0, 2] == pytest.approx(1e-3 * 2 / 4)


def test_bad_arguments():
    model, sched = ulmfit()
    with pytest.raises(TypeError, match="StrategyLR from strategy.build .* got StepDecay"):
        lr_curves(paddle.optimizer.lr.StepDecay(0.1, 2), 10)
    with pytest.raises(ValueError, match="max_train_steps must be >= 1, got 0"):
        lr_curves(sched, 0, model=model)


@needs(*PLOTS)
def test_plot_lr_writes_a_png(tmp_path):
    model, sched = ulmfit(T=300, spe=100)
    out = plot_lr(sched, 300, tmp_path / "ulmfit.png", model=model)
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 10000


@needs(*PLOTS)
def test_plot_lr_with_momentum_axis(tmp_path):
    sched = types.SimpleNamespace(lr_at=lambda t: 1e-3 * (1 + math.cos(math.pi * t / 50)) / 2,
                                  momentum_at=lambda t: 0.85 + 0.1 * t / 50, block_names=[["w"]],
                                  block_multipliers=[1.0], unfreeze=[], steps_per_epoch=25, description="")
    c = lr_curves(sched, 50)
    assert isinstance(c, LRCurves) and c.momentum[10] == pytest.approx(0.87)
    out = plot_lr(sched, 50, tmp_path / "momentum.png", title="cosine + momentum")
    assert out.read_bytes().startswith(PNG)


def test_plot_lr_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    model, sched = ulmfit()
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_lr(sched, 30, tmp_path / "x.png", model=model)
    assert lr_curves(sched, 30, model=model).lrs.shape == (3, 30)  # the numbers need no matplotlib


def test_per_step_block_multipliers_are_used():
    # a scheduler whose multipliers change at step 10 (as fastai's fine_tune does between its phases)
    sched = types.SimpleNamespace(lr_at=lambda t: 0.1, block_names=[["a"], ["b"]], block_multipliers=[1.0, 0.5],
                                  block_multipliers_at=lambda t: [1.0, 0.1] if t < 10 else [1.0, 0.5],
                                  unfreeze=[], steps_per_epoch=10)
    c = lr_curves(sched, 20)
    np.testing.assert_allclose(c.lrs[1], [0.01] * 10 + [0.05] * 10, rtol=1e-12)
    np.testing.assert_allclose(c.lrs[0], 0.1, rtol=1e-12)


@needs(*PLOTS)
def test_fine_tune_plot(tmp_path):
    model, (x, _) = mlp((4, 8, 8, 8, 2)), batch()
    s = ps.FineTuneStrategy(epochs=2, freeze_epochs=1, n_blocks=3)
    _, sched = s.build(model, 30, steps_per_epoch=10, sample_input=x)
    c = lr_curves(sched, 30, model=model)
    assert c.unfreeze_epochs == [0, 1, 1] and c.frozen[1:, :10].all() and not c.frozen[:, 10:].any()
    # phase 2 spreads slice(base_lr / 2 / lr_mult, base_lr / 2) over 3 blocks: head, head / 10, head / 100
    np.testing.assert_allclose(c.lrs[:, 10:] / c.lrs[0, 10:], [[1.0] * 20, [0.1] * 20, [0.01] * 20], rtol=1e-12)
    # phase 1: fit_one_cycle(1 epoch, slice(base_lr), pct_start 0.99, div 25): starts at base_lr / 25 on the head
    assert c.lrs[0, 0] == pytest.approx(2e-3 / 25, rel=1e-12)
    assert plot_lr(sched, 30, tmp_path / "fine_tune.png", model=model).read_bytes().startswith(PNG)
