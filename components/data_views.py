"""Streamlit pieces of the dataset browser: cached store access, load options, operation forms, charts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from components import loaders
from core.data import (
    CAST_TYPES,
    PRESETS,
    ColumnGuess,
    DataError,
    DatasetRef,
    DatasetStore,
    Op,
    apply,
    code,
    import_file,
    import_server_file,
    load_hub,
    save_upload,
    upload_name,
)

OP_LABELS = {
    "filter": "Filter rows with a formula", "select_columns": "Select columns", "select_rows": "Select a row range",
    "map": "Clean text (map preset)", "shuffle": "Shuffle", "split": "Train / test split",
    "concat": "Concatenate another dataset", "rename": "Rename a column", "cast": "Cast a column",
    "class_label": "Encode a column as ClassLabel", "drop_duplicates": "Drop duplicate rows",
    "drop_empty": "Drop empty rows",
}
DELIMS = {"detect": "auto", "comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}
PROGRESS_AFTER_S = 1.0  # a load shows a progress bar once it has run this long
ALL_CLASSES = "(all rows)"
MAX_BARS = 100  # the class-balance chart and the class filter list the most common values up to this many


def progress_text(done: int, size: int, rows: int, elapsed: float) -> tuple[float, str]:
    """(fraction read, "rows · rows/s · ETA") for a load that has read `done` of `size` bytes in `elapsed` s."""
    frac = min(1.0, done / size) if size else 0.0
    rate = rows / elapsed if elapsed > 0 else 0.0
    eta = elapsed * (1 - frac) / frac if frac > 0 else float("inf")
    left = f"about {eta:,.0f} s left" if eta < 1e6 else "time left unknown"
    return frac, f"Loading: {rows:,} rows · {rate:,.0f} rows/s · {frac:.0%} of {size / 1e6:,.1f} MB · {left}"


def _progress_bar() -> Any:
    """A `progress(done, size, rows)` callback for a load that draws a bar once the load runs long (this thread)."""
    import time

    start, bar = time.monotonic(), []

    def progress(done: int, size: int, rows: int) -> None:
        elapsed = time.monotonic() - start
        if elapsed < PROGRESS_AFTER_S:
            return
        frac, text = progress_text(done, size, rows, elapsed)
        if not bar:
            bar.append(st.progress(frac, text=text))
        bar[0].progress(frac, text=text)
    return progress


@st.cache_resource(show_spinner=False)
def store() -> DatasetStore:
    """The workspace's dataset store, with the drug-review sample registered."""
    s = DatasetStore(loaders.settings().datasets_dir)
    s.ensure_sample()
    return s


@st.cache_resource(show_spinner="Opening dataset…", max_entries=8)
def opened(name: str, version: int) -> Any:
    """A saved version, memory-mapped; shared by sessions, so never mutate it (operations return new ones)."""
    return store().load(name, version)


@st.cache_data(show_spinner="Computing column statistics…", max_entries=16)
def stats(name: str, version: int, split: str) -> list:
    """Every column's statistics and histogram (two DuckDB scans over the whole split)."""
    from core.data import column_stats

    return column_stats(opened(name, version)[split])


@st.cache_data(show_spinner="Counting classes…", max_entries=32)
def balance(name: str, version: int, split: str, column: str) -> dict[str, int]:
    """Rows per value of `column`, the MAX_BARS + 1 most common (one more tells there are more than the chart
    shows; a text column picked as labels can have millions); raises DataError for list columns."""
    from core.data import label_counts

    return dict(list(label_counts(opened(name, version)[split], column).items())[: MAX_BARS + 1])


@st.cache_resource(show_spinner="Filtering…", max_entries=4)
def class_view(name: str, version: int, split: str, column: str, value: str) -> tuple[Any, Any]:
    """(row numbers, the split narrowed to them) for the rows of one class; shared, never mutated."""
    from core.data import class_rows

    ds = opened(name, version)[split]
    rows = class_rows(ds, column, value)
    return rows, ds.select(rows)


@st.cache_data(show_spinner="Tokenizing…", max_entries=16)
def token_profile(name: str, version: int, split: str, column: str, tok_name: str) -> Any:
    """Token lengths of `column` (all rows up to TOKEN_SAMPLE, else a seeded random sample of that many)."""
    from core.data import token_length_profile

    return token_length_profile(opened(name, version)[split], column, tokenizer(tok_name))


@st.cache_data(show_spinner=False, max_entries=32)
def guess(name: str, version: int, split: str) -> ColumnGuess:
    """The text and label columns of a saved split, guessed from its values (with the reasons)."""
    from core.data import guess_columns

    return guess_columns(opened(name, version)[split])


@st.cache_resource(show_spinner="Loading tokenizer…", max_entries=4)
def tokenizer(name: str) -> Any:
    from core.data import load_tokenizer

    return load_tokenizer(name)


def load_options(key: str) -> None:
    """The parsing options' widgets (`options_from_state` reads them)."""
    c = st.columns(6)
    c[0].selectbox("Delimiter", list(DELIMS), key=f"{key}_delim")
    c[1].selectbox("Header row", ["detect", "yes", "no"], key=f"{key}_header")
    c[2].selectbox("Encoding", ["detect", "utf-8", "latin-1", "cp1252", "utf-16"], key=f"{key}_enc")
    c[3].selectbox("Malformed lines", ["stop", "skip"], key=f"{key}_bad",
                   help="a line with the wrong number of fields: stop with its line number, or skip it")
    c[4].checkbox("Fix column names", key=f"{key}_fix", help="rename empty / duplicate names")
    c[5].checkbox("Infer types", True, key=f"{key}_infer", help="numbers and booleans, not only text")


def options_from_state(state: Any, key: str) -> dict[str, Any]:
    """The parsing options as `load_file` keyword arguments, read by widget key (in a run or a callback)."""
    delim, header = state.get(f"{key}_delim") or "detect", state.get(f"{key}_header") or "detect"
    enc, bad = state.get(f"{key}_enc") or "detect", state.get(f"{key}_bad") or "stop"
    return {"delimiter": DELIMS[delim], "header": {"detect": "auto", "yes": True, "no": False}[header],
            "encoding": "auto" if enc == "detect" else enc, "on_bad_lines": "error" if bad == "stop" else "skip",
            "fix_names": bool(state.get(f"{key}_fix", False)), "infer_types": bool(state.get(f"{key}_infer", True))}


def follow(key: str, default: Any, basis: Any) -> None:
    """A widget's default that follows the data: reset to `default` when `basis` (the data in hand) changes,
    kept as the user set it while it does not. Call before the widget, which then takes no `value`."""
    ss = st.session_state
    if key not in ss or ss.get(f"{key}__basis") != basis:
        ss[key], ss[f"{key}__basis"] = default, basis


def op_form(columns: list[str], splits: list[str], refs: list[DatasetRef], g: ColumnGuess, formula: str,
            basis: Any) -> None:
    """Widgets for one operation, defaults following the data (`basis`); Apply acts in `apply_action`."""
    kind = st.selectbox("Operation", list(OP_LABELS), format_func=OP_LABELS.get, key="op_kind")
    label_col = g.label
    a: dict[str, Any] = {}
    if kind == "filter":
        follow("op_formula", formula, basis)
        a["formula"] = st.text_input("Formula over the columns", key="op_formula",
                                     help="the safe expression language: column names, comparisons, and / or, "
                                          "len(), str methods — never Python eval")
    elif kind == "select_columns":
        a["columns"] = st.multiselect("Keep columns", columns, columns, key="op_cols")
    elif kind == "select_rows":
        c = st.columns(2)
        a["start"] = c[0].number_input("From row", 0, value=0, key="op_start")
        a["stop"] = c[1].number_input("To row (exclusive)", 1, value=1000, key="op_stop")
    elif kind == "map":
        c = st.columns(3)
        a["preset"] = c[0].selectbox("Preset", PRESETS, key="op_preset")
        follow("op_mcols", [g.text] if g.text in columns else columns[:1], basis)
        a["columns"] = c[1].multiselect("Text columns", columns, key="op_mcols")
        a["n"] = c[2].number_input("Truncate to characters", 1, value=512, key="op_n",
                                   disabled=a["preset"] != "truncate")
    elif kind == "shuffle":
        a["seed"] = st.number_input("Seed", 0, value=42, key="op_seed")
    elif kind == "split":
        c = st.columns(4)
        a["split"] = c[0].selectbox("Split to divide", splits, key="op_src")
        a["test_size"] = c[1].number_input("Test share (or rows if ≥ 1)", 0.01, value=0.2, key="op_size")
        a["test_name"] = c[2].selectbox("New split", ["test", "validation"], key="op_tname")
        a["seed"] = c[3].number_input("Seed", 0, value=42, key="op_sseed")
        a["stratify"] = label_col if label_col and st.checkbox(
            f"Stratify by {label_col!r}", True, key="op_strat") else None
    elif kind == "concat":
        choice = st.selectbox("Dataset to append", refs, format_func=lambda r: r.label, key="op_other")
        if choice is not None:
            a["name"], a["version"] = choice.name, choice.version
    elif kind == "rename":
        c = st.columns(2)
        a["old"] = c[0].selectbox("Column", columns, key="op_old")
        a["new"] = c[1].text_input("New name", key="op_new")
    elif kind == "cast":
        c = st.columns(2)
        a["column"] = c[0].selectbox("Column", columns, key="op_ccol")
        a["dtype"] = c[1].selectbox("Type", CAST_TYPES, key="op_dtype")
    elif kind == "class_label":
        follow("op_lcol", label_col if label_col in columns else columns[0], basis)
        a["column"] = st.selectbox("Column", columns, key="op_lcol")


def op_from_state(state: Any, label_col: str | None) -> Op:
    """The operation the form's widgets hold, read by key (the Apply callback's view of the form)."""
    kind = state.get("op_kind") or next(iter(OP_LABELS))
    keys = {"filter": {"formula": "op_formula"}, "select_columns": {"columns": "op_cols"},
            "select_rows": {"start": "op_start", "stop": "op_stop"},
            "map": {"preset": "op_preset", "columns": "op_mcols", "n": "op_n"}, "shuffle": {"seed": "op_seed"},
            "split": {"split": "op_src", "test_size": "op_size", "test_name": "op_tname", "seed": "op_sseed"},
            "rename": {"old": "op_old", "new": "op_new"}, "cast": {"column": "op_ccol", "dtype": "op_dtype"},
            "class_label": {"column": "op_lcol"}}.get(kind, {})
    a = {arg: state.get(key) for arg, key in keys.items()}
    if kind == "split":
        a["stratify"] = label_col if label_col and state.get("op_strat") else None
    if kind == "concat" and state.get("op_other") is not None:
        a["name"], a["version"] = state["op_other"].name, state["op_other"].version
    return Op(kind, a)


# ------------------------------------------------------------------ actions: each runs in its button's on_click
# A callback runs before the rerun its click causes, so no rerun that starts the script over (an
# auto-refresh, another widget) can swallow the click. It reads the widgets by key and leaves its
# result in session state as a note, which the run shows beside the button.

def note(key: str, kind: str, text: str, where: str = "") -> None:
    st.session_state[f"note_{key}"] = {"kind": kind, "text": text, "where": where, "bound": False, "basis": None}


def show_note(key: str, basis: Any, where: str = "", box: Any = None) -> None:
    """Show the note left by `key`'s action while the page's `basis` stays what it was when first shown."""
    n = st.session_state.get(f"note_{key}")
    if not n or n["where"] != where:
        return
    if not n["bound"]:
        n["bound"], n["basis"] = True, basis
    if n["basis"] == basis:
        box = box or st
        (box.success if n["kind"] == "success" else box.error)(
            n["text"], icon=":material/check_circle:" if n["kind"] == "success" else ":material/error:")


def load_action(settings: Any, store: DatasetStore, shown_file: Any = None) -> None:
    """Load and save: the chosen source, read by widget key; the new version is picked on the run.

    `shown_file` is the upload the clicked run showed: in a callback the uploader's state can still
    be empty while its file is on screen."""
    ss = st.session_state
    source = ss.get("load_src") or "upload"
    try:
        if source == "upload":
            upload = ss.get("up_file") or shown_file
            if upload is None:
                raise DataError("choose a file to upload first")
            upload.seek(0)
            tmp = save_upload(upload.name, upload, settings.workspace / "uploads")
            try:
                ref, report = import_file(tmp, ss.get("up_name") or Path(upload.name).stem, f"upload: {upload.name}",
                                          store, progress=_progress_bar(), **options_from_state(ss, "up"))
            except DataError as e:  # messages name the server's copy ("1a2b3c4d-x.csv"): say the user's name
                raise DataError(str(e).replace(tmp.name, upload_name(tmp))) from None
            finally:
                tmp.unlink(missing_ok=True)
        elif source == "server path":
            path = ss.get("path_input") or ""
            ref, report = import_server_file(path, ss.get("path_name") or Path(path.strip()).stem, store,
                                             progress=_progress_bar(), **options_from_state(ss, "path"))
        else:
            hub_id = (ss.get("hub_id") or "").strip()
            ref, report = store.save(load_hub(hub_id), hub_id.replace("/", "-"), f"hub: {hub_id}"), None
        ss.ds_next = ref.label
        note("load", "success", f"Saved {ref.label}." + "".join(f"\n- {n}" for n in (report.notes if report else [])),
             "button")
    except DataError as e:  # shown under the input that caused it
        note("load", "error", str(e), source)


def apply_action(store: DatasetStore, label_col: str | None) -> None:
    ss = st.session_state
    work, op = ss.get("work"), op_from_state(ss, label_col)
    if not work:
        return
    try:
        work["dd"] = apply(work["dd"], op, store=store)
        work["ops"].append(op)
        work.pop("guess", None)
        note("shape", "success", f"{OP_LABELS[op.kind]}: done.")
    except DataError as e:
        note("shape", "error", str(e))


def save_action(store: DatasetStore, ref: DatasetRef) -> None:
    ss = st.session_state
    work = ss.get("work")
    if not work or not work["ops"]:
        return
    try:
        saved = store.save(work["dd"], ss.get("sh_name") or ref.name, f"derived from {ref.name} v{ref.version}",
                           ref.history + [code(o, store) for o in work["ops"]])
        ss.work, ss.ds_next = None, saved.label
        note("save", "success", f"Saved {saved.label}.")
    except DataError as e:
        note("save", "error", str(e))


def undo_action(ref: DatasetRef) -> None:
    work = st.session_state.get("work")
    n = len(work["ops"]) if work else 0
    st.session_state.work = None
    note("save", "success", f"Undid {n} operation{'s' * (n != 1)}: back to {ref.name} v{ref.version}.")


def delete_action(store: DatasetStore, ref: DatasetRef) -> None:
    try:
        store.delete(ref.name, ref.version)
        st.session_state.ds_next = None
        note("versions", "success", f"Deleted {ref.name} v{ref.version}.")
    except DataError as e:
        note("versions", "error", str(e))




def class_from_selection(event: Any) -> str | None:
    """The class a click on the balance chart picked (the bar's x), or None when the selection was cleared."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    return str(points[0]["x"]) if points and points[0].get("x") is not None else None


def class_click(chart_key: str = "st_balance", filter_key: str = "br_class") -> None:
    """on_select of the balance chart: the clicked class becomes the Browse tab's class filter (before the
    rerun, so the filter widget takes it); clearing the selection shows all rows again."""
    ss = st.session_state
    ss[filter_key] = class_from_selection(ss.get(chart_key)) or ALL_CLASSES


def stats_table(stats: list) -> None:
    """One row per column: count, nulls, distinct, then the numbers (values, or text lengths) and top values."""
    import pandas as pd

    rows = []
    for s in stats:
        q = s.quantiles
        rows.append({"column": s.name, "type": s.dtype, "count": f"{s.count:,}", "nulls": f"{s.nulls:,}",
                     "distinct": "—" if s.distinct is None else f"{'≈' if s.distinct_approx else ''}{s.distinct:,}",
                     "of": s.of, "min": number(s.min), "25%": number(q.get(0.25)), "median": number(q.get(0.5)),
                     "75%": number(q.get(0.75)), "max": number(s.max), "mean": number(s.mean), "std": number(s.std),
                     "top values": " · ".join(f"{_short(v)} ({n:,})" for v, n in s.top[:3]) or "—"})
    st.dataframe(pd.DataFrame(rows, dtype=str), hide_index=True)
    st.caption("Over every row (Arrow compute kernels on the memory-mapped data). For text, min to std are the "
               "length in characters; std is the sample standard deviation and quartiles interpolate, as pandas' "
               "describe().")
    if any(s.distinct_approx for s in stats):
        st.caption("≈: distinct values of text and real numbers estimated with HyperLogLog (DuckDB's "
                   "approx_count_distinct, within ~5 %) on splits over 1,000,000 rows; their top texts are looked "
                   "for in 100,000 random rows, then counted exactly.")


def _short(v: Any, n: int = 24) -> str:
    t = str(v).replace("\n", " ")
    return t if len(t) <= n else t[: n - 1] + "…"


def number(x: Any) -> str:
    """A statistic as text: '—' where there is none (a label, a list column), never 'None' or 'nan'."""
    if x is None or x != x:
        return "—"
    if isinstance(x, str):
        return x
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.3f}".rstrip("0").rstrip(".")


def _layout(fig: Any, title: str, x_title: str) -> None:
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=x_title,
                      yaxis_title="rows", bargap=0.05, showlegend=False)


def histogram(h: Any, title: str, x_title: str) -> Any:
    """A histogram already binned in core (`Histogram`: edges + counts) as bars of the bins' widths."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if h is not None and h.counts:
        mids = [(a + b) / 2 for a, b in zip(h.edges, h.edges[1:], strict=False)]
        widths = [b - a for a, b in zip(h.edges, h.edges[1:], strict=False)]
        fig.add_trace(go.Bar(x=mids, y=h.counts, width=widths, customdata=list(zip(h.edges, h.edges[1:], strict=False)),
                             hovertemplate="%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y:,} rows<extra></extra>"))
    _layout(fig, title, x_title)
    return fig


def token_histogram(profile: Any, max_length: int, title: str) -> tuple[Any, float]:
    """(the token-length histogram with a line at max_length, share of texts longer than max_length)."""
    fig = histogram(profile.histogram(), title, "tokens (special tokens included)")
    share = profile.truncated_share(max_length)
    fig.add_vline(x=max_length + 0.5, line_dash="dash", line_color="crimson",
                  annotation_text=f"max_length {max_length}: {share:.1%} truncated", annotation_position="top left")
    return fig, share


def balance_chart(counts: dict[str, int], title: str, key: str = "st_balance") -> None:
    """Bars of the most common classes; clicking one filters the Browse tab to it (`class_click`)."""
    import plotly.graph_objects as go

    shown = dict(list(counts.items())[:MAX_BARS])
    fig = go.Figure(go.Bar(x=list(shown), y=list(shown.values()), text=list(shown.values())))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10), xaxis_type="category",
                      clickmode="event+select")
    st.plotly_chart(fig, key=key, on_select=class_click, selection_mode="points")
