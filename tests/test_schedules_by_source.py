"""Every LR schedule, by source, against independent references: stock paddle.optimizer.lr classes assembled the
way PaddleOCR's code assembles them, each source's formulas written out here, and hand-worked tables."""
import math
import random

import numpy as np
import paddle.optimizer.lr as plr
import pytest

from paddle_strategy import schedules as cat
from paddle_strategy.lr import StrategyLR
from paddle_strategy.plateau import ReduceLROnPlateau

from helpers import torch_warm_restarts_at


def curve(schedule, n, start=0):
    return [schedule(t) for t in range(start, n)]


def stepped(scheduler, n):
    """A paddle scheduler's learning rate for updates 0..n-1, stepped once per update as PaddleOCR does."""
    if isinstance(scheduler, float):
        return [scheduler] * n
    out = [scheduler.last_lr]
    for _ in range(n - 1):
        scheduler.step()
        out.append(scheduler.last_lr)
    return out


def assert_close(got, want, rtol=1e-9, atol=1e-15):
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), rtol=rtol, atol=atol)


def cos_between(start, end, pct):  # written out here, not imported
    return end + (start - end) * (1 + math.cos(math.pi * pct)) / 2


# ---------------------------------------------------------------- PaddleOCR
# Its three custom schedulers (ppocr/optimizer/lr_scheduler.py), re-implemented from their code as paddle
# LRSchedulers, so that stock LinearWarmup drives them exactly as in PaddleOCR.

class RefCyclicalCosineDecay(plr.LRScheduler):
    def __init__(self, learning_rate, T_max, cycle=1, last_epoch=-1, eta_min=0.0):
        self.cycle, self.eta_min = cycle, eta_min
        super().__init__(learning_rate, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return self.base_lr
        relative = self.last_epoch % self.cycle
        return self.eta_min + 0.5 * (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * relative / self.cycle))


class RefOneCycleDecay(plr.LRScheduler):
    def __init__(self, max_lr, epochs, steps_per_epoch, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        T = epochs * steps_per_epoch
        self.total_steps = T
        initial = max_lr / div_factor
        low = initial / final_div_factor
        if three_phase:
            self.phases = [(pct_start * T - 1, initial, max_lr), (2 * pct_start * T - 2, max_lr, initial),
                           (T - 1, initial, low)]
        else:
            self.phases = [(pct_start * T - 1, initial, max_lr), (T - 1, max_lr, low)]
        if anneal_strategy == "cos":
            self.anneal = lambda s, e, p: e + (s - e) / 2.0 * (math.cos(math.pi * p) + 1)
        else:
            self.anneal = lambda s, e, p: (e - s) * p + s
        super().__init__(max_lr, last_epoch)

    def get_lr(self):
        start = 0
        for i, (end, lo, hi) in enumerate(self.phases):
            if self.last_epoch <= end or i == len(self.phases) - 1:
                return self.anneal(lo, hi, (self.last_epoch - start) / (end - start))
            start = end


class RefTwoStepCosineDecay(plr.LRScheduler):
    def __init__(self, learning_rate, T_max1, T_max2, eta_min=0, last_epoch=-1):
        self.T_max1, self.T_max2, self.eta_min = T_max1, T_max2, float(eta_min)
        super().__init__(learning_rate, last_epoch)

    def _recur(self, T):
        t = self.last_epoch
        if (t - 1 - T) % (2 * T) == 0:
            return self.last_lr + (self.base_lr - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (self.last_lr - self.eta_min) + self.eta_min)

    def get_lr(self):
        if self.last_epoch <= self.T_max1:
            return self.base_lr if self.last_epoch == 0 else self._recur(self.T_max1)
        return self._recur(self.T_max2)

    def _get_closed_form_lr(self):
        T = self.T_max1 if self.last_epoch <= self.T_max1 else self.T_max2
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / T)) / 2


def ppocr_reference(name, cfg, epochs, spe, *, forward=()):
    """PaddleOCR's `getattr(learning_rate, name)(**cfg, epochs=..., step_each_epoch=...)()`, rebuilt from stock
    paddle classes as its code does. `forward` lists keys PaddleOCR drops that are forwarded here anyway,
    to show what honouring them means."""
    c = dict(cfg)
    lr = c.get("learning_rate")
    fwd = {k: c[k] for k in forward}
    if name == "Linear":
        inner = plr.PolynomialDecay(learning_rate=lr, decay_steps=epochs * spe, end_lr=c.get("end_lr", 0.0),
                                    power=c.get("power", 1.0))
    elif name == "Cosine":
        inner = plr.CosineAnnealingDecay(learning_rate=lr, T_max=spe * epochs)
    elif name == "Step":
        inner = plr.StepDecay(learning_rate=lr, step_size=spe * c["step_size"], gamma=c["gamma"])
    elif name == "Piecewise":
        inner = plr.PiecewiseDecay(boundaries=[spe * e for e in c["decay_epochs"]], values=c["values"])
        lr = c["values"][0]
    elif name == "MultiStepDecay":
        inner = plr.MultiStepDecay(learning_rate=lr, milestones=[spe * e for e in c["milestones"]], gamma=c["gamma"])
    elif name == "CyclicalCosine":
        inner = RefCyclicalCosineDecay(lr, T_max=spe * epochs, cycle=round(c["cycle"] * spe), **fwd)
    elif name == "OneCycle":
        lr = c["max_lr"]
        inner = RefOneCycleDecay(lr, epochs, spe, anneal_strategy=c.get("anneal_strategy", "cos"),
                                 three_phase=c.get("three_phase", False), **fwd)
    elif name == "Const":
        inner = float(lr)
    elif name == "DecayLearningRate":
        inner = plr.PolynomialDecay(learning_rate=lr, decay_steps=spe * epochs, power=c.get("factor", 0.9),
                                    end_lr=fwd.get("end_lr", 0))
        if "warmup_epoch" not in forward:
            return inner  # PaddleOCR builds no warmup for this class
    elif name == "TwoStepCosine":
        inner = RefTwoStepCosineDecay(lr, T_max1=spe * 200, T_max2=spe * epochs, **fwd)
    W = round(c.get("warmup_epoch", 0) * spe)
    if W > 0:
        inner = plr.LinearWarmup(learning_rate=inner, warmup_steps=W, start_lr=0.0, end_lr=lr)
    return inner


PPOCR_CASES = [
    ("Linear", dict(learning_rate=0.01, end_lr=1e-4, power=2.0), 8, 5),
    ("Linear", dict(learning_rate=0.01, warmup_epoch=1), 8, 5),
    ("Cosine", dict(learning_rate=0.001), 8, 5),
    ("Cosine", dict(learning_rate=0.001, warmup_epoch=2), 8, 5),
    ("Cosine", dict(learning_rate=0.001, warmup_epoch=0.5), 8, 5),  # round(2.5) == 2: half to even
    ("Cosine", dict(learning_rate=0.001, warmup_epoch=0.7), 8, 5),
    ("Step", dict(learning_rate=0.1, step_size=3, gamma=0.5), 8, 5),
    ("Step", dict(learning_rate=0.1, step_size=3, gamma=0.5, warmup_epoch=1), 8, 5),
    ("Piecewise", dict(decay_epochs=[3, 6], values=[0.1, 0.01, 0.001]), 8, 5),
    ("Piecewise", dict(decay_epochs=[3, 6], values=[0.1, 0.01, 0.001], warmup_epoch=1, learning_rate=0.1), 8, 5),
    ("MultiStepDecay", dict(learning_rate=0.1, milestones=[2, 5], gamma=0.1), 8, 5),
    ("MultiStepDecay", dict(learning_rate=0.1, milestones=[2, 5], gamma=0.1, warmup_epoch=1), 8, 5),
    ("CyclicalCosine", dict(learning_rate=0.001, cycle=3), 8, 5),
    ("CyclicalCosine", dict(learning_rate=0.001, cycle=2.5, warmup_epoch=1), 8, 5),
    ("OneCycle", dict(max_lr=0.01), 8, 5),
    ("OneCycle", dict(max_lr=0.01, anneal_strategy="linear", three_phase=True), 8, 5),
    ("OneCycle", dict(max_lr=0.01, warmup_epoch=1), 8, 5),
    ("Const", dict(learning_rate=0.05), 8, 5),
    ("Const", dict(learning_rate=0.05, warmup_epoch=2), 8, 5),
    ("DecayLearningRate", dict(learning_rate=0.007), 8, 5),
    ("DecayLearningRate", dict(learning_rate=0.007, factor=0.5), 8, 5),
    ("TwoStepCosine", dict(learning_rate=0.001), 150, 2),
    ("TwoStepCosine", dict(learning_rate=0.001), 230, 2),  # recursion holds 0 after epoch 200
    ("TwoStepCosine", dict(learning_rate=0.001, warmup_epoch=1), 230, 2),  # closed form: a second cosine
]


@pytest.mark.parametrize("name,cfg,epochs,spe", PPOCR_CASES)
def test_ppocr_matches_paddle_classes_as_ppocr_builds_them(name, cfg, epochs, spe):
    T = epochs * spe
    want = stepped(ppocr_reference(name, cfg, epochs, spe), T)
    got = curve(cat.make_schedule(name, total_steps=T, steps_per_epoch=spe, **cfg), T)
    assert_close(got, want, rtol=1e-9, atol=1e-12 * max(want))


def test_ppocr_two_step_cosine_without_warmup_holds_zero_after_epoch_200():
    f = cat.make_schedule("TwoStepCosine", total_steps=460, steps_per_epoch=2, learning_rate=0.001)
    g = cat.make_schedule("TwoStepCosine", total_steps=460, steps_per_epoch=2, learning_rate=0.001,
                          warmup_epoch=1)
    assert f(400) == 0.0 and set(curve(f, 460, 400)) == {0.0}
    assert g(2 + 401) == pytest.approx(0.001 * (1 + math.cos(math.pi * 401 / 460)) / 2)


@pytest.mark.parametrize("name,cfg,forward,epochs,spe", [
    ("CyclicalCosine", dict(learning_rate=0.001, cycle=3, eta_min=1e-4), ("eta_min",), 8, 5),
    ("CyclicalCosine", dict(learning_rate=0.001, cycle=3, eta_min=1e-4, warmup_epoch=1), ("eta_min",), 8, 5),
    ("OneCycle", dict(max_lr=0.01, pct_start=0.5, div_factor=10.0, final_div_factor=100.0),
     ("pct_start", "div_factor", "final_div_factor"), 8, 5),
    ("DecayLearningRate", dict(learning_rate=0.007, end_lr=1e-3, warmup_epoch=1), ("end_lr", "warmup_epoch"), 8, 5),
    ("TwoStepCosine", dict(learning_rate=0.001, eta_min=1e-5, warmup_epoch=1), ("eta_min",), 230, 2),
    ("TwoStepCosine", dict(learning_rate=0.001, eta_min=1e-5), ("eta_min",), 230, 2),
])
def test_ppocr_keys_it_ignores_are_honoured(name, cfg, forward, epochs, spe):
    T = epochs * spe
    got = curve(cat.make_schedule(name, total_steps=T, steps_per_epoch=spe, **cfg), T)
    honoured = stepped(ppocr_reference(name, cfg, epochs, spe, forward=forward), T)
    ignored = stepped(ppocr_reference(name, cfg, epochs, spe), T)  # what PaddleOCR itself trains with
    assert_close(got, honoured, rtol=1e-9, atol=1e-15)
    assert not np.allclose(got, ignored, rtol=1e-6)


def test_ppocr_rejects_what_it_would_silently_drop_or_misread():
    with pytest.raises(ValueError, match=r"unknown key 'warmup_epochs' \(value 2\).*Did you mean 'warmup_epoch'"):
        cat.make_schedule("Cosine", total_steps=40, steps_per_epoch=5, learning_rate=0.1, warmup_epochs=2)
    with pytest.raises(ValueError, match=r"Piecewise.learning_rate=0.5 conflicts with values\[0\]=0.1"):
        cat.make_schedule("Piecewise", steps_per_epoch=5, decay_epochs=[3], values=[0.1, 0.01], learning_rate=0.5)
    with pytest.raises(ValueError, match=r"Piecewise.values must have one more element.*\[0.1, 0.01\]"):
        cat.make_ppocr_piecewise(decay_epochs=[3, 6], values=[0.1, 0.01], step_each_epoch=5)
    with pytest.raises(ValueError, match=r"Cosine.last_epoch must be -1, got 10"):
        cat.make_ppocr_cosine(0.1, epochs=8, step_each_epoch=5, last_epoch=10)
    with pytest.raises(ValueError, match=r"Step.gamma must be in \[0, 1\), got 1.5"):
        cat.make_ppocr_step(0.1, step_size=2, gamma=1.5, step_each_epoch=5)
    with pytest.raises(ValueError, match=r"MultiStepDecay.milestones must be strictly increasing, got \[5, 2\]"):
        cat.make_ppocr_multi_step_decay(0.1, milestones=[5, 2], gamma=0.1, step_each_epoch=5)
    with pytest.raises(ValueError, match=r"CyclicalCosine.cycle=0.1 epochs is round\(0.1 \* 4\) = 0 steps"):
        cat.make_ppocr_cyclical_cosine(0.1, cycle=0.1, step_each_epoch=4)
    with pytest.raises(ValueError, match=r"total_steps=41 is not a multiple of steps_per_epoch=5"):
        cat.make_schedule("Cosine", total_steps=41, steps_per_epoch=5, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"step_each_epoch=4 conflicts with the run's step_each_epoch=5"):
        cat.make_schedule("Cosine", total_steps=40, steps_per_epoch=5, step_each_epoch=4, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"has its own warmup \(warmup_epoch\); use that instead of warmup_steps=3"):
        cat.make_schedule("Cosine", total_steps=40, steps_per_epoch=5, learning_rate=0.1, warmup_steps=3)
    with pytest.raises(ValueError, match=r"warmup_epoch=1 needs a peak learning rate > 0.*got 0.0"):
        cat.make_ppocr_const(0.0, step_each_epoch=5, warmup_epoch=1)
    # Step ignores epochs, so a run that is not whole epochs is fine for it
    f = cat.make_schedule("Step", total_steps=41, steps_per_epoch=5, learning_rate=0.1, step_size=2, gamma=0.5)
    assert f(9) == 0.1 and f(10) == 0.05


# ---------------------------------------------------------------- any paddle.optimizer.lr class

PADDLE_CASES = {
    "NoamDecay": dict(d_model=64, warmup_steps=10, learning_rate=1.0),
    "PiecewiseDecay": dict(boundaries=[5, 12], values=[0.1, 0.05, 0.01]),
    "NaturalExpDecay": dict(learning_rate=0.5, gamma=0.1),
    "InverseTimeDecay": dict(learning_rate=0.5, gamma=0.1),
    "PolynomialDecay": dict(learning_rate=0.5, decay_steps=7, cycle=True),
    "LinearWarmup": dict(learning_rate=dict(name="CosineAnnealingDecay", learning_rate=0.5, T_max=20),
                         warmup_steps=5, start_lr=0.0, end_lr=0.5),
    "ExponentialDecay": dict(learning_rate=0.5, gamma=0.9),
    "MultiStepDecay": dict(learning_rate=0.5, milestones=[3, 9], gamma=0.5),
    "StepDecay": dict(learning_rate=0.5, step_size=4, gamma=0.5),
    "LambdaDecay": dict(learning_rate=0.5, lr_lambda=lambda e: 0.9 ** e),
    "CosineAnnealingDecay": dict(learning_rate=0.5, T_max=10, eta_min=0.01),
    "MultiplicativeDecay": dict(learning_rate=0.5, lr_lambda=lambda e: 0.95),
    "OneCycleLR": dict(max_learning_rate=0.5, total_steps=30),
    "CyclicLR": dict(base_learning_rate=0.1, max_learning_rate=0.5, step_size_up=4),
    "LinearLR": dict(learning_rate=0.5, total_steps=10),
    "CosineAnnealingWarmRestarts": dict(learning_rate=0.5, T_0=5, T_mult=2),
}


def build_paddle(name, kwargs):
    args = dict(kwargs)
    if isinstance(args.get("learning_rate"), dict):
        inner = dict(args["learning_rate"])
        args["learning_rate"] = getattr(plr, inner.pop("name"))(**inner)
    return getattr(plr, name)(**args)


def test_every_paddle_class_is_covered():
    assert set(PADDLE_CASES) == set(cat.PADDLE_CLASSES)


@pytest.mark.parametrize("name", sorted(PADDLE_CASES))
def test_paddle_class_by_name_matches_stepping_it(name):
    n = 31 if name == "OneCycleLR" else 60
    want = stepped(build_paddle(name, PADDLE_CASES[name]), n)
    key = f"paddle.{name}"
    assert curve(cat.make_schedule(key, **PADDLE_CASES[name]), n) == want
    # any order of evaluation gives the same values as stepping 0..t in order
    f = cat.make_paddle_lr(name, **PADDLE_CASES[name])
    order = list(range(n))
    random.Random(0).shuffle(order)
    assert [f(t) for t in order] == [want[t] for t in order]


def test_paddle_class_bare_names_and_run_length():
    assert cat.SCHEDULES["MultiStepDecay"] is cat.make_ppocr_multi_step_decay  # the bare name is PaddleOCR's
    f = cat.make_schedule("OneCycleLR", total_steps=30, max_learning_rate=0.5)  # total_steps from the run
    assert curve(f, 31) == stepped(plr.OneCycleLR(max_learning_rate=0.5, total_steps=30), 31)
    assert f(100) == f(30)  # paddle raises past total_steps; the last value is held


def test_paddle_class_errors_name_the_key():
    with pytest.raises(ValueError, match=r"paddle.CosineAnnealingDecay: unknown key 'T_mx' \(value 10\).*"
                                         r"Allowed keys: T_max, eta_min, learning_rate.*Did you mean 'T_max'"):
        cat.make_paddle_lr("CosineAnnealingDecay", learning_rate=0.1, T_mx=10)
    with pytest.raises(ValueError, match=r"missing key\(s\) 'T_max'"):
        cat.make_paddle_lr("CosineAnnealingDecay", learning_rate=0.1)
    with pytest.raises(ValueError, match=r"unknown key 'last_epoch'.*restoring the step"):
        cat.make_paddle_lr("StepDecay", learning_rate=0.1, step_size=3, last_epoch=5)
    with pytest.raises(ValueError, match=r"'ReduceOnPlateau' is not available \(it is metric-driven"):
        cat.make_paddle_lr("ReduceOnPlateau", learning_rate=0.1)
    with pytest.raises(ValueError, match=r"paddle.StepDecay\(learning_rate=0.1, step_size=3, gamma=2.0\): "
                                         r"gamma should be < 1.0"):
        cat.make_paddle_lr("StepDecay", learning_rate=0.1, step_size=3, gamma=2.0)
    with pytest.raises(ValueError, match=r"learning_rate as a dict needs a 'name' key"):
        cat.make_paddle_lr("LinearWarmup", learning_rate={"T_max": 3}, warmup_steps=2, start_lr=0.0, end_lr=0.1)


# ---------------------------------------------------------------- TensorFlow

def test_tf_exponential_natural_inverse_time_with_and_without_staircase():
    lr, D, rate = 0.1, 7, 0.5
    for staircase in (False, True):
        p = [(t // D if staircase else t / D) for t in range(40)]
        kw = dict(learning_rate=lr, decay_steps=D, decay_rate=rate, staircase=staircase)
        assert_close(curve(cat.make_exponential_decay(**kw), 40), [lr * rate ** q for q in p])
        assert_close(curve(cat.make_natural_exp_decay(**kw), 40), [lr * math.exp(-rate * q) for q in p])
        assert_close(curve(cat.make_inverse_time_decay(**kw), 40), [lr / (1 + rate * q) for q in p])


def test_tf_polynomial_decay_table():
    f = cat.make_polynomial_decay(1.0, 10, end_learning_rate=0.0)
    assert curve(f, 13) == pytest.approx([1 - t / 10 for t in range(11)] + [0.0, 0.0])
    g = cat.make_polynomial_decay(1.0, 10, end_learning_rate=0.0, cycle=True)
    # D becomes 10 * ceil(step / 10): 0->1, 5->0.5, 10->0, 11->1-11/20, 20->0, 21->1-21/30
    assert [g(t) for t in (0, 5, 10, 11, 20, 21)] == pytest.approx([1, 0.5, 0, 0.45, 0, 0.3])
    h = cat.make_polynomial_decay(0.1, 50, end_learning_rate=0.01, power=0.5)
    assert_close(curve(h, 60), [(0.1 - 0.01) * (1 - min(t, 50) / 50) ** 0.5 + 0.01 for t in range(60)])


def test_tf_piecewise_constant_docs_example():
    f = cat.make_piecewise_constant([100000, 110000], [1.0, 0.5, 0.1])
    assert [f(t) for t in (0, 100000, 100001, 110000, 110001, 10 ** 7)] == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]


def test_tf_cosine_and_linear_cosine_decay():
    lr, D = 0.2, 40
    f = cat.make_cosine_decay(lr, D, alpha=0.1)
    assert_close(curve(f, 60), [lr * ((1 - 0.1) * 0.5 * (1 + math.cos(math.pi * min(t, D) / D)) + 0.1)
                                for t in range(60)])
    g = cat.make_linear_cosine_decay(lr, D, num_periods=2.0, alpha=0.05, beta=0.01)
    want = []
    for t in range(60):
        s = min(t, D)
        want.append(lr * ((0.05 + (D - s) / D) * 0.5 * (1 + math.cos(math.pi * 2 * 2.0 * s / D)) + 0.01))
    assert_close(curve(g, 60), want)


def test_tf_keras_warmup_target_is_with_warmup():
    # Keras CosineDecay(initial_learning_rate=0.01, warmup_target=0.1, warmup_steps=5, decay_steps=20)
    f = cat.with_warmup(cat.make_cosine_decay(0.1, 20), 5, start_lr=0.01)
    want = [0.01 + (0.1 - 0.01) * t / 5 if t < 5 else 0.1 * 0.5 * (1 + math.cos(math.pi * min(t - 5, 20) / 20))
            for t in range(30)]
    assert_close(curve(f, 30), want)


def tf_restart(step, first, t_mul, m_mul, alpha, lr):
    """TF's CosineDecayRestarts.__call__, written out (float64)."""
    cf = step / first
    if t_mul == 1.0:
        i = math.floor(cf)
        cf -= i
    else:
        i = math.floor(math.log(1.0 - cf * (1.0 - t_mul)) / math.log(t_mul))
        cf = (cf - (1.0 - t_mul ** i) / (1.0 - t_mul)) / t_mul ** i
    return lr * ((1 - alpha) * 0.5 * m_mul ** i * (1.0 + math.cos(math.pi * cf)) + alpha)


@pytest.mark.parametrize("t_mul,m_mul,alpha", [(2.0, 1.0, 0.0), (1.0, 0.5, 0.1), (1.5, 0.8, 0.0), (3.0, 0.9, 0.05)])
def test_tf_cosine_decay_restarts(t_mul, m_mul, alpha):
    f = cat.make_cosine_decay_restarts(0.1, 10, t_mul=t_mul, m_mul=m_mul, alpha=alpha)
    assert_close(curve(f, 300), [tf_restart(t, 10, t_mul, m_mul, alpha, 0.1) for t in range(300)])


def test_tf_cosine_decay_restarts_boundaries_and_restart_warmup():
    f = cat.make_cosine_decay_restarts(1.0, 10, t_mul=2.0, m_mul=0.5)
    assert [f(t) for t in (0, 10, 30, 70)] == [1.0, 0.5, 0.25, 0.125]  # restarts at 10, 30, 70
    g = cat.make_cosine_decay_restarts(1.0, 10, t_mul=2.0, restart_warmup_steps=4)
    # cycle 1 starts at 10 (length 20): ramp 0 -> value at offset 4 over 4 steps
    top = 0.5 * (1 + math.cos(math.pi * 4 / 20))
    assert [g(t) for t in range(10, 15)] == pytest.approx([0, top / 4, top / 2, 3 * top / 4, top])
    assert g(0) == 0.0 and g(30) == 0.0 and g(25) == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 20)))


def test_tf_noisy_linear_cosine_decay_is_seeded_and_order_free():
    kw = dict(learning_rate=0.1, decay_steps=100, initial_variance=0.5, variance_decay=0.55, num_periods=1.0,
              alpha=0.0, beta=0.001)
    a = cat.make_noisy_linear_cosine_decay(seed=7, **kw)
    b = cat.make_noisy_linear_cosine_decay(seed=7, **kw)
    c = cat.make_noisy_linear_cosine_decay(seed=8, **kw)
    forward = curve(a, 2000)
    assert [b(t) for t in reversed(range(2000))] == forward[::-1]  # same seed, any order
    assert a(1234) == forward[1234]
    assert curve(c, 2000) != forward
    # lr * ((alpha + linear + eps) * cosine + beta), eps ~ N(0, v0 / (1 + t) ** vd): recover eps / std
    z = []
    for t in range(2000):
        s = min(t, 100)
        cosine = 0.5 * (1 + math.cos(math.pi * 2 * 1.0 * s / 100))
        if cosine < 0.05:
            continue
        eps = (forward[t] / 0.1 - 0.001) / cosine - (100 - s) / 100
        z.append(eps / math.sqrt(0.5 / (1 + s) ** 0.55))
    assert abs(np.mean(z)) < 0.1 and abs(np.std(z) - 1) < 0.1


# ---------------------------------------------------------------- PyTorch

def test_torch_step_lr_docs_example_per_epoch_and_per_step():
    # torch docs: lr = 0.05 if epoch < 30, 0.005 if 30 <= epoch < 60, 0.0005 if 60 <= epoch < 90
    f = cat.make_step_lr(0.05, step_size_epochs=30, gamma=0.1, steps_per_epoch=3)
    assert [f(t) for t in (0, 89, 90, 179, 180, 269)] == pytest.approx([0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005])
    g = cat.make_step_lr(0.05, step_size_steps=30, gamma=0.1)
    assert [g(t) for t in (29, 30, 60)] == pytest.approx([0.05, 0.005, 0.0005])


def test_torch_multi_step_lr_docs_example_and_repeated_milestone():
    # torch docs: milestones [30, 80]: 0.05 if epoch < 30, 0.005 if 30 <= epoch < 80, 0.0005 if epoch >= 80
    f = cat.make_multi_step_lr(0.05, milestones_epochs=[30, 80], gamma=0.1, steps_per_epoch=2)
    assert [f(t) for t in (0, 59, 60, 159, 160, 999)] == pytest.approx([0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005])
    g = cat.make_multi_step_lr(1.0, milestones_steps=[5, 2, 2], gamma=0.5)  # Counter: 2 counts twice
    assert curve(g, 7) == [1.0, 1.0, 0.25, 0.25, 0.25, 0.125, 0.125]


def test_torch_epoch_table():
    f = cat.make_epoch_table(0.1, [1.0, 0.5, 0.25], steps_per_epoch=2)
    assert curve(f, 9) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.025])


def test_torch_cosine_annealing_lr_equals_its_recursive_form():
    # torch docs' recursion: eta_{t+1} = eta_min + (eta_t - eta_min) * (1 + cos((t+1) pi / T)) / (1 + cos(t pi / T)),
    # and eta_{t+1} = eta_t + (eta_max - eta_min) * (1 - cos(pi / T)) / 2 when t = (2k + 1) T.
    lr, eta_min, T = 0.1, 0.001, 12
    want, eta = [lr], lr
    for t in range(3 * T):
        if (t - T) % (2 * T) == 0:
            eta = eta + (lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        else:
            eta = eta_min + (eta - eta_min) * (1 + math.cos((t + 1) * math.pi / T)) / (1 + math.cos(t * math.pi / T))
        want.append(eta)
    f = cat.make_cosine_annealing_lr(lr, t_max_steps=T, eta_min=eta_min)
    assert_close(curve(f, 3 * T + 1), want, rtol=1e-9, atol=1e-15)
    g = cat.make_cosine_annealing_lr(lr, t_max_epochs=T, eta_min=eta_min, steps_per_epoch=4)
    assert_close(curve(g, 4 * (3 * T + 1)), [w for w in want for _ in range(4)], rtol=1e-9, atol=1e-15)


def torch_warm_restarts(n_epochs, T_0, T_mult, eta_min, lr):
    """torch CosineAnnealingWarmRestarts stepped once per epoch (its step() without an epoch), written out."""
    out, T_cur, T_i = [], 0, T_0
    for _ in range(n_epochs):
        out.append(eta_min + (lr - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2)
        T_cur += 1
        if T_cur >= T_i:
            T_cur, T_i = T_cur % T_i, T_i * T_mult
    return out


@pytest.mark.parametrize("T_0,T_mult", [(10, 1), (10, 2), (3, 3)])
def test_torch_cosine_annealing_warm_restarts(T_0, T_mult):
    per_epoch = torch_warm_restarts(100, T_0, T_mult, 0.001, 0.1)
    f = cat.make_cosine_annealing_warm_restarts(0.1, t_0_epochs=T_0, t_mult=T_mult, eta_min=0.001, steps_per_epoch=3)
    assert_close(curve(f, 300), [v for v in per_epoch for _ in range(3)])
    g = cat.make_cosine_annealing_warm_restarts(0.1, t_0_steps=T_0, t_mult=T_mult, eta_min=0.001)
    assert_close(curve(g, 100), per_epoch)
    h = cat.make_cosine_annealing_warm_restarts(0.1, t_0_epochs=T_0, t_mult=T_mult, eta_min=0.001,
                                                steps_per_epoch=4, fractional_epochs=True)
    # torch docs: train, then scheduler.step(epoch + i / iters), so update t trains at position (t - 1) / iters;
    # skip exact restart points, where torch's float log may land on either side
    # (tests/test_home_libraries.py runs torch's whole documented loop)
    steps = [t for t in range(1, 400) if abs(torch_warm_restarts_at((t - 1) / 4, T_0, T_mult, 0, 1) - 1) > 1e-12]
    assert_close([h(t) for t in steps],
                 [torch_warm_restarts_at((t - 1) / 4, T_0, T_mult, 0.001, 0.1) for t in steps])


def test_torch_warm_restarts_restart_warmup_table():
    f = cat.make_cosine_annealing_warm_restarts(1.0, t_0_steps=4, t_mult=2, restart_warmup_steps=2,
                                                restart_warmup_start_lr=0.5)
    c = lambda t, T: (1 + math.cos(math.pi * t / T)) / 2  # noqa: E731
    want = [0.5, 0.5 + (c(2, 4) - 0.5) / 2, c(2, 4), c(3, 4),        # cycle 0, 4 steps
            0.5, 0.5 + (c(2, 8) - 0.5) / 2, c(2, 8), c(3, 8), c(4, 8), c(5, 8), c(6, 8), c(7, 8), 0.5]
    assert_close(curve(f, 13), want)


def torch_one_cycle(t, T, max_lr, pct, anneal, div, final_div, three, moms=(0.85, 0.95)):
    """torch OneCycleLR's phases written out: (lr, momentum) at step t."""
    lo, hi = moms
    initial = max_lr / div
    if three:
        phases = [(pct * T - 1, initial, max_lr, hi, lo), (2 * pct * T - 2, max_lr, initial, lo, hi),
                  (T - 1, initial, initial / final_div, hi, hi)]
    else:
        phases = [(pct * T - 1, initial, max_lr, hi, lo), (T - 1, max_lr, initial / final_div, lo, hi)]
    if anneal == "cos":
        f = lambda a, b, p: b + (a - b) / 2.0 * (math.cos(math.pi * p) + 1)  # noqa: E731
    else:
        f = lambda a, b, p: (b - a) * p + a  # noqa: E731
    start = 0
    for i, (end, a, b, ma, mb) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            p = (t - start) / (end - start)
            return f(a, b, p), f(ma, mb, p)
        start = end


@pytest.mark.parametrize("anneal,three,pct", [("cos", False, 0.3), ("linear", False, 0.25), ("cos", True, 0.3),
                                              ("linear", True, 0.4)])
def test_torch_one_cycle_lr_and_momentum(anneal, three, pct):
    T = 100
    f = cat.make_one_cycle_lr(0.01, T, pct_start=pct, anneal_strategy=anneal, three_phase=three)
    want = [torch_one_cycle(t, T, 0.01, pct, anneal, 25.0, 1e4, three) for t in range(T)]
    assert_close(curve(f, T), [w[0] for w in want])
    assert_close(curve(f.momentum, T), [w[1] for w in want])
    assert f(0) == pytest.approx(0.01 / 25) and f(T - 1) == pytest.approx(0.01 / 25 / 1e4)
    assert f(T + 50) == f(T - 1)  # torch extrapolates at T and raises after it; the final value is held
    assert cat.make_one_cycle_lr(0.01, T, cycle_momentum=False).momentum is None


def test_torch_cyclic_lr_tables():
    # base 0.1, max 1.0, 2 up + 2 down: h = 0, .5, 1, .5, 0, ...
    tri = cat.make_cyclic_lr(0.1, 1.0, step_size_up=2)
    assert curve(tri, 9) == pytest.approx([0.1, 0.55, 1.0, 0.55, 0.1, 0.55, 1.0, 0.55, 0.1])
    assert curve(tri.momentum, 5) == pytest.approx([0.9, 0.85, 0.8, 0.85, 0.9])
    tri2 = cat.make_cyclic_lr(0.1, 1.0, step_size_up=2, mode="triangular2")
    assert curve(tri2, 11) == pytest.approx([0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55, 0.325, 0.1, 0.2125, 0.325])
    exp = cat.make_cyclic_lr(0.1, 1.0, step_size_up=2, mode="exp_range", gamma=0.9)
    h = [0, 0.5, 1, 0.5, 0, 0.5, 1]
    assert curve(exp, 7) == pytest.approx([0.1 + 0.9 * h[t] * 0.9 ** t for t in range(7)])
    assert curve(exp.momentum, 7) == pytest.approx([0.9 - 0.1 * h[t] * 0.9 ** t for t in range(7)])
    lopsided = cat.make_cyclic_lr(0.0, 1.0, step_size_up=1, step_size_down=3, cycle_momentum=False)
    assert curve(lopsided, 9) == pytest.approx([0, 1, 2 / 3, 1 / 3, 0, 1, 2 / 3, 1 / 3, 0])
    assert lopsided.momentum is None


def plateau_run(metrics, **kw):
    p = ReduceLROnPlateau(1.0, **kw)
    return [p.step(m) for m in metrics]


def test_reduce_lr_on_plateau_hand_worked():
    # min/rel, threshold 0: equal is not better; the 3rd bad epoch in a row (> patience 2) halves the lr
    assert plateau_run([10, 9, 9, 9, 9, 8, 8, 8, 8], patience=2, factor=0.5, threshold=0.0) == \
        [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    # cooldown 2 after each cut: bad epochs during cooldown do not count; min_lr clamps, eps skips tiny cuts
    got = plateau_run([5] * 11, patience=0, factor=0.1, cooldown=2, min_lr=0.001)
    assert got == pytest.approx([1, .1, .1, .1, .01, .01, .01, .001, .001, .001, .001])
    # max/abs, threshold 0.5: better means > best + 0.5
    assert plateau_run([1, 1.4, 1.6, 2.0, 2.05, 2.1, 2.2], mode="max", threshold=0.5, threshold_mode="abs",
                       patience=1, factor=0.5) == [1, 1, 1, 1, 0.5, 0.5, 0.5]
    # max/rel 10%: 1 -> 1.05 is not better, 1.2 is
    assert plateau_run([1, 1.05, 1.2, 1.25], mode="max", threshold=0.1, patience=0, factor=0.5) == [1, .5, .5, .25]
    # torch keeps tracking `best` during cooldown (paddle's ReduceOnPlateau does not): 4 becomes best in
    # cooldown, so 4.5 is bad and cuts again
    assert plateau_run([5, 6, 4, 4.5], patience=0, cooldown=1, factor=0.5, threshold=0.0) == [1, .5, .5, .25]
    # NaN is never better
    assert plateau_run([1, float("nan"), float("nan")], patience=1, factor=0.5) == [1, 1, 0.5]


def test_reduce_lr_on_plateau_state_round_trip_continues_identically():
    rng = random.Random(3)
    metrics = [1 / (1 + i) + rng.uniform(0, 0.3) for i in range(40)]
    kw = dict(patience=2, factor=0.5, cooldown=1, min_lr=1e-3)
    whole = plateau_run(metrics, **kw)
    first = ReduceLROnPlateau(1.0, **kw)
    for m in metrics[:17]:
        first.step(m)
    state = first.state_dict()
    resumed = ReduceLROnPlateau(1.0, **kw)
    resumed.set_state_dict(dict(state))
    assert [resumed.step(m) for m in metrics[17:]] == whole[17:]
    assert min(whole) < 1.0
    with pytest.raises(ValueError, match=r"missing keys \['best'\], unknown keys \['bets'\]"):
        resumed.set_state_dict({**{k: v for k, v in state.items() if k != "best"}, "bets": 1.0})


def test_reduce_lr_on_plateau_bad_arguments():
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau.factor must be in \[0, 1\), got 1.0"):
        ReduceLROnPlateau(0.1, factor=1.0)
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau.mode must be one of 'min', 'max', got 'mni'"):
        ReduceLROnPlateau(0.1, mode="mni")
    with pytest.raises(TypeError, match=r"metric must be a number, got 'low'"):
        ReduceLROnPlateau(0.1).step("low")


# ---------------------------------------------------------------- keras_bert, fastai, transformers

def test_keras_bert_calc_train_steps():
    assert cat.calc_train_steps(num_example=1024, batch_size=32, epochs=10, warmup_proportion=0.1) == (320, 32)
    assert cat.calc_train_steps(1000, 10, 1, 0.29) == (100, 28)  # int(28.999999999999996), as keras_bert


def test_keras_bert_adam_warmup_lr():
    f = cat.make_adam_warmup(learning_rate=1e-3, warmup_steps=10, decay_steps=100, min_lr=1e-5)
    want = []
    for step in range(120):
        t = step + 1
        want.append(1e-3 * t / 10 if t <= 10 else 1e-5 + (1e-3 - 1e-5) * (1 - min(t, 100) / 100))
    assert_close(curve(f, 120), want)
    assert f(9) == pytest.approx(1e-3) and f(99) == pytest.approx(1e-5)


def fastai_combine(pcts, scheds, pos):
    """fastai combine_scheds, written out in float64."""
    bounds = np.cumsum([0.0] + list(pcts))
    idx = min(int(np.nonzero(pos >= bounds)[0].max()), len(bounds) - 2)
    return scheds[idx]((pos - bounds[idx]) / (bounds[idx + 1] - bounds[idx]))


def fastai_cos(start, end):
    return lambda pos: start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def test_fastai_fit_one_cycle_lr_and_momentum():
    T, lr_max = 100, 1e-2
    f = cat.make_fit_one_cycle(lr_max, T)
    lr = [fastai_combine([0.25, 0.75], [fastai_cos(lr_max / 25, lr_max), fastai_cos(lr_max, lr_max / 1e5)], t / T)
          for t in range(T)]
    mom = [fastai_combine([0.25, 0.75], [fastai_cos(0.95, 0.85), fastai_cos(0.85, 0.95)], t / T) for t in range(T)]
    assert_close(curve(f, T), lr)
    assert_close(curve(f.momentum, T), mom)
    assert f(25) == pytest.approx(lr_max) and f.momentum(25) == pytest.approx(0.85)
    assert f(T) == pytest.approx(lr_max / 1e5) and f(10 * T) == f(T)


def test_fastai_fit_flat_cos():
    T = 40
    f = cat.make_fit_flat_cos(0.1, T, pct_start=0.75)
    want = [fastai_combine([0.75, 0.25], [fastai_cos(0.1, 0.1), fastai_cos(0.1, 0.1 / 1e5)], t / T) for t in range(T)]
    assert_close(curve(f, T), want)
    assert set(curve(f, 30)) == {0.1}


@pytest.mark.parametrize("n_cycles,cycle_len,cycle_mult", [(3, 1, 2), (2, 2, 3), (4, 1, 1)])
def test_fastai_fit_sgdr(n_cycles, cycle_len, cycle_mult):
    spe = 4
    f = cat.make_fit_sgdr(0.1, n_cycles, cycle_len, cycle_mult, steps_per_epoch=spe)
    n_epoch = cycle_len * n_cycles if cycle_mult == 1 else cycle_len * (cycle_mult ** n_cycles - 1) // (cycle_mult - 1)
    pcts = [cycle_len * cycle_mult ** i / n_epoch for i in range(n_cycles)]
    T = n_epoch * spe
    want = [fastai_combine(pcts, [fastai_cos(0.1, 0)] * n_cycles, t / T) for t in range(T)]
    assert_close(curve(f, T), want, atol=1e-12)
    assert f(T) == 0.0 and f(T + 7) == 0.0


def hf_wsd(step, W, S, D, warmup_type, decay_type, m, cycles):
    """transformers _get_wsd_scheduler_lambda, written out."""
    if step < W:
        p = step / max(1, W)
        f = {"linear": p, "cosine": 0.5 * (1.0 - math.cos(math.pi * p)), "1-sqrt": 1.0 - math.sqrt(1.0 - p)}
        return max(0.0, f[warmup_type] * (1.0 - m) + m)
    if step < W + S:
        return 1.0
    if step < W + S + D:
        p = (step - W - S) / max(1, D)
        f = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * p)),
             "1-sqrt": 1.0 - math.sqrt(p)}
        return max(0.0, f[decay_type] * (1.0 - m) + m)
    return m


@pytest.mark.parametrize("warmup_type,decay_type,m", [("linear", "cosine", 0.0), ("cosine", "linear", 0.1),
                                                      ("1-sqrt", "1-sqrt", 0.05)])
def test_transformers_warmup_stable_decay(warmup_type, decay_type, m):
    f = cat.make_schedule("warmup_stable_decay", total_steps=100, learning_rate=0.5, num_warmup_steps=10,
                          num_decay_steps=30, warmup_type=warmup_type, decay_type=decay_type, min_lr_ratio=m)
    assert_close(curve(f, 110), [0.5 * hf_wsd(t, 10, 60, 30, warmup_type, decay_type, m, 0.5) for t in range(110)])
    g = cat.make_warmup_stable_decay(0.5, 10, 30, num_stable_steps=5, decay_type=decay_type, num_cycles=1.0)
    assert_close(curve(g, 60), [0.5 * hf_wsd(t, 10, 5, 30, "linear", decay_type, 0.0, 1.0) for t in range(60)])


def test_transformers_inverse_sqrt():
    f = cat.make_inverse_sqrt(0.1, num_warmup_steps=10)
    assert_close(curve(f, 50), [0.1 * t / 10 if t < 10 else 0.1 / math.sqrt((t + 10 - 10) / 10) for t in range(50)])
    g = cat.make_inverse_sqrt(0.1, num_warmup_steps=4, timescale=20)
    assert_close(curve(g, 50), [0.1 * t / 4 if t < 4 else 0.1 / math.sqrt((t + 16) / 20) for t in range(50)])
    assert cat.make_inverse_sqrt(0.1, 0)(30000) == pytest.approx(0.1 / math.sqrt(4.0))  # timescale 10_000


# ---------------------------------------------------------------- parts

def test_with_warmup_shift_and_overlay():
    decay = lambda t: 1.0 / (1 + t)  # noqa: E731
    shifted = cat.with_warmup(decay, 4, start_lr=0.2)
    assert curve(shifted, 7) == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 0.5, 1 / 3])
    overlay = cat.with_warmup(decay, 4, shift=False)
    assert curve(overlay, 6) == pytest.approx([0, 0.05, 0.1, 0.15, 0.2, 1 / 6])
    assert cat.with_warmup(decay, 0) is decay


def test_join_floor_cycle_position():
    joined = cat.join_schedules([lambda t: 1.0, lambda t: 10.0 + t, lambda t: 100.0 + t], [3, 5])
    assert curve(joined, 8) == [1, 1, 1, 10, 11, 100, 101, 102]
    floored = cat.with_floor(lambda t: 1.0 - t / 10, 0.25)
    assert curve(floored, 10) == pytest.approx([max(0.25, 1.0 - t / 10) for t in range(10)])
    for first, mult in [(3, 1), (3, 2), (2, 3), (10, 1.5), (7, 1.0)]:
        start, i = 0, 0
        for x in range(300):
            while x >= start + first * mult ** i:
                start, i = start + first * mult ** i, i + 1
            got = cat.cycle_position(x, first, mult)
            assert got[0] == i and got[1] == pytest.approx(x - start) and got[2] == pytest.approx(first * mult ** i)


def test_wrappers_keep_momentum():
    f = cat.make_one_cycle_lr(0.01, 50)
    warmed = cat.with_floor(cat.with_warmup(f, 5), 1e-5)
    assert warmed.momentum(5) == f.momentum(0) and warmed.momentum(20) == f.momentum(15)
    assert warmed(2) == pytest.approx(f(0) * 2 / 5)


# ---------------------------------------------------------------- registry and errors

SAMPLES = {
    "Linear": dict(learning_rate=0.1), "Cosine": dict(learning_rate=0.1),
    "Step": dict(learning_rate=0.1, step_size=2, gamma=0.5),
    "Piecewise": dict(decay_epochs=[2], values=[0.1, 0.01]),
    "MultiStepDecay": dict(learning_rate=0.1, milestones=[2, 4], gamma=0.5),
    "CyclicalCosine": dict(learning_rate=0.1, cycle=2), "OneCycle": dict(max_lr=0.1),
    "Const": dict(learning_rate=0.1), "DecayLearningRate": dict(learning_rate=0.1),
    "TwoStepCosine": dict(learning_rate=0.1),
    "piecewise_constant": dict(boundaries_steps=[5], values=[0.1, 0.01]),
    "exponential_decay": dict(learning_rate=0.1, decay_steps=5, decay_rate=0.5),
    "natural_exp_decay": dict(learning_rate=0.1, decay_steps=5, decay_rate=0.5),
    "inverse_time_decay": dict(learning_rate=0.1, decay_steps=5, decay_rate=0.5),
    "polynomial_decay": dict(learning_rate=0.1, decay_steps=20),
    "cosine_decay": dict(learning_rate=0.1, decay_steps=20),
    "linear_cosine_decay": dict(learning_rate=0.1, decay_steps=20),
    "noisy_linear_cosine_decay": dict(learning_rate=0.1, decay_steps=20),
    "cosine_decay_restarts": dict(learning_rate=0.1, first_decay_steps=5),
    "step_lr": dict(learning_rate=0.1, step_size_epochs=2), "multi_step_lr": dict(learning_rate=0.1,
                                                                                   milestones_epochs=[2]),
    "epoch_table": dict(learning_rate=0.1, factors=[1, 0.5]),
    "cosine_annealing_lr": dict(learning_rate=0.1, t_max_epochs=4),
    "cosine_annealing_warm_restarts": dict(learning_rate=0.1, t_0_epochs=2),
    "one_cycle_lr": dict(max_lr=0.1), "cyclic_lr": dict(base_lr=0.01, max_lr=0.1, step_size_up=5),
    "adam_warmup": dict(learning_rate=0.1, warmup_steps=5), "fit_one_cycle": dict(lr_max=0.1),
    "fit_flat_cos": dict(lr=0.1), "fit_sgdr": dict(lr_max=0.1, n_cycles=2, cycle_len_epochs=1),
    "warmup_stable_decay": dict(learning_rate=0.1, num_warmup_steps=5, num_decay_steps=10),
    "inverse_sqrt": dict(learning_rate=0.1, num_warmup_steps=5),
    "swa_lr": dict(learning_rate=0.1, swa_lr=0.01, anneal_epochs=3),
    "chained_scheduler": dict(learning_rate=0.1, schedules=[{"name": "step_lr", "step_size_epochs": 2}]),
    "combine_scheds": dict(pcts=[0.5, 0.5], scheds=[{"name": "cos", "start": 0.1, "end": 0.2},
                                                    {"name": "exp", "start": 0.2, "end": 0.01}]),
    "sched_exp": dict(start=0.1, end=0.01), "sched_poly": dict(start=0.1, end=0.01, power=2),
    "cosine_with_restarts": dict(learning_rate=0.1, num_warmup_steps=5, num_cycles=3),
    "cosine_with_min_lr": dict(learning_rate=0.1, num_warmup_steps=5, min_lr_rate=0.1),
    "cosine_warmup_with_min_lr": dict(learning_rate=0.1, num_warmup_steps=5, min_lr_rate=0.1),
}
SAMPLES.update({f"paddle.{name}": kw for name, kw in PADDLE_CASES.items()})
SAMPLES.update({name: kw for name, kw in PADDLE_CASES.items() if name not in SAMPLES})


def test_every_registered_name_builds_and_plugs_into_strategy_lr():
    assert set(SAMPLES) == set(cat.SCHEDULES)
    for name, kw in SAMPLES.items():
        kw = dict(kw)
        schedule = cat.make_schedule(name, total_steps=kw.pop("total_steps", 40), steps_per_epoch=5, **kw)
        values = curve(schedule, 41)
        assert all(math.isfinite(v) for v in values), name
        scheduler = StrategyLR(schedule, steps_per_epoch=5)
        seen = []
        for _ in range(41):
            seen.append(scheduler.last_lr)
            scheduler.step()
        assert seen == values, name


def test_generic_warmup_and_floor_keys():
    f = cat.make_schedule("cosine_decay", learning_rate=0.1, decay_steps=20, warmup_steps=5, warmup_start_lr=0.01,
                          min_lr=0.02)
    want = [max(0.02, 0.01 + (0.1 - 0.01) * t / 5 if t < 5 else 0.05 * (1 + math.cos(math.pi * min(t - 5, 20) / 20)))
            for t in range(30)]
    assert_close(curve(f, 30), want)
    g = cat.make_schedule("cosine_decay", learning_rate=0.1, decay_steps=20, warmup_steps=5, warmup_shift=False)
    assert g(5) == pytest.approx(0.05 * (1 + math.cos(math.pi * 5 / 20))) and g(4) == pytest.approx(g(5) * 4 / 5)
    h = cat.make_schedule("adam_warmup", total_steps=50, learning_rate=0.1, warmup_steps=5, min_lr=0.01)
    assert h(49) == pytest.approx(0.01) and h(0) == pytest.approx(0.02)  # its own keys, not the generic ones


@pytest.mark.parametrize("call,error,pattern", [
    (lambda: cat.make_schedule("cosine_decy"), ValueError, r"unknown schedule 'cosine_decy'\..*Did you mean "
                                                           r"'cosine_decay'"),
    (lambda: cat.make_schedule("cosine_decay", learning_rate=0.1, decay_step=10), ValueError,
     r"schedule 'cosine_decay': unknown key 'decay_step' \(value 10\)\. Allowed keys: alpha, decay_steps, "
     r"learning_rate, min_lr, warmup_shift, warmup_start_lr, warmup_steps\. Did you mean 'decay_steps'"),
    (lambda: cat.make_schedule("cosine_decay", decay_steps=10), ValueError,
     r"schedule 'cosine_decay': missing key\(s\) 'learning_rate'"),
    (lambda: cat.make_schedule("cosine_decay", learning_rate=-0.1, decay_steps=10), ValueError,
     r"cosine_decay.learning_rate must be >= 0, got -0.1"),
    (lambda: cat.make_schedule("cosine_decay", learning_rate="0.1", decay_steps=10), TypeError,
     r"cosine_decay.learning_rate must be a number, got '0.1' \(str\)"),
    (lambda: cat.make_schedule("cosine_decay", learning_rate=0.1, decay_steps=2.5), TypeError,
     r"cosine_decay.decay_steps must be an integer, got 2.5"),
    (lambda: cat.make_schedule("one_cycle_lr", total_steps=10, max_lr=0.1, anneal_strategy="cosine"), ValueError,
     r"one_cycle_lr.anneal_strategy must be one of 'cos', 'linear', got 'cosine'\. Did you mean 'cos'"),
    (lambda: cat.make_schedule("one_cycle_lr", max_lr=0.1), ValueError, r"missing key\(s\) 'total_steps'.*"
                                                                         r"total_steps="),
    (lambda: cat.make_schedule("one_cycle_lr", total_steps=10, max_lr=0.1, three_phase=True, pct_start=0.6),
     ValueError, r"one_cycle_lr.pct_start must be < 0.5 with three_phase=True, got 0.6"),
    (lambda: cat.make_schedule("step_lr", learning_rate=0.1, step_size_epochs=2), ValueError,
     r"step_lr.step_size_epochs=2 needs steps_per_epoch, got None"),
    (lambda: cat.make_schedule("step_lr", learning_rate=0.1, step_size_epochs=2, step_size_steps=3), ValueError,
     r"give exactly one of step_size_epochs and step_size_steps"),
    (lambda: cat.make_schedule("cosine_decay", learning_rate=0.1, decay_steps=10, warmup_start_lr=0.1), ValueError,
     r"warmup_start_lr / warmup_shift need warmup_steps"),
    (lambda: cat.make_schedule("inverse_sqrt", learning_rate=0.1, num_warmup_steps=5, warmup_steps=3), ValueError,
     r"has its own warmup \(num_warmup_steps\)"),
    (lambda: cat.make_schedule("warmup_stable_decay", total_steps=10, learning_rate=0.1, num_warmup_steps=5,
                               num_decay_steps=10), ValueError,
     r"num_training_steps=10 must be >= num_warmup_steps \+ num_decay_steps = 15"),
    (lambda: cat.make_schedule("cosine_decay_restarts", learning_rate=0.1, first_decay_steps=5,
                               restart_warmup_steps=5), ValueError,
     r"cosine_decay_restarts.restart_warmup_steps must be < the first cycle's 5 steps, got 5"),
    (lambda: cat.make_schedule("piecewise_constant", boundaries_steps=[5, 3], values=[1, 2, 3]), ValueError,
     r"piecewise_constant.boundaries_steps must be strictly increasing, got \[5, 3\]"),
    (lambda: cat.make_schedule("cyclic_lr", base_lr=0.1, max_lr=1.0, mode="triangle"), ValueError,
     r"cyclic_lr.mode must be one of 'triangular', 'triangular2', 'exp_range', got 'triangle'"),
    (lambda: cat.make_schedule("fit_one_cycle", total_steps=10, lr_max=0.1, moms=(0.9, 0.8)), ValueError,
     r"fit_one_cycle.moms must be three momentums"),
    (lambda: cat.make_schedule("cosine_decay", total_steps=0, learning_rate=0.1, decay_steps=10), ValueError,
     r"total_steps must be >= 1, got 0"),
])
def test_bad_input_errors_name_key_value_and_allowed(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_every_registered_name_resumes_mid_run_from_its_state_dict():
    """A fresh StrategyLR given the state_dict of one stopped at step 17 continues with identical values."""
    for name, kw in SAMPLES.items():
        kw = dict(kw)
        total = kw.pop("total_steps", 40)
        run = StrategyLR(cat.make_schedule(name, total_steps=total, steps_per_epoch=5, **kw), steps_per_epoch=5)
        for _ in range(17):
            run.step()
        state = run.state_dict()
        resumed = StrategyLR(cat.make_schedule(name, total_steps=total, steps_per_epoch=5, **kw), steps_per_epoch=5)
        resumed.set_state_dict(dict(state))
        for _ in range(24):
            assert resumed.last_lr == run.last_lr, name
            run.step()
            resumed.step()
