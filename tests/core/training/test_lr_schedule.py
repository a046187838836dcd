"""The LR preview before launch equals the learning rate the Trainer's scheduler actually sets."""
import math

import pytest
import torch
from transformers import get_scheduler

from core.training.curves import lr_schedule


@pytest.mark.parametrize("name", ["linear", "cosine", "constant", "constant_with_warmup"])
@pytest.mark.parametrize("total,warmup", [(30, 0.05), (7, 0.0), (500, 20), (1, 0.1)])
def test_preview_matches_a_stepped_scheduler(name, total, warmup):
    steps, lrs = lr_schedule(name, 3e-3, warmup, total)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
    warm = int(warmup) if warmup >= 1 else math.ceil(warmup * total)
    sched = get_scheduler(name, opt, num_warmup_steps=warm, num_training_steps=total)
    actual = []
    for _ in range(total):
        actual.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert steps[0] == 1 and steps[-1] == total  # the whole run, first step to last
    assert steps == sorted(set(steps))
    for s, lr in zip(steps, lrs, strict=True):
        assert lr == pytest.approx(actual[s - 1], rel=1e-9, abs=1e-15), (s, lr, actual[s - 1])


def test_long_runs_are_sampled_without_stepping_through_them():
    steps, lrs = lr_schedule("cosine", 1e-3, 0.1, 10**7)
    assert len(steps) <= 201 and steps[-1] == 10**7
    assert max(lrs) == pytest.approx(1e-3, rel=1e-6)


@pytest.mark.parametrize("name", ["step", "exponential", "one_cycle"])
@pytest.mark.parametrize("total", [2, 9, 100, 1001])
def test_torch_schedules_closed_form_equals_the_stepped_torch_scheduler(name, total):
    from core.training.schedules import make, multiplier

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2e-3)
    sched = make(name, opt, total)
    f = multiplier(name, total)
    for s in range(total):
        assert 2e-3 * f(s) == pytest.approx(sched.get_last_lr()[0], rel=1e-9, abs=1e-15), (name, s)
        opt.step()
        sched.step()
    steps, lrs = lr_schedule(name, 2e-3, 0.3, total)  # warm-up does not apply to torch's schedules
    assert steps[-1] == total and lrs[0] == pytest.approx(2e-3 * f(0))


def test_a_run_with_one_cycle_logs_the_learning_rate_the_preview_showed(tmp_path):
    from core.scratch import default_architecture
    from core.settings import Settings
    from core.training import JobManager, TrainingConfig
    from core.training.schedules import multiplier

    jobs = JobManager(settings=Settings(workspace=tmp_path))
    try:
        cfg = TrainingConfig(task="scratch", model="scratch:mlp", architecture=default_architecture("mlp"),
                             dataset="sklearn:iris", max_steps=12, batch_size=16, learning_rate=1e-2,
                             scheduler="one_cycle", group_by_length=False, eval_steps=6)
        run_id = jobs.submit(cfg)
        assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
        logged = {m["step"]: m["learning_rate"] for m in jobs.store.metrics(run_id, "train") if "learning_rate" in m}
        f = multiplier("one_cycle", 12)
        # step k (1-based) logs the rate its optimizer step used: the preview's lr at step k, f(k - 1)
        for step, lr in logged.items():
            assert lr == pytest.approx(1e-2 * f(step - 1), rel=1e-6), (step, lr)
        assert len(logged) >= 10
    finally:
        jobs.shutdown()
