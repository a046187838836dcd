"""Drawing pieces of the Transformer anatomy page: cached model and forward pass, plotly figures.

The cached model and the cached forward results are shared by every session: read-only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from components import loaders
from core.models import PACKAGED, Anatomy, Check, HeadSummary, LoadedModel, model_family

PACKAGED_LABEL = "MiniLM-L6 (packaged encoder)"
OTHER = "Local folder or hub id…"
LINES_UP_TO = 40  # the head view draws lines up to this many tokens, a heat map beyond
MATRIX_ROWS = 40  # step-by-step matrices show at most this many tokens
SCALE = "Blues"
SEQ2SEQ_NOTE = ("This is the encoder of a seq2seq BART; its decoder (causal self-attention plus cross-attention over "
                "the encoder's output) is not opened here.")


class Forward(NamedTuple):
    """What the page draws from one forward pass (cached; read-only)."""

    anatomy: Anatomy
    heads: list[HeadSummary]  # per-head entropy, distance, top links
    pooled: np.ndarray  # (L, nH, s, s) the model view's maps


# --- cached engine calls -----------------------------------------------------------------------

def _stamp(spec: str) -> float:
    """config.json's mtime for a folder, so a model saved again is loaded again."""
    cfg = Path(spec).expanduser() / "config.json"
    return cfg.stat().st_mtime if cfg.is_file() else 0.0


@st.cache_resource(show_spinner="Loading the model…", max_entries=3)
def _model(spec: str, stamp: float) -> LoadedModel:
    from core.models import load_model

    return load_model(spec, loaders.settings())


def model(spec: str) -> LoadedModel:
    return _model(spec.strip(), _stamp(spec.strip()))


@st.cache_resource(show_spinner="Running the model…", max_entries=8)
def _forward(spec: str, stamp: float, ids: tuple[int, ...], truncated: bool,
             other: tuple[int, ...] | None) -> Forward:
    from core.models import head_summaries, pooled, run_anatomy

    anatomy = run_anatomy(_model(spec, stamp), list(ids), truncated, other)
    return Forward(anatomy, head_summaries(anatomy.layer_attentions), pooled(anatomy.layer_attentions))


def forward(spec: str, ids: list[int], truncated: bool, other: list[int] | None = None) -> Forward:
    """The forward pass, its per-head summaries and the pooled model view, once per (model, token ids).

    `other`: a second text's ids batched with `ids` (padding); the page shows row 0, `ids`.
    """
    return _forward(spec.strip(), _stamp(spec.strip()), tuple(ids), truncated,
                    None if other is None else tuple(other))


@st.cache_resource(show_spinner=False, max_entries=32)
def _verification(spec: str, stamp: float, ids: tuple[int, ...], truncated: bool, other: tuple[int, ...] | None,
                  layer: int, head: int) -> list[Check]:
    from core.models import verify_walk, walk_head

    lm, anatomy = _model(spec, stamp), _forward(spec, stamp, ids, truncated, other).anatomy
    return verify_walk(lm, anatomy, walk_head(lm, anatomy, layer, head, verify=False))


def verification(spec: str, ids: list[int], truncated: bool, layer: int, head: int,
                 other: list[int] | None = None) -> list[Check]:
    """The walk's nine checks (its whole layer recomputed), once per (model, token ids, layer, head)."""
    return _verification(spec.strip(), _stamp(spec.strip()), tuple(ids), truncated,
                         None if other is None else tuple(other), layer, head)


def _completed_runs() -> list:
    try:
        from core.training import RunStore

        runs = RunStore(loaders.settings().runs_db).runs()
    except Exception:  # a damaged or locked store must not break this page
        return []
    return [r for r in runs if r.status == "completed" and r.model_dir]


def model_options() -> dict[str, str]:
    """Picker label -> spec: the packaged MiniLM, then every completed run that saved a model."""
    options = {PACKAGED_LABEL: PACKAGED}
    for r in _completed_runs():
        # runs whose model is a Transformer this page opens (fine-tunes, tiny GPTs, a BART's encoder), not CNNs,
        # MLPs or other seq2seq families (T5, mBART, Marian: model_family says None)
        if model_family(r.model_dir):
            options[f"run: {r.name} ({r.id})"] = r.model_dir
    options[OTHER] = ""
    return options


def unopened_seq2seq() -> str | None:
    """Why completed seq2seq runs are missing from the picker, naming them; None when none is."""
    import json

    missing = []
    for r in _completed_runs():
        if r.config.get("task") == "seq2seq" and not model_family(r.model_dir):
            try:
                kind = json.loads((Path(r.model_dir) / "config.json").read_text(encoding="utf-8"))["model_type"]
            except (OSError, ValueError, KeyError):
                kind = "unreadable config.json"
            missing.append(f"{r.name} ({kind})")
    if not missing:
        return None
    return (f"Not listed: seq2seq run{'s' * (len(missing) > 1)} {', '.join(missing)}. Of encoder-decoders the anatomy "
            "opens BART's encoder only: T5 adds a learned relative position bias to the scores, and mBART / Marian "
            "normalise before each block or use sinusoidal positions, which the step-by-step walk does not "
            "recompute yet.")


# --- figures -----------------------------------------------------------------------------------

def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, **kw)
    return fig


def _labels(tokens: list[str]) -> list[str]:
    """Unique tick labels: the position keeps repeated tokens apart."""
    return [f"{i}:{t}" for i, t in enumerate(tokens)]


def model_view(pooled: np.ndarray, layer: int, head: int) -> go.Figure:
    """Every layer × head as a small heat map, tiled into one image; the open head framed in red.

    Plotly reports no selection on a heat map (streamlit#8760), so an invisible marker sits on each
    tile carrying (layer, head); with no hover cutoff a click anywhere on a tile selects its marker.
    """
    L, nH, s, _ = pooled.shape
    gap = max(1, s // 6)
    grid = np.full((L * (s + gap), nH * (s + gap)), np.nan, dtype=np.float32)
    for li in range(L):
        for hi in range(nH):
            grid[li * (s + gap): li * (s + gap) + s, hi * (s + gap): hi * (s + gap) + s] = pooled[li, hi]
    fig = go.Figure(go.Heatmap(z=grid, colorscale=SCALE, showscale=False, hoverinfo="skip"))
    centre = (s - 1) / 2
    fig.add_trace(go.Scatter(
        x=[hi * (s + gap) + centre for li in range(L) for hi in range(nH)],
        y=[li * (s + gap) + centre for li in range(L) for hi in range(nH)],
        customdata=[[li, hi] for li in range(L) for hi in range(nH)], mode="markers", showlegend=False,
        marker={"size": 12, "symbol": "square", "color": "rgba(0,0,0,0)"}, name="heads",
        hovertemplate="layer %{customdata[0]}, head %{customdata[1]}<br>click to open<extra></extra>"))
    x0, y0 = head * (s + gap) - 0.5, layer * (s + gap) - 0.5
    fig.add_shape(type="rect", x0=x0, y0=y0, x1=x0 + s, y1=y0 + s, line={"color": "red", "width": 3})
    fig.update_xaxes(tickvals=[h * (s + gap) + s / 2 for h in range(nH)], ticktext=[f"h{h}" for h in range(nH)],
                     tickangle=0, side="top", showgrid=False, zeroline=False, range=[-0.5, grid.shape[1] - 0.5])
    fig.update_yaxes(tickvals=[li * (s + gap) + s / 2 for li in range(L)], ticktext=[f"layer {li}" for li in range(L)],
                     showgrid=False, zeroline=False, range=[grid.shape[0] - 0.5, -0.5])  # layer 0 on top
    fig = _layout(fig, 110 + 60 * L, hovermode="closest", hoverdistance=-1, dragmode=False,
                  title=f"Model view: {L} layers × {nH} heads (layer {layer}, head {head} framed)")
    fig.update_layout(margin={"t": 70})  # the title above the head labels
    return fig


def clicked_head(state: Any) -> tuple[int, int] | None:
    """(layer, head) of the tile clicked in the model view, from its selection state; None if none."""
    try:
        point = state["selection"]["points"][0]
        layer, head = point["customdata"][:2]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return int(layer), int(head)


def token_hover(anatomy: Anatomy, weights: np.ndarray) -> list[str]:
    """Per token: its id, the norm of its embedding (layer 0's input) and where it attends most in this head."""
    tokens = anatomy.tokens
    norms = np.linalg.norm(anatomy.embedding_output, axis=-1)
    most = weights.argmax(-1)
    return [f"<b>{i}:{t}</b><br>id {anatomy.ids[i]}<br>embedding norm {norms[i]:.3f}<br>attends most to "
            f"{most[i]}:{tokens[most[i]]} ({weights[i, most[i]]:.3f})" for i, t in enumerate(tokens)]


def head_view(anatomy: Anatomy, weights: np.ndarray, layer: int, head: int) -> go.Figure:
    """bertviz-style: queries left, keys right, a line per pair with the weight as its opacity.

    Hovering a token shows its id, its embedding's norm and where it attends most in this head (past
    LINES_UP_TO tokens, on a heat map: hover the token column at its left; past 128, block means only).
    """
    tokens, T = anatomy.tokens, len(anatomy.tokens)
    if T > LINES_UP_TO:  # too many lines to follow: a heat map, block means past 128 tokens
        return _head_map(anatomy, weights, layer, head)
    fig = go.Figure()
    for lo, hi in ((0.05, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)):  # one trace per opacity band
        xs, ys = [], []
        for i, j in zip(*np.nonzero((weights >= lo) & (weights < hi)), strict=True):
            xs += [0, 1, None]
            ys += [i, j, None]
        if xs:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                     line={"color": f"rgba(31,119,180,{(lo + hi) / 2:.2f})", "width": 1 + 4 * lo}))
    hover = token_hover(anatomy, weights)
    colour = ["#1f77b4" if anatomy.padding is None or anatomy.padding[i] else "#bbbbbb" for i in range(T)]
    for x, side in ((0, "left"), (1, "right")):
        fig.add_trace(go.Scatter(x=[x] * T, y=list(range(T)), mode="markers+text", text=tokens, hovertext=hover,
                                 hoverinfo="text", textposition=f"middle {side}", showlegend=False,
                                 marker={"size": 8, "color": colour}, name="queries" if x == 0 else "keys"))
    fig.update_xaxes(visible=False, range=[-0.6, 1.6])
    fig.update_yaxes(visible=False, autorange="reversed")
    return _layout(fig, 80 + 26 * T, title=f"Head view: layer {layer}, head {head}")


def _head_map(anatomy: Anatomy, weights: np.ndarray, layer: int, head: int) -> go.Figure:
    """The head as a heat map, with a column of token markers at its left that carry the hover (≤ 128 tokens)."""
    from core.models import pooled

    tokens, T = anatomy.tokens, len(anatomy.tokens)
    side = min(T, 128)
    z = pooled(weights[None, None], side)[0, 0]
    title = f"Head view: layer {layer}, head {head} · attention of {T} tokens"
    fig = go.Figure(go.Heatmap(z=z, colorscale=SCALE, name="weights",
                               hovertemplate="query %{y} → key %{x}: %{z:.4f}<extra></extra>"))
    if side == T:
        fig.add_trace(go.Scatter(x=[-2] * T, y=list(range(T)), mode="markers", hovertext=token_hover(anatomy, weights),
                                 hoverinfo="text", showlegend=False, name="queries",
                                 marker={"size": 5, "symbol": "square", "color": "#1f77b4"}))
        step = max(1, T // 32)
        fig.update_yaxes(tickvals=list(range(0, T, step)), ticktext=_labels(tokens)[::step])
        title += " (hover the column at the left for a token)"
    else:  # a row is a block of tokens: no token to hover
        fig.update_yaxes(tickvals=list(range(0, side, 8)), ticktext=[f"≈{int(i * T / side)}" for i in range(0, side, 8)])
        title += f" (block means, {side} × {side})"
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, 700, title=title, hovermode="closest")


def matrix(m: np.ndarray, title: str, rows: list[str] | None = None, cols: list[str] | None = None,
           height: int | None = None, scale: str = "RdBu_r", zmid: float | None = 0.0) -> go.Figure:
    """One matrix as a heat map, its shape in the title; at most MATRIX_ROWS rows shown for long inputs."""
    shape = " × ".join(map(str, m.shape))
    r = min(m.shape[0], MATRIX_ROWS) if height is None else m.shape[0]
    square = cols is not None and len(cols) == m.shape[1] == m.shape[0]
    view = m[:r, :r] if square else m[:r]
    fig = go.Figure(go.Heatmap(z=view, x=_labels(cols)[: view.shape[1]] if cols else None,
                               y=_labels(rows)[:r] if rows else None, colorscale=scale, zmid=zmid,
                               hovertemplate="row %{y}<br>col %{x}<br>%{z:.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    note = "" if view.shape == m.shape else f" · first {view.shape[0]} rows shown"
    return _layout(fig, height or min(140 + 18 * r, 600), title=f"{title} [{shape}]{note}")


def step_figures(walk, tokens: list[str], step: int) -> list[go.Figure]:
    """The matrices of one step of the walk (0-based step index)."""
    d = walk.q.shape[1]
    if step == 0:
        return [matrix(walk.x, "X: the layer's input", tokens), matrix(walk.w_q, "W_Q (this head's columns)"),
                matrix(walk.q, "Q = X·W_Q + b_Q", tokens), matrix(walk.k, "K = X·W_K + b_K", tokens),
                matrix(walk.v, "V = X·W_V + b_V", tokens)]
    if step == 1:
        return [matrix(walk.scores, f"scores = Q·Kᵀ · {walk.scaling:.4f}  (1/√{d} = {d ** -0.5:.4f})", tokens, tokens)]
    if step == 2:
        return [matrix(walk.mask.astype(np.float32), "mask: 1 = may attend, 0 = blocked (−∞ added)", tokens, tokens,
                       scale=SCALE, zmid=None)]
    if step == 3:
        return [matrix(walk.weights, "weights = softmax(scores + mask), rows sum to 1", tokens, tokens,
                       scale=SCALE, zmid=None)]
    if step == 4:
        return [matrix(walk.context, "context = weights·V", tokens)]
    return [matrix(walk.concat, "every head's context side by side", tokens),
            matrix(walk.projected, "concat·W_O + b_O", tokens),
            matrix(walk.attention_output, "attention block output", tokens)]


def padding_note(walk, tokens: list[str]) -> str | None:
    """What padding does to this row, with the weights' own numbers; None when the row has no padding."""
    if walk.padding is None:
        return None
    pad = np.flatnonzero(~walk.padding)
    return (f"**Padding.** This text is the shorter row of a batch of two, so positions {pad[0]}–{pad[-1]} hold "
            f"`{tokens[pad[0]]}`. Their columns are 0 in the mask: −∞ is added to those scores, and after the softmax "
            f"every query gives them weight exactly 0 (largest weight on a padding key here: "
            f"{float(walk.weights[:, pad].max()):g}). The [PAD] rows are computed too; what reads the output (pooling, a loss) leaves them out with the same mask.")


def checks_table(checks: list[Check]):
    import pandas as pd

    return pd.DataFrame([{"": "✅" if c.matched else "❌", "recomputed": c.name, "model's own": c.reference,
                          "max |diff|": f"{c.max_abs_diff:.1e}"} for c in checks])


def positions(tables, n_tokens: int) -> go.Figure:
    """Sinusoidal vs learned table (positions × dimensions) and their cosine similarities."""
    fig = make_subplots(rows=2, cols=2, horizontal_spacing=0.08, vertical_spacing=0.12, subplot_titles=(
        "sinusoidal PE (Vaswani et al.)", "the model's learned position table",
        "cosine similarity, sinusoidal", "cosine similarity, learned"))
    for (r, c), z, zmid in (((1, 1), tables.sinusoidal, 0.0), ((1, 2), tables.learned, 0.0),
                            ((2, 1), tables.sinusoidal_similarity, None), ((2, 2), tables.learned_similarity, None)):
        fig.add_trace(go.Heatmap(z=z, colorscale="RdBu_r", zmid=zmid, showscale=False,
                                 hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>"), row=r, col=c)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="dimension", row=1)
    fig.update_xaxes(title_text="position", row=2)
    return _layout(fig, 760, title=f"Positions 0–{tables.learned.shape[0] - 1} (this text has {n_tokens} tokens)")


def masks(bi: np.ndarray, causal: np.ndarray, tokens: list[str]) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("bidirectional (encoder, BERT)", "causal (decoder, GPT)"))
    for c, z in ((1, bi), (2, causal)):
        fig.add_trace(go.Heatmap(z=z, x=_labels(tokens), y=_labels(tokens), colorscale=SCALE, showscale=c == 2,
                                 zmin=0, zmax=1, hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>"), row=1, col=c)
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, min(200 + 22 * len(tokens), 700), title="Same scores, two masks")


def residual(anatomy: Anatomy) -> go.Figure:
    norms = anatomy.residual_norms
    fig = go.Figure(go.Scatter(x=list(range(norms.shape[0])), y=norms.mean(-1), mode="lines+markers",
                               name="mean over tokens"))
    fig.add_trace(go.Scatter(x=list(range(norms.shape[0])), y=norms.max(-1), mode="lines", name="largest token",
                             line={"dash": "dot"}))
    fig.update_xaxes(title_text="after layer (0 = embeddings)", dtick=1)
    fig.update_yaxes(title_text="‖h‖")
    return _layout(fig, 320, title="Residual stream norm per layer")


def summaries(items: list[HeadSummary], L: int, nH: int) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("entropy (nats): low = focused", "mean distance (tokens)"))
    for c, attr in ((1, "entropy"), (2, "distance")):
        z = np.array([getattr(s, attr) for s in items]).reshape(L, nH)
        fig.add_trace(go.Heatmap(z=z, colorscale="Viridis", showscale=False, texttemplate="%{z:.1f}",
                                 hovertemplate="layer %{y}, head %{x}: %{z:.3f}<extra></extra>"), row=1, col=c)
    fig.update_yaxes(autorange="reversed", title_text="layer", col=1)
    fig.update_xaxes(title_text="head")
    return _layout(fig, 120 + 40 * L, title="Every head in numbers")


def next_token_bars(top: list[tuple[str, float]], title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=[p for _, p in top], y=[t for t, _ in top], orientation="h", name="probability",
                           text=[f"{p:.3f}" for _, p in top], textposition="outside"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, max([p for _, p in top] + [0.01]) * 1.2])
    return _layout(fig, 80 + 24 * len(top), title=title)


def row_bars(tokens: list[str], row: np.ndarray, title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=_labels(tokens), y=row))
    return _layout(fig, 260, title=title)


def links_table(items: list[HeadSummary], tokens: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame([{"layer": s.layer, "head": s.head, "entropy": round(s.entropy, 3),
                          "distance": round(s.distance, 2),
                          "top links": "; ".join(f"{tokens[i]}→{tokens[j]} {w:.2f}" for i, j, w in s.top_links)}
                         for s in items])
