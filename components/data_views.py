"""Streamlit pieces of the dataset browser: cached store access, load options, operation forms, charts."""
from __future__ import annotations

from typing import Any

import streamlit as st

from components import loaders
from core.data import CAST_TYPES, PRESETS, DatasetRef, DatasetStore, Op

OP_LABELS = {
    "filter": "Filter rows with a formula", "select_columns": "Select columns", "select_rows": "Select a row range",
    "map": "Clean text (map preset)", "shuffle": "Shuffle", "split": "Train / test split",
    "concat": "Concatenate another dataset", "rename": "Rename a column", "cast": "Cast a column",
    "class_label": "Encode a column as ClassLabel", "drop_duplicates": "Drop duplicate rows",
    "drop_empty": "Drop empty rows",
}
DELIMS = {"detect": "auto", "comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}


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
    from core.data import column_stats

    return column_stats(opened(name, version)[split])


@st.cache_resource(show_spinner="Loading tokenizer…", max_entries=4)
def tokenizer(name: str) -> Any:
    from core.data import load_tokenizer

    return load_tokenizer(name)


def load_options(key: str) -> dict[str, Any]:
    """The parsing options as `load_file` keyword arguments."""
    c = st.columns(6)
    delim = c[0].selectbox("Delimiter", list(DELIMS), key=f"{key}_delim")
    header = c[1].selectbox("Header row", ["detect", "yes", "no"], key=f"{key}_header")
    enc = c[2].selectbox("Encoding", ["detect", "utf-8", "latin-1", "cp1252", "utf-16"], key=f"{key}_enc")
    bad = c[3].selectbox("Malformed lines", ["stop", "skip"], key=f"{key}_bad",
                         help="a line with the wrong number of fields: stop with its line number, or skip it")
    fix = c[4].checkbox("Fix column names", key=f"{key}_fix", help="rename empty / duplicate names")
    infer = c[5].checkbox("Infer types", True, key=f"{key}_infer", help="numbers and booleans, not only text")
    return {"delimiter": DELIMS[delim], "header": {"detect": "auto", "yes": True, "no": False}[header],
            "encoding": "auto" if enc == "detect" else enc, "on_bad_lines": "error" if bad == "stop" else "skip",
            "fix_names": fix, "infer_types": infer}


def op_form(columns: list[str], splits: list[str], refs: list[DatasetRef], label_col: str | None) -> Op | None:
    """Widgets for one operation; the Op when its Apply button is pressed."""
    kind = st.selectbox("Operation", list(OP_LABELS), format_func=OP_LABELS.get, key="op_kind")
    a: dict[str, Any] = {}
    if kind == "filter":
        a["formula"] = st.text_input("Formula over the columns", "len(text) > 100", key="op_formula",
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
        a["columns"] = c[1].multiselect("Text columns", columns, columns[:1], key="op_mcols")
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
        a["column"] = st.selectbox("Column", columns, index=columns.index(label_col) if label_col in columns else 0,
                                   key="op_lcol")
    return Op(kind, a) if st.button("Apply", type="primary", key="op_apply") else None


def stats_table(stats: list) -> None:
    import pandas as pd

    rows = [{"column": s.name, "type": s.dtype, "nulls": s.nulls,
             "distinct": f">{s.distinct:,}" if s.distinct_capped else f"{s.distinct:,}",
             "min": s.min, "max": s.max, "mean": None if s.mean is None else round(s.mean, 3),
             "of": "length (chars)" if s.lengths else ("value" if s.mean is not None else "")} for s in stats]
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def bar(counts: dict[str, int], title: str) -> None:
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), text=list(counts.values())))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10), xaxis_type="category")
    st.plotly_chart(fig)


def histogram(values: list[int], title: str, x_title: str) -> None:
    import plotly.graph_objects as go

    fig = go.Figure(go.Histogram(x=values, nbinsx=50))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=x_title,
                      yaxis_title="rows", bargap=0.05)
    st.plotly_chart(fig)
