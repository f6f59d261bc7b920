"""One parameter table decides every parameter's LR multiplier, phases, decay, regularizer and
unfreeze epoch; it is plain data (no optimizer needed) and leaves no private marks on the parameters."""
import numpy as np
import paddle
import pytest

import paddle_strategy as ps
from paddle_strategy.regularizers import L1, L2, L2SP, Sum

from helpers import batch


class Net(paddle.nn.Layer):
    """An MLP with a LayerNorm: four layer-aligned units, from the output: head, mid, norm, body."""

    def __init__(self):
        super().__init__()
        paddle.seed(0)
        self.body = paddle.nn.Linear(4, 8)
        self.norm = paddle.nn.LayerNorm(8)
        self.mid = paddle.nn.Linear(8, 8)
        self.head = paddle.nn.Linear(8, 2)

    def forward(self, x):
        return self.head(paddle.nn.functional.relu(self.mid(self.norm(self.body(x)))))


def sample():
    return (batch()[0],)


def test_ulmfit_table_by_hand():
    model = Net()
    s = ps.ULMFiTStrategy(learning_rate=1e-3, dis_blocks=4, factor=2.0, frz_blocks=4)
    table = s.param_table(model, steps_per_epoch=5, sample_input=sample())
    assert [sorted(b) for b in table.blocks] == [["head.bias", "head.weight"], ["mid.bias", "mid.weight"],
                                                 ["norm.bias", "norm.weight"], ["body.bias", "body.weight"]]
    # block k at factor ** -k, trains from epoch k
    want = {"head": (1.0, 0), "mid": (0.5, 1), "norm": (0.25, 2), "body": (0.125, 3)}
    for name, row in table.rows.items():
        mult, epoch = want[name.split(".")[0]]
        assert row.multiplier == mult and row.unfreeze_epoch == epoch and row.block == epoch, name
        assert row.regularizer is None and row.phase is None  # no L2, one phase
        assert row.decays == (name.split(".")[0] != "norm" and name.endswith("weight"))  # if decay were set


def test_weight_decay_l2sp_l1_rules_by_hand():
    model = Net()
    s = ps.CombinedStrategy("adam", learning_rate=1e-3,
                            regularization={"weight_decay": 0.01, "L2SP": 0.1, "L1": 0.2})
    table = s.param_table(model, pretrained=[model.body.weight, model.body.bias, "mid.weight"])
    decays = {n for n, r in table.rows.items() if r.decays}
    assert decays == {"body.weight", "mid.weight", "head.weight"}  # no bias, no LayerNorm parameter
    kinds = {n: type(r.regularizer) for n, r in table.rows.items()}
    # L2-SP on the pretrained ones, L1 on the others (beside L2-SP, L1 / L2 act on what is not pretrained)
    assert kinds == {"body.weight": L2SP, "body.bias": L2SP, "mid.weight": L2SP, "mid.bias": L1, "norm.weight": L1,
                     "norm.bias": L1, "head.weight": L1, "head.bias": L1}
    both = ps.CombinedStrategy("sgd", regularization={"L2": 0.1, "L1": 0.2}).param_table(model)
    assert all(isinstance(r.regularizer, Sum) and [type(x) for x in r.regularizer.parts] == [L2, L1]
               for r in both.rows.values())
    rule = ps.CombinedStrategy("adamw", regularization={"weight_decay": 0.05, "no_weight_decay": {
        "names": ["norm"], "one_dim": False}}).param_table(model)
    assert {n for n, r in rule.rows.items() if not r.decays} == {"norm.weight", "norm.bias"}  # biases decay here


def test_fine_tune_phases_by_hand():
    model = Net()
    s = ps.FineTuneStrategy(epochs=1, base_lr=2e-3, freeze_epochs=1, lr_mult=100, n_blocks=3)
    table = s.param_table(model, steps_per_epoch=4, sample_input=sample())
    # 4 units in 3 blocks, the output side taking the extra unit: head + mid | norm | body
    assert [sorted(b) for b in table.blocks] == [["head.bias", "head.weight", "mid.bias", "mid.weight"],
                                                 ["norm.bias", "norm.weight"], ["body.bias", "body.weight"]]
    # phase 1: slice(base_lr) -> head 1, body 1/10; phase 2: slice(base/2/100, base/2) -> 1, 1/10, 1/100
    assert table.phase_boundary == 1
    assert table.phase_blocks[0] == pytest.approx([1, 0.1, 0.1]) and table.phase_blocks[1] == pytest.approx(
        [1, 0.1, 0.01])
    assert table.rows["norm.weight"].phase == pytest.approx((0.1, 0.1))
    assert table.rows["body.weight"].phase == pytest.approx((0.1, 0.01))
    first = {n: r.unfreeze_epoch for n, r in table.rows.items()}
    # phase 1 trains the head block and (train_bn) the LayerNorm; the rest joins at epoch 1
    assert first == {"head.weight": 0, "head.bias": 0, "mid.weight": 0, "mid.bias": 0, "norm.weight": 0,
                     "norm.bias": 0, "body.weight": 1, "body.bias": 1}


def test_keras_bert_decay_pattern_is_the_tables_decay_rule():
    model = Net()
    s = ps.AdamWarmupStrategy(decay_steps=10, warmup_steps=2, weight_decay=0.01, weight_decay_pattern=["weight"])
    table = s.param_table(model)
    assert {n for n, r in table.rows.items() if r.decays} == {"body.weight", "norm.weight", "mid.weight",
                                                              "head.weight"}


def parameter_attrs(p):
    """A parameter's own attributes, by value (one level of dicts copied: optimize_attr is edited in place)."""
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(p).items()}


def test_build_leaves_no_marks_on_the_parameters_and_restores_paramattr_factors():
    model = Net()
    model.head.weight.optimize_attr["learning_rate"] = 3.0  # a ParamAttr factor of the user's
    fresh = dict(Net().named_parameters())  # never built
    before = {n: parameter_attrs(p) for n, p in model.named_parameters()}
    for _ in range(2):  # a rebuild must not compound the factors
        opt, lr = ps.ULMFiTStrategy(learning_rate=1e-3, dis_blocks=3, factor=2.0, frz_blocks=1).build(
            model, 10, 5, sample_input=sample())
        assert model.head.weight.optimize_attr["learning_rate"] == 3.0
        assert model.body.weight.optimize_attr["learning_rate"] == 0.25
    # 3 blocks of the 4 units: head + mid | norm | body at 2 ** -k
    multiplier = {"head": 1.0, "mid": 1.0, "norm": 0.5, "body": 0.25}
    for n, p in model.named_parameters():
        assert set(dir(p)) == set(dir(fresh[n])) and vars(p).keys() == vars(fresh[n]).keys(), n  # nothing added
        after, was = parameter_attrs(p), before[n]
        # the one change: the ParamAttr LR factor is the user's own times the table's multiplier
        assert after.pop("optimize_attr") == {"learning_rate": was.pop("optimize_attr")["learning_rate"]
                                              * multiplier[n.split(".")[0]]}, n
        assert after == was, n
    assert lr.parameters_by_name.keys() == dict(model.named_parameters()).keys()


def test_table_is_what_sgd_measures():
    """Discriminative blocks=3, factor=4 on the four units (the output side taking the extra unit: head + mid |
    norm | body): block k at 4 ** -k, in the table and in what one SGD step applies (lr_eff = lr * multiplier)."""
    model = Net()
    s = ps.CombinedStrategy("sgd", learning_rate=0.1, scheduler={"discriminative": {"blocks": 3, "factor": 4.0}})
    want = {"head": 1.0, "mid": 1.0, "norm": 0.25, "body": 0.0625}
    table = s.param_table(model, sample_input=sample())
    assert {n: r.multiplier for n, r in table.rows.items()} == {n: want[n.split(".")[0]] for n in table.rows}
    opt, _ = s.build(model, 10, sample_input=sample())
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    x, y = batch()
    paddle.nn.functional.cross_entropy(model(x), y).backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    opt.step()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), before[n] - 0.1 * want[n.split(".")[0]] * grads[n], rtol=1e-5,
                                   atol=1e-7)
