"""Quality bars of the from-scratch networks (#16), each trained with a plain Hugging Face Trainer on the
TaskSetup that `core.scratch.setup` builds (what the job engine runs), on CPU.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_scratch [cnn mlp seq2seq gpt rnn transformer]
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_scratch threads [rounds]
    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_scratch measure

Prints one markdown row per run: the figure, its bar, the time spent training (Trainer.train) and in all.
`measure`: each default network's training vs inference peak memory on one real batch (core.scratch.measure),
and one epoch of the digits / drug reviews through DataLoaders of several settings (core.scratch.time_loaders).
`threads`: the same small networks trained for a fixed number of steps in a worker thread (as the job engine
runs them) with 1 and with 2 intra-op threads, interleaved, `rounds` times each (default 3): median ms per step.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from core.scratch import default_architecture, predict, setup
from core.settings import Settings
from core.training.config import TrainingConfig

ROOT = Path(__file__).resolve().parents[1]

# name -> (kind, dataset, architecture changes, config fields, trainer settings)
RUNS = {
    "cnn": ("cnn", "sklearn:digits", {}, {"eval_fraction": 0.2},
            {"epochs": 12, "batch": 32, "lr": 2e-3}),
    "mlp": ("mlp", "sklearn:digits", {"layers": [{"type": "Linear", "out_features": 256}, {"type": "ReLU"},
                                                 {"type": "Dropout", "p": 0.2},
                                                 {"type": "Linear", "out_features": 128}, {"type": "ReLU"}]},
            {"eval_fraction": 0.2}, {"epochs": 30, "batch": 32, "lr": 1e-3}),
    "seq2seq": ("seq2seq", "toy:reverse", {"dropout": 0.0}, {}, {"epochs": 6, "batch": 64, "lr": 3e-3}),
    # 300-token BPE (the byte alphabet + 43 merges): on 1,000 and 2,000 tokens the GPT stayed above the bigram
    # (bench/RESULTS.md); 15 % of the training reviews choose the epoch (early stopping, best checkpoint)
    "gpt": ("gpt", "drug-reviews", {"vocab_size": 300, "dropout": 0.2, "validation_fraction": 0.15},
            {"max_length": 128}, {"epochs": 20, "batch": 16, "lr": 5e-3, "patience": 3}),
    # text classifiers: the Embedding starts from MiniLM-L6's word-embedding table, frozen (BERT's WordPiece
    # vocabulary, 384-d); 15 % of the training reviews choose the epoch. With embeddings learnt from zero on
    # 600 reviews neither beat the majority class (bench/RESULTS.md)
    "rnn": ("rnn", "drug-reviews", {"validation_fraction": 0.15, "pretrained_embeddings": "minilm-l6",
                                    "freeze_embeddings": True, "tokenizer": "bert-wordpiece-uncased",
                                    "layers": [{"type": "Embedding", "embedding_dim": 384}, {"type": "LayerNorm"},
                                               {"type": "Dropout", "p": 0.3},
                                               {"type": "LSTM", "hidden_size": 64, "bidirectional": True,
                                                "output": "sequence"},
                                               {"type": "MeanPool"}, {"type": "Dropout", "p": 0.3}]},
            {"max_length": 128}, {"epochs": 30, "batch": 16, "lr": 2e-3, "patience": 5}),
    "transformer": ("transformer", "drug-reviews",
                    {"validation_fraction": 0.15, "pretrained_embeddings": "minilm-l6", "freeze_embeddings": True,
                     "tokenizer": "bert-wordpiece-uncased",
                     "layers": [{"type": "Embedding", "embedding_dim": 384},
                                {"type": "TransformerEncoderLayer", "nhead": 4, "dim_feedforward": 256},
                                {"type": "MeanPool"}, {"type": "Dropout", "p": 0.1}]},
                    {"max_length": 128}, {"epochs": 30, "batch": 16, "lr": 1e-3, "patience": 5}),
}


def run(name: str, settings: Settings, out: Path) -> dict:
    """One run. With `patience` in its trainer settings it evaluates every epoch (on the validation split that
    `architecture.validation_fraction` carves from the training rows, through the task's own Trainer class),
    stops after `patience` epochs without a lower validation loss and loads the best epoch's checkpoint, as
    the job engine does with early_stopping_patience; the test split is evaluated once, at the end."""
    from transformers import EarlyStoppingCallback, Trainer, TrainingArguments

    kind, dataset, changes, fields, t = RUNS[name]
    arch = default_architecture(kind)
    arch.update(changes)
    start = time.perf_counter()
    config = TrainingConfig(task="scratch", architecture=arch, dataset=dataset, seed=0, **fields)
    task = setup(config, settings, out)
    early = t.get("patience", 0) > 0
    args = TrainingArguments(output_dir=str(out / "ckpt"), num_train_epochs=t["epochs"],
                             per_device_train_batch_size=t["batch"], per_device_eval_batch_size=64,
                             learning_rate=t["lr"], weight_decay=t.get("weight_decay", 0.01),
                             lr_scheduler_type="cosine", warmup_steps=0.05, logging_steps=50, report_to=[],
                             use_cpu=True, save_strategy="epoch" if early else "no",
                             eval_strategy="epoch" if early else "no", save_total_limit=2 if early else None,
                             load_best_model_at_end=early, metric_for_best_model="eval_loss" if early else None,
                             seed=0, disable_tqdm=True)
    trainer = (task.trainer_class or Trainer)(
        model=task.model, args=args, train_dataset=task.train_dataset, eval_dataset=task.eval_dataset,
        data_collator=task.data_collator, compute_metrics=task.compute_metrics, processing_class=task.processing_class,
        callbacks=[EarlyStoppingCallback(t["patience"])] if early else None)
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    metrics = trainer.evaluate()  # the test split
    total_s = time.perf_counter() - start
    trainer.save_model(str(out / "model"))
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    best = trainer.state.best_global_step
    chosen = next((h for h in evals if h.get("step") == best), None) if best else None
    result = {"name": name, "train_s": train_s, "total_s": total_s, "metrics": metrics, "baseline": task.baseline,
              "params": task.info["params"], "train_rows": task.info["train_rows"],
              "eval_rows": task.info["eval_rows"], "validation_rows": task.info.get("validation_rows", 0),
              "epochs_run": trainer.state.epoch, "best_epoch": chosen.get("epoch") if chosen else None,
              "validation": [{k: round(v, 4) for k, v in h.items() if k in ("epoch", "eval_loss", "eval_accuracy",
                                                                          "eval_f1", "eval_perplexity")}
                             for h in evals[:-1]] if early else []}
    if kind == "gpt":
        result["samples"] = [s["text"] for s in predict(out / "model", ["This drug", "I had"], max_new_tokens=30)]
    if kind == "seq2seq":
        result["samples"] = predict(out / "model", [[3, 1, 4, 1, 5, 9, 2, 6], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]])
    return result


def row(r: dict) -> str:
    m, b = r["metrics"], r["baseline"]
    name = r["name"]
    if name in ("cnn", "mlp"):
        bar = "≥ 98 %, < 60 s" if name == "cnn" else "≥ 95 %"
        fig = f"{m['eval_accuracy']:.1%} test accuracy ({r['eval_rows']} images), macro F1 {m['eval_f1']:.3f}"
    elif name == "seq2seq":
        bar = "≥ 95 % token accuracy"
        fig = (f"{m['eval_token_accuracy']:.1%} token accuracy, {m['eval_sequence_accuracy']:.1%} whole sequences "
               f"(teacher forcing, {r['eval_rows']} sequences)")
    elif name == "gpt":
        bar = "perplexity < bigram"
        fig = f"perplexity {m['eval_perplexity']:.1f} vs bigram {b['bigram_perplexity']:.1f} ({m['eval_tokens']:,} tokens)"
    else:
        bar = "> majority baseline"
        fig = (f"accuracy {m['eval_accuracy']:.1%} vs majority {b['majority_baseline']:.1%}, "
               f"macro F1 {m['eval_f1']:.3f}")
    if r.get("best_epoch"):
        fig += (f"; epoch {r['best_epoch']:.0f} of {r['epochs_run']:.0f} run, chosen on {r['validation_rows']} "
                "validation rows carved from the training split")
    return f"| {name} | {fig} | {bar} | {r['params']:,} | {r['train_s']:.1f} s | {r['total_s']:.1f} s |"


# kind -> (dataset, architecture changes, config fields, batch, steps timed) for the thread-count comparison
THREAD_RUNS = {
    "mlp": ("sklearn:digits", {}, {}, 32, 200),
    "cnn": ("sklearn:digits", {}, {}, 32, 60),
    "gpt": ("drug-reviews", {"vocab_size": 1000}, {"max_length": 128}, 16, 20),
}


def _timed_steps(task, out: Path, batch: int, steps: int, threads: int) -> float:
    """ms per optimizer step of Trainer.train on a fresh copy of the task's model, in a worker thread that
    first sets `threads` intra-op threads (and puts the previous count back, as an engine would)."""
    import copy
    import threading

    from transformers import PrinterCallback, Trainer, TrainingArguments

    result = {}

    def work():
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            args = TrainingArguments(output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch,
                                     learning_rate=1e-3, logging_steps=10**6, report_to=[], use_cpu=True,
                                     save_strategy="no", eval_strategy="no", seed=0, disable_tqdm=True)
            trainer = Trainer(model=copy.deepcopy(task.model), args=args, train_dataset=task.train_dataset,
                              data_collator=task.data_collator)
            trainer.remove_callback(PrinterCallback)
            t0 = time.perf_counter()
            trainer.train()
            result["ms"] = (time.perf_counter() - t0) / steps * 1000
        finally:
            torch.set_num_threads(before)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return result["ms"]


def threads(rounds: int = 3, hogs: int = 0) -> None:
    """1 vs 2 intra-op threads for small from-scratch runs on CPU, interleaved rounds, medians. `hogs` busy
    processes run meanwhile (BENCH_HOGS): the shared, loaded CPU other sessions make, on purpose."""
    import multiprocessing
    import statistics

    busy = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(hogs)]
    for b in busy:
        b.start()
    print(f"cores {os.cpu_count()}, torch {torch.__version__}, {hogs} busy processes, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| network | parameters | steps × rounds | 1 thread, ms/step (median) | 2 threads | 2 / 1 | all runs (1 / 2) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(workspace=Path(tmp) / "ws")
        for kind, (dataset, changes, fields, batch, steps) in THREAD_RUNS.items():
            arch = default_architecture(kind)
            arch.update(changes)
            task = setup(TrainingConfig(task="scratch", architecture=arch, dataset=dataset, seed=0, **fields),
                         settings, Path(tmp) / kind)
            times = {1: [], 2: []}
            for _ in range(rounds):
                for n in (1, 2):
                    times[n].append(_timed_steps(task, Path(tmp) / kind / "ckpt", batch, steps, n))
            one, two = statistics.median(times[1]), statistics.median(times[2])
            runs = " / ".join(", ".join(f"{t:.1f}" for t in times[n]) for n in (1, 2))
            print(f"| {kind} | {task.info['params']:,} | {steps} × {rounds} | {one:.2f} | {two:.2f} | {two / one:.2f} "
                  f"| {runs} |", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    for b in busy:
        b.terminate()


# kind -> (dataset, config fields) for `measure`: the page's defaults
MEASURE_RUNS = {"mlp": ("sklearn:digits", {}), "cnn": ("sklearn:digits", {}), "rnn": ("drug-reviews", {}),
                "transformer": ("drug-reviews", {}), "seq2seq": ("toy:reverse", {}), "gpt": ("drug-reviews", {})}


def measure_all(batch: int = 32, accumulation: int = 4) -> None:
    from core.scratch import measure, time_loaders
    from core.system import human_bytes
    from core.training.runner import plan

    print(f"batch {batch} × accumulation {accumulation}; cores {os.cpu_count()}, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print("| network | parameters (fp32) | inference peak | training step peak | kept after the step | "
          f"one batch of {batch * accumulation} at once |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(workspace=Path(tmp) / "ws", device="cpu")
        for kind, (dataset, fields) in MEASURE_RUNS.items():
            config = TrainingConfig(task="scratch", architecture=default_architecture(kind), dataset=dataset,
                                    batch_size=batch, grad_accumulation=accumulation, seed=0, **fields)
            m = measure(config, settings, plan(config, settings))
            kept = m.after_step_bytes - m.weights_bytes - m.batch_bytes
            print(f"| {kind} | {m.parameters:,} ({human_bytes(m.parameter_bytes)}) | "
                  f"{human_bytes(m.inference_peak_bytes)} | {human_bytes(m.train_peak_bytes)} "
                  f"({m.train_peak_bytes / m.inference_peak_bytes:.1f}×) | {human_bytes(m.after_step_bytes)} "
                  f"(+{kept / m.parameter_bytes:.3f}× the weights) | {human_bytes(m.full_batch_peak_bytes or 0)} |",
                  flush=True)
        for kind, dataset in (("cnn", "sklearn:digits"), ("rnn", "drug-reviews")):
            config = TrainingConfig(task="scratch", architecture=default_architecture(kind), dataset=dataset,
                                    batch_size=batch, seed=0)
            out = time_loaders(config, settings)
            print(f"\n{kind} on {dataset}: {out['rows']:,} training rows, collate {out['collate']}, "
                  f"workers by {out['start_method']}")
            print("| batch | shuffle | workers | first epoch ms | next epochs ms (median of 3) |")
            print("|---|---|---|---|---|")
            for t in out["timings"]:
                print(f"| {t['batch_size']} | {t['shuffle']} | {t['num_workers']} | {t['first_epoch_s'] * 1000:.1f} "
                      f"| {t['next_epoch_s'] * 1000:.1f} |")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def _spin() -> None:
    while True:
        pass


def main(names: list[str]) -> None:
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    load = os.getloadavg()[0]
    print(f"torch threads {torch.get_num_threads()}, load average {load:.1f}")
    print("| run | figure | bar | parameters | Trainer.train | setup + train + eval |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(workspace=Path(tmp) / "ws")
        for name in names:
            r = run(name, settings, Path(tmp) / name)
            print(row(r), flush=True)
            for v in r.get("validation", []):
                print(f"    validation: {v}")
            for s in r.get("samples", []):
                print(f"    sample: {s!r}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        measure_all()
    elif sys.argv[1:2] == ["threads"]:
        threads(int(sys.argv[2]) if len(sys.argv) > 2 else 3, int(os.environ.get("BENCH_HOGS", "0")))
    else:
        main(sys.argv[1:] or list(RUNS))
