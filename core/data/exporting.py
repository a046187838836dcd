"""Exporting one split as CSV or Parquet; CSV text is neutralised against spreadsheet formulas.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(…)`,
`+cmd|' /C calc'!A0`, `@SUM(…)`), and some also after a tab, a carriage return, leading spaces or the
full-width forms of those signs. Following OWASP's CSV-injection advice, every *text* cell (and column
name) that starts so gets a leading `'`, which spreadsheets show as text, and every text cell is
quoted. Numbers are written as numbers: a numeric column's -5 is a value, not a formula. Columns a
CSV cell can't hold (lists, structs, bytes) are refused up front, naming them.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.data.types import DataError

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

EXPORT_FORMATS = ("csv", "parquet")
EXPORT_BATCH = 10_000
# a formula sign, maybe after whitespace; or a tab / CR first (OWASP's list, plus the full-width signs)
FORMULA_START = r"^[ \t\r\n\x{00A0}\x{3000}]*[=+\-@\x{FF1D}\x{FF0B}\x{FF0D}\x{FF20}]|^[\t\r]"
CSV_NOTE = ("CSV is neutralised against spreadsheet formulas (OWASP CSV injection): a text cell or column name "
            "that starts with =, +, -, @, a tab or a carriage return gets a leading ' so a spreadsheet shows it "
            "as text instead of running it. Numbers stay numbers. Parquet keeps every value exactly.")


def check_export(ds: datasets.Dataset, fmt: str) -> None:
    """Refuse, before any work, a format other than csv / parquet and columns CSV can't hold."""
    if fmt not in EXPORT_FORMATS:
        raise DataError(f"export as csv or parquet, not {fmt!r}")
    if fmt == "csv":
        schema = ds.features.arrow_schema
        bad = [f"{f.name!r} ({_kind(f.type)})" for f in schema if not _csv_cell(f.type)]
        if bad:
            raise DataError(f"CSV cells can't hold the column{'s' * (len(bad) > 1)} {', '.join(bad[:8])}"
                            f"{' …' if len(bad) > 8 else ''}: export as Parquet, or drop "
                            f"{'them' if len(bad) > 1 else 'it'} with 'Select columns' first")


def export(ds: datasets.Dataset, fmt: str, dest: Path) -> Path:
    """Write one split to `dest` as CSV (class ids as their names, text neutralised) or Parquet; return it."""
    check_export(ds, fmt)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        if fmt == "csv":
            _write_csv(ds, tmp)
        else:
            ds.to_parquet(str(tmp))
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def neutralise(arr: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Text cells that a spreadsheet would run as a formula, with a `'` in front; other cells unchanged."""
    import pyarrow.compute as pc

    hit = pc.match_substring_regex(arr, FORMULA_START)
    return pc.if_else(hit, pc.binary_join_element_wise("'", arr, ""), arr)


def _write_csv(ds: datasets.Dataset, path: Path) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    labels = {n: pa.array(f.names, pa.string()) for n, f in ds.features.items() if isinstance(f, datasets.ClassLabel)}
    names = neutralise(pa.array(ds.column_names, pa.string())).to_pylist()
    writer = None
    try:
        for table in ds.with_format("arrow").iter(batch_size=EXPORT_BATCH):
            cols = []
            for name, col in zip(table.column_names, table.columns, strict=True):
                if name in labels:  # names read better than ids in a spreadsheet; -1 (no label) stays empty
                    ids = pc.if_else(pc.less(col, 0), pa.scalar(None, col.type), col)
                    col = pc.take(labels[name], ids)
                if _texty(col.type):
                    col = neutralise(col)
                cols.append(col)
            out = pa.Table.from_arrays(cols, names=names)
            if writer is None:
                writer = pacsv.CSVWriter(str(path), out.schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
            writer.write_table(out)
        if writer is None:  # no rows: the header alone
            pacsv.write_csv(pa.table({n: pa.array([], pa.string()) for n in names}), str(path))
    finally:
        if writer is not None:
            writer.close()


def _texty(typ: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ)


def _csv_cell(typ: Any) -> bool:
    import pyarrow as pa

    return (_texty(typ) or pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)
            or pa.types.is_decimal(typ) or pa.types.is_temporal(typ) or pa.types.is_null(typ))


def _kind(typ: Any) -> str:
    import pyarrow as pa

    if pa.types.is_struct(typ):
        return "structs"
    if pa.types.is_map(typ):
        return "maps"
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ):
        return "bytes"
    if pa.types.is_nested(typ):
        return f"lists: {typ}"
    return str(typ)
