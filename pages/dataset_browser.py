"""Datasets: load a file (or the sample), browse it page by page, shape it with `datasets` operations."""
from pathlib import Path

import streamlit as st

from components import data_views as V
from components import loaders
from core import data as D
from core.data import (
    CSV_NOTE,
    DataError,
    allowed_dirs,
    check_export,
    default_formula,
    export,
    guess_columns,
    history_code,
)

settings = loaders.settings()
store = V.store()
ss = st.session_state

st.title("Datasets")
st.caption("Files are streamed into Arrow on disk and memory-mapped: browsing a 1 GB file reads only the rows "
           "on screen. Every saved dataset has versions, listed for every page, session and server restart.")

SOURCES = {"upload": "Upload", "server path": "Path on the server", "hub": "Hugging Face hub"}
with st.expander("Load a dataset", expanded=not store.list()):
    # the tab on show follows the "Load from" choice, so a message written into a tab is seen
    up_tab, path_tab, hub_tab = st.tabs(list(SOURCES.values()), default=SOURCES[ss.get("load_src", "upload")])
    with up_tab:
        st.caption(f"CSV, TSV, JSON Lines or Parquet, up to **{settings.max_upload_mb} MB** "
                   f"({settings.env_name('max_upload_mb')}). Larger files: copy them to the server and use "
                   f"*Path on the server* (up to {settings.max_dataset_mb:,} MB once loaded, "
                   f"{settings.env_name('max_dataset_mb')}).")
        upload = st.file_uploader("File", type=["csv", "tsv", "txt", "jsonl", "ndjson", "json", "parquet"],
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

refs = store.list()
labels = {r.label: r for r in refs}
if "ds_next" in ss:  # a version saved or deleted below in the last run: pick it before the widget exists
    ss.ds_pick = ss.pop("ds_next")
if ss.get("ds_pick") not in labels:
    ss.ds_pick = next(iter(labels))
ref = labels[st.selectbox("Dataset", list(labels), key="ds_pick")]
dd = V.opened(ref.name, ref.version)
split = st.radio("Split", list(dd), horizontal=True, key="ds_split")
ds = dd[split]
guess = V.guess(ref.name, ref.version, split)  # text and label columns from types and values, with why
label_col = guess.label
st.caption(f"{ref.source} · {len(ds):,} rows in {split} · {len(ds.column_names)} columns")

browse, statistics, shape, sql_tab, versions = st.tabs(["Browse", "Statistics", "Shape", "SQL", "Versions"])
with sql_tab:  # issue 18: read-only DuckDB over this version, paged, result savable as a version
    from components.sql_console import sql_console

    sql_console(ref, dd, store, settings)
with browse:
    c = st.columns([1, 1, 2, 2])
    pages = max(1, -(-len(ds) // D.PAGE_ROWS))
    page_no = c[0].number_input(f"Page (of {pages:,})", 1, pages, 1, key="br_page")
    jump = c[1].number_input("…or jump to row", 0, max(len(ds) - 1, 0), None, key="br_jump")
    text_cols = D.text_columns(ds)
    scol = c[2].selectbox("Search in", text_cols or ds.column_names, key="br_scol")
    query = c[3].text_input("Search text", key="br_query")
    found = None
    if query and scol:
        try:
            found = D.search(ds, scol, query)
        except DataError as e:
            st.error(str(e), icon=":material/error:")
    if found is not None:
        hits, total = found
        st.caption(f"{total:,} rows contain {query!r}; the first {len(hits)} are shown")
        st.dataframe(D.page(ds.select(hits), 0).set_axis(hits) if hits else None)
    else:
        start = int(jump) if jump is not None else (int(page_no) - 1) * D.PAGE_ROWS
        st.dataframe(D.page(ds, start), height=420)
    with st.expander("Row detail (full texts)"):
        detail = st.number_input("Row", 0, max(len(ds) - 1, 0), int(jump or 0), key="br_detail")
        for name, value in D.page(ds, int(detail), 1).iloc[0].items():
            st.caption(name)
            st.text(str(value))  # st.text: user text is never read as markdown or HTML

with statistics:
    V.stats_table(V.stats(ref.name, ref.version, split))
    c = st.columns(2)
    with c[0]:
        V.follow("st_label", label_col or ds.column_names[0], (ref.label, split))
        lcol = st.selectbox("Label column", ds.column_names, key="st_label")
        st.caption(guess.label_why)
        try:
            V.bar(D.label_counts(ds, lcol), f"{lcol}: distribution")
        except DataError as e:  # a column of lists or structs has no distribution to draw
            st.info(str(e), icon=":material/info:")
    with c[1]:
        V.follow("st_text", guess.text or (text_cols or ds.column_names)[0], (ref.label, split))
        tcol = st.selectbox("Text column", text_cols or ds.column_names, key="st_text")
        st.caption(guess.text_why)
        lengths = next((s.lengths for s in V.stats(ref.name, ref.version, split) if s.name == tcol), [])
        V.histogram(lengths, f"{tcol}: length in characters", "characters")
    tok_name = st.selectbox("Tokenizer for token lengths", D.tokenizer_names(), key="st_tok")
    if st.toggle("Show token-length histogram (first 2,000 rows)", key="st_tokshow") and tcol in text_cols:
        V.histogram(D.token_lengths(ds, tcol, V.tokenizer(tok_name)), f"{tcol}: tokens ({tok_name})", "tokens")

with shape:
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
    fmt = c[0].selectbox("Export format", ["csv", "parquet"], key="ex_fmt")
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

with versions:
    st.dataframe([{"name": r.name, "version": r.version, "rows": r.rows, "splits": r.splits, "source": r.source}
                  for r in refs], hide_index=True)
    st.code("\n".join(ref.history) or "# no recorded operations", language="python")
    if ref.name != "drug-reviews":
        st.button(f"Delete {ref.name} v{ref.version}", key="vs_delete", on_click=V.delete_action, args=(store, ref))
    V.show_note("versions", ref.label)
