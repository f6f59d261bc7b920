"""keras_bert's AdamWarmup, measured through the weights and compared with its update written out here in
numpy (keras_bert/optimizers/warmup.py, the Keras version)."""
import inspect
import math

import numpy as np
import paddle
import pytest

from paddle_strategy.strategies import keras_bert as kb
from helpers import batch, mlp, snapshot, step


def keras_lr(t, lr, warmup, decay, min_lr=0.0):
    """AdamWarmup's learning rate at t = iterations + 1."""
    if t <= warmup:
        return lr * (t / warmup)
    return min_lr + (lr - min_lr) * (1.0 - min(t, decay) / decay)


class KerasAdamWarmup:
    """keras_bert's AdamWarmup.get_updates, in float64."""

    def __init__(self, weights, decay_steps, warmup_steps, min_lr=0.0, learning_rate=1e-3, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-7, weight_decay=0.0, weight_decay_pattern=None, amsgrad=False):
        self.w = {n: v.astype("float64") for n, v in weights.items()}
        self.m = {n: 0.0 for n in weights}
        self.v = {n: 0.0 for n in weights}
        self.vhat = {n: 0.0 for n in weights}
        self.iterations = 0
        self.__dict__.update(decay_steps=decay_steps, warmup_steps=warmup_steps, min_lr=min_lr, lr=learning_rate,
                             beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, weight_decay=weight_decay,
                             pattern=weight_decay_pattern, amsgrad=amsgrad)

    def update(self, grads):
        self.iterations += 1
        t = self.iterations
        lr = keras_lr(t, self.lr, self.warmup_steps, self.decay_steps, self.min_lr)
        lr_t = lr * (math.sqrt(1. - self.beta_2 ** t) / (1. - self.beta_1 ** t))
        for n, g in grads.items():
            g = g.astype("float64")
            self.m[n] = self.beta_1 * self.m[n] + (1. - self.beta_1) * g
            self.v[n] = self.beta_2 * self.v[n] + (1. - self.beta_2) * g * g
            if self.amsgrad:
                self.vhat[n] = np.maximum(self.vhat[n], self.v[n])
                p_t = self.m[n] / (np.sqrt(self.vhat[n]) + self.epsilon)
            else:
                p_t = self.m[n] / (np.sqrt(self.v[n]) + self.epsilon)
            if self.weight_decay > 0.0 and (self.pattern is None or any(pat in n for pat in self.pattern)):
                p_t = p_t + self.weight_decay * self.w[n]
            self.w[n] = self.w[n] - lr_t * p_t
        return self.w


def varying_batches(x, steps):
    """Inputs whose gradient scale jumps around, so that AMSGrad's running max differs from v."""
    return [x * s for s in (1.0, 0.1, 4.0, 0.2, 0.05, 3.0, 0.5, 0.01)[:steps]]


def test_signature_and_defaults_are_keras_bert():
    sig = inspect.signature(kb.AdamWarmupStrategy)
    assert list(sig.parameters)[:2] == ["decay_steps", "warmup_steps"]
    defaults = {n: p.default for n, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
    assert defaults == {"min_lr": 0.0, "learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
                        "weight_decay": 0.0, "weight_decay_pattern": None, "amsgrad": False}
    assert kb.calc_train_steps(1000, 32, 3, 0.1) == (96, 9)   # ceil(1000 / 32) * 3, int(96 * 0.1)


def test_learning_rate_per_step_read_from_the_weights():
    """beta_1 = beta_2 = epsilon = 0: m = g, v = g**2, every weight moves by exactly lr(t) * sign(g)."""
    model, (x, y) = mlp(), batch()
    W, D, lr0, floor = 3, 7, 0.05, 0.01
    s = kb.AdamWarmupStrategy(D, W, min_lr=floor, learning_rate=lr0, beta_1=0.0, beta_2=0.0, epsilon=0.0)
    opt, lr = s.build(model, 10)
    for t in range(1, 11):
        before, grads, after, lr_used = step(model, opt, lr, x, y)
        want = keras_lr(t, lr0, W, D, floor)
        assert lr_used == pytest.approx(want, rel=1e-12)
        for name in before:
            moved = grads[name] != 0
            np.testing.assert_allclose(after[name][moved], before[name][moved] - want * np.sign(grads[name][moved]),
                                       rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_updates_equal_keras_bert_written_out(amsgrad):
    model, (x, y) = mlp(), batch()
    kwargs = dict(decay_steps=6, warmup_steps=2, min_lr=1e-3, learning_rate=0.05, beta_1=0.8, beta_2=0.9,
                  epsilon=1e-2, weight_decay=0.1, weight_decay_pattern=["weight", "4.bias"], amsgrad=amsgrad)
    opt, lr = kb.AdamWarmupStrategy(**kwargs).build(model, 8)
    keras = KerasAdamWarmup(snapshot(model), **kwargs)
    eps_hat = KerasAdamWarmup(snapshot(model), **kwargs)  # Paddle's own epsilon placement, for contrast
    for t, xb in enumerate(varying_batches(x, 8), 1):
        before, grads, after, _ = step(model, opt, lr, xb, y)
        want = keras.update(grads)
        eps_hat.epsilon = kwargs["epsilon"] * math.sqrt(1 - kwargs["beta_2"] ** t)
        other = eps_hat.update(grads)
        for name in after:
            np.testing.assert_allclose(after[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)
        eps_hat.w = {n: v.astype("float64") for n, v in after.items()}
    assert any(not np.allclose(after[n], other[n], rtol=1e-5, atol=1e-6) for n in after)


def test_amsgrad_is_honoured():
    x, y = batch()
    runs = {}
    for amsgrad in (False, True):
        model = mlp()
        opt, lr = kb.AdamWarmupStrategy(8, 0, learning_rate=0.05, amsgrad=amsgrad).build(model, 8)
        for xb in varying_batches(x, 8):
            step(model, opt, lr, xb, y)
        runs[amsgrad] = snapshot(model)
        assert opt._amsgrad is amsgrad
    assert any(not np.allclose(runs[False][n], runs[True][n], rtol=1e-4) for n in runs[False])


@pytest.mark.parametrize("pattern, decayed", [(["weight"], {"0.weight", "2.weight", "4.weight"}),
                                              (["2.", "4.bias"], {"2.weight", "2.bias", "4.bias"}),
                                              (None, {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight",
                                                      "4.bias"})])
def test_weight_decay_only_on_names_matching_the_pattern(pattern, decayed):
    """A zero gradient leaves Adam's step at 0, so only the decay moves: w *= 1 - lr_t * wd, lr_t bias-corrected."""
    model, (x, _) = mlp(), batch()
    wd, lr0 = 0.3, 0.1
    s = kb.AdamWarmupStrategy(5, 2, learning_rate=lr0, weight_decay=wd, weight_decay_pattern=pattern)
    opt, lr = s.build(model, 5)
    assert set(s.decayed_names(n for n, _ in model.named_parameters())) == decayed
    for t in range(1, 5):
        before = snapshot(model)
        (model(x) * 0).sum().backward()
        opt.step(), opt.clear_grad(), lr.step()
        lr_t = keras_lr(t, lr0, 2, 5) * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        for name, value in snapshot(model).items():
            factor = 1 - lr_t * wd if name in decayed else 1.0
            np.testing.assert_allclose(value, before[name] * factor, rtol=1e-6, err_msg=name)


def test_decay_steps_none_is_the_run_length():
    _, lr = kb.AdamWarmupStrategy(None, 2, learning_rate=0.1).build(mlp(), 10)
    assert [lr.lr_at(s) for s in range(10)] == pytest.approx([keras_lr(s + 1, 0.1, 2, 10) for s in range(10)])


def test_a_pattern_matching_no_parameter():
    with pytest.raises(ValueError, match=r"\['weigth'\] match no trainable parameter.*Did you mean 'weight'"):
        kb.AdamWarmupStrategy(5, 1, weight_decay=0.1, weight_decay_pattern=["weigth"]).build(mlp(), 5)
    with pytest.warns(UserWarning, match=r"\['kernel'\] match no trainable parameter"):
        kb.AdamWarmupStrategy(5, 1, weight_decay=0.1, weight_decay_pattern=["kernel", "bias"]).build(mlp(), 5)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(decay_steps=0, warmup_steps=1), ValueError, ["decay_steps", ">= 1", "0"]),
    (dict(decay_steps=5, warmup_steps=1.5), TypeError, ["warmup_steps", "integer", "1.5"]),
    (dict(decay_steps=5, warmup_steps=1, beta_1=1.0), ValueError, ["beta_1", "1.0"]),
    (dict(decay_steps=5, warmup_steps=1, epsilon=-1e-7), ValueError, ["epsilon", "-1e-07"]),
    (dict(decay_steps=5, warmup_steps=1, weight_decay_pattern="weight"), TypeError,
     ["weight_decay_pattern", "list", "'weight'"]),
    (dict(decay_steps=5, warmup_steps=1, weight_decay_pattern=["weight", ""]), TypeError,
     ["weight_decay_pattern[1]", "non-empty"]),
    (dict(decay_steps=5, warmup_steps=1, amsgrad="yes"), TypeError, ["amsgrad", "'yes'"]),
    (dict(decay_steps=5, warmup_steps=1, min_lr=-1.0), ValueError, ["min_lr", "-1.0"]),
])
def test_bad_values_are_refused_with_the_key_and_value(kwargs, error, words):
    with pytest.raises(error) as info:
        kb.AdamWarmupStrategy(**kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_state_dict_resumes_the_keras_step():
    """t comes from the scheduler's step count, so a restored optimizer continues keras' clock."""
    x, y = batch()
    kwargs = dict(decay_steps=6, warmup_steps=2, learning_rate=0.05, epsilon=1e-2, weight_decay=0.1,
                  amsgrad=True)
    straight = mlp()
    opt, lr = kb.AdamWarmupStrategy(**kwargs).build(straight, 6)
    for xb in varying_batches(x, 6):
        step(straight, opt, lr, xb, y)
    resumed = mlp()
    opt, lr = kb.AdamWarmupStrategy(**kwargs).build(resumed, 6)
    for xb in varying_batches(x, 3):
        step(resumed, opt, lr, xb, y)
    state, weights, old_names = opt.state_dict(), snapshot(resumed), {n: p.name for n, p in resumed.named_parameters()}
    resumed = mlp(seed=5)
    opt, lr = kb.AdamWarmupStrategy(**kwargs).build(resumed, 6)
    resumed.set_state_dict({n: paddle.to_tensor(v) for n, v in weights.items()})
    rename = {old_names[n] + "_": p.name + "_" for n, p in resumed.named_parameters()}  # Paddle keys its state
    state = {next((key.replace(o, r, 1) for o, r in rename.items() if key.startswith(o)), key): value
             for key, value in state.items()}                                           # by global names
    opt.set_state_dict(state)
    assert lr.last_epoch == 3
    for xb in varying_batches(x, 6)[3:]:
        step(resumed, opt, lr, xb, y)
    for name, value in snapshot(resumed).items():
        np.testing.assert_allclose(value, snapshot(straight)[name], rtol=1e-6, atol=1e-7)
