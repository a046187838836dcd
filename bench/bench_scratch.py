"""Quality bars of the from-scratch networks (#16), each trained with a plain Hugging Face Trainer on the
TaskSetup that `core.scratch.setup` builds (what the job engine runs), on CPU.

    HF_HUB_OFFLINE=1 .venv/bin/python -m bench.bench_scratch [cnn mlp seq2seq gpt rnn transformer]

Prints one markdown row per run: the figure, its bar, the time spent training (Trainer.train) and in all.
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
    "gpt": ("gpt", "drug-reviews", {"vocab_size": 1000, "dropout": 0.2}, {"max_length": 128},
            {"epochs": 25, "batch": 16, "lr": 5e-3}),
    "rnn": ("rnn", "drug-reviews", {"tokenizer": "bert-wordpiece-uncased",
                                    "layers": [{"type": "Embedding", "embedding_dim": 64},
                                               {"type": "LSTM", "hidden_size": 64, "bidirectional": True},
                                               {"type": "Dropout", "p": 0.3}]},
            {"max_length": 128}, {"epochs": 8, "batch": 16, "lr": 2e-3}),
    "transformer": ("transformer", "drug-reviews", {"tokenizer": "bert-wordpiece-uncased"}, {"max_length": 128},
                    {"epochs": 8, "batch": 16, "lr": 2e-3}),
}


def run(name: str, settings: Settings, out: Path) -> dict:
    from transformers import Trainer, TrainingArguments

    kind, dataset, changes, fields, t = RUNS[name]
    arch = default_architecture(kind)
    arch.update(changes)
    start = time.perf_counter()
    config = TrainingConfig(task="scratch", architecture=arch, dataset=dataset, seed=0, **fields)
    task = setup(config, settings, out)
    args = TrainingArguments(output_dir=str(out / "ckpt"), num_train_epochs=t["epochs"],
                             per_device_train_batch_size=t["batch"], per_device_eval_batch_size=64,
                             learning_rate=t["lr"], weight_decay=0.01, lr_scheduler_type="cosine", warmup_steps=0.05,
                             logging_steps=50, report_to=[], use_cpu=True, save_strategy="no", eval_strategy="no",
                             seed=0, disable_tqdm=True)
    trainer = Trainer(model=task.model, args=args, train_dataset=task.train_dataset, eval_dataset=task.eval_dataset,
                      data_collator=task.data_collator, compute_metrics=task.compute_metrics,
                      processing_class=task.processing_class)
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    metrics = trainer.evaluate()
    total_s = time.perf_counter() - start
    trainer.save_model(str(out / "model"))
    result = {"name": name, "train_s": train_s, "total_s": total_s, "metrics": metrics, "baseline": task.baseline,
              "params": task.info["params"], "train_rows": task.info["train_rows"],
              "eval_rows": task.info["eval_rows"]}
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
    return f"| {name} | {fig} | {bar} | {r['params']:,} | {r['train_s']:.1f} s | {r['total_s']:.1f} s |"


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
            for s in r.get("samples", []):
                print(f"    sample: {s!r}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(RUNS))
