"""Files -> `datasets.Dataset`, validated, streamed to Arrow on disk (memory-mapped, never whole in RAM).

A CSV's dialect (encoding, delimiter) and column names come from Python's `csv` module reading the
first record; the rows are read by Arrow's multi-threaded reader (`core.data.fastpath`), typed batch by
batch as they stream. Files Arrow could read differently from Python's strict `csv` (quotes out of
place), and any file Arrow objects to, are read again row by row with Python's `csv` module, which
names the exact line of every problem. A load that fails deletes its staging file, so nothing partial
is left. Saved datasets and their versions live in `core.data.store`; operations and statistics in
`core.data.ops`.
"""
from __future__ import annotations

import codecs
import csv
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import datasets
    import pyarrow as pa

    from core.data.fastpath import Progress
    from core.data.store import DatasetRef, DatasetStore
    from core.settings import Settings

from core.data.dialect import column_names, detect_encoding, show, sniff_delimiter, utf8_head
from core.data.limits import BATCH_BYTES, BoundedLines, Limits, Tally
from core.data.types import (
    BATCH_ROWS,
    FORMATS,
    MAX_REPORTED_LINES,
    SNIFF_BYTES,
    DataError,
    LoadReport,
    check_text,
)

STAGING_MAX_AGE_S = 24 * 3600


def load_file(path: str | os.PathLike, **options: Any) -> datasets.Dataset:
    """Load a CSV / TSV / JSON Lines / Parquet file as a memory-mapped Dataset; bad files raise DataError.

    Options: format ("auto" | csv | tsv | jsonl | parquet), encoding ("auto" or a codec), delimiter
    ("auto" or one character), header ("auto" | True | False), on_bad_lines ("error" | "skip"),
    infer_types (True), fix_names (False: rename empty / duplicate column names instead of refusing),
    max_cell_bytes, cache_dir, settings (the caps: columns, rows, row bytes, nesting, dataset size).
    """
    return load_file_report(path, **options).dataset


def load_file_report(path: str | os.PathLike, *, format: str = "auto", encoding: str = "auto",
                     delimiter: str = "auto", header: bool | str = "auto", on_bad_lines: str = "error",
                     infer_types: bool = True, fix_names: bool = False, max_cell_bytes: int | None = None,
                     cache_dir: str | os.PathLike | None = None, settings: Settings | None = None,
                     progress: Progress | None = None) -> LoadReport:
    """`load_file`, returning what was detected (encoding, delimiter, header, skipped lines) too.

    Every cap is checked as the file streams; whatever a bad file provokes leaves as a DataError.
    `progress(bytes_read, file_size, rows)` is called after each batch of a CSV (from this thread; it may
    raise to stop the load); its values never go back (a file read a second time, in another way, reports
    again once the new pass is past the old one) and its last call is (size, size, rows) when the load ends.
    """
    from core.settings import get_settings

    path = Path(path)
    if on_bad_lines not in ("error", "skip"):
        raise DataError(f"on_bad_lines must be 'error' or 'skip', got {on_bad_lines!r}")
    if not path.is_file():
        raise DataError(f"no file at {str(path)!r} on the server")
    settings = settings or get_settings()
    limits = Limits.from_settings(settings, max_cell_bytes)
    fmt = _detect_format(path, format)
    size = path.stat().st_size
    if size == 0:  # also every /proc and /sys file, whatever reading it would give
        raise DataError(f"{path.name} is empty (0 bytes): nothing to load")
    progress = _forward_only(progress) if progress else None
    if fmt != "parquet":
        limits.check_size(path.name, size)
    if fmt in ("jsonl", "conll"):  # a CSV's lines are counted by the fast path's quote scan, beside Arrow's
        limits.check_lines(path)  # reader, or before the Python parser reads it: one pass fewer over the file
    staging = Path(cache_dir) if cache_dir else settings.workspace / "cache" / "loads"
    staging.mkdir(parents=True, exist_ok=True)
    _sweep(staging)
    stem = staging / f"load-{uuid.uuid4().hex}"
    raw, final = stem.with_suffix(".raw.arrow"), stem.with_suffix(".arrow")
    try:
        from core.data import formats as dataformats

        if fmt == "parquet":
            report = dataformats.load_parquet(path, final, limits)
        elif fmt == "conll":  # token-classification data: a word and its tag per line
            from core.data.conll import load_conll

            report = load_conll(path, final, limits)
        elif fmt == "jsonl":
            report = _load_jsonl(path, raw, final, limits)
        else:
            report = _load_csv(path, raw, final, fmt, encoding, delimiter, header, on_bad_lines, limits, fix_names,
                               infer_types, progress)
        import datasets

        report.dataset = datasets.Dataset.from_file(str(final))
        return report
    except DataError:
        final.unlink(missing_ok=True)
        raise
    except RecursionError:
        final.unlink(missing_ok=True)
        raise DataError(f"{path.name}: values nested too deeply to read (TORCHLAB_MAX_NESTING)") from None
    except Exception as e:  # the boundary: whatever a bad file provokes leaves as a DataError
        final.unlink(missing_ok=True)
        raise DataError(f"{path.name}: could not be read ({type(e).__name__}: {_short(e)})") from e
    finally:
        raw.unlink(missing_ok=True)


def _load_jsonl(path: Path, raw: Path, final: Path, limits: Limits) -> LoadReport:
    """JSON Lines with Arrow's reader where it reads as the Python reader would, else with the Python reader."""
    from core.data.fastpath import jsonl_to_arrow
    from core.data.formats import check_jsonl_head, load_jsonl

    check_jsonl_head(path)
    if jsonl_to_arrow(path, raw, limits):
        raw.replace(final)
        return LoadReport(dataset=None, format="jsonl", delimiter=None, reader="arrow")  # type: ignore[arg-type]
    raw.unlink(missing_ok=True)
    return load_jsonl(path, final, limits)


def _forward_only(progress: Progress) -> Progress:
    """`progress` held back while a second pass over the file (newlines in values, a type that changed, the
    Python reader after Arrow's) is behind what the first one reported: a bar never runs backwards."""
    last = [0, 0]

    def report(done: int, size: int, rows: int) -> None:
        if done >= last[0] and rows >= last[1]:
            last[:] = done, rows
            progress(done, size, rows)
    return report


def _short(e: BaseException, n: int = 300) -> str:
    text = str(e)
    return text if len(text) <= n else text[:n] + "…"


def _sweep(folder: Path) -> None:
    """Delete staging files from loads a day old (their datasets were saved or dropped long ago)."""
    now = time.time()
    for p in folder.glob("load-*.arrow"):
        try:
            if now - p.stat().st_mtime > STAGING_MAX_AGE_S:
                p.unlink()
        except OSError:
            pass


def _detect_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        if fmt not in FORMATS:
            raise DataError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return fmt
    ext = path.suffix.lower()
    from core.data.conll import SUFFIXES as CONLL_SUFFIXES

    if ext in CONLL_SUFFIXES:
        return "conll"
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext in (".parquet", ".pq"):
        return "parquet"
    return "tsv" if ext in (".tsv", ".tab") else "csv"


def import_file(path: str | os.PathLike, name: str, source: str, store: DatasetStore | None = None,
                **options: Any) -> tuple[DatasetRef, LoadReport]:
    """Load a file and save it as the next version of `name` (the page's one call for "load")."""
    from core.data.store import DatasetStore

    report = load_file_report(path, **options)
    store = store or DatasetStore.default()
    notes = [f"# {n}" for n in report.notes]
    history = [f"ds = core.data.load_file({Path(path).name!r})  # {report.format}", *notes]
    return store.save(report.dataset, name, source, history), report


def import_server_file(raw_path: str, name: str, store: DatasetStore | None = None,
                       settings: Settings | None = None, **options: Any) -> tuple[DatasetRef, LoadReport]:
    """`import_file` for a path typed by a user: only files inside the allowed folders (core.data.paths)."""
    from core.data.paths import server_path

    path = server_path(raw_path, settings)
    return import_file(path, name or path.stem, f"server file: {path}", store, settings=settings, **options)


def save_upload(filename: str, stream: BinaryIO, folder: str | os.PathLike | None = None) -> Path:
    """Copy an uploaded file into the workspace under a sanitised name (no separators, no `..`)."""
    import shutil

    from core.data.store import safe_name
    from core.settings import get_settings

    folder = Path(folder) if folder else get_settings().workspace / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{uuid.uuid4().hex[:8]}-{safe_name(filename)}"
    tmp = dest.with_name(dest.name + ".part")
    with tmp.open("wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    tmp.replace(dest)
    return dest


def upload_name(saved: Path) -> str:
    """The name a user gave the file `save_upload` saved (sanitised): what its messages should call it."""
    return saved.name.split("-", 1)[1]


# --- CSV ---------------------------------------------------------------------------------------

def _load_csv(path: Path, raw: Path, final: Path, fmt: str, encoding: str, delimiter: str, header: bool | str,
              on_bad_lines: str, limits: Limits, fix: bool, infer: bool, progress: Progress | None) -> LoadReport:
    """Detect the dialect, decide the column names from the first record, then read the rows with Arrow
    (`core.data.fastpath`) or, for what Arrow can't read as Python's strict `csv` does, with Python; type them."""
    from core.data.fastpath import csv_to_arrow
    from core.data.formats import ColumnTyper, write_typed

    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    check_text(path, head)
    if not head.strip():  # only blank lines so far: count them before the Python reader walks them to a record
        limits.check_lines(path)
    notes: list[str] = []
    # a file whose first 64 KB are UTF-8 is read as UTF-8 and Arrow checks the rest as it converts; only if
    # it objects is the whole file decoded here, to fall back to Latin-1 naming the first bad byte's line
    deferred = encoding == "auto" and not head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE,
                                                           codecs.BOM_UTF16_BE)) and utf8_head(head)
    enc = "utf-8" if deferred else detect_encoding(path, head, encoding, notes)
    hint = re.match(r"\ufeff?sep=([^\"\r\n])\r?\n", head[:64].decode(enc, errors="replace"))
    skip = 1 if hint else 0  # a first line "sep=;" (as Excel writes it) names the delimiter and is no record
    if delimiter == "auto" and hint:
        delim = hint.group(1)
        notes.append(f"delimiter: {show(delim)} (from the file's first line, sep={delim})")
    elif delimiter == "auto":
        sample = head.decode(enc, errors="replace")
        delim = sniff_delimiter(sample, "\t" if fmt == "tsv" else ",")
        notes.append(f"delimiter: {show(delim)} (detected)")
    elif len(delimiter) != 1 or delimiter in "\"\r\n":
        raise DataError(f"delimiter must be one character other than a quote or newline, got {delimiter!r}")
    else:
        delim = delimiter
    csv.field_size_limit(max(csv.field_size_limit(), limits.cell_bytes + 1))  # longer cells get our message
    report = LoadReport(dataset=None, format=fmt, encoding=enc, delimiter=delim, notes=notes)  # type: ignore[arg-type]

    def full_check() -> bool:
        """Decode the whole file to choose its codec; whether that changed it from UTF-8."""
        nonlocal enc
        found: list[str] = []
        enc = report.encoding = detect_encoding(path, head, "auto", found)
        notes[:0] = found
        return enc != "utf-8"

    try:
        names, report.header, note, trailing = _first_record(path, enc, delim, header, fix, limits, skip)
    except UnicodeDecodeError:  # a first record past 64 KB with a bad byte in it
        deferred = False
        full_check()
        names, report.header, note, trailing = _first_record(path, enc, delim, header, fix, limits, skip)
    typer = csv_to_arrow(path, raw, final, enc, delim, names, report.header, limits, infer, trailing, progress,
                         skip=skip)
    if typer is None and deferred and full_check():
        names, report.header, note, trailing = _first_record(path, enc, delim, header, fix, limits, skip)
        typer = csv_to_arrow(path, raw, final, enc, delim, names, report.header, limits, infer, trailing, progress,
                             skip=skip)
    notes.append(note)
    if typer is not None:
        report.reader = "arrow"
    else:
        limits.check_lines(path)  # the fast path counted them only if it got as far as its quote scan
        _python_rows(path, raw, enc, delim, names, on_bad_lines, limits, report, progress, skip)
        typer = ColumnTyper(names, infer, trailing)
        typer.scan(raw, Tally(limits, path.name))
        write_typed(raw, final, typer, Tally(limits, path.name))
    dropped = [n for n in trailing if n in typer.blank]
    kept = [n for n in trailing if n not in typer.blank]
    if dropped:
        notes.append(f"dropped {len(dropped)} empty column(s) without a name at the end of every row (trailing "
                     "delimiters, as spreadsheets write them)")
    if kept:
        notes.append(f"named the column(s) without a name at the end of the header: {', '.join(kept)}")
    return report


def _first_record(path: Path, enc: str, delim: str, header: bool | str, fix: bool, limits: Limits,
                  skip: int = 0) -> tuple[list[str], bool, str, tuple]:
    """(names, whether the first record is a header, a note, the trailing unnamed columns), as Python reads it."""
    with path.open("r", encoding=enc, newline="") as f:
        text = _lines(f, limits, skip)
        reader = csv.reader(text, delimiter=delim, quotechar='"', doublequote=True, strict=True)
        first = next(_records(reader, text, Tally(limits, path.name), skip), None)
    if first is None:
        raise DataError(f"{path.name} has no rows (only blank lines)")
    limits.check_columns(len(first[1]), f"line {first[0]}")
    names, is_header, note = column_names(first[1], header, fix)
    named = max((i for i, c in enumerate(first[1], start=1) if c.strip()), default=0)
    return names, is_header, note, tuple(names[named:]) if is_header else ()


def _python_rows(path: Path, out: Path, enc: str, delim: str, names: list[str], on_bad_lines: str, limits: Limits,
                 report: LoadReport, progress: Progress | None = None, skip: int = 0) -> None:
    """Stream-parse a delimited file into string columns in the Arrow file `out`, every cap checked per row."""
    import pyarrow as pa

    cap = limits.cell_bytes
    tally = Tally(limits, path.name)
    with path.open("r", encoding=enc, newline="") as f:
        text = _lines(f, limits, skip)  # a row past the cap stops while it is read
        reader = csv.reader(text, delimiter=delim, quotechar='"', doublequote=True, strict=True)
        records = _records(reader, text, tally, skip)
        first = next(records)
        schema = pa.schema([(n, pa.string()) for n in names])
        width, rows, lines, total = len(names), [], [], 0
        batch = limits.batch_rows(width, BATCH_ROWS)
        read, size = 0, path.stat().st_size
        with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            pending = [] if report.header else [first]
            for line, row in _chain(pending, records):
                if len(row) != width:
                    if on_bad_lines == "error":
                        raise DataError(f"line {line} has {len(row)} field{'s' * (len(row) != 1)}, expected "
                                        f"{width} (like the header: {', '.join(names[:8])}"
                                        f"{'…' if width > 8 else ''}); fix the line or choose to skip bad lines")
                    report.skipped_count += 1
                    if len(report.skipped_lines) < MAX_REPORTED_LINES:
                        report.skipped_lines.append(line)
                    continue
                rows.append(row)
                lines.append(line)
                if len(rows) >= batch or text.chars >= BATCH_BYTES:
                    read += text.take_chars()
                    total += _write_rows(writer, schema, rows, lines, cap, tally)
                    if progress:  # characters read stand for bytes: exact for ASCII, an estimate otherwise
                        progress(min(size, read), size, total)
            total += _write_rows(writer, schema, rows, lines, cap, tally)
            if progress and total:
                progress(size, size, total)
    if total == 0:
        if report.header:
            raise DataError(f"{path.name} has only a header row ({', '.join(names[:8])}) and no data rows")
        raise DataError(f"{path.name} has no data rows: every line was skipped as malformed")
    if report.skipped_count:
        shown = ", ".join(map(str, report.skipped_lines[:20]))
        more = f" and {report.skipped_count - 20:,} more" if report.skipped_count > 20 else ""
        report.notes.append(f"skipped {report.skipped_count:,} line(s) with the wrong number of fields: {shown}{more}")


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


def _lines(f: Any, limits: Limits, skip: int) -> BoundedLines:
    """The text file's lines for `csv.reader`, after `skip` lines (a `sep=` line) that are no records."""
    for _ in range(skip):
        f.readline(limits.row_bytes)
    text = BoundedLines(f, limits.row_bytes)
    text.line = skip
    return text


def _records(reader: Any, text: BoundedLines, tally: Tally, skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields), blank lines dropped (but counted as rows read); parse
    errors name their line (`skip`: lines before the reader's first)."""
    start, cap = 1 + skip, tally.limits.rows
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            msg = str(e)
            if "field larger than field limit" in msg:
                raise DataError(f"line {start}: a cell is over the size cap (TORCHLAB_MAX_CELL_BYTES)") from None
            if "unexpected end of data" in msg:
                raise DataError(f"line {start}: a quoted field is never closed (a \" opens it and the file ends "
                                "before the closing \")") from None
            if "NUL" in msg:
                raise DataError(f"line {reader.line_num + skip}: contains a NUL byte — is this a binary file?") from None
            raise DataError(f"line {reader.line_num + skip}: {msg} (a quote inside a quoted field must be doubled: \"\")"
                            ) from None
        text.record = 0  # (inlined: this runs once per row)
        tally.rows += 1
        if tally.rows > cap or not tally.rows & 0xFF:
            tally.rows -= 1
            tally.row(f"line {start}")
        if row and not (len(row) == 1 and not row[0].strip()):  # blank and whitespace-only lines are no rows
            yield start, row
        start = reader.line_num + 1 + skip


def _write_rows(writer: Any, schema: pa.Schema, rows: list[list[str]], lines: list[int], cap: int,
                tally: Tally) -> int:
    """Write the buffered rows as one batch of string columns (cells over `cap` bytes refused), then clear."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not rows:
        return 0
    arrays = [pa.array(c, pa.string()) for c in zip(*rows, strict=True)]
    for name, arr in zip(schema.names, arrays, strict=True):
        sizes = pc.binary_length(arr)
        if pc.max(sizes).as_py() > cap:  # checked per batch in C: a per-cell Python check halves the speed
            i = pc.index(pc.greater(sizes, cap), True).as_py()
            raise DataError(f"line {lines[i]}, column {name!r}: a cell of {sizes[i].as_py():,} bytes is over the "
                            f"{cap:,}-byte cap (TORCHLAB_MAX_CELL_BYTES)")
    batch = pa.record_batch(arrays, schema=schema)
    tally.add(0, batch.nbytes, f"line {lines[-1]}")
    writer.write_batch(batch)
    n = len(rows)
    rows.clear()
    lines.clear()
    return n
