"""SQL over a saved dataset (issue 18): results against pandas / pyarrow references, paging, saving a result
as a version, DuckDB's own read-only enforcement, errors with DuckDB's position, and the time limit."""
import random
import subprocess
import sys
import time
from pathlib import Path

import datasets
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from core.data import DataError, DatasetStore, SqlError, save_sql, sql_code, sql_example, sql_page, sql_query
from core.data.sql import _session
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
NAMES = ["neg", "neu", "pos"]


@pytest.fixture
def settings(tmp_path):
    return Settings(workspace=tmp_path, sql_timeout_s=20.0, sql_memory_mb=256, sql_threads=2)


@pytest.fixture
def store(settings):
    return DatasetStore(settings.datasets_dir)


@pytest.fixture
def saved(store):
    """A saved version: train 3,000 / test 1,000 rows, a ClassLabel, nulls, quotes and non-ASCII text."""
    rng = random.Random(18)
    words = ["good", "bad", "pill", "héadache", "O'Brien", 'say "hi"', "żółw", "🙂", "sleep", "dose"]

    def rows(n):
        return {"text": [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(n)],
                "label": [rng.randrange(3) for _ in range(n)],
                "score": [None if rng.random() < 0.1 else round(rng.uniform(0, 10), 3) for _ in range(n)],
                "n": [rng.randint(0, 100) for _ in range(n)]}

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=NAMES),
                                  "score": datasets.Value("float64"), "n": datasets.Value("int64")})
    dd = datasets.DatasetDict({k: datasets.Dataset.from_dict(rows(n), features=features)
                               for k, n in (("train", 3000), ("test", 1000))})
    ref = store.save(dd, "reviews", "upload: reviews.csv", ["ds = load('reviews.csv')"])
    return ref, store.load("reviews", ref.version)


def frame(ds):
    """The split as pandas, label ids as names (as the browser and SQL show them)."""
    df = ds.to_pandas()
    df["label"] = [NAMES[i] for i in df["label"]]
    return df


def test_select_where_order_and_paging_match_pandas(saved, settings):
    _, dd = saved
    df = frame(dd["train"])
    ref = df[df["n"] > 50].sort_values(["n", "text"], ascending=[False, True], kind="stable")
    sql = "SELECT text, label, n FROM train WHERE n > 50 ORDER BY n DESC, text"
    p = sql_page(dd, sql, start=20, size=15, settings=settings)
    assert p.total == len(ref) and p.start == 20 and p.columns == ["text", "label", "n"]
    assert list(p.rows.index) == list(range(20, 35))
    assert p.rows["n"].tolist() == ref["n"].iloc[20:35].tolist()
    assert p.rows["label"].tolist() == ref["label"].iloc[20:35].tolist()
    # DuckDB orders text by UTF-8 bytes, Python by code points: the same order
    assert p.rows["text"].tolist() == ref["text"].iloc[20:35].tolist()
    last = sql_page(dd, sql, start=10**9, size=15, settings=settings)  # past the end: the last row
    assert last.start == len(ref) - 1 and len(last.rows) == 1


def test_group_by_matches_pandas_and_data_is_the_first_split(saved, settings):
    _, dd = saved
    sql = ("SELECT label, count(*) AS rows, sum(n) AS total, avg(score) AS mean, count(score) AS scored "
           "FROM data GROUP BY label ORDER BY label")
    got = sql_page(dd, sql, settings=settings).rows
    df = frame(dd["train"])
    g = df.groupby("label").agg(rows=("n", "size"), total=("n", "sum"), mean=("score", "mean"),
                                scored=("score", "count")).reset_index()
    assert got["label"].tolist() == g["label"].tolist() == NAMES
    assert got["rows"].tolist() == g["rows"].tolist() and sum(got["rows"]) == 3000
    assert [int(x) for x in got["total"]] == g["total"].tolist()
    assert got["scored"].tolist() == g["scored"].tolist()
    assert got["mean"].tolist() == pytest.approx(g["mean"].tolist(), rel=1e-12)
    test = sql_page(dd, "SELECT count(*) AS c, max(n) AS m FROM test", settings=settings).rows
    assert test["c"].tolist() == [1000] and test["m"].tolist() == [max(dd["test"]["n"])]


def test_text_functions_and_a_join_across_splits_match_pyarrow(saved, settings):
    _, dd = saved
    t = dd["train"].data.table
    ref = pc.sum(pc.greater(pc.utf8_length(t["text"]), 40)).as_py()
    got = sql_page(dd, "SELECT count(*) AS c FROM data WHERE length(text) > 40", settings=settings).rows
    assert got["c"].tolist() == [ref]
    joined = sql_page(dd, "SELECT count(*) AS c FROM (SELECT DISTINCT text FROM train) a "
                          "JOIN (SELECT DISTINCT text FROM test) b USING (text)", settings=settings).rows
    assert joined["c"].tolist() == [len(set(dd["train"]["text"]) & set(dd["test"]["text"]))]


def test_save_result_as_a_new_version_records_the_sql(saved, store, settings):
    ref, dd = saved
    sql = "SELECT text, label, score FROM train WHERE score >= 5 AND label = 'pos'"
    new = save_sql(store, ref, dd, sql, settings=settings)
    assert (new.name, new.version) == ("reviews", 2) and new.source == "SQL over reviews v1"
    assert new.history == ["ds = load('reviews.csv')", sql_code(sql)] and sql in new.history[-1]
    t = dd["train"].data.table
    mask = pc.and_(pc.greater_equal(t["score"], 5), pc.equal(t["label"], NAMES.index("pos")))
    want = t.filter(mask)
    got = store.load("reviews", 2)["train"]
    assert got.column_names == ["text", "label", "score"] and len(got) == want.num_rows > 0
    assert got["text"] == want["text"].to_pylist() and got["score"] == want["score"].to_pylist()
    assert set(got["label"]) == {"pos"}
    assert not list((settings.workspace / "cache" / "sql").glob("*.arrow"))  # the scratch copy is gone
    other = save_sql(store, ref, dd, "SELECT label, count(*) AS c FROM data GROUP BY label", "counts",
                     settings=settings)
    assert other.name == "counts" and other.rows == 3


def test_result_over_the_row_cap_is_refused(saved, settings):
    _, dd = saved
    with pytest.raises(DataError, match="TORCHLAB_MAX_ROWS"):
        sql_query(dd, "SELECT * FROM train", Settings(workspace=settings.workspace, max_rows=100))


@pytest.mark.parametrize("sql, says", [
    ("COPY train TO '/tmp/torchlab-sql-copy.csv'", "COPY statement"),
    ("ATTACH '/tmp/torchlab-sql.db' AS x", "ATTACH statement"),
    ("INSTALL httpfs", "only read-only SELECT"),
    ("LOAD httpfs", "only read-only SELECT"),
    ("EXPORT DATABASE '/tmp/torchlab-sql-export'", "only read-only SELECT"),
    ("PRAGMA memory_limit='100GB'", "only read-only SELECT"),
    ("SET enable_external_access = true", "only read-only SELECT"),
    ("CREATE TABLE t AS SELECT 1", "only read-only SELECT"),
    ("SELECT 1; COPY train TO '/tmp/torchlab-sql-copy.csv'", "one query at a time"),
    ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
    ("SELECT * FROM '/etc/passwd'", "does not exist"),
    ("SELECT * FROM glob('/etc/*')", "file system operations are disabled"),
    ("SELECT getenv('HOME')", "getenv does not exist"),
])
def test_writes_files_and_server_paths_are_refused(saved, settings, sql, says):
    _, dd = saved
    with pytest.raises(DataError, match=says) as e:
        sql_page(dd, sql, settings=settings)
    assert "Traceback" not in str(e.value)
    assert not Path("/tmp/torchlab-sql-copy.csv").exists() and not Path("/tmp/torchlab-sql.db").exists()


def test_the_connection_itself_refuses_what_the_statement_check_would(saved, settings, tmp_path):
    """Defence in depth: even a statement that got past the SELECT check meets DuckDB's own enforcement."""
    _, dd = saved
    secret = pa.table({"token": ["hf_SECRET"]})  # noqa: F841  (a Python variable a replacement scan could read)
    out = tmp_path / "out.csv"
    with _session(dd, settings) as s:
        con = s.con
        for sql, says in [(f"COPY train TO '{out}'", "disabled by configuration"),
                          (f"ATTACH '{tmp_path / 'x.db'}'", "disabled by configuration"),
                          ("INSTALL httpfs", "disabled by configuration"),
                          ("LOAD httpfs", "disabled through configuration"),
                          (f"EXPORT DATABASE '{tmp_path / 'exp'}'", "disabled by configuration"),
                          ("SELECT * FROM read_csv('/etc/passwd')", "disabled by configuration"),
                          ("SET enable_external_access = true", "configuration has been locked"),
                          ("SET memory_limit = '100GB'", "configuration has been locked"),
                          ("SELECT * FROM secret", "secret does not exist")]:
            with pytest.raises(duckdb.Error, match=says):
                con.execute(sql)
        settings_now = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                        "('enable_external_access', 'threads', 'lock_configuration')").fetchall())
        assert settings_now == {"enable_external_access": "false", "threads": "2", "lock_configuration": "true"}
    assert not out.exists() and not (tmp_path / "x.db").exists() and not (tmp_path / "exp").exists()


def test_errors_carry_duckdbs_message_and_position(saved, settings):
    _, dd = saved
    with pytest.raises(SqlError, match='Referenced column "nope" not found') as e:
        sql_page(dd, "SELECT label,\n       nope FROM data", settings=settings)
    assert (e.value.line, e.value.column) == (2, 8) and "LINE 2:" in str(e.value)
    with pytest.raises(SqlError, match="syntax error") as e:
        sql_page(dd, "SELEKT 1", settings=settings)
    assert (e.value.line, e.value.column) == (1, 1)
    with pytest.raises(DataError, match="write a query first"):
        sql_page(dd, "  ", settings=settings)


def test_a_long_query_is_cancelled_at_the_time_limit(saved, settings):
    _, dd = saved
    fast = Settings(workspace=settings.workspace, sql_timeout_s=0.3, sql_threads=1)
    t0 = time.perf_counter()
    with pytest.raises(DataError, match=r"cancelled at 0\.3 s.*TORCHLAB_SQL_TIMEOUT_S"):
        sql_page(dd, "SELECT count(*) FROM range(1000000000000000) t(i) WHERE i % 7 = 3", settings=fast)
    assert time.perf_counter() - t0 < 10
    with pytest.raises(DataError, match=r"cancelled at 0\.3 s"):  # saving is under the same limit
        # one row after an endless scan: the time limit, never the row cap, stops it on a fast machine too
        sql_query(dd, "SELECT sum(hash(i)) AS s FROM range(1000000000000000) t(i) WHERE i % 7 = 3", fast)
    assert sql_page(dd, "SELECT 42 AS x", settings=fast).rows["x"].tolist() == [42]  # the next query runs


def test_example_query_uses_the_real_columns_and_runs(saved, settings):
    _, dd = saved
    sql = sql_example(dd)
    assert '"label"' in sql and '"text"' in sql
    rows = sql_page(dd, sql, settings=settings).rows
    assert sorted(rows["label"]) == NAMES and rows["n"].sum() == 3000


def test_import_core_data_does_not_import_duckdb():
    probe = "import sys, core.data; print('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
