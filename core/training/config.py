"""TrainingConfig: everything a fine-tuning run needs, as plain JSON-able values."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields


class ConfigError(ValueError):
    """A config value that can't work; `.field` names it so the form can point at it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adamw_torch", "sgd", "adafactor")


@dataclass
class TrainingConfig:
    """A sequence-classification fine-tune. Defaults run on CPU, offline, in about a minute."""

    # packaged model name ("minilm-l6"), a local save_pretrained folder, a run's model, or a hub id
    model: str = "minilm-l6"
    # dataset name in the workspace's DatasetStore, and its version (None = latest)
    dataset: str = "drug-reviews"
    dataset_version: int | None = None
    # the text column, and a second one for sentence-pair tasks
    text_column: str = "text"
    text_pair_column: str | None = None
    # the label column: ClassLabel, strings (mapped to classes) or integers
    label_column: str = "label"
    # held out for evaluation when the dataset has no "test"/"validation" split
    eval_fraction: float = 0.1
    # use only the first N training / evaluation rows (None = all): the dry-run size
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    # tokens per example; longer texts are truncated, shorter ones padded per batch only
    max_length: int = 128
    # examples per device per step
    batch_size: int = 16
    # 2e-4 and 3 epochs: on the drug-review sample MiniLM-L6 then beats the majority class
    # (5e-5 for 2 epochs still predicted "positive" for everything; see bench/RESULTS.md)
    learning_rate: float = 2e-4
    # full passes over the training split; ignored when max_steps > 0
    epochs: float = 3.0
    max_steps: int = -1
    weight_decay: float = 0.01
    # fraction of steps (< 1) or number of steps (>= 1) of linear warm-up
    warmup: float = 0.1
    scheduler: str = "linear"
    # steps whose gradients are summed before one optimizer step
    grad_accumulation: int = 1
    # auto: bf16 on a GPU that supports it, else fp32; fp16/bf16 need a GPU
    precision: str = "auto"
    # adamw: fused AdamW where available, else foreach; adamw_torch: plain loop; sgd; adafactor
    optimizer: str = "adamw"
    seed: int = 42
    # log every N steps (the live curve's resolution)
    logging_steps: int = 1
    # evaluate / checkpoint every N steps (None = once per epoch)
    eval_steps: int | None = None
    save_steps: int | None = None
    # stop after this many evaluations without improvement of eval loss (0 = off)
    early_stopping_patience: int = 0
    # sort batches by length so little padding is wasted
    group_by_length: bool = True
    # a name for the run list (default: model + dataset)
    name: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(sorted(unknown)[0], "unknown config field")
        return cls(**d)

    def display_name(self) -> str:
        return self.name or f"{self.model.rstrip('/').split('/')[-1]} on {self.dataset}"

    def validate(self) -> None:
        """Checks that need no data and no model; raises ConfigError naming the field."""
        for name in ("model", "dataset", "text_column", "label_column"):
            if not str(getattr(self, name) or "").strip():
                raise ConfigError(name, "must not be empty")
        positive_ints = ("max_length", "batch_size", "grad_accumulation", "logging_steps")
        for name in positive_ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(name, f"must be a positive whole number, got {v!r}")
        for name in ("eval_steps", "save_steps", "max_train_samples", "max_eval_samples", "dataset_version"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ConfigError(name, f"must be a positive whole number or empty, got {v!r}")
        if not (isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate)
                and 0 < self.learning_rate <= 1):
            raise ConfigError("learning_rate", f"must be in (0, 1], got {self.learning_rate!r}")
        if self.max_steps <= 0 and not (self.max_steps == -1 and self.epochs > 0):
            raise ConfigError("epochs" if self.max_steps == -1 else "max_steps",
                              "give a positive number of epochs, or max_steps > 0")
        if not 0 <= self.weight_decay < 1:
            raise ConfigError("weight_decay", f"must be in [0, 1), got {self.weight_decay}")
        if self.warmup < 0 or (self.warmup >= 1 and self.warmup != int(self.warmup)):
            raise ConfigError("warmup", "a fraction in [0, 1) or a whole number of steps")
        if not 0 < self.eval_fraction < 1:
            raise ConfigError("eval_fraction", f"must be between 0 and 1, got {self.eval_fraction}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError("scheduler", f"one of {', '.join(SCHEDULERS)}; got {self.scheduler!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", f"one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", f"one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.early_stopping_patience < 0:
            raise ConfigError("early_stopping_patience", "must be 0 (off) or more")
        if self.text_pair_column and self.text_pair_column == self.text_column:
            raise ConfigError("text_pair_column", "must differ from text_column")
        if self.label_column in (self.text_column, self.text_pair_column):
            raise ConfigError("label_column", "must differ from the text column(s)")


@dataclass
class Plan:
    """What a validated config resolves to on this machine (filled by `prepare`)."""

    model_path: str
    device: str
    precision: str  # fp32 | bf16 | fp16
    optim: str  # the TrainingArguments optimizer name
    labels: list[str] = field(default_factory=list)
    train_rows: int = 0
    eval_rows: int = 0
    model_max_length: int = 512
