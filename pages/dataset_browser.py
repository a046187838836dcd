"""Datasets: load a file (or the sample), browse it page by page, shape it with `datasets` operations."""
import streamlit as st

from components import data_views as V
from components import dataset_page as P
from components import loaders
from core import data as D
from core.data import DataError

settings = loaders.settings()
store = V.store()
ss = st.session_state

st.title("Datasets")
st.caption("Files are streamed into Arrow on disk and memory-mapped: browsing a 1 GB file reads only the rows "
           "on screen. Every saved dataset has versions, listed for every page, session and server restart.")
P.load_panel(settings, store)

refs = store.list()
ref = P.pick_dataset(refs)
dd = V.opened(ref.name, ref.version)
split = st.radio("Split", list(dd), horizontal=True, key="ds_split")
ds = dd[split]
guess = V.guess(ref.name, ref.version, split)  # text and label columns from types and values, with why
st.caption(f"{ref.source} · {len(ds):,} rows in {split} · {len(ds.column_names)} columns")

browse, statistics, shape, sql_tab, versions = st.tabs(["Browse", "Statistics", "Shape", "SQL", "Versions"])
with sql_tab:  # issue 18: read-only DuckDB over this version, paged, result savable as a version
    from components.sql_console import sql_console

    sql_console(ref, dd, store, settings)
# the class filter of Browse follows the Statistics tab's label column (a click on its balance chart sets it)
V.follow("st_label", guess.label or ds.column_names[0], (ref.label, split))
if ss.st_label not in ds.column_names:
    ss.st_label = guess.label or ds.column_names[0]
lcol = ss.st_label
try:
    counts, counts_error = V.balance(ref.name, ref.version, split, lcol), None
except DataError as e:  # a column of lists or structs has no classes
    counts, counts_error = {}, str(e)
text_cols = D.text_columns(ds)

with browse:
    P.browse_tab(ref, split, ds, text_cols, lcol, counts, counts_error)
with statistics:
    P.statistics_tab(ref, split, ds, text_cols, guess, lcol, counts, counts_error)
with shape:
    P.shape_tab(settings, store, refs, ref, dd)
with versions:
    P.versions_tab(store, refs, ref)
