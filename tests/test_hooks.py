"""PaddleHub 1.x's hook API on the Trainer, stop_training, EarlyStopping, save_final_checkpoint."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest

import paddle_strategy as ps

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from helpers import checkpoint_steps  # noqa: E402

HUB1X_EVENTS = ["build_env_start_event", "build_env_end_event", "finetune_start_event", "finetune_end_event",
                "predict_start_event", "predict_end_event", "eval_start_event", "eval_end_event",
                "log_interval_event", "save_ckpt_interval_event", "eval_interval_event", "run_step_event"]


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64")
    return [(x[i], y[i]) for i in range(n)]


def make(tmp, lr=0.05, epochs=2, **kw):
    paddle.seed(0)
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 2))
    kw.setdefault("log_interval", 2)
    cfg = ps.RunConfig(checkpoint_dir=str(tmp), use_cuda=False, batch_size=8, num_epoch=epochs,
                       strategy=ps.CombinedStrategy(optimizer_name="adam", learning_rate=lr), **kw)
    samples = data()
    return ps.Trainer(model, cfg, samples[:32], samples[32:], loss_fn=paddle.nn.CrossEntropyLoss(),
                      metrics=["acc"]), model


def test_every_event_fires_in_order_with_its_info(tmp_path):
    trainer, _ = make(tmp_path, eval_interval=3, save_ckpt_interval=2)  # 4 updates an epoch, 8 in all
    seen = []
    for event in HUB1X_EVENTS:
        trainer.add_hook(event, "record", lambda t, info: seen.append(dict(info)))
    trainer.finetune_and_eval()
    trainer.predict(data(5))
    names = [i["event"] for i in seen]
    assert names[:3] == ["build_env_start_event", "build_env_end_event", "finetune_start_event"]
    assert names.count("run_step_event") == 8 and [i["step"] for i in seen if i["event"] == "run_step_event"] \
        == list(range(1, 9))
    assert [i["step"] for i in seen if i["event"] == "log_interval_event"] == [2, 4, 6, 8]
    assert [(i["step"], i["reason"]) for i in seen if i["event"] == "eval_interval_event"] == \
        [(3, "interval"), (4, "epoch_end"), (6, "interval"), (8, "epoch_end")]
    ckpts = [i for i in seen if i["event"] == "save_ckpt_interval_event"]
    assert [i["step"] for i in ckpts] == [2, 4, 6, 8]
    # the default hook wrote them and said where (keep_checkpoints=3 has pruned the first since)
    assert [os.path.basename(i["checkpoint"]) for i in ckpts] == [f"step_{s:08d}" for s in (2, 4, 6, 8)]
    assert all(os.path.isfile(os.path.join(i["checkpoint"], "MANIFEST.json")) for i in ckpts[1:])
    ends = [i for i in seen if i["event"] == "eval_end_event"]
    assert len(ends) == 4 and all(i["during_training"] and i["metric"] == "acc" and i["value"] == i["result"]["acc"]
                                  for i in ends)
    fin = [i for i in seen if i["event"] == "finetune_end_event"]
    assert len(fin) == 1 and fin[0]["summary"]["steps"] == 8 and fin[0]["stopped"] is False
    # eval and predict built their phase once each
    assert [i["phase"] for i in seen if i["event"] == "build_env_start_event"] == ["train", "eval", "predict"]
    assert names[-2:] == ["predict_start_event", "predict_end_event"] and seen[-1]["outputs"].shape == (5, 2)
    logs = [i for i in seen if i["event"] == "log_interval_event"]
    assert [(i["rank"], i["samples"], set(i["metrics"])) for i in logs] == [(0, 16, {"acc"})] * 4


def test_deleting_the_default_log_hook_silences_train_lines_as_in_1x(tmp_path, capsys):
    trainer, _ = make(tmp_path)
    trainer.delete_hook("log_interval_event", "default")
    trainer.finetune()
    out = capsys.readouterr().out
    assert "[train]" not in out and "[done]" in out
    trainer2, _ = make(tmp_path / "b")
    trainer2.modify_hook("finetune_end_event", "default", lambda t, info: print("custom end", info["summary"]["steps"]))
    trainer2.finetune()
    out = capsys.readouterr().out
    assert "[train]" in out and "custom end 8" in out and "[done]" not in out


def test_replacing_the_best_model_rule(tmp_path):
    """1.x scripts replace eval_end_event's default to choose the best model themselves."""
    trainer, _ = make(tmp_path, eval_interval=2)
    chosen = []
    trainer.delete_hook("eval_end_event", "default")
    trainer.add_hook("eval_end", "mine", lambda t, info: chosen.append(info["step"]))  # 1.8's spelling
    trainer.finetune_and_eval()
    assert chosen == [2, 4, 6, 8] and not os.path.exists(tmp_path / "best_model") and trainer.best is None


def test_hook_api_errors_name_the_problem(tmp_path):
    trainer, _ = make(tmp_path)
    with pytest.raises(ValueError, match=r"'eval_ned_event' is not an event.*Did you mean 'eval_end_event'"):
        trainer.add_hook("eval_ned_event", "x", lambda t, i: None)
    with pytest.raises(TypeError, match="must be callable"):
        trainer.add_hook("eval_end_event", "x", None)
    name = trainer.add_hook("eval_end_event", func=lambda t, i: None)
    assert re.fullmatch(r"hook_\d+", name)
    with pytest.raises(ValueError, match="already has a hook named 'default'; use modify_hook"):
        trainer.add_hook("eval_end_event", "default", lambda t, i: None)
    with pytest.raises(ValueError, match="has no hook named 'nope'"):
        trainer.delete_hook("eval_end_event", "nope")
    with pytest.raises(TypeError, match="takes 3 positional"):
        trainer.add_hook("run_step_event", "three", lambda a, b, c: None)


def test_hook_info_prints_and_returns_the_table(tmp_path, capsys):
    trainer, _ = make(tmp_path)

    def my_logger(task):  # 1.x's one-argument shape for events without run_states
        pass
    trainer.add_hook("save_ckpt_interval_event", "mine", my_logger)
    text = trainer.hook_info()
    assert capsys.readouterr().out.strip() == text.strip()
    rows = [line.split() for line in text.splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows if r[1] == "default"] == [(e, "default") for e in HUB1X_EVENTS]
    assert ["save_ckpt_interval_event", "mine", "test_hook_info_prints_and_returns_the_table.<locals>.my_logger"] \
        in rows
    only = trainer.hook_info(only_customized=True)
    assert len(only.splitlines()) == 2


def test_a_failing_hook_names_itself_and_leaves_the_last_checkpoint(tmp_path):
    trainer, model = make(tmp_path, save_ckpt_interval=2)

    def broken(t, info):
        if info["step"] == 3:
            raise KeyError("missing")
    trainer.add_hook("run_step_event", "broken", broken)
    with pytest.raises(ps.HookError, match=r"hook 'broken' of run_step_event raised KeyError: 'missing' \(at step 3"):
        trainer.finetune()
    assert checkpoint_steps(tmp_path) == ["step_00000002"]
    trainer.delete_hook("run_step_event", "broken")
    trainer.finetune()  # between updates: it continues from where it stopped
    assert trainer.global_step == 8


def test_stop_training_from_a_hook_ends_after_the_update_with_a_checkpoint_that_resumes(tmp_path, capsys):
    trainer, _ = make(tmp_path)

    def stop_at_3(t, info):
        if info["step"] == 3:
            t.stop_training = True
    trainer.add_hook("run_step_event", "stop", stop_at_3)
    ended = []
    trainer.add_hook("finetune_end_event", "end", lambda t, info: ended.append(info["stopped"]))
    summary = trainer.finetune()
    assert summary["steps"] == 3 and ended == [True]
    assert checkpoint_steps(tmp_path) == ["step_00000003"]
    assert "[stop] a hook set stop_training: training stopped after step 3/8" in capsys.readouterr().out
    again, _ = make(tmp_path)
    summary = again.finetune()
    assert summary["steps"] == 8
    assert "step 3/8, epoch 0, batch 3" in capsys.readouterr().out


def test_early_stopping_by_hand_worked_table():
    """patience 2, min_delta 0.1 on 'acc' (higher is better)."""
    class T:
        stop_training = False

        def _say(self, text):
            pass
    es, t = ps.EarlyStopping(patience=2, min_delta=0.1), T()
    table = [(0.50, 0, False), (0.55, 1, False), (0.70, 0, False), (0.75, 1, False), (float("nan"), 2, True)]
    for step, (acc, wait, stop) in enumerate(table, 1):
        es(t, {"during_training": True, "result": {"loss": 1.0, "acc": acc}, "metric": "acc", "step": step})
        assert (es.wait, t.stop_training) == (wait, stop), step
    assert es.best == 0.70 and es.stopped_at == 5
    loss = ps.EarlyStopping(patience=1, metric="loss")  # lower is better
    t2 = T()
    for value in (1.0, 0.9, 0.95):
        loss(t2, {"during_training": True, "result": {"loss": value, "acc": 0.0}, "metric": "acc", "step": 1})
    assert loss.best == 0.9 and t2.stop_training
    with pytest.raises(ValueError, match="EarlyStopping.patience"):
        ps.EarlyStopping(patience=0)


def test_early_stopping_stops_training_and_its_counters_survive_resume(tmp_path):
    """Learning rate 0: every evaluation equals the first, so patience 2 stops at the 3rd (step 3); a rerun
    resumes with wait=2 and stops at its first evaluation (step 4), not after 3 more."""
    trainer, _ = make(tmp_path, lr=0.0, eval_interval=1, epochs=2)
    trainer.add_hook("eval_end_event", "early_stopping", ps.EarlyStopping(patience=2))
    assert trainer.finetune_and_eval()["steps"] == 3
    assert checkpoint_steps(tmp_path) == ["step_00000003"]
    again, _ = make(tmp_path, lr=0.0, eval_interval=1, epochs=2)
    es = ps.EarlyStopping(patience=2)
    again.add_hook("eval_end_event", "early_stopping", es)
    assert again.finetune_and_eval()["steps"] == 4
    assert es.wait == 3 and es.stopped_at == 4


def test_save_final_checkpoint_false_writes_only_best_model(tmp_path):
    trainer, _ = make(tmp_path, save_final_checkpoint=False)
    trainer.finetune_and_eval()
    assert checkpoint_steps(tmp_path) == [] and os.path.isdir(tmp_path / "best_model")
    trainer, _ = make(tmp_path / "b", save_final_checkpoint=False, save_ckpt_interval=3)
    trainer.finetune()
    assert checkpoint_steps(tmp_path / "b") == ["step_00000003", "step_00000006"]


def test_a_stop_request_on_one_process_stops_both_at_the_same_update(tmp_path):
    """2 processes: a hook on rank 1 only sets stop_training after update 5; both stop there, with one checkpoint
    holding both processes' RNG streams, and a rerun finishes the run."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "run"

    def launch(*extra):
        log = tmp_path / f"log{len(extra)}"
        r = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--devices",
                            "", "--log_dir", str(log), os.path.join(HERE, "trainer_worker.py"), str(out),
                            "--batch-size", "4", "--dropout", "0", "--samples", "64", "--count-allreduce", *extra],
                           capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
        logs = "".join(open(log / f).read() for f in sorted(os.listdir(log)))
        assert r.returncode == 0, (r.stdout + r.stderr + logs)[-3000:]
        return logs
    logs = launch("--stop-at", "5", "--stop-rank", "1")
    assert [json.load(open(out / f"allreduce_{r}.json"))["updates"] for r in (0, 1)] == [5, 5]
    assert checkpoint_steps(out) == ["step_00000005"]
    assert sorted(os.listdir(out / "step_00000005")) == sorted(
        ["MANIFEST.json", "model.safetensors", "optimizer.safetensors", "rng_0.json", "rng_1.json",
         "trainer_state.json"])
    assert "[stop] a hook set stop_training: training stopped after step 5/24" in logs
    launch()
    assert [json.load(open(out / f"allreduce_{r}.json"))["updates"] for r in (0, 1)] == [24, 24]
