"""Issue 18: the Arrow fast path gives the very dataset the Python reader gives (its reference), or hands over to it."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import core.data.fastpath as fastpath
from core.data import DataError, load_file_report

SPECTRUM = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "csv-spectrum"
SPECTRUM_CASES = sorted((SPECTRUM / "csvs").glob("*.csv")) if SPECTRUM.is_dir() else []
PYTHON_ONLY = {"location_coordinates"}  # a quote inside an unquoted field (37'N 36"W): read by Python


def _rows(n: int, width: int = 60) -> str:
    return "".join(f'{i},"review {i}, said ""ok""\nthen {"x" * (i % width)}",{i % 3 == 0},{i * 0.5}\r\n'
                   for i in range(n))


GENERATED: dict[str, bytes] = {
    "quotes.csv": b'text,n\n"say ""hi""",1\n"a,b",2\n"""",3\n"",4\nplain,5\n',
    "newlines.csv": b'text,n\n"line one\nline two",1\n"cr\r\ninside",2\n"lone\rcr",3\n',
    "crlf.csv": b"a,b,c\r\n1,x,true\r\n2,y,false\r\n\r\n3,z,\r\n",
    "lone_cr.csv": b"a,b\r1,2\r3,4\r",
    "bom.csv": b"\xef\xbb\xbfname;city\nAnn;Paris\nBo;\"Li;on\"\n",
    "utf16.csv": "word,n\ncaf\u00e9,1\n\"na\u00efve, \"\"ok\"\"\",2\n\u65e5\u672c,3\n".encode("utf-16"),
    "latin1.tsv": "word\tn\ncaf\xe9\t1\nna\xefve\t2\n\"a\tb\"\t3\n".encode("latin-1"),
    "latin1_late.csv": ("word,n\n" + "".join(f"w{i},{i}\n" for i in range(9000))).encode() + "caf\xe9,1\n".encode("latin-1"),
    "nul.csv": ("id,text\n" + "".join(f"{i},row {i}\n" for i in range(8000))).encode() + b'8000,"nul\x00here"\n8001,a\x00b\n',
    "types.csv": b"n,x,flag,zip,note,empty,spaced\n1,1.5,true,08123,a,, 7 \n-2,,false,00100,, ,8\n+3,1e3,True,1,b,,9\n",
    "one_column.csv": "text\nhello\n   \n\"\"\n\u3000\nworld\n\x1c\nlast\n".encode(),
    "leading_blank.csv": b"\n\n\r\na,b\n1,2\n",
    "headless.csv": b"1,good,0.5\n2,bad,1.5\n",
    "excel_trailing.csv": b"name,score,,\r\nann,1,,\r\nbo,2,,\r\n",
    "excel_trailing_data.csv": b"name,score,,\nann,1,,x\nbo,2,,\n",
    "spaces.csv": b"a,b\n x , y \n\"q\",  \n",
    "many_batches.csv": ("id,text,flag,score\r\n" + _rows(60_000)).encode(),
    "wide.csv": (",".join(f"c{i}" for i in range(300)) + "\n"
                 + "".join(",".join(str(r * 300 + i) for i in range(300)) + "\n" for r in range(40))).encode(),
    # the first batch's types are a guess: later rows that change a type make the fast path read again
    "late_float.csv": ("n,m,e,z\n" + "".join(f"{i},{i},,{i + 1}\n" for i in range(200_000))
                       + "2.5,x,7,012\n").encode(),
    "late_blank.csv": ("a,b,,\n" + "".join(f"{i},t,,\n" for i in range(200_000)) + "1,u,,v\n").encode(),
    "sep_hint.csv": b"sep=;\r\nname;city\r\nAnn;\"Paris; FR\"\r\nBo;Lyon\r\n",
    "sep_hint_bom.csv": b"\xef\xbb\xbfsep=|\nname|n\nAnn|1\n",
    "literal_quote.csv": b'height,name\n5\'10",ann\n6\'1",bo\n',
}
PYTHON_ONLY |= {"literal_quote"}

JSONL: dict[str, str] = {
    "flat.jsonl": '{"text": "hi", "label": 1}\n{"text": "yo", "label": 2, "extra": true}\n',
    "mixed.jsonl": '{"x": 1}\n{"x": 2.5}\n{"x": null}\n',
    "nested.jsonl": "".join(json.dumps({"q": f"q{i}", "answers": {"text": ["a", "b"], "start": [i]},
                                        "tags": [] if i % 2 else ["t"]}) + "\n" for i in range(200)),
    "unicode.jsonl": '{"t": "caf\\u00e9 \\ud83d\\ude00", "n": -0}\n{"t": "\\"quoted\\" \\n", "n": 7}\n',
    "dates.jsonl": '{"when": "2024-01-02", "n": 1}\n{"when": "2024-02-03T04:05:06", "n": 2}\n',
    "blank_lines.jsonl": '{"a": 1}\n\n{"a": 2}\n',
}


@pytest.fixture
def python_only(monkeypatch):
    """Turn the fast path off: what `load_file_report` gives then is the Python reader's reference."""
    def use(off: bool = True):
        if off:
            monkeypatch.setattr(fastpath, "csv_to_arrow", lambda *a, **k: None)
            monkeypatch.setattr(fastpath, "jsonl_to_arrow", lambda *a, **k: None)
        else:
            monkeypatch.undo()
    return use


def _both(path: Path, tmp_path: Path, python_only, **kw):
    fast = load_file_report(path, cache_dir=tmp_path / "fast", **kw)
    python_only()
    slow = load_file_report(path, cache_dir=tmp_path / "slow", **kw)
    python_only(False)
    return fast, slow


def _same(fast, slow) -> None:
    assert slow.reader == "python"
    assert fast.dataset.column_names == slow.dataset.column_names
    assert fast.dataset.features == slow.dataset.features
    assert fast.dataset.to_list() == slow.dataset.to_list()
    assert (fast.encoding, fast.delimiter, fast.header, fast.notes) == \
           (slow.encoding, slow.delimiter, slow.header, slow.notes)


@pytest.mark.parametrize("src", SPECTRUM_CASES, ids=lambda p: p.stem)
@pytest.mark.parametrize("infer", [True, False])
def test_csv_spectrum_fast_equals_python(src, infer, tmp_path, python_only):
    if src.stem == "newlines_crlf" and b"\r" not in src.read_bytes():
        (tmp_path / src.name).write_bytes(src.read_bytes().replace(b"\n", b"\r\n"))
        src = tmp_path / src.name
    fast, slow = _both(src, tmp_path, python_only, infer_types=infer)
    _same(fast, slow)
    assert fast.reader == ("python" if src.stem in PYTHON_ONLY else "arrow")


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_csv_fast_equals_python(name, tmp_path, python_only):
    src = tmp_path / name
    src.write_bytes(GENERATED[name])
    fast, slow = _both(src, tmp_path, python_only)
    _same(fast, slow)
    assert fast.reader == ("python" if Path(name).stem in PYTHON_ONLY else "arrow")


@pytest.mark.parametrize("name", sorted(JSONL))
def test_jsonl_fast_equals_python(name, tmp_path, python_only):
    src = tmp_path / name
    src.write_text(JSONL[name], encoding="utf-8")
    fast, slow = _both(src, tmp_path, python_only)
    _same(fast, slow)


def test_jsonl_fast_path_is_taken_for_plain_files(tmp_path):
    src = tmp_path / "nested.jsonl"
    src.write_text(JSONL["nested.jsonl"])
    assert load_file_report(src, cache_dir=tmp_path / "c").reader == "arrow"


BAD_QUOTES = {  # Arrow reads each of these without complaint; Python's strict csv refuses them, naming the line
    "closed_then_text": b'a,b\n1,2\n"ab"c,3\n',
    "comma_inside": b'a,b\n1,2\n"a,"b",3\n',
    "empty_then_text": b'a,b\n""c,1\n',
    "space_after": b'a,b\n1,2\n3,4\n"x" ,1\n',
    "never_closed": b'a,b\n1,2\n3,"never closed\n4,5\n',
    "ragged": b"a,b\n1,2\n3,4,5\n",
    "big_cell": b"a,b\n1,2\n3," + b"y" * 3000 + b"\n",
    "trailing_unnamed_middle": b"a,,c\n1,2,3\n",
    "sep_hint_ragged": b"sep=;\na;b\n1;2\n3;4;5\n",
    "sep_hint_bad_quote": b'sep=;\na;b\n1;2\n"x"y;3\n',
}


@pytest.mark.parametrize("name", sorted(BAD_QUOTES))
def test_malformed_files_keep_the_python_readers_exact_message(name, tmp_path, python_only):
    src = tmp_path / f"{name}.csv"
    src.write_bytes(BAD_QUOTES[name])
    messages = []
    for off in (False, True):
        python_only(off)
        with pytest.raises(DataError) as info:
            load_file_report(src, cache_dir=tmp_path / "c", max_cell_bytes=1000)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "line " in messages[0]
    assert not [p for p in (tmp_path / "c").glob("*")], "a refused load left files behind"


@pytest.mark.parametrize("text, strict", [
    (b'a,b\n"x",1\n', True), (b'a,b\n"x""y",1\n', True), (b'"",""\n', True), (b'a\n""""\n', True),
    (b'a,b\n"ab"c,1\n', False), (b'a,b\n"a,"b",1\n', False), (b'a,b\nx"y,1\n', False), (b'a\n"open\n', False),
    (b'a,b\n "x",1\n', False),
])
def test_strict_quote_scan(text, strict, tmp_path):
    f = tmp_path / "q.csv"
    f.write_bytes(text)
    assert fastpath.scan_quotes(f, "utf-8", ",", 100) is strict


def test_strict_quote_scan_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(fastpath, "SCAN_BYTES", 7)
    good, bad = tmp_path / "g.csv", tmp_path / "b.csv"
    good.write_bytes(b'a,b\n"x,y",1\n"p""q",2\n"z"\n')
    bad.write_bytes(b'a,b\n"x,y",1\n"pq"r,2\n')
    assert fastpath.scan_quotes(good, "utf-8", ",", 100) is True
    assert fastpath.scan_quotes(bad, "utf-8", ",", 100) is False
    multi = tmp_path / "m.csv"
    multi.write_bytes(b'a,b\n"x\ny",1\n"z",2\n')
    assert fastpath.scan_quotes(multi, "utf-8", ",", 100) is True
    assert fastpath.scan_quotes(multi, "utf-8", ",", 3) is False  # 4 lines counting the line break in quotes


def test_progress_reports_bytes_and_rows(tmp_path):
    src = tmp_path / "big.csv"
    src.write_bytes(GENERATED["many_batches.csv"])
    seen = []
    r = load_file_report(src, cache_dir=tmp_path / "c", progress=lambda done, size, rows: seen.append((done, size, rows)))
    assert r.reader == "arrow" and seen and seen[-1][2] == len(r.dataset) == 60_000
    assert all(0 < d <= s for d, s, _ in seen) and [x[2] for x in seen] == sorted(x[2] for x in seen)
    # bytes read never go back (this file is read twice: its first block cuts a quoted line break) and end at the size
    assert [x[0] for x in seen] == sorted(x[0] for x in seen) and seen[-1][:2] == (src.stat().st_size,) * 2
    assert len({x[1] for x in seen}) == 1


def test_progress_over_a_large_plain_file_is_monotonic_and_ends_at_its_size(tmp_path):
    src = tmp_path / "plain.csv"
    src.write_bytes(b"id,text,n\n" + b"".join(b'%d,"row %d, ""q""",%d\n' % (i, i, i % 7) for i in range(120_000)))
    seen = []
    r = load_file_report(src, cache_dir=tmp_path / "c", progress=lambda *a: seen.append(a))
    size = src.stat().st_size
    assert r.reader == "arrow" and len(seen) > 3 and seen[-1] == (size, size, 120_000)
    assert all(a[0] <= b[0] and a[2] <= b[2] for a, b in zip(seen, seen[1:], strict=False))


def test_progress_follows_a_quote_scan_slower_than_arrow(tmp_path, monkeypatch):
    # the CI machine once ran the scan behind Arrow and the bar showed nothing until the end: a report
    # now waits for the scan to pass the bytes Arrow read, so every batch still moves the bar
    monkeypatch.setattr(fastpath, "SCAN_BYTES", 64 * 1024)
    real = fastpath.scan_quotes

    def slow(*a, **k):
        time.sleep(0.3)  # Arrow is through the file before the scan starts
        return real(*a, **k)

    monkeypatch.setattr(fastpath, "scan_quotes", slow)
    src = tmp_path / "plain.csv"
    src.write_bytes(b"id,text\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(150_000)))
    seen = []
    r = load_file_report(src, cache_dir=tmp_path / "c", progress=lambda *a: seen.append(a))
    size = src.stat().st_size
    assert r.reader == "arrow" and len(seen) > size // fastpath.BLOCK_BYTES // 2 and seen[-1] == (size, size, 150_000)
    assert all(a[0] <= b[0] and a[2] <= b[2] for a, b in zip(seen, seen[1:], strict=False))


def test_a_line_break_in_quotes_where_arrow_cuts_a_block_is_read_right_in_one_pass(tmp_path, python_only,
                                                                                   monkeypatch):
    # without newlines_in_values Arrow's reader misreads this file silently (a block cut inside the quotes
    # starts a row at "lines, 12"), so the fast path always reads with it (its streaming reader costs the same)
    monkeypatch.setattr(fastpath, "BLOCK_BYTES", 4096)  # many blocks in a small file
    real, passes = fastpath._stream_csv, []
    monkeypatch.setattr(fastpath, "_stream_csv", lambda *a, **k: passes.append(1) or real(*a, **k))
    src = tmp_path / "late.csv"  # plain rows for ~15 blocks, then quoted values with line breaks
    src.write_bytes(b"id,text\n" + b"".join(b"%d,plain %d\n" % (i, i) for i in range(6000))
                    + b"".join(b'%d,"two\nlines, %d"\r\n' % (i, i) for i in range(300)))
    fast, slow = _both(src, tmp_path, python_only)
    _same(fast, slow)
    assert fast.reader == "arrow" and passes == [1] and len(fast.dataset) == 6300
    assert fast.dataset.features["id"].dtype == "int64" and fast.dataset[6299]["text"] == "two\nlines, 299"


def test_a_file_the_quote_scan_refuses_is_read_by_python_however_far_arrow_got(tmp_path, monkeypatch):
    monkeypatch.setattr(fastpath, "BLOCK_BYTES", 4096)
    src = tmp_path / "late_bad.csv"  # Arrow reads all of it; the strict scan refuses the last line
    src.write_bytes(b"a,b\n" + b"".join(b"%d,x%d\n" % (i, i) for i in range(20_000)) + b'"ab"c,1\n')
    with pytest.raises(DataError, match=r"line 20002: "):
        load_file_report(src, cache_dir=tmp_path / "c")
    assert not list((tmp_path / "c").glob("*"))


def test_the_python_reader_reports_progress_too(tmp_path):
    src = tmp_path / "quotes.csv"  # a quote inside an unquoted field: the Python reader reads it
    src.write_bytes(b"h,n\n" + b"".join(f'5\'{i % 12}",{i}\n'.encode() for i in range(45_000)))
    seen = []
    r = load_file_report(src, cache_dir=tmp_path / "c", progress=lambda *a: seen.append(a))
    assert r.reader == "python" and len(seen) == 3 and seen[-1] == (src.stat().st_size, src.stat().st_size, 45_000)
    assert [x[2] for x in seen] == [20_000, 40_000, 45_000]


def test_a_sep_line_names_the_delimiter_and_lines_keep_their_numbers(tmp_path):
    src = tmp_path / "excel.csv"
    src.write_bytes(b"sep=;\nname;score\nann;1\nbo;2\n")
    r = load_file_report(src, cache_dir=tmp_path / "c")
    assert r.delimiter == ";" and r.dataset.to_list() == [{"name": "ann", "score": 1}, {"name": "bo", "score": 2}]
    assert any("sep=;" in n for n in r.notes) and r.reader == "arrow"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(BAD_QUOTES["sep_hint_ragged"])
    with pytest.raises(DataError, match=r"^line 4 has 3 fields, expected 2"):
        load_file_report(bad, cache_dir=tmp_path / "c")


@pytest.mark.parametrize("options", [{"encoding": "utf-8", "header": False}, {"encoding": "latin-1"},
                                     {"delimiter": ";"}, {"header": True, "infer_types": False},
                                     {"on_bad_lines": "skip"}])
def test_chosen_options_fast_equals_python(options, tmp_path, python_only):
    src = tmp_path / "bom.csv"
    src.write_bytes(b"\xef\xbb\xbfa;b\n1;caf\xc3\xa9\n2;\"x;y\"\n")
    fast, slow = _both(src, tmp_path, python_only, **options)
    _same(fast, slow)


def test_the_arrow_file_is_written_in_few_large_batches(tmp_path, python_only, monkeypatch):
    # each batch's header, read when the file is memory-mapped, maps ~64 KB into the process: few batches
    monkeypatch.setattr(fastpath, "BLOCK_BYTES", 64 * 1024)
    monkeypatch.setattr(fastpath, "WRITE_BYTES", 512 * 1024)
    src = tmp_path / "big.csv"
    src.write_bytes(GENERATED["many_batches.csv"])
    fast, slow = _both(src, tmp_path, python_only)
    _same(fast, slow)
    size = src.stat().st_size  # (Arrow's text is about the file's size; typed, the batches are smaller)
    assert fast.reader == "arrow" and len(fast.dataset.data.to_batches()) <= size // (512 * 1024) + 2 < size // (64 * 1024)


def test_read_ahead_hands_over_the_readers_error_and_stops_when_closed():
    import itertools
    import threading

    def reader():
        yield "a"
        yield "b"
        raise ValueError("bad block")

    it = fastpath._ahead(reader(), lambda: 7, depth=1)
    assert next(it) == ("a", 7)
    with pytest.raises(ValueError, match="bad block"):
        list(it)
    endless = fastpath._ahead(itertools.count(), lambda: 0, depth=2)
    assert next(endless) == (0, 0)
    endless.close()  # an early return of the loader: the thread stops, nothing left running
    assert not [t for t in threading.enumerate() if t.name == "csv-read-ahead"]
