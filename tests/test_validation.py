"""Bad input is refused before training starts, with the key, the value and what is allowed."""
import math

import pytest

import paddle_strategy as ps
from helpers import batch, mlp

C = ps.CombinedStrategy


@pytest.mark.parametrize("make, error, words", [
    (lambda: C(learning_rate=-1e-3), ValueError, ["learning_rate", "-0.001", ">= 0"]),
    (lambda: C(learning_rate=math.nan), ValueError, ["learning_rate", "finite"]),
    (lambda: C(learning_rate="1e-3"), TypeError, ["learning_rate", "'1e-3'", "number"]),
    (lambda: C(scheduler={"warmup": 1.0}), ValueError, ["scheduler['warmup']", "1.0", "[0, 1)"]),
    (lambda: C(scheduler={"warmup": -0.1}), ValueError, ["scheduler['warmup']", "-0.1"]),
    (lambda: C(scheduler={"linear_decay": {"start_point": 1.5}}), ValueError,
     ["['linear_decay']['start_point']", "1.5", "[0, 1]"]),
    (lambda: C(scheduler={"linear_decay": {"end_learning_rate": math.inf}}), ValueError, ["end_learning_rate"]),
    (lambda: C(scheduler={"slanted_triangle": {"cut_fraction": 1.0}}), ValueError, ["cut_fraction", "1.0"]),
    (lambda: C(scheduler={"slanted_triangle": {"cut_fraction": 0.1, "ratio": 0.5}}), ValueError,
     ["ratio", "0.5", ">= 1"]),
    (lambda: C(scheduler={"discriminative": {"factor": 0}}), ValueError, ["factor", "0", "> 0"]),
    (lambda: C(scheduler={"discriminative": {"blocks": -1}}), ValueError, ["blocks", "-1"]),
    (lambda: C(scheduler={"gradual_unfreeze": 2.5}), TypeError, ["gradual_unfreeze", "2.5"]),
    (lambda: C(scheduler={"gradual_unfreeze": {"blocks": 1.5}}), TypeError, ["blocks", "1.5", "integer"]),
    (lambda: C(scheduler={"warmpu": 0.1}), ValueError, ["'warmpu'", "Did you mean 'warmup'"]),
    (lambda: C(scheduler={"discriminative": {"factr": 2}}), ValueError, ["'factr'", "Did you mean 'factor'"]),
    (lambda: C(scheduler={"noam_decay": "yes"}), TypeError, ["noam_decay", "'yes'"]),
    (lambda: C(scheduler={"slanted_triangle": {"cut_fraction": 0.1}, "warmup": 0.1}), ValueError,
     ["slanted_triangle", "warmup"]),
    (lambda: C(scheduler={"slanted_triangle": {"cut_fraction": 0.1}, "noam_decay": True, "warmup": 0.1}),
     ValueError, ["slanted_triangle", "noam_decay"]),
    (lambda: C(scheduler={"slanted_triangle": {"cut_fraction": 0.1}, "linear_decay": {"start_point": 0.5}}),
     ValueError, ["slanted_triangle", "linear_decay"]),
    (lambda: C(scheduler={"noam_decay": True}), ValueError, ["noam_decay", "warmup"]),
    (lambda: C(scheduler={"noam_decay": True, "warmup": 0.1, "linear_decay": {"start_point": 0.5}}),
     ValueError, ["noam_decay", "start_point=0.5"]),
    (lambda: C(scheduler={"discriminative": {"blocks": 2, "params_layer": {"0.weight": 0}}}), ValueError,
     ["blocks=2", "params_layer"]),
    (lambda: C(scheduler={"discriminative": {"params_layer": {"0.weight": "top"}}}), TypeError,
     ["params_layer", "'top'"]),
    (lambda: C(regularization={"L2": -1}), ValueError, ["regularization['L2']", "-1"]),
    (lambda: C(regularization={"l2sp": 0.1}), ValueError, ["'l2sp'", "Did you mean 'L2SP'"]),
    (lambda: C(clip={"GlobalNorm": 1.0, "Norm": 1.0}), ValueError, ["GlobalNorm", "Norm", "choose one"]),
    (lambda: C(clip={"globalnorm": 1.0}), ValueError, ["'globalnorm'", "Did you mean 'GlobalNorm'"]),
    (lambda: C(scheduler=[1]), TypeError, ["scheduler", "dict"]),
    (lambda: C(optimizer_name="adamm"), ValueError, ["'adamm'", "adamw", "Did you mean"]),
    (lambda: C(optimizer_name="decayedadagrad"), ValueError, ["decayedadagrad", "adagrad"]),
    (lambda: C(optimizer_name="ftrl"), ValueError, ["ftrl", "no FTRL"]),
    (lambda: C(optimizer_name="larsmomentum"), ValueError, ["larsmomentum", "momentum"]),
    (lambda: C(optimizer_name="lbfgs"), ValueError, ["closure"]),
    (lambda: C(optimizer_name=3), TypeError, ["optimizer_name", "3"]),
    (lambda: C("adam", beta_1=0.9), ValueError, ["'beta_1'", "Did you mean 'beta1'"]),
    (lambda: C("adam", weight_decay=0.1), ValueError, ["weight_decay=0.1", "regularization"]),
    (lambda: C("adam", grad_clip=None), ValueError, ["grad_clip", "clip="]),
    (lambda: C("momentum", momentum="fast"), TypeError, ["Momentum", "momentum='fast'", "float"]),
    (lambda: C("momentum", use_nesterov=1), TypeError, ["use_nesterov=1", "bool"]),
    (lambda: C("adam", beta1=1.5), ValueError, ["Adam", "beta1"]),
    (lambda: ps.AdamWeightDecayStrategy(lr_scheduler="cosine"), ValueError,
     ["lr_scheduler='cosine'", "'linear_decay'", "'noam_decay'"]),
    (lambda: ps.AdamWeightDecayStrategy(lr_scheduler="noam_decay"), ValueError,
     ["warmup_proportion=0", "noam_decay"]),
    (lambda: ps.AdamWeightDecayStrategy(warmup_proportion=1.2), ValueError, ["warmup_proportion", "1.2"]),
    (lambda: ps.DefaultFinetuneStrategy(regularization_coeff=-1), ValueError, ["regularization_coeff", "-1"]),
    (lambda: ps.ULMFiTStrategy(ratio=0), ValueError, ["ratio", "0"]),
    (lambda: ps.ULMFiTStrategy(factor=-2.6), ValueError, ["factor", "-2.6"]),
])
def test_construction_refuses(make, error, words):
    with pytest.raises(error) as info:
        make()
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_build_refuses():
    model, (x, _) = mlp(), batch()
    with pytest.raises(ValueError, match="max_train_steps must be >= 1, got 0"):
        C().build(model, 0)
    with pytest.raises(TypeError, match="max_train_steps"):
        C().build(model, 10.5)
    with pytest.raises(ValueError, match="gradual_unfreeze.*steps_per_epoch"):
        C(scheduler={"gradual_unfreeze": 2}).build(model, 10, sample_input=x)
    with pytest.raises(ValueError, match="cut_fraction=0.1 of max_train_steps=5"):
        ps.ULMFiTStrategy(frz_blocks=0, dis_blocks=0).build(model, 5)
    with pytest.raises(ValueError, match="noam needs at least 1 warmup step"):
        ps.AdamWeightDecayStrategy(lr_scheduler="noam_decay", warmup_proportion=0.1).build(model, 5)
    with pytest.raises(TypeError, match="paddle.nn.Layer"):
        C(scheduler={"discriminative": 2}).build(list(model.parameters()), 10)
    with pytest.raises(ValueError, match="'0.wieght' is not a parameter of the model. Did you mean '0.weight'"):
        C(scheduler={"discriminative": {"params_layer": {"0.wieght": 1}}}).build(model, 10)
    with pytest.raises(ValueError, match="'2.weigth' is not a parameter of the model. Did you mean '2.weight'"):
        C(regularization={"L2": 0.1}).build(model, 10, pretrained=["2.weigth"])
    other = mlp()
    with pytest.raises(ValueError, match="not a parameter of the model"):
        C(regularization={"L2": 0.1}).build(model, 10, pretrained=other)
    for p in model.parameters():
        p.stop_gradient = True
    with pytest.raises(ValueError, match="no trainable parameters"):
        C().build(model, 10)
