"""Training benchmarks, measured side by side in one run (figures go to bench/RESULTS.md).

1. Overhead: the same config through the JobManager (with a 1 Hz poller reading the store, as the
   page does) against the bare Trainer script that "export as script" writes; samples/s ratio.
2. The common tutorial recipe (padding="max_length" to 512, fp32, no length grouping) against
   Torch Lab's defaults (dynamic padding, length grouping) on the same data: samples/s and accuracy.
3. Live latency: time from a step being written by the callback to the poller reading it
   (a 20 Hz poller shows the store's own latency; the page's 1 Hz poll adds up to one second).

    python -m bench.bench_training [--epochs 3] [--max-length 128] [--reps 2] [--skip-tutorial]
"""
from __future__ import annotations

import argparse
import ast
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from core.settings import Settings, resolve_device
from core.training import JobManager, TrainingConfig
from core.training.export import export_script


def poll(store, run_id: str, interval: float, stop: threading.Event, latencies: list[float]) -> None:
    """Read new rows like the page's fragment does; record how old each row is when first seen."""
    seq = 0
    while not stop.is_set():
        for row in store.metrics(run_id, after_seq=seq):
            seq = row["seq"]
            latencies.append(time.time() - row["time"])
        time.sleep(interval)


def managed(settings: Settings, config: TrainingConfig, poll_s: float, runner=None) -> tuple[float, list[float], dict]:
    """One run through a JobManager with a poller reading the store every `poll_s` (as the page does)."""
    jobs = JobManager(settings=settings, runner=runner)
    stop, lat = threading.Event(), []
    run_id = jobs.submit(config)
    t = threading.Thread(target=poll, args=(jobs.store, run_id, poll_s, stop, lat), daemon=True)
    t.start()
    status = jobs.wait(run_id, 7200)
    stop.set()
    t.join()
    if status != "completed":
        raise RuntimeError(f"managed run {status}: {jobs.store.get(run_id).message}")
    summary = jobs.store.metrics(run_id, "summary")[-1]
    final = jobs.store.get(run_id).final_metrics
    jobs.shutdown()
    return summary["train_samples_per_second"], lat, final


def bare(settings: Settings, config: TrainingConfig, labels: list[str], tutorial: bool = False) -> tuple[float, dict]:
    """Run the exported plain-transformers script in a fresh interpreter; parse its printed metrics."""
    script = export_script(config, settings, "bench", labels, eval_steps=10**6,
                           output=tempfile.mkdtemp(prefix="bench-bare-"))
    if tutorial:
        script = script.replace(f'truncation=True, max_length={config.max_length})',
                                'padding="max_length", truncation=True, max_length=512)')
        script = script.replace('train_sampling_strategy="group_by_length"', 'train_sampling_strategy="random"')
        assert 'padding="max_length"' in script
    path = Path(tempfile.mkdtemp()) / "bare.py"
    path.write_text(script)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=7200)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    lines = {ln.split(" ", 1)[0]: ln.split(" ", 1)[1] for ln in out.stdout.splitlines() if ln.startswith(("train ", "eval "))}
    train, ev = ast.literal_eval(lines["train"]), ast.literal_eval(lines["eval"])
    return train["train_samples_per_second"], ev


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--skip-tutorial", action="store_true")
    ap.add_argument("--tutorial-steps", type=int, default=0,
                    help="run both recipes for only this many steps (throughput only; accuracy needs full runs)")
    a = ap.parse_args()
    settings = Settings(workspace=Path(tempfile.mkdtemp(prefix="bench-ws-")))
    device = resolve_device(settings.device)
    config = TrainingConfig(epochs=a.epochs, max_length=a.max_length, batch_size=a.batch_size,
                            eval_steps=10**6, save_steps=10**6)
    from core.training.runner import prepare

    _, splits = prepare(config, settings)
    labels = splits.label_names
    print(f"device {device}; drug-review sample: {len(splits.train)} train / {len(splits.eval)} eval rows; "
          f"MiniLM-L6, batch {a.batch_size}, max length {a.max_length}, {a.epochs} epoch(s)")

    bare_sps, man_sps, lat_page, lat_store = [], [], [], []
    for rep in range(a.reps):  # alternate so drift hits both sides alike
        sps, _ = bare(settings, config, labels)
        bare_sps.append(sps)
        sps, lat, final = managed(settings, config, poll_s=1.0)
        man_sps.append(sps)
        lat_page += lat
        print(f"rep {rep}: bare {bare_sps[-1]:.2f} samples/s, JobManager + 1 Hz poller {man_sps[-1]:.2f} samples/s")
    _, lat_store, final = managed(settings, config, poll_s=0.05)
    ratio = statistics.median(man_sps) / statistics.median(bare_sps)
    print(f"\n1. overhead: JobManager / bare Trainer = {ratio:.3f} (target >= 0.97)")

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    print(f"3. live latency, store (20 Hz poll): median {statistics.median(lat_store) * 1000:.0f} ms, "
          f"p95 {pct(lat_store, 0.95) * 1000:.0f} ms; page (1 Hz poll): median {statistics.median(lat_page):.2f} s, "
          f"p95 {pct(lat_page, 0.95):.2f} s (target < 1 s)")
    print(f"   Torch Lab defaults: accuracy {final['accuracy']:.3f} (majority baseline {final['majority_baseline']:.3f})")
    if not a.skip_tutorial:
        from dataclasses import replace

        short = replace(config, max_steps=a.tutorial_steps) if a.tutorial_steps else config
        t_sps, t_eval = bare(settings, short, labels, tutorial=True)
        ours = statistics.median(man_sps)
        if a.tutorial_steps:
            ours, _ = bare(settings, short, labels)  # same short run, Torch Lab's recipe
            final = {"accuracy": float("nan")}
        print(f"2. tutorial recipe (max_length 512 padding, fp32, no grouping): {t_sps:.2f} samples/s, accuracy "
              f"{t_eval['eval_accuracy']:.3f}; Torch Lab {ours:.2f} samples/s, accuracy {final['accuracy']:.3f}; "
              f"speed-up {ours / t_sps:.1f}x")


if __name__ == "__main__":
    main()
