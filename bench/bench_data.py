"""Load and browse a generated CSV: Torch Lab's streaming loader against `pandas.read_csv`, same file, same run.

    .venv/bin/python -m bench.bench_data            # about 1 GB
    .venv/bin/python -m bench.bench_data --mb 200   # smaller, for a quick look

Each side runs in its own subprocess, so one's memory can't inflate the other's peak (ru_maxrss).
"Browse" = 20 pages of 100 rows at random offsets, the label counts and a text search, the work the
dataset page does; then a GROUP BY (issue 18): pandas on its loaded frame, DuckDB over the saved Arrow
file (`core.data.sql_page`, in the fresh browse process, with the same results asserted). Torch Lab is measured twice: the load (parse + validate + write Arrow), and a
fresh process that opens the saved Arrow file and browses it, as a page does after a restart.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("the drug helped my pain but made me dizzy and tired for a week, then the side effects faded "
         "doctor prescribed two doses daily \"great\" results after month no relief at all").split()

CHILD = r'''
import json, random, resource, sys, time
mode, path, arrow = sys.argv[1], sys.argv[2], sys.argv[3]
rng = random.Random(0)
def anon():  # private memory now, in bytes: what the process holds, leaving out pages of mapped files
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0
peak_anon = [0]
def mark():
    peak_anon[0] = max(peak_anon[0], anon())
import pyarrow, pandas  # both sides pay for these; measured as the baseline
if mode != "pandas":
    import datasets  # noqa: F401
base = anon()
t0 = time.perf_counter()
if mode == "pandas":
    import pandas as pd
    df = pd.read_csv(path)
    t1 = time.perf_counter()
    n = len(df)
    for _ in range(20):
        s = rng.randrange(n - 100); df.iloc[s:s + 100].to_dict("records")
    mark()
    df["label"].value_counts()
    hits = int(df["text"].str.contains("relief", case=False, regex=False).sum())
    pre_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the figures above leave the GROUP BY out
    gx = g0 = time.perf_counter()  # a GROUP BY on the loaded frame (issue 18), beside DuckDB's over the saved Arrow
    g = df.groupby("label").agg(n=("id", "size"), mean_score=("score", "mean"), max_id=("id", "max"))
    g1 = time.perf_counter()
    g2 = df.assign(chars=df["text"].str.len()).groupby("label")["chars"].mean()
    g3 = time.perf_counter()
    group = {"group_s": g1 - g0, "group_len_s": g3 - g1, "group_all_s": g3 - gx, "pre_peak": pre_peak,
             "group_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
             "groups": {k: [int(r.n), round(float(r.mean_score), 6), int(r.max_id), round(float(g2[k]), 6)]
                        for k, r in g.iterrows()}}
elif mode == "torchlab-load":
    from core.data import load_file
    ds = load_file(path, cache_dir=arrow)
    mark()
    t1 = time.perf_counter()
    n = len(ds)
    print(json.dumps({"arrow_file": ds.cache_files[0]["filename"]}), file=sys.stderr)
    hits = None
else:  # torchlab-browse: a fresh process opening the saved Arrow file
    import datasets
    from core.data import stats as S
    ds = datasets.Dataset.from_file(arrow)
    t1 = time.perf_counter()
    n = len(ds)
    for _ in range(20):
        S.page(ds, rng.randrange(n - 100))
    mark()
    S.label_counts(ds, "label")
    mark()
    hits = S.search(ds, "text", "relief")[1]
    pre_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the figures above leave the GROUP BY out
    gx = time.perf_counter()  # the GROUP BYs are timed on their own, not in browse_s
    import duckdb  # noqa: F401  (imported once per server process, as the page does)
    from core.data import sql_page
    dd = datasets.DatasetDict({"train": ds})
    g0 = time.perf_counter()
    g = sql_page(dd, "SELECT label, count(*) AS n, avg(score) AS mean_score, max(id) AS max_id FROM data "
                     "GROUP BY label").rows
    g1 = time.perf_counter()
    g2 = sql_page(dd, "SELECT label, avg(length(text)) AS chars FROM data GROUP BY label").rows
    g3 = time.perf_counter()
    chars = dict(zip(g2["label"], g2["chars"]))
    group = {"group_s": g1 - g0, "group_len_s": g3 - g1, "group_all_s": g3 - gx, "pre_peak": pre_peak,
             "group_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
             "groups": {k: [int(n), round(float(m), 6), int(i), round(float(chars[k]), 6)]
                        for k, n, m, i in zip(g["label"], g["n"], g["mean_score"], g["max_id"])}}
t2 = time.perf_counter()
mark()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
group = group if mode != "torchlab-load" else {}
peak = group.pop("pre_peak", peak)
print(json.dumps({"rows": n, "load_s": t1 - t0, "browse_s": t2 - t1 - group.get("group_all_s", 0), "peak_rss": peak, "hits": hits,
                  "base_anon": base, "peak_anon": peak_anon[0], **group}))
'''


def generate(path: Path, mb: int) -> int:
    """A CSV of about `mb` MB: id, review text (quoted, with commas and quotes), label, score."""
    rng = random.Random(42)
    pool = []
    for _ in range(5000):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40))).replace('"', '""')
        pool.append(f'"{text}",{rng.choice(["positive", "neutral", "negative"])},{rng.random() * 10:.3f}\n')
    target, size, rows = mb * 1_000_000, 0, 0
    with path.open("w", encoding="utf-8") as f:
        f.write("id,text,label,score\n")
        while size < target:
            chunk = "".join(f"{rows + i},{rng.choice(pool)}" for i in range(100_000))
            f.write(chunk)
            size += len(chunk)
            rows += 100_000
    return rows


def child(mode: str, csv: Path, arrow: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(csv), arrow], cwd=ROOT, capture_output=True,
                         text=True, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                                         "TORCHLAB_WORKSPACE": str(Path(arrow).parent / "ws")})
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for line in out.stderr.splitlines():
        if line.startswith("{"):
            result.update(json.loads(line))
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1000, help="size of the generated CSV in MB")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the CSV and Arrow files go")
    a = ap.parse_args()
    work = Path(a.dir) / "torchlab-bench-data"
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"reviews-{a.mb}mb.csv"
    if not csv.is_file():
        print(f"generating {csv} …", flush=True)
        generate(csv, a.mb)
    size = csv.stat().st_size
    print(f"file: {size / 1e6:,.0f} MB", flush=True)
    pandas = child("pandas", csv, str(work / "staging"))
    print("pandas:", pandas, flush=True)
    load = child("torchlab-load", csv, str(work / "staging"))
    print("torchlab load:", load, flush=True)
    browse = child("torchlab-browse", csv, load["arrow_file"])
    print("torchlab browse:", browse, flush=True)
    assert pandas["rows"] == load["rows"] == browse["rows"] and pandas["hits"] == browse["hits"]
    assert pandas["groups"] == browse["groups"], (pandas["groups"], browse["groups"])
    mb = 1 / 1e6
    print(f"\nrows {load['rows']:,}, file {size * mb:,.0f} MB")
    print("| | pandas.read_csv | Torch Lab | ratio (Torch Lab / pandas) |\n|---|---|---|---|")
    print(f"| load time | {pandas['load_s']:.1f} s | {load['load_s']:.1f} s | {load['load_s'] / pandas['load_s']:.2f} |")
    print(f"| peak RSS while loading | {pandas['peak_rss'] * mb:,.0f} MB | {load['peak_rss'] * mb:,.0f} MB | "
          f"{load['peak_rss'] / pandas['peak_rss']:.2f} |")
    print(f"| browse time (fresh process) | {pandas['browse_s']:.2f} s | {browse['browse_s']:.2f} s | "
          f"{browse['browse_s'] / pandas['browse_s']:.2f} |")
    print(f"| peak RSS while browsing | {pandas['peak_rss'] * mb:,.0f} MB | {browse['peak_rss'] * mb:,.0f} MB | "
          f"{browse['peak_rss'] / pandas['peak_rss']:.2f} |")
    print(f"| peak private memory while browsing (RssAnon, sampled) | {pandas['peak_anon'] * mb:,.0f} MB | "
          f"{browse['peak_anon'] * mb:,.0f} MB | {browse['peak_anon'] / pandas['peak_anon']:.2f} |")
    print(f"| private memory after imports (baseline) | {pandas['base_anon'] * mb:,.0f} MB | "
          f"{browse['base_anon'] * mb:,.0f} MB | |")
    print(f"| GROUP BY label (count, mean, max): pandas groupby on the frame vs DuckDB on the saved Arrow "
          f"(TORCHLAB_SQL_THREADS) | {pandas['group_s']:.2f} s | {browse['group_s']:.2f} s | "
          f"{browse['group_s'] / pandas['group_s']:.2f} |")
    print(f"| GROUP BY label, mean text length in characters | {pandas['group_len_s']:.2f} s | "
          f"{browse['group_len_s']:.2f} s | {browse['group_len_s'] / pandas['group_len_s']:.2f} |")
    print(f"| peak RSS after the GROUP BYs | {pandas['group_peak_rss'] * mb:,.0f} MB | "
          f"{browse['group_peak_rss'] * mb:,.0f} MB | {browse['group_peak_rss'] / pandas['group_peak_rss']:.2f} |")
    print(f"| peak RSS / file size | {pandas['peak_rss'] / size:.2f} | load {load['peak_rss'] / size:.2f}, "
          f"browse {browse['peak_rss'] / size:.2f} | |")
    Path(load["arrow_file"]).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
