"""Load time of Torch Lab's Arrow fast path against pandas, side by side, on generated CSV and JSON Lines files.

    .venv/bin/python -m bench.bench_csv_fast                 # 60 and 100 MB CSVs, a 60 MB JSONL, 3 runs each
    .venv/bin/python -m bench.bench_csv_fast --mb 200 --runs 1
    .venv/bin/python -m bench.bench_csv_fast --floor --mb 60 1000 --runs 5   # what Arrow alone costs, beside pandas

Every load runs in a fresh subprocess (imports done before the clock starts), pandas and Torch Lab
alternating, so one's memory or page cache can't favour the other; the median of the runs is reported.
Peak RSS is the process's VmHWM; "over baseline" subtracts its peak after the imports, before the load.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.bench_data import generate

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import json, sys, time
mode, path, staging = sys.argv[1], sys.argv[2], sys.argv[3]
def hwm():  # VmHWM, this process's own peak: ru_maxrss on Linux carries the parent's peak over exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
import pandas as pd, pyarrow  # noqa: F401
if mode.startswith("torchlab"):
    import datasets  # noqa: F401
    from core.data import load_file_report
if mode.startswith("torchlab-python"):  # the Python reader alone, as before the fast path (issue 18's "today")
    import core.data.fastpath as fastpath
    fastpath.csv_to_arrow = fastpath.jsonl_to_arrow = lambda *a, **k: None
base = hwm()
t0 = time.perf_counter()
if mode == "pandas-csv":
    n, reader = len(pd.read_csv(path)), "pandas"
elif mode == "pandas-jsonl":
    n, reader = len(pd.read_json(path, lines=True)), "pandas"
elif mode.startswith("arrow-"):  # the floor: Arrow's streaming reader as the loader sets it, all strings
    import pyarrow as pa, pyarrow.csv as pc
    from core.data.fastpath import BLOCK_BYTES
    reader = pc.open_csv(path, read_options=pc.ReadOptions(block_size=BLOCK_BYTES),
                         parse_options=pc.ParseOptions(newlines_in_values=True),
                         convert_options=pc.ConvertOptions(column_types={n: pa.string() for n in
                                                                         pd.read_csv(path, nrows=0).columns}))
    n = 0
    if mode == "arrow-stream":
        for batch in reader:
            n += batch.num_rows
    else:  # "arrow-write": and each batch written to an Arrow file as it comes, nothing else
        import os
        out = os.path.join(staging, "floor.arrow")
        with pa.OSFile(out, "wb") as sink, pa.ipc.new_stream(sink, reader.schema) as writer:
            for batch in reader:
                n += batch.num_rows
                writer.write_batch(batch)
        os.unlink(out)
    reader = mode
else:
    r = load_file_report(path, cache_dir=staging)
    n, reader = len(r.dataset), r.reader
t1 = time.perf_counter()
peak = hwm()
if mode.startswith("torchlab"):
    import os
    os.unlink(r.dataset.cache_files[0]["filename"])
print(json.dumps({"rows": n, "s": t1 - t0, "peak": peak, "base": base, "reader": reader}))
'''


def to_jsonl(csv: Path, out: Path) -> None:
    import pandas as pd

    pd.read_csv(csv).to_json(out, orient="records", lines=True, force_ascii=False)


def child(mode: str, path: Path, staging: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(staging)], cwd=ROOT, capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                         "TORCHLAB_WORKSPACE": str(staging.parent / "ws")})
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(kind: str, path: Path, staging: Path, runs: int, python_reader: bool = True) -> dict:
    ours, theirs, python = [], [], []
    for i in range(runs):
        theirs.append(child(f"pandas-{kind}", path, staging))
        ours.append(child(f"torchlab-{kind}", path, staging))
        if i == 0 and kind == "csv" and python_reader:
            python.append(child(f"torchlab-python-{kind}", path, staging))
    assert len({r["rows"] for r in ours + theirs}) == 1
    size = path.stat().st_size
    t_ours, t_theirs = statistics.median(r["s"] for r in ours), statistics.median(r["s"] for r in theirs)
    peak = max(r["peak"] for r in ours)
    over = max(r["peak"] - r["base"] for r in ours)
    return {"file": path.name, "mb": size / 1e6, "rows": ours[0]["rows"], "reader": ours[0]["reader"],
            "pandas_s": t_theirs, "torchlab_s": t_ours, "ratio": t_ours / t_theirs,
            "runs_pandas": [round(r["s"], 3) for r in theirs], "runs_torchlab": [round(r["s"], 3) for r in ours],
            "peak_mb": peak / 1e6, "peak_over_size": peak / size, "over_base_over_size": over / size,
            "pandas_peak_mb": max(r["peak"] for r in theirs) / 1e6,
            "python_reader_s": python[0]["s"] if python else None}


def floor(path: Path, staging: Path, runs: int) -> dict:
    """pandas, Arrow's streaming reader alone, and with the Arrow-file write: the least any loader built on
    them (issue 18's design) can take on this machine, each in fresh processes, interleaved; medians."""
    staging.mkdir(parents=True, exist_ok=True)
    modes = ("pandas-csv", "arrow-stream", "arrow-write")
    times: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(runs):
        for m in modes[i % 3:] + modes[:i % 3]:
            times[m].append(child(m, path, staging)["s"])
    med = {m: statistics.median(t) for m, t in times.items()}
    return {"file": path.name, "mb": path.stat().st_size / 1e6, **{f"{m}_s": med[m] for m in modes},
            "stream_over_pandas": med["arrow-stream"] / med["pandas-csv"],
            "write_over_pandas": med["arrow-write"] / med["pandas-csv"],
            "runs": {m: [round(x, 3) for x in t] for m, t in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, nargs="+", default=[60, 100], help="sizes of the generated CSVs in MB")
    ap.add_argument("--jsonl-mb", type=int, default=60, help="size of the CSV the JSONL is made from (0: none)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-python", action="store_true", help="skip the Python reader's run (minutes on 1 GB)")
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--floor", action="store_true", help="time pandas and Arrow's reader alone (± writing)")
    a = ap.parse_args()
    work = Path(a.dir) / "torchlab-bench-data"
    work.mkdir(parents=True, exist_ok=True)
    staging = work / "staging"
    random.seed(0)
    if a.floor:
        print("| file | pandas | Arrow stream | ÷ pandas | stream + Arrow-file write | ÷ pandas |\n|---|---|---|---|---|---|")
        for mb in a.mb:
            csv = work / f"reviews-{mb}mb.csv"
            if not csv.is_file():
                generate(csv, mb)
            r = floor(csv, staging, a.runs)
            print(json.dumps(r), file=sys.stderr, flush=True)
            print(f"| {r['file']} ({r['mb']:,.0f} MB) | {r['pandas-csv_s']:.3f} s | {r['arrow-stream_s']:.3f} s | "
                  f"{r['stream_over_pandas']:.2f} | {r['arrow-write_s']:.3f} s | **{r['write_over_pandas']:.2f}** |",
                  flush=True)
        return
    results = []
    for mb in a.mb:
        csv = work / f"reviews-{mb}mb.csv"
        if not csv.is_file():
            generate(csv, mb)
        results.append(compare("csv", csv, staging, a.runs, not a.no_python))
        print(json.dumps(results[-1]), flush=True)
    if a.jsonl_mb:
        csv = work / f"reviews-{a.jsonl_mb}mb.csv"
        if not csv.is_file():
            generate(csv, a.jsonl_mb)
        jl = work / f"reviews-{a.jsonl_mb}mb.jsonl"
        if not jl.is_file():
            to_jsonl(csv, jl)
        results.append(compare("jsonl", jl, staging, a.runs))
        print(json.dumps(results[-1]), flush=True)
    print("\n| file | rows | pandas | Torch Lab (reader) | ratio | Python reader alone (run 1) | peak RSS ÷ size "
          "(over baseline) |\n|---|---|---|---|---|---|---|")
    for r in results:
        old = f"{r['python_reader_s']:.2f} s" if r["python_reader_s"] else "—"
        print(f"| {r['file']} ({r['mb']:,.0f} MB) | {r['rows']:,} | {r['pandas_s']:.2f} s | {r['torchlab_s']:.2f} s "
              f"({r['reader']}) | **{r['ratio']:.2f}** | {old} | {r['peak_over_size']:.2f} "
              f"({r['over_base_over_size']:.2f}) |")


if __name__ == "__main__":
    main()
