"""TensorFlow's decay schedules (tf.keras.optimizers.schedules, tf.compat.v1.train), step-based.

Every `decay_steps` is in optimizer updates, as in TF. TF evaluates in the learning rate's dtype (float32 by
default); these evaluate in float64, and restart boundaries are found exactly rather than by a float32 log.
"""
from __future__ import annotations

import math
from bisect import bisect_left

import numpy as np

from .._checks import check_bool, check_lr, check_number, check_numbers, check_steps, shown
from .parts import Schedule, anneal_cos, anneal_poly, with_restarts

__all__ = ["make_piecewise_constant", "make_exponential_decay", "make_natural_exp_decay",
           "make_inverse_time_decay", "make_polynomial_decay", "make_cosine_decay", "make_linear_cosine_decay",
           "make_noisy_linear_cosine_decay", "make_cosine_decay_restarts", "polynomial_curve"]


def polynomial_curve(peak: float, decay_steps: int, end: float, power: float, cycle: bool) -> Schedule:
    """(peak - end) * (1 - t / D) ** power + end, with t = min(step, D); with cycle, D grows to the first
    multiple of decay_steps >= step (D = decay_steps at step 0) and t = step. Shared with paddle's
    PolynomialDecay, which has the same definition."""
    def poly(step):
        if cycle:
            D = decay_steps * max(1, math.ceil(step / decay_steps))
            t = step
        else:
            D, t = decay_steps, min(step, decay_steps)
        return anneal_poly(end, peak, 1 - t / D, power)

    return poly


def make_piecewise_constant(boundaries_steps, values) -> Schedule:
    """values[0] while step <= boundaries_steps[0], values[i] while b[i-1] < step <= b[i], values[-1] after.

    TF's boundary step still belongs to the earlier piece (paddle's PiecewiseDecay moves on at it).
    """
    bounds = check_numbers("piecewise_constant.boundaries_steps", boundaries_steps, min_len=1,
                           increasing="strict", low=0)
    vals = check_numbers("piecewise_constant.values", values, min_len=2, low=0)
    if len(vals) != len(bounds) + 1:
        raise ValueError(f"piecewise_constant.values must have one more element than boundaries_steps "
                         f"({len(bounds)}), got {len(vals)}: {shown(list(values))}.")
    return lambda step: float(vals[bisect_left(bounds, step)])


def _exponent(where, decay_steps, staircase):
    D = check_number(f"{where}.decay_steps", decay_steps, low=0, low_open=True)
    stair = check_bool(f"{where}.staircase", staircase)
    return (lambda step: step // D) if stair else (lambda step: step / D)


def make_exponential_decay(learning_rate, decay_steps, decay_rate, staircase=False) -> Schedule:
    """lr * decay_rate ** p, p = step / decay_steps (floored with staircase)."""
    lr = check_lr("exponential_decay.learning_rate", learning_rate)
    rate = check_number("exponential_decay.decay_rate", decay_rate, low=0, low_open=True)
    p = _exponent("exponential_decay", decay_steps, staircase)
    return lambda step: lr * rate ** p(step)


def make_natural_exp_decay(learning_rate, decay_steps, decay_rate, staircase=False) -> Schedule:
    """lr * exp(-decay_rate * p), p = step / decay_steps (floored with staircase)."""
    lr = check_lr("natural_exp_decay.learning_rate", learning_rate)
    rate = check_number("natural_exp_decay.decay_rate", decay_rate, low=0)
    p = _exponent("natural_exp_decay", decay_steps, staircase)
    return lambda step: lr * math.exp(-rate * p(step))


def make_inverse_time_decay(learning_rate, decay_steps, decay_rate, staircase=False) -> Schedule:
    """lr / (1 + decay_rate * p), p = step / decay_steps (floored with staircase)."""
    lr = check_lr("inverse_time_decay.learning_rate", learning_rate)
    rate = check_number("inverse_time_decay.decay_rate", decay_rate, low=0)
    p = _exponent("inverse_time_decay", decay_steps, staircase)
    return lambda step: lr / (1 + rate * p(step))


def make_polynomial_decay(learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                          cycle=False) -> Schedule:
    """(lr - end) * (1 - t / D) ** power + end, t = min(step, D), D = decay_steps; with cycle, t = step and
    D = decay_steps * ceil(step / decay_steps) (D = decay_steps at step 0)."""
    where = "polynomial_decay"
    return polynomial_curve(check_lr(f"{where}.learning_rate", learning_rate),
                            check_steps(f"{where}.decay_steps", decay_steps, low=1),
                            check_lr(f"{where}.end_learning_rate", end_learning_rate),
                            check_number(f"{where}.power", power, low=0, low_open=True),
                            check_bool(f"{where}.cycle", cycle))


def make_cosine_decay(learning_rate, decay_steps, alpha=0.0) -> Schedule:
    """lr * ((1 - alpha) * (1 + cos(pi * t / D)) / 2 + alpha), t = min(step, D).

    Keras' warmup_target / warmup_steps: with_warmup(make_cosine_decay(warmup_target, ...), warmup_steps,
    start_lr=initial_learning_rate).
    """
    lr = check_lr("cosine_decay.learning_rate", learning_rate)
    D = check_steps("cosine_decay.decay_steps", decay_steps, low=1)
    a = check_number("cosine_decay.alpha", alpha, low=0, high=1)
    return lambda step: lr * ((1 - a) * anneal_cos(1.0, 0.0, min(step, D) / D) + a)


def _linear_cosine(where, learning_rate, decay_steps, num_periods, alpha, beta):
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    D = check_steps(f"{where}.decay_steps", decay_steps, low=1)
    periods = check_number(f"{where}.num_periods", num_periods, low=0)
    a = check_number(f"{where}.alpha", alpha, low=0)
    b = check_number(f"{where}.beta", beta, low=0)

    def parts(step):
        t = min(step, D)
        return (D - t) / D, anneal_cos(1.0, 0.0, 2 * periods * t / D), t

    return lr, a, b, parts


def make_linear_cosine_decay(learning_rate, decay_steps, num_periods=0.5, alpha=0.0, beta=0.001) -> Schedule:
    """lr * ((alpha + (D - t) / D) * (1 + cos(2 pi num_periods t / D)) / 2 + beta), t = min(step, D)."""
    lr, a, b, parts = _linear_cosine("linear_cosine_decay", learning_rate, decay_steps, num_periods, alpha, beta)

    def linear_cosine(step):
        linear, cosine, _ = parts(step)
        return lr * ((a + linear) * cosine + b)

    return linear_cosine


def make_noisy_linear_cosine_decay(learning_rate, decay_steps, initial_variance=1.0, variance_decay=0.55,
                                   num_periods=0.5, alpha=0.0, beta=0.001, seed=0) -> Schedule:
    """linear_cosine_decay with N(0, var_t) noise added to the linear term, var_t = v0 / (1 + t) ** decay.

    lr * ((alpha + (D - t) / D + eps) * (1 + cos(2 pi num_periods t / D)) / 2 + beta), t = min(step, D),
    eps = sqrt(var_t) * z, z a standard normal drawn from a generator seeded by (seed, step): the same seed
    gives the same curve, and lr(step) does not depend on which steps were evaluated before. Like TF's, the
    noise can make the learning rate negative.
    """
    where = "noisy_linear_cosine_decay"
    lr, a, b, parts = _linear_cosine(where, learning_rate, decay_steps, num_periods, alpha, beta)
    v0 = check_number(f"{where}.initial_variance", initial_variance, low=0)
    vd = check_number(f"{where}.variance_decay", variance_decay, low=0)
    key = check_steps(f"{where}.seed", seed)

    def noisy(step):
        linear, cosine, t = parts(step)
        z = np.random.Generator(np.random.PCG64([key, int(step)])).standard_normal()
        eps = math.sqrt(v0 / (1.0 + t) ** vd) * float(z)
        return lr * ((a + linear + eps) * cosine + b)

    return noisy


def make_cosine_decay_restarts(learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, *,
                               restart_warmup_steps=0, restart_warmup_start_lr=0.0) -> Schedule:
    """SGDR as TF: cycle i lasts first_decay_steps * t_mul**i steps; at offset t of length L,

    lr * ((1 - alpha) * m_mul**i * (1 + cos(pi * t / L)) / 2 + alpha)
    `restart_warmup_steps` (not in TF) ramps linearly into every cycle (see parts.with_restarts).
    """
    where = "cosine_decay_restarts"
    lr = check_lr(f"{where}.learning_rate", learning_rate)
    first = check_steps(f"{where}.first_decay_steps", first_decay_steps, low=1)
    t_mul = check_number(f"{where}.t_mul", t_mul, low=1)
    m_mul = check_number(f"{where}.m_mul", m_mul, low=0)
    a = check_number(f"{where}.alpha", alpha, low=0, high=1)

    def cycle(t, length, i):
        return lr * ((1 - a) * m_mul ** i * anneal_cos(1.0, 0.0, t / length) + a)

    return with_restarts(cycle, first, t_mul, restart_warmup_steps=restart_warmup_steps,
                         restart_warmup_start_lr=restart_warmup_start_lr, where=where)
