"""Plotly figures and small panels for the fine-tuning page (no model logic here)."""
from __future__ import annotations

from array import array

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.training.curves import downsample_index, ema, ema_array

COLORS = ["#ee4c2c", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


MAX_POINTS = 1000  # buckets per trace: min and max of each are drawn (<= 2,000 points per trace)
SIDE_POINTS = 300  # buckets for the small panels (learning rate, grad norm, throughput)


def _xy(rows: list[dict], key: str, x_range: tuple[int, int] | None = None) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))
           and (x_range is None or x_range[0] <= r["step"] <= x_range[1])]
    return [p[0] for p in pts], [p[1] for p in pts]


def _rows_series(train: list[dict], evals: list[dict]):
    return lambda kind, key: _xy(train if kind == "train" else evals, key)


def _window(xs, ys, x_range):
    """numpy arrays of the points inside `x_range` (steps are ascending: two binary searches)."""
    x = np.frombuffer(xs, dtype=np.int64) if isinstance(xs, array) else np.asarray(xs, dtype=np.int64)
    y = np.frombuffer(ys, dtype=np.float64) if isinstance(ys, array) else np.asarray(ys, dtype=np.float64)
    if x_range is not None and x.size:
        lo, hi = np.searchsorted(x, x_range[0], "left"), np.searchsorted(x, x_range[1], "right")
        x, y = x[lo:hi], y[lo:hi]
    return x, y


def _scatter(x, y, buckets: int = MAX_POINTS, **kwargs) -> go.Scatter:
    # float32 numpy arrays: plotly sends them base64-packed, ~4x smaller than JSON number lists
    ix = downsample_index(len(x), y, buckets)
    return go.Scatter(x=np.asarray(x)[ix].astype(np.int32), y=np.asarray(y)[ix].astype(np.float32), **kwargs)


def live_figure(train: list[dict], evals: list[dict], smoothing: float = 0.8, resumes: list[dict] = (),
                x_range: tuple[int, int] | None = None, series=None) -> go.Figure:
    """Loss (raw, smoothed, eval) on top; learning rate, grad norm, throughput and GPU memory below.

    Long runs are drawn from at most MAX_POINTS buckets per trace (min and max of each, so spikes
    stay); a narrower `x_range` shows its steps at full resolution. Resume points are marked.
    `series(kind, key) -> (steps, values)` (a MetricsFollower's) saves a pass over every row.
    """
    series = series or _rows_series(train, evals)
    fig = make_subplots(rows=2, cols=3, specs=[[{"colspan": 3}, None, None], [{}, {}, {}]],
                        row_heights=[0.62, 0.38], vertical_spacing=0.12,
                        subplot_titles=("loss", "learning rate", "grad norm", "throughput (samples/s)"))
    xs, ys = series("train", "loss")
    smooth = ema_array(ys, smoothing)  # over every step, then cut to the range shown
    x, y = _window(xs, ys, x_range)
    _, sm = _window(xs, smooth, x_range)
    dense = len(x) > 20
    fig.add_trace(_scatter(x, y, name="train loss", mode="lines", line=dict(color=COLORS[0], width=1),
                           opacity=0.35), 1, 1)
    fig.add_trace(_scatter(x, sm, name=f"train loss (EMA {smoothing})", mode="lines" if dense else "lines+markers",
                           line=dict(color=COLORS[0], width=2.5)), 1, 1)
    ex, ey = _window(*series("eval", "eval_loss"), x_range)
    fig.add_trace(_scatter(ex, ey, name="eval loss", mode="lines+markers", line=dict(color=COLORS[1], width=2)),
                  1, 1)
    for col, key, color in ((1, "learning_rate", COLORS[2]), (2, "grad_norm", COLORS[3]),
                            (3, "samples_per_s", COLORS[4])):
        kx, ky = _window(*series("train", key), x_range)
        fig.add_trace(_scatter(kx, ky, SIDE_POINTS, mode="lines" if len(kx) > 20 else "lines+markers",
                               line=dict(color=color), showlegend=False, name=key), 2, col)
    gx, gy = _window(*series("train", "gpu_mem_allocated_mb"), x_range)
    if gx.size:
        fig.add_trace(_scatter(gx, gy, SIDE_POINTS, mode="lines", name="GPU MiB allocated",
                               line=dict(color=COLORS[5], dash="dot")), 2, 3)
    for r in resumes:
        if x_range is None or x_range[0] <= r["step"] <= x_range[1]:
            what = ", ".join(r.get("restored") or []) or "nothing: started over"
            fig.add_vline(x=r["step"], line=dict(color="#888", dash="dash", width=1), row=1, col=1,
                          annotation_text=f"resumed at {r['step']} ({what})", annotation_position="top left",
                          annotation_font_size=10)
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.04),
                      uirevision="live")  # keep zoom while points arrive
    fig.update_xaxes(title_text="step", row=2)
    return fig


def compare_figure(curves: dict[str, tuple[list[dict], list[dict]]], smoothing: float = 0.8) -> go.Figure:
    """Smoothed train loss (solid) and eval loss (dashed) of several runs overlaid."""
    fig = go.Figure()
    for i, (label, (train, evals)) in enumerate(curves.items()):
        c = COLORS[i % len(COLORS)]
        x, y = _xy(train, "loss")
        # min/max buckets as on the live panel: a 100,000-step run costs the page what a short one does
        fig.add_trace(_scatter(x, ema(y, smoothing), name=f"{label} train", line=dict(color=c)))
        ex, ey = _xy(evals, "eval_loss")
        fig.add_trace(_scatter(ex, ey, name=f"{label} eval", line=dict(color=c, dash="dash"),
                               mode="lines+markers"))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="step", yaxis_title="loss")
    return fig


def confusion_figure(matrix: list[list[int]], labels: list[str]) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Reds", text=matrix,
                               texttemplate="%{text}", showscale=False))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="predicted",
                      yaxis_title="true", yaxis_autorange="reversed")
    return fig


def probability_figure(probs: dict[str, float]) -> go.Figure:
    labels = list(probs)
    fig = go.Figure(go.Bar(x=[probs[k] for k in labels], y=labels, orientation="h",
                           marker_color=COLORS[0], text=[f"{probs[k]:.1%}" for k in labels]))
    fig.update_layout(height=60 + 30 * len(labels), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(range=[0, 1], tickformat=".0%"))
    return fig


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
