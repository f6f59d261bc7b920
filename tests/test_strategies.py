"""Behaviour through the public API: with SGD one step moves each weight by exactly lr_eff * grad (+ the
regularization term), so LR multipliers, freezing, L2, L2-SP, weight decay and clipping are measured from
the weights alone and compared with values computed here from the formulas."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

import paddle_strategy as ps
from helpers import batch, mlp, snapshot, step

TOL = dict(rtol=1e-5, atol=1e-7)


def sgd_delta(before, grads, after, name):
    return after[name] - before[name], grads[name]


def test_discriminative_blocks_multiply_lr_by_factor_power():
    model, (x, y) = mlp(), batch()
    s = ps.CombinedStrategy("sgd", 0.1, scheduler={"discriminative": {"blocks": 3, "factor": 2.0}})
    opt, lr = s.build(model, 10, sample_input=x)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    mult = {"4": 1.0, "2": 0.5, "0": 0.25}  # block 0 = output layer
    for name in before:
        np.testing.assert_allclose(after[name], before[name] - lr_t * mult[name[0]] * grads[name], **TOL)


def test_discriminative_params_layer():
    model, (x, y) = mlp(), batch()
    layers = {"0.weight": 0, "0.bias": 0, "2.weight": 1, "2.bias": 1}  # 4.* unlisted: keep 1
    s = ps.CombinedStrategy("sgd", 0.1, scheduler={"discriminative": {"params_layer": layers, "factor": 4.0}})
    opt, lr = s.build(model, 10)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    for name in before:
        mult = (1 / 4.0) ** (1 - layers[name]) if name in layers else 1.0
        np.testing.assert_allclose(after[name], before[name] - lr_t * mult * grads[name], **TOL)


def test_gradual_unfreeze_blocks_per_epoch_and_no_stale_gradient():
    model, (x, y) = mlp(), batch()
    s = ps.CombinedStrategy("sgd", 0.1, scheduler={"gradual_unfreeze": 3})
    opt, lr = s.build(model, 12, steps_per_epoch=2, sample_input=x)
    trainable_by_epoch = {0: {"4"}, 1: {"4", "2"}, 2: {"4", "2", "0"}, 3: {"4", "2", "0"}}
    for t in range(8):
        before, grads, after, lr_t = step(model, opt, lr, x, y)
        live = trainable_by_epoch[t // 2]
        for name in before:
            if name[0] in live:
                # exactly this step's gradient: nothing carried over from before the unfreeze
                np.testing.assert_allclose(after[name], before[name] - lr_t * grads[name], **TOL)
            else:
                assert grads[name] is None
                np.testing.assert_array_equal(after[name], before[name])


def test_gradual_unfreeze_params_layer():
    model, (x, y) = mlp(), batch()
    layers = {"0.weight": 0, "0.bias": 0, "2.weight": 1, "2.bias": 1, "4.weight": 2, "4.bias": 2}
    s = ps.CombinedStrategy("sgd", 0.1, scheduler={"gradual_unfreeze": {"params_layer": layers}})
    opt, lr = s.build(model, 6, steps_per_epoch=1)
    for epoch in range(4):
        before, _, after, _ = step(model, opt, lr, x, y)
        for name in before:
            moved = not np.array_equal(after[name], before[name])
            assert moved == (layers[name] >= 2 - epoch), (epoch, name)


def test_frozen_blocks_keep_adam_moments_and_get_no_weight_decay():
    model, (x, y) = mlp(), batch()
    s = ps.CombinedStrategy("adam", 0.01, scheduler={"gradual_unfreeze": 3}, regularization={"weight_decay": 0.5})
    opt, lr = s.build(model, 10, steps_per_epoch=3, sample_input=x)
    start = snapshot(model)
    for _ in range(3):
        step(model, opt, lr, x, y)
    now = snapshot(model)
    for name in start:
        assert np.array_equal(now[name], start[name]) == (name[0] != "4"), name
    moments = {k: v.numpy() for k, v in opt.state_dict().items() if "moment1" in k}
    w0 = model[0].weight.name
    assert not np.any(moments[f"{w0}_moment1_0"])  # never touched while frozen


def test_l2_on_pretrained_parameters():
    model, (x, y) = mlp(), batch()
    opt, lr = ps.DefaultFinetuneStrategy(learning_rate=0.1, optimizer_name="sgd",
                                         regularization_coeff=0.3).build(model, 5)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    for name in before:
        np.testing.assert_allclose(after[name], before[name] - lr_t * (grads[name] + 0.3 * before[name]), **TOL)


def test_l2sp_pulls_towards_build_time_weights():
    model, (x, y) = mlp(), batch()
    w0 = snapshot(model)
    opt, lr = ps.L2SPFinetuneStrategy(learning_rate=0.1, optimizer_name="sgd",
                                      regularization_coeff=0.2).build(model, 10)
    for _ in range(3):
        before, grads, after, lr_t = step(model, opt, lr, x, y)
        for name in before:
            want = before[name] - lr_t * (grads[name] + 0.2 * (before[name] - w0[name]))
            np.testing.assert_allclose(after[name], want, **TOL)


def test_l2sp_on_pretrained_and_l2_on_the_rest():
    model, (x, y) = mlp(), batch()
    w0 = snapshot(model)
    s = ps.CombinedStrategy("sgd", 0.1, regularization={"L2": 0.05, "L2SP": 0.2})
    opt, lr = s.build(model, 10, pretrained=list(model[0].parameters()) + ["2.weight", "2.bias"])
    step(model, opt, lr, x, y)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    for name in before:
        reg = 0.2 * (before[name] - w0[name]) if name[0] in "02" else 0.05 * before[name]
        np.testing.assert_allclose(after[name], before[name] - lr_t * (grads[name] + reg), **TOL)


def test_pretrained_as_sublayer_and_state_dict():
    model, (x, y) = mlp(), batch()
    for pretrained in (model[0], {"0.weight": None, "0.bias": None}):
        opt, lr = ps.DefaultFinetuneStrategy(0.1, "sgd", 0.5).build(model, 5, pretrained=pretrained)
        before, grads, after, lr_t = step(model, opt, lr, x, y)
        for name in before:
            reg = 0.5 * before[name] if name[0] == "0" else 0.0
            np.testing.assert_allclose(after[name], before[name] - lr_t * (grads[name] + reg), **TOL)


@pytest.mark.parametrize("optimizer_name", ["sgd", "momentum", "rmsprop"])
def test_decoupled_weight_decay_skips_bias(optimizer_name):
    model, (x, y) = mlp(), batch()
    s = ps.CombinedStrategy(optimizer_name, 0.1, regularization={"weight_decay": 0.3},
                            scheduler={"discriminative": {"blocks": 3, "factor": 2.0}})
    opt, lr = s.build(model, 10, sample_input=x)
    # Reference: the same optimizer without decay, then w_old * wd * lr * mult subtracted.
    ref_model = mlp()
    ref_opt, ref_lr = ps.CombinedStrategy(optimizer_name, 0.1,
                                          scheduler={"discriminative": {"blocks": 3, "factor": 2.0}}
                                          ).build(ref_model, 10, sample_input=x)
    mult = {"4": 1.0, "2": 0.5, "0": 0.25}
    for _ in range(2):
        before, _, after, lr_t = step(model, opt, lr, x, y)
        ref_model.set_state_dict({n: paddle.to_tensor(v) for n, v in before.items()})
        _, _, ref_after, _ = step(ref_model, ref_opt, ref_lr, x, y)
        for name in before:
            decay = 0.0 if name.endswith("bias") else 0.3 * lr_t * mult[name[0]] * before[name]
            np.testing.assert_allclose(after[name], ref_after[name] - decay, **TOL)


def test_adam_weight_decay_is_adamw():
    model, (x, y) = mlp(), batch()
    s = ps.AdamWeightDecayStrategy(learning_rate=0.01, warmup_proportion=0.0, weight_decay=0.5)
    opt, lr = s.build(model, 100)
    assert isinstance(opt, paddle.optimizer.AdamW)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    # First Adam step is lr * g / (|g| + eps) on the clipped gradient; clip 1.0 by global norm.
    norm = np.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
    scale = min(1.0, 1.0 / norm)
    for name in before:
        g = grads[name] * scale
        decay = 0.0 if name.endswith("bias") else 0.5 * lr_t * before[name]
        np.testing.assert_allclose(after[name], before[name] - decay - lr_t * g / (np.abs(g) + 1e-8),
                                   rtol=1e-4, atol=1e-6)


def test_layernorm_and_batchnorm_parameters_are_not_decayed():
    paddle.seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 6), nn.BatchNorm1D(6), nn.Linear(6, 2))
    x, y = batch()
    opt, lr = ps.CombinedStrategy("sgd", 0.1, regularization={"weight_decay": 0.4}).build(model, 3)
    before = snapshot(model)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters() if not p.stop_gradient}
    opt.step()
    after = snapshot(model)
    for name in grads:  # BatchNorm's running statistics are parameters too, but never trained
        decayed = name in ("0.weight", "2.weight", "4.weight")
        want = before[name] - 0.1 * grads[name] - (0.4 * 0.1 * before[name] if decayed else 0.0)
        np.testing.assert_allclose(after[name], want, **TOL)


def test_global_norm_clip_is_one_norm_then_l2_after_clip():
    model, (x, y) = mlp(), batch()
    s = ps.CombinedStrategy("sgd", 0.1, clip={"GlobalNorm": 0.01}, regularization={"L2": 0.1},
                            scheduler={"discriminative": {"blocks": 3, "factor": 2.0}})
    opt, lr = s.build(model, 5, sample_input=x)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    assert norm > 0.01
    mult = {"4": 1.0, "2": 0.5, "0": 0.25}
    for name in before:
        g = grads[name] * (0.01 / norm) + 0.1 * before[name]
        np.testing.assert_allclose(after[name], before[name] - lr_t * mult[name[0]] * g, **TOL)


def test_norm_clip_is_per_tensor():
    model, (x, y) = mlp(), batch()
    opt, lr = ps.CombinedStrategy("sgd", 0.1, clip={"Norm": 0.02}).build(model, 5)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    for name in before:
        n = np.sqrt(float((grads[name].astype(np.float64) ** 2).sum()))
        g = grads[name] * min(1.0, 0.02 / n)
        np.testing.assert_allclose(after[name], before[name] - lr_t * g, **TOL)


def test_user_frozen_parameters_stay_frozen_and_out_of_blocks():
    model, (x, y) = mlp(), batch()
    model[0].weight.stop_gradient = True
    opt, lr = ps.ULMFiTStrategy(learning_rate=0.1, optimizer_name="sgd", frz_blocks=3, dis_blocks=3,
                                cut_fraction=0.1).build(model, 30, steps_per_epoch=2, sample_input=x)
    assert all("0.weight" not in b for b in lr.block_names)
    start = snapshot(model)
    for _ in range(8):
        step(model, opt, lr, x, y)
    assert model[0].weight.stop_gradient
    np.testing.assert_array_equal(snapshot(model)["0.weight"], start["0.weight"])
    assert not np.array_equal(snapshot(model)["0.bias"], start["0.bias"])


def test_user_param_attr_learning_rate_stays_a_factor():
    paddle.seed(0)
    model = nn.Sequential(nn.Linear(4, 3, weight_attr=paddle.ParamAttr(learning_rate=0.5)), nn.ReLU(),
                          nn.Linear(3, 2))
    x, y = batch()
    s = ps.CombinedStrategy("sgd", 0.1, scheduler={"discriminative": {"blocks": 2, "factor": 2.0}})
    for _ in range(2):  # building twice must not compound the multipliers
        opt, lr = s.build(model, 5, sample_input=x)
    before, grads, after, lr_t = step(model, opt, lr, x, y)
    mult = {"0.weight": 0.25, "0.bias": 0.5, "2.weight": 1.0, "2.bias": 1.0}
    for name in before:
        np.testing.assert_allclose(after[name], before[name] - lr_t * mult[name] * grads[name], **TOL)


def _ulmfit_run(steps, state=None):
    """A fresh process-like build (same global parameter names), optionally resumed from `state`."""
    with paddle.utils.unique_name.guard():
        model = mlp(seed=3)
        x, y = batch()
        opt, lr = ps.ULMFiTStrategy(learning_rate=0.01, frz_blocks=3, dis_blocks=3, cut_fraction=0.2).build(
            model, 20, steps_per_epoch=3, sample_input=x)
        if state is not None:
            model.set_state_dict(state["model"])
            opt.set_state_dict(state["opt"])
        for _ in range(steps):
            step(model, opt, lr, x, y)
        return model, opt, lr


def test_state_dict_round_trip_across_an_unfreeze_boundary():
    full, _, _ = _ulmfit_run(12)
    # Stop after 2 steps: blocks 1 and 2 have never trained, so Adam has no moments for them yet.
    model, opt, lr = _ulmfit_run(2)
    state = {"model": {k: v.clone() for k, v in model.state_dict().items()},
             "opt": {k: (v.clone() if isinstance(v, paddle.Tensor) else v) for k, v in opt.state_dict().items()}}
    resumed, _, lr2 = _ulmfit_run(10, state)
    assert lr2.last_epoch == 12
    for name, want in snapshot(full).items():
        np.testing.assert_array_equal(snapshot(resumed)[name], want)


def test_scheduler_state_dict_restores_frozen_blocks():
    model, (x, y) = mlp(), batch()
    opt, lr = ps.CombinedStrategy("sgd", 0.1, scheduler={"gradual_unfreeze": 3}).build(
        model, 12, steps_per_epoch=2, sample_input=x)
    for _ in range(4):
        lr.step()
    saved = lr.state_dict()
    assert not model[0].weight.stop_gradient
    model2 = mlp()
    _, lr2 = ps.CombinedStrategy("sgd", 0.1, scheduler={"gradual_unfreeze": 3}).build(
        model2, 12, steps_per_epoch=2, sample_input=x)
    assert model2[0].weight.stop_gradient and model2[2].weight.stop_gradient
    lr2.set_state_dict(saved)
    assert lr2.last_epoch == 4 and not model2[0].weight.stop_gradient


def test_optimizer_names_are_case_insensitive_and_kwargs_reach_the_optimizer():
    model = mlp()
    opt, _ = ps.CombinedStrategy("Momentum", 0.1, momentum=0.5, use_nesterov=True).build(model, 3)
    assert isinstance(opt, paddle.optimizer.Momentum) and opt._momentum == 0.5 and opt._use_nesterov
    opt, _ = ps.CombinedStrategy("ADAM", 0.1, beta1=0.8).build(model, 3)
    assert type(opt) is paddle.optimizer.Adam and opt._beta1 == 0.8


def test_rprop_warns_that_the_schedule_has_no_effect():
    with pytest.warns(UserWarning, match="Rprop"):
        opt, _ = ps.CombinedStrategy("rprop", 0.01).build(mlp(), 3)
    assert isinstance(opt, paddle.optimizer.Rprop)


def test_runs_unchanged_in_paddle_model_fit():
    """paddle.Model steps the scheduler once per batch itself: gradual unfreezing must work there."""
    model, (x, y) = mlp(), batch()
    opt, lr = ps.CombinedStrategy("sgd", 0.1, scheduler={"gradual_unfreeze": 3}).build(
        model, 8, steps_per_epoch=4, sample_input=x)
    data = paddle.io.TensorDataset([x, y.unsqueeze(-1)])
    hl = paddle.Model(model)
    hl.prepare(opt, nn.CrossEntropyLoss())
    start = snapshot(model)
    hl.fit(data, batch_size=4, epochs=1, verbose=0, shuffle=False)
    now = snapshot(model)
    assert lr.last_epoch == 4
    assert not np.array_equal(now["4.weight"], start["4.weight"])
    np.testing.assert_array_equal(now["2.weight"], start["2.weight"])
    np.testing.assert_array_equal(now["0.weight"], start["0.weight"])
    assert not model[2].weight.stop_gradient  # epoch 1 has begun: block 1 trains now
