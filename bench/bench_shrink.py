"""Make it smaller and faster (#17): int8 dynamic quantisation vs fp32 on a MiniLM fine-tune's eval split.

    python -m bench.bench_shrink --workspace /tmp/shrinkbench/ws --steps 40

Trains a MiniLM-L6 fine-tune on the drug-review sample through the JobManager when the workspace has no
completed run yet, then measures `core.training.shrink.quantize` (size on disk, latency at batch 1 and 32,
accuracy / macro F1, argmax agreement) with 1 and 2 torch threads, and `transformers.pipeline` throughput.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    import torch

    from core.settings import Settings
    from core.training import JobManager, RunStore, TrainingConfig
    from core.training.shrink import ShrinkOptions, batch_predict, eval_rows, load_pipeline, quantize

    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default="/tmp/shrinkbench/ws")
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    s = Settings(workspace=Path(args.workspace))
    done = [r for r in RunStore(s.runs_db).runs() if r.status == "completed"]
    if not done:
        jobs = JobManager(settings=s)
        t = time.time()
        rid = jobs.submit(TrainingConfig(model="minilm-l6", dataset="drug-reviews", max_steps=args.steps,
                                         batch_size=16, max_length=128, learning_rate=1e-4, warmup=0.1,
                                         logging_steps=5))
        print("trained", jobs.wait(rid, 3000), f"{time.time() - t:.0f} s", flush=True)
        jobs.shutdown()
        done = [r for r in RunStore(s.runs_db).runs() if r.status == "completed"]
    rec = done[0]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        t = time.time()
        r = quantize(rec, s, ShrinkOptions(max_rows=200, latency_rows=16, repeats=5))
        print("threads", threads, f"{time.time() - t:.1f} s", "agree", r.agreement, "rows", r.eval_rows, r.onnx)
        for row in r.table():
            print(row)
    texts, _ = eval_rows(rec, s, 200)
    clf = load_pipeline(rec)
    batch_predict(rec, texts[:32], classifier=clf)  # warm-up
    for bs in (1, 32):
        _, per_s = batch_predict(rec, texts, batch_size=bs, classifier=clf)
        print("pipeline batch", bs, f"{per_s:.1f} examples/s", "threads", torch.get_num_threads())
    print("run accuracy", rec.final_metrics.get("accuracy"), "f1", rec.final_metrics.get("f1"))


if __name__ == "__main__":
    main()
