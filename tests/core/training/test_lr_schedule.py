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
