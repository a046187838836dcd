"""Issue 18: files that spreadsheets and pandas open load here too; real binaries renamed .csv are still refused."""
from __future__ import annotations

import gzip
import io
import sqlite3
import zipfile

import pytest

from core.data import DataError, load_file_report


def _load(tmp_path, name: str, data: bytes):
    f = tmp_path / name
    f.write_bytes(data)
    return load_file_report(f, cache_dir=tmp_path / "staging")


def test_excel_trailing_commas_drop_the_empty_unnamed_columns_and_say_so(tmp_path):
    r = _load(tmp_path, "excel.csv", b"name,score,,\r\nann,1,,\r\nbo,2,,\r\n")
    assert r.dataset.column_names == ["name", "score"]
    assert r.dataset.to_list() == [{"name": "ann", "score": 1}, {"name": "bo", "score": 2}]
    assert any("dropped 2 empty column(s) without a name" in n for n in r.notes)


def test_trailing_unnamed_columns_with_values_are_named_and_said(tmp_path):
    r = _load(tmp_path, "excel.csv", b"name,score,\nann,1,x\nbo,2,\n")
    assert r.dataset.column_names == ["name", "score", "column_3"]
    assert any("named the column(s) without a name at the end of the header: column_3" in n for n in r.notes)


def test_an_empty_name_between_named_columns_is_still_refused(tmp_path):
    with pytest.raises(DataError, match=r"line 1: column 2 has an empty name"):
        _load(tmp_path, "gap.csv", b"a,,c\n1,2,3\n")


def test_terminal_colour_codes_and_a_bell_are_text(tmp_path):
    rows = "".join(f"\x1b[3{i % 8}mline {i}\x1b[0m,\x07ding {i}\n" for i in range(50))
    r = _load(tmp_path, "log.csv", ("msg,note\n" + rows).encode())
    assert len(r.dataset) == 50 and r.dataset[1] == {"msg": "\x1b[31mline 1\x1b[0m", "note": "\x07ding 1"}


def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _sqlite(tmp_path) -> bytes:
    db = tmp_path / "x.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (a TEXT)")
    con.execute("INSERT INTO t VALUES ('x')")
    con.commit()
    con.close()
    return db.read_bytes()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


@pytest.mark.parametrize("kind, pattern", [("png", "PNG image"), ("zip", "ZIP archive"), ("xlsx", "ZIP archive"),
                                           ("gzip", "gzip-compressed"), ("sqlite", "SQLite database"),
                                           ("random", "looks binary")])
def test_real_binaries_renamed_csv_are_refused(kind, pattern, tmp_path):
    import random

    data = {"png": PNG, "zip": _xlsx(), "xlsx": _xlsx(), "gzip": gzip.compress(b"a,b\n1,2\n" * 100),
            "sqlite": _sqlite(tmp_path), "random": random.Random(1).randbytes(4096)}[kind]
    with pytest.raises(DataError, match=pattern):
        _load(tmp_path, f"{kind}.csv", data)
