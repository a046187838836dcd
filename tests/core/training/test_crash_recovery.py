"""A server killed in the middle of writing a checkpoint: the run must resume from the last whole one.

The Trainer creates `checkpoint-N/` first and writes `trainer_state.json` last, so a kill -9 during a
save leaves a folder without weights or state. The browser test (tests/e2e/test_hardening.py) met this
for real; here the same state is built on purpose, so the outcome does not depend on timing.
"""
from __future__ import annotations

import time

import pytest
from transformers import TrainerCallback

from core.settings import Settings
from core.training import JobManager, TrainingConfig
from core.training.jobs import ThreadRunner
from core.training.runner import latest_checkpoint
from tests.core.training.training_fixtures import tiny_dataset, tiny_model

pytestmark = pytest.mark.slow


class Slow(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        time.sleep(0.1)


@pytest.fixture
def interrupted_mid_save(tmp_path):
    """A run stopped after a whole checkpoint, then a half-written later checkpoint and 'interrupted'."""
    settings = Settings(workspace=tmp_path / "ws")
    tiny_dataset(settings)
    model = tiny_model(tmp_path / "model")
    jobs = JobManager(settings=settings, runner=ThreadRunner(lambda run_id: [Slow()]))
    run_id = jobs.submit(TrainingConfig(model=str(model), dataset="tiny", max_length=32, batch_size=8,
                                        max_steps=12, warmup=0, eval_steps=4, save_steps=4))
    deadline = time.monotonic() + 120
    while len(jobs.store.metrics(run_id, "train")) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    jobs.stop(run_id)
    assert jobs.wait(run_id, 120) == "stopped"
    ckpts = settings.checkpoints_dir / run_id / "checkpoints"
    whole = latest_checkpoint(ckpts)
    assert (whole / "trainer_state.json").is_file()
    # what a kill leaves when it lands after the folder and config were written, before the weights
    torn = ckpts / f"checkpoint-{int(whole.name.split('-')[1]) + 1}"
    torn.mkdir()
    (torn / "config.json").write_text((whole / "config.json").read_text())
    jobs.store.set_status(run_id, "interrupted", "the server stopped while this run was running")
    yield jobs, run_id, int(whole.name.split("-")[1])
    jobs.shutdown()


def test_resume_skips_a_half_written_checkpoint(interrupted_mid_save):
    jobs, run_id, whole_step = interrupted_mid_save
    jobs.resume(run_id)
    final = jobs.wait(run_id, 180)
    assert final == "completed", jobs.store.get(run_id).message
    assert [m["step"] for m in jobs.store.metrics(run_id, "train")] == list(range(1, 13))


def test_the_whole_checkpoint_before_the_torn_one_is_intact(interrupted_mid_save):
    """The state the fix needs is there: the last whole checkpoint has weights, optimizer and state."""
    jobs, run_id, whole_step = interrupted_mid_save
    folder = jobs.settings.checkpoints_dir / run_id / "checkpoints" / f"checkpoint-{whole_step}"
    for name in ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt"):
        assert (folder / name).is_file(), name
    assert jobs.status(run_id) == "interrupted"
