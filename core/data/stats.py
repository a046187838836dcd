"""Browsing a dataset without reading it whole: pages of rows, label counts, rows of a class, search.

Scans use `pyarrow.compute` over the memory-mapped Arrow data (search batch by batch, so it needs one
batch plus the results); column statistics and histograms are DuckDB's, in `core.data.colstats`.
"""
from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.data.colstats import ColumnStats, arrow_table, column_stats, feature_dtype  # noqa: F401  (the API callers know)
from core.data.types import DataError

if TYPE_CHECKING:
    import datasets
    import numpy as np
    import pandas as pd
    import pyarrow as pa

PAGE_ROWS = 100
SCAN_BATCH = 50_000
LABEL_NAMES = ("label", "labels", "class", "target", "sentiment", "category")


def _batches(ds: datasets.Dataset, columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Arrow tables of SCAN_BATCH rows (respecting any select/shuffle indices)."""
    d = ds.select_columns(columns) if columns else ds
    yield from d.with_format("arrow").iter(batch_size=SCAN_BATCH)


def _column_slices(ds: datasets.Dataset, column: str) -> Iterator[pa.ChunkedArray]:
    """`column` in SCAN_BATCH-row slices, in row order: zero-copy views of the mapped file, or (where a
    select/shuffle left an indices mapping) batches taken through it, so only a batch is held at a time."""
    if getattr(ds, "_indices", None) is None:
        col = ds.data.table.column(column)
        for start in range(0, len(col), SCAN_BATCH):
            yield col.slice(start, SCAN_BATCH)
    else:
        for table in _batches(ds, [column]):
            yield table.column(column)


def _parallel(items: Iterator[Any], fn: Callable[[Any], Any]) -> Iterator[tuple[Any, Any]]:
    """(item, fn(item)) in order, `fn` on up to one thread per core with at most two items per thread in flight.

    `pyarrow.compute` runs one kernel call on one thread; a scan over a 1 GB column is many independent
    calls, so they are spread over the cores here (as DuckDB does for the SQL box)."""
    import os
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    with ThreadPoolExecutor(workers, thread_name_prefix="scan") as pool:
        queue: deque = deque()
        for item in items:
            queue.append((item, pool.submit(fn, item)))
            if len(queue) >= 2 * workers:
                item0, fut = queue.popleft()
                yield item0, fut.result()
        while queue:
            item0, fut = queue.popleft()
            yield item0, fut.result()


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


def text_columns(ds: datasets.Dataset) -> list[str]:
    """String columns, longest texts first (judged on the first rows)."""
    import datasets

    cols = [n for n, f in ds.features.items() if f == datasets.Value("string") or f == datasets.Value("large_string")]
    head = ds[: min(len(ds), 200)]
    return sorted(cols, key=lambda c: -sum(len(v or "") for v in head[c]))


def label_counts(ds: datasets.Dataset, column: str) -> dict[str, int]:
    """How often each value of `column` occurs (class names for a ClassLabel), most common first (ties in
    order of first appearance); one `pyarrow.compute.value_counts` over the whole column."""
    import datasets
    import pyarrow.compute as pc

    if column not in ds.column_names:
        raise DataError(f"no column {column!r}; columns: {', '.join(ds.column_names)}")
    _scalar(ds, column, "counted")
    feat = ds.features[column]
    counts = pc.value_counts(arrow_table(ds).column(column)).to_pylist()  # one entry per distinct value
    counts.sort(key=lambda item: -item["counts"])  # stable: ties stay in order of appearance
    if isinstance(feat, datasets.ClassLabel):
        return {(feat.int2str(c["values"]) if c["values"] is not None and c["values"] >= 0 else "(none)"): c["counts"]
                for c in counts}
    return {("(null)" if c["values"] is None else str(c["values"])): c["counts"] for c in counts}


def class_rows(ds: datasets.Dataset, column: str, value: str) -> np.ndarray:
    """Row numbers whose `column` shows as `value` in `label_counts` (a class name, "(null)", or the value as text)."""
    import datasets
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if column not in ds.column_names:
        raise DataError(f"no column {column!r}; columns: {', '.join(ds.column_names)}")
    _scalar(ds, column, "filtered")
    col, feat = arrow_table(ds).column(column), ds.features[column]
    if value in ("(null)", "(none)"):
        mask = pc.is_null(col)
        if isinstance(feat, datasets.ClassLabel):
            mask = pc.or_(mask, pc.fill_null(pc.less(col, 0), False))
    else:
        if isinstance(feat, datasets.ClassLabel):
            if value not in feat.names:
                raise DataError(f"{column!r} has no class {value!r}; classes: {', '.join(feat.names)}")
            target = pa.scalar(feat.str2int(value), col.type)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            target = value
        else:  # the value whose str() label_counts shows (Arrow's own cast writes true / 1 for True / 1.0)
            shown = {str(v): v for v in pc.unique(col).to_pylist() if v is not None}
            if value not in shown:
                return np.zeros(0, dtype=np.int64)
            target = pa.scalar(shown[value], col.type)
        mask = pc.fill_null(pc.equal(col, target), False)
    return np.flatnonzero(mask.to_numpy(zero_copy_only=False))


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

    def match(col: pa.ChunkedArray) -> np.ndarray:  # Arrow's kernel runs without the GIL: slices go in parallel
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            col = col.cast(pa.string())  # numbers and dates are searched as they are shown
        return np.flatnonzero(pc.fill_null(pc.match_substring(col, query, ignore_case=True), False)
                              .to_numpy(zero_copy_only=False))

    hits: list[int] = []
    total, offset = 0, 0
    for col, found in _parallel(_column_slices(ds, column), match):
        total += len(found)
        if len(hits) < limit:
            hits.extend(int(i) + offset for i in found[: limit - len(hits)])
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


# ------------------------------------------------------------------ guessing columns and default formulas
# Judged on the data's types and on the first GUESS_ROWS rows, never on column names alone (a name only
# breaks a tie), so the defaults follow whatever file is in hand.
GUESS_ROWS = 10_000
MAX_CLASSES = 100  # a label has at most this many distinct values…
MAX_CLASS_SHARE = 0.5  # …and at most this share of the rows (else it names rows, not classes)
LONG_TEXT = 50  # mean characters from which a string column is free text (never a label)
_ID_NAME = re.compile(r"(^|[_\W])(id|ids|idx|index|uuid|guid|key)$|^(id|idx|uuid)([_\W]|$)|[a-z]Id$", re.I)


@dataclass
class ColumnProfile:
    """One column as the guesses see it (on the first GUESS_ROWS rows)."""

    name: str
    kind: str  # "class", "bool", "int", "float", "text" or "other"
    distinct: int = 0
    nulls: int = 0
    mean_len: float = 0.0  # text: characters
    median: float | None = None  # text: length in characters; numbers: value
    max: float | None = None  # likewise
    first: Any = None  # the most common value


@dataclass
class ColumnGuess:
    """The guessed text and label columns, with why, as the page says it."""

    text: str | None
    label: str | None
    text_why: str
    label_why: str
    rows: int = 0
    profiles: dict[str, ColumnProfile] = field(default_factory=dict)


def profile_columns(ds: datasets.Dataset, sample: int = GUESS_ROWS) -> dict[str, ColumnProfile]:
    """Kind, distinct values, nulls, lengths and medians of every column over the first `sample` rows."""
    import datasets
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    head = ds.select(range(min(len(ds), sample))).with_format("arrow")[:] if len(ds) else None
    out = {}
    for name, feat in ds.features.items():
        typ = ds.features.arrow_schema.field(name).type
        kind = ("class" if isinstance(feat, datasets.ClassLabel) else "bool" if pa.types.is_boolean(typ)
                else "int" if pa.types.is_integer(typ) else "float" if pa.types.is_floating(typ)
                else "text" if pa.types.is_string(typ) or pa.types.is_large_string(typ) else "other")
        p = out[name] = ColumnProfile(name, kind)
        if head is None or kind == "other":
            continue
        col = head.column(name)
        p.nulls = col.null_count
        counts = pc.value_counts(col.drop_null()).to_pylist()
        p.distinct = len(counts)
        if counts:
            p.first = max(counts, key=lambda c: c["counts"])["values"]
        values = pc.utf8_length(col) if kind == "text" else col
        nums = values.drop_null().to_numpy(zero_copy_only=False).astype(float) if kind != "bool" else None
        if nums is not None and len(nums):
            p.median, p.max = float(np.median(nums)), float(nums.max())
            if kind == "text":
                p.mean_len = float(nums.mean())
    return out


def id_like(p: ColumnProfile, rows: int) -> str:
    """Why the column identifies rows ('an id' by its name, 'unique per row' of more than ten), else ''."""
    if _ID_NAME.search(p.name):
        return "an id"
    return "unique per row" if p.kind in ("int", "text") and rows > 10 and p.distinct >= rows - p.nulls else ""


def guess_columns(ds: datasets.Dataset, sample: int = GUESS_ROWS) -> ColumnGuess:
    """The text column (the longest strings) and the label column (few classes), each with its reason.

    A label is a ClassLabel, else a string, true/false or integer column with 2..MAX_CLASSES distinct
    values and at most MAX_CLASS_SHARE of the rows, that is neither id-like nor long free text; among
    those a usual label name wins, then text before true/false before integers, then the fewest classes.
    """
    profiles = profile_columns(ds, sample)
    n = min(len(ds), sample)
    over = f"over {n:,} rows" if len(ds) <= sample else f"in the first {n:,} rows"
    label, label_why = _guess_label(profiles, n, over)
    texts = sorted((p for p in profiles.values() if p.kind == "text" and p.name != label), key=lambda p: -p.mean_len)
    if texts:
        t = texts[0]
        text_why = f"text column: {t.name} — the longest texts ({t.mean_len:,.0f} characters on average)"
        if len(texts) > 1:
            text_why += "; " + ", ".join(f"{o.name} averages {o.mean_len:,.0f}" for o in texts[1:4])
    else:
        text_why = "no column holds text (strings)"
    return ColumnGuess(texts[0].name if texts else None, label, text_why, label_why, n, profiles)


def _guess_label(profiles: dict[str, ColumnProfile], rows: int, over: str) -> tuple[str | None, str]:
    classes = [p for p in profiles.values() if p.kind == "class"]
    if classes:
        return classes[0].name, f"label column: {classes[0].name} — a ClassLabel column ({classes[0].distinct} classes {over})"
    cap = min(MAX_CLASSES, max(2, int(rows * MAX_CLASS_SHARE)))
    ok, not_ok = [], []
    for p in profiles.values():
        if p.kind not in ("text", "bool", "int"):
            continue
        why = (f"is {id_like(p, rows)}" if id_like(p, rows) else "is free text" if p.kind == "text" and
               p.mean_len >= LONG_TEXT else "has one value" if p.distinct < 2 else
               f"has {p.distinct:,}" if p.distinct > cap else "")
        (not_ok if why else ok).append((p, why))
    rank = {"text": 0, "bool": 1, "int": 2}
    ok.sort(key=lambda pw: (pw[0].name.lower() not in LABEL_NAMES, rank[pw[0].kind], pw[0].distinct))
    alternatives = [(p, f"has {p.distinct:,}") for p, _ in ok[1:]]
    others = [f"{p.name} {w}" for p, w in sorted(not_ok + alternatives, key=lambda pw: rank[pw[0].kind])[:3]]
    tail = ("; " + ", ".join(others)) if others else ""
    if not ok:
        return None, f"no column looks like a label (2 to {cap:,} distinct text, true/false or integer values){tail}"
    p = ok[0][0]
    return p.name, f"label column: {p.name} — {p.distinct:,} classes {over}{tail}"


def guess_label_column(ds: datasets.Dataset) -> str | None:
    """The label column `guess_columns` picks (a ClassLabel, else few classes), or None."""
    return guess_columns(ds).label


def default_formula(ds: datasets.Dataset, guess: ColumnGuess | None = None) -> str:
    """A filter formula over a real column, chosen by type: a length test on free text, a comparison with
    the median of a number, a length test on short text, a label equality, a true/false column."""
    g = guess or guess_columns(ds)
    usable = {n: p for n, p in g.profiles.items() if n.isidentifier() and not keyword.iskeyword(n) and p.distinct}
    rows = g.rows

    def guard(p: ColumnProfile, test: str) -> str:
        return f"{p.name} is not None and {test}" if p.nulls else test

    def above(p: ColumnProfile, value: str) -> str:  # the median, rounded, and never above every row
        t = _nice(p.median) if p.kind != "text" else int(_nice(p.median))
        return guard(p, f"{value} {'>' if (p.max or 0) > t else '>='} {t}")

    text = usable.get(g.text) if g.text else None
    if text is not None and text.mean_len >= LONG_TEXT:
        return above(text, f"len({text.name})")
    numbers = sorted((p for p in usable.values() if p.kind in ("float", "int") and p.name != g.label
                      and not id_like(p, rows) and p.median is not None), key=lambda p: p.kind != "float")
    if numbers:
        return above(numbers[0], numbers[0].name)
    if text is not None:
        return above(text, f"len({text.name})")
    for p in sorted(usable.values(), key=lambda p: p.name != g.label):  # one class of the label first
        if p.kind in ("class", "text", "int") and p.first is not None:
            return guard(p, f"{p.name} == {p.first!r}")
        if p.kind == "bool":
            return f"{p.name} == True"
    name = next((n for n in usable), None) or next((n for n in ds.column_names if n.isidentifier()), None)
    return f"{name} is not None" if name else "True"


def _nice(x: float | None) -> int | float:
    """`x` to two significant digits, as an int when whole (a formula a person would type)."""
    if not x:
        return 0
    v = float(f"{x:.2g}")
    return int(v) if v.is_integer() else v
