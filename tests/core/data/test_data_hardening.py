"""Issue 13, round 2, data part: server paths confined, CSV export neutralised, caps checked while files stream,
and every bad file a clear DataError. Hostile files are made here in tmp_path; caps are made small through
Settings so that each case stays small and fast."""
from __future__ import annotations

import csv
import io
import json
import os
import time

import pytest

from core.data import (
    DataError,
    DatasetStore,
    Limits,
    check_export,
    export,
    import_server_file,
    load_file,
    load_file_report,
    load_hub,
    neutralise,
    server_path,
)
from core.data.limits import BoundedLines, json_depth
from core.settings import Settings

SECRET = "SECRET-7f3a9c-TOKEN"


def load(path, tmp_path, **caps):
    settings = Settings(workspace=tmp_path / "ws", **caps)
    return load_file_report(path, cache_dir=tmp_path / "staging", settings=settings)


def refused(path, tmp_path, pattern, **caps):
    with pytest.raises(DataError, match=pattern) as info:
        load(path, tmp_path, **caps)
    assert not list((tmp_path / "staging").glob("*")), "a refused load left files behind"
    return str(info.value)


# --------------------------------------------------------------------------------------------- paths
@pytest.fixture
def site(tmp_path):
    """A workspace whose imports/ holds a good file and links planted to lead out of it; a secret outside."""
    ws, outside, extra = tmp_path / "ws", tmp_path / "outside", tmp_path / "extra"
    for p in (ws / "imports" / "sub", outside, extra):
        p.mkdir(parents=True)
    (outside / "secret.csv").write_text(f"{SECRET},b\n1,2\n")
    (ws / "imports" / "ok.csv").write_text("text,label\nhi,pos\n")
    (extra / "more.csv").write_text("text,label\nyo,neg\n")
    (ws / "imports" / "link.csv").symlink_to(outside / "secret.csv")
    (ws / "imports" / "passwd.csv").symlink_to("/etc/passwd")
    (ws / "imports" / "dirlink").symlink_to(outside)
    os.mkfifo(ws / "imports" / "fifo.csv")
    return {"settings": Settings(workspace=ws), "ws": ws, "outside": outside, "extra": extra}


OUTSIDE = ["/proc/self/maps", "/proc/self/environ", "/etc/passwd", "/dev/zero", "../../outside/secret.csv",
           "../../../../../../../../etc/passwd", "link.csv", "passwd.csv", "dirlink/secret.csv", "sub/../../../outside/secret.csv"]


@pytest.mark.parametrize("typed", OUTSIDE)
def test_paths_outside_the_allowed_folders_are_refused_without_reading_them(site, typed):
    store = DatasetStore(site["ws"] / "datasets")
    with pytest.raises(DataError, match="outside the folders the server may read") as info:
        import_server_file(typed, "x", store, settings=site["settings"])
    message = str(info.value)
    assert SECRET not in message and "root:" not in message and "/bin/" not in message
    assert str(site["ws"].resolve() / "imports") in message  # says where files may be
    assert store.list() == []


def test_a_missing_and_an_existing_file_outside_read_the_same(site):
    """No oracle: what a refusal says can't tell whether a file outside exists."""
    def message(p):
        with pytest.raises(DataError) as info:
            server_path(str(p), site["settings"])
        return str(info.value).replace(str(p), "<path>")

    assert message(site["outside"] / "secret.csv") == message(site["outside"] / "missing.csv")
    assert message(site["outside"] / "secret.csv") == message("/no/such/folder/x.csv")


@pytest.mark.parametrize("typed, pattern", [("fifo.csv", "not a regular file"), ("sub", "is a folder"),
                                            ("missing.csv", "does not exist"), ("", "type the path"),
                                            ("ok.csv\x00.png", "not a usable file path")])
def test_inside_but_not_a_regular_file_is_refused_without_opening_it(site, typed, pattern):
    with pytest.raises(DataError, match=pattern):  # a FIFO opened for reading would block: it must not be
        server_path(typed, site["settings"])


def test_files_inside_allowed_folders_load_and_data_dirs_adds_folders(site, tmp_path):
    imports = site["ws"].resolve() / "imports"
    assert server_path("ok.csv", site["settings"]) == imports / "ok.csv"
    assert server_path(str(imports / "ok.csv"), site["settings"]) == imports / "ok.csv"
    with pytest.raises(DataError, match="outside"):
        server_path(str(site["extra"] / "more.csv"), site["settings"])  # not allowed until listed
    env = {"TORCHLAB_WORKSPACE": str(site["ws"]), "TORCHLAB_DATA_DIRS": f"{site['extra']}{os.pathsep}/nowhere"}
    settings = Settings.from_env(env)
    assert settings.data_dirs == env["TORCHLAB_DATA_DIRS"]
    store = DatasetStore(tmp_path / "ds")
    ref, _ = import_server_file(str(site["extra"] / "more.csv"), "more", store, settings=settings,
                                cache_dir=tmp_path / "staging")
    assert store.load("more")["train"].to_list() == [{"text": "yo", "label": "neg"}]
    assert ref.source == f"server file: {site['extra'].resolve() / 'more.csv'}"
    assert server_path("more.csv", settings) == site["extra"].resolve() / "more.csv"  # relative: looked up in each


def test_pseudo_files_are_refused_by_the_loader_itself(tmp_path):
    """Belt and braces: /proc files report 0 bytes, so even a direct load_file call reads nothing from them."""
    with pytest.raises(DataError, match=r"empty \(0 bytes\)") as info:
        load("/proc/self/maps", tmp_path)
    assert "r-xp" not in str(info.value) and "/usr" not in str(info.value)


@pytest.mark.parametrize("spec", ["/etc", "./core", "../x", "csv", "json", "a/b/c", "core"])
def test_hub_ids_that_are_paths_or_builders_never_reach_load_dataset(spec):
    with pytest.raises(DataError, match="not a hub dataset id"):
        load_hub(spec)


# --------------------------------------------------------------------------------------------- export
PAYLOADS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)",
            "\t=1+1", "\r=1+1", "  =1+1", "\u3000=1", "\uff1d1+1", "\uff0b1", "-5"]
SAFE = ["a=b", "plain", "", "1+1", "'already", "x\n=1"]


def exported(tmp_path, ds):
    out = export(ds, "csv", tmp_path / "out.csv")
    with out.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_csv_export_neutralises_text_cells_and_names_but_not_numbers(tmp_path):
    import datasets

    feats = datasets.Features({"=SUM(A1)": datasets.Value("string"), "n": datasets.Value("int64"),
                               "x": datasets.Value("float64"),
                               "label": datasets.ClassLabel(names=["=neg", "pos"])})
    cells = PAYLOADS + SAFE + [None]
    k = len(cells)
    ds = datasets.Dataset.from_dict({"=SUM(A1)": cells, "n": [-5] * k, "x": [-1.5] * k,
                                     "label": [i % 2 for i in range(k - 1)] + [-1]}, features=feats)
    rows = exported(tmp_path, ds)
    assert rows[0] == ["'=SUM(A1)", "n", "x", "label"]
    got = [r[0] for r in rows[1:]]
    assert got[: len(PAYLOADS)] == ["'" + p for p in PAYLOADS]  # OWASP: text that starts so gets a quote
    assert got[len(PAYLOADS):] == SAFE + [""]  # a sign inside a cell, or none, is left alone; null stays empty
    assert {r[1] for r in rows[1:]} == {"-5"} and {r[2] for r in rows[1:]} == {"-1.5"}  # numbers stay numbers
    assert [r[3] for r in rows[1:4]] == ["'=neg", "pos", "'=neg"] and rows[-1][3] == ""  # class names too
    raw = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert '"\'=HYPERLINK(""http://evil.example"",""x"")"' in raw  # text quoted, inner quotes doubled


def test_neutralise_matches_a_reference_on_random_strings():
    import random

    import pyarrow as pa

    rng = random.Random(13)
    alphabet = ["=", "+", "-", "@", "\t", "\r", "\n", " ", "\u00a0", "\u3000", "\uff1d", "\uff20", "a", "1", "'", '"']
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(3000)]

    def reference(s):
        body = s.lstrip(" \t\r\n\u00a0\u3000")
        live = body[:1] in set("=+-@\uff1d\uff0b\uff0d\uff20") and body != "" or s[:1] in ("\t", "\r")
        return "'" + s if live else s

    assert neutralise(pa.array(texts)).to_pylist() == [reference(s) for s in texts]


def test_csv_export_refuses_nested_and_binary_columns_before_any_work(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"tokens": [[1, 2]], "meta": [{"k": "v"}], "text": ["a"]}), tmp_path / "n.parquet")
    ds = load(tmp_path / "n.parquet", tmp_path).dataset
    with pytest.raises(DataError, match=r"CSV cells can't hold the columns 'tokens' \(lists.*'meta' \(structs\)"):
        export(ds, "csv", tmp_path / "e" / "out.csv")
    assert not (tmp_path / "e").exists() or not list((tmp_path / "e").iterdir())
    with pytest.raises(DataError, match=r"'b' \(bytes\)"):
        check_export(datasets.Dataset.from_dict({"b": [b"=1"]}), "csv")
    assert export(ds, "parquet", tmp_path / "out.parquet").is_file()  # Parquet holds them
    check_export(ds.select_columns(["text"]), "csv")


# --------------------------------------------------------------------------------------------- caps
def test_a_csv_wider_than_the_column_cap_is_refused_at_its_first_line(tmp_path):
    f = tmp_path / "wide.csv"
    f.write_text(",".join(f"c{i}" for i in range(50_000)) + "\n" + "1," * 49_999 + "1\n")
    assert "line 1: 50,000 columns, over the 100-column cap (TORCHLAB_MAX_COLUMNS)" in \
        refused(f, tmp_path, "column cap", max_columns=100)


def test_a_wide_csv_under_the_cap_loads_in_batches_of_bounded_cells(tmp_path):
    f = tmp_path / "wide.csv"
    f.write_text(",".join(f"c{i}" for i in range(300)) + "\n"
                 + "".join(",".join(str(r * 300 + i) for i in range(300)) + "\n" for r in range(50)))
    ds = load(f, tmp_path).dataset
    assert ds.shape == (50, 300) and ds[49]["c299"] == 49 * 300 + 299
    limits = Limits()
    assert limits.batch_rows(300, 20_000) == 3333 and limits.batch_rows(5, 20_000) == 20_000
    assert limits.batch_rows(10**9, 20_000) == 1


def test_a_long_line_is_refused_after_reading_one_cap_of_it_not_the_whole_line():
    text = io.StringIO("a,b\n" + "x" * 5_000_000)
    lines = BoundedLines(text, 1000)
    it = iter(lines)
    assert next(it) == "a,b\n"
    lines.next_record()
    with pytest.raises(DataError, match=r"line 2: a row of more than 1,000 bytes"):
        next(it)
    assert text.tell() <= 4 + 1001  # stopped at the cap, not at the end of the 5 MB line


@pytest.mark.parametrize("name, content", [
    ("line.csv", "a,b\n1," + "x" * 200_000 + "\n"),
    ("fields.csv", "a,b\n" + "x," * 100_000 + "\n"),
    ("multiline.csv", 'a,b\n1,"' + "x\n" * 5_000 + '"\n'),  # each line short, the record long
    ("line.jsonl", '{"a": "' + "x" * 200_000 + '"}\n'),
])
def test_rows_over_the_row_cap_are_refused_as_they_stream(tmp_path, name, content):
    f = tmp_path / name
    f.write_text(content)
    refused(f, tmp_path, r"line 2: a row of more than 5,000 bytes.*TORCHLAB_MAX_ROW_BYTES" if "csv" in name
            else r"line 1: a row of more than 5,000 bytes", max_row_bytes=5_000, max_cell_bytes=100_000)


@pytest.mark.parametrize("name, content", [("blank.csv", "a,b\n1,2\n" + "\n" * 200), ("rows.csv", "a\n" + "1\n" * 200),
                                           ("objects.jsonl", '{"a": 1}\n' * 201)])
def test_rows_over_the_row_cap_are_refused_by_counting_lines_first(tmp_path, name, content):
    f = tmp_path / name
    f.write_text(content)
    assert "more than 100 lines, over the row cap (TORCHLAB_MAX_ROWS" in refused(f, tmp_path, "row cap", max_rows=100)
    (tmp_path / "ok.csv").write_text("a\n" + "1\n" * 99)
    assert len(load(tmp_path / "ok.csv", tmp_path, max_rows=100).dataset) == 99


def test_a_csv_line_count_is_the_quote_scans_not_a_pass_of_its_own(tmp_path, monkeypatch):
    """The fast path counts a CSV's lines on its quote-scan thread, beside Arrow's reader; the separate
    up-front count runs only for a file the Python reader will walk (blank first, or refused by the scan)."""
    counts = []
    real = Limits.check_lines
    monkeypatch.setattr(Limits, "check_lines", lambda self, path: counts.append(path.name) or real(self, path))
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n" + "1,x\n" * 300)
    refused(rows, tmp_path, r"rows.csv has more than 200 lines, over the row cap", max_rows=200)
    assert counts == []
    report = load(rows, tmp_path / "ok", max_rows=400)
    assert (len(report.dataset), report.reader, counts) == (300, "arrow", [])
    blank = tmp_path / "blank.csv"  # blank lines up to the 64 KB sniff and past it: counted before any parsing
    blank.write_text("\n" * 70_000 + "a\n1\n")
    start = time.perf_counter()
    refused(blank, tmp_path, r"blank.csv has more than 50,000 lines, over the row cap", max_rows=50_000)
    assert counts == ["blank.csv"] and time.perf_counter() - start < 5
    bad = tmp_path / "quotes.csv"  # a quote out of place in the scan's first MB, the cap passed after it:
    bad.write_text('a,b\n1,x"y\n' + ("2," + "z" * 1000 + "\n") * 2_000)  # the Python reader's turn, counted first
    refused(bad, tmp_path, r"quotes.csv has more than 1,500 lines", max_rows=1_500)
    assert counts == ["blank.csv", "quotes.csv"]


def test_the_row_cap_also_holds_while_parsing_lone_cr_files(tmp_path):
    f = tmp_path / "cr.csv"  # old-Mac line ends: no \n to count up front, the streaming count catches it
    f.write_text("a\r" + "1\r" * 300, newline="")
    refused(f, tmp_path, r"line 101: more than 100 rows, over the row cap", max_rows=100)


def test_a_text_file_over_the_dataset_cap_is_refused_before_it_is_read(tmp_path):
    f = tmp_path / "sparse.csv"
    with f.open("wb") as out:
        out.write(b"a,b\n1,2\n")
        out.truncate(3 * 1024 * 1024)
    assert "is 3 MB, over the 2 MB dataset cap (TORCHLAB_MAX_DATASET_MB)" in \
        refused(f, tmp_path, "dataset cap", max_dataset_mb=2)


def test_a_load_past_its_time_budget_is_refused(tmp_path):
    f = tmp_path / "rows.csv"
    f.write_text("a\n" + "1\n" * 10_000)
    refused(f, tmp_path, r"ran past its 0 s budget \(TORCHLAB_LOAD_TIMEOUT_S\)", load_timeout_s=1e-9)


# --------------------------------------------------------------------------------------------- JSON Lines
@pytest.mark.parametrize("depth", [33, 900, 5_000, 100_000])
def test_deep_json_is_refused_before_it_is_parsed(tmp_path, depth):
    f = tmp_path / "deep.jsonl"
    f.write_text('{"ok": 1}\n{"a": ' + "[" * depth + "]" * depth + "}\n")
    refused(f, tmp_path, rf"line 2: values nested {depth:,} levels deep, over the 32-level cap")


def test_deep_objects_and_strings_full_of_brackets(tmp_path):
    f = tmp_path / "objs.jsonl"
    f.write_text('{"a": ' * 6000 + "1" + "}" * 6000 + "\n")
    refused(f, tmp_path, r"line 1: values nested 5,999 levels deep")
    ok = tmp_path / "brackets.jsonl"  # brackets inside strings (and escaped quotes) don't nest
    ok.write_text(json.dumps({"t": "[[[[{{{{" * 100 + '\\"[[[', "n": [[[1]]]}) + "\n")
    assert load(ok, tmp_path).dataset[0]["n"] == [[[1]]]
    assert json_depth(json.dumps({"a": ['"[[[', {"b": "\\"}]}), 0) == 3


def test_json_keys_over_the_column_cap_are_refused_at_the_line_that_crosses_it(tmp_path):
    f = tmp_path / "keys.jsonl"
    f.write_text("".join(f'{{"k{i}": {i}}}\n' for i in range(500)))
    assert "line 21: 21 columns, over the 20-column cap" in refused(f, tmp_path, "column cap", max_columns=20)

    def tree(d):
        return "1" if d == 0 else '{"l": ' + tree(d - 1) + ', "r": ' + tree(d - 1) + "}"

    nested = tmp_path / "tree.jsonl"  # one line, two key names, 2**10 nested fields
    nested.write_text('{"t": ' + tree(10) + "}\n")
    refused(nested, tmp_path, r"line 1: \d+ columns, over the 100-column cap", max_columns=100)


@pytest.mark.parametrize("content, pattern", [
    ('{"a": 1}\n{"": 2}\n', r'line 2: a key is empty \(""\)'),
    ('{"a": {"b": {"": 2}}}\n', r"line 1: a key inside 'a.b' is empty"),
    ("{}\n{}\n", r"every object is empty"),
    ('{"a": "x"}\n{"a": ' + "1" * 400 + "}\n", r"could not be read|column"),  # an int too large for Arrow
])
def test_bad_json_lines_give_a_clear_error(tmp_path, content, pattern):
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    refused(f, tmp_path, pattern)


def test_nested_json_under_the_caps_loads(tmp_path):
    f = tmp_path / "squad.jsonl"
    f.write_text("".join(json.dumps({"q": f"q{i}", "answers": {"text": ["a"], "start": [i]}}) + "\n" for i in range(50)))
    ds = load(f, tmp_path).dataset
    assert len(ds) == 50 and ds[7] == {"q": "q7", "answers": {"text": ["a"], "start": [7]}}


# --------------------------------------------------------------------------------------------- Parquet
def write_parquet(path, table, **kw):
    import pyarrow.parquet as pq

    pq.write_table(table, str(path), **kw)
    return path


def test_parquet_with_duplicate_or_empty_column_names_is_refused(tmp_path):
    import pyarrow as pa

    dup = write_parquet(tmp_path / "dup.parquet", pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"]))
    refused(dup, tmp_path, r"column 2 is named 'x' like an earlier column")
    empty = write_parquet(tmp_path / "e.parquet", pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", " "]))
    refused(empty, tmp_path, r"column 2 has an empty name")


def test_parquet_caps_are_checked_from_the_footer_before_any_row_is_read(tmp_path):
    import numpy as np
    import pyarrow as pa

    rows = write_parquet(tmp_path / "rows.parquet", pa.table({"a": np.zeros(5000, np.int64)}), compression="zstd")
    assert (tmp_path / "rows.parquet").stat().st_size < 2000
    refused(rows, tmp_path, r"5,000 rows, over the 1,000-row cap", max_rows=1000)
    wide = write_parquet(tmp_path / "wide.parquet", pa.table({f"c{i}": [1] for i in range(60)}))
    refused(wide, tmp_path, r"60 columns, over the 50-column cap", max_columns=50)
    struct = write_parquet(tmp_path / "struct.parquet", pa.table({"s": [{f"f{i}": 1 for i in range(60)}]}))
    refused(struct, tmp_path, r"60 columns, over the 50-column cap", max_columns=50)
    deep = pa.array([1])
    for _ in range(6):
        deep = pa.ListArray.from_arrays(pa.array([0, 1], pa.int32()), deep)
    refused(write_parquet(tmp_path / "deep.parquet", pa.table({"d": deep})), tmp_path,
            r"column 'd': values nested 6 levels deep, over the 5-level cap", max_nesting=5)
    big_row = write_parquet(tmp_path / "list.parquet", pa.table({"v": pa.array([np.zeros(200_000, np.int8)])}),
                            compression="zstd")
    refused(big_row, tmp_path, r"rows of 200,000 bytes or more, over the 100,000-byte row cap", max_row_bytes=100_000)
    longs = write_parquet(tmp_path / "longs.parquet", pa.table({"v": pa.array([np.zeros(200_000, np.int64)])}),
                          compression="zstd")  # a 1 KB file: 200,000 int64 are at least 1.6 MB in Arrow
    refused(longs, tmp_path, r"grows past 1 MB once decompressed", max_dataset_mb=1, max_row_bytes=10**7)
    offsets = np.arange(10_001, dtype=np.int32)
    offsets[6:] += 200_000  # row 6 holds 200,001 values, the others one each: the average hides it
    outlier = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.zeros(210_000, np.int64)))
    refused(write_parquet(tmp_path / "outlier.parquet", pa.table({"v": outlier}), compression="zstd"), tmp_path,
            r"row 6: 1,600,016 bytes, over the 1,000,000-byte row cap", max_row_bytes=1_000_000)


def test_a_parquet_dictionary_bomb_is_refused_before_it_is_expanded(tmp_path):
    import numpy as np
    import pyarrow as pa

    bomb = pa.DictionaryArray.from_arrays(pa.array(np.zeros(4000, np.int32)), pa.array(["x" * 500_000]))
    f = write_parquet(tmp_path / "bomb.parquet", pa.table({"t": bomb}), compression="zstd",
                      dictionary_pagesize_limit=1 << 30)
    assert f.stat().st_size < 10_000  # 2 GB of text once expanded
    t0 = time.perf_counter()
    refused(f, tmp_path, r"grows past 64 MB once decompressed, over the dataset cap", max_dataset_mb=64)
    assert time.perf_counter() - t0 < 30  # refused from dictionary lengths, never expanded (2 GB would take far longer)
    cell = write_parquet(tmp_path / "cell.parquet", pa.table({"t": pa.DictionaryArray.from_arrays(
        pa.array([0, 0], pa.int32()), pa.array(["y" * 5000]))}))
    refused(cell, tmp_path, r"a value of 5,000 bytes, over the 1,000-byte cell cap", max_cell_bytes=1000)


def test_parquet_categoricals_lists_and_structs_under_the_caps_load(tmp_path):
    import pyarrow as pa

    f = write_parquet(tmp_path / "ok.parquet", pa.table({
        "c": pa.array(["pos", "neg", "pos"]).dictionary_encode(), "l": [[1], [2, 3], []], "s": [{"k": "v"}] * 3}))
    ds = load(f, tmp_path).dataset
    assert ds.to_list() == [{"c": "pos", "l": [1], "s": {"k": "v"}}, {"c": "neg", "l": [2, 3], "s": {"k": "v"}},
                            {"c": "pos", "l": [], "s": {"k": "v"}}]
    assert str(ds.features["c"].dtype) == "string"


def test_settings_read_the_new_caps_from_the_environment():
    s = Settings.from_env({"TORCHLAB_MAX_COLUMNS": "10", "TORCHLAB_MAX_ROWS": "1_000", "TORCHLAB_MAX_ROW_BYTES": "99",
                           "TORCHLAB_MAX_NESTING": "3", "TORCHLAB_MAX_DATASET_MB": "5", "TORCHLAB_LOAD_TIMEOUT_S": "2.5",
                           "TORCHLAB_DATA_DIRS": "/a:/b"})
    limits = Limits.from_settings(s)
    assert (limits.columns, limits.rows, limits.row_bytes, limits.nesting, limits.dataset_bytes, limits.timeout_s) \
        == (10, 1000, 99, 3, 5 * 1024 * 1024, 2.5)
    with pytest.raises(ValueError, match="TORCHLAB_MAX_NESTING"):
        Settings.from_env({"TORCHLAB_MAX_NESTING": "0"})


def test_load_file_reads_the_caps_of_the_process_settings(tmp_path, monkeypatch):
    from core.settings import get_settings

    f = tmp_path / "w.csv"
    f.write_text("a,b,c\n1,2,3\n")
    monkeypatch.setenv("TORCHLAB_MAX_COLUMNS", "2")
    get_settings.cache_clear()
    try:
        with pytest.raises(DataError, match="over the 2-column cap"):
            load_file(f, cache_dir=tmp_path / "staging")
    finally:
        monkeypatch.delenv("TORCHLAB_MAX_COLUMNS")
        get_settings.cache_clear()


def test_nested_columns_in_browse_and_shape_give_clear_errors(tmp_path):
    """A Parquet file with lists loads; counting, searching or encoding such a column says why it can't."""
    import datasets
    import pyarrow as pa

    from core.data import Op, apply, label_counts, search

    f = write_parquet(tmp_path / "n.parquet", pa.table({"tokens": [[1, 2], [3]], "n": [10, 21]}))
    ds = load(f, tmp_path).dataset
    with pytest.raises(DataError, match=r"column 'tokens' holds list<item: int64> values, which can't be counted"):
        label_counts(ds, "tokens")
    with pytest.raises(DataError, match="can't be searched"):
        search(ds, "tokens", "1")
    assert search(ds, "n", "1") == ([0, 1], 2)  # numbers are searched as shown
    with pytest.raises(DataError, match=r"class_label failed: \w+"):
        apply(datasets.DatasetDict({"train": ds}), Op("class_label", {"column": "tokens"}), scratch=tmp_path)


def test_column_names_longer_than_512_characters_are_refused_in_every_format(tmp_path):
    import pyarrow as pa

    long = "n" * 5000
    (tmp_path / "h.csv").write_text(f"a,{long}\n1,2\n")
    assert len(refused(tmp_path / "h.csv", tmp_path, r"line 1: column 2's name is 5,000 characters")) < 400
    (tmp_path / "k.jsonl").write_text(json.dumps({"a": 1, long: 2}) + "\n")
    assert len(refused(tmp_path / "k.jsonl", tmp_path, r"line 1: a key of 5,000 characters")) < 400
    (tmp_path / "n.jsonl").write_text(json.dumps({"a": {long: 2}}) + "\n")
    refused(tmp_path / "n.jsonl", tmp_path, r"line 1: a key inside 'a' has 5,000 characters; names are at most 512")
    f = write_parquet(tmp_path / "p.parquet", pa.table({long: [1]}))
    assert len(refused(f, tmp_path, r"column 1's name is 5,000 characters")) < 400
