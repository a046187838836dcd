"""'Export as script': a standalone Python file that reproduces a run with plain transformers."""
from __future__ import annotations

from core.settings import Settings
from core.training.config import TrainingConfig
from core.training.runner import plan

TEMPLATE = '''\
"""Reproduce Torch Lab run {run_id!r} with plain transformers: {name}.

Run it with the same packages as Torch Lab (requirements.txt): python {filename}
"""
import numpy as np
from datasets import ClassLabel, load_from_disk
from sklearn.metrics import accuracy_score, precision_recall_fscore_support
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                          Trainer, TrainingArguments, set_seed)

MODEL = {model_path!r}
DATA = {data_path!r}  # a datasets.DatasetDict saved with save_to_disk
TEXT, TEXT_PAIR, LABEL = {text!r}, {pair!r}, {label!r}
LABELS = {labels!r}
OUTPUT = {output!r}

set_seed({seed})
data = load_from_disk(DATA)
train = data["train"] if "train" in data else data[list(data)[0]]
evaluation = next((data[s] for s in ("validation", "test", "eval") if s in data), None)


def encode_labels(ds):
    """Map the label column to class ids 0..k-1 in `labels`, as the Trainer expects."""
    index = {{name: i for i, name in enumerate(LABELS)}}
    feature = ds.features[LABEL]
    names = feature.names if isinstance(feature, ClassLabel) else None
    def to_id(v):
        key = names[v] if names else (v if isinstance(v, str) else str(int(v)))
        return index[key]
    ds = ds.map(lambda b: {{"labels": [to_id(v) for v in b[LABEL]]}}, batched=True)
    return ds.cast_column("labels", ClassLabel(names=LABELS))


train = encode_labels(train)
if evaluation is None:
    parts = train.train_test_split(test_size={eval_fraction}, seed={seed}, stratify_by_column="labels")
    train, evaluation = parts["train"], parts["test"]
else:
    evaluation = encode_labels(evaluation)
{limits}
tokenizer = AutoTokenizer.from_pretrained(MODEL)


def tokenize(batch):
    pairs = batch[TEXT_PAIR] if TEXT_PAIR else None
    return tokenizer(batch[TEXT], pairs, truncation=True, max_length={max_length})  # padded per batch


keep = {{"labels"}}
train = train.map(tokenize, batched=True, remove_columns=[c for c in train.column_names if c not in keep])
evaluation = evaluation.map(tokenize, batched=True,
                            remove_columns=[c for c in evaluation.column_names if c not in keep])

model = AutoModelForSequenceClassification.from_pretrained(
    MODEL, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
    label2id={{n: i for i, n in enumerate(LABELS)}}, ignore_mismatched_sizes=True)


def compute_metrics(eval_pred):
    preds = np.argmax(eval_pred.predictions, axis=-1)
    p, r, f, _ = precision_recall_fscore_support(eval_pred.label_ids, preds, average="macro", zero_division=0)
    return {{"accuracy": accuracy_score(eval_pred.label_ids, preds), "precision": p, "recall": r, "f1": f}}


args = TrainingArguments(
    output_dir=OUTPUT,
    per_device_train_batch_size={batch_size},
    per_device_eval_batch_size={eval_batch_size},
    gradient_accumulation_steps={grad_accumulation},
    learning_rate={learning_rate!r},
    weight_decay={weight_decay!r},
    num_train_epochs={epochs!r},
    max_steps={max_steps},
    warmup_steps={warmup!r},
    lr_scheduler_type={scheduler!r},
    optim={optim!r},
    bf16={bf16},
    fp16={fp16},
    seed={seed},
    logging_steps={logging_steps},
    eval_strategy="steps",
    eval_steps={eval_steps},
    save_strategy="no",
    train_sampling_strategy={sampling!r},
    report_to="none",
)
{trainer_class}trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                  processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                  compute_metrics=compute_metrics)
result = trainer.train()
print("train", result.metrics)
print("eval", trainer.evaluate())
trainer.save_model(OUTPUT + "/model")
'''


def export_script(config: TrainingConfig, settings: Settings, run_id: str = "new", labels=None,
                  eval_steps: int | None = None, output: str = "reproduced-run") -> str:
    """The script's text; paths point at this server's model folder and saved dataset version."""
    from core.data.store import DatasetStore

    p = plan(config, settings)
    ref = DatasetStore(settings.datasets_dir).ref(config.dataset, config.dataset_version)
    limits = ""
    if config.max_train_samples:
        limits += f"train = train.select(range(min({config.max_train_samples}, len(train))))\n"
    if config.max_eval_samples:
        limits += f"evaluation = evaluation.select(range(min({config.max_eval_samples}, len(evaluation))))\n"
    return TEMPLATE.format(
        run_id=run_id, name=config.display_name(), filename=f"train_{run_id}.py", model_path=p.model_path,
        data_path=str((ref.path / "data").resolve()), text=config.text_column, pair=config.text_pair_column,
        label=config.label_column, labels=list(labels or []), output=output, seed=config.seed,
        eval_fraction=config.eval_fraction, limits=limits, max_length=config.max_length,
        batch_size=config.batch_size, eval_batch_size=config.batch_size * 2,
        grad_accumulation=config.grad_accumulation, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, epochs=config.epochs, max_steps=config.max_steps, warmup=config.warmup,
        scheduler=config.scheduler, optim=p.optim, bf16=p.precision == "bf16", fp16=p.precision == "fp16",
        logging_steps=config.logging_steps, eval_steps=eval_steps or config.eval_steps or 50,
        sampling="group_by_length" if config.group_by_length else "random",
        trainer_class=_TORCH_SCHEDULE.get(config.scheduler, ""),
    ).replace("lr_scheduler_type='" + config.scheduler + "'",
              "lr_scheduler_type='linear'" if config.scheduler in _TORCH_SCHEDULE else
              "lr_scheduler_type='" + config.scheduler + "'")


# torch's own schedules (core.training.schedules) need the Trainer's create_scheduler overridden
_SCHEDULE_CODE = {
    "step": "torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, num_training_steps // 3), gamma=0.1)",
    "exponential": "torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.01 ** (1 / max(1, "
                   "num_training_steps - 1)))",
    "one_cycle": "torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g['lr'] for g in optimizer.param_groups], "
                 "total_steps=max(2, num_training_steps), pct_start=0.3, div_factor=25.0, "
                 "final_div_factor=1e4, cycle_momentum=False)",
}
_TORCH_SCHEDULE = {name: f"""import torch


class Trainer(Trainer):  # the {name} schedule is torch's own: built where the Trainer builds its scheduler
    def create_scheduler(self, num_training_steps, optimizer=None):
        if self.lr_scheduler is None:
            optimizer = optimizer or self.optimizer
            self.lr_scheduler = {code}
            self._created_lr_scheduler = True
        return self.lr_scheduler


""" for name, code in _SCHEDULE_CODE.items()}
