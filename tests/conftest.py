"""Fixtures shared by the test modules."""
import pytest

from helpers import final_params, run_trainer_worker


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory):
    """The final parameters of tests/trainer_worker.py run without interruption (the resume tests' reference)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    r = run_trainer_worker(out)
    assert r.returncode == 0, r.stderr[-2000:]
    return final_params(out)


# --------------------------------------------------------------------------------- PS_REQUIRE_EXTRAS (.ci/run)
# .ci/run installs everything the README installs, so there a test skipped because a package is missing means
# the check or the install is wrong, and the test silently never runs. With PS_REQUIRE_EXTRAS=1 such skips fail
# the session (exit status 1) and are listed by name; other skips (no GPU, no mount namespace, ...) stay skips.
# A reason counts as "package missing" when it says so: helpers.needs's "optional package(s) not installed",
# the other tests' "... not installed" markers, and pytest.importorskip's "could not import ...".
import os  # noqa: E402
import re  # noqa: E402

MISSING_PACKAGE = re.compile(r"not installed|could not import", re.IGNORECASE)
_missing_package_skips = []


def _require_extras():
    return os.environ.get("PS_REQUIRE_EXTRAS") == "1"


def _note_skip(report):
    if not _require_extras() or not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if MISSING_PACKAGE.search(reason):
        _missing_package_skips.append((report.nodeid, reason))


def pytest_runtest_logreport(report):
    _note_skip(report)


def pytest_collectreport(report):
    _note_skip(report)  # a module-level importorskip skips the whole module at collection


def pytest_sessionfinish(session, exitstatus):
    if session.config.option.collectonly:  # nothing was meant to run (test_packaging collects without the extras)
        _missing_package_skips.clear()
    if _missing_package_skips and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if not _missing_package_skips:
        return
    terminalreporter.section("PS_REQUIRE_EXTRAS=1: tests skipped for a missing package (failing)", red=True)
    for nodeid, reason in _missing_package_skips:
        terminalreporter.line(f"{nodeid}: {reason}", red=True)
