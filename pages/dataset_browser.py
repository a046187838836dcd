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
    apply,
    check_export,
    code,
    export,
    history_code,
    import_file,
    import_server_file,
    load_hub,
    save_upload,
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
        up_opts = V.load_options("up")
        up_name = st.text_input("Save as", key="up_name", placeholder=Path(upload.name).stem if upload else "name")
    with path_tab:
        folders = allowed_dirs(settings)
        st.caption("Only files inside " + ", ".join(f"`{f}`" for f in folders) + " can be read (symlinks are "
                   f"followed first); a relative path is looked up there. {settings.env_name('data_dirs')} "
                   "allows more folders.")
        server_path = st.text_input("File path on the server", placeholder=f"{folders[0]}/reviews.csv",
                                    key="path_input")
        path_msg = st.empty()
        path_opts = V.load_options("path")
        path_name = st.text_input("Save as", key="path_name", placeholder=Path(server_path).stem or "name")
    with hub_tab:
        hub_id = st.text_input("Dataset id", placeholder="imdb  or  owner/name")
        hub_msg = st.empty()
    source = st.radio("Load from", ["upload", "server path", "hub"], horizontal=True, key="load_src")
    if st.button("Load and save", type="primary", key="load_btn"):
        try:
            with st.spinner("Reading, checking and saving…"):
                if source == "upload":
                    if upload is None:
                        raise DataError("choose a file to upload first")
                    tmp = save_upload(upload.name, upload, settings.workspace / "uploads")
                    try:
                        ref, report = import_file(tmp, up_name or Path(upload.name).stem, f"upload: {upload.name}", store,
                                                  **up_opts)
                    finally:
                        tmp.unlink(missing_ok=True)
                elif source == "server path":
                    ref, report = import_server_file(server_path, path_name or Path(server_path.strip()).stem,
                                                     store, **path_opts)
                else:
                    ref, report = store.save(load_hub(hub_id), hub_id.replace("/", "-"), f"hub: {hub_id}"), None
            ss.ds_pick = ref.label
            st.success(f"Saved {ref.label}." + "".join(f"\n- {n}" for n in (report.notes if report else [])))
        except DataError as e:  # shown under the input that caused it
            {"upload": up_msg, "server path": path_msg, "hub": hub_msg}[source].error(str(e), icon=":material/error:")

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
label_col = D.guess_label_column(ds)
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
        lcol = st.selectbox("Label column", ds.column_names,
                            index=ds.column_names.index(label_col) if label_col else 0, key="st_label")
        try:
            V.bar(D.label_counts(ds, lcol), f"{lcol}: distribution")
        except DataError as e:  # a column of lists or structs has no distribution to draw
            st.info(str(e), icon=":material/info:")
    with c[1]:
        tcol = st.selectbox("Text column", text_cols or ds.column_names, key="st_text")
        lengths = next((s.lengths for s in V.stats(ref.name, ref.version, split) if s.name == tcol), [])
        V.histogram(lengths, f"{tcol}: length in characters", "characters")
    tok_name = st.selectbox("Tokenizer for token lengths", D.tokenizer_names(), key="st_tok")
    if st.toggle("Show token-length histogram (first 2,000 rows)", key="st_tokshow") and tcol in text_cols:
        V.histogram(D.token_lengths(ds, tcol, V.tokenizer(tok_name)), f"{tcol}: tokens ({tok_name})", "tokens")

with shape:
    work = ss.get("work")
    if not work or work["base"] != (ref.name, ref.version):
        work = ss.work = {"base": (ref.name, ref.version), "ops": [], "dd": dd}
    cols, splits = list(next(iter(work["dd"].values())).column_names), list(work["dd"])
    op = V.op_form(cols, splits, refs, D.guess_label_column(next(iter(work["dd"].values()))))
    if op is not None:
        try:
            with st.spinner(f"{op.kind}…"):
                work["dd"] = apply(work["dd"], op, store=store)
            work["ops"].append(op)
        except DataError as e:
            st.error(str(e), icon=":material/error:")
    st.markdown(f"**Result** · {', '.join(f'{k} {len(v):,}' for k, v in work['dd'].items())} rows")
    st.dataframe(D.page(next(iter(work["dd"].values())), 0, 20), height=250)
    st.code(history_code(ref.name, ref.version, work["ops"]), language="python")
    c = st.columns([2, 1, 1], vertical_alignment="bottom")
    new_name = c[0].text_input("Save as", key="sh_name", placeholder=ref.name) or ref.name
    if c[1].button("Save as a new version", disabled=not work["ops"]):
        try:
            saved = store.save(work["dd"], new_name, f"derived from {ref.name} v{ref.version}",
                               ref.history + [code(o) for o in work["ops"]])
            ss.work, ss.ds_next = None, saved.label
            st.rerun()
        except DataError as e:
            st.error(str(e))
    if c[2].button("Undo all", disabled=not work["ops"]):
        ss.work = None
        st.rerun()
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
    if ref.name != "drug-reviews" and st.button(f"Delete {ref.name} v{ref.version}"):
        store.delete(ref.name, ref.version)
        ss.ds_next = None
        st.rerun()
