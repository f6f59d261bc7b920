"""Schedules and PaddleOCR optimizer configs as their home libraries run them.

Every reference here is written out in this file from the home library's code (PaddleOCR's optimizer builder
and wrappers, torch's lr_scheduler / swa_utils, transformers' optimization.py, fastai's callback/schedule.py),
or is a hand-worked table; none is this package's own output.
"""
import math
import warnings

import numpy as np
import paddle
import pytest
import yaml

import paddle_strategy as ps
from paddle_strategy import schedules as cat
from paddle_strategy.lr import StrategyLR
from paddle_strategy.plotting import plot_lr

from helpers import torch_warm_restarts_at


def curve(schedule, n, start=0):
    return [schedule(t) for t in range(start, n)]


def assert_close(got, want, rtol=1e-9, atol=1e-15):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=rtol, atol=atol)


# ======================================================== 1. PaddleOCR optimizer x regularizer x weight_decay
# ppocr/optimizer/__init__.py (main and release/2.7): regularizer {name, factor} -> getattr(regularizer, name or
# name + 'Decay')(factor)(): L2Decay() returns the float factor, L1Decay() a paddle.regularizer.L1Decay; else
# config['weight_decay']; else None. That value is the wrapper's weight_decay, next to the remaining keys (so
# regularizer + weight_decay is a duplicate keyword: TypeError). optimizer.py's wrappers then build:

def ppocr_reference(name, keys, reg, lr, params):
    """The stock Paddle optimizer PaddleOCR's wrapper `name` builds with weight_decay=reg."""
    o = paddle.optimizer
    if name == "Momentum":
        return o.Momentum(learning_rate=lr, momentum=keys["momentum"], weight_decay=reg, parameters=params)
    if name == "Adam":
        return o.Adam(learning_rate=lr, beta1=0.9, beta2=0.999, epsilon=1e-8, weight_decay=reg, parameters=params)
    if name == "RMSProp":
        return o.RMSProp(learning_rate=lr, momentum=0.0, rho=0.95, epsilon=1e-6, weight_decay=reg, parameters=params)
    if name == "Adadelta":  # PaddleOCR's wrapper default epsilon is 1e-8 (Paddle's own: 1e-6)
        return o.Adadelta(learning_rate=lr, epsilon=1e-8, rho=0.95, weight_decay=reg, parameters=params)
    assert name == "AdamW"
    return o.AdamW(learning_rate=lr, beta1=0.9, beta2=0.999, epsilon=1e-8, parameters=params,
                   weight_decay=0.01 if reg is None else reg, apply_decay_param_fun=lambda n: True)


def ppocr_reg(reg_keys):
    if "regularizer" in reg_keys:
        r = reg_keys["regularizer"]
        kind = r["name"].removesuffix("Decay")
        return float(r["factor"]) if kind == "L2" else paddle.regularizer.L1Decay(r["factor"])
    return reg_keys.get("weight_decay")


OPTIMIZERS = {"Momentum": {"momentum": 0.9}, "Adam": {}, "RMSProp": {}, "Adadelta": {}, "AdamW": {}}
REGULARIZATIONS = {
    "none": {}, "weight_decay": {"weight_decay": 0.05},
    "L2": {"regularizer": {"name": "L2", "factor": 0.05}},
    "L2Decay_factor_0": {"regularizer": {"name": "L2Decay", "factor": 0.0}},  # PaddleOCR KIE LayoutXLM configs
    "L1": {"regularizer": {"name": "L1", "factor": 0.05}},
}
ACCEPTED = [(o, r) for o in OPTIMIZERS for r in REGULARIZATIONS if not (o == "AdamW" and r == "L1")]


def _twin_models():
    paddle.seed(12)
    a = paddle.nn.Linear(3, 2)
    b = paddle.nn.Linear(3, 2)
    b.set_state_dict(a.state_dict())
    return a, b


def _fixed_step(model, optimizer, grads):
    loss = sum((p * paddle.to_tensor(g)).sum() for p, g in zip(model.parameters(), grads))
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()


@pytest.mark.parametrize("opt_name,reg_name", ACCEPTED, ids=[f"{o}-{r}" for o, r in ACCEPTED])
def test_ppocr_optimizer_regularizer_combination_matches_the_stock_optimizer_ppocr_builds(opt_name, reg_name):
    ours, ref = _twin_models()
    cfg = {"name": opt_name, "lr": 0.1, **OPTIMIZERS[opt_name], **REGULARIZATIONS[reg_name]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer, _ = ps.build_optimizer(cfg, 1, 4, ours)
    notices = [str(w.message) for w in caught if "decoupled weight_decay" in str(w.message)]
    if opt_name == "AdamW" and "regularizer" in cfg:
        assert len(notices) == 1 and f"weight_decay={cfg['regularizer']['factor']!r}" in notices[0]
    else:
        assert not notices
    reference = ppocr_reference(opt_name, OPTIMIZERS[opt_name], ppocr_reg(REGULARIZATIONS[reg_name]), 0.1,
                                ref.parameters())
    rng = np.random.default_rng(0)
    for _ in range(2):  # two fixed-gradient steps: the update and the optimizer state it leaves
        grads = [rng.standard_normal(p.shape).astype("float32") for p in ours.parameters()]
        _fixed_step(ours, optimizer, grads)
        _fixed_step(ref, reference, grads)
        for (n, p), q in zip(ours.named_parameters(), ref.parameters()):
            np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-6, atol=1e-7, err_msg=n)


def test_ppocr_adamw_l2_factor_zero_means_no_decay_not_the_default():
    """KIE LayoutXLM: name: AdamW, regularizer {name: L2, factor: 0}: weights with zero gradient stay put."""
    model = paddle.nn.Linear(4, 2)
    before = model.weight.numpy().copy()
    with pytest.warns(UserWarning, match=r"decoupled weight_decay=0\.0"):
        opt, _ = ps.build_optimizer({"name": "AdamW", "lr": 0.1, "regularizer": {"name": "L2", "factor": 0.0}},
                                    1, 2, model)
    (model(paddle.ones([2, 4])).sum() * 0.0).backward()
    opt.step()
    np.testing.assert_array_equal(model.weight.numpy(), before)


@pytest.mark.parametrize("cfg,pattern", [
    ({"name": "AdamW", "regularizer": {"name": "L1", "factor": 1e-4}},
     r"Optimizer: AdamW with regularizer=.*L1.*Paddle's AdamW refuses"),
    ({"name": "Adam", "regularizer": {"name": "L2", "factor": 1e-4}, "weight_decay": 0.01},
     r"regularizer=.* and weight_decay=0.01 are both set.*TypeError"),
    ({"name": "AdamW", "regularizer": {"name": "L2", "factor": 1e-4}, "weight_decay": 0.01},
     r"are both set"),
])
def test_ppocr_combinations_paddleocr_refuses_are_refused_before_training(cfg, pattern):
    # AdamW + L1: Paddle's AdamW raises TypeError for a regularizer object, as it would under PaddleOCR:
    with pytest.raises(TypeError, match="weight_decay should be int, float or Tensor"):
        paddle.optimizer.AdamW(parameters=paddle.nn.Linear(1, 1).parameters(),
                               weight_decay=paddle.regularizer.L1Decay(1e-4))
    with pytest.raises(ValueError, match=pattern):
        ps.build_optimizer({**cfg, "lr": 0.1}, 1, 2, paddle.nn.Linear(2, 2))


# ================================================================ 2. torch CosineAnnealingWarmRestarts, fractional
def torch_documented_loop(n_steps, iters, T_0, T_mult, eta_min, base_lr):
    """The LR each update trains with under torch's docs: for epoch: for i in range(iters): train (optimizer
    .step()) at the current LR, then scheduler.step(epoch + i / iters)."""
    used, lr = [], base_lr  # construction: T_cur = 0
    for epoch in range(n_steps // iters + 1):
        for i in range(iters):
            used.append(lr)
            lr = torch_warm_restarts_at(epoch + i / iters, T_0, T_mult, eta_min, base_lr)
    return used[:n_steps]


@pytest.mark.parametrize("T_0,T_mult,iters", [(2, 2, 8), (3, 1, 5), (1, 3, 4)])
def test_warm_restarts_fractional_epochs_follow_torchs_documented_loop(T_0, T_mult, iters):
    n = 1000
    want = torch_documented_loop(n, iters, T_0, T_mult, 0.001, 0.1)
    f = cat.make_schedule("cosine_annealing_warm_restarts", steps_per_epoch=iters, learning_rate=0.1,
                          t_0_epochs=T_0, t_mult=T_mult, eta_min=0.001, fractional_epochs=True)
    # torch's float log can put an exact restart epoch e = T_0 (T_mult**n - 1) / (T_mult - 1) into the cycle
    # before it (log(243, 3) = 4.999...): torch then trains that update at eta_min; here it restarts.
    starts = [T_0 * (T_mult ** k - 1) // (T_mult - 1) if T_mult > 1 else T_0 * k for k in range(1, 12)]
    misplaced = {e * iters + 1 for k, e in enumerate(starts, 1)
                 if T_mult > 1 and int(math.log(e / T_0 * (T_mult - 1) + 1, T_mult)) < k}
    got = curve(f, n)
    assert_close([g for t, g in enumerate(got) if t not in misplaced], [w for t, w in enumerate(want) if t not in
                                                                        misplaced])
    for t in misplaced & set(range(n)):
        assert got[t] == 0.1 and want[t] == pytest.approx(0.001)
    assert (T_0, T_mult) != (1, 3) or misplaced & set(range(n)) == {485}


def test_warm_restarts_fractional_issue_example():
    """T_0=2, T_mult=2, 8 iters: update 1 trains at position 0 (0.1), not at 1/8 (0.09904)."""
    f = cat.make_cosine_annealing_warm_restarts(0.1, t_0_epochs=2, t_mult=2, steps_per_epoch=8,
                                                fractional_epochs=True)
    assert f(0) == f(1) == 0.1
    assert f(2) == pytest.approx(0.1 * (1 + math.cos(math.pi / 16)) / 2, rel=1e-12)  # position 1/8 of 2 epochs
    assert f(16) == pytest.approx(0.1 * (1 + math.cos(math.pi * 15 / 16)) / 2)  # position 15/8, not a restart
    assert f(17) == 0.1  # the restart, one update after the cycle boundary


# ================================================================ 3. torch OneCycleLR at and after step T
def test_one_cycle_lr_holds_the_last_value_where_torch_extrapolates_then_raises():
    T, max_lr = 10, 1.0
    f = cat.make_one_cycle_lr(max_lr, T, pct_start=0.3)
    # torch's get_lr at step_num = T (allowed: it raises only when step_num > T): the last phase's cosine
    # continued past its end_step T - 1
    start, end = 0.3 * T - 1, T - 1
    pct = (T - start) / (end - start)
    initial = max_lr / 25.0
    torch_at_T = initial / 1e4 + (max_lr - initial / 1e4) / 2.0 * (math.cos(math.pi * pct) + 1)
    assert torch_at_T > f(T - 1) * 1.5  # the extrapolated cosine is on its way back up
    # where torch raises (step_num > T), the value at T - 1 is held: initial / final_div_factor
    assert f(T - 1) == pytest.approx(initial / 1e4, rel=1e-12)
    assert f(T) == f(T - 1) == f(T + 1) == f(100 * T)


# ================================================================ 4. fastai float32 phase boundaries
def fastai_sched_cos(start, end, pos):
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def fastai_combine_float32(pcts, scheds):
    """fastai combine_scheds as torch runs it: boundaries a float32 cumsum, pos compared and offset in float32."""
    c = np.cumsum(np.array([0.0] + list(pcts), dtype=np.float32), dtype=np.float32)
    lim = len(c) - 2

    def inner(pos):
        p = np.float32(pos)
        idx = min(int(np.nonzero(p >= c)[0].max()), lim)
        return scheds[idx](float((p - c[idx]) / (c[idx + 1] - c[idx])))

    return inner


def worst_gap(f, ref, T):
    """(the largest relative difference, its step, the largest absolute difference)."""
    rel = [abs(f(t) - ref(t / T)) / abs(ref(t / T)) for t in range(T)]
    worst = max(range(T), key=rel.__getitem__)
    return rel[worst], worst, max(abs(f(t) - ref(t / T)) for t in range(T))


def test_fastai_float32_differences_are_the_documented_size():
    """The worst cases of tools/fastai_float32_gap.py's scan: 2.9e-5 relative at T = 1424, step 1422 (one-cycle)
    and 5.8e-5 at T = 1711, step 1710 (flat-cos), in the cosine tails; absolute, under 1e-7 / 2e-7 of the peak."""
    lr = 1e-2
    T = 1424
    one = fastai_combine_float32([0.25, 0.75], [lambda p: fastai_sched_cos(lr / 25, lr, p),
                                                lambda p: fastai_sched_cos(lr, lr / 1e5, p)])
    rel, step, absolute = worst_gap(cat.make_fit_one_cycle(lr, T), one, T)
    assert (round(rel, 6), step) == (2.9e-5, 1422) and absolute < 1e-7 * lr
    T = 1711
    flat = fastai_combine_float32([0.75, 0.25], [lambda p: fastai_sched_cos(lr, lr, p),
                                                 lambda p: fastai_sched_cos(lr, lr / 1e5, p)])
    rel, step, absolute = worst_gap(cat.make_fit_flat_cos(lr, T), flat, T)
    assert (round(rel, 6), step) == (5.8e-5, 1710) and absolute < 2e-7 * lr


def test_fastai_sgdr_restarts_one_batch_late_where_float32_rounds_up_and_we_do_not():
    spe, n_epoch = 50, 7  # 3 cycles of 1, 2, 4 epochs
    T = n_epoch * spe
    fastai = fastai_combine_float32([1 / 7, 2 / 7, 4 / 7], [lambda p: fastai_sched_cos(0.1, 0.0, p)] * 3)
    ours = cat.make_fit_sgdr(0.1, 3, 1, 2, steps_per_epoch=spe)
    assert fastai(150 / T) < 1e-13 and fastai(151 / T) == pytest.approx(0.1, rel=1e-3)  # one batch late
    assert ours(150) == 0.1 and ours(149) < 1e-3  # the exact boundary: 1 epoch + 2 epochs = step 150
    assert ours(50) == 0.1 and abs(fastai(50 / T) - 0.1) < 1e-9  # the first restart is on time in both
    late = [t for t in range(T) if abs(ours(t) - fastai(t / T)) > 0.01]
    assert late == [150]
    T4 = 15 * spe  # 4 cycles: 1 + 2 + 4 + 8 epochs
    fastai4 = fastai_combine_float32([1 / 15, 2 / 15, 4 / 15, 8 / 15], [lambda p: fastai_sched_cos(0.1, 0.0, p)] * 4)
    ours4 = cat.make_fit_sgdr(0.1, 4, 1, 2, steps_per_epoch=spe)
    diffs = [abs(ours4(t) - fastai4(t / T4)) for t in range(T4)]
    assert [t for t, d in enumerate(diffs) if d > 0.01] == [150, 350]
    assert max(d for d in diffs if d < 0.01) < 3e-7 * 0.1  # elsewhere: the documented 3e-7 of lr_max


# ================================================================ torch: chained, SWALR, CyclicLR
def test_chained_scheduler_constant_and_exponential_hand_table():
    """torch's docs example ChainedScheduler([ConstantLR(factor=0.1, total_iters=2), ExponentialLR(gamma=0.9)]),
    lr 1, worked through torch's recursions: construction ConstantLR 1 * 0.1, ExponentialLR unchanged at
    last_epoch 0 -> 0.1; step 1: 0.1 * 0.9; step 2: ConstantLR divides by 0.1, * 0.9 -> 0.81; then * 0.9.
    (The docstring's table before pytorch#149189, 0.09, 0.081, 0.729, ..., counts one ExponentialLR step too
    many.) ConstantLR is its closed form, a callable factor."""
    constant_lr = lambda epoch: 0.1 if epoch < 2 else 1.0  # noqa: E731
    f = cat.make_schedule("chained_scheduler", steps_per_epoch=1, learning_rate=1.0,
                          schedules=[constant_lr, {"name": "ExponentialDecay", "gamma": 0.9}])
    assert_close(curve(f, 6), [0.1, 0.09, 0.81, 0.729, 0.6561, 0.59049])


def torch_chain_recursive(n_epochs, lr, step_size, step_gamma, exp_gamma, milestones, ms_gamma):
    """torch's recursive get_lr of StepLR, ExponentialLR and MultiStepLR applied in turn each epoch."""
    out = []
    for epoch in range(n_epochs):
        if epoch > 0:
            if epoch % step_size == 0:
                lr *= step_gamma                        # StepLR
            lr *= exp_gamma                             # ExponentialLR
            lr *= ms_gamma ** milestones.count(epoch)   # MultiStepLR
        out.append(lr)
    return out


def test_chained_scheduler_equals_torchs_recursive_chain_per_epoch_from_yaml_and_python():
    spe, epochs = 4, 30
    want = torch_chain_recursive(epochs, 0.5, 7, 0.5, 0.95, [10, 20, 20], 0.3)
    cfg = yaml.safe_load("""
lr:
  name: chained_scheduler
  learning_rate: 0.5
  schedules:
    - {name: step_lr, step_size_epochs: 7, gamma: 0.5}
    - {name: exponential_decay, decay_steps: 4, decay_rate: 0.95, staircase: true}
    - {name: multi_step_lr, milestones_epochs: [10, 20, 20], gamma: 0.3}
""")
    f = cat.make_schedule(cfg["lr"].pop("name"), total_steps=epochs * spe, steps_per_epoch=spe, **cfg["lr"])
    assert_close(curve(f, epochs * spe), [v for v in want for _ in range(spe)])
    # Python: factors as callables
    g = cat.make_chained_scheduler(2.0, [lambda s: 0.5 ** (s // 3), lambda s: 1.0 / (1 + s)])
    assert_close(curve(g, 9), [2.0 * 0.5 ** (s // 3) / (1 + s) for s in range(9)])


def torch_chain_step_lr_then_lambda_lr(n_epochs, base_lr, step_size, gamma, table):
    """torch ChainedScheduler([StepLR(opt, step_size, gamma), LambdaLR(opt, lambda e: table[min(e, len - 1)])])
    stepped once per epoch, from torch's code: each constructor runs its step() once (last_epoch 0), then each
    chain.step() runs every scheduler's step() in order, and each step() writes its get_lr() into the
    optimizer. StepLR.get_lr: the optimizer's current lr * gamma when last_epoch is a positive multiple of
    step_size, else the current lr. LambdaLR.get_lr: base_lr * lambda(last_epoch), whatever the current lr."""
    def step_lr(current, epoch):
        return current * gamma if epoch > 0 and epoch % step_size == 0 else current

    def lambda_lr(current, epoch):
        return base_lr * table[min(epoch, len(table) - 1)]

    lr, out = base_lr, []
    for epoch in range(n_epochs):
        for get_lr in (step_lr, lambda_lr):
            lr = get_lr(lr, epoch)
        out.append(lr)
    return out


def test_chained_scheduler_lambda_lr_sets_the_lr_as_in_torch():
    spe, table = 5, [0.1, 0.4, 0.7, 1.0]
    want = torch_chain_step_lr_then_lambda_lr(200, 0.1, 30, 0.5, table)
    assert want[29:31] == [0.1, 0.1]  # at StepLR's boundary LambdaLR overwrites the halved lr
    f = cat.make_schedule("chained_scheduler", total_steps=1000, steps_per_epoch=spe, learning_rate=0.1,
                          schedules=[{"name": "step_lr", "step_size_epochs": 30, "gamma": 0.5},
                                     {"name": "epoch_table", "factors": table}])
    assert_close(curve(f, 1000), [v for v in want for _ in range(spe)])
    assert f(150) == 0.1  # not 0.1 * 0.5 * 1.0
    # paddle's LambdaDecay is LambdaLR too
    g = cat.make_chained_scheduler(0.1, [{"name": "step_lr", "step_size_steps": 30, "gamma": 0.5},
                                         {"name": "paddle.LambdaDecay", "lr_lambda": lambda e: 1 / (1 + e)}])
    assert_close(curve(g, 100), [0.1 / (1 + t) for t in range(100)])


def test_chained_scheduler_parts_run_length_keys_follow_the_runs_rule():
    """A part's own total_steps / steps_per_epoch, as at top level: equal to the run's or left out."""
    T = 20
    linear_lr = lambda t: 0.5 + 0.5 * min(t, T) / T  # noqa: E731  paddle.LinearLR(start_factor=0.5), T steps
    for part in ({"name": "paddle.LinearLR", "start_factor": 0.5},
                 {"name": "paddle.LinearLR", "start_factor": 0.5, "total_steps": T}):
        f = cat.make_schedule("chained_scheduler", total_steps=T, steps_per_epoch=2, learning_rate=0.1,
                              schedules=[part, {"name": "step_lr", "step_size_epochs": 3, "gamma": 0.5}])
        assert_close(curve(f, T), [0.1 * linear_lr(t) * 0.5 ** (t // 6) for t in range(T)])
    bad = [({"name": "paddle.LinearLR", "total_steps": 8},
            r"^chained_scheduler.schedules\[0\]: schedule 'paddle.LinearLR': total_steps=8 does not match the run, "
            r"which has total_steps=20 .*drop total_steps: it is filled in from the run"),
           ({"name": "step_lr", "step_size_epochs": 1, "steps_per_epoch": 3},
            r"^chained_scheduler.schedules\[0\]: schedule 'step_lr': steps_per_epoch=3 does not match the run, "
            r"which has steps_per_epoch=2"),
           ({"name": "ExponentialDecay", "gamma": 0.9, "total_steps": 20},
            r"^chained_scheduler.schedules\[0\]: schedule 'ExponentialDecay': unknown key 'total_steps'")]
    for part, pattern in bad:
        with pytest.raises(ValueError, match=pattern):
            cat.make_schedule("chained_scheduler", total_steps=T, steps_per_epoch=2, learning_rate=0.1,
                              schedules=[part])
    # no run length given (a Python call): the part's own is used
    g = cat.make_chained_scheduler(1.0, [{"name": "paddle.LinearLR", "start_factor": 0.5, "total_steps": 8}])
    assert_close(curve(g, 12), [0.5 + 0.5 * min(t, 8) / 8 for t in range(12)])


@pytest.mark.parametrize("schedules,error,pattern", [
    ([{"name": "epoch_table", "factors": [1.0]}, {"name": "step_lr", "step_size_epochs": 1}], ValueError,
     r"chained_scheduler.schedules\[1\] comes after chained_scheduler.schedules\[0\] \('epoch_table'\), which sets "
     r"the LR as torch's LambdaLR does.*Put 'epoch_table' last"),
    ([{"name": "epoch_table", "factors": [1.0]}, lambda t: 1.0], ValueError, r"schedules\[1\] comes after"),
    ([{"name": "one_cycle_lr", "max_lr": 1.0}], ValueError, r"schedules\[0\]: schedule 'one_cycle_lr' has no "
                                                             r"learning_rate key"),
    ([{"name": "step_lr", "learning_rate": 0.5, "step_size_epochs": 1}], ValueError,
     r"schedules\[0\]: learning_rate=0.5 is not allowed"),
    ([{"name": "step_lr", "step_size_epoch": 1}], ValueError,
     r"schedules\[0\]: schedule 'step_lr': unknown key 'step_size_epoch'.*Did you mean 'step_size_epochs'"),
    ([{"name": "stepp_lr"}], ValueError, r"schedules\[0\]: unknown schedule 'stepp_lr'.*Did you mean 'step_lr'"),
    ([{"step_size_epochs": 1}], TypeError, r"schedules\[0\] must be \{name: <schedule>"),
    ({"name": "step_lr"}, TypeError, r"schedules must be a non-empty list"),
    ([], TypeError, r"schedules must be a non-empty list"),
])
def test_chained_scheduler_bad_sub_schedules_name_the_index(schedules, error, pattern):
    with pytest.raises(error, match=pattern):
        cat.make_schedule("chained_scheduler", total_steps=10, steps_per_epoch=2, learning_rate=1.0,
                          schedules=schedules)


def torch_swalr(n_steps, lr0, swa_lr, anneal_epochs, strategy):
    """torch.optim.swa_utils.SWALR's recursive get_lr, stepped n_steps - 1 times after construction."""
    anneal = (lambda t: t) if strategy == "linear" else (lambda t: (1 - math.cos(math.pi * t)) / 2)

    def initial(lr, alpha):
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    group_lr, out = lr0, []
    for step_count in range(1, n_steps + 1):  # the constructor's own step() is _step_count 1
        step = step_count - 1
        if anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = anneal(max(0, min(1, (step - 1) / max(1, anneal_epochs))))
        prev_lr = initial(group_lr, prev_alpha)
        alpha = anneal(max(0, min(1, step / max(1, anneal_epochs))))
        group_lr = swa_lr * alpha + prev_lr * (1 - alpha)
        out.append(group_lr)
    return out


@pytest.mark.parametrize("anneal_epochs,strategy", [(10, "cos"), (5, "linear"), (0, "cos"), (1, "linear")])
def test_swa_lr_matches_torchs_recursion(anneal_epochs, strategy):
    want = torch_swalr(30, 0.2, 0.05, anneal_epochs, strategy)
    f = cat.make_schedule("swa_lr", steps_per_epoch=3, learning_rate=0.2, swa_lr=0.05, anneal_epochs=anneal_epochs,
                          anneal_strategy=strategy)
    assert_close(curve(f, 90), [v for v in want for _ in range(3)], rtol=1e-12)
    g = cat.make_swa_lr(0.2, 0.05, anneal_steps=anneal_epochs, anneal_strategy=strategy)
    assert_close(curve(g, 30), want, rtol=1e-12)
    assert cat.make_schedule("swa_lr", steps_per_epoch=1, learning_rate=0.2, swa_lr=0.05)(10) == 0.05  # default 10


def torch_cyclic(step, base, top, up, down, scale_fn, scale_mode, base_m=0.8, max_m=0.9):
    """torch CyclicLR.get_lr (lr, momentum) at last_epoch = step."""
    total = float(up + down)
    ratio = up / total
    cycle = math.floor(1 + step / total)
    x = 1.0 + step / total - cycle
    h = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    s = scale_fn(cycle) if scale_mode == "cycle" else scale_fn(step)
    return base + (top - base) * h * s, max_m - (max_m - base_m) * h * s


@pytest.mark.parametrize("scale_fn,scale_mode,torch_fn", [
    (lambda x: 0.5 * (1 + math.sin(x * math.pi / 2)), "cycle", lambda x: 0.5 * (1 + math.sin(x * math.pi / 2))),
    (lambda x: 1 / (1 + 0.01 * x), "iterations", lambda x: 1 / (1 + 0.01 * x)),
    ("exp_range", "cycle", lambda x: 0.8 ** x),        # a built-in function by name, on the cycle count
    ("triangular2", "iterations", lambda x: 1 / (2.0 ** (x - 1))),
    ("triangular", None, lambda x: 1.0),
])
def test_cyclic_lr_custom_scale_fn_and_scale_mode(scale_fn, scale_mode, torch_fn):
    f = cat.make_schedule("cyclic_lr", base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=5, gamma=0.8,
                          scale_fn=scale_fn, scale_mode=scale_mode)
    want = [torch_cyclic(t, 0.01, 0.1, 3, 5, torch_fn, scale_mode or "cycle") for t in range(50)]
    assert_close(curve(f, 50), [w[0] for w in want])
    assert_close(curve(f.momentum, 50), [w[1] for w in want])


def test_cyclic_lr_settings_torch_would_ignore_are_refused():
    with pytest.raises(ValueError, match=r"mode='exp_range' and scale_fn=.* are both set; torch ignores mode"):
        cat.make_cyclic_lr(0.1, 1.0, mode="exp_range", scale_fn=lambda x: 1.0)
    with pytest.raises(ValueError, match=r"scale_mode='iterations' applies with a custom scale_fn only"):
        cat.make_cyclic_lr(0.1, 1.0, mode="triangular2", scale_mode="iterations")
    with pytest.raises(ValueError, match=r"cyclic_lr.scale_fn must be one of .*got 'exp'.*Did you mean 'exp_range'"):
        cat.make_cyclic_lr(0.1, 1.0, scale_fn="exp")
    with pytest.raises(ValueError, match=r"cyclic_lr.scale_mode must be one of 'cycle', 'iterations', got 'cycles'"):
        cat.make_cyclic_lr(0.1, 1.0, scale_fn="triangular", scale_mode="cycles")
    # mode's own scale_mode given explicitly is fine (torch: the same curve)
    same = cat.make_cyclic_lr(0.1, 1.0, step_size_up=2, mode="exp_range", gamma=0.9, scale_mode="iterations")
    assert curve(same, 7) == curve(cat.make_cyclic_lr(0.1, 1.0, step_size_up=2, mode="exp_range", gamma=0.9), 7)


# ================================================================ transformers
def hf_hard_restarts(step, W, T, cycles):
    if step < W:
        return float(step) / float(max(1, W))
    progress = float(step - W) / float(max(1, T - W))
    if progress >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(cycles) * progress) % 1.0))))


def hf_cosine_min_lr(step, W, T, cycles, m):
    if step < W:
        return float(step) / float(max(1, W))
    progress = float(step - W) / float(max(1, T - W))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(cycles) * 2.0 * progress))
    return max(0, factor * (1 - m) + m)


def hf_cosine_warmup_min_lr(step, W, T, cycles, m, warmup_lr_rate):
    step, W, T = float(step), float(W), float(T)
    if step < W:
        if warmup_lr_rate is None:
            return (step + 1.) / max(1., W)
        return warmup_lr_rate + (1.0 - warmup_lr_rate) * step / (max(1, W - 1))
    progress = (step - W + 1.) / (max(1., T - W))
    factor = 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress))
    return max(0, factor * (1 - m) + m)


@pytest.mark.parametrize("W,T,cycles", [(0, 100, 3), (7, 100, 3), (5, 50, 4), (10, 1010, 7), (3, 40, 1)])
def test_transformers_cosine_with_restarts_any_cycle_length(W, T, cycles):
    f = cat.make_schedule("cosine_with_restarts", total_steps=T, learning_rate=0.3, num_warmup_steps=W,
                          num_cycles=cycles)
    assert_close(curve(f, T + 10), [0.3 * hf_hard_restarts(t, W, T, cycles) for t in range(T + 10)])


@pytest.mark.parametrize("W,cycles,m", [(0, 0.5, 0.1), (7, 0.5, 0.0), (7, 1.5, 0.2), (3, 2, 0.05), (10, 0.25, 0.5)])
def test_transformers_cosine_with_min_lr_every_num_cycles_and_warmup(W, cycles, m):
    T = 60
    f = cat.make_schedule("cosine_with_min_lr", total_steps=T, learning_rate=0.2, num_warmup_steps=W,
                          num_cycles=cycles, min_lr_rate=m)
    want = [0.2 * hf_cosine_min_lr(t, W, T, cycles, m) for t in range(T + 20)]
    assert_close(curve(f, T + 20), want)
    g = cat.make_cosine_with_min_lr(0.2, W, T, num_cycles=cycles, min_lr=0.2 * m)  # min_lr / lr = m
    assert_close(curve(g, T + 20), want)


@pytest.mark.parametrize("W,cycles,m,warm", [(0, 0.5, 0.1, None), (1, 0.5, 0.1, None), (8, 0.5, 0.0, None),
                                             (8, 1.5, 0.2, 0.1), (1, 0.5, 0.1, 0.3), (5, 2, 0.05, 0.0)])
def test_transformers_cosine_warmup_with_min_lr(W, cycles, m, warm):
    T = 60
    f = cat.make_schedule("cosine_warmup_with_min_lr", total_steps=T, learning_rate=0.2, num_warmup_steps=W,
                          num_cycles=cycles, min_lr_rate=m, warmup_lr_rate=warm)
    assert_close(curve(f, T + 5), [0.2 * hf_cosine_warmup_min_lr(t, W, T, cycles, m, warm) for t in range(T + 5)])


def test_transformers_min_lr_keys():
    with pytest.raises(ValueError, match="give exactly one of min_lr and min_lr_rate"):
        cat.make_schedule("cosine_with_min_lr", total_steps=10, learning_rate=0.1, num_warmup_steps=0)
    with pytest.raises(ValueError, match="give exactly one of min_lr and min_lr_rate"):
        cat.make_cosine_warmup_with_min_lr(0.1, 0, 10, min_lr=0.01, min_lr_rate=0.1)
    with pytest.raises(ValueError, match="has its own warmup"):
        cat.make_schedule("cosine_with_restarts", total_steps=10, learning_rate=0.1, num_warmup_steps=0,
                          warmup_steps=2)


def test_transformers_wsd_with_both_lengths_warns_and_uses_num_stable_steps():
    def hf_wsd_cosine(step, W, S, D):  # linear warmup, cosine decay (num_cycles 0.5), min_lr_ratio 0
        if step < W:
            return step / max(1, W)
        if step < W + S:
            return 1.0
        if step < W + S + D:
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * (step - W - S) / max(1, D))))
        return 0.0
    with pytest.warns(UserWarning, match=r"num_training_steps=100 and num_stable_steps=20 .* num_stable_steps is "
                                         r"used"):
        f = cat.make_schedule("warmup_stable_decay", learning_rate=1.0, num_warmup_steps=5, num_decay_steps=10,
                              num_training_steps=100, num_stable_steps=20)
    assert_close(curve(f, 100), [hf_wsd_cosine(t, 5, 20, 10) for t in range(100)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # agreeing lengths: no warning
        cat.make_warmup_stable_decay(1.0, 5, 10, num_training_steps=35, num_stable_steps=20)


# ================================================================ fastai: sched_exp, sched_poly, combine_scheds
def fastai_combine64(pcts, scheds, pos):
    bounds = np.cumsum([0.0] + list(pcts))
    idx = min(int(np.nonzero(pos >= bounds)[0].max()), len(bounds) - 2)
    return scheds[idx]((pos - bounds[idx]) / (bounds[idx + 1] - bounds[idx]))


def test_fastai_sched_exp_and_sched_poly():
    T = 40
    f = cat.make_schedule("sched_exp", total_steps=T, start=1e-5, end=1e-1)
    assert_close(curve(f, T + 3), [1e-5 * (1e-1 / 1e-5) ** min(t / T, 1) for t in range(T + 3)])
    g = cat.make_schedule("sched_poly", total_steps=T, start=0.1, end=0.0, power=2)
    assert_close(curve(g, T + 3), [0.1 + (0.0 - 0.1) * min(t / T, 1) ** 2 for t in range(T + 3)])
    with pytest.raises(ValueError, match=r"sched_exp.start must be > 0, got 0"):
        cat.make_sched_exp(0, 1.0, 10)


def test_fastai_combine_scheds_any_phases_from_yaml_and_python():
    T = 50
    pcts = [0.2, 0.0, 0.3, 0.5]  # a zero-width phase is skipped, as in fastai
    sched = yaml.safe_load("""
- {name: SchedLin, start: 0.001, end: 0.01}
- {name: SchedNo, start: 5.0}
- {name: exp, start: 0.01, end: 0.0001}
- {name: SchedPoly, start: 0.0001, end: 0.00001, power: 0.5}
""")
    refs = [lambda p: 0.001 + p * (0.01 - 0.001), lambda p: 5.0, lambda p: 0.01 * (0.0001 / 0.01) ** p,
            lambda p: 0.0001 + (0.00001 - 0.0001) * p ** 0.5]
    f = cat.make_schedule("combine_scheds", total_steps=T, pcts=pcts, scheds=sched)
    assert_close(curve(f, T + 2), [fastai_combine64(pcts, refs, min(t / T, 1.0)) for t in range(T + 2)])
    assert 5.0 not in curve(f, T + 2)
    g = cat.make_combine_scheds([0.5, 0.5], [lambda p: 1 - p, lambda p: p], total_steps=10)  # callables
    assert_close(curve(g, 11), [1, 0.8, 0.6, 0.4, 0.2, 0, 0.2, 0.4, 0.6, 0.8, 1.0])


@pytest.mark.parametrize("kw,error,pattern", [
    (dict(pcts=[0.5, 0.4], scheds=[{"name": "cos", "start": 1, "end": 0}] * 2), ValueError,
     r"combine_scheds.pcts must sum to 1, got \[0.5, 0.4\]"),
    (dict(pcts=[0.5, 0.5], scheds=[{"name": "cos", "start": 1, "end": 0}]), ValueError,
     r"combine_scheds.scheds must be a list of 2 phase\(s\)"),
    (dict(pcts=[1.0], scheds=[{"name": "coss", "start": 1, "end": 0}]), ValueError,
     r"combine_scheds.scheds\[0\].name must be one of .*got 'coss'.*Did you mean 'cos'"),
    (dict(pcts=[1.0], scheds=[{"name": "poly", "start": 1, "end": 0}]), ValueError,
     r"combine_scheds.scheds\[0\] \('poly'\): missing key\(s\) 'power'"),
    (dict(pcts=[1.0], scheds=[{"name": "lin", "start": 1, "ends": 0}]), ValueError,
     r"combine_scheds.scheds\[0\] \('lin'\): unknown key 'ends'.*Did you mean 'end'"),
    (dict(pcts=[1.0], scheds=["cos"]), TypeError, r"combine_scheds.scheds\[0\] must be a callable"),
    (dict(pcts=[1.0], scheds=yaml.safe_load("[{name: no, start: 1}]")), ValueError,
     r"got False \(YAML reads an unquoted no as false: write 'no' or SchedNo\)"),
])
def test_fastai_combine_scheds_bad_input(kw, error, pattern):
    with pytest.raises(error, match=pattern):
        cat.make_schedule("combine_scheds", total_steps=10, **kw)


# ============================================= each of these names: YAML lr:, CombinedStrategy, plot, resume
END_TO_END = {
    "chained_scheduler": dict(learning_rate=0.1, schedules=[{"name": "step_lr", "step_size_epochs": 2},
                                                            {"name": "ExponentialDecay", "gamma": 0.95}]),
    "swa_lr": dict(learning_rate=0.1, swa_lr=0.01, anneal_epochs=3),
    "cyclic_lr": dict(base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn="exp_range", gamma=0.9),
    "cosine_with_restarts": dict(learning_rate=0.1, num_warmup_steps=3, num_cycles=3),
    "cosine_with_min_lr": dict(learning_rate=0.1, num_warmup_steps=3, num_cycles=1.5, min_lr=0.01),
    "cosine_warmup_with_min_lr": dict(learning_rate=0.1, num_warmup_steps=3, min_lr_rate=0.1),
    "sched_exp": dict(start=0.1, end=0.001),
    "sched_poly": dict(start=0.1, end=0.001, power=2),
    "combine_scheds": dict(pcts=[0.3, 0.7], scheds=[{"name": "lin", "start": 0.01, "end": 0.1},
                                                   {"name": "cos", "start": 0.1, "end": 0.001}]),
}


EPOCHS, SPE = 4, 5
T_RUN = EPOCHS * SPE


def _hf_warmup_then(W, after):
    """transformers' linear warmup lr * t / W, then `after(progress)` with progress = (t - W) / (T - W)."""
    return lambda t: 0.1 * t / W if t < W else after((t - W) / (T_RUN - W))


def _cyclic(t):
    """Smith's triangular CLR (torch's CyclicLR) with scale 0.9 ** cycle: half cycles of 3 steps."""
    cycle = math.floor(1 + t / 6)
    x = abs(t / 3 - 2 * cycle + 1)
    return 0.01 + (0.1 - 0.01) * max(0.0, 1 - x) * 0.9 ** cycle


def _swa(t):
    """SWALR cos from 0.1 to 0.01 over 3 epochs of 5 steps, then 0.01."""
    a = (1 - math.cos(math.pi * min((t // 5) / 3, 1.0))) / 2
    return 0.01 * a + 0.1 * (1 - a)


def _combine(t):
    """fastai: lin 0.01 -> 0.1 over the first 30 % of the run, then SchedCos 0.1 -> 0.001."""
    pos = t / T_RUN
    if pos < 0.3:
        return 0.01 + (0.1 - 0.01) * pos / 0.3
    p = (pos - 0.3) / 0.7
    return 0.1 + (1 + math.cos(math.pi * (1 - p))) * (0.001 - 0.1) / 2


# Each schedule's curve over the T_RUN = 20 steps of END_TO_END's settings (5 steps an epoch), from its source's formula.
FORMULAS = {
    "chained_scheduler": lambda t: 0.1 * 0.1 ** (t // 10) * 0.95 ** t,  # StepLR every 2 epochs, gamma 0.1
    "swa_lr": _swa,
    "cyclic_lr": _cyclic,
    "cosine_with_restarts": _hf_warmup_then(3, lambda p: 0.0 if p >= 1 else
                                            0.1 * 0.5 * (1 + math.cos(math.pi * ((3 * p) % 1.0)))),
    "cosine_with_min_lr": _hf_warmup_then(3, lambda p: 0.1 * max(0.0, 0.1 + 0.9 * 0.5 *
                                                                 (1 + math.cos(math.pi * 1.5 * 2 * p)))),
    # one step ahead: warmup (t + 1) / W, then progress (t - W + 1) / (T - W), num_cycles 0.5
    "cosine_warmup_with_min_lr": lambda t: 0.1 * ((t + 1) / 3 if t < 3 else max(0.0, 0.1 + 0.9 * 0.5 * (
        1 + math.cos(math.pi * (t - 2) / 17)))),
    "sched_exp": lambda t: 0.1 * (0.001 / 0.1) ** (t / T_RUN),
    "sched_poly": lambda t: 0.1 + (0.001 - 0.1) * (t / T_RUN) ** 2,
    "combine_scheds": _combine,
}


@pytest.mark.parametrize("name", sorted(END_TO_END))
def test_schedule_from_yaml_combined_strategy_python_plot_and_resume(name, tmp_path):
    epochs, spe = EPOCHS, SPE
    T = epochs * spe
    direct = cat.make_schedule(name, total_steps=T, steps_per_epoch=spe, **END_TO_END[name])
    want = curve(direct, T)
    assert_close(want, [FORMULAS[name](t) for t in range(T)], rtol=1e-12, atol=1e-15)
    # YAML `lr:` through PaddleOCR's Optimizer schema
    text = yaml.safe_dump({"Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": name, **END_TO_END[name]}}})
    opt, sched = ps.build_optimizer(yaml.safe_load(text)["Optimizer"], epochs, spe, paddle.nn.Linear(2, 2))
    seen = []
    for _ in range(T):
        seen.append(sched.last_lr)
        sched.step()
    assert seen == want
    # CombinedStrategy(scheduler={"schedule": ...})
    strategy = ps.CombinedStrategy("momentum", scheduler={"schedule": {"name": name, **END_TO_END[name]}})
    _, lr2 = strategy.build(paddle.nn.Linear(2, 2), max_train_steps=T, steps_per_epoch=spe)
    assert [lr2.lr_at(t) for t in range(T)] == want
    # plot
    path = tmp_path / f"{name}.png"
    assert plot_lr(lr2, T, path).read_bytes().startswith(b"\x89PNG")
    # state_dict resume mid-run
    run = StrategyLR(cat.make_schedule(name, total_steps=T, steps_per_epoch=spe, **END_TO_END[name]), steps_per_epoch=spe)
    for _ in range(7):
        run.step()
    resumed = StrategyLR(cat.make_schedule(name, total_steps=T, steps_per_epoch=spe, **END_TO_END[name]),
                         steps_per_epoch=spe)
    resumed.set_state_dict(dict(run.state_dict()))
    for t in range(7, T):
        assert resumed.last_lr == want[t]
        resumed.step()
