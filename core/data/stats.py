"""Browsing a dataset without reading it whole: pages of rows, column statistics, label counts, search.

Every scan goes batch by batch over the memory-mapped Arrow data with `pyarrow.compute`, so the
memory it needs is one batch plus the results, not the dataset.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.data.types import DataError

if TYPE_CHECKING:
    import datasets
    import pandas as pd
    import pyarrow as pa

PAGE_ROWS = 100
SCAN_BATCH = 50_000
MAX_DISTINCT = 100_000  # distinct values counted exactly up to this many, then reported as "more than"
LABEL_NAMES = ("label", "labels", "class", "target", "sentiment", "category")


@dataclass
class ColumnStats:
    """What one column holds: type, nulls, distinct values, and numbers or text lengths."""

    name: str
    dtype: str
    nulls: int = 0
    distinct: int = 0
    distinct_capped: bool = False  # more than MAX_DISTINCT distinct values
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    lengths: list[int] = field(default_factory=list)  # text: character length of every non-null cell


def _batches(ds: datasets.Dataset, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Arrow tables of SCAN_BATCH rows (respecting any select/shuffle indices)."""
    d = ds.select_columns(columns) if columns else ds
    yield from d.with_format("arrow").iter(batch_size=SCAN_BATCH)


def page(ds: datasets.Dataset, start: int, size: int = PAGE_ROWS) -> pd.DataFrame:
    """Rows start..start+size as a table, class ids shown as their names, index = row number."""
    import datasets
    import pandas as pd

    start = max(0, min(int(start), max(len(ds) - 1, 0)))
    stop = min(start + size, len(ds))
    df = pd.DataFrame(ds[start:stop]) if stop > start else pd.DataFrame(columns=ds.column_names)
    for name, feat in ds.features.items():
        if isinstance(feat, datasets.ClassLabel) and name in df:
            df[name] = [feat.int2str(v) if v is not None and v >= 0 else None for v in df[name]]
    df.index = range(start, start + len(df))
    return df


def row(ds: datasets.Dataset, index: int) -> dict[str, Any]:
    """One row as a dict (for the detail view of long texts); a bad index raises DataError."""
    if not 0 <= int(index) < len(ds):
        raise DataError(f"row {index} does not exist: rows are 0 to {len(ds) - 1:,}")
    return ds[int(index)]


def column_stats(ds: datasets.Dataset) -> list[ColumnStats]:
    """Statistics of every column, in one pass over the data."""
    import datasets
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    stats = {n: ColumnStats(n, _dtype(f)) for n, f in ds.features.items()}
    classes = {n for n, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
    distinct: dict[str, set] = {n: set() for n in stats}
    sums: dict[str, float] = dict.fromkeys(stats, 0.0)
    counts: dict[str, int] = dict.fromkeys(stats, 0)
    lengths: dict[str, list] = {n: [] for n in stats}
    for table in _batches(ds):
        for name in table.column_names:
            col, s = table.column(name), stats[name]
            s.nulls += col.null_count
            if not s.distinct_capped:
                try:
                    distinct[name].update(pc.unique(col).to_pylist())
                except (pa.ArrowNotImplementedError, TypeError):  # nested values: no distinct count
                    pass
                if len(distinct[name]) > MAX_DISTINCT:
                    s.distinct_capped, distinct[name] = True, set()
            typ = col.type
            if name in classes:
                continue
            if pa.types.is_integer(typ) or pa.types.is_floating(typ):
                mm = pc.min_max(col).as_py()
                if mm["min"] is not None:
                    s.min = mm["min"] if s.min is None else min(s.min, mm["min"])
                    s.max = mm["max"] if s.max is None else max(s.max, mm["max"])
                sums[name] += pc.sum(col).as_py() or 0.0
                counts[name] += len(col) - col.null_count
            elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
                lengths[name].append(pc.utf8_length(col).drop_null().to_numpy())
    for name, s in stats.items():
        s.distinct = MAX_DISTINCT if s.distinct_capped else len(distinct[name] - {None})
        if counts[name]:
            s.mean = sums[name] / counts[name]
        if lengths[name]:
            arr = np.concatenate(lengths[name])
            s.lengths = arr.tolist() if len(arr) <= 200_000 else arr[:: max(1, len(arr) // 200_000)].tolist()
            if len(arr):
                s.min, s.max, s.mean = int(arr.min()), int(arr.max()), float(arr.mean())
    return list(stats.values())


def _dtype(feat: Any) -> str:
    import datasets

    if isinstance(feat, datasets.ClassLabel):
        return f"class label ({feat.num_classes})"
    return str(getattr(feat, "dtype", type(feat).__name__))


def guess_label_column(ds: datasets.Dataset) -> str | None:
    """A ClassLabel column, else one with a usual label name, else None."""
    import datasets

    for name, feat in ds.features.items():
        if isinstance(feat, datasets.ClassLabel):
            return name
    lower = {n.lower(): n for n in ds.column_names}
    return next((lower[n] for n in LABEL_NAMES if n in lower), None)


def text_columns(ds: datasets.Dataset) -> list[str]:
    """String columns, longest texts first (judged on the first rows)."""
    import datasets

    cols = [n for n, f in ds.features.items() if f == datasets.Value("string") or f == datasets.Value("large_string")]
    head = ds[: min(len(ds), 200)]
    return sorted(cols, key=lambda c: -sum(len(v or "") for v in head[c]))


def label_counts(ds: datasets.Dataset, column: str) -> dict[str, int]:
    """How often each value of `column` occurs (class names for a ClassLabel), most common first."""
    import datasets
    import pyarrow.compute as pc

    if column not in ds.column_names:
        raise DataError(f"no column {column!r}; columns: {', '.join(ds.column_names)}")
    _scalar(ds, column, "counted")
    feat = ds.features[column]
    total: Counter = Counter()
    for table in _batches(ds, [column]):
        for item in pc.value_counts(table.column(column)).to_pylist():
            total[item["values"]] += item["counts"]
    if isinstance(feat, datasets.ClassLabel):
        return {(feat.int2str(k) if k is not None and k >= 0 else "(none)"): v for k, v in total.most_common()}
    return {("(null)" if k is None else str(k)): v for k, v in total.most_common()}


def search(ds: datasets.Dataset, column: str, query: str, limit: int = PAGE_ROWS) -> tuple[list[int], int]:
    """(first `limit` row numbers whose `column` contains `query`, case-insensitive; total matches)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if column not in ds.column_names:
        raise DataError(f"no column {column!r}; columns: {', '.join(ds.column_names)}")
    _scalar(ds, column, "searched")
    if not query:
        return [], 0
    hits: list[int] = []
    total, offset = 0, 0
    for table in _batches(ds, [column]):
        col = table.column(column)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            col = col.cast(pa.string())  # numbers and dates are searched as they are shown
        mask = pc.fill_null(pc.match_substring(col, query, ignore_case=True), False)
        idx = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        total += len(idx)
        if len(hits) < limit:
            hits.extend(int(i) + offset for i in idx[: limit - len(hits)])
        offset += len(col)
    return hits, total


def _scalar(ds: datasets.Dataset, column: str, what: str) -> None:
    """Refuse a column of lists, structs or bytes where single values are needed, naming it."""
    import pyarrow as pa

    typ = ds.features.arrow_schema.field(column).type
    if pa.types.is_nested(typ) or pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        raise DataError(f"column {column!r} holds {typ} values, which can't be {what}: pick a column of single "
                        "values (text, numbers, labels)")


def token_lengths(ds: datasets.Dataset, column: str, tokenizer: Any, limit: int = 2_000) -> list[int]:
    """Token counts of the first `limit` texts of `column` (no special tokens added)."""
    if column not in ds.column_names:
        raise DataError(f"no column {column!r}; columns: {', '.join(ds.column_names)}")
    texts = [t or "" for t in ds[: min(limit, len(ds))][column]]
    if not texts:
        return []
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [len(ids) for ids in enc]


def tokenizer_names() -> list[str]:
    """Tokenizers the histogram can use: the tokenizer page's registry, else the packaged ones."""
    try:
        from core.tokenizers.library import available
    except ImportError:  # before the tokenizer registry exists, fall back to the packaged assets
        from core.assets import names

        return names("tokenizer")
    return available()


def load_tokenizer(name: str) -> Any:
    """A tokenizer by the name `tokenizer_names` gave."""
    try:
        from core.tokenizers.library import load
    except ImportError:
        from core.assets import load_tokenizer as load
    return load(name)
