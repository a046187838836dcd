"""A CSV's dialect as Python's `csv` module sees it: encoding, delimiter, header and column names (used by loading).

These decisions are made once, from the file's first bytes and first record, before either reader
(Arrow's or Python's) reads the rows, so both readers get the same ones.
"""
from __future__ import annotations

import codecs
import csv
from pathlib import Path

from core.data.limits import NAME_CHARS
from core.data.types import DELIMITERS, SNIFF_BYTES, DataError


def detect_encoding(path: Path, head: bytes, encoding: str, notes: list[str]) -> str:
    """The codec to read with: the BOM's, UTF-8 if the whole file decodes, else Latin-1 (noted)."""
    if encoding != "auto":
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise DataError(f"unknown encoding {encoding!r}") from None
        return encoding
    if head.startswith(codecs.BOM_UTF8):
        notes.append("encoding: UTF-8 with a byte-order mark (removed)")
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        notes.append("encoding: UTF-16 (from its byte-order mark)")
        return "utf-16"
    # decode the whole file in chunks: a bad byte at the end must not be found after a long load
    dec, line, offset = codecs.getincrementaldecoder("utf-8")(), 1, 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            try:
                dec.decode(chunk)
            except UnicodeDecodeError as e:
                bad = offset + e.start
                line += chunk[: max(e.start, 0)].count(b"\n")
                notes.append(f"encoding: not valid UTF-8 (line {line}, byte {bad} is 0x{chunk[e.start]:02x}); "
                             "read as Latin-1 — check accented characters, or pick the right encoding")
                return "latin-1"
            line += chunk.count(b"\n")
            offset += len(chunk)
    try:
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        notes.append(f"encoding: the file ends inside a UTF-8 character (line {line}); read as Latin-1")
        return "latin-1"
    return "utf-8"


def sniff_delimiter(sample: str, preferred: str) -> str:
    """The candidate that splits the first records into the same number (>1) of fields most often."""
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may cut the last record in half
    best, best_score = preferred, 0.0
    for d in (preferred, *[c for c in DELIMITERS if c != preferred]):
        try:
            counts = [len(r) for r in csv.reader(lines[:200], delimiter=d) if r]
        except csv.Error:
            continue
        if not counts or max(counts) < 2:
            continue
        mode = max(set(counts), key=counts.count)
        score = counts.count(mode) / len(counts) * (mode > 1)
        if score > best_score + 1e-9:
            best, best_score = d, score
    return best


def looks_numeric(cell: str) -> bool:
    try:
        float(cell.replace("_", "x"))  # "1_000" is an identifier-like header, not a number
        return True
    except ValueError:
        return False


def column_names(first: list[str], header: bool | str, fix: bool) -> tuple[list[str], bool, str]:
    """(names, whether the first row is a header, a note on the decision); bad names raise."""
    if header == "auto":
        header = not any(looks_numeric(c.strip()) for c in first)
        why = "no cell of the first row is a number" if header else "the first row holds numbers"
        note = f"header: {'yes' if header else 'no'} ({why}; override with the header option)"
    else:
        note = f"header: {'yes' if header else 'no'} (as chosen)"
    if not header:
        return [f"column_{i + 1}" for i in range(len(first))], False, note
    names, seen = [], {}
    named = max((i for i, c in enumerate(first, start=1) if c.strip()), default=0)
    for i, raw in enumerate(first, start=1):
        name = raw.strip()
        if not name and i > named:  # trailing commas, as Excel writes them: dropped later if blank
            name = f"column_{i}"
        if len(name) > NAME_CHARS:
            raise DataError(f"line 1: column {i}'s name is {len(name):,} characters; names are at most {NAME_CHARS} "
                            "(if the first line is data, set the header option to no)")
        if not name:
            if not fix:
                raise DataError(f"line 1: column {i} has an empty name; name it, or turn on 'fix column names'")
            name = f"column_{i}"
        if name in seen:
            if not fix:
                raise DataError(f"line 1: column {i} is named {name!r} like column {seen[name]}; "
                                "column names must be unique (or turn on 'fix column names')")
            k = 2
            while f"{name}_{k}" in seen:
                k += 1
            name = f"{name}_{k}"
        seen[name] = i
        names.append(name)
    return names, True, note


def utf8_head(head: bytes) -> bool:
    """Whether the file's first bytes are UTF-8 (a character cut by the sample's end allowed)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return len(head) == SNIFF_BYTES and e.start >= len(head) - 3 and e.reason == "unexpected end of data"
    return True


def show(delim: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(delim, repr(delim))
