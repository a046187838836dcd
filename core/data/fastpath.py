"""The fast path for text files: Arrow's own multi-threaded readers, streamed into the staging Arrow file.

`pyarrow.csv.open_csv` and `pyarrow.json.open_json` parse in C++; Python only checks each batch against
the caps and feeds the type inference (`ColumnTyper`). Whenever a file is something the two parsers could
read differently, or Arrow reports a problem, or a cap is near, these functions return None and the
Python parser (`core.data.loading`, `core.data.formats`) reads the file instead: it alone gives messages
their exact line numbers, and its records are the reference the fast path must match.
"""
from __future__ import annotations

import codecs
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.data.formats import ColumnTyper, write_typed
from core.data.limits import NAME_CHARS, Limits, Tally, arrow_depth, arrow_leaves

if TYPE_CHECKING:
    import pyarrow as pa

# Arrow parses blocks of this size; a row longer than one goes the slow way (the Python reader). Its reader
# buffers ~60 blocks ahead (66 MB at 1 MB), and smaller blocks pipeline better with the typing thread:
# 61 MB load 0.65 s at 256 KB vs 0.83 s at 1 MB (pandas 0.42 s); 1 GB peak RSS 0.228 vs 0.255 of the file
BLOCK_BYTES = 256 * 1024
JSON_BLOCK_BYTES = 4 * 1024 * 1024
# Arrow's blocks are typed and written in batches of about this: fewer kernel calls, and fewer batch headers in the
# Arrow file (opening it memory-mapped reads every header, and the kernel maps ~64 KB around each into the
# process: a 1 GB load in 1 MB batches peaked at 276 MB RSS, 241 MB before it opened its file; in 4 MB, 241 MB)
WRITE_BYTES = 4 * 1024 * 1024
READ_AHEAD = 2  # batches Arrow's reader may parse ahead of the one being typed and written
SCAN_BYTES = 1024 * 1024  # raw bytes per step of the quote scan (its arrays are a few times this): small, as it
# runs beside Arrow's reader and its buffers add to the load's peak memory
ASCII_SAFE = {"utf-8", "utf-8-sig", "iso8859-1"}  # codecs where '"', delimiters and newlines are single ASCII bytes
# what Python's str.strip() removes: a 1-column row of only these is a blank line to the Python reader
PY_SPACE = r"^[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*$"
Progress = Callable[[int, int, int], None]  # (bytes read, file size, rows so far)


def _codec(enc: str) -> str:
    return codecs.lookup(enc).name


def scan_quotes(path: Path, enc: str, delim: str, max_rows: int, passed: Callable[[int], None] | None = None,
                counted: Callable[[int], None] | None = None) -> bool:
    """Whether every quote in the file opens a field, closes one, or is doubled inside one (RFC 4180), the
    file ends outside quotes and has at most `max_rows` records counting blank lines.

    Arrow's reader accepts what Python's strict `csv` refuses (`"ab"c`, `"a,"b"`, `""c`, `"x" ,1`) and reads
    quotes inside unquoted fields (`5'10"`) the same as Python only by luck; files with any of these go to
    the Python parser, which gives its line-numbered message or reads them its way. A quote's role follows
    from how many quotes precede it (odd: inside a quoted field), so the check is a vectorised scan of
    the raw bytes (no CSV library exposes it). A file with fewer bytes than `max_rows` needs no count of its
    b"\\n" bytes. `passed(n)`: called after each step
    with the file's bytes scanned so far without a quote out of place. `counted(n)`: called with the b"\\n"
    bytes counted so far after each step that counts them; it may raise to stop the scan (the row cap).

    (Line breaks inside quoted values need no search: Arrow's streaming reader, unlike its whole-file
    reader, costs the same with `newlines_in_values` as without — 0.176 vs 0.180 s CPU on a 61 MB file,
    0.219 vs 0.217 s on a 35 MB numeric one, nine runs each — so it always reads with it.)
    """
    import numpy as np

    d, quote, cr, lf = ord(delim), 34, 13, 10
    ok = np.zeros(256, bool)
    ok[[d, quote, cr, lf]] = True  # what may stand before an opening quote and after a closing one
    inside, prev, pending = 0, lf, False  # the start of the file acts as a line start
    size = path.stat().st_size
    count = size >= max_rows  # lines + lone CRs can't outnumber the bytes
    lines, lone_cr = 0, 0
    codec = _codec(enc)
    dec = None if codec in ASCII_SAFE else codecs.getincrementaldecoder(codec)()
    # one buffer and one mask for the whole scan: fresh 4 MB objects per step cost as much as the scan (page faults)
    buf = bytearray(max(1, min(SCAN_BYTES, size)))
    whole, mask = np.frombuffer(buf, np.uint8), np.empty(len(buf), bool)
    with path.open("rb", buffering=0) as f:
        if codec == "utf-8-sig" and f.read(3) != codecs.BOM_UTF8:
            f.seek(0)
        while n := f.readinto(buf):
            if dec is None:
                data, b, eq = buf, whole[:n], mask[:n]
            else:
                data = dec.decode(buf[:n]).encode("utf-8")
                if not data:
                    continue
                n, b = len(data), np.frombuffer(data, np.uint8)
                eq = np.empty(n, bool)
            if count:
                lines += int(np.count_nonzero(np.equal(b, lf, out=eq)))
                if counted is not None:
                    counted(lines)
            has_cr = data.find(b"\r", 0, n) >= 0
            if has_cr:
                lone_cr += data.count(b"\r", 0, n) - data.count(b"\r\n", 0, n)
            if pending and not ok[b[0]]:
                return False
            pending = False
            if data.find(b'"', 0, n) >= 0:
                q = np.flatnonzero(np.equal(b, quote, out=eq))
                opens, closes = (q[1::2], q[0::2]) if inside else (q[0::2], q[1::2])
                if len(opens):
                    before = b[np.maximum(opens - 1, 0)]
                    if opens[0] == 0:
                        before[0] = prev
                    if not ok[before].all():
                        return False
                if len(closes):
                    pending = bool(closes[-1] == n - 1)
                    inner = closes[:-1] if pending else closes
                    if not ok[b[inner + 1]].all():
                        return False
                inside = (inside + len(q)) % 2
            prev = b[n - 1]
            if passed is not None:
                passed(f.tell())
    return not inside and lines + lone_cr + 1 <= max_rows


def csv_to_arrow(path: Path, raw: Path, final: Path, enc: str, delim: str, names: list[str], header: bool,
                 limits: Limits, infer: bool, trailing: tuple, progress: Progress | None = None,
                 skip: int = 0) -> ColumnTyper | None:
    """Read the CSV with Arrow into the typed Arrow file `final`; the typer that typed it, or None.

    One pass: the column types seen in the first batch are assumed and each batch is written cast to
    them; if a later batch changes a type (a column empty at first, a float after many ints), the file
    is read again into strings in `raw` and typed in a second pass. The quote scan (`scan_quotes`) runs
    on a thread of its own meanwhile. None means the Python parser must read the file; it then names the
    line of whatever Arrow objected to (ragged rows, a cell or row over its cap, bad text, quotes out of
    place).
    """
    if len(delim) != 1 or ord(delim) > 127 or _codec(enc) not in (*ASCII_SAFE, "utf-16"):
        return None
    if _codec(enc) == "utf-8":  # UTF-8 chosen by hand on a file with a BOM: Python keeps it in the text, Arrow drops it
        with path.open("rb") as f:
            if f.read(3) == codecs.BOM_UTF8:
                return None
    from concurrent.futures import ThreadPoolExecutor

    # the quote scan runs beside Arrow's reader; its verdict is awaited before any of the reader's work is
    # kept: a file it refuses goes to the Python parser, however far Arrow got
    # progress counts only bytes both have passed: a report waits (at a batch boundary, while Arrow's thread
    # reads ahead) until the scan has passed the bytes Arrow read, so the bar moves whichever is faster
    scanned, moved = [0], threading.Condition()

    def passed(n: int) -> None:
        with moved:
            scanned[0] = n
            moved.notify_all()

    with ThreadPoolExecutor(1, thread_name_prefix="quote-scan") as pool:
        scan = pool.submit(scan_quotes, path, enc, delim, limits.rows, passed if progress else None,
                           lambda n: limits.check_line_count(path.name, n))
        scan.add_done_callback(lambda _: passed(scanned[0]))  # wakes a report waiting on a scan that stopped
        speculate, last = True, [0, 0]

        def refused() -> bool:
            return scan.done() and not scan.result()

        def report(done: int, size: int, rows: int) -> None:
            last[:] = size, rows
            with moved:
                moved.wait_for(lambda: scanned[0] >= done or scan.done())
            if progress and not refused():
                progress(done, size, rows)

        while True:
            typer = ColumnTyper(names, infer, trailing, first_only=speculate)
            done = _stream_csv(path, final if speculate else raw, enc, delim, names, header, limits, typer,
                               speculate, report if progress else None, skip, refused)
            if not scan.result():
                return None
            if done != "retry":
                break
            speculate = False
    if done and progress:
        progress(last[0], last[0], last[1])  # the whole file, now that the scan has passed it
    if done and not speculate:
        write_typed(raw, final, typer, Tally(limits, path.name))
    return typer if done else None


def _stream_csv(path: Path, out: Path, enc: str, delim: str, names: list[str], header: bool, limits: Limits,
                typer: ColumnTyper, speculate: bool, progress: Progress | None, skip: int = 0, abandon: Callable[[], bool] | None = None) -> bool | str | None:
    """Arrow's streaming reader into `out`: typed as the first batch suggests (`speculate`; "retry" when a
    later batch disagrees) or as strings; None when the Python parser must decide (or `abandon()` says so).

    Arrow parses on a thread of its own, a few blocks ahead (`_ahead`), while this one checks, types and
    writes: its streaming reader alone parses only when asked for the next batch."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    codec = _codec(enc)
    width, cap, size = len(names), limits.cell_bytes, path.stat().st_size
    read = pcsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES, skip_rows=skip,
                            encoding="utf8" if codec in ("utf-8", "utf-8-sig") else codec)
    parse = pcsv.ParseOptions(delimiter=delim, quote_char='"', double_quote=True, escape_char=False,
                              newlines_in_values=True, ignore_empty_lines=True)
    convert = pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                  quoted_strings_can_be_null=False)
    strings = pa.schema([(n, pa.string()) for n in names])
    state: dict[str, Any] = {"schema": None if speculate else strings, "writer": None, "blank": set()}
    tally, rows, skip, held, held_bytes = Tally(limits, path.name), 0, 1 if header else 0, [], 0

    def put(parts: list) -> str | None:
        """Type Arrow's batches as one (~`WRITE_BYTES`) and write it; "retry" when a type changed."""
        batch = parts[0] if len(parts) == 1 else pa.Table.from_batches(parts).combine_chunks().to_batches()[0]
        typer.see(batch)
        schema, blank = state["schema"], state["blank"]
        if schema is None:  # the first batch: its types are the guess for the whole file
            types, state["blank"] = typer.types(), set(typer.blank)
            schema = state["schema"] = pa.schema([(n, types.get(n, pa.string())) for n in names
                                                  if n not in state["blank"]])
        elif speculate and (typer.types() != {n: t for n, t in zip(schema.names, schema.types, strict=True)
                                              if not pa.types.is_string(t)} or typer.blank != blank):
            return "retry"
        if state["writer"] is None:
            state["writer"] = pa.ipc.new_stream(sink, schema)
        state["writer"].write_batch(typer.typed(batch, schema) if speculate else batch.cast(strings))
        return None

    try:
        with pa.OSFile(str(path), "rb") as src, pa.OSFile(str(out), "wb") as sink, \
                closing(_ahead(pcsv.open_csv(src, read_options=read, parse_options=parse,
                                             convert_options=convert), src.tell)) as batches:
            for batch, where in batches:
                tally.tick()
                if abandon is not None and abandon():
                    return None
                if width == 1:  # the Python reader drops whitespace-only lines as blank
                    batch = batch.filter(pc.invert(pc.match_substring_regex(batch.column(0), PY_SPACE)))
                if skip and batch.num_rows:
                    batch, skip = batch.slice(1), 0
                if not batch.num_rows:
                    continue
                # a column's bytes bound its longest cell: lengths are measured only where that bound passes the cap
                if any(c.nbytes > cap and (pc.max(pc.binary_length(c)).as_py() or 0) > cap for c in batch.columns):
                    return None  # the Python parser names the line and column
                # a row's text is at most twice its values' bytes (doubled quotes) plus quotes, delimiters and
                # a newline: when that bound passes the row cap, the Python reader decides, counting exactly
                if 2 * batch.nbytes + batch.num_rows * (3 * width + 2) > limits.row_bytes and \
                        int(sum(pc.binary_length(c).to_numpy().astype("int64") for c in batch.columns).max()) * 2 \
                        + 3 * width + 2 > limits.row_bytes:
                    return None
                rows += batch.num_rows
                tally.bytes += batch.nbytes
                if tally.bytes > 0.9 * limits.dataset_bytes:
                    return None  # near the cap the Python reader decides, naming the line
                held.append(batch)
                if progress:
                    progress(min(size, where), size, rows)  # Arrow reads ahead of the batches: an estimate
                if (held_bytes := held_bytes + batch.nbytes) >= WRITE_BYTES:
                    if put(held) == "retry":
                        return "retry"
                    held, held_bytes = [], 0
            if held and put(held) == "retry":
                return "retry"
            if state["writer"] is not None:
                state["writer"].close()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, UnicodeError):
        return None
    if progress and rows:
        progress(size, size, rows)
    return True if rows else None


def _ahead(batches: Any, where: Callable[[], int], depth: int = READ_AHEAD) -> Iterator:
    """(batch, `where()` after it) for `batches` iterated on a thread of its own, at most `depth` ahead (`where`
    is called on that thread, beside the reads); what it raises is raised here. Closing this generator (or
    dropping it) stops the thread and waits for it."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(depth)
    stop, end = threading.Event(), object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def run() -> None:
        try:
            for batch in batches:
                if not put((batch, where())):
                    return
            put(end)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            put(e)

    thread = threading.Thread(target=run, name="csv-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


# --- JSON Lines -----------------------------------------------------------------------------------

JSON_TYPES = ("null", "bool", "int64", "double", "string")


def jsonl_to_arrow(path: Path, out: Path, limits: Limits) -> bool | None:
    """Stream a JSON Lines file into the Arrow file `out` with `pyarrow.json.open_json`.

    True when done, None when the Python reader must read it: any error Arrow reports (the Python
    reader names the line), a type the Python reader would not give (Arrow reads ISO dates as
    timestamps), a name or nesting or width the caps question, or a file near a cap.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    if limits.row_bytes < JSON_BLOCK_BYTES:
        return None  # a row longer than a block is an Arrow error, so only a row cap above it holds here
    with path.open("rb") as f:
        text = f.read(1 << 20)
    if b"\n\n" in text or b"\r" in text or text.lstrip()[:1] not in (b"{", b"\xef"):
        return None  # blank lines and CRLF: leave them to the Python reader's exact rules
    if not _shallow(path, limits.nesting):
        return None  # the Python reader refuses deep lines before parsing them; Arrow would parse them
    tally, rows = Tally(limits, path.name), 0
    try:
        reader = pj.open_json(str(path), read_options=pj.ReadOptions(block_size=JSON_BLOCK_BYTES),
                              parse_options=pj.ParseOptions(newlines_in_values=False))
        schema = reader.schema
        if not _json_schema_ok(schema, limits):
            return None
        with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for batch in reader:
                tally.tick()
                for col in batch.columns:
                    if pa.types.is_string(col.type) and len(col) and \
                            (pc.max(pc.binary_length(col)).as_py() or 0) > limits.cell_bytes:
                        return None
                rows += batch.num_rows
                tally.bytes += batch.nbytes
                if rows > limits.rows or tally.bytes > 0.9 * limits.dataset_bytes:
                    return None
                writer.write_batch(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, UnicodeError, StopIteration):
        return None
    return True if rows else None


def _shallow(path: Path, cap: int) -> bool:
    """Whether no line has more than `cap` brackets that open ('{' or '['): a bound on its depth, counted
    with vector arithmetic (the Python reader's own per-line count, `json_depth`, at file scale)."""
    import numpy as np

    rest = b""
    with path.open("rb") as f:
        while block := f.read(JSON_BLOCK_BYTES):
            cut = block.rfind(b"\n") + 1
            chunk, rest = rest + block[:cut], block[cut:] if cut else rest + block
            if not cut:
                if len(rest) > JSON_BLOCK_BYTES:
                    return False  # one long line: the Python reader's row cap decides
                continue
            if chunk.count(b"{") + chunk.count(b"[") <= cap:
                continue
            b = np.frombuffer(chunk, np.uint8)
            opens = ((b == 123) | (b == 91)).view(np.uint8)
            starts = np.r_[0, np.flatnonzero(b[:-1] == 10) + 1]
            if np.add.reduceat(opens, starts, dtype=np.int64).max() > cap:
                return False
    return rest.count(b"{") + rest.count(b"[") <= cap


def _json_schema_ok(schema: pa.Schema, limits: Limits) -> bool:
    """Only the types, names, nesting and width the Python reader would give and accept."""
    def ok(typ: Any) -> bool:
        import pyarrow as pa

        if pa.types.is_struct(typ):
            return all(0 < len(typ.field(i).name) <= NAME_CHARS and ok(typ.field(i).type) for i in range(typ.num_fields))
        if pa.types.is_list(typ):
            return ok(typ.value_type)
        return str(typ) in JSON_TYPES

    names = schema.names
    return bool(names) and len(set(names)) == len(names) and all(0 < len(n) <= NAME_CHARS for n in names) \
        and all(ok(f.type) and arrow_depth(f.type) <= limits.nesting for f in schema) \
        and sum(arrow_leaves(f.type) for f in schema) * 2 <= limits.columns
