"""The GIL convoy: a training thread beside a busy Python thread (a page script), at several switch intervals.

    .venv/bin/python -m bench.bench_gil                  # tiny BERT 12 steps and MiniLM 6 steps, each setting
    .venv/bin/python -m bench.bench_gil --model tiny

Each setting runs in a fresh process (the interval is process-wide): a run through the JobManager, alone or with
one thread looping over pure Python beside it. The JobManager lowers the interval itself (core.training.jobs
SWITCH_INTERVAL_S); "5 ms" here forces Python's default back after it did, to show what it saves.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import shutil, sys, tempfile, threading, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from core.settings import Settings
from core.training import JobManager, TrainingConfig
from tests.core.training.training_fixtures import tiny_dataset, tiny_model
interval, busy, model, steps = float(sys.argv[1]), sys.argv[2] == "busy", sys.argv[3], int(sys.argv[5])
ws = Path(tempfile.mkdtemp())
s = Settings(workspace=ws)
tiny_dataset(s)
cfg = {"model": str(tiny_model(ws / "tiny-model"))} if model == "tiny" else {}
jobs = JobManager(settings=s)
sys.setswitchinterval(interval)
stop = False
def spin():
    while not stop:
        sum(i * i for i in range(10000))
if busy:
    threading.Thread(target=spin, daemon=True).start()
t0 = time.perf_counter()
rid = jobs.submit(TrainingConfig(**cfg, dataset="tiny", max_length=32, batch_size=8, max_steps=steps, warmup=0))
status = jobs.wait(rid, 1200)
print(f"RESULT {time.perf_counter() - t0:.2f} {status}")
stop = True
jobs.shutdown()
shutil.rmtree(ws, ignore_errors=True)
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["tiny", "minilm", "both"], default="both")
    args = ap.parse_args()
    models = [("tiny", 12), ("minilm", 6)] if args.model == "both" else [(args.model, 12 if args.model == "tiny" else 6)]
    print("| model | steps | alone, 5 ms | busy thread, 5 ms | alone, 0.5 ms | busy thread, 0.5 ms |")
    print("|---|---|---|---|---|---|")
    for model, steps in models:
        cells = []
        for interval, busy in ((0.005, "quiet"), (0.005, "busy"), (0.0005, "quiet"), (0.0005, "busy")):
            out = subprocess.run([sys.executable, "-c", CHILD, str(interval), busy, model, str(ROOT), str(steps)],
                                 capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""}, check=True)
            line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
            cells.append(f"{float(line.split()[1]):.1f} s")
        print(f"| {model} | {steps} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
