"""The figures the Fine-tuning page draws keep their size flat however long the run (#14)."""
import math

import numpy as np

from components.training_views import MAX_POINTS, compare_figure, live_figure
from core.training.curves import ema


def _run(n: int, spike_at: int):
    train = [{"step": s, "loss": 2.0 / math.sqrt(s) + (9.0 if s == spike_at else 0.0)} for s in range(1, n + 1)]
    evals = [{"step": s, "eval_loss": 1.0 / math.sqrt(s)} for s in range(500, n + 1, 500)]
    return train, evals


def test_compare_of_a_100k_step_run_is_bucketed_and_keeps_the_peak():
    train, evals = _run(100_000, spike_at=77_777)
    fig = compare_figure({"long": (train, evals), "short": _run(40, spike_at=3)})
    long_train = next(t for t in fig.data if t.name == "long train")
    assert 500 < len(long_train.x) <= 2 * MAX_POINTS
    smooth = ema([r["loss"] for r in train])
    assert np.isclose(float(np.max(long_train.y)), max(smooth), rtol=1e-6)  # the spike's smoothed peak stays
    peak_step = int(long_train.x[int(np.argmax(long_train.y))])
    assert peak_step == 1 + int(np.argmax(smooth))
    short_train = next(t for t in fig.data if t.name == "short train")
    assert list(short_train.x) == list(range(1, 41))  # short runs keep every step
    assert len(fig.to_json()) < 300_000  # what the browser receives, vs ~2.5 MB when every point was sent


def test_live_figure_of_a_100k_step_run_is_bucketed():
    train, evals = _run(100_000, spike_at=12_345)
    fig = live_figure(train, evals)
    raw = next(t for t in fig.data if t.name == "train loss")
    assert len(raw.x) <= 2 * MAX_POINTS
    assert float(np.max(raw.y)) == np.float32(max(r["loss"] for r in train))
