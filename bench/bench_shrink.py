"""Make it smaller and faster (#17): fp32 vs int8 dynamic vs ONNX (onnxruntime, fp32 and int8) on a MiniLM
fine-tune's eval split.

    python -m bench.bench_shrink --workspace /tmp/shrinkbench/ws --steps 40 [--threads 1 2]
                                 [--tasks-workspace /tmp/taskbench/ws]

Trains a MiniLM-L6 fine-tune on the drug-review sample through the JobManager when the workspace has no
completed run yet, then measures `core.training.shrink.quantize` (size on disk, latency at batch 1 and 32,
accuracy / macro F1, argmax agreement with fp32, largest output difference) with each torch thread count
(onnxruntime gets the same), and `transformers.pipeline` throughput. `--tasks-workspace` also measures the newest
completed run of each task there (token classification, QA, causal LM packed and padded, seq2seq; `bench.bench_tasks`
trains them); `--tasks-only` measures only those.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def markdown(report) -> str:
    """The report's table as markdown rows, for bench/RESULTS.md."""
    rows = report.table()
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join("—" if r[c] is None else str(r[c]) for c in cols) + " |")
    return "\n".join(out)


def measure(rec, settings, threads: int) -> None:
    import torch

    from core.training.shrink import ShrinkOptions, quantize

    torch.set_num_threads(threads)
    t = time.time()
    r = quantize(rec, settings, ShrinkOptions(max_rows=200, latency_rows=16, repeats=5))
    print(f"\n{rec.config.get('task', 'text-classification')} run {rec.id}: threads {threads}, "
          f"{time.time() - t:.1f} s, {r.eval_rows} eval rows, int8 agreement {r.agreement:.4f}", flush=True)
    print(r.onnx)
    print(markdown(r))
    for note in r.notes:
        print("-", note)


def main() -> None:
    import torch

    from core.settings import Settings
    from core.training import JobManager, RunStore, TrainingConfig
    from core.training.shrink import batch_predict, eval_rows, load_pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default="/tmp/shrinkbench/ws")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--tasks-workspace", default=None,
                    help="also measure the completed token-classification / QA runs of this workspace")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the pipeline throughput")
    ap.add_argument("--task-kinds", nargs="*",
                    default=["token-classification", "question-answering", "causal-lm", "seq2seq"],
                    help="which completed runs of --tasks-workspace to measure")
    ap.add_argument("--tasks-only", action="store_true", help="measure only the --tasks-workspace runs")
    args = ap.parse_args()
    if args.tasks_only:
        for r in _task_runs(args.tasks_workspace, args.task_kinds):
            for threads in args.threads:
                measure(r, Settings(workspace=Path(args.tasks_workspace)), threads)
        return
    s = Settings(workspace=Path(args.workspace))
    done = [r for r in RunStore(s.runs_db).runs() if r.status == "completed"
            and r.config.get("task", "text-classification") == "text-classification"]
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
    for threads in args.threads:
        measure(rec, s, threads)
    if args.tasks_workspace:
        ts = Settings(workspace=Path(args.tasks_workspace))
        for r in _task_runs(args.tasks_workspace, args.task_kinds):
            for threads in args.threads:
                measure(r, ts, threads)
    if not args.no_pipeline:
        texts, _ = eval_rows(rec, s, 200)
        clf = load_pipeline(rec)
        batch_predict(rec, texts[:32], classifier=clf)  # warm-up
        for bs in (1, 32):
            _, per_s = batch_predict(rec, texts, batch_size=bs, classifier=clf)
            print("pipeline batch", bs, f"{per_s:.1f} examples/s", "threads", torch.get_num_threads())
    print("run accuracy", rec.final_metrics.get("accuracy"), "f1", rec.final_metrics.get("f1"))


def _task_runs(workspace: str, kinds: list[str]) -> list:
    """The newest completed run of each task kind in `workspace` (bench.bench_tasks trains them)."""
    from core.settings import Settings
    from core.training import RunStore

    runs = RunStore(Settings(workspace=Path(workspace)).runs_db).runs()
    out = {}
    for r in runs:  # newest first
        if r.status == "completed" and r.config.get("task") in kinds:
            key = (r.config.get("task"), r.config.get("packing", True))
            out.setdefault(key, r)
    return list(out.values())


if __name__ == "__main__":
    main()
