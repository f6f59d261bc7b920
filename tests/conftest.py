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
