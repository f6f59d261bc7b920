"""Does each strategy help? all-MiniLM-L6-v2 fine-tuned on the full Rotten Tomatoes corpus through ps.Trainer.

For each strategy (configs/transfer/*.yml) x training-set size x seed: train, keep the best dev checkpoint,
report its dev and test accuracy. The learning rate of each strategy is chosen first, on the dev set only: the
3-point `lr_grid` of its entry in SWEEPS (below) at the sweep size and seed 0, best dev accuracy wins (ties: the
smaller LR); that run is also the table's seed-0 run at the sweep size. CombinedStrategy candidates (group:
combined) compete the same way and only the best goes on. Then every cell runs with the chosen LR for each seed.
Each config is complete (tools/train.py trains its 200-snippet, seed-0 cell at the chosen LR); the bench reads its
Strategy section and sets the LR and epochs itself.

    python tools/bench_transfer.py                      # the table in results/ (about 80 min on 2 CPU cores)
    python tools/bench_transfer.py --only ulmfit --sizes 200 --seeds 1 --out /tmp/one   # rerun one cell
    python tools/bench_transfer.py --quick --out /tmp/q  # a tiny version (seconds per run) for the tests

Writes to --out: transfer.csv (one row per run: its exact configuration, best step, dev and test accuracy;
deterministic, so a rerun reproduces it byte for byte on CPU), transfer_timing.csv (wall time, steps/s, peak RSS:
never reproducible), transfer.md (mean ± sd over seeds and the paired difference to plain fine-tuning) and
transfer.png. Each run is a subprocess (its own peak RSS; nothing leaks between runs); runs already in
transfer.csv are skipped, so a killed bench resumes where it stopped.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)  # run from a checkout: this worktree's package wins
from _common import speed_up_mkl_on_amd  # noqa: E402

speed_up_mkl_on_amd()

CONFIG_DIR = os.path.join(ROOT, "configs", "transfer")
BASELINE = "plain_finetune"
# Table order: cheapest to most elaborate; configs not named here follow in name order.
ORDER = ["linear_probe", "plain_finetune", "adam_weight_decay", "default_finetune", "l2sp_finetune", "ulmfit",
         "fastai_fine_tune"]
SWEEP_KEYS = ("label", "lr_key", "lr_grid", "epochs_key", "extra_epochs", "group")
# The sweep of each configs/transfer/<name>.yml: label (the table's), lr_key (the Strategy key the grid sets),
# lr_grid, epochs_key (the Strategy key that receives the run's epochs), extra_epochs (epochs the recipe adds on
# top), group (candidates of a group compete on dev; only the best goes into the table). The "chosen" comments
# are the sweep's results (results/transfer.csv, phase sweep); each config's Strategy holds its chosen LR.
SWEEPS = {
    "linear_probe": {"label": "linear probe", "lr_key": "base_lr", "epochs_key": "freeze_epochs",
                     "lr_grid": [1.0e-3, 3.0e-3, 1.0e-2]},
    # a first grid 1e-2, 3e-2, 1e-1 stayed at chance on dev (constant predictions)
    # chosen: 0.001, the best dev accuracy of the grid at 200 snippets, seed 0 (dev 0.001: 45.4 %, 0.003: 45.2 %,
    #   0.01: 43.8 %); test accuracy played no part
    "plain_finetune": {"label": "plain fine-tune (Adam)", "lr_key": "learning_rate",
                       "lr_grid": [1.0e-5, 3.0e-5, 1.0e-4]},
    # chosen: 3e-05 (dev 1e-05: 57.4 %, 3e-05: 66.0 %, 0.0001: 65.2 %)
    "adam_weight_decay": {"label": "AdamWeightDecay", "lr_key": "learning_rate",
                          "lr_grid": [3.0e-5, 1.0e-4, 3.0e-4]},
    # chosen: 0.0003 (dev 3e-05: 56.8 %, 0.0001: 67.0 %, 0.0003: 70.8 %)
    "default_finetune": {"label": "DefaultFinetune (L2)", "lr_key": "learning_rate",
                         "lr_grid": [1.0e-5, 3.0e-5, 1.0e-4]},
    # chosen: 3e-05 (dev 1e-05: 57.0 %, 3e-05: 67.2 %, 0.0001: 64.4 %)
    "l2sp_finetune": {"label": "L2SPFinetune", "lr_key": "learning_rate", "lr_grid": [1.0e-5, 3.0e-5, 1.0e-4]},
    # chosen: 3e-05 (dev 1e-05: 57.4 %, 3e-05: 66.0 %, 0.0001: 65.2 %)
    "ulmfit": {"label": "ULMFiT", "lr_key": "learning_rate",  # of block 0, the head
               "lr_grid": [1.5e-4, 5.0e-4, 1.5e-3]},
    # chosen: 0.0015 (dev 0.00015: 63.4 %, 0.0005: 68.0 %, 0.0015: 68.6 %)
    "fastai_fine_tune": {"label": "fastai fine_tune", "lr_key": "base_lr", "epochs_key": "epochs",
                         "extra_epochs": 1,  # the frozen epoch the recipe adds
                         "lr_grid": [6.0e-5, 2.0e-4, 6.0e-4]},
    # chosen: 0.0006 (dev 6e-05: 57.8 %, 0.0002: 58.0 %, 0.0006: 65.4 %)
    "combined_discriminative": {"label": "Combined (warmup+decay, discriminative, L2-SP)", "lr_key": "learning_rate",
                                "lr_grid": [6.0e-5, 2.0e-4, 6.0e-4], "group": "combined"},
    # not in the table: its best dev accuracy (6e-05: 56.8 %, 0.0002: 66.4 %, 0.0006: 70.4 %) lost to
    #   combined_l2sp_decay (70.8 %)
    "combined_l2sp_decay": {"label": "Combined (warmup+decay, L2-SP)", "lr_key": "learning_rate",
                            "lr_grid": [3.0e-5, 1.0e-4, 3.0e-4], "group": "combined"},
    # chosen: 0.0003 (dev 3e-05: 56.8 %, 0.0001: 67.0 %, 0.0003: 70.8 %)
}
# The run plan per training-set size, sized from measured speed: on the 2 shared CPU cores (other jobs running)
# a full fine-tuning step of 32 snippets took ~1 s, ~0.3 s with the encoder frozen, and a 1,000-snippet
# evaluation 8-15 s, so evaluations are few and the dev set is 500 snippets.
PLAN = {
    "full": {"sizes": {200: {"batch_size": 16, "epochs": 2, "eval_interval": None},
                       2000: {"batch_size": 32, "epochs": 1, "eval_interval": 32}},
             "seeds": [0, 1, 2], "sweep_size": 200, "max_len": 64, "dev_size": 500, "test_size": 1000},
    # 40 snippets in batches of 4: 10 steps, the fewest a 0.1 slanted-triangle / warmup fraction allows
    "quick": {"sizes": {40: {"batch_size": 4, "epochs": 1, "eval_interval": 5}},
              "seeds": [0, 1], "sweep_size": 40, "max_len": 16, "dev_size": 16, "test_size": 16,
              "grid": "middle"},  # one LR per config: the middle of its grid
}
SPLIT_SEED = 0
COLUMNS = ["phase", "strategy", "config", "train_size", "seed", "lr_key", "lr", "epochs", "batch_size",
           "eval_interval", "max_len", "dev_size", "test_size", "split_seed", "steps", "best_step", "dev_acc",
           "test_acc", "strategy_config"]
TIMING_COLUMNS = ["phase", "strategy", "train_size", "seed", "lr", "wall_s", "steps_per_s", "peak_rss_mb"]


# ------------------------------------------------------------------------------------------------ configs
def load_bench_config(path):
    """{name, path, label, lr_key, lr_grid, epochs_key, extra_epochs, group, strategy} of one configs/transfer/*.yml
    and its SWEEPS entry; the whole config is checked (tools/train.py's check) before anything trains."""
    from paddle_strategy._checks import check_keys, check_number, did_you_mean
    from paddle_strategy.config import load_config
    from paddle_strategy.program import check_config
    from paddle_strategy.strategies import build_strategy
    name = os.path.splitext(os.path.basename(path))[0]
    if name not in SWEEPS:
        raise ValueError(f"{path}: no entry {name!r} in SWEEPS (tools/bench_transfer.py) to give its label and LR "
                         f"grid.{did_you_mean(name, SWEEPS)}")
    sweep = dict(check_keys(f"SWEEPS[{name!r}]", SWEEPS[name], SWEEP_KEYS, required=("label", "lr_key", "lr_grid")))
    grid = [check_number(f"SWEEPS[{name!r}].lr_grid[{i}]", v, low=0, low_open=True)
            for i, v in enumerate(sweep["lr_grid"])]
    cfg = load_config(path)
    check_config(cfg)
    strategy = dict(cfg.get("Strategy") or {})
    lr_key, epochs_key = sweep["lr_key"], sweep.get("epochs_key")
    if strategy.get(lr_key) not in grid:
        raise ValueError(f"{path}: Strategy.{lr_key} must be the LR the sweep chose, one of the grid "
                         f"{grid} (SWEEPS[{name!r}].lr_grid), got {strategy.get(lr_key)!r}.")
    # the bench sets these per run; in the config they are the 200-snippet cell's (popped: the rest keeps its order)
    strategy.pop(lr_key)
    if epochs_key is not None:
        strategy.pop(epochs_key, None)
    extra = check_number("extra_epochs", sweep.get("extra_epochs", 0), low=0, integer=True)
    out = {"name": name, "path": os.path.relpath(path, ROOT), "label": str(sweep["label"]), "lr_key": lr_key,
           "lr_grid": grid, "epochs_key": epochs_key, "extra_epochs": extra, "group": sweep.get("group"),
           "strategy": strategy}
    build_strategy(strategy_section(out, grid[0], 1))  # an unknown argument fails here, not after an hour
    return out


def describe_section(section):
    """The exact configuration of a run as `Name(key=value, ...)`: its Strategy section as the run used it (the
    config's keys, the chosen LR, the epochs). Written from the section, not from the strategy's repr, so the
    CSV does not change when the library's defaults or reprs do."""
    return f"{section['name']}(" + ", ".join(f"{k}={v!r}" for k, v in section.items() if k != "name") + ")"


def strategy_section(cfg, lr, epochs):
    """The Strategy section of one run: the config's, with the LR and (when the recipe takes them) epochs."""
    s = dict(cfg["strategy"], **{cfg["lr_key"]: lr})
    if cfg["epochs_key"]:
        s[cfg["epochs_key"]] = epochs
    return s


def load_configs(only=None):
    configs = [load_bench_config(p) for p in sorted(glob.glob(os.path.join(CONFIG_DIR, "*.yml")))]
    configs.sort(key=lambda c: (ORDER.index(c["name"]) if c["name"] in ORDER else len(ORDER), c["name"]))
    names = [c["name"] for c in configs]
    if BASELINE not in names:
        raise ValueError(f"{CONFIG_DIR} has no {BASELINE}.yml, the baseline of the paired differences.")
    if only:
        from paddle_strategy._checks import did_you_mean
        for n in only:
            if n not in names:
                raise ValueError(f"--only: {n!r} is not a config in {CONFIG_DIR} (have {', '.join(names)})."
                                 f"{did_you_mean(n, names)}")
        configs = [c for c in configs if c["name"] in only]
    return configs


# ------------------------------------------------------------------------------------------------ one run
def run_one(spec):
    """Train one run in this process and return its result dict (spec: see Bench.spec)."""
    import resource
    import paddle
    import paddle_strategy as ps
    from paddle_strategy.strategies import build_strategy
    from paddle_strategy.data import Snippets, collate_padded, load_rotten_tomatoes
    from paddle_strategy.minilm import load_minilm
    start = time.time()
    train, dev, test = load_rotten_tomatoes(seed=spec["split_seed"], full=True)
    train, dev, test = train[:spec["train_size"]], dev[:spec["dev_size"]], test[:spec["test_size"]]
    paddle.seed(spec["seed"])  # the head's initialization: the same per seed for every strategy
    model, tokenizer = load_minilm(num_classes=2)
    train_ds, dev_ds, test_ds = (Snippets(tokenizer, part, spec["max_len"]) for part in (train, dev, test))
    strategy = build_strategy(spec["strategy_section"])
    run = ps.RunConfig(log_interval=10, eval_interval=spec["eval_interval"], use_cuda=False,
                       checkpoint_dir=spec["run_dir"], num_epoch=spec["num_epoch"], batch_size=spec["batch_size"],
                       strategy=strategy, seed=spec["seed"], keep_checkpoints=1)
    trainer = ps.Trainer(model, run, train_ds, dev_ds, loss_fn=paddle.nn.CrossEntropyLoss(), metrics=["acc"],
                         collate_fn=collate_padded, lengths=train_ds.lengths(), eval_batch_size=64)
    summary = trainer.finetune_and_eval()
    model.set_state_dict(ps.load_weights(os.path.join(spec["run_dir"], "best_model")))
    test_acc = trainer.eval(test_ds)["acc"]
    wall = time.time() - start
    return {"steps": summary["steps"], "best_step": summary["best"]["step"], "dev_acc": summary["best"]["value"],
            "test_acc": test_acc, "strategy_config": describe_section(spec["strategy_section"]), "wall_s": wall,
            "steps_per_s": summary["steps"] / wall,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# ------------------------------------------------------------------------------------------------ the bench
def _acc(x):
    return f"{x:.6f}"


class Bench:
    def __init__(self, out, plan, configs, sizes=None, seeds=None, log=print):
        self.out, self.plan, self.configs, self.log = out, plan, configs, log
        self.sizes = sorted(plan["sizes"]) if sizes is None else sizes
        self.seeds = plan["seeds"] if seeds is None else seeds
        for s in self.sizes:
            if s not in plan["sizes"]:
                raise ValueError(f"--sizes: {s} is not in the plan (allowed: {', '.join(map(str, plan['sizes']))}).")
        os.makedirs(out, exist_ok=True)
        self.csv_path = os.path.join(out, "transfer.csv")
        self.timing_path = os.path.join(out, "transfer_timing.csv")
        self.rows = self._read(self.csv_path)

    @staticmethod
    def _read(path):
        if not os.path.isfile(path):
            return []
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if rows and list(rows[0]) != COLUMNS:
            raise ValueError(f"{path} has columns {list(rows[0])}, not this bench's {COLUMNS}; use another --out.")
        return rows

    def spec(self, cfg, size, seed, lr, phase):
        p = self.plan["sizes"][size]
        return {"phase": phase, "strategy": cfg["name"], "config": cfg["path"], "train_size": size, "seed": seed,
                "lr_key": cfg["lr_key"], "lr": lr, "epochs": p["epochs"], "batch_size": p["batch_size"],
                "eval_interval": p["eval_interval"], "max_len": self.plan["max_len"],
                "dev_size": self.plan["dev_size"], "test_size": self.plan["test_size"], "split_seed": SPLIT_SEED,
                "num_epoch": p["epochs"] + cfg["extra_epochs"],
                "strategy_section": strategy_section(cfg, lr, p["epochs"])}

    @staticmethod
    def _key(row):
        return (row["strategy"], str(row["train_size"]), str(row["seed"]), repr(float(row["lr"])))

    def find(self, cfg, size, seed, lr):
        key = (cfg["name"], str(size), str(seed), repr(float(lr)))
        return next((r for r in self.rows if self._key(r) == key), None)

    def run(self, spec):
        """The row of `spec`: from transfer.csv when done already, else trained in a subprocess."""
        done = self.find({"name": spec["strategy"]}, spec["train_size"], spec["seed"], spec["lr"])
        if done is not None:
            return done
        self.log(f"[run] {spec['phase']} {spec['strategy']} size {spec['train_size']} seed {spec['seed']} "
                 f"{spec['lr_key']} {spec['lr']:g}")
        run_dir = tempfile.mkdtemp(prefix="bench_transfer_")
        try:
            spec = dict(spec, run_dir=os.path.join(run_dir, "ckpt"))
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--run-one", json.dumps(spec)],
                                  capture_output=True, text=True, cwd=ROOT)
            with open(os.path.join(self.out, "transfer_runs.log"), "a", encoding="utf-8") as f:
                f.write(f"=== {spec['strategy']} size {spec['train_size']} seed {spec['seed']} lr {spec['lr']:g}\n"
                        f"{proc.stdout}{proc.stderr}")
            result = next((json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines()
                           if line.startswith("RESULT ")), None)
            if proc.returncode or result is None:
                raise RuntimeError(f"run {spec['strategy']} size {spec['train_size']} seed {spec['seed']} failed "
                                   f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)  # MiniLM checkpoints are ~260 MB each
        row = {k: spec[k] for k in COLUMNS if k in spec}
        row.update(steps=result["steps"], best_step=result["best_step"], dev_acc=_acc(result["dev_acc"]),
                   test_acc=_acc(result["test_acc"]), strategy_config=result["strategy_config"],
                   eval_interval="" if spec["eval_interval"] is None else spec["eval_interval"], lr=repr(spec["lr"]))
        row = {k: str(row[k]) for k in COLUMNS}
        self.rows.append(row)
        self._append(self.csv_path, COLUMNS, row)
        timing = {k: row[k] for k in ("phase", "strategy", "train_size", "seed", "lr")}
        timing.update(wall_s=f"{result['wall_s']:.1f}", steps_per_s=f"{result['steps_per_s']:.3f}",
                      peak_rss_mb=f"{result['peak_rss_mb']:.0f}")
        self._append(self.timing_path, TIMING_COLUMNS, timing)
        self.log(f"      dev {row['dev_acc']} (step {row['best_step']}/{row['steps']}) test {row['test_acc']} "
                 f"{result['wall_s']:.0f} s {result['peak_rss_mb']:.0f} MB")
        return row

    @staticmethod
    def _append(path, columns, row):
        new = not os.path.isfile(path)
        with open(path, "a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, columns, lineterminator="\n")
            if new:
                w.writeheader()
            w.writerow(row)

    def grid(self, cfg):
        g = cfg["lr_grid"]
        return [g[len(g) // 2]] if self.plan.get("grid") == "middle" else g

    def choose(self):
        """({config name: chosen lr}, the sweep's rows) from the sweep (dev accuracy at sweep size, seed 0),
        the losing candidates of a group dropped. Test accuracy is never read here."""
        size = self.plan["sweep_size"]
        best, sweep = {}, []
        for cfg in self.configs:
            rows = [self.run(self.spec(cfg, size, 0, lr, "sweep")) for lr in self.grid(cfg)]
            sweep += rows
            # max dev accuracy; ties go to the smaller LR (the grid order does not matter)
            lr, acc = max(((float(r["lr"]), float(r["dev_acc"])) for r in rows), key=lambda t: (t[1], -t[0]))
            best[cfg["name"]] = (lr, acc)
        chosen = {}
        for cfg in self.configs:
            group = cfg["group"]
            rivals = [c for c in self.configs if group and c["group"] == group]
            if rivals and max(rivals, key=lambda c: (best[c["name"]][1], c["name"]))["name"] != cfg["name"]:
                self.log(f"[sweep] {cfg['name']}: dev {best[cfg['name']][1]:.4f}, loses in group {group}")
                continue
            chosen[cfg["name"]] = best[cfg["name"]][0]
            self.log(f"[sweep] {cfg['name']}: {cfg['lr_key']} {best[cfg['name']][0]:g} "
                     f"(dev {best[cfg['name']][1]:.4f})")
        return chosen, sweep

    def table_rows(self, chosen):
        by_name = {c["name"]: c for c in self.configs}
        for seed in self.seeds:  # seed-major: a cut-short bench still has whole seeds
            for size in self.sizes:
                for name, lr in chosen.items():
                    yield self.run(self.spec(by_name[name], size, seed, lr, "table"))

    def go(self):
        """Sweep, then the table; rewrites transfer.csv in plan order (sweep, then table runs, then rows of
        other plans kept from earlier), so a resumed bench writes the same bytes as an uninterrupted one."""
        chosen, sweep = self.choose()
        table = list(self.table_rows(chosen))
        ordered = sweep + [r for r in table if r["phase"] == "table"]
        ordered += [r for r in self.rows if not any(r is o for o in ordered)]
        with open(self.csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows(ordered)
        return chosen, table


# ------------------------------------------------------------------------------------------------ report
def summarize(rows, configs, chosen, sizes, seeds):
    """{(name, size): {"dev": (mean, sd), "test": (mean, sd), "diff": (mean, sd) | None, "n": n}}: sd over
    seeds (sample sd, n - 1); diff = test accuracy minus the baseline's at the same seed, then mean and sd."""
    acc = {}
    for r in rows:
        if r["strategy"] in chosen and float(r["lr"]) == chosen[r["strategy"]]:
            acc[(r["strategy"], int(r["train_size"]), int(r["seed"]))] = (float(r["dev_acc"]), float(r["test_acc"]))
    out = {}
    for name in chosen:
        for size in sizes:
            have = [s for s in seeds if (name, size, s) in acc]
            if not have:
                continue
            dev = [acc[(name, size, s)][0] for s in have]
            test = [acc[(name, size, s)][1] for s in have]
            paired = [acc[(name, size, s)][1] - acc[(BASELINE, size, s)][1] for s in have
                      if (BASELINE, size, s) in acc]
            out[(name, size)] = {"dev": _mean_sd(dev), "test": _mean_sd(test), "n": len(have),
                                 "diff": _mean_sd(paired) if paired and name != BASELINE else None}
    return out


def _mean_sd(xs):
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else float("nan"))


def _pct(m_sd, sign=False):
    m, sd = m_sd
    return f"{100 * m:+.1f} ± {100 * sd:.1f}" if sign else f"{100 * m:.1f} ± {100 * sd:.1f}"


def markdown(summary, configs, chosen, sizes, plan, command):
    labels = {c["name"]: c for c in configs}
    head = ["strategy (config)", "LR"]
    for size in sizes:
        head += [f"dev % ({size})", f"test % ({size})", f"Δ test vs plain ({size})"]
    lines = [f"`{command}`", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, lr in chosen.items():
        c = labels[name]
        cells = [f"{c['label']} (`{os.path.basename(c['path'])}`)", f"{lr:g}"]
        for size in sizes:
            s = summary.get((name, size))
            if s is None:
                cells += ["–"] * 3
                continue
            n = "" if s["n"] == len(plan["seeds"]) else f" (n={s['n']})"
            cells += [_pct(s["dev"]) + n, _pct(s["test"]) + n, "baseline" if name == BASELINE else
                      ("–" if s["diff"] is None else _pct(s["diff"], sign=True))]
        lines.append("| " + " | ".join(cells) + " |")
    runs = ", ".join(f"{size} snippets: {p['epochs']} epoch(s), batch {p['batch_size']}, dev evaluation "
                     + (f"every {p['eval_interval']} steps and " if p["eval_interval"] else "")
                     + "at each epoch end" for size, p in plan["sizes"].items() if size in sizes)
    lines += ["", f"Mean ± sd over seeds {', '.join(map(str, plan['seeds']))} (accuracy in %, best dev checkpoint; "
              f"Δ: paired difference of test accuracy to plain fine-tuning at the same seed: same data order and "
              f"head initialization). Dev {plan['dev_size']} / test {plan['test_size']} snippets, max_len "
              f"{plan['max_len']}; {runs}. LR: best dev accuracy of each config's lr_grid at "
              f"{plan['sweep_size']} snippets, seed 0."]
    return "\n".join(lines) + "\n"


def chart(summary, configs, chosen, sizes, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = {c["name"]: c["label"] for c in configs}
    names = list(chosen)
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / len(sizes)
    for k, size in enumerate(sizes):
        xs = [i + (k - (len(sizes) - 1) / 2) * width for i in range(len(names))]
        means = [100 * summary[(n, size)]["test"][0] if (n, size) in summary else float("nan") for n in names]
        sds = [100 * summary[(n, size)]["test"][1] if (n, size) in summary else 0.0 for n in names]
        ax.bar(xs, means, width, yerr=[0 if sd != sd else sd for sd in sds], capsize=3, label=f"{size} snippets")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([labels[n] for n in names], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy % (mean ± sd over seeds)")
    lo = min((100 * v["test"][0] for v in summary.values()), default=50)
    ax.set_ylim(max(0, lo - 8), None)
    ax.set_title("all-MiniLM-L6-v2 on Rotten Tomatoes: fine-tuning strategies")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "results"), help="where the files go (default results/)")
    p.add_argument("--quick", action="store_true", help="a tiny version (16 / 24 snippets, max_len 16) for tests")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these configs (names in configs/transfer/)")
    p.add_argument("--sizes", nargs="+", type=int, help="only these training-set sizes of the plan")
    p.add_argument("--seeds", nargs="+", type=int, help="only these seeds (the sweep always runs at seed 0)")
    p.add_argument("--run-one", help=argparse.SUPPRESS)  # internal: one run, as a subprocess
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.run_one:
        result = run_one(json.loads(args.run_one))
        print("RESULT " + json.dumps(result))
        return result
    plan = PLAN["quick" if args.quick else "full"]
    configs = load_configs(args.only)
    if args.only and BASELINE not in args.only:
        print(f"note: {BASELINE} is not among --only, so the table has no paired differences")
    start = time.time()
    log_path = os.path.join(args.out, "transfer_progress.log")
    os.makedirs(args.out, exist_ok=True)

    def log(text):
        line = f"{time.strftime('%H:%M:%S')} {text}"
        print(line, flush=True)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    bench = Bench(args.out, plan, configs, args.sizes, args.seeds, log)
    chosen, rows = bench.go()
    summary = summarize(bench.rows, configs, chosen, bench.sizes, bench.seeds)
    command = "python tools/bench_transfer.py" + (" --quick" if args.quick else "")
    with open(os.path.join(args.out, "transfer.md"), "w", encoding="utf-8") as f:
        f.write(markdown(summary, configs, chosen, bench.sizes, plan, command))
    chart(summary, configs, chosen, bench.sizes, os.path.join(args.out, "transfer.png"))
    log(f"[done] {len(rows)} table runs in {time.time() - start:.0f} s; {args.out}/transfer.md")
    return summary


if __name__ == "__main__":
    main()
