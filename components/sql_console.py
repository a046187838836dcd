"""The SQL tab of the Datasets page: a query box over the version on screen, its result paged like the browser,
errors beside the box, and "Save result as a new version". Queries run in the buttons' callbacks."""
from __future__ import annotations

from typing import Any

import streamlit as st

from core.data import (
    SQL_PAGE_ROWS,
    DataError,
    DatasetRef,
    DatasetStore,
    SqlError,
    save_sql,
    sql_example,
    sql_page,
    sql_tables,
)


def sql_console(ref: DatasetRef, dd: Any, store: DatasetStore, settings: Any) -> None:
    """Render the console for `dd` (the version `ref`, as opened by the page)."""
    ss = st.session_state
    base = (ref.name, ref.version)
    if ss.get("sql_base") != base:  # another version on screen: its own example, no result of the last one
        example = sql_example(dd)
        if not ss.get("sql_query") or ss.get("sql_query") == ss.get("sql_example"):
            ss.sql_query = example
        ss.sql_base, ss.sql_example, ss.sql_out = base, example, None
    tables = sql_tables(dd)
    names = ", ".join(f"`{t}`" + (f" (= {s})" if t != s else "") for t, s in tables.items())
    st.caption(f"DuckDB reads this version's Arrow files in place, nothing is copied. Tables: {names}. "
               f"Read-only: one SELECT at a time, no files, no extensions; a query is cancelled at "
               f"{settings.sql_timeout_s:g} s ({settings.env_name('sql_timeout_s')}). Add ORDER BY for a stable "
               "order across pages.")
    left, right = st.columns([3, 2])
    left.text_area("SQL", key="sql_query", height=160)
    right.button("Run", type="primary", key="sql_run", on_click=_run, args=(dd, settings, 0))
    out = ss.get("sql_out")
    if out and out.get("error"):
        where = f" at line {out['line']}, column {out['column']}" if out.get("column") else \
            (f" at line {out['line']}" if out.get("line") else "")
        right.error(f"The query failed{where}:", icon=":material/error:")
        right.code(out["error"], language="text", wrap_lines=True)
    saved = ss.pop("sql_saved", None)
    if saved:
        st.success(f"Saved {saved}: the query is in its version history.", icon=":material/check:")
    page = out.get("page") if out else None
    if page is None:
        return
    pages = max(1, -(-page.total // SQL_PAGE_ROWS))
    c = st.columns([1, 3], vertical_alignment="bottom")
    c[0].number_input(f"Page (of {pages:,})", 1, pages, key="sql_page_no", on_change=_turn, args=(dd, settings))
    c[1].caption(f"{page.total:,} rows · rows {page.start:,}–{page.start + max(len(page.rows) - 1, 0):,} · "
                 f"{page.seconds:.2f} s" + ("" if out["sql"] == ss.get("sql_query") else
                                           " · the result of the query last run, not of the text above"))
    st.dataframe(page.rows, height=380)
    c = st.columns([2, 1], vertical_alignment="bottom")
    c[0].text_input("Save result as", key="sql_save_name", placeholder=ref.name,
                    help="the whole result, as a new version of this name (a split named train)")
    c[1].button("Save result as a new version", key="sql_save", on_click=_save, args=(ref, dd, store, settings))


def _run(dd: Any, settings: Any, start: int) -> None:
    """Run the box's query from row `start`; the result or the error goes to session state."""
    ss = st.session_state
    ss.sql_page_no = 1
    _show(dd, settings, ss.get("sql_query", ""), start)


def _turn(dd: Any, settings: Any) -> None:
    """Another page of the query last run."""
    ss = st.session_state
    out = ss.get("sql_out") or {}
    if out.get("sql") is not None:
        _show(dd, settings, out["sql"], (int(ss.get("sql_page_no", 1)) - 1) * SQL_PAGE_ROWS)


def _show(dd: Any, settings: Any, sql: str, start: int) -> None:
    try:
        page = sql_page(dd, sql, start, SQL_PAGE_ROWS, settings=settings)
        st.session_state.sql_out = {"sql": sql, "page": page}
    except DataError as e:
        line, column = (e.line, e.column) if isinstance(e, SqlError) else (None, None)
        st.session_state.sql_out = {"sql": sql, "error": str(e), "line": line, "column": column}


def _save(ref: DatasetRef, dd: Any, store: DatasetStore, settings: Any) -> None:
    """Save the whole result of the query last run; the page then opens the new version."""
    ss = st.session_state
    out = ss.get("sql_out") or {}
    try:
        saved = save_sql(store, ref, dd, out["sql"], (ss.get("sql_save_name") or "").strip() or None, settings)
        ss.ds_next, ss.sql_saved = saved.label, saved.label
    except DataError as e:
        ss.sql_out = {**out, "error": str(e), "line": None, "column": None}
