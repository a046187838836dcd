"""Stop and resume of a real MiniLM run on this machine: how long each phase of a graceful stop takes.

    python -m bench.bench_stop [--batch 16] [--max-length 128]

Phases, from the store's own timestamps: Stop pressed -> the step in flight finishes (callback) ->
checkpoint written (on_save) -> status `stopped`. Then resume, and the time to the first new step.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from core.settings import get_settings
from core.training import JobManager, TrainingConfig


def wait_for(cond, timeout: float = 900, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(poll)
    raise TimeoutError("condition not met")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="bench-stop-"))
    jobs = JobManager(ws, settings=get_settings())
    cfg = TrainingConfig(dataset="drug-reviews", batch_size=a.batch, max_length=a.max_length, max_steps=a.steps,
                         eval_steps=1000, save_steps=1000)
    run_id = jobs.submit(cfg)
    wait_for(lambda: len(jobs.store.metrics(run_id, "train")) >= 3)
    phases = {}
    t0 = time.time()
    jobs.stop(run_id)
    seen = set()

    def watch():
        r = jobs.store.get(run_id)
        msg = r.message or ""
        if "saving checkpoint" in msg and "step_done" not in seen:
            seen.add("step_done")
            phases["step in flight finished"] = time.time() - t0
        if "saved" in msg and "saved" not in seen:
            seen.add("saved")
            phases["checkpoint written"] = time.time() - t0
        return r.status == "stopped"

    wait_for(watch, poll=0.02)
    phases["status stopped"] = time.time() - t0
    ckpt = jobs.store.get(run_id).checkpoint
    size = sum(f.stat().st_size for f in Path(ckpt).rglob("*") if f.is_file()) if ckpt else 0
    t1 = time.time()
    jobs.resume(run_id)
    n0 = len(jobs.store.metrics(run_id, "train"))
    wait_for(lambda: len(jobs.store.metrics(run_id, "train")) > n0)
    phases["resume -> first new step"] = time.time() - t1
    jobs.stop(run_id)
    jobs.wait(run_id)
    jobs.shutdown()
    print(f"MiniLM-L6, batch {a.batch}, max length {a.max_length}, device {jobs.store.get(run_id).device}")
    print(f"checkpoint {Path(ckpt).name if ckpt else None}: {size / 2**20:.0f} MiB")
    for k, v in phases.items():
        print(f"{k:32s} {v:6.2f} s")


if __name__ == "__main__":
    main()
