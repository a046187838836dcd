"""The Datasets page's panels: load a file, pick a dataset, and the Browse, Statistics, Shape and Versions tabs.

The page (`pages/dataset_browser.py`) lays them out; the cached reads and actions they call are in
`components.data_views`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from components import data_views as V
from core import data as D
from core.data import (
    CSV_NOTE,
    DataError,
    DatasetRef,
    DatasetStore,
    allowed_dirs,
    check_export,
    default_formula,
    export,
    guess_columns,
    history_code,
)

SOURCES = {"upload": "Upload", "server path": "Path on the server", "hub": "Hugging Face hub"}


def load_panel(settings: Any, store: DatasetStore) -> None:
    """The "Load a dataset" expander: upload, a path on the server or a hub id, with each source's note
    beside it."""
    ss = st.session_state
    # open on a first visit to an empty workspace, and then left as the user leaves it: an `expanded` that followed the
    # store would fold the expander (and the "Saved …" note inside it) the moment the first dataset is saved
    with st.expander("Load a dataset", expanded=ss.setdefault("load_expanded", not store.list())):
        # the tab on show follows the "Load from" choice, so a message written into a tab is seen
        up_tab, path_tab, hub_tab = st.tabs(list(SOURCES.values()), default=SOURCES[ss.get("load_src", "upload")])
        with up_tab:
            st.caption("CSV, TSV, JSON Lines, Parquet or CoNLL (a word and its tag per line, for token classification), "
                       f"up to **{settings.max_upload_mb} MB** "
                       f"({settings.env_name('max_upload_mb')}). Larger files: copy them to the server and use "
                       f"*Path on the server* (up to {settings.max_dataset_mb:,} MB once loaded, "
                       f"{settings.env_name('max_dataset_mb')}).")
            upload = st.file_uploader("File", type=["csv", "tsv", "txt", "jsonl", "ndjson", "json", "parquet",
                                                    "conll", "conllu", "iob", "bio"],
                                      max_upload_size=settings.max_upload_mb, key="up_file")
            up_msg = st.empty()
            V.load_options("up")
            st.text_input("Save as", key="up_name", placeholder=Path(upload.name).stem if upload else "name")
        with path_tab:
            folders = allowed_dirs(settings)
            st.caption("Only files inside " + ", ".join(f"`{f}`" for f in folders) + " can be read (symlinks are "
                       f"followed first); a relative path is looked up there. {settings.env_name('data_dirs')} "
                       "allows more folders.")
            server_path = st.text_input("File path on the server", placeholder=f"{folders[0]}/reviews.csv",
                                        key="path_input")
            path_msg = st.empty()
            V.load_options("path")
            st.text_input("Save as", key="path_name", placeholder=Path(server_path).stem or "name")
        with hub_tab:
            st.text_input("Dataset id", placeholder="imdb  or  owner/name", key="hub_id")
            hub_msg = st.empty()
        st.radio("Load from", ["upload", "server path", "hub"], horizontal=True, key="load_src")
        # the action runs in on_click (before the rerun the click causes: no rerun can swallow it); its note
        # shows while the form holds what it held when the note was first shown
        st.button("Load and save", type="primary", key="load_btn", on_click=V.load_action,
                  args=(settings, store, upload))
        form = (getattr(upload, "file_id", None), *(ss.get(k) for k in ("load_src", "up_name", "path_input", "path_name",
                                                                         "hub_id")))
        for where, box in {"upload": up_msg, "server path": path_msg, "hub": hub_msg, "button": st}.items():
            V.show_note("load", form, where, box)


def default_pick(refs: list[DatasetRef]) -> DatasetRef:
    """The dataset shown when none is picked: the newest of the user's own datasets; with none yet, the
    drug-review sample (the other built-in samples, registered when a page first needs them, would
    otherwise be "newest")."""
    own = [r for r in refs if not r.source.startswith("sample:")]
    return own[0] if own else next((r for r in refs if r.name == D.SAMPLE_NAME), refs[0])


def pick_dataset(refs: list[DatasetRef]) -> DatasetRef:
    """The Dataset box; a version saved or deleted in the last run is picked before the widget exists."""
    ss = st.session_state
    labels = {r.label: r for r in refs}
    if "ds_next" in ss:
        ss.ds_pick = ss.pop("ds_next")
    if ss.get("ds_pick") not in labels:
        ss.ds_pick = default_pick(refs).label
    return labels[st.selectbox("Dataset", list(labels), key="ds_pick")]


def export_format(ds: Any) -> tuple[str, bool]:
    """(format offered first, whether CSV can hold it): CSV cells can't hold lists or structs, so such a
    dataset offers Parquet first."""
    try:
        check_export(ds, "csv")
        return "csv", True
    except DataError:
        return "parquet", False


def browse_tab(ref: DatasetRef, split: str, ds: Any, text_cols: list[str], lcol: str, counts: dict,
               counts_error: str | None) -> None:
    ss = st.session_state
    classes = [V.ALL_CLASSES, *list(counts)[: V.MAX_BARS]]
    if ss.get("br_class") not in classes:  # another dataset or label column: the filter no longer applies
        ss.br_class = V.ALL_CLASSES
    c = st.columns([1, 1, 2, 2, 2])
    cls = c[4].selectbox(f"Only rows of class ({lcol})", classes, key="br_class", disabled=bool(counts_error),
                         help=f"{lcol} has no classes to filter by: {counts_error}" if counts_error
                         else "or click a bar of the class balance chart in Statistics")
    rows, view = (None, ds) if cls == V.ALL_CLASSES else V.class_view(ref.name, ref.version, split, lcol, cls)
    pages = max(1, -(-len(view) // D.PAGE_ROWS))
    if ss.get("br_page", 1) > pages:  # a narrower filter: the last page there is
        ss.br_page = pages
    if (ss.get("br_jump") or 0) > max(len(view) - 1, 0):
        ss.br_jump = None
    page_no = c[0].number_input(f"Page (of {pages:,})", 1, pages, 1, key="br_page")
    jump = c[1].number_input("…or jump to row", 0, max(len(view) - 1, 0), None, key="br_jump")
    scol = c[2].selectbox("Search in", text_cols or ds.column_names, key="br_scol")
    query = c[3].text_input("Search text", key="br_query")
    if rows is not None:
        st.caption(f"{len(view):,} of {len(ds):,} rows have {lcol} = {cls!r}; row numbers are the dataset's.")
    found = None
    if query and scol:
        try:
            found = D.search(view, scol, query)
        except DataError as e:
            st.error(str(e), icon=":material/error:")
    if found is not None:
        hits, total = found
        st.caption(f"{total:,} rows contain {query!r}; the first {len(hits)} are shown")
        shown = [int(rows[h]) for h in hits] if rows is not None else hits
        st.dataframe(D.page(view.select(hits), 0).set_axis(shown) if hits else None)
    else:
        start = int(jump) if jump is not None else (int(page_no) - 1) * D.PAGE_ROWS
        table = D.page(view, start)
        if rows is not None:
            table.index = rows[table.index.to_numpy()]
        st.dataframe(table, height=420)
    with st.expander("Row detail (full texts)"):
        first = int(rows[jump]) if rows is not None and jump is not None and len(rows) else int(jump or 0)
        detail = st.number_input("Row", 0, max(len(ds) - 1, 0), first, key="br_detail")
        for name, value in D.page(ds, int(detail), 1).iloc[0].items():
            st.caption(name)
            st.text(str(value))  # st.text: user text is never read as markdown or HTML


def statistics_tab(ref: DatasetRef, split: str, ds: Any, text_cols: list[str], guess: Any, lcol: str, counts: dict,
                   counts_error: str | None) -> None:
    col_stats = {s.name: s for s in V.stats(ref.name, ref.version, split)}
    V.stats_table(list(col_stats.values()))
    hcols = [n for n, s in col_stats.items() if s.histogram is not None]
    if hcols:
        hcol = st.selectbox("Histogram of", hcols, key="st_hcol")
        h = col_stats[hcol]
        st.plotly_chart(V.histogram(h.histogram, f"{hcol}: {h.of} over all {h.count:,} values",
                                    "characters" if h.kind == "text" else hcol), key="st_hist")
    c = st.columns(2)
    with c[0]:
        st.selectbox("Label column", ds.column_names, key="st_label")
        st.caption(guess.label_why)
        if counts_error:
            st.info(counts_error, icon=":material/info:")
        else:
            V.balance_chart(counts, f"{lcol}: distribution" + (f" (top {V.MAX_BARS})" if len(counts) > V.MAX_BARS
                                                               else ""))
            st.caption("Click a bar to browse only that class (Browse tab); click it again to show all rows.")
    with c[1]:
        V.follow("st_text", guess.text or (text_cols or ds.column_names)[0], (ref.label, split))
        tcol = st.selectbox("Text column", text_cols or ds.column_names, key="st_text")
        st.caption(guess.text_why)
        t = col_stats.get(tcol)
        st.plotly_chart(V.histogram(t.histogram if t else None, f"{tcol}: length in characters", "characters"),
                        key="st_chars")
    c = st.columns([2, 3], vertical_alignment="bottom")
    tok_name = c[0].selectbox("Tokenizer for token lengths", D.tokenizer_names(), key="st_tok")
    max_length = c[1].slider("max_length (truncation)", 8, 2048, 128, step=8, key="st_maxlen")
    if st.toggle(f"Show token-length histogram (all rows up to {D.TOKEN_SAMPLE:,}, else a random sample of "
                 "that many)", key="st_tokshow"):
        try:
            prof = V.token_profile(ref.name, ref.version, split, tcol, tok_name)
        except ValueError as e:  # not a text column (DataError), a tokenizer that fails offline (AssetError)
            st.error(str(e), icon=":material/error:")
        else:
            fig, share = V.token_histogram(prof, max_length, f"{tcol}: tokens ({tok_name})")
            st.plotly_chart(fig, key="st_tokens")
            over = int((prof.lengths > max_length).sum())
            of = (f"a random sample of {len(prof.lengths):,} of the {prof.rows:,} texts (seed {prof.seed})"
                  if prof.sampled else f"all {prof.rows:,} texts")
            st.caption(f"**{share:.1%} of rows would be truncated at max_length={max_length}** ({over:,} of {of} "
                       "have more tokens, special tokens counted as truncation=True counts them).")


def shape_tab(settings: Any, store: DatasetStore, refs: list[DatasetRef], ref: DatasetRef, dd: Any) -> None:
    ss = st.session_state
    work = ss.get("work")
    if not work or work["base"] != (ref.name, ref.version):
        work = ss.work = {"base": (ref.name, ref.version), "ops": [], "dd": dd}
    first = next(iter(work["dd"].values()))
    cols, splits = list(first.column_names), list(work["dd"])
    if "guess" not in work:  # the defaults follow the data as shaped so far
        work["guess"] = guess_columns(first)
        work["formula"] = default_formula(first, work["guess"])
    V.op_form(cols, splits, refs, work["guess"], work["formula"], (ref.label, tuple(cols)))
    st.button("Apply", type="primary", key="op_apply", on_click=V.apply_action, args=(store, work["guess"].label))
    V.show_note("shape", (ref.label, len(work["ops"]), ss.get("op_kind")))
    st.markdown(f"**Result** · {', '.join(f'{k} {len(v):,}' for k, v in work['dd'].items())} rows")
    st.dataframe(D.page(next(iter(work["dd"].values())), 0, 20), height=250)
    st.caption("The same steps in plain Python (only `datasets` needed):")
    st.code(history_code(ref.path / "data", work["ops"], store, ref.label), language="python")
    c = st.columns([2, 1, 1], vertical_alignment="bottom")
    c[0].text_input("Save as", key="sh_name", placeholder=ref.name)
    c[1].button("Save as a new version", disabled=not work["ops"], key="sh_save", on_click=V.save_action,
                args=(store, ref))
    c[2].button("Undo all", disabled=not work["ops"], key="sh_undo", on_click=V.undo_action, args=(ref,))
    V.show_note("save", ref.label)
    c = st.columns([1, 1, 2], vertical_alignment="bottom")
    first_fmt, flat = export_format(next(iter(work["dd"].values())))
    fmt = c[0].selectbox("Export format", ["csv", "parquet"], index=["csv", "parquet"].index(first_fmt),
                         key="ex_fmt" if flat else "ex_fmt_nested")
    ex_split = c[1].selectbox("Split", splits, key="ex_split")
    dest = settings.workspace / "exports" / f"{ref.name}-v{ref.version}-{ex_split}.{fmt}"
    try:  # checked before the button: a download's data is made after the page ran, where no message shows
        check_export(work["dd"][ex_split], fmt)
        problem = None
    except DataError as e:
        problem = str(e)
    c[2].download_button(f"Download {ex_split} as {fmt.upper()}", lambda: export(work["dd"][ex_split], fmt, dest)
                         .read_bytes(), file_name=dest.name, disabled=problem is not None, key="ex_btn")
    if problem:
        st.error(problem, icon=":material/error:")
    st.caption(CSV_NOTE)


def versions_tab(store: DatasetStore, refs: list[DatasetRef], ref: DatasetRef) -> None:
    st.dataframe([{"name": r.name, "version": r.version, "rows": r.rows, "splits": r.splits, "source": r.source}
                  for r in refs], hide_index=True)
    st.code("\n".join(ref.history) or "# no recorded operations", language="python")
    if ref.name != "drug-reviews":
        st.button(f"Delete {ref.name} v{ref.version}", key="vs_delete", on_click=V.delete_action, args=(store, ref))
    V.show_note("versions", ref.label)
