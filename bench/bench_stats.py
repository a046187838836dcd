"""Column statistics of a generated review CSV: Torch Lab (`core.data.column_stats`, DuckDB over the saved Arrow
file) against pandas on the same rows, side by side in one process; plus Parquet load against `pandas.read_parquet`.

    .venv/bin/python -m bench.bench_stats              # about 100 MB, best of 3
    .venv/bin/python -m bench.bench_stats --mb 1000 --runs 2

The two sides alternate within each round and the best round of each is reported, so a burst of load from
other processes hits both alike. "pandas, same figures" is what `column_stats` returns, in pandas:
`describe()` with the 5/25/50/75/95 % quantiles, `nunique()`, `value_counts().head(10)` of the text and label
columns, `str.len()` with its `describe()`, and a 40-bin `numpy.histogram` of every number and text length.
"pandas, brief" is the issue's short list: `describe()`, `value_counts()` of the label, `str.len().describe()`.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.bench_data import generate

QS = [0.05, 0.25, 0.5, 0.75, 0.95]


def pandas_same_figures(df) -> dict:
    import numpy as np

    out = {"describe": df.describe(percentiles=QS), "nunique": df.nunique()}
    lengths = df["text"].str.len()
    out["len"] = lengths.describe(percentiles=QS)
    for c in ("text", "label"):
        out[f"top_{c}"] = df[c].value_counts().head(10)
    for c, v in (("id", df["id"]), ("score", df["score"]), ("text_len", lengths)):
        v = v.dropna()
        out[f"hist_{c}"] = np.histogram(v, bins=40)
    return out


def pandas_brief(df) -> dict:
    return {"describe": df.describe(), "labels": df["label"].value_counts(), "len": df["text"].str.len().describe()}


MEMORY_CHILD = r'''
import sys, threading, time
mode, path = sys.argv[1], sys.argv[2]
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
peak = [0]
def watch():  # private (anonymous) memory, sampled: mapped file pages are the page cache's, shared and evictable
    while True:
        peak[0] = max(peak[0], status("RssAnon:"))
        time.sleep(0.02)
import pandas as pd, datasets  # noqa: F401
from bench.bench_stats import pandas_same_figures
from core.data import column_stats
base = status("RssAnon:")
threading.Thread(target=watch, daemon=True).start()
t = time.perf_counter()
if mode == "pandas":
    pandas_same_figures(pd.read_parquet(path))
else:
    column_stats(datasets.Dataset.from_file(path))
time.sleep(0.05)
print(f"{mode}: {time.perf_counter() - t:.1f} s, peak private memory over baseline {(peak[0] - base) / 1e6:,.0f} MB")
'''


def memory(parquet: Path, arrow: Path) -> None:
    """Peak private memory of each side in a fresh process: pandas reads the data then computes, Torch Lab opens
    the saved Arrow file (memory-mapped) and computes."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    for mode, path in (("pandas", parquet), ("torchlab", arrow)):
        out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, mode, str(path)], cwd=root, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"})
        print(out.stdout.strip() or out.stderr[-2000:])


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--no-parquet", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import pandas as pd
    import pyarrow.parquet as pq

    from core.assets import load_tokenizer
    from core.data import class_rows, column_stats, label_counts, load_file, token_length_profile

    tmp = Path(args.dir or tempfile.mkdtemp(prefix="bench-stats-"))
    tmp.mkdir(parents=True, exist_ok=True)
    csv = tmp / f"reviews-{args.mb}mb.csv"
    if not csv.exists():
        t = time.perf_counter()
        rows = generate(csv, args.mb)
        print(f"generated {csv} ({rows:,} rows) in {time.perf_counter() - t:.1f} s")
    print(f"load average before: {os.getloadavg()}")
    t = time.perf_counter()
    ds = load_file(csv, cache_dir=tmp / "staging")
    print(f"Torch Lab load: {time.perf_counter() - t:.1f} s, {len(ds):,} rows")
    t = time.perf_counter()
    df = pd.read_csv(csv)
    print(f"pandas load: {time.perf_counter() - t:.1f} s")
    assert len(df) == len(ds)

    # the figures must agree before their times mean anything
    stats = {s.name: s for s in column_stats(ds)}
    ref = pandas_same_figures(df)
    for c in ("id", "score"):
        assert abs(stats[c].mean - ref["describe"].loc["mean", c]) <= 1e-9 * max(1.0, abs(stats[c].mean))
        assert stats[c].quantiles[0.5] == ref["describe"].loc["50%", c]
    assert stats["text"].quantiles[0.95] == ref["len"]["95%"] and stats["text"].count == ref["len"]["count"]
    assert stats["label"].top == list(ref["top_label"].items())

    rounds: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for name, fn in (("torchlab stats", lambda: column_stats(ds)),
                         ("pandas same figures", lambda: pandas_same_figures(df)),
                         ("pandas brief", lambda: pandas_brief(df)),
                         ("torchlab label counts", lambda: label_counts(ds, "label")),
                         ("pandas value_counts", lambda: df["label"].value_counts()),
                         ("torchlab class rows", lambda: class_rows(ds, "label", "negative")),
                         ("pandas class rows", lambda: df.index[df["label"] == "negative"])):
            rounds.setdefault(name, []).append(timed(fn))
    best = {k: min(v) for k, v in rounds.items()}
    print(f"load average after stats: {os.getloadavg()}")
    for k, v in rounds.items():
        print(f"{k:26s} best {best[k]:8.3f} s   all {', '.join(f'{x:.3f}' for x in v)}")
    print(f"ratio stats / pandas same figures: {best['torchlab stats'] / best['pandas same figures']:.2f}; "
          f"/ pandas brief: {best['torchlab stats'] / best['pandas brief']:.2f}")

    tok = load_tokenizer("bert-wordpiece-uncased")
    t = time.perf_counter()
    prof = token_length_profile(ds, "text", tok)
    print(f"token lengths of {len(prof.lengths):,} sampled rows (bert-wordpiece-uncased): "
          f"{time.perf_counter() - t:.2f} s; {prof.truncated_share(64):.1%} over 64 tokens")

    if args.no_parquet:
        return
    pqf = tmp / f"reviews-{args.mb}mb.parquet"
    if not pqf.exists():
        pq.write_table(ds.data.table, pqf)
    load = {"torchlab parquet load": [], "pandas read_parquet": []}
    for i in range(args.runs):
        load["torchlab parquet load"].append(timed(lambda i=i: load_file(pqf, cache_dir=tmp / f"staging-pq{i}")))
        load["pandas read_parquet"].append(timed(lambda: pd.read_parquet(pqf)))
    for k, v in load.items():
        print(f"{k:26s} best {min(v):8.3f} s   all {', '.join(f'{x:.3f}' for x in v)}")
    print(f"parquet: {pqf.stat().st_size / 1e6:.0f} MB; ratio {min(load['torchlab parquet load']) / min(load['pandas read_parquet']):.2f}")
    print(f"load average at the end: {os.getloadavg()}")
    memory(pqf, Path(ds.cache_files[0]["filename"]))


if __name__ == "__main__":
    main()
