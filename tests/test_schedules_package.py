"""The schedules package: the shared parts, PaddleHub's schedules as joins, the LR finder's sweep as a
schedule. Expected values are written out here or hand tables."""
import importlib
import math

import pytest

import paddle_strategy as ps
from paddle_strategy import schedules
from paddle_strategy.lr import StrategyLR


def test_phases_on_a_bound_next_and_previous():
    up = lambda p: 10 * p  # noqa: E731
    down = lambda p: 100 - p  # noqa: E731
    nxt = schedules.phases([0, 2, 2, 4], [up, lambda p: -1.0, down], at_bound="next")  # middle piece: width 0
    assert [nxt(x) for x in (0, 1, 2, 3, 4, 5)] == [0.0, 5.0, 100.0, 99.5, 99.0, 98.5]
    assert nxt(-2) == -10.0  # before bounds[0] the first piece runs
    prev = schedules.phases([0, 2, 4], [up, down], at_bound="previous")
    assert [prev(x) for x in (0, 1, 2, 3, 4, 6)] == [0.0, 5.0, 10.0, 99.5, 99.0, 98.0]
    zero = schedules.phases([0, 0, 4], [lambda p: 7.0 + p, down], at_bound="previous")
    assert zero(0) == 7.0 and zero(2) == 99.5  # a zero-width piece is evaluated at pct 0
    with pytest.raises(ValueError, match="one piece per interval"):
        schedules.phases([0, 1], [up, down])
    with pytest.raises(ValueError, match="every piece has zero width"):
        schedules.phases([1, 1], [up])
    with pytest.raises(ValueError, match="at_bound must be 'next' or 'previous', got 'both'"):
        schedules.phases([0, 1], [up], at_bound="both")


def test_noam_is_inverse_sqrt_with_timescale_w():
    lr, W = 2e-3, 8
    noam = schedules.make_noam_decay(lr, W)
    hf = schedules.make_inverse_sqrt(lr, num_warmup_steps=W, timescale=W)
    want = [lr * t / W if t < W else lr * math.sqrt(W / t) for t in range(200)]
    got = [noam(t) for t in range(200)]
    assert got == pytest.approx(want, rel=1e-12)
    assert got == [hf(t) for t in range(200)]
    assert got[W] == lr


def test_warmup_linear_decay_without_room_to_decay_keeps_the_peak():
    # decay_start_step >= total_steps: warmup, then the peak for good (PaddleHub: no decay was asked for)
    f = schedules.make_warmup_linear_decay(0.5, 10, 4, 12, 0.0)
    assert [f(t) for t in range(14)] == pytest.approx([0.0, 0.125, 0.25, 0.375] + [0.5] * 10, abs=1e-15)
    g = schedules.make_warmup_linear_decay(0.5, 10, 0, 6, 0.1)  # no warmup, flat, decay to 0.1, held
    want = [0.5] * 6 + [0.1 + 0.4 * (10 - t) / 4 for t in range(6, 10)] + [0.1] * 3
    assert [g(t) for t in range(13)] == pytest.approx(want, abs=1e-15)
    assert g(10) == 0.1 and g(100) == 0.1


def test_slanted_triangular_paper_formula_and_hold():
    lr, T, cut, ratio = 0.02, 30, 4, 16.0
    f = schedules.make_slanted_triangular(lr, T, cut, ratio)
    want = []
    for t in range(40):  # Howard & Ruder eq. 3
        p = t / cut if t < cut else max(0.0, 1 - (t - cut) / (T - cut))
        want.append(lr * (1 + p * (ratio - 1)) / ratio)
    assert [f(t) for t in range(40)] == pytest.approx(want, rel=1e-12)
    assert f(cut) == lr and f(T) == lr / ratio and f(10 * T) == lr / ratio


def test_lr_find_sweep_is_an_exponential_schedule_on_strategy_lr():
    lr_find = importlib.import_module("paddle_strategy.lr_find")
    sweep = lr_find.sweep_schedule(1e-4, 1.0, 5)
    assert [sweep(i) for i in range(7)] == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1.0, 1.0], rel=1e-12)
    scheduler = StrategyLR(sweep)
    seen = []
    for _ in range(5):
        seen.append(scheduler.last_lr)
        scheduler.step()
    assert seen == list(lr_find.sweep_lrs(1e-4, 1.0, 5))


def test_combined_strategy_schedules_come_from_the_package():
    # the three PaddleHub schedules, built by CombinedStrategy, against their written-out curves
    T = 60
    noam = ps.AdamWeightDecayStrategy(learning_rate=1e-3, lr_scheduler="noam_decay", warmup_proportion=0.1)
    assert [noam.schedule(T)(t) for t in range(T)] == pytest.approx(
        [1e-3 * t / 6 if t < 6 else 1e-3 * math.sqrt(6 / t) for t in range(T)], rel=1e-12)
    ulmfit = ps.ULMFiTStrategy(learning_rate=0.01, cut_fraction=0.2, ratio=32, dis_blocks=0, frz_blocks=0)
    p = [t / 12 if t < 12 else 1 - (t - 12) / 48 for t in range(T)]
    assert [ulmfit.schedule(T)(t) for t in range(T)] == pytest.approx([0.01 * (1 + q * 31) / 32 for q in p],
                                                                       rel=1e-12)
