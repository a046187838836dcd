"""Engine overhead against a plain Trainer script, with where the time goes (#16).

The default fine-tune (MiniLM-L6 on the drug reviews, batch 16, max length 128) for 60 steps with an
evaluation and a checkpoint every 12 steps, three ways, each in a fresh Python process, interleaved round by
round so a busy spell on the shared machine hits every side alike:

- **engine**: `JobManager.submit` (a worker thread, the store callback writing every step to SQLite, a 1 Hz
  poller reading the store in another thread as the live page does);
- **plain**: the script "Export as script" writes — plain transformers as the Hugging Face course writes it
  (dynamic padding, length grouping) — with the engine's evaluation and checkpoint cadence (every 12 steps,
  the last 2 kept), run in the main thread;
- **plain, thread**: the same script run in a worker thread (what the thread alone costs).

Every side carries the same `PhaseClock` callback (last in the list), which timestamps each step's begin and
end, each evaluation and each save; the engine's `StoreCallback` hooks are timed too. Wall time is first step
begin → last step end (the final evaluation is left out, as in the issue's figure).

    python -m bench.bench_overhead [--rounds 3] [--steps 60] [--every 12]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from transformers import TrainerCallback

SIDES = ("engine", "plain", "plain-thread")


class PhaseClock(TrainerCallback):
    def __init__(self):
        self.begin, self.end, self.evals, self.saves = {}, {}, {}, {}

    def on_step_begin(self, args, state, control, **kwargs):
        self.begin[state.global_step + 1] = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.end[state.global_step] = time.perf_counter()

    def on_evaluate(self, args, state, control, **kwargs):
        self.evals[state.global_step] = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        self.saves[state.global_step] = time.perf_counter()

    def summary(self) -> dict:
        steps = sorted(self.end)
        first, last = steps[0], steps[-1]
        wall = self.end[last] - self.begin[first]
        step_s = [self.end[s] - self.begin[s] for s in steps]
        inner = [s for s in self.evals if s < last]  # evaluations between steps (the last one is after the clock)
        eval_s = [self.evals[s] - self.end[s] for s in inner]
        save_s = [self.saves[s] - self.evals[s] for s in inner if s in self.saves]
        return {"wall": wall, "steps": len(steps), "step_sum": sum(step_s), "step_median": statistics.median(step_s),
                "evals": len(eval_s), "eval_sum": sum(eval_s), "save_sum": sum(save_s),
                "eval_median": statistics.median(eval_s) if eval_s else 0.0,
                "save_median": statistics.median(save_s) if save_s else 0.0,
                "other": wall - sum(step_s) - sum(eval_s) - sum(save_s)}


def _config(steps: int, every: int, kind: str = "finetune"):
    from core.training import TrainingConfig

    if kind == "scratch":  # a from-scratch CNN on scikit-learn's digits (the #16 bar's network)
        from core.scratch import default_architecture

        return TrainingConfig(task="scratch", architecture=default_architecture("cnn"), dataset="sklearn:digits",
                              batch_size=32, learning_rate=2e-3, max_steps=steps, eval_steps=every, save_steps=every)
    return TrainingConfig(max_steps=steps, eval_steps=every, save_steps=every)


def _time_hooks(cls) -> dict[str, float]:
    """Wrap each hook of `cls` so the seconds spent in it add up per hook name (this process only)."""
    spent: dict[str, float] = {}
    for name in ("on_step_begin", "on_step_end", "on_log", "on_evaluate", "on_save", "on_prediction_step"):
        fn = getattr(cls, name)

        def timed(self, *a, _fn=fn, _name=name, **k):
            t = time.perf_counter()
            try:
                return _fn(self, *a, **k)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - t
        setattr(cls, name, timed)
    return spent


def child_engine(workspace: Path, steps: int, every: int, kind: str) -> dict:
    from bench.bench_training import managed
    from core.settings import Settings
    from core.training.callbacks import StoreCallback
    from core.training.jobs import ThreadRunner

    spent = _time_hooks(StoreCallback)
    clock = PhaseClock()
    managed(Settings(workspace=workspace), _config(steps, every, kind), 1.0, runner=ThreadRunner(lambda run_id: [clock]))
    return clock.summary() | {"store_callback": spent}


def plain_script(workspace: Path, steps: int, every: int) -> str:
    from core.data.store import DatasetStore
    from core.settings import Settings
    from core.training.export import export_script
    from core.training.runner import prepare

    settings = Settings(workspace=workspace)
    DatasetStore(settings.datasets_dir).ensure_sample()
    config = _config(steps, every)
    _, splits = prepare(config, settings)
    script = export_script(config, settings, "bench", splits.label_names, eval_steps=every,
                           output=str(workspace / "plain-out"))
    cadence = f'save_strategy="steps",\n    save_steps={every},\n    save_total_limit=2,'
    return _patched(script, (('save_strategy="no",', cadence),
                             ("compute_metrics=compute_metrics)", "compute_metrics=compute_metrics, callbacks=[CLOCK])"),
                             ('print("eval", trainer.evaluate())', "")))


def scratch_script(workspace: Path, steps: int, every: int) -> str:
    """The from-scratch run's "Export as script", with the engine's checkpoint cadence (the export saves only the
    final model) and the clock."""
    from dataclasses import asdict

    from core.scratch import export_script
    from core.settings import Settings
    from core.training.runner import plan

    settings = Settings(workspace=workspace)
    config = _config(steps, every, "scratch")
    script = export_script(config, settings, asdict(plan(config, settings)) | {"eval_steps": every}, "bench",
                           output=str(workspace / "plain-out"))
    cadence = f'    save_strategy="steps",\n    save_steps={every},\n    save_total_limit=2,\n'
    return _patched(script, (('    save_strategy="no",\n', cadence),
                             ("compute_metrics=compute_metrics,", "compute_metrics=compute_metrics, callbacks=[CLOCK],")))


def _patched(script: str, edits: tuple[tuple[str, str], ...]) -> str:
    """The exported script with each (old, new) edit made once; an old text the export no longer writes fails."""
    for old, new in edits:
        assert old in script, old
        script = script.replace(old, new, 1)
    return script


def child_plain(workspace: Path, steps: int, every: int, kind: str, threaded: bool, threads: int = 0) -> dict:
    if threads:  # torch's intra-op threads as the engine sets them (it trains a from-scratch net on one)
        import torch

        torch.set_num_threads(threads)
    clock = PhaseClock()
    source = (scratch_script if kind == "scratch" else plain_script)(workspace, steps, every)
    code = compile(source, "plain.py", "exec")
    run = lambda: exec(code, {"__name__": "__plain__", "CLOCK": clock})  # noqa: E731, S102 - our own script
    if threaded:
        t = threading.Thread(target=run)
        t.start()
        t.join()
    else:
        run()
    return clock.summary()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--every", type=int, default=12)
    ap.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES),
                    help="which sides to run (plain is always one: the ratio is plain ÷ engine)")
    ap.add_argument("--kind", choices=("finetune", "scratch"), default="finetune",
                    help="finetune: MiniLM on the drug reviews vs a plain Trainer script; scratch: a CNN on digits "
                         "vs its exported script")
    ap.add_argument("--plain-threads", type=int, default=0,
                    help="torch threads for the plain sides (0: torch's default, as a user's script runs)")
    ap.add_argument("--child", choices=SIDES)
    ap.add_argument("--workspace")
    a = ap.parse_args()
    if a.child:
        ws = Path(a.workspace)
        out = (child_engine(ws, a.steps, a.every, a.kind) if a.child == "engine"
               else child_plain(ws, a.steps, a.every, a.kind, threaded=a.child == "plain-thread",
                                threads=a.plain_threads))
        print("RESULT " + json.dumps(out))
        return

    import os

    sides = tuple(s for s in SIDES if s in set(a.sides) | {"plain", "engine"})
    results: dict[str, list[dict]] = {s: [] for s in sides}
    for r in range(a.rounds):
        k = r % len(sides)
        order = sides[k:] + sides[:k]  # rotate who goes first
        for side in order:
            ws = tempfile.mkdtemp(prefix=f"bench-overhead-{side}-")
            load = os.getloadavg()[0]
            out = subprocess.run([sys.executable, "-m", "bench.bench_overhead", "--child", side, "--workspace", ws,
                                  "--steps", str(a.steps), "--every", str(a.every), "--kind", a.kind,
                                  "--plain-threads", str(a.plain_threads)],
                                 capture_output=True, text=True, timeout=3600)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(out.stderr[-3000:])
            res = json.loads(line[7:]) | {"load": load}
            results[side].append(res)
            print(f"round {r} {side:13s} wall {res['wall']:6.1f} s · steps {res['step_sum']:6.1f} s "
                  f"(median {res['step_median'] * 1000:4.0f} ms) · {res['evals']} evals {res['eval_sum']:5.1f} s · "
                  f"saves {res['save_sum']:5.1f} s · other {res['other']:5.2f} s · load {load:.1f}"
                  + ("".join(f" · {k} {v:.3f} s" for k, v in sorted(res.get("store_callback", {}).items()))),
                  flush=True)  # each round's hook totals at once: a cut-short bench still has them

    med = {s: {k: statistics.median(x[k] for x in results[s]) for k in
               ("wall", "step_sum", "step_median", "eval_sum", "save_sum", "other", "eval_median", "save_median")}
           for s in sides}
    print("\n| side | wall (first → last step) | steps (sum · median) | evaluations | saves | other | "
          "ratio plain ÷ side |")
    print("|---|---|---|---|---|---|---|")
    for s in sides:
        m = med[s]
        print(f"| {s} | {m['wall']:.1f} s | {m['step_sum']:.1f} s · {m['step_median'] * 1000:.0f} ms | "
              f"{m['eval_sum']:.1f} s ({m['eval_median']:.2f} s each) | {m['save_sum']:.1f} s "
              f"({m['save_median']:.2f} s each) | {m['other']:.2f} s | {med['plain']['wall'] / m['wall']:.3f} |")
    per_round = [p["wall"] / e["wall"] for p, e in zip(results["plain"], results["engine"], strict=True)]
    print(f"\nengine overhead, plain ÷ engine wall per round: {', '.join(f'{x:.3f}' for x in per_round)} "
          f"(median {statistics.median(per_round):.3f}; target ≥ 0.97)")
    hooks: dict[str, list[float]] = {}
    for e in results["engine"]:
        for k, v in e["store_callback"].items():
            hooks.setdefault(k, []).append(v)
    print("engine's StoreCallback, seconds per run (median): "
          + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in sorted(hooks.items())))


if __name__ == "__main__":
    main()
