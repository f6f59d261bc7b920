"""LR curves over whole runs, stepped through the public scheduler, against the formulas written out."""
import math

import pytest

import paddle_strategy as ps
from helpers import mlp


def curve(strategy, T, extra=0, **build):
    _, lr = strategy.build(mlp(), max_train_steps=T, **build)
    out = []
    for _ in range(T + extra):
        out.append(lr.last_lr)
        lr.step()
    return out


def test_adam_weight_decay_linear_table():
    # Issue 7: T=100, lr=1e-3, warmup 0.1 -> 1e-3*t/10 for t<10, then 1e-3*(100-t)/90, 0 at T.
    got = curve(ps.AdamWeightDecayStrategy(learning_rate=1e-3, warmup_proportion=0.1), 100, extra=2)
    want = [1e-3 * t / 10 if t < 10 else 1e-3 * (100 - t) / 90 for t in range(101)] + [0.0]
    assert got == pytest.approx(want, abs=1e-15)
    assert got[10] == pytest.approx(1e-3) and got[100] == 0.0


def test_adam_weight_decay_no_warmup_starts_at_full_rate_and_reaches_zero():
    got = curve(ps.AdamWeightDecayStrategy(learning_rate=1e-3, warmup_proportion=0.0), 100, extra=1)
    assert got[0] == pytest.approx(1e-3)
    assert got == pytest.approx([1e-3 * (100 - t) / 100 for t in range(101)], abs=1e-15)
    assert got[100] == 0.0


def test_adam_weight_decay_noam_table():
    got = curve(ps.AdamWeightDecayStrategy(learning_rate=1e-3, lr_scheduler="noam_decay",
                                           warmup_proportion=0.1), 100, extra=20)
    want = [1e-3 * t / 10 if t < 10 else 1e-3 * math.sqrt(10 / t) for t in range(120)]
    assert got == pytest.approx(want, rel=1e-12)


def test_adam_weight_decay_str_shows_mapping():
    text = str(ps.AdamWeightDecayStrategy(learning_rate=1e-3, warmup_proportion=0.1))
    assert "lr_scheduler='linear_decay'" in text and "'start_point': 0.1" in text
    assert "'end_learning_rate': 0.0" in text and "'weight_decay': 0.01" in text and "'GlobalNorm': 1.0" in text
    noam = str(ps.AdamWeightDecayStrategy(lr_scheduler="noam_decay", warmup_proportion=0.2))
    assert "'noam_decay': True" in noam and "'warmup': 0.2" in noam


def test_combined_default_is_constant():
    assert curve(ps.CombinedStrategy(learning_rate=0.5), 7, extra=3) == [0.5] * 10


def test_combined_warmup_then_flat_then_linear_decay():
    # T=20, W=4, S=max(4, int(20*0.5))=10, end=0.1
    s = ps.CombinedStrategy(learning_rate=1.0, scheduler={"warmup": 0.2,
                                                          "linear_decay": {"start_point": 0.5,
                                                                           "end_learning_rate": 0.1}})
    want = []
    for t in range(23):
        if t < 4:
            want.append(t / 4)
        elif t < 10:
            want.append(1.0)
        elif t < 20:
            want.append(0.1 + 0.9 * (20 - t) / 10)
        else:
            want.append(0.1)
    assert curve(s, 20, extra=3) == pytest.approx(want, abs=1e-12)


def test_linear_decay_start_point_before_warmup_end_starts_at_warmup_end():
    # start_point 0.1 < warmup 0.3: S = max(W, int(T*0.1)) = W = 3
    s = ps.CombinedStrategy(learning_rate=1.0, scheduler={"warmup": 0.3,
                                                          "linear_decay": {"start_point": 0.1}})
    want = [t / 3 if t < 3 else (10 - t) / 7 for t in range(10)]
    assert curve(s, 10) == pytest.approx(want, abs=1e-12)


def test_warmup_steps_use_exact_fraction():
    # 100 * 0.29 is 28.999999999999996 in floating point; W must be 29.
    s = ps.CombinedStrategy(learning_rate=1.0, scheduler={"warmup": 0.29})
    got = curve(s, 100)
    assert got[28] == pytest.approx(28 / 29) and got[29] == 1.0


def test_slanted_triangle_ulmfit_formula():
    T, lr, cut_frac, ratio = 50, 0.01, 0.1, 32
    cut = 5
    want = []
    for t in range(55):
        p = t / cut if t < cut else max(0.0, 1 - (t - cut) / (T - cut))
        want.append(lr * (1 + p * (ratio - 1)) / ratio)
    s = ps.ULMFiTStrategy(learning_rate=lr, cut_fraction=cut_frac, ratio=ratio, dis_blocks=0, frz_blocks=0)
    assert curve(s, T, extra=5) == pytest.approx(want, rel=1e-12)
    assert max(want) == pytest.approx(lr) and want[0] == pytest.approx(lr / ratio)


def test_closed_form_equals_stepping_and_lr_at():
    # T=40, warmup 0.25 -> W=10, decay from S=W to 0 at T: 1e-3*t/10, then 1e-3*(40-t)/30, 0 from T on.
    # The scheduler stepped once per update, lr_at (no stepping) and a scheduler resumed from a state dict
    # all give that written-out curve.
    T, lr0 = 40, 1e-3
    want = [lr0 * t / 10 if t < 10 else lr0 * max(0, T - t) / 30 for t in range(T + 5)]
    s = ps.AdamWeightDecayStrategy(learning_rate=lr0, warmup_proportion=0.25)
    _, lr = s.build(mlp(), max_train_steps=T)
    _, probe = s.build(mlp(), max_train_steps=T)
    stepped = []
    for t in range(T + 5):
        stepped.append(lr.last_lr)
        if t == 17:
            state = dict(lr.state_dict())
        lr.step()
    assert stepped == pytest.approx(want, rel=1e-12, abs=1e-18)
    assert stepped[10] == lr0 and stepped[T] == 0.0
    assert [probe.lr_at(t) for t in range(T + 5)] == stepped
    assert probe.last_lr == want[0]  # lr_at did not move it
    _, resumed = s.build(mlp(), max_train_steps=T)
    resumed.set_state_dict(state)
    assert resumed.last_lr == stepped[17]
    for t in range(17, T + 5):
        assert resumed.last_lr == stepped[t], t
        resumed.step()
