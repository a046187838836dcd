"""Column statistics and histograms of a whole dataset in two DuckDB scans, and token lengths on a sample.

DuckDB reads the memory-mapped Arrow table in place (no copy, no Python per row): the first scan computes every
column's count, nulls, distinct values, min/max/mean/std/quantiles (of the values for numbers, of the length in
characters for text) and candidate top values; the second bins every column into a histogram (`histogram()` over a
bin number, so only bin edges and counts come back) and counts the top candidates exactly. Numbers agree with
pandas' `describe()` (sample std, linear-interpolated quantiles; NaN counted as null), `str.len()` (characters =
code points) and `value_counts()`.

Token lengths need the tokenizer, so they are computed on at most TOKEN_SAMPLE rows (all rows when fewer), drawn
at random with a fixed seed, and encoded in one batch call of the fast tokenizer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.data.types import DataError

if TYPE_CHECKING:
    import datasets
    import numpy as np
    import pyarrow as pa

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HIST_BINS = 40
TOP_K = 10
EXACT_DISTINCT_ROWS = 1_000_000  # distinct values counted exactly up to this many rows, then HyperLogLog (±~2 %)
TOKEN_SAMPLE = 20_000  # token lengths: all rows up to this many, else a random sample of this many (seed 0)


@dataclass
class Histogram:
    """Counts of values in bins: bin i holds edges[i] <= x < edges[i+1] (the last bin includes its right edge)."""

    edges: list[float]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass
class ColumnStats:
    """What one column holds. For text, min/max/mean/std/quantiles are of the length in characters."""

    name: str
    dtype: str
    kind: str  # "number", "text", "class", "bool", "time" or "other" (lists, structs, bytes)
    count: int = 0  # non-null values
    nulls: int = 0
    distinct: int | None = None
    distinct_approx: bool = False  # HyperLogLog estimate (more than EXACT_DISTINCT_ROWS rows)
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None  # sample standard deviation (ddof=1), as pandas
    quantiles: dict[float, float] = field(default_factory=dict)
    top: list[tuple[str, int]] = field(default_factory=list)  # most common values, exact counts
    histogram: Histogram | None = None

    @property
    def of(self) -> str:
        """What min/max/mean describe."""
        return "length (chars)" if self.kind == "text" else "value" if self.kind in ("number", "time") else "—"


def arrow_table(ds: datasets.Dataset) -> pa.Table:
    """The rows of `ds` as one Arrow table: the memory-mapped table itself, or its rows taken where a
    select/shuffle left an indices mapping."""
    if getattr(ds, "_indices", None) is None:
        return ds.data.table
    return ds.with_format("arrow")[:]


def _kind(typ: pa.DataType, feat: Any) -> str:
    import datasets
    import pyarrow as pa

    if isinstance(feat, datasets.ClassLabel):
        return "class"
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "number"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return "text"
    if pa.types.is_temporal(typ):
        return "time"
    return "other"


def _q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _connect(settings: Any = None) -> Any:
    """An in-memory DuckDB with no file or network access, threads and memory from the settings."""
    import duckdb

    from core.settings import get_settings

    s = settings or get_settings()
    return duckdb.connect(":memory:", config={
        "enable_external_access": "false", "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false", "python_enable_replacements": "false",
        "memory_limit": f"{int(s.sql_memory_mb)}MB", "threads": str(int(s.sql_threads))})


def column_stats(ds: datasets.Dataset, bins: int = HIST_BINS, top_k: int = TOP_K, settings: Any = None
                 ) -> list[ColumnStats]:
    """Statistics and a histogram of every column of `ds`, over all its rows (two DuckDB scans)."""
    from core.data.stats import _dtype

    table = arrow_table(ds)
    stats = [ColumnStats(n, _dtype(f), _kind(table.schema.field(n).type, f)) for n, f in ds.features.items()]
    if not stats:
        return []
    con = _connect(settings)
    try:
        con.register("t", table)
        _first_scan(con, table, stats, top_k)
        _second_scan(con, table, stats, bins, ds.features)
    finally:
        con.close()
    return stats


def _measure(s: ColumnStats, typ: pa.DataType) -> str | None:
    """The SQL expression the numbers are taken of: the value, the length of a text, else None."""
    import pyarrow as pa

    c = _q(s.name)
    if s.kind == "number":
        # pandas reads NaN as missing: so do these statistics (DuckDB takes NaN = NaN, so nullif finds it)
        return f"nullif(CAST({c} AS DOUBLE), 'NaN'::DOUBLE)" if pa.types.is_floating(typ) else f"CAST({c} AS DOUBLE)"
    if s.kind == "text":
        return f"length({c})"  # characters (code points), as Python's len and pandas' str.len
    return None


def _first_scan(con: Any, table: pa.Table, stats: list[ColumnStats], top_k: int) -> None:
    rows = table.num_rows
    qs = "[" + ", ".join(str(q) for q in QUANTILES) + "]"
    exprs: list[str] = ["count(*)"]
    for s in stats:
        c, m = _q(s.name), _measure(s, table.schema.field(s.name).type)
        counted = m if s.kind == "number" else c
        exprs.append(f"count({counted})")
        if s.kind == "other":
            continue
        exprs.append(f"count(DISTINCT {counted})" if rows <= EXACT_DISTINCT_ROWS else
                     f"approx_count_distinct({counted})")
        if m is not None:
            exprs += [f"min({m})", f"max({m})", f"avg({m})", f"stddev_samp({m})", f"quantile_cont({m}, {qs})"]
        elif s.kind == "time":
            exprs += [f"CAST(min({c}) AS VARCHAR)", f"CAST(max({c}) AS VARCHAR)"]
        if s.kind in ("text", "class", "bool"):  # candidates by DuckDB's space-saving sketch, counted exactly later
            exprs.append(f"approx_top_k({c}, {int(top_k)})")
    values = iter(con.execute(f"SELECT {', '.join(exprs)} FROM t").fetchone())
    total = next(values)
    for s in stats:
        s.count = int(next(values))
        s.nulls = total - s.count
        if s.kind == "other":
            continue
        s.distinct, s.distinct_approx = int(next(values)), rows > EXACT_DISTINCT_ROWS
        if s.kind in ("number", "text"):
            s.min, s.max, s.mean, s.std, qv = (next(values) for _ in range(5))
            s.quantiles = dict(zip(QUANTILES, qv, strict=True)) if qv else {}
        elif s.kind == "time":
            s.min, s.max = next(values), next(values)
        if s.kind in ("text", "class", "bool"):
            s.top = [(v, 0) for v in (next(values) or []) if v is not None]


def _bin_edges(s: ColumnStats, bins: int) -> tuple[float, float, int]:
    """(low edge, bin width, number of bins): whole-number widths for integers and lengths, so no bin
    holds more integers than its neighbours."""
    lo, hi = float(s.min), float(s.max)
    if s.dtype.startswith(("int", "uint")) or s.kind == "text":
        width = max(1, math.ceil((hi - lo + 1) / bins))
        return lo, float(width), int((hi - lo) // width) + 1
    if hi == lo:
        return lo, 1.0, 1
    return lo, (hi - lo) / bins, bins


def _second_scan(con: Any, table: pa.Table, stats: list[ColumnStats], bins: int, features: Any) -> None:
    import datasets

    exprs, jobs = [], []
    for s in stats:
        m = _measure(s, table.schema.field(s.name).type)
        if m is not None and s.count and s.min is not None:
            lo, width, n = _bin_edges(s, bins)
            # the bin number of each value; the maximum goes into the last bin (closed right edge)
            # (DuckDB's least() skips a NULL, so nulls are filtered out first)
            exprs.append(f"histogram(least(CAST(floor(({m} - {lo!r}) / {width!r}) AS BIGINT), {n - 1})) "
                         f"FILTER (WHERE {m} IS NOT NULL)")
            jobs.append(("hist", s, (lo, width, n)))
        if s.top:
            values = ", ".join(_literal(v) for v, _ in s.top)
            exprs.append(f"histogram({_q(s.name)}) FILTER (WHERE {_q(s.name)} IN ({values}))")
            jobs.append(("top", s, None))
    if not exprs:
        return
    for (what, s, shape), got in zip(jobs, con.execute(f"SELECT {', '.join(exprs)} FROM t").fetchone(), strict=True):
        got = got or {}
        if what == "hist":
            lo, width, n = shape
            counts = [0] * n
            for b, k in got.items():
                counts[int(b)] += int(k)
            edges = [lo + i * width for i in range(n + 1)]
            if s.kind == "text" or s.dtype.startswith(("int", "uint")):
                edges = [e - 0.5 for e in edges]  # whole numbers sit mid-bin
            s.histogram = Histogram(edges, counts)
        else:
            feat = features[s.name]
            names = feat.int2str if isinstance(feat, datasets.ClassLabel) else None
            ranked = sorted(got.items(), key=lambda kv: (-kv[1], str(kv[0])))
            s.top = [(names(k) if names and k >= 0 else str(k), int(v)) for k, v in ranked]


def _literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


# ------------------------------------------------------------------ token lengths
@dataclass
class TokenLengths:
    """Token counts (special tokens included, as `truncation=True, max_length=…` counts them) of `sampled`
    texts out of the column's `rows` non-null ones."""

    lengths: np.ndarray
    rows: int
    sampled: bool  # a random sample of TOKEN_SAMPLE rows rather than all of them
    seed: int = 0

    def truncated_share(self, max_length: int) -> float:
        """Share of the texts longer than `max_length` tokens (cut by truncation at that length)."""
        return float((self.lengths > int(max_length)).mean()) if len(self.lengths) else 0.0

    def histogram(self, bins: int = HIST_BINS) -> Histogram:
        """Whole-number bins over the lengths (numpy over the sample, which is at most TOKEN_SAMPLE values)."""
        import numpy as np

        if not len(self.lengths):
            return Histogram([], [])
        lo, hi = int(self.lengths.min()), int(self.lengths.max())
        width = max(1, math.ceil((hi - lo + 1) / bins))
        edges = np.arange(lo, hi + width + 1, width) - 0.5
        counts, _ = np.histogram(self.lengths, bins=edges)
        return Histogram(edges.tolist(), counts.tolist())


def token_length_profile(ds: datasets.Dataset, column: str, tokenizer: Any, sample: int = TOKEN_SAMPLE,
                         seed: int = 0) -> TokenLengths:
    """Token lengths of `column`'s texts: all of them when there are at most `sample`, else `sample` rows drawn
    at random (fixed `seed`), encoded in one batch call of the tokenizer."""
    import numpy as np
    import pyarrow as pa

    if column not in ds.column_names:
        raise DataError(f"no column {column!r}; columns: {', '.join(ds.column_names)}")
    col = arrow_table(ds).column(column)
    if _kind(col.type, ds.features[column]) != "text":
        raise DataError(f"column {column!r} holds {col.type} values, not text: token lengths need a text column")
    col = col.drop_null()
    n = len(col)
    sampled = n > sample
    if sampled:
        idx = np.sort(np.random.default_rng(seed).choice(n, int(sample), replace=False))
        col = col.take(pa.array(idx))
    texts = col.to_pylist()
    if not texts:
        return TokenLengths(np.zeros(0, dtype=np.int64), n, sampled, seed)
    ids = tokenizer(texts, add_special_tokens=True, return_attention_mask=False, return_token_type_ids=False,
                    verbose=False)["input_ids"]
    return TokenLengths(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)), n, sampled, seed)
