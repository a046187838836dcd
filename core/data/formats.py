"""The parts of loading besides CSV parsing: typing string columns, JSON Lines, Parquet (used by core.data).

Every cap of `core.data.limits` is checked before the work it bounds: a JSON line's nesting before it is
parsed, its keys before they become columns, a Parquet file's columns, rows and row sizes from its
footer before any row is read, and dictionary-encoded strings before they are expanded.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.data.codes import leading_zero as _leading_zero
from core.data.limits import NAME_CHARS, BoundedLines, Limits, Tally, arrow_depth, arrow_leaves, json_depth
from core.data.types import BATCH_ROWS, SNIFF_BYTES, DataError, LoadReport, check_text

if TYPE_CHECKING:
    import pyarrow as pa

JSON_BATCH_CHARS = 8 * 1024 * 1024  # JSON text per batch: parsed objects take ~10-20x their text
PROBE_CELLS = 64  # a column's first cells are cast alone first: a text column fails there, cheaply
FOOTER_MAX = 64 * 1024 * 1024  # a Parquet footer (schema + row-group index) larger than this is refused unread


def type_columns(raw: Path, out: Path, infer: bool, tally: Tally | None = None, drop_blank: tuple = ()) -> ColumnTyper:
    """Give each string column of the Arrow stream `raw` its type (see `ColumnTyper`) and write it to `out`.

    Both passes go batch by batch over the file; `drop_blank` names columns left out if no cell holds text.
    """
    import pyarrow as pa

    with pa.OSFile(str(raw), "rb") as src:
        names = pa.ipc.open_stream(src).schema.names
    typer = ColumnTyper(names, infer, drop_blank)
    typer.scan(raw, tally)
    write_typed(raw, out, typer, tally)
    return typer


class ColumnTyper:
    """The narrowest type all non-empty cells of each string column cast to (int, float, bool), seen batch by batch.

    Columns with leading zeros ("08123") stay text: they are codes, not numbers. Empty cells of a typed
    column become nulls. The result does not depend on where batches are cut, so every reader agrees.
    """

    def __init__(self, names: list[str], infer: bool, drop_blank: tuple = (), first_only: bool = False):
        import pyarrow as pa

        # first_only: test only the leading candidate of each column while it holds (for a reader that
        # starts over when a type changes: the others matter only once the leading one fails)
        self.names, self.infer, self.first_only = list(names), infer, first_only
        self.candidates = {n: [pa.int64(), pa.float64(), pa.bool_()] if infer else [] for n in names}
        self.seen = dict.fromkeys(names, False)  # any non-empty cell at all
        self.blank = set(drop_blank)  # columns to drop if they stay blank
        self.last: dict[str, pa.Array] = {}  # the last batch's columns cast to their first candidate type
        self.spaced: set[str] = set()  # columns seen with empty cells or spaces around values: always trimmed

    def see(self, batch: pa.RecordBatch) -> None:
        self.last = {}
        for name, arr in zip(self.names, batch.columns, strict=True):
            todo = self.candidates[name]
            if not todo and name not in self.blank:
                continue
            fits = None
            if todo and name not in self.spaced and len(arr) and not arr.null_count:
                # Arrow's casts from text refuse empty strings and spaces around a value: where one succeeds,
                # the column is already what `_trimmed` would make it, and three kernels over it are saved
                fits = self._fits(arr, todo)
                if not fits[0]:
                    fits = None
                    self.spaced.add(name)  # empty cells or spaces (or no type): trimmed from now on
            vals = arr if fits is not None else _trimmed(arr).drop_null()
            if len(vals) == 0:
                continue
            self.seen[name] = True
            self.blank.discard(name)
            if not todo:
                continue
            if _leading_zero(vals):
                self.candidates[name] = []
                continue
            ok, first = fits or self._fits(vals, todo)
            self.candidates[name] = ok
            if first is not None and len(vals) == len(arr):  # the batch's column as typed, for a one-pass writer
                self.last[name] = first

    def _fits(self, vals: pa.Array, todo: list) -> tuple[list, pa.Array | None]:
        """The candidate types all of `vals` cast to (with `first_only`, the first that does and those after
        it), and the cast to the first of them."""
        import pyarrow as pa
        import pyarrow.compute as pc

        ok, first = [], None
        for i, typ in enumerate(todo):
            try:
                if len(vals) > PROBE_CELLS:  # a cast that fails costs ~1 us per bad cell: a text column's
                    pc.cast(vals.slice(0, PROBE_CELLS), typ)  # first cells tell it for ~0.1 ms
                cast = pc.cast(vals, typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
            ok.append(typ)
            if first is None:
                first = cast
            if self.first_only:
                ok += todo[i + 1:]
                break
        return ok, first

    def scan(self, raw: Path, tally: Tally | None = None) -> None:
        """See every batch of the Arrow stream file `raw`."""
        for batch in _stream(raw) if self.infer or self.blank else ():
            if tally:
                tally.tick()
            self.see(batch)

    def types(self) -> dict:
        return {n: c[0] for n, c in self.candidates.items() if c and self.seen[n]}

    def typed(self, batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
        """The batch last seen, with the columns of `schema` only, cast to its types."""
        import pyarrow as pa

        cols = dict(zip(self.names, batch.columns, strict=True))
        out = []
        for f in schema:
            done = self.last.get(f.name)
            out.append(cols[f.name] if pa.types.is_string(f.type) else done if done is not None and done.type == f.type
                       else _typed_column(cols[f.name], f.type, f.name in self.spaced))
        return pa.record_batch(out, schema=schema)


def _trimmed(arr: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    s = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(s, ""), None, s)


def _typed_column(arr: pa.Array, typ: pa.DataType, spaced: bool = True) -> pa.Array:
    """A string column cast to the type its trimmed values all have; empty cells become nulls. Arrow's casts
    from text refuse empty strings and spaces around a value, so a column the typer never saw `spaced`
    casts as it is, the cast of `_trimmed(arr)` without its three kernels."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not spaced and not arr.null_count:
        try:
            return pc.cast(arr, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return pc.cast(_trimmed(arr), typ)


def _stream(raw: Path) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    # plain reads, not a memory map: pages of a map stay resident, these are freed batch by batch
    with pa.OSFile(str(raw), "rb") as src:
        yield from pa.ipc.open_stream(src)


def write_typed(raw: Path, out: Path, typer: ColumnTyper, tally: Tally | None = None, rename: list | None = None) -> None:
    """Write `raw` to `out` with the typer's types, its blank columns dropped and the columns renamed; when
    nothing changes, the file is moved, not rewritten."""
    import os

    import pyarrow as pa

    types, names = typer.types(), rename or typer.names
    keep = [i for i, n in enumerate(typer.names) if n not in typer.blank]
    if not types and len(keep) == len(names) and names == typer.names:
        os.replace(raw, out)
        return
    schema = pa.schema([(names[i], types.get(typer.names[i], pa.string())) for i in keep])
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in _stream(raw):
            cols = batch.columns
            arrays = [_typed_column(cols[i], types[typer.names[i]], typer.names[i] in typer.spaced)
                      if typer.names[i] in types else cols[i] for i in keep]
            typed = pa.record_batch(arrays, schema=schema)
            if tally:
                tally.add(0, typed.nbytes)
            writer.write_batch(typed)


# --- JSON Lines and Parquet --------------------------------------------------------------------

def _json_batches(path: Path, limits: Limits, tally: Tally | None = None) -> Iterator[list[dict]]:
    """Lists of row objects. Each line is checked against the caps before it is parsed (length, nesting)
    and before it is kept (object, named keys, columns); a bad line raises, naming it."""
    rows: list[dict] = []
    top: set[str] = set()
    nested: set[tuple] = set()
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        text = BoundedLines(f, limits.row_bytes)  # a line past the cap stops while it is read
        for n, line in enumerate(text, start=1):
            text.next_record()
            if tally:
                tally.row(f"line {n}")
            if not line.strip():
                continue
            limits.check_nesting(json_depth(line, limits.nesting + 1) - 1, f"line {n}")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"line {n}, character {e.colno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"line {n}: expected a JSON object {{...}} per line, got {type(obj).__name__}")
            if "" in obj:
                raise DataError(f"line {n}: a key is empty (\"\"); every field needs a name")
            if obj and max(map(len, obj)) > NAME_CHARS:
                raise DataError(f"line {n}: a key of {max(map(len, obj)):,} characters; names are at most {NAME_CHARS}")
            top.update(obj)
            if line.count("{") > 1:  # nested objects (or braces in text): their fields are columns too
                _fields(obj, (), nested, n, limits.columns - len(top))
            width = len(top) + len(nested)
            limits.check_columns(width, f"line {n}")
            rows.append(obj)
            if len(rows) >= limits.batch_rows(width, BATCH_ROWS) or text.chars >= JSON_BATCH_CHARS:
                text.take_chars()
                yield rows
                rows = []
    if rows:
        yield rows


def _fields(value: Any, path: tuple, out: set[tuple], line: int, room: int) -> None:
    """Add the paths of the fields of nested objects in `value` to `out`; an empty key raises."""
    if isinstance(value, dict):
        for k, v in value.items():
            if path and not 0 < len(k) <= NAME_CHARS:
                what = "is empty (\"\"); every field needs a name" if not k else \
                    f"has {len(k):,} characters; names are at most {NAME_CHARS}"
                raise DataError(f"line {line}: a key inside {'.'.join(path)[:200]!r} {what}")
            p = (*path, k)
            if path:
                out.add(p)
                if len(out) > room:
                    return  # the caller's column check names the line
            if isinstance(v, (dict, list)):
                _fields(v, p, out, line, room)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                _fields(v, (*path, "[]"), out, line, room)


def check_jsonl_head(path: Path) -> None:
    """Refuse a binary file, or one whose first 64 KB are not UTF-8, before any parsing."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    check_text(path, head)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut by the sample's end
            line = head[: e.start].count(b"\n") + 1
            raise DataError(f"line {line}: not valid UTF-8 (JSON Lines must be UTF-8)") from None


def load_jsonl(path: Path, out: Path, limits: Limits) -> LoadReport:
    """Two passes: find one schema all lines agree on (every cap checked here), then write every batch cast to it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    check_jsonl_head(path)
    schemas = []
    tally = Tally(limits, path.name)
    try:
        for batch in _json_batches(path, limits, tally):
            keys = dict.fromkeys(k for r in batch for k in r)  # from_pylist would see the first row's keys only
            table = pa.Table.from_pydict({k: [r.get(k) for r in batch] for k in keys})
            for name, col in zip(table.column_names, table.columns, strict=True):
                if pa.types.is_string(col.type) and len(col) and (pc.max(pc.binary_length(col)).as_py() or 0) > \
                        limits.cell_bytes:
                    raise DataError(f"{path.name}, column {name!r}: a value over the {limits.cell_bytes:,}-byte "
                                    "cell cap (TORCHLAB_MAX_CELL_BYTES)")
            tally.add(0, table.nbytes)
            schemas.append(table.schema)
        if not schemas:
            raise DataError(f"{path.name} has no JSON objects (only blank lines)")
        schema = pa.unify_schemas(schemas, promote_options="permissive")
        if not schema.names:
            raise DataError(f"{path.name}: every object is empty ({{}}): no fields to make columns of")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise DataError(f"{path.name}: a column changes type between lines ({str(e)[:300]})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path.name}: not valid UTF-8 ({e.reason}); JSON Lines must be UTF-8") from None
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in _json_batches(path, limits):
            tally.tick()
            try:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                raise DataError(f"{path.name}: values of one column have mixed types ({str(e)[:300]})") from None
    return LoadReport(dataset=None, format="jsonl", delimiter=None)  # type: ignore[arg-type]


def load_parquet(path: Path, out: Path, limits: Limits) -> LoadReport:
    """Copy a Parquet file's rows into an Arrow file, batch by batch, after checking its footer against the caps.

    Strings are read dictionary-encoded where the file stores them so, and their expanded size is
    checked before they are expanded: a few KB of dictionary can stand for gigabytes of text.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf, plain = _open_parquet(path, limits)
    md = pf.metadata
    if md.num_rows == 0:
        raise DataError(f"{path.name} has columns ({', '.join(plain.names[:8])}) but no rows")
    if md.num_rows > limits.rows:
        raise DataError(f"{path.name} has {md.num_rows:,} rows, over the {limits.rows:,}-row cap (TORCHLAB_MAX_ROWS)")
    widths = [_width(md.schema.column(j)) for j in range(md.num_columns)]
    values_per_row, bytes_per_row, least_bytes = 1.0, 1.0, 0.0
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        if rg.num_rows == 0:
            continue
        counts = [rg.column(j).num_values for j in range(rg.num_columns)]
        least = sum(c * w for c, w in zip(counts, widths, strict=True))  # what Arrow needs at least for them
        least_bytes += least
        values_per_row = max(values_per_row, sum(counts) / rg.num_rows)
        bytes_per_row = max(bytes_per_row, rg.total_byte_size / rg.num_rows, least / rg.num_rows)
    if bytes_per_row > limits.row_bytes:
        raise DataError(f"{path.name}: rows of {bytes_per_row:,.0f} bytes or more, over the {limits.row_bytes:,}-byte "
                        "row cap (TORCHLAB_MAX_ROW_BYTES)")
    Tally(limits, path.name).add(0, int(least_bytes))  # the least its values can take, before reading any
    batch_rows = int(max(1, min(BATCH_ROWS, 1_000_000 // values_per_row, 64 * 1024 * 1024 // bytes_per_row)))
    strings = [md.schema.column(i).path for i in range(md.num_columns)
               if md.schema.column(i).physical_type == "BYTE_ARRAY"]
    # pages streamed through a 1 MB buffer (not whole column chunks pre-read), strings kept as dictionaries
    pf = pq.ParquetFile(str(path), read_dictionary=strings, pre_buffer=False, buffer_size=1 << 20, **_thrift(limits))
    tally, done = Tally(limits, path.name), 0
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, plain) as writer:
        for batch in pf.iter_batches(batch_size=batch_rows):
            sizes = sum(_row_bytes(a, limits.cell_bytes, path.name) for a in batch.columns)  # before expanding
            if sizes.max(initial=0) > limits.row_bytes:  # one row far above its row group's average
                i = int(sizes.argmax())
                raise DataError(f"{path.name}, row {done + i + 1:,}: {int(sizes[i]):,} bytes, over the "
                                f"{limits.row_bytes:,}-byte row cap (TORCHLAB_MAX_ROW_BYTES)")
            tally.add(batch.num_rows, int(sizes.sum()))
            done += batch.num_rows
            writer.write_batch(batch.cast(plain))
    return LoadReport(dataset=None, format="parquet", delimiter=None)  # type: ignore[arg-type]


def _width(col: Any) -> float:
    """The fewest bytes one value of a Parquet leaf column takes in Arrow (strings: their offset)."""
    physical = col.physical_type
    if physical == "BOOLEAN":
        return 1 / 8
    if physical == "INT32":
        return {"INT_8": 1, "UINT_8": 1, "INT_16": 2, "UINT_16": 2}.get(str(col.converted_type), 4)
    if physical == "FIXED_LEN_BYTE_ARRAY":
        return max(1, col.length)
    return {"INT64": 8, "INT96": 8, "FLOAT": 4, "DOUBLE": 8}.get(physical, 4)


def _thrift(limits: Limits) -> dict:
    """Limits for parsing the footer: entries per list (columns, row groups) and schema depth (a list is 2 levels)."""
    return {"thrift_container_size_limit": max(100_000, 4 * limits.columns),
            "schema_depth_limit": 3 * limits.nesting + 8}


def _open_parquet(path: Path, limits: Limits) -> tuple[Any, pa.Schema]:
    """The ParquetFile and its schema, after checking the footer's size, the names, columns and nesting."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 8))
        tail = f.read(8)
    if size < 12 or tail[4:] != b"PAR1":
        raise DataError(f"{path.name} is not a readable Parquet file (no PAR1 footer at its end)")
    footer = int.from_bytes(tail[:4], "little")
    if footer > FOOTER_MAX:
        raise DataError(f"{path.name}: a {footer:,}-byte Parquet footer: too many columns or row groups to read")
    try:
        pf = pq.ParquetFile(str(path), **_thrift(limits))
    except (pa.ArrowException, OSError) as e:
        more = " (too many columns or row groups, or too deep a schema, for the caps)" if "limit" in str(e).lower() \
            else ""
        raise DataError(f"{path.name} is not a readable Parquet file{more} ({str(e)[:200]})") from None
    schema = pa.schema([f.with_type(_plain(f.type)) for f in pf.schema_arrow])  # categoricals as their values
    seen: set[str] = set()
    for i, name in enumerate(schema.names, start=1):
        if not name.strip():
            raise DataError(f"{path.name}: column {i} has an empty name; name it before loading")
        if len(name) > NAME_CHARS:
            raise DataError(f"{path.name}: column {i}'s name is {len(name):,} characters; names are at most {NAME_CHARS}")
        if name in seen:
            raise DataError(f"{path.name}: column {i} is named {name!r} like an earlier column; column names "
                            "must be unique (rename one before loading)")
        seen.add(name)
    limits.check_columns(sum(arrow_leaves(f.type) for f in schema), path.name)
    for f in schema:
        limits.check_nesting(arrow_depth(f.type), f"{path.name}, column {f.name!r}")
    return pf, schema


def _plain(typ: Any) -> Any:
    """`typ` with every dictionary type replaced by its value type."""
    import pyarrow as pa

    if pa.types.is_dictionary(typ):
        return _plain(typ.value_type)
    if pa.types.is_struct(typ):
        return pa.struct([typ.field(i).with_type(_plain(typ.field(i).type)) for i in range(typ.num_fields)])
    if pa.types.is_map(typ):
        return pa.map_(typ.key_field.with_type(_plain(typ.key_type)), typ.item_field.with_type(_plain(typ.item_type)))
    if pa.types.is_list(typ):
        return pa.list_(typ.value_field.with_type(_plain(typ.value_type)))
    if pa.types.is_large_list(typ):
        return pa.large_list(typ.value_field.with_type(_plain(typ.value_type)))
    if pa.types.is_fixed_size_list(typ):
        return pa.list_(typ.value_field.with_type(_plain(typ.value_type)), typ.list_size)
    return typ


def _row_bytes(arr: Any, cell_cap: int, name: str) -> Any:
    """Bytes each row of a column takes once its dictionaries are expanded, found from offsets and
    dictionary lengths without expanding anything; a top-level text cell over the cap raises."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = arr.type
    if pa.types.is_dictionary(typ) or pa.types.is_string(typ) or pa.types.is_large_string(typ) \
            or pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        lengths = pc.take(pc.binary_length(arr.dictionary), arr.indices) if pa.types.is_dictionary(typ) \
            else pc.binary_length(arr)
        lengths = pc.fill_null(lengths, 0).to_numpy().astype(np.int64)
        if lengths.max(initial=0) > cell_cap:
            raise DataError(f"{name}: a value of {int(lengths.max()):,} bytes, over the {cell_cap:,}-byte cell cap "
                            "(TORCHLAB_MAX_CELL_BYTES)")
        return lengths + 4
    starts = np.arange(len(arr), dtype=np.int64)
    return _span_bytes(arr, starts, starts + 1)


def _span_bytes(arr: Any, starts: Any, ends: Any) -> Any:
    """For each i, the bytes of elements starts[i]:ends[i] of `arr` (nested values included)."""
    import numpy as np
    import pyarrow as pa

    typ, count = arr.type, ends - starts
    if pa.types.is_dictionary(typ):
        arr = arr.cast(typ.value_type) if len(arr) < 1_000_000 else arr.indices  # nested: rare, bounded
        typ = arr.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ) \
            or pa.types.is_large_binary(typ):
        large = pa.types.is_large_string(typ) or pa.types.is_large_binary(typ)
        offsets = np.frombuffer(arr.buffers()[1], np.int64 if large else np.int32)[arr.offset:arr.offset + len(arr) + 1]
        return offsets[ends].astype(np.int64) - offsets[starts] + 4 * count
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_map(typ):
        offsets = arr.offsets.to_numpy().astype(np.int64)
        return _span_bytes(arr.values, offsets[starts], offsets[ends]) + 8 * count
    if pa.types.is_fixed_size_list(typ):
        return _span_bytes(arr.flatten(), starts * typ.list_size, ends * typ.list_size)
    if pa.types.is_struct(typ):
        return sum((_span_bytes(child, starts, ends) for child in arr.flatten()), count)
    try:
        width = max(1, typ.bit_width // 8)
    except ValueError:  # a type without a fixed width: count it as 8 bytes a value
        width = 8
    return count * width


