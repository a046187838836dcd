"""Plain-data views of a run's metrics for the live page: curves, smoothing, progress, overfitting."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass


def ema(values: list[float], weight: float = 0.8) -> list[float]:
    """TensorBoard-style exponential smoothing with bias correction (debiased like Adam)."""
    out, last, num = [], 0.0, 0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(float("nan"))
            continue
        last = last * weight + (1 - weight) * v
        num += 1
        out.append(last / (1 - weight**num))
    return out


@dataclass
class Progress:
    """Where a run is: steps done of total, elapsed and an estimate of the time left."""

    step: int
    total: int
    elapsed_s: float
    remaining_s: float | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


def progress(train_rows: list[dict], total_steps: int | None, started: float | None,
             finished: float | None = None, before_s: float = 0.0, now: float | None = None) -> Progress:
    """Steps done, training time across resumes (`before_s` + this segment) and time left.

    The rate comes from the current segment's recent steps only (rows logged since `started`):
    the gap of a stop and resume, or a slow first step, never enters the estimate.
    """
    step = train_rows[-1]["step"] if train_rows else 0
    end = finished or now or time.time()
    elapsed = before_s + (max(0.0, end - started) if started and not finished else 0.0)
    remaining = None
    segment = [r for r in train_rows[-40:] if not started or r["time"] >= started]
    if total_steps and len(segment) >= 2:
        window = segment[-20:]
        dt = window[-1]["time"] - window[0]["time"]
        ds = window[-1]["step"] - window[0]["step"]
        if ds > 0 and dt > 0:
            remaining = max(0.0, (total_steps - step) * dt / ds)
    return Progress(step, total_steps or 0, elapsed, remaining if not finished else 0.0)


def downsample(xs, ys, buckets: int = 2000) -> tuple[list, list]:
    """At most ~2 * `buckets` points that keep every bucket's min and max (spikes survive).

    Plotly draws every point it is sent; at 100,000 steps that is megabytes a refresh. Min/max
    per bucket keeps the envelope of a noisy loss exactly (what LTTB approximates), in order, and
    only real points. Written here because it is a few lines of numpy; no dependency does it.
    """
    ix = downsample_index(len(xs), ys, buckets)
    return [xs[i] for i in ix], [ys[i] for i in ix]


def downsample_index(n: int, ys, buckets: int = 2000):
    """Indices (ascending) of each bucket's min and max of `ys`; every index when n <= 2 * buckets."""
    import numpy as np

    if n <= 2 * buckets:
        return np.arange(n)
    size = -(-n // buckets)  # equal buckets of `size` points; the last one is padded with NaN
    y = np.full(size * buckets, np.nan)
    y[:n] = np.asarray(ys, dtype=np.float64)[:n]
    grid = y.reshape(buckets, size)
    nan = np.isnan(grid)
    lo = np.where(nan, np.inf, grid).argmin(axis=1)
    hi = np.where(nan, -np.inf, grid).argmax(axis=1)
    base = np.arange(buckets) * size
    all_nan = nan.all(axis=1)  # a bucket of NaNs keeps its first point, so the gap shows
    lo[all_nan] = hi[all_nan] = 0
    keep = np.concatenate([base + lo, base + hi])
    return np.unique(keep[keep < n])


def ema_array(values, weight: float = 0.8):
    """`ema` for a numpy array, in C (scipy's lfilter) when there is no NaN; the same numbers."""
    import numpy as np

    y = np.asarray(values, dtype=np.float64)
    if y.size == 0 or not np.isfinite(y).all():
        return np.asarray(ema(list(y), weight))
    from scipy.signal import lfilter

    raw = lfilter([1 - weight], [1, -weight], y)
    return raw / (1 - weight ** np.arange(1, y.size + 1))


def overfitting(train_rows: list[dict], eval_rows: list[dict], evals: int = 3) -> str | None:
    """A warning when eval loss rose over the last `evals` evaluations while training loss fell."""
    ev = [r for r in eval_rows if isinstance(r.get("eval_loss"), (int, float))]
    if len(ev) < evals:
        return None
    last = ev[-evals:]
    rising = all(b["eval_loss"] > a["eval_loss"] for a, b in zip(last, last[1:], strict=False))
    if not rising:
        return None
    start, end = last[0]["step"], last[-1]["step"]
    tl = [r["loss"] for r in train_rows if start <= r["step"] <= end and isinstance(r.get("loss"), (int, float))]
    if len(tl) >= 2 and sum(tl[len(tl) // 2:]) / len(tl[len(tl) // 2:]) < sum(tl[:len(tl) // 2]) / len(tl[:len(tl) // 2]):
        return (f"Evaluation loss rose from {last[0]['eval_loss']:.3f} to {last[-1]['eval_loss']:.3f} between "
                f"steps {start} and {end} while training loss kept falling: the model is starting to overfit. "
                "Early stopping, fewer epochs or more weight decay would help.")
    return None


def config_diff(configs: dict[str, dict]) -> list[dict]:
    """Rows of the config fields whose values differ between runs (run id -> config)."""
    keys = sorted({k for c in configs.values() for k in c})
    rows = []
    for k in keys:
        vals = {rid: c.get(k) for rid, c in configs.items()}
        if len({repr(v) for v in vals.values()}) > 1:
            rows.append({"field": k, **{rid: repr(v) for rid, v in vals.items()}})
    return rows


def lr_schedule(scheduler: str, learning_rate: float, warmup: float, total_steps: int,
                points: int = 200) -> tuple[list[int], list[float]]:
    """The learning rate at each step, from transformers' own scheduler (the one the Trainer builds), so
    the preview before launch is the curve the run follows. At most `points` steps are sampled."""
    import torch
    from transformers import get_scheduler

    total = max(1, int(total_steps))
    warm = int(warmup) if warmup >= 1 else math.ceil(warmup * total)
    from core.training.schedules import TORCH_SCHEDULES, multiplier

    if scheduler in TORCH_SCHEDULES:
        factor, warm = multiplier(scheduler, total), 0
    else:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=learning_rate)
        sched = get_scheduler(scheduler, opt, num_warmup_steps=warm, num_training_steps=total)
        # every Hugging Face schedule offered is a LambdaLR: its multiplier at any step, without stepping there
        factor = sched.lr_lambdas[0]
    n = min(points, total)
    steps = sorted({round(i * (total - 1) / max(1, n - 1)) for i in range(n)} | {min(warm, total - 1)})
    return [s + 1 for s in steps], [learning_rate * float(factor(s)) for s in steps]


# the one number that says how a run of each task did, and what an untrained guess scores on it:
# (label, final-metrics key, baseline key, format)
HEADLINES = {
    "text-classification": ("accuracy", "accuracy", "majority_baseline", "{:.1%}"),
    "token-classification": ("entity F1", "f1", "all_o_f1", "{:.3f}"),
    "question-answering": ("F1 (SQuAD, %)", "f1", "baseline_f1", "{:.1f}"),
    "causal-lm": ("perplexity", "perplexity", "perplexity_before", "{:,.1f}"),
    "seq2seq": ("ROUGE-L", "rougeL", "lead_rougeL", "{:.3f}"),
}
# a from-scratch run's headline follows what its network reports
SCRATCH_HEADLINES = (("accuracy", "accuracy", "majority_baseline", "{:.1%}"),
                     ("token accuracy", "token_accuracy", None, "{:.1%}"),
                     ("perplexity", "perplexity", "bigram_perplexity", "{:,.1f}"))


def headline(task: str, final: dict) -> tuple[str, str, str]:
    """(label, value, baseline) of a run's headline metric as text, '—' where it has none yet."""
    options = (HEADLINES[task],) if task in HEADLINES else SCRATCH_HEADLINES
    label, key, base, fmt = next((h for h in options if h[1] in final), options[0])

    def show(k):
        v = final.get(k) if k else None
        return fmt.format(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else "—"

    return label, show(key), show(base)
