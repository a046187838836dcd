"""Cost of one live-page refresh against the number of logged steps, before and after incremental reads.

    python -m bench.bench_live [--steps 1000,10000,50000,100000]

"full" is what the page did before: read and JSON-decode every row of the run, draw every point.
"live" is what it does now: a MetricsFollower decodes only the rows logged since the last refresh,
and each trace is drawn from at most 2,000 min/max buckets. Bytes = the figure's JSON, which is what
Streamlit sends to the browser per refresh.
"""
from __future__ import annotations

import argparse
import math
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from components.training_views import live_figure
from core.training.store import MetricsFollower, RunStore


def fill(store: RunStore, run_id: str, n: int) -> None:
    """n train rows (and an eval every 500 steps) written in one transaction, like a long GPU run."""
    import json

    rnd = random.Random(0)
    t0 = time.time() - n * 0.05
    rows = []
    for s in range(1, n + 1):
        v = {"loss": 2.0 * math.exp(-s / (n / 4)) + rnd.random() * 0.1, "learning_rate": 2e-4 * (1 - s / n),
             "grad_norm": 1.0 + rnd.random(), "epoch": s / 100, "samples_per_s": 900 + rnd.random() * 50,
             "tokens_per_s": 90_000.0}
        rows.append((run_id, s, "train", t0 + s * 0.05, json.dumps(v)))
        if s % 500 == 0:
            rows.append((run_id, s, "eval", t0 + s * 0.05, json.dumps({"eval_loss": v["loss"], "eval_accuracy": 0.8})))
    con = sqlite3.connect(store.path)
    con.executemany('INSERT INTO metrics (run_id, step, kind, time, "values") VALUES (?,?,?,?,?)', rows)
    con.commit()
    con.close()


def timed(fn, repeat: int = 3):
    best, out = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="1000,10000,50000,100000")
    a = ap.parse_args()
    print("| steps | full: read+decode | full: figure | full: bytes | live: refresh read | live: figure "
          "| live: bytes | live total |")
    print("|---|---|---|---|---|---|---|---|")
    for n in map(int, a.steps.split(",")):
        print(measure(n))


def measure(n: int) -> str:
    """One table row: the before / now cost of a refresh at `n` logged steps."""
    store = RunStore(Path(tempfile.mkdtemp()) / "runs.db")
    rid = store.create("bench", {})
    fill(store, rid, n)
    t_read, rows = timed(lambda: (store.metrics(rid, "train"), store.metrics(rid, "eval")))
    t_fig_full, fig = timed(lambda: live_figure_full(*rows), repeat=1)
    bytes_full = len(fig.to_json())
    f = MetricsFollower(store, rid)
    f.refresh()  # once per session and run: the page then reads only what is new
    step = [n]

    def refresh():
        step[0] += 1
        store.log(rid, {"loss": 0.1, "learning_rate": 1e-5, "grad_norm": 1.0}, step[0])
        return f.refresh()

    t_inc, _ = timed(refresh)
    t_fig, fig2 = timed(lambda: live_figure(f.rows["train"], f.rows["eval"], 0.8, series=f.series))
    bytes_live = len(fig2.to_json())
    return (f"| {n:,} | {t_read * 1e3:.0f} ms | {t_fig_full * 1e3:.0f} ms | {bytes_full / 1e3:,.0f} KB "
            f"| {t_inc * 1e3:.1f} ms | {t_fig * 1e3:.0f} ms | {bytes_live / 1e3:,.0f} KB "
            f"| {(t_inc + t_fig) * 1e3:.0f} ms |")


def live_figure_full(train, evals):
    """The figure without downsampling (every point), as the page drew it before."""
    import components.training_views as views

    saved = views.MAX_POINTS, views.SIDE_POINTS
    views.MAX_POINTS = views.SIDE_POINTS = 10**9
    try:
        return live_figure(train, evals, 0.8)
    finally:
        views.MAX_POINTS, views.SIDE_POINTS = saved


if __name__ == "__main__":
    main()
