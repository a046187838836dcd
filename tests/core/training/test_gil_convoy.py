"""Training threads share the GIL with the server's page scripts (#14): the job manager lowers the interpreter's
switch interval so a training step is not kept waiting 5 ms for every torch op while a page script runs."""
import sys

import pytest

from core.training import JobManager
from core.training.jobs import SWITCH_INTERVAL_S


@pytest.fixture
def restore_interval():
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_a_job_manager_lowers_the_switch_interval_and_never_raises_a_lower_one(tmp_path, restore_interval):
    sys.setswitchinterval(0.005)  # Python's default
    JobManager(workspace=tmp_path / "a", concurrency=1).shutdown()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    sys.setswitchinterval(0.0001)  # a host's own, lower choice stays
    JobManager(workspace=tmp_path / "b", concurrency=1).shutdown()
    assert sys.getswitchinterval() == pytest.approx(0.0001)

