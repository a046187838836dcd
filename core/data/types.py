"""Types and limits shared by every part of `core.data`: errors, the load report, format constants.

Loading, formats, the store, stats and operations all import from here and never from each other's
entry points, so `core.data` has no import circle.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datasets

FORMATS = ("csv", "tsv", "jsonl", "parquet", "conll")
DELIMITERS = (",", "\t", ";", "|")
SNIFF_BYTES = 64 * 1024
BATCH_ROWS = 20_000  # rows per Arrow record batch: small enough to bound memory, big enough to be fast
MAX_REPORTED_LINES = 1_000  # skipped-line numbers kept for the report; the count is always exact
_MAGIC = {b"PK\x03\x04": "a ZIP archive (an .xlsx / .docx / .zip file?)", b"PAR1": "a Parquet file",
          b"\x1f\x8b": "a gzip-compressed file", b"%PDF": "a PDF document", b"\x89PNG": "a PNG image",
          b"\xff\xd8\xff": "a JPEG image", b"SQLite format 3": "an SQLite database"}


class DataError(ValueError):
    """A file that can't be loaded; the message names the line or column and what to do."""


@dataclass
class LoadReport:
    """What `load_file` found and decided, for the page to show next to the data."""

    dataset: datasets.Dataset
    format: str
    encoding: str = "utf-8"
    delimiter: str | None = None
    header: bool = True
    skipped_lines: list[int] = field(default_factory=list)  # first MAX_REPORTED_LINES line numbers
    skipped_count: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. the Latin-1 fallback, the detected delimiter
    reader: str = "python"  # what read the rows: "arrow" (the fast path) or "python" (the exact, slower reader)



def check_text(path: Path, head: bytes) -> None:
    """Refuse empty and binary files before any parsing, saying what the file looks like."""
    if not head:
        raise DataError(f"{path.name} is empty (0 bytes): nothing to load")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise DataError(f"{path.name} is {what}, not a text file: export it as CSV first")
    nul = head.find(b"\x00")
    controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13))
    try:  # valid UTF-8 is text even with terminal colour codes (ESC) or a BEL in it, unless mostly controls
        head.decode("utf-8") if len(head) < SNIFF_BYTES else head[:-4].decode("utf-8")
        share = 3
    except UnicodeDecodeError:
        share = 20
    if nul >= 0 or controls > len(head) // share:
        where = f"byte {nul} is NUL" if nul >= 0 else f"{controls} control bytes in the first {len(head)}"
        raise DataError(f"{path.name} looks binary, not a text file ({where}); "
                        "upload a CSV, TSV, JSON Lines or Parquet file")
