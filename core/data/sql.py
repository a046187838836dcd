"""SQL over a saved dataset with DuckDB: read-only, limited in time, memory and threads, paged like the browser.

Each split's memory-mapped Arrow table is registered with a fresh in-memory DuckDB connection under
the split's name (`data` also names the first split), so a query reads the Arrow files in place and
copies nothing; a ClassLabel column is seen as its names, as the browser shows it. The connection
runs with external access off (no files, no network: COPY, ATTACH, INSTALL, LOAD, EXPORT and
`read_csv('/etc/passwd')` are refused by DuckDB itself), extensions neither installed nor auto-loaded,
Python variables invisible, its configuration locked after the memory limit and thread count from
the settings are set, and a timer thread interrupts it at the time limit. Only a single SELECT
statement (DuckDB's own parser decides) is run; errors come back as `DataError` with DuckDB's
message and the position it marks, never a stack trace.
"""
from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.data.types import BATCH_ROWS, DataError

if TYPE_CHECKING:
    import datasets
    import pandas as pd

    from core.data.store import DatasetRef, DatasetStore
    from core.settings import Settings

SQL_PAGE_ROWS = 100
MAX_SQL_CHARS = 20_000
_MESSAGE_CHARS = 800
_LINE = re.compile(r"^LINE (\d+): ", re.M)


@dataclass
class SqlPage:
    """One page of a query's result: rows start..start+len(rows), out of `total`."""

    sql: str
    rows: pd.DataFrame  # index = row numbers in the result
    total: int
    start: int
    seconds: float

    @property
    def columns(self) -> list[str]:
        return list(self.rows.columns)


class SqlError(DataError):
    """A query DuckDB refused; `line` and `column` (1-based) where DuckDB marks the position, else None."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line, self.column = line, column


def quote_ident(name: str) -> str:
    """A column or table name as a DuckDB identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def sql_tables(dd: datasets.DatasetDict) -> dict[str, str]:
    """Table name -> the split it reads: every split by its name, plus `data` for the first split."""
    names = {k: k for k in dd}
    if "data" not in names and names:
        names = {"data": next(iter(dd)), **names}
    return names


def sql_example(dd: datasets.DatasetDict) -> str:
    """A query over the dataset's own columns: counts per label (or first column) with the mean text length."""
    import datasets

    from core.data.stats import guess_label_column, text_columns

    ds = next(iter(dd.values()))
    cols = ds.column_names
    texts = text_columns(ds)
    label = guess_label_column(ds)
    plain = [c for c in cols if isinstance(ds.features[c], (datasets.Value, datasets.ClassLabel))]
    key = label if label in plain else next((c for c in plain if c not in texts), None)
    if key is None:
        return "SELECT *\nFROM data\nLIMIT 10"
    text = next((c for c in texts if c != key), None)
    length = f",\n       round(avg(length({quote_ident(text)})), 1) AS mean_chars" if text else ""
    return (f"SELECT {quote_ident(key)}, count(*) AS n{length}\nFROM data\n"
            f"GROUP BY {quote_ident(key)}\nORDER BY n DESC")


def sql_page(dd: datasets.DatasetDict, sql: str, start: int = 0, size: int = SQL_PAGE_ROWS,
             settings: Settings | None = None) -> SqlPage:
    """Rows start..start+size of the query's result and its row count.

    The page is read first; a page that ends the result tells the count, otherwise the query runs once
    more under count(*) (and a start past the end moves to the last row).
    """
    t0 = time.perf_counter()
    size, start = max(1, int(size)), max(0, int(start))
    with _session(dd, settings) as s:
        rel = s.relation(sql)
        table = s.guard(lambda: rel.limit(size, offset=start).to_arrow_table())
        if 0 < table.num_rows < size or (start == 0 and table.num_rows == 0):
            total = start + table.num_rows
        else:
            total = s.guard(lambda: int(rel.count("*").fetchall()[0][0]))
            if start >= total:
                start = max(total - 1, 0)
                table = s.guard(lambda: rel.limit(size, offset=start).to_arrow_table())
    df = table.to_pandas()
    df.index = range(start, start + len(df))
    return SqlPage(sql=sql, rows=df, total=total, start=start, seconds=time.perf_counter() - t0)


def sql_query(dd: datasets.DatasetDict, sql: str, settings: Settings | None = None) -> datasets.Dataset:
    """The whole result as a Dataset, streamed batch by batch into an Arrow file and memory-mapped.

    The load caps apply (TORCHLAB_MAX_ROWS, _MAX_DATASET_MB, _MAX_COLUMNS), and the time limit covers
    the writing too.
    """
    import datasets
    import pyarrow as pa

    from core.data.limits import Limits, Tally
    from core.settings import get_settings

    settings = settings or get_settings()
    limits = Limits.from_settings(settings)
    path = _scratch(settings) / f"sql-{uuid.uuid4().hex}.arrow"
    try:
        with _session(dd, settings) as s:
            rel = s.relation(sql)
            names = list(rel.columns)
            limits.check_columns(len(names), "the query result")
            reader = s.guard(lambda: rel.to_arrow_reader(BATCH_ROWS))
            tally = Tally(limits, "the query result")
            with pa.OSFile(str(path), "wb") as sink:
                writer = pa.ipc.new_stream(sink, reader.schema)
                for batch in s.iterate(reader):
                    tally.add(batch.num_rows, batch.nbytes)
                    writer.write_batch(batch)
                writer.close()
        try:
            return datasets.Dataset.from_file(str(path), in_memory=False)
        except (TypeError, ValueError, NotImplementedError) as e:
            raise DataError(f"the result has a column type a dataset cannot hold ({str(e)[:200]}); "
                            "cast it in the query, e.g. CAST(x AS VARCHAR)") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def sql_code(sql: str) -> str:
    """The version-history line for a query (DuckDB over the version's splits, `data` = the first)."""
    return f"ds = core.data.sql_query(ds, {sql.strip()!r})  # DuckDB, read-only; result saved as 'train'"


def save_sql(store: DatasetStore, ref: DatasetRef, dd: datasets.DatasetDict, sql: str, name: str | None = None,
             settings: Settings | None = None) -> DatasetRef:
    """Save the query's whole result as the next version of `name` (default: ref's name), the SQL in its history."""
    ds = sql_query(dd, sql, settings)
    try:
        return store.save(ds, name or ref.name, f"SQL over {ref.name} v{ref.version}",
                          ref.history + [sql_code(sql)])
    finally:
        for f in ds.cache_files:  # the store holds its own copy now
            Path(f["filename"]).unlink(missing_ok=True)


class _Session:
    """One hardened connection with the dataset registered, and the timer that interrupts it."""

    def __init__(self, con: Any, limit_s: float):
        self.con, self.limit_s, self.cancelled = con, limit_s, False

    def cancel(self) -> None:
        self.cancelled = True
        self.con.interrupt()

    def relation(self, sql: str) -> Any:
        """The query as a lazy DuckDB relation, after checking it is one SELECT statement."""
        import duckdb

        text = str(sql or "").strip()
        if not text:
            raise DataError("write a query first, e.g. SELECT * FROM data LIMIT 10")
        if len(text) > MAX_SQL_CHARS:
            raise DataError(f"the query is {len(text):,} characters; at most {MAX_SQL_CHARS:,} are run")
        statements = self.guard(lambda: self.con.extract_statements(text))
        if len(statements) != 1:
            raise DataError(f"run one query at a time: this text holds {len(statements)} statements")
        kind = statements[0].type
        if kind != duckdb.StatementType.SELECT:
            raise DataError(f"only read-only SELECT queries run here, and this is a {kind.name} statement: "
                            "COPY, ATTACH, INSTALL, LOAD, EXPORT, PRAGMA, SET and writes are refused")
        try:
            return self.con.sql(text)
        except duckdb.Error as first:  # the relation API leaves out the position: binding again marks it
            err: Exception = first
        try:
            self.con.execute(text)  # fails where con.sql failed, while binding, before any row is read
        except duckdb.Error as marked:
            err = marked
        raise self.error(err) from None

    def guard(self, fn: Any) -> Any:
        """Run `fn`, turning DuckDB's errors (and the cancel) into DataError."""
        try:
            return fn()
        except Exception as e:  # duckdb.Error, or an Arrow error from a reader the interrupt stopped
            raise self.error(e) from None

    def iterate(self, reader: Any) -> Iterator[Any]:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except Exception as e:
                raise self.error(e) from None
            yield batch

    def error(self, e: Exception) -> DataError:
        if self.cancelled:
            return DataError(f"the query was cancelled at {self.limit_s:g} s, its time limit "
                             "(TORCHLAB_SQL_TIMEOUT_S): add a WHERE or LIMIT, or raise the limit")
        import duckdb

        if not isinstance(e, duckdb.Error):
            raise e
        return _sql_error(str(e))


def _sql_error(message: str) -> SqlError:
    """DuckDB's message, cut to length, with the line and column of its `LINE n: …` / `^` marker."""
    line = column = None
    text = message.strip()
    m = _LINE.search(text)
    if m:
        rest = text[m.end():].splitlines()
        line = int(m.group(1))
        if len(rest) > 1 and "^" in rest[1]:
            column = rest[1].index("^") - len(m.group(0)) + 1
    if len(text) > _MESSAGE_CHARS:
        text = text[:_MESSAGE_CHARS] + " …"
    return SqlError(text, line, column if column and column > 0 else None)


@contextmanager
def _session(dd: datasets.DatasetDict, settings: Settings | None) -> Iterator[_Session]:
    import duckdb

    from core.settings import get_settings

    s = settings or get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="duckdb-", dir=_scratch(s)))  # spill files of this query only
    config = {"enable_external_access": "false", "autoload_known_extensions": "false",
              "autoinstall_known_extensions": "false", "allow_community_extensions": "false",
              "python_enable_replacements": "false", "memory_limit": f"{int(s.sql_memory_mb)}MB",
              "threads": str(int(s.sql_threads)), "temp_directory": str(tmp)}
    con = duckdb.connect(":memory:", config=config)
    session = _Session(con, float(s.sql_timeout_s))
    timer = threading.Timer(session.limit_s, session.cancel)
    timer.daemon = True
    try:
        _register(con, dd)
        con.execute("SET lock_configuration = true")
        timer.start()
        yield session
    finally:
        timer.cancel()
        con.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _register(con: Any, dd: datasets.DatasetDict) -> None:
    """Each split's Arrow table as a view named by the split (ClassLabel ids shown as names), no copy."""
    import datasets

    for table, split in sql_tables(dd).items():
        ds = dd[split]
        if getattr(ds, "_indices", None) is not None:  # a select/shuffle not yet written: the rows as seen
            ds = ds.flatten_indices()
        raw = f"__arrow_{table}"
        con.register(raw, ds.data.table)
        cols = []
        for name, feat in ds.features.items():
            q = quote_ident(name)
            if isinstance(feat, datasets.ClassLabel):
                labels = ", ".join("'" + n.replace("'", "''") + "'" for n in feat.names)
                cols.append(f"CASE WHEN {q} >= 0 THEN [{labels}][{q} + 1] END AS {q}")
            else:
                cols.append(q)
        con.execute(f"CREATE VIEW {quote_ident(table)} AS SELECT {', '.join(cols) or '*'} FROM {quote_ident(raw)}")


def _scratch(settings: Settings) -> Path:
    """The workspace folder for query results and spill files; what is a day old is swept."""
    folder = settings.workspace / "cache" / "sql"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for p in folder.iterdir():
        try:
            if now - p.stat().st_mtime > 24 * 3600:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
        except OSError:
            pass
    return folder
