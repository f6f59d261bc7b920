"""fastai's fit policies and freezing, measured through the weights: with plain SGD one step moves each weight
by exactly lr_block(t) * grad, so every block's learning rate is read off the weight deltas and compared with
fastai's formulas (fastai/callback/schedule.py, fastai/optimizer.py), written out here."""
import math

import numpy as np
import paddle
import paddle.nn as nn
import pytest

import paddle_strategy as ps
from paddle_strategy.strategies import fastai as fa
from helpers import batch, mlp, snapshot, step

TOL = dict(rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------- fastai, written out
def sched_cos(start, end, pos):
    """fastai's SchedCos."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def combine_scheds(pcts, scheds):
    """fastai's combine_scheds (on floats)."""
    bounds = np.cumsum([0] + list(pcts))

    def inner(pos):
        idx = min(max(i for i, b in enumerate(bounds) if pos >= b), len(bounds) - 2)
        return scheds[idx]((pos - bounds[idx]) / (bounds[idx + 1] - bounds[idx]))

    return inner


def combined_cos(pct, start, middle, end):
    return combine_scheds([pct, 1 - pct], [lambda p: sched_cos(start, middle, p),
                                           lambda p: sched_cos(middle, end, p)])


def even_mults(start, stop, n):
    """fastcore's even_mults: fastai's groups, input side first."""
    step_ = (stop / start) ** (1 / (n - 1))
    return [start * step_ ** i for i in range(n)]


def set_hyper_lrs(lr, n):
    """fastai's Optimizer.set_hyper('lr', lr) for n groups (input side first)."""
    if isinstance(lr, slice):
        return even_mults(lr.start, lr.stop, n) if lr.start else [lr.stop / 10] * (n - 1) + [lr.stop]
    return [lr] * n


def assert_sgd_step(before, grads, after, lr_of):
    """after = before - lr_of(name) * grad for every parameter (lr_of None: frozen, untouched)."""
    for name in before:
        lr = lr_of(name)
        if lr is None:
            assert grads[name] is None, name
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
        else:
            np.testing.assert_allclose(after[name], before[name] - lr * grads[name], **TOL, err_msg=name)


def ln_model(seed=0):
    """head `2.*`; body blocks `1.*` and `0.*`, each Linear + LayerNorm."""
    paddle.seed(seed)
    return nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU()),
                         nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.ReLU()),
                         nn.Linear(8, 2))


# ---------------------------------------------------------------------------- learning-rate spread
def test_block_lrs_follow_fastai_set_hyper_in_block_order():
    assert fa.block_lrs(slice(1e-5, 1e-3), 3) == pytest.approx([1e-3, 1e-4, 1e-5])   # block 0 = head = hi
    assert fa.block_lrs(slice(1e-3), 4) == pytest.approx([1e-3, 1e-4, 1e-4, 1e-4])
    assert fa.block_lrs(slice(0, 1e-3), 3) == pytest.approx([1e-3, 1e-4, 1e-4])      # fastai: `if v.start`
    assert fa.block_lrs(2e-3, 3) == [2e-3] * 3
    assert fa.block_lrs(slice(1e-5, 1e-3), 1) == [1e-3]
    for lr in (slice(2e-5, 3e-2), slice(4e-2)):
        assert fa.block_lrs(lr, 5) == pytest.approx(set_hyper_lrs(lr, 5)[::-1], rel=1e-12)


# ---------------------------------------------------------------------------- fit_one_cycle
def test_fit_one_cycle_lr_per_block_every_step():
    model, (x, y) = mlp(), batch()
    T, lo, hi = 12, 1e-3, 1e-1
    s = fa.FitOneCycleStrategy(slice(lo, hi), div=10.0, div_final=100.0, pct_start=0.3, moms=None, n_blocks=3,
                               optimizer_name="sgd")
    opt, lr = s.build(model, T, sample_input=x)
    group = dict(zip("024", set_hyper_lrs(slice(lo, hi), 3)))  # Linear 0 is fastai's group 0 (input side)
    for t in range(T):
        before, grads, after, _ = step(model, opt, lr, x, y)
        assert_sgd_step(before, grads, after,
                        lambda n: combined_cos(0.3, group[n[0]] / 10, group[n[0]], group[n[0]] / 100)(t / T))
    assert lr.block_names == [["4.weight", "4.bias"], ["2.weight", "2.bias"], ["0.weight", "0.bias"]]
    assert lr.block_multipliers == pytest.approx([1.0, 0.1, 0.01])


def test_fit_one_cycle_momentum_cycles_with_momentum_optimizer():
    """Momentum: v = mu_t * v + g, w -= lr_t * v; mu_t from fastai's combined_cos over moms."""
    model, (x, y) = mlp(), batch()
    T, moms = 10, (0.9, 0.6, 0.8)
    s = fa.FitOneCycleStrategy(0.05, pct_start=0.4, moms=moms, optimizer_name="momentum")
    opt, lr = s.build(model, T)
    mom = combined_cos(0.4, *moms)
    lr_of = combined_cos(0.4, 0.05 / 25, 0.05, 0.05 / 1e5)
    velocity = {n: 0.0 for n, _ in model.named_parameters()}
    for t in range(T):
        assert lr.momentum_at(t) == pytest.approx(mom(t / T), rel=1e-12)
        assert opt._momentum == pytest.approx(mom(t / T), rel=1e-12)
        before, grads, after, lr_t = step(model, opt, lr, x, y)
        assert lr_t == pytest.approx(lr_of(t / T), rel=1e-12)
        for name in before:
            velocity[name] = mom(t / T) * velocity[name] + grads[name]
            np.testing.assert_allclose(after[name], before[name] - lr_t * velocity[name], rtol=1e-4, atol=1e-7)


def test_fit_one_cycle_adam_cycles_beta1_with_fastai_adam_defaults():
    model, (x, y) = mlp(), batch()
    T = 8
    opt, lr = fa.FitOneCycleStrategy(1e-2).build(model, T)
    assert (opt._beta2, opt._epsilon) == (0.99, 1e-5)  # fastai's Adam: sqr_mom 0.99, eps 1e-5, wd 0.01
    mom = combined_cos(0.25, *fa.FASTAI_MOMS)
    for t in range(T):
        assert opt._beta1 == pytest.approx(mom(t / T), rel=1e-12)
        if t == 0:  # a zero gradient: only the decoupled decay moves weights, w *= 1 - lr * 0.01; biases stay
            before, lr_t = snapshot(model), lr.last_lr
            (model(x) * 0).sum().backward()
            opt.step(), opt.clear_grad(), lr.step()
            for name, value in snapshot(model).items():
                decay = 0.0 if name.endswith("bias") else lr_t * 0.01
                np.testing.assert_allclose(value, before[name] * (1 - decay), rtol=1e-6)
        else:
            step(model, opt, lr, x, y)
    custom = fa.FitOneCycleStrategy(1e-2, wd=0.0, beta2=0.999).build(mlp(), T)[0]
    assert type(custom) is paddle.optimizer.Adam and custom._beta2 == 0.999


# ---------------------------------------------------------------------------- fit_flat_cos, fit_sgdr
def test_fit_flat_cos_with_slice_hi_spreads_a_tenth_to_the_body():
    model, (x, y) = mlp(), batch()
    T, hi = 8, 0.1
    s = fa.FitFlatCosStrategy(slice(hi), div_final=10.0, pct_start=0.5, optimizer_name="sgd")
    opt, lr = s.build(model, T, sample_input=x)
    group = dict(zip("024", set_hyper_lrs(slice(hi), 3)))
    for t in range(T):
        before, grads, after, _ = step(model, opt, lr, x, y)
        assert_sgd_step(before, grads, after,
                        lambda n: combined_cos(0.5, group[n[0]], group[n[0]], group[n[0]] / 10)(t / T))
    assert lr.block_multipliers == pytest.approx([1.0, 0.1, 0.1])


def test_fit_sgdr_cycles_and_run_length():
    model, (x, y) = mlp(), batch()
    s = fa.FitSGDRStrategy(n_cycles=2, cycle_len=1, lr_max=slice(0.01, 0.1), cycle_mult=2, n_blocks=2,
                           optimizer_name="sgd")
    assert s.n_epochs == 3
    spe = 2
    T = 3 * spe
    opt, lr = s.build(model, T, steps_per_epoch=spe, sample_input=x)
    # fastai: n_epoch = cycle_len * (cycle_mult**n_cycles - 1) // (cycle_mult - 1); pcts = cycle i's share
    n_epoch = 1 * (2 ** 2 - 1) // (2 - 1)
    pcts = [1 * 2 ** i / n_epoch for i in range(2)]
    assert [sorted(b) for b in lr.block_names] == [["2.bias", "2.weight", "4.bias", "4.weight"], ["0.bias", "0.weight"]]
    heads = {"4": 0.1, "2": 0.1, "0": 0.01}  # two blocks: hi on the output side, lo on the input side
    for t in range(T):
        before, grads, after, _ = step(model, opt, lr, x, y)
        assert_sgd_step(before, grads, after, lambda n: combine_scheds(
            pcts, [lambda p, top=heads[n[0]]: sched_cos(top, 0, p)] * 2)(t / T))
    with pytest.raises(ValueError, match=r"runs 3 epochs = 6 steps.*max_train_steps=8.*num_epoch=3"):
        s.build(mlp(), 8, steps_per_epoch=2)
    with pytest.raises(ValueError, match="need steps_per_epoch"):
        s.build(mlp(), 6)


# ---------------------------------------------------------------------------- freezing
def test_freeze_to_counts_fastai_groups_from_the_input_side():
    model = mlp((4, 8, 8, 8, 2))
    blocks = ps.infer_blocks(model, 4, batch()[0])
    assert [b[0][0] for b in blocks] == ["6", "4", "2", "0"]

    def trainable():
        return {n[0] for n, p in model.named_parameters() if not p.stop_gradient}

    fa.freeze_to(model, blocks, 1)         # fastai's group 0 (the input side) frozen
    assert trainable() == {"6", "4", "2"}
    fa.freeze_to(model, blocks, -1)        # only the last group (the head)
    assert trainable() == {"6"}
    fa.freeze_to(model, blocks, -2)
    assert trainable() == {"6", "4"}
    fa.freeze_to(model, blocks, 2)
    assert trainable() == {"6", "4"}
    assert fa.freeze(model, blocks) == ["4.weight", "4.bias", "2.weight", "2.bias", "0.weight", "0.bias"]
    assert trainable() == {"6"}
    assert fa.unfreeze(model, blocks) == []
    assert trainable() == {"6", "4", "2", "0"}
    fa.freeze_to(model, blocks, -10)
    assert trainable() == {"6", "4", "2", "0"}
    with pytest.warns(UserWarning, match="freezing 4 blocks; the model has 4: the whole model is frozen"):
        fa.freeze_to(model, blocks, 4)
    assert trainable() == set()
    with pytest.raises(ValueError, match="freeze needs at least two blocks"):
        fa.freeze(model, [sum(blocks, [])])
    with pytest.raises(ValueError, match=r"'6.wieght' is not a parameter of the model. Did you mean '6.weight'"):
        fa.freeze_to(model, [["6.wieght"]], 0)


def test_freeze_keeps_normalization_layers_training_with_train_bn():
    model, x = ln_model(), batch()[0]
    blocks = ps.infer_blocks(model, 3, x)
    assert [sorted({n.split(".")[0] for n in b}) for b in blocks] == [["2"], ["1"], ["0"]]
    assert fa.norm_param_names(model) == {"0.1.weight", "0.1.bias", "1.1.weight", "1.1.bias"}
    fa.freeze(model, blocks)
    assert sorted(n for n, p in model.named_parameters() if not p.stop_gradient) == [
        "0.1.bias", "0.1.weight", "1.1.bias", "1.1.weight", "2.bias", "2.weight"]
    fa.freeze(model, blocks, train_bn=False)
    assert sorted(n for n, p in model.named_parameters() if not p.stop_gradient) == ["2.bias", "2.weight"]


def test_freeze_and_unfreeze_a_built_strategy_drop_stale_gradients():
    model, (x, y) = mlp(), batch()
    s = ps.CombinedStrategy("sgd", 0.1, scheduler={"discriminative": {"blocks": 3, "factor": 2.0}})
    opt, lr = s.build(model, 10, sample_input=x)
    nn.functional.cross_entropy(model(x), y).backward()  # a gradient that must not be applied later
    fa.freeze(model, lr)
    assert all(p.grad is None for n, p in model.named_parameters() if n[0] != "4")
    opt.clear_grad()
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    assert_sgd_step(before, grads, after, lambda n: lr_t if n[0] == "4" else None)
    fa.unfreeze(model, lr)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    mult = {"4": 1.0, "2": 0.5, "0": 0.25}
    assert_sgd_step(before, grads, after, lambda n: lr_t * mult[n[0]])


# ---------------------------------------------------------------------------- fine_tune
def fine_tune_lr(name, t, spe, base_lr=0.1, lr_mult=100, freeze_epochs=1, epochs=2, pct_start=0.3, div=5.0,
                 train_bn=True):
    """fastai's fine_tune for ln_model at update t (None: frozen)."""
    group = {"0": 0, "1": 1, "2": 2}[name[0]]  # fastai's groups, input side first
    is_norm = name[2:4] == "1."
    T1 = freeze_epochs * spe
    if t < T1:   # freeze(); fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99)
        if group < 2 and not (train_bn and is_norm):
            return None
        top = set_hyper_lrs(slice(base_lr), 3)[group]
        return combined_cos(0.99, top / 25, top, top / 1e5)(t / T1)
    base_lr /= 2  # unfreeze(); fit_one_cycle(epochs, slice(base_lr/lr_mult, base_lr), pct_start, div)
    top = set_hyper_lrs(slice(base_lr / lr_mult, base_lr), 3)[group]
    return combined_cos(pct_start, top / div, top, top / 1e5)((t - T1) / (epochs * spe))


@pytest.mark.parametrize("train_bn", [True, False])
def test_fine_tune_phases_head_then_all_with_fastai_lrs(train_bn):
    model, (x, y) = ln_model(), batch()
    spe = 3
    s = fa.FineTuneStrategy(2, base_lr=0.1, freeze_epochs=1, train_bn=train_bn, moms=None, optimizer_name="sgd")
    opt, lr = s.build(model, 3 * spe, steps_per_epoch=spe, sample_input=x)
    for t in range(3 * spe):
        assert lr.block_multipliers == pytest.approx([1, 0.1, 0.1] if t < spe else [1, 0.1, 0.01])
        before, grads, after, _ = step(model, opt, lr, x, y)
        assert_sgd_step(before, grads, after, lambda n: fine_tune_lr(n, t, spe, train_bn=train_bn))


def test_fine_tune_momentum_joins_both_phases():
    model, x = ln_model(), batch()[0]
    spe = 4
    opt, lr = fa.FineTuneStrategy(1, freeze_epochs=2, optimizer_name="momentum").build(
        model, 3 * spe, steps_per_epoch=spe, sample_input=x)
    phase1, phase2 = combined_cos(0.99, *fa.FASTAI_MOMS), combined_cos(0.3, *fa.FASTAI_MOMS)
    want = [phase1(t / (2 * spe)) for t in range(2 * spe)] + [phase2(t / spe) for t in range(spe)]
    assert [lr.momentum_at(t) for t in range(3 * spe)] == pytest.approx(want, rel=1e-12)


def test_fine_tune_phase_follows_a_restored_state():
    """Block 2's LayerNorm (train_bn) trains at 1/10 of the head in phase 1, lr_mult**-1 in phase 2."""
    spe, x = 2, batch()[0]
    s = fa.FineTuneStrategy(1, base_lr=0.1, moms=None, optimizer_name="sgd")
    model_a, model_b = ln_model(), ln_model()
    opt_a, lr_a = s.build(model_a, 2 * spe, steps_per_epoch=spe, sample_input=x)
    opt_b, lr_b = s.build(model_b, 2 * spe, steps_per_epoch=spe, sample_input=x)
    norm_mult = lambda m: m[0][1].weight.optimize_attr["learning_rate"]  # noqa: E731
    assert norm_mult(model_a) == pytest.approx(0.1) and model_a[0][0].weight.stop_gradient
    for _ in range(spe):
        lr_a.step()
    assert norm_mult(model_a) == pytest.approx(0.01) and not model_a[0][0].weight.stop_gradient
    opt_b.set_state_dict(opt_a.state_dict())                          # resume in phase 2
    assert norm_mult(model_b) == pytest.approx(0.01) and not model_b[0][0].weight.stop_gradient
    assert lr_b.block_multipliers == pytest.approx([1, 0.1, 0.01])
    lr_b.set_state_dict({"last_epoch": 1, "last_lr": 0.0})            # back to phase 1
    assert norm_mult(model_b) == pytest.approx(0.1) and model_b[0][0].weight.stop_gradient
    assert lr_b.block_multipliers == pytest.approx([1, 0.1, 0.1])


def test_fine_tune_without_a_frozen_phase_or_without_phase_two():
    model, (x, y) = ln_model(), batch()
    opt, lr = fa.FineTuneStrategy(2, base_lr=0.1, freeze_epochs=0, moms=None, optimizer_name="sgd").build(
        model, 4, steps_per_epoch=2, sample_input=x)
    for t in range(4):
        before, grads, after, _ = step(model, opt, lr, x, y)
        assert_sgd_step(before, grads, after, lambda n: fine_tune_lr(n, t + 2, 2, freeze_epochs=1))
    model = ln_model()
    opt, lr = fa.FineTuneStrategy(0, base_lr=0.1, freeze_epochs=2, moms=None, optimizer_name="sgd").build(
        model, 4, steps_per_epoch=2, sample_input=x)
    for t in range(4):
        before, grads, after, _ = step(model, opt, lr, x, y)
        assert_sgd_step(before, grads, after, lambda n: fine_tune_lr(n, t, 2, freeze_epochs=2))


def test_fine_tune_in_the_trainer(tmp_path):
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=4).astype("float32"), np.int64(i % 2)) for i in range(16)]
    model = ln_model()
    start = snapshot(model)
    strategy = fa.FineTuneStrategy(1, base_lr=0.05, moms=None, optimizer_name="sgd")
    cfg = ps.RunConfig(checkpoint_dir=str(tmp_path / "a"), use_cuda=False, num_epoch=2, batch_size=8,
                       strategy=strategy, log_interval=100)
    trainer = ps.Trainer(model, cfg, data, loss_fn=nn.CrossEntropyLoss())
    assert model[0][0].weight.stop_gradient  # phase 1 set up at construction
    trainer.finetune()
    moved = {n for n, v in snapshot(model).items() if not np.array_equal(v, start[n])}
    assert moved == set(start)  # the body trained in phase 2
    with pytest.raises(ValueError, match=r"runs 2 epochs = 4 steps.*max_train_steps=6.*num_epoch=2"):
        ps.Trainer(ln_model(), ps.RunConfig(checkpoint_dir=str(tmp_path / "b"), use_cuda=False, num_epoch=3,
                                            batch_size=8, strategy=strategy), data, loss_fn=nn.CrossEntropyLoss())


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize("make, error, words", [
    (lambda: fa.FitOneCycleStrategy(slice(1e-3, 1e-2, 2)), ValueError, ["slice(0.001, 0.01, 2)", "without a step"]),
    (lambda: fa.FitOneCycleStrategy(slice(None)), ValueError, ["upper end"]),
    (lambda: fa.FitOneCycleStrategy(-1e-3), ValueError, ["lr_max", "> 0", "-0.001"]),
    (lambda: fa.FitOneCycleStrategy("1e-3"), TypeError, ["number or a slice", "'1e-3'"]),
    (lambda: fa.FitOneCycleStrategy(1e-3, optimizer_name="sgd"), ValueError, ["moms=(0.95, 0.85, 0.95)",
                                                                             "SGD", "moms=None"]),
    (lambda: fa.FitOneCycleStrategy(1e-3, moms=(0.9, 0.8)), ValueError, ["moms", "three"]),
    (lambda: fa.FitOneCycleStrategy(1e-3, pct_start=1.5), ValueError, ["pct_start", "1.5"]),
    (lambda: fa.FitOneCycleStrategy(1e-3, n_blocks=0), ValueError, ["n_blocks", ">= 1", "0"]),
    (lambda: fa.FitOneCycleStrategy(1e-3, wd=-1), ValueError, ["wd", "-1"]),
    (lambda: fa.FitOneCycleStrategy(1e-3, beta_2=0.9), ValueError, ["beta_2", "Did you mean 'beta2'"]),
    (lambda: fa.FitOneCycleStrategy(1e-3, optimizer_name="adamm"), ValueError, ["adamm", "Did you mean"]),
    (lambda: fa.FitSGDRStrategy(0, 1), ValueError, ["n_cycles", "0"]),
    (lambda: fa.FineTuneStrategy(1, n_blocks=1), ValueError, ["n_blocks", ">= 2"]),
    (lambda: fa.FineTuneStrategy(0, freeze_epochs=0), ValueError, ["empty run"]),
    (lambda: fa.FineTuneStrategy(1, lr_mult=0), ValueError, ["lr_mult", "0"]),
    (lambda: fa.FineTuneStrategy(1, train_bn=1), TypeError, ["train_bn", "1"]),
    (lambda: fa.FineTuneStrategy(1).build(mlp(), 4), ValueError, ["steps_per_epoch", "None"]),
    (lambda: fa.FineTuneStrategy(1).build(nn.Linear(4, 2), 4, 2), ValueError, ["1 block", "head and a body"]),
])
@pytest.mark.filterwarnings("ignore:infer_blocks")
def test_bad_values_are_refused_with_the_key_and_value(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_repr_names_every_setting():
    s = fa.FineTuneStrategy(3, base_lr=1e-3, moms=None, optimizer_name="momentum", use_nesterov=True)
    assert str(s) == ("FineTuneStrategy(epochs=3, base_lr=0.001, freeze_epochs=1, lr_mult=100.0, pct_start=0.3, "
                      "div=5.0, div_final=100000.0, moms=None, n_blocks=3, train_bn=True, wd=0.0, "
                      "optimizer_name='momentum', use_nesterov=True)")
