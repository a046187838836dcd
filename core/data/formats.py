"""The parts of loading besides CSV parsing: typing string columns, JSON Lines, Parquet (used by core.data)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from core.data.types import BATCH_ROWS, SNIFF_BYTES, DataError, LoadReport, check_text

if TYPE_CHECKING:
    import pyarrow as pa


def type_columns(raw: Path, out: Path, infer: bool) -> None:
    """Give each string column the narrowest type all its non-empty cells cast to (int, float, bool).

    Columns with leading zeros ("08123") stay text: they are codes, not numbers. Empty cells of a
    typed column become nulls. Both passes go batch by batch over the memory-mapped file.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    def trimmed(arr: pa.Array) -> pa.Array:
        s = pc.utf8_trim_whitespace(arr)
        return pc.if_else(pc.equal(s, ""), None, s)

    def batches() -> Iterator[pa.RecordBatch]:
        # plain reads, not a memory map: pages of a map stay resident, these are freed batch by batch
        with pa.OSFile(str(raw), "rb") as src:
            yield from pa.ipc.open_stream(src)

    with pa.OSFile(str(raw), "rb") as src:
        names = pa.ipc.open_stream(src).schema.names
    candidates = {n: [pa.int64(), pa.float64(), pa.bool_()] if infer else [] for n in names}
    seen = dict.fromkeys(names, False)  # any non-empty cell at all
    for batch in batches() if infer else ():
        for name, arr in zip(names, batch.columns, strict=True):
            if not candidates[name]:
                continue
            vals = trimmed(arr).drop_null()
            if len(vals) == 0:
                continue
            seen[name] = True
            if pc.any(pc.match_substring_regex(vals, r"^[+-]?0\d")).as_py():
                candidates[name] = []
                continue
            ok = []
            for typ in candidates[name]:
                try:
                    pc.cast(vals, typ)
                    ok.append(typ)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    pass
            candidates[name] = ok
    types = {n: c[0] for n, c in candidates.items() if c and seen[n]}
    schema = pa.schema([(n, types.get(n, pa.string())) for n in names])
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches():
            arrays = [pc.cast(trimmed(a), types[n]) if n in types else a
                      for n, a in zip(names, batch.columns, strict=True)]
            writer.write_batch(pa.record_batch(arrays, schema=schema))


# --- JSON Lines and Parquet --------------------------------------------------------------------

def _json_batches(path: Path, cap: int) -> Iterator[list[dict]]:
    """Lists of row objects; a line that is not a JSON object raises, naming the line."""
    rows: list[dict] = []
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if len(line.encode("utf-8")) > cap * 4:
                raise DataError(f"line {n}: {len(line):,} characters, over the cell cap (TORCHLAB_MAX_CELL_BYTES)")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"line {n}, character {e.colno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"line {n}: expected a JSON object {{...}} per line, got {type(obj).__name__}")
            rows.append(obj)
            if len(rows) >= BATCH_ROWS:
                yield rows
                rows = []
    if rows:
        yield rows


def load_jsonl(path: Path, out: Path, cap: int) -> LoadReport:
    """Two passes: find one schema all lines agree on, then write every batch cast to it."""
    import pyarrow as pa

    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    check_text(path, head)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut by the sample's end
            line = head[: e.start].count(b"\n") + 1
            raise DataError(f"line {line}: not valid UTF-8 (JSON Lines must be UTF-8)") from None
    schemas = []
    try:
        for batch in _json_batches(path, cap):
            keys = dict.fromkeys(k for r in batch for k in r)  # from_pylist would see the first row's keys only
            schemas.append(pa.Table.from_pydict({k: [r.get(k) for r in batch] for k in keys}).schema)
        if not schemas:
            raise DataError(f"{path.name} has no JSON objects (only blank lines)")
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise DataError(f"{path.name}: a column changes type between lines ({e})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path.name}: not valid UTF-8 ({e.reason}); JSON Lines must be UTF-8") from None
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in _json_batches(path, cap):
            try:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=schema))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                raise DataError(f"{path.name}: values of one column have mixed types ({e})") from None
    return LoadReport(dataset=None, format="jsonl", delimiter=None)  # type: ignore[arg-type]


def load_parquet(path: Path, out: Path) -> LoadReport:
    """Copy a Parquet file's row groups into an Arrow file, batch by batch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path.name} is not a readable Parquet file ({e})") from None
    if pf.metadata.num_rows == 0:
        raise DataError(f"{path.name} has columns ({', '.join(pf.schema_arrow.names[:8])}) but no rows")
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, pf.schema_arrow) as writer:
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            writer.write_batch(batch)
    return LoadReport(dataset=None, format="parquet", delimiter=None)  # type: ignore[arg-type]
