"""What a run trains. A task supplies the model, the data, the collator, the metrics and a baseline;
the runner supplies the one loop for every task (the Hugging Face Trainer: checkpoints, resume, mixed
precision and multi-GPU come from it) and the job manager, run store, live page and compare serve all.

Tasks: "text-classification" (a pretrained Transformer fine-tuned to classify text, below), the other
pretrained tasks in their own modules (`MODULES`), and "scratch" (a network built from its architecture:
`core.scratch`, which imports TaskSetup from here). The runner picks between them, so this module never
imports a task module.

A pretrained task's module (`MODULES[task]`) provides:
    prepare(config, settings, model_path) -> prepared   # every data check before launch; ConfigError names
        # the field ("columns.tags") and the row. `prepared` has train_rows, eval_rows and labels (list[str]).
    setup(config, model_path, prepared, out) -> TaskSetup
    mapped_example(config, settings, model_path) -> MappedExample   # the form's "as the model sees it"
        # (or in EXAMPLE_MODULES[task]; call `tasks.mapped_example`, which finds it)
Its columns come from `config.columns` (role -> column; `core.training.config.TASK_ROLES` names the roles).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.training.config import TrainingConfig


@dataclass
class TaskSetup:
    """Everything the Trainer needs for one run, built by a task."""

    model: Any  # a transformers PreTrainedModel; forward(**batch) returns .loss and .logits
    train_dataset: Any  # datasets.Dataset (or a torch Dataset)
    eval_dataset: Any
    data_collator: Any  # list of examples -> dict of tensors, or None
    compute_metrics: Any  # EvalPrediction -> dict of numbers, or None
    processing_class: Any = None  # a tokenizer saved beside the model, if the task has one
    info: dict = field(default_factory=dict)  # JSON-able: stored in the run's plan (labels, layer table…)
    baseline: dict = field(default_factory=dict)  # what an untrained guess scores: {"majority_baseline": 0.65}
    trainer_class: Any = None  # a Trainer subclass (Seq2SeqTrainer…), or None for Trainer
    args_class: Any = None  # a TrainingArguments subclass (Seq2SeqTrainingArguments…), or None
    args: dict = field(default_factory=dict)  # extra TrainingArguments fields (predict_with_generate…)


# the module of each pretrained task beyond text classification (see the module docstring)
MODULES = {
    "token-classification": "core.training.token_classification",
    "question-answering": "core.training.extractive_qa",
    "causal-lm": "core.training.generation",
    "seq2seq": "core.training.generation",
}


@dataclass
class MappedExample:
    """One row of the dataset exactly as the model will see it: a table (one row per token, usually) and
    notes (what was truncated, how labels were aligned…), shown by the launch form before Start."""

    table: list[dict]
    notes: list[str] = field(default_factory=list)


# where a task's `mapped_example` lives when not in its module (the generation tasks keep it with their other
# tools, which build on the task module)
EXAMPLE_MODULES = {"causal-lm": "core.training.generation_tools", "seq2seq": "core.training.generation_tools"}


def task_module(task: str):
    """The module implementing a pretrained task, imported on first use (`MODULES`)."""
    import importlib

    return importlib.import_module(MODULES[task])


def mapped_example(config: TrainingConfig, settings, model_path: str) -> MappedExample:
    """One row of the run's data exactly as the model will see it (the launch form's preview)."""
    import importlib

    module = importlib.import_module(EXAMPLE_MODULES.get(config.task, MODULES[config.task]))
    return module.mapped_example(config, settings, model_path)


def compute_metrics(eval_pred) -> dict:
    """Accuracy, macro precision / recall / F1 and the confusion matrix of a classifier."""
    import numpy as np
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    preds = np.asarray(logits).argmax(-1)
    k = np.asarray(logits).shape[-1]
    p, r, f, _ = precision_recall_fscore_support(labels, preds, average="macro", labels=list(range(k)),
                                                 zero_division=0)
    cm = confusion_matrix(labels, preds, labels=list(range(k)))
    return {"accuracy": float((preds == labels).mean()), "precision": float(p), "recall": float(r),
            "f1": float(f), "confusion_matrix": cm.tolist()}


def text_classification(config: TrainingConfig, model_path: str, splits, out: Path) -> TaskSetup:
    """A pretrained Transformer with a fresh classification head, on tokenized text padded per batch."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from core.training.data import tokenize

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    train_ds = tokenize(splits.train, tokenizer, config, str(out / "train-tokens.arrow"))
    eval_ds = tokenize(splits.eval, tokenizer, config, str(out / "eval-tokens.arrow"))
    names = splits.label_names
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)}, ignore_mismatched_sizes=True)
    return TaskSetup(model, train_ds, eval_ds, DataCollatorWithPadding(tokenizer), compute_metrics,
                     processing_class=tokenizer, info={"labels": names},
                     baseline={"majority_baseline": splits.majority_baseline})

