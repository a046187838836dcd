"""Soak: many short jobs one after another through one JobManager leave memory and threads as they found them.

The jobs mix the three ways a run ends (completed, stopped by the user, failed mid-step), because a
leak hides most often on the error path. Released means: no model or Trainer object left alive, worker
threads back to their count, resident memory flat (and CUDA memory back to baseline where there is a GPU).
"""
from __future__ import annotations

import gc
import os
import threading
import time

import pytest
from transformers import TrainerCallback

from core.settings import Settings
from core.training import JobManager, TrainingConfig
from core.training.jobs import ThreadRunner
from tests.core.training.training_fixtures import tiny_dataset, tiny_model

pytestmark = pytest.mark.slow

JOBS = int(os.environ.get("TORCHLAB_SOAK_JOBS", "15"))
# A leaked tiny model with its AdamW state is ~13 MB (1.0 M params x 4 bytes x 3); a leaked Trainer holds
# that plus its datasets. Between the 5th job and the last, RSS may drift by allocator noise, not by that:
# 2 MB per job is under a sixth of one leaked model per job.
MB_PER_JOB = 2.0
MODEL_KINDS = ("Trainer", "PreTrainedModel", "BertForSequenceClassification")


class Fail(TrainerCallback):
    """An exception in the middle of a step: the failure path must release what it loaded too."""

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 2:
            raise RuntimeError("injected failure")


class Slow(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        time.sleep(0.05)


def rss_mb() -> float:
    """Resident memory after a collection, with glibc's free lists handed back (so fragmentation is not a leak)."""
    import ctypes
    import ctypes.util

    import psutil

    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc and hasattr(ctypes.CDLL(libc), "malloc_trim"):
        ctypes.CDLL(libc).malloc_trim(0)
    return psutil.Process().memory_info().rss / 2**20


def alive(kind_names: tuple[str, ...]) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ in kind_names or
               any(c.__name__ in kind_names for c in type(o).__mro__[1:3]))


def test_many_short_jobs_release_models_threads_and_memory(tmp_path):
    import torch

    settings = Settings(workspace=tmp_path / "ws")
    model = tiny_model(tmp_path / "tiny-model")
    tiny_dataset(settings)
    plan = {i: "fail" if i % 5 == 3 else "stop" if i % 5 == 4 else "complete" for i in range(JOBS)}
    threads_before = threading.active_count()
    # other tests in this process may still hold models (module fixtures, Streamlit's cache): count ours only
    models_before = alive(MODEL_KINDS)
    jobs = JobManager(settings=settings, runner=ThreadRunner(
        lambda run_id: [Fail()] if jobs.store.get(run_id).name.startswith("fail") else [Slow()]))
    threads_with_workers = threading.active_count()
    cuda = torch.cuda.is_available()
    rss, ends = [], []
    try:
        for i in range(JOBS):
            what = plan[i]
            cfg = TrainingConfig(model=str(model), dataset="tiny", max_length=32, batch_size=8, max_steps=4,
                                 warmup=0, eval_steps=100, save_steps=100, name=f"{what}-{i}")
            run_id = jobs.submit(cfg)
            if what == "stop":
                deadline = time.monotonic() + 120
                while not jobs.store.metrics(run_id, "train") and time.monotonic() < deadline:
                    time.sleep(0.05)
                jobs.stop(run_id)
            ends.append(jobs.wait(run_id, 300))
            jobs.delete(run_id)  # a soak that kept every checkpoint would measure the disk, not leaks
            if i == 0:
                gpu_base = torch.cuda.memory_allocated() if cuda else 0
            rss.append(rss_mb())
        assert ends == [{"complete": "completed", "stop": "stopped", "fail": "failed"}[plan[i]]
                        for i in range(JOBS)]
        # released: nothing of any run is alive once its job has ended
        assert alive(MODEL_KINDS) == models_before
        assert threading.active_count() == threads_with_workers, [t.name for t in threading.enumerate()]
        warm = min(4, JOBS - 2)  # the first jobs import and cache (tokenizer, kernels, allocator pools)
        slope = (rss[-1] - rss[warm]) / (JOBS - 1 - warm)
        print(f"\nsoak: {JOBS} jobs ({ends.count('completed')} completed, {ends.count('stopped')} stopped, "
              f"{ends.count('failed')} failed); RSS after job 1 {rss[0]:.0f} MB, after job {warm + 1} "
              f"{rss[warm]:.0f} MB, after job {JOBS} {rss[-1]:.0f} MB ({slope:+.2f} MB/job); "
              f"threads {threads_before} -> {threads_with_workers} with workers")
        assert slope < MB_PER_JOB, rss
        if cuda:
            assert torch.cuda.memory_allocated() <= gpu_base + 2**20
    finally:
        jobs.shutdown()
    deadline = time.monotonic() + 10
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == threads_before, [t.name for t in threading.enumerate()]
