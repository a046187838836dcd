"""Token chips, the tokenizer cache and the small renderers of the Tokenizers page.

Every piece of user text and every token goes through `html.escape` before it reaches
`st.html`: a token can be `<script>` as easily as `amazing`.
"""
from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from components import loaders
from core import tokenizers as T
from core.assets import AssetError

log = logging.getLogger(__name__)
# what the core raises on input it refuses: shown as a message, never as a traceback
CORE_ERRORS = (T.TextError, T.TrainError, AssetError)

PALETTE = ("#dbeafe", "#dcfce7", "#fef3c7", "#fce7f3", "#e0e7ff", "#ccfbf1", "#fee2e2", "#f3e8ff")
MAX_CHIPS = 1500  # a 200k-character paste would otherwise send a multi-megabyte page
_VISIBLE = {" ": "·", "\n": "↵", "\t": "→", "\r": "␍"}


# --------------------------------------------------------------------------- cached loading
@st.cache_resource(show_spinner="Loading tokenizer…", max_entries=16)
def tokenizer(name: str):
    """One shared tokenizer per name for the whole server (read-only: never set attributes on it)."""
    return T.load(name, loaders.settings())


@st.cache_resource(show_spinner="Reading BPE merges…", max_entries=4)
def merges(name: str) -> list[tuple[str, str]]:
    return T.bpe_merges(tokenizer(name))


def load_many(names: list[str]) -> tuple[dict, list[str]]:
    """(name -> tokenizer, error messages) for the names that load."""
    out, errors = {}, []
    for n in names:
        try:
            out[n] = tokenizer(n)
        except CORE_ERRORS as e:  # a broken folder or an offline hub id: say so, keep the rest
            errors.append(f"**{n}**: {e}")
        except Exception as e:  # not expected (core turns library errors into AssetError); still keep the rest
            log.exception("loading tokenizer %r", n)
            errors.append(f"**{n}**: could not be loaded ({type(e).__name__}: {e})")
    return out, errors


@contextmanager
def tab_errors(where: str) -> Iterator[None]:
    """One tab's failure stays in that tab: the others still render, and the page never shows a traceback.

    Each tab catches its core errors beside the widget that caused them; this is the net under that.
    Streamlit's rerun / stop pass through (they are BaseExceptions), and so do Ctrl-C and exit.
    """
    try:
        yield
    except CORE_ERRORS as e:
        st.error(str(e))
    except Exception as e:
        log.exception("tokenizers page, %s", where)
        st.error(f"{where} failed unexpectedly ({type(e).__name__}: {str(e)[:300]}); the other tabs still work")
    except BaseException as e:
        if not T.is_panic(e):
            raise
        st.error(f"{where}: the Rust tokenizers library crashed ({str(e)[:300]}); the other tabs still work")


# --------------------------------------------------------------------------- chips
def _shown(piece: str) -> str:
    """Whitespace and invisible characters made visible, then escaped."""
    out = []
    for ch in piece:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ch in T.ZERO_WIDTH or (ord(ch) < 32) or 0x7F <= ord(ch) < 0xA0:
            out.append(f"⟨U+{ord(ch):04X}⟩")
        else:
            out.append(ch)
    return html.escape("".join(out))


def chips_html(result: T.TokenizerResult, text: str, byte_level: bool) -> str:
    """One tokenizer's tokens as coloured spans over the original text, hover for id and raw token."""
    spans = []
    for i, t in enumerate(result.tokens[:MAX_CHIPS]):
        piece = t.token if t.special else text[t.start:t.end]
        partial = byte_level and not t.special and "\ufffd" in T.readable(t.token)
        tip = f"id {t.id} · token {t.token!r} · chars {t.start}–{t.end}"
        if byte_level and not t.special:
            tip += f" · bytes {T.readable(t.token)!r}" + (" (part of a multi-byte character)" if partial else "")
        if not t.agrees:
            tip += " · split differently by another tokenizer"
        style = f"background:{PALETTE[i % len(PALETTE)]};"
        if t.special:
            style = "background:#e5e7eb;color:#4b5563;font-style:italic;"
        if t.unknown:
            style = "background:#fca5a5;"
        border = "2px dashed #dc2626" if not t.agrees else "1px solid #cbd5e1"
        opacity = "opacity:.6;" if partial else ""
        spans.append(f'<span title="{html.escape(tip, quote=True)}" style="{style}{opacity}border:{border};'
                     f'border-radius:4px;padding:1px 4px;margin:2px 2px;display:inline-block;'
                     f'font-family:ui-monospace,monospace;font-size:0.9rem">{_shown(piece) or "∅"}</span>')
    more = len(result.tokens) - MAX_CHIPS
    if more > 0:
        spans.append(f"<span style='color:#6b7280'>… {more:,} more tokens not drawn</span>")
    return f"<div style='line-height:2.0'>{''.join(spans)}</div>"


def render_comparison(cmp: T.Comparison, toks: dict) -> None:
    """Per tokenizer: a header with its numbers, then its chips."""
    for r in cmp.results:
        n_diff = sum(not t.agrees for t in r.tokens)
        st.markdown(f"**{r.name}** · {r.family} · {r.n_tokens} tokens"
                    + (f" · :red[{n_diff} split differently]" if n_diff else ""))
        st.html(chips_html(r, cmp.text, T.is_byte_level(toks[r.name])))


def stats_rows(cmp: T.Comparison) -> list[dict]:
    return [{
        "tokenizer": r.name, "family": r.family, "tokens": r.n_tokens, "text tokens": r.n_text_tokens,
        "chars / token": round(r.chars_per_token(cmp.text), 2), "unknown": r.n_unknown,
        "special added": " ".join(r.specials_added) or "—", "vocabulary": f"{r.vocab_size:,}",
        "decode(encode(text)) == text": "✅" if r.round_trip else "❌",
    } for r in cmp.results]


def markers_help() -> str:
    return "\n".join(f"- `{m}` — {why}" for m, why in T.MARKERS.items())


# --------------------------------------------------------------------------- figures
def length_histogram(stats: list, max_length: int):
    """Token-length histograms of every tokenizer, with the max_length cut drawn."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for s in stats:
        fig.add_trace(go.Histogram(x=s.lengths, name=s.name, opacity=0.55, nbinsx=60))
    cut = ", ".join(f"{s.name} {s.pct_truncated:.0f}%" for s in stats)
    fig.add_vline(x=max_length, line_dash="dash", line_color="#dc2626",
                  annotation_text=f"max_length {max_length} · truncated: {cut}", annotation_position="top right")
    fig.update_layout(barmode="overlay", xaxis_title="tokens per text (special tokens included)",
                      yaxis_title="texts", height=360, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def corpus_rows(stats: list) -> list[dict]:
    return [{
        "tokenizer": s.name, "fertility (tokens / word)": round(s.fertility, 3),
        "% unknown": round(s.pct_unknown, 3), "mean length": round(sum(s.lengths) / len(s.lengths), 1),
        "max length": max(s.lengths), f"% truncated at {s.max_length}": round(s.pct_truncated, 1),
        "% padding (pad to max_length)": round(s.pct_padding_max_length, 1),
        "% padding (pad to longest, batches of 16)": round(s.pct_padding_dynamic, 1),
    } for s in stats]


@st.cache_data(show_spinner="Tokenizing the column…", max_entries=32)
def corpus_stats(name: str, source: str, column: str, max_length: int, limit: int | None):
    """Corpus statistics of one tokenizer on one column, cached per argument set."""

    texts = T.source_texts(source, column, loaders.settings(), limit)
    return T.corpus_stats(name, tokenizer(name), texts, max_length)


def train_with_progress(config, texts: list[str], corpus: str):
    """Run the trainer in a worker thread and draw its progress from this (the script's) thread."""
    import time
    from concurrent.futures import ThreadPoolExecutor


    progress = T.TrainProgress()
    bar = st.progress(0.0, text="starting")
    with ThreadPoolExecutor(max_workers=1) as pool:  # the worker never calls st.*
        future = pool.submit(T.train, config, texts, progress, loaders.settings(), corpus)
        while not future.done():
            bar.progress(min(progress.fraction, 1.0), text=progress.phase)
            time.sleep(0.1)
    if future.exception() is not None:
        bar.empty()  # the caller shows the error message instead
    else:
        bar.progress(1.0, text=f"{progress.phase}: {config.name}")
    return future.result()
