"""Against the real PaddleHub 2.4.0: `patch_paddlehub()`, and our strategies inside PaddleHub's own
`hub.Trainer` (PaddleHub 2.x's task protocol: `training_step` / `validation_step`).

With plain SGD one update moves each weight by exactly lr_eff * grad, so the learning rate hub.Trainer used at
each step, the discriminative multipliers and the frozen blocks are all measured from the weights: for every
step the test keeps the batch and the weights before it, recomputes the gradient itself on a fresh copy of
the model, and compares the change with the formulas written out below. float64 keeps it exact to ~1e-12.
"""
import math
import os
import sys
import tempfile

import numpy as np
import paddle
import paddle.nn as nn
import pytest

os.environ.setdefault("HUB_HOME", os.path.join(tempfile.gettempdir(), "paddle_strategy_tests_hub_home"))
# CI installs PaddleHub (requirements.txt); `pip install paddle_strategy[hub]` does too. Without it: skipped.
hub = pytest.importorskip("paddlehub", reason="PaddleHub 2.4 is not installed (pip install paddle_strategy[hub])")
from easydict import EasyDict  # noqa: E402  (a PaddleHub dependency)

import paddle_strategy as ps  # noqa: E402
from paddle_strategy.compat import patch_paddlehub  # noqa: E402

FIVE = ("AdamWeightDecayStrategy", "DefaultFinetuneStrategy", "L2SPFinetuneStrategy", "ULMFiTStrategy",
        "CombinedStrategy")
TOL = dict(rtol=1e-9, atol=1e-13)


# ------------------------------------------------------------------------------------------ patching
def test_patch_replaces_1x_stubs_everywhere():
    patch_paddlehub()
    assert hub.RunConfig is ps.RunConfig
    import paddlehub.compat.task.config as config_module
    assert config_module.RunConfig is ps.RunConfig
    for name in FIVE:
        assert getattr(hub, name) is getattr(ps, name), name
        assert getattr(hub.finetune.strategy, name) is getattr(ps, name), name
    from paddlehub.finetune.strategy import ULMFiTStrategy
    import paddlehub.finetune.strategy as ns
    assert ULMFiTStrategy is ps.ULMFiTStrategy and ns.CombinedStrategy is ps.CombinedStrategy
    assert sys.modules["paddlehub.finetune"].strategy is ns  # the real package, shadowed by 2.4's EasyDict
    from paddlehub.finetune.trainer import Trainer as HubTrainer
    assert hub.Trainer is HubTrainer  # 2.x's Trainer is left alone

    # the 1.x lines that 2.4 silently turned into nothing
    strategy = hub.ULMFiTStrategy(learning_rate=1e-3)
    config = hub.RunConfig(use_cuda=False, num_epoch=2, batch_size=8, strategy=strategy,
                           checkpoint_dir=tempfile.gettempdir())
    assert isinstance(strategy, ps.ULMFiTStrategy) and config.strategy is strategy


def test_patch_is_idempotent_and_lists_what_it_replaced(monkeypatch):
    # put back what PaddleHub 2.4's __init__ defines (monkeypatch restores the patched state afterwards)
    import paddlehub.compat.task.config as config_module
    stub_ulmfit = lambda params_layer=0: 0  # noqa: E731
    monkeypatch.setattr(hub, "AdamWeightDecayStrategy", lambda: 0)
    monkeypatch.setattr(hub, "ULMFiTStrategy", stub_ulmfit)
    for name in ("DefaultFinetuneStrategy", "L2SPFinetuneStrategy", "CombinedStrategy"):
        monkeypatch.delattr(hub, name, raising=False)
    monkeypatch.setattr(hub, "RunConfig", type("RunConfig", (), {}))
    monkeypatch.setattr(config_module, "RunConfig", hub.RunConfig)
    monkeypatch.setattr(hub, "finetune", EasyDict(strategy=EasyDict(ULMFiTStrategy=stub_ulmfit)))
    monkeypatch.delattr(sys.modules["paddlehub.finetune"], "strategy", raising=False)
    monkeypatch.delitem(sys.modules, "paddlehub.finetune.strategy", raising=False)
    assert hub.ULMFiTStrategy() == 0 and hub.finetune.strategy.ULMFiTStrategy() == 0

    replaced = patch_paddlehub()
    assert set(replaced) == {"paddlehub.RunConfig", "paddlehub.compat.task.config.RunConfig",
                             *(f"paddlehub.{n}" for n in FIVE), "paddlehub.finetune.strategy",
                             "sys.modules['paddlehub.finetune'].strategy",
                             "sys.modules['paddlehub.finetune.strategy']"}
    assert isinstance(hub.finetune, EasyDict)  # still 2.4's object, now holding the real namespace
    assert hub.finetune["strategy"].ULMFiTStrategy is ps.ULMFiTStrategy
    assert patch_paddlehub() == []


# ------------------------------------------------------------------------------------------ hub.Trainer
class TaskModel(nn.Layer):
    """Three Linear blocks in a chain, speaking PaddleHub 2.x's task protocol; records every training step."""

    def __init__(self):
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.records = []  # (x, y, weights before the step)

    def forward(self, x):
        return self.l3(paddle.tanh(self.l2(paddle.tanh(self.l1(x)))))

    def _loss_and_acc(self, batch):
        x, y = batch
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        acc = float((logits.argmax(axis=-1) == y).astype("float64").mean())
        return loss, acc

    def training_step(self, batch, batch_idx):
        self.records.append((batch[0].numpy().copy(), batch[1].numpy().copy(), weights(self)))
        loss, acc = self._loss_and_acc(batch)
        return {"loss": loss, "metrics": {"acc": acc}}

    def validation_step(self, batch, batch_idx):
        loss, acc = self._loss_and_acc(batch)
        return {"loss": loss, "metrics": {"acc": acc}}


class TinyDataset(paddle.io.Dataset):
    def __init__(self, n, seed=0):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=(n, 4))
        self.y = rng.integers(0, 3, size=(n,)).astype("int64")

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __len__(self):
        return len(self.x)


def weights(model):
    return {n: p.numpy().copy() for n, p in model.named_parameters()}


def reference_grads(state, x, y):
    """d loss / d w at `state` on (x, y), on a fresh model with every parameter trainable."""
    model = TaskModel()
    model.set_state_dict({n: paddle.to_tensor(v) for n, v in state.items()})
    loss = nn.functional.cross_entropy(model(paddle.to_tensor(x)), paddle.to_tensor(y))
    loss.backward()
    return {n: p.grad.numpy().copy() for n, p in model.named_parameters()}


BLOCK = {"l3": 0, "l2": 1, "l1": 2}  # block 0 at the output


@pytest.fixture
def float64_cpu():
    dtype, device = paddle.get_default_dtype(), paddle.get_device()
    paddle.set_default_dtype("float64")
    paddle.seed(0)
    yield
    paddle.set_default_dtype(dtype)
    paddle.set_device(device)  # hub.Trainer(use_gpu=False) sets the process-wide device to cpu


N, BATCH = 8, 2
S = N // BATCH  # steps per epoch


def check_steps(records, final, expected_change, first_step=0, tol=TOL):
    """Each recorded step t moved every weight exactly as expected_change(t, name, w, g) says."""
    after = [r[2] for r in records[1:]] + [final]
    for i, ((x, y, before), w_after) in enumerate(zip(records, after)):
        t = first_step + i
        g = reference_grads(before, x, y)
        for name in before:
            np.testing.assert_allclose(w_after[name] - before[name], expected_change(t, name, before[name], g),
                                       **tol, err_msg=f"step {t}, {name}")


def ulmfit_lr(t, lr, T, cut_fraction, ratio):
    cut = math.floor(T * cut_fraction)
    p = t / cut if t < cut else max(0.0, 1 - (t - cut) / (T - cut))
    return lr * (1 + p * (ratio - 1)) / ratio


ULMFIT = dict(learning_rate=0.5, cut_fraction=0.25, ratio=8, dis_blocks=3, factor=2.6, frz_blocks=3)


def ulmfit_change(T):
    def change(t, name, w, g):
        k, epoch = BLOCK[name.split(".")[0]], t // S
        if k > epoch:  # gradual unfreezing: blocks 0..epoch train
            return np.zeros_like(w)
        return -ulmfit_lr(t, ULMFIT["learning_rate"], T, ULMFIT["cut_fraction"], ULMFIT["ratio"]) \
            * ULMFIT["factor"] ** -k * g[name]
    return change


def build_ulmfit(T):
    model = TaskModel()
    strategy = hub.ULMFiTStrategy(optimizer_name="sgd", **ULMFIT)  # patched: ours
    assert isinstance(strategy, ps.ULMFiTStrategy)
    optimizer, lr = strategy.build(model, max_train_steps=T, steps_per_epoch=S,
                                   sample_input=paddle.to_tensor(TinyDataset(2, seed=9).x))
    return model, optimizer, lr


@pytest.mark.parametrize("calls", [1, 3], ids=["train(epochs=3)", "3 x train(epochs=1)"])
def test_hub_trainer_runs_ulmfit_schedule_discriminative_and_unfreezing(float64_cpu, tmp_path, calls):
    patch_paddlehub()
    epochs = 3
    T = epochs * S
    model, optimizer, lr = build_ulmfit(T)
    trainer = hub.Trainer(model, optimizer, use_gpu=False, use_vdl=False, checkpoint_dir=str(tmp_path))
    data = TinyDataset(N)
    for _ in range(calls):
        trainer.train(data, epochs=epochs // calls, batch_size=BATCH, log_interval=100, save_interval=1)

    assert len(model.records) == T  # every epoch ran, whether in one call or three
    check_steps(model.records, weights(model), ulmfit_change(T))
    assert trainer.current_epoch == epochs
    assert sorted(os.listdir(tmp_path)) == ["epoch_1", "epoch_2", "epoch_3"]
    saved = paddle.load(str(tmp_path / "epoch_3" / "model.pdopt"))
    assert saved["LR_Scheduler"]["last_epoch"] == T  # our schedule travels in hub.Trainer's checkpoint


def test_hub_trainer_resumes_schedule_and_frozen_blocks_from_its_checkpoint(float64_cpu, tmp_path):
    patch_paddlehub()
    T = 3 * S
    model, optimizer, lr = build_ulmfit(T)
    first = hub.Trainer(model, optimizer, use_gpu=False, use_vdl=False, checkpoint_dir=str(tmp_path))
    first.train(TinyDataset(N), epochs=1, batch_size=BATCH, log_interval=100, save_interval=1)
    after_epoch_1 = weights(model)

    # a new process would rebuild everything; hub.Trainer finds epoch_1 and loads model + optimizer state
    paddle.seed(123)  # different initial weights: they must be replaced by the checkpoint's
    model2, optimizer2, lr2 = build_ulmfit(T)
    second = hub.Trainer(model2, optimizer2, use_gpu=False, use_vdl=False, checkpoint_dir=str(tmp_path))
    assert second.current_epoch == 1
    for name, value in weights(model2).items():
        np.testing.assert_array_equal(value, after_epoch_1[name])
    # in its epoch 1: blocks 0 and 1 train, block 2 (l1) is still frozen
    assert [p.stop_gradient for p in (model2.l3.weight, model2.l2.weight, model2.l1.weight)] == [False, False, True]

    # PaddleHub's `epochs` counts the epochs of this call, not the total: 2 more
    second.train(TinyDataset(N), epochs=2, batch_size=BATCH, log_interval=100, save_interval=1)
    assert len(model2.records) == 2 * S
    check_steps(model2.records, weights(model2), ulmfit_change(T), first_step=S)


def test_hub_trainer_runs_adam_weight_decay_strategy_with_sgd(float64_cpu, tmp_path):
    """Warmup + linear decay, global-norm clip 1.0 and decoupled weight decay (not on biases), through
    hub.Trainer, with evaluation and best-model saving on."""
    patch_paddlehub()
    lr0, warmup, wd, epochs = 0.5, 0.25, 0.1, 2
    T = epochs * S
    W = math.floor(T * warmup)
    model = TaskModel()
    strategy = hub.AdamWeightDecayStrategy(learning_rate=lr0, warmup_proportion=warmup, weight_decay=wd,
                                           optimizer_name="sgd")
    optimizer, _ = strategy.build(model, max_train_steps=T, sample_input=paddle.to_tensor(TinyDataset(2).x))
    trainer = hub.Trainer(model, optimizer, use_gpu=False, use_vdl=False, checkpoint_dir=str(tmp_path))
    trainer.train(TinyDataset(N), epochs=epochs, batch_size=BATCH, eval_dataset=TinyDataset(4, seed=5),
                  log_interval=100, save_interval=1)

    def change(t, name, w, g):
        lr_t = lr0 * t / W if t < W else lr0 * (T - t) / (T - W)
        norm = math.sqrt(sum(float((v ** 2).sum()) for v in g.values()))
        clipped = g[name] * min(1.0, 1.0 / norm)
        decay = 0.0 if name.endswith("bias") else wd * lr_t * w
        return -decay - lr_t * clipped

    assert len(model.records) == T
    # the strategy's global norm is summed in float32 (Paddle's own ClipGradByGlobalNorm keeps float64 for
    # float64 gradients): ~1e-7 of each step (steps here are ~1e-2), hence the looser tolerance
    check_steps(model.records, weights(model), change, tol=dict(rtol=1e-6, atol=1e-8))
    assert {"best_model", "epoch_1", "epoch_2", "metrics.pkl"} <= set(os.listdir(tmp_path))
