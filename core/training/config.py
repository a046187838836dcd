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


SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "step", "exponential", "one_cycle")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adamw_torch", "sgd", "adafactor")
# what a run trains: a pretrained Transformer fine-tuned for one of the tutorials' tasks, or a network built
# from scratch (core.scratch: MLP, CNN, RNN, Transformer encoder, seq2seq Transformer, tiny GPT) from `architecture`
TASKS = ("text-classification", "token-classification", "question-answering", "causal-lm", "seq2seq", "scratch")
# the columns each task beyond text classification reads, by role (`TrainingConfig.columns`: role -> column)
TASK_ROLES = {
    "token-classification": {"tokens": "a list of words per row", "tags": "a list of BIO tags, one per word"},
    "question-answering": {"question": "the question", "context": "the passage holding the answer",
                           "answers": "SQuAD answers: {'text': [...], 'answer_start': [...]}"},
    "causal-lm": {"text": "the text to continue"},
    "seq2seq": {"source": "the input text", "target": "the text to generate"},
}
REPORT_TOOLS = ("tensorboard", "trackio")  # the Trainer integrations a run may also log to, besides the store
REPORT_TO = ("none", *REPORT_TOOLS, ",".join(REPORT_TOOLS))
MAX_ARCHITECTURE_CHARS = 65_536  # the architecture spec as JSON


@dataclass
class TrainingConfig:
    """One run: a sequence-classification fine-tune by default (on CPU, offline, in about a minute), or
    a network built from scratch (`task="scratch"`, the network described by `architecture`)."""

    task: str = "text-classification"
    # for task "scratch": the network as JSON-able values, {"kind": "cnn", ...} (see core.scratch)
    architecture: dict = field(default_factory=dict)
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
    # the other tasks' column mapping, role -> column (TASK_ROLES names each task's roles)
    columns: dict = field(default_factory=dict)
    # tokens per generated target (seq2seq); longer targets are truncated
    max_target_length: int = 64
    # causal LM: pack rows into blocks of max_length (True), or pad one row per example, cut to max_length (False)
    packing: bool = True
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
    # also log to TensorBoard and/or Trackio ("tensorboard,trackio") through the Trainer's integrations
    # (Torch Lab's store stays the source of truth)
    report_to: str = "none"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> TrainingConfig:
        if not isinstance(d, dict):
            raise ConfigError("config", f"must be a mapping of field names to values, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(sorted(map(str, unknown))[0], "unknown config field")
        return cls(**d)

    def display_name(self) -> str:
        if self.name:
            return self.name
        what = self.architecture.get("kind", "scratch") if self.task == "scratch" else self.model.rstrip("/").split("/")[-1]
        return f"{what} on {self.dataset}"

    def validate(self) -> None:
        """Every field's type, finiteness and range, then the checks across fields; raises ConfigError
        naming the field. Needs no data and no model. A bool is not a number here, and a float is not a count.
        """
        if not isinstance(self.task, str) or self.task not in TASKS:
            raise ConfigError("task", f"one of {', '.join(TASKS)}; got {self.task!r}")
        _architecture(self)
        _columns(self)
        for name in ("model", "dataset", "text_column", "label_column"):
            _text(self, name, required=True)
        _text(self, "text_pair_column", optional=True)
        _text(self, "name")
        for name, choices in (("scheduler", SCHEDULERS), ("precision", PRECISIONS), ("optimizer", OPTIMIZERS),
                              ("report_to", REPORT_TO)):
            v = getattr(self, name)
            if not isinstance(v, str) or v not in choices:
                raise ConfigError(name, f"one of {', '.join(choices)}; got {v!r}")
        for name, (low, high) in COUNTS.items():
            _count(self, name, low, high, optional=name in OPTIONAL_COUNTS)
        if self.max_steps not in (-1,) and self.max_steps < 1:
            raise ConfigError("max_steps", f"-1 (use epochs) or a positive number of steps, got {self.max_steps}")
        for name, (low, high) in REALS.items():
            _real(self, name, low, high)
        if not isinstance(self.group_by_length, bool):
            raise ConfigError("group_by_length", f"must be True or False, got {self.group_by_length!r}")
        if not isinstance(self.packing, bool):
            raise ConfigError("packing", f"must be True (pack rows into blocks) or False (pad each row), got "
                              f"{self.packing!r}")
        if not self.packing and self.task != "causal-lm":
            raise ConfigError("packing", f"padding instead of packing is a causal-lm choice; a {self.task} run "
                              "reads one example per row already")
        # across fields
        if not (0 < self.learning_rate <= 1):
            raise ConfigError("learning_rate", f"must be in (0, 1], got {self.learning_rate!r}")
        if self.max_steps == -1 and not self.epochs > 0:
            raise ConfigError("epochs", "give a positive number of epochs, or max_steps > 0")
        if not self.weight_decay < 1:
            raise ConfigError("weight_decay", f"must be in [0, 1), got {self.weight_decay}")
        if self.warmup >= 1 and self.warmup != int(self.warmup):
            raise ConfigError("warmup", "a fraction in [0, 1) or a whole number of steps")
        if not 0 < self.eval_fraction < 1:
            raise ConfigError("eval_fraction", f"must be between 0 and 1, got {self.eval_fraction}")
        if (tokens := self.batch_size * self.max_length) > MAX_BATCH_TOKENS:
            raise ConfigError("batch_size", f"{self.batch_size:,} × max_length {self.max_length:,} = {tokens:,} tokens "
                              f"per step, over the memory cap of {MAX_BATCH_TOKENS:,}: lower one of them (gradient "
                              "accumulation gives the same effective batch)")
        if self.task in TASK_ROLES:
            return  # the column mapping was checked above; the classification columns below are not read
        if self.text_pair_column and self.text_pair_column == self.text_column:
            raise ConfigError("text_pair_column", "must differ from text_column")
        if self.label_column in (self.text_column, self.text_pair_column):
            raise ConfigError("label_column", "must differ from the text column(s)")


# the largest values a run may ask for (the form's widgets stop at the same numbers)
MAX_LENGTH = 8192
MAX_BATCH_SIZE = 4096
MAX_GRAD_ACCUMULATION = 1024
MAX_STEPS = 10**7
MAX_EPOCHS = 1000.0
MAX_SAMPLES = 10**9
MAX_PATIENCE = 1000
MAX_TEXT_CHARS = 4096  # a model path, dataset name, column or run name
MAX_BATCH_TOKENS = 2**19  # batch_size × max_length: the worst-case padded batch of one step
COUNTS = {  # whole-number fields: (lowest, highest)
    "max_length": (1, MAX_LENGTH), "max_target_length": (1, MAX_LENGTH), "batch_size": (1, MAX_BATCH_SIZE), "grad_accumulation": (1, MAX_GRAD_ACCUMULATION),
    "logging_steps": (1, MAX_STEPS), "max_steps": (-1, MAX_STEPS), "seed": (0, 2**32 - 1),
    "early_stopping_patience": (0, MAX_PATIENCE), "eval_steps": (1, MAX_STEPS), "save_steps": (1, MAX_STEPS),
    "max_train_samples": (1, MAX_SAMPLES), "max_eval_samples": (1, MAX_SAMPLES), "dataset_version": (1, MAX_SAMPLES),
}
OPTIONAL_COUNTS = {"eval_steps", "save_steps", "max_train_samples", "max_eval_samples", "dataset_version"}
REALS = {  # real-number fields: (lowest, highest), both included; finer limits are checked across fields
    "learning_rate": (0.0, 1.0), "epochs": (0.0, MAX_EPOCHS), "weight_decay": (0.0, 1.0),
    "warmup": (0.0, float(MAX_STEPS)), "eval_fraction": (0.0, 1.0),
}


def _architecture(config: TrainingConfig) -> None:
    a = config.architecture
    if not isinstance(a, dict):
        raise ConfigError("architecture", f"must be a mapping of names to values, got {type(a).__name__}")
    try:
        size = len(json.dumps(a, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ConfigError("architecture", f"must hold only plain values (numbers, text, lists, mappings): {e}") from None
    if size > MAX_ARCHITECTURE_CHARS:
        raise ConfigError("architecture", f"{size:,} characters as JSON, over the limit of {MAX_ARCHITECTURE_CHARS:,}")
    if config.task == "scratch" and not a.get("kind"):
        raise ConfigError("architecture", "a from-scratch run needs the network's kind (mlp, cnn, rnn, transformer, "
                          "seq2seq or gpt)")
    if config.task != "scratch" and a:
        raise ConfigError("architecture", f"only a from-scratch run takes an architecture (task is {config.task!r})")


def _columns(config: TrainingConfig) -> None:
    """The column mapping: exactly the task's roles, each a distinct column name (checked against the data
    by the task's `prepare`)."""
    cols = config.columns
    if not isinstance(cols, dict):
        raise ConfigError("columns", f"must be a mapping of roles to column names, got {type(cols).__name__}")
    roles = TASK_ROLES.get(config.task)
    if roles is None:
        if cols:
            raise ConfigError("columns", f"a {config.task!r} run reads text_column / label_column, not a mapping")
        return
    for role in cols:
        if role not in roles:
            raise ConfigError(f"columns.{role}", f"not a role of {config.task}; its roles: {', '.join(roles)}")
    seen: dict[str, str] = {}
    for role in roles:
        v = cols.get(role)
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"columns.{role}", f"choose the column that holds {roles[role]}")
        if len(v) > MAX_TEXT_CHARS or "\x00" in v:
            raise ConfigError(f"columns.{role}", f"must be at most {MAX_TEXT_CHARS:,} characters with no NUL")
        if v in seen:
            raise ConfigError(f"columns.{role}", f"{v!r} is already the {seen[v]} column: each role needs its own")
        seen[v] = role


def _text(config: TrainingConfig, name: str, required: bool = False, optional: bool = False) -> None:
    v = getattr(config, name)
    if v is None and optional:
        return
    if not isinstance(v, str):
        raise ConfigError(name, f"must be text{' or empty' if optional else ''}, got {v!r} ({type(v).__name__})")
    if required and not v.strip():
        raise ConfigError(name, "must not be empty")
    if len(v) > MAX_TEXT_CHARS or "\x00" in v:
        raise ConfigError(name, f"must be at most {MAX_TEXT_CHARS:,} characters with no NUL, got {len(v):,}")


def _count(config: TrainingConfig, name: str, low: int, high: int, optional: bool = False) -> None:
    v = getattr(config, name)
    if v is None and optional:
        return
    kind = "a whole number" + (" or empty" if optional else "")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(name, f"must be {kind} from {low:,} to {high:,}, got {v!r} ({type(v).__name__})")
    if not low <= v <= high:
        shown = f"{v:,}" if abs(v) < 10**15 else f"{float(v):.3g}"
        raise ConfigError(name, f"must be {kind} from {low:,} to {high:,}, got {shown}")


def _real(config: TrainingConfig, name: str, low: float, high: float) -> None:
    v = getattr(config, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(name, f"must be a number from {low:g} to {high:g}, got {v!r} ({type(v).__name__})")
    if not math.isfinite(v):
        raise ConfigError(name, f"must be a finite number, got {v!r}")
    if not low <= v <= high:
        raise ConfigError(name, f"must be from {low:g} to {high:g}, got {v:g}")


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
