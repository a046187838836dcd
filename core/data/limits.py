"""The caps a load runs under, checked while the file streams: a file is refused at the line that
crosses a cap, before the work that line would cost, never after it was all read.

`Limits` comes from the settings (`TORCHLAB_MAX_COLUMNS`, `_MAX_ROWS`, `_MAX_ROW_BYTES`, `_MAX_NESTING`,
`_MAX_DATASET_MB`, `_MAX_CELL_BYTES`); `Tally` counts rows and Arrow bytes as batches are written;
`BoundedLines` hands a text file to a parser line by line and stops a row that grows past its cap
while it is being read (a 300 MB line costs one cap's worth of reading, not 300 MB).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from core.data.types import DataError

if TYPE_CHECKING:
    from core.settings import Settings

BATCH_CELLS = 1_000_000  # values per Arrow batch: wide files get fewer rows per batch, so memory stays flat
BATCH_BYTES = 64 * 1024 * 1024  # text buffered per batch, whatever the row count
LINE_SCAN_BYTES = 4 * 1024 * 1024  # bytes per step of the line count
NAME_CHARS = 512  # longest column name: a longer "name" is data (a header-less file?), and would flood messages


@dataclass(frozen=True)
class Limits:
    """Caps for one load, each named after the setting that raises it."""

    cell_bytes: int = 1_000_000
    columns: int = 4_096
    rows: int = 10_000_000
    row_bytes: int = 8_000_000
    nesting: int = 32
    dataset_bytes: int = 2_048 * 1024 * 1024
    timeout_s: float = 600.0
    deadline: float = float("inf")  # time.monotonic() when the load must stop

    @classmethod
    def from_settings(cls, settings: Settings | None = None, cell_bytes: int | None = None) -> Limits:
        from core.settings import get_settings

        s = settings or get_settings()
        return cls(cell_bytes=int(cell_bytes or s.max_cell_bytes), columns=s.max_columns, rows=s.max_rows,
                   row_bytes=s.max_row_bytes, nesting=s.max_nesting, dataset_bytes=s.max_dataset_mb * 1024 * 1024,
                   timeout_s=s.load_timeout_s, deadline=time.monotonic() + s.load_timeout_s)

    def batch_rows(self, width: int, cap: int) -> int:
        """Rows per batch for a table `width` values wide: at most `cap`, at least one."""
        return max(1, min(cap, BATCH_CELLS // max(1, width)))

    def check_columns(self, n: int, where: str) -> None:
        if n > self.columns:
            raise DataError(f"{where}: {n:,} columns, over the {self.columns:,}-column cap "
                            "(TORCHLAB_MAX_COLUMNS); select the columns you need before loading")

    def check_nesting(self, depth: int, where: str) -> None:
        if depth > self.nesting:
            raise DataError(f"{where}: values nested {depth:,} levels deep, over the {self.nesting}-level cap "
                            "(TORCHLAB_MAX_NESTING)")

    def check_lines(self, path: Path) -> None:
        """In a text file the row cap counts lines (a row takes one at least): count them at C speed,
        stopping past the cap, before any parsing, so a small file of ten million empty lines is refused
        in milliseconds, not after a minute of parsing. UTF-16 is not counted here (the quote scan or the
        Python reader counts its decoded lines)."""
        import numpy as np

        lines = 0
        with path.open("rb", buffering=0) as f:
            if f.read(2) in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16: a 0x0A byte need not be a newline
                return
            f.seek(0)
            # one buffer and one mask for the whole file: fresh 4 MB objects per step cost page faults, and
            # numpy counts a byte ~3x faster than bytes.count
            buf = bytearray(max(1, min(LINE_SCAN_BYTES, path.stat().st_size)))
            raw, mask = np.frombuffer(buf, np.uint8), np.empty(len(buf), bool)
            while lines <= self.rows and (n := f.readinto(buf)):
                lines += int(np.count_nonzero(np.equal(raw[:n], 10, out=mask[:n])))
        self.check_line_count(path.name, lines)

    def check_line_count(self, name: str, lines: int) -> None:
        """Refuse a text file with more b"\\n" bytes than the row cap (`check_lines`; the CSV fast path's quote
        scan counts them on its own thread instead, as it passes)."""
        if lines > self.rows:
            raise DataError(f"{name} has more than {self.rows:,} lines, over the row cap (TORCHLAB_MAX_ROWS; "
                            "in a text file every line counts, blank ones too)")

    def check_size(self, name: str, size: int) -> None:
        """A text file larger than the dataset cap would be refused at its end: refuse it before reading."""
        if size > self.dataset_bytes:
            raise DataError(f"{name} is {_mb(size)}, over the {_mb(self.dataset_bytes)} dataset cap "
                            "(TORCHLAB_MAX_DATASET_MB)")


class Tally:
    """Rows read and Arrow bytes written so far, and the load's clock; crossing a cap raises at once."""

    def __init__(self, limits: Limits, name: str):
        self.limits, self.name, self.rows, self.bytes = limits, name, 0, 0

    def row(self, where: str) -> None:
        self.rows += 1
        if self.rows > self.limits.rows:
            raise DataError(f"{where}: more than {self.limits.rows:,} rows, over the row cap (TORCHLAB_MAX_ROWS)")
        if not self.rows & 0xFF:
            self.tick(where)

    def tick(self, where: str = "") -> None:
        """Refuse once the load has run past its time budget."""
        if time.monotonic() > self.limits.deadline:
            raise DataError(f"{where or self.name}: loading ran past its {self.limits.timeout_s:,.0f} s budget "
                            "(TORCHLAB_LOAD_TIMEOUT_S); load a smaller file, or raise the budget")

    def add(self, rows: int, nbytes: int, where: str = "") -> None:
        """Count a batch about to be written (`rows` 0 when rows were counted one by one)."""
        self.rows += rows
        self.bytes += nbytes
        at = where or self.name
        if self.rows > self.limits.rows:
            raise DataError(f"{at}: more than {self.limits.rows:,} rows, over the row cap (TORCHLAB_MAX_ROWS)")
        if self.bytes > self.limits.dataset_bytes:
            raise DataError(f"{at}: the data grows past {_mb(self.limits.dataset_bytes)} once decompressed, over "
                            "the dataset cap (TORCHLAB_MAX_DATASET_MB)")
        self.tick(at)


class BoundedLines:
    """Lines of a text file for `csv.reader` (or a loop), refusing a row longer than the row cap as it is read.

    Each line is read with a limit of what is left of the cap, so a 300 MB line costs one cap's worth
    of reading. `record` counts the characters of the row being parsed (a quoted cell may span lines):
    whoever reads the rows sets it to 0 after each one. `chars` counts what was read since the last
    `take_chars()`, to cut batches by text size. Characters are counted; none is fewer than one byte.
    """

    def __init__(self, f: TextIO, cap: int):
        self.f, self.cap = f, cap
        self.record, self.chars, self.line, self.start = 0, 0, 0, 1

    def __iter__(self) -> Iterator[str]:
        return self._lines()

    def _lines(self) -> Iterator[str]:
        readline, cap = self.f.readline, self.cap
        while s := readline(cap + 1 - self.record):  # never more than the rest of the cap
            self.line += 1
            if not self.record:
                self.start = self.line  # the row's first line, which the message names
            self.record += len(s)
            if self.record > cap:
                self._over()
            self.chars += len(s)
            yield s

    def _over(self) -> None:
        raise DataError(f"line {self.start}: a row of more than {self.cap:,} bytes, over the row cap "
                        "(TORCHLAB_MAX_ROW_BYTES); is this the right file and delimiter?")

    def next_record(self) -> None:
        self.record = 0

    def take_chars(self) -> int:
        n, self.chars = self.chars, 0
        return n


def json_depth(line: str, cap: int) -> int:
    """How deep a JSON text nests (0 for a scalar; exact once over `cap`, else at least the depth), found
    with vector arithmetic before parsing: a line nested 100,000 deep costs a scan, not a RecursionError
    or gigabytes of nested objects."""
    openers = line.count("{") + line.count("[")
    if openers <= cap:  # can't be deeper than its number of openers
        return openers
    import numpy as np

    b = np.frombuffer(line.encode("utf-8"), np.uint8)
    quote = b == ord('"')
    if '\\"' in line:  # a quote after an odd run of backslashes is escaped
        i = np.arange(len(b), dtype=np.int32)
        last = np.maximum.accumulate(np.where(b == ord("\\"), -1, i))  # last non-backslash at or before i
        run = np.zeros(len(b), np.int32)
        run[1:] = i[:-1] - last[:-1]
        quote &= run % 2 == 0
    outside = np.cumsum(quote, dtype=np.int32) % 2 == 0  # brackets inside strings don't nest
    step = (b == ord("{")).astype(np.int32) + (b == ord("[")) - (b == ord("}")) - (b == ord("]"))
    return int(np.cumsum(step * outside, dtype=np.int32).max(initial=0))


def arrow_depth(typ: object) -> int:
    """Nesting depth of an Arrow type: 0 for a scalar, 1 for a list of scalars or a flat struct."""
    import pyarrow as pa

    if isinstance(typ, pa.DictionaryType):
        return arrow_depth(typ.value_type)
    if pa.types.is_struct(typ) or pa.types.is_union(typ):
        return 1 + max((arrow_depth(typ.field(i).type) for i in range(typ.num_fields)), default=0)
    if pa.types.is_map(typ):
        return 1 + max(arrow_depth(typ.key_type), arrow_depth(typ.item_type))
    if hasattr(typ, "value_type") and (pa.types.is_list(typ) or pa.types.is_large_list(typ)
                                       or pa.types.is_fixed_size_list(typ) or pa.types.is_list_view(typ)
                                       or pa.types.is_large_list_view(typ)):
        return 1 + arrow_depth(typ.value_type)
    return 0


def arrow_leaves(typ: object) -> int:
    """Columns an Arrow type makes: one per scalar leaf (a struct of 3 fields makes 3)."""
    import pyarrow as pa

    if isinstance(typ, pa.DictionaryType):
        return 1
    if pa.types.is_struct(typ) or pa.types.is_union(typ):
        return sum(arrow_leaves(typ.field(i).type) for i in range(typ.num_fields)) or 1
    if pa.types.is_map(typ):
        return arrow_leaves(typ.key_type) + arrow_leaves(typ.item_type)
    if hasattr(typ, "value_type") and not isinstance(typ, pa.DictionaryType):
        return arrow_leaves(typ.value_type)
    return 1


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:,.0f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"
