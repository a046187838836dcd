"""'Export as script' for causal-lm and seq2seq runs: plain transformers that reproduces the run (the
classification template is core.training.export; its plan, paths and torch-schedule code are reused here)."""
from __future__ import annotations

from core.settings import Settings
from core.training.config import TrainingConfig
from core.training.export import _TORCH_SCHEDULE
from core.training.runner import plan

HEAD = '''\
"""Reproduce Torch Lab run {run_id!r} with plain transformers: {name}.

Run it with the same packages as Torch Lab (requirements.txt): python {filename}
"""
import math

from datasets import load_from_disk
from transformers import ({imports}, AutoTokenizer, set_seed)

MODEL = {model_path!r}
DATA = {data_path!r}  # a datasets.DatasetDict saved with save_to_disk
OUTPUT = {output!r}

set_seed({seed})
data = load_from_disk(DATA)
train = data["train"] if "train" in data else data[list(data)[0]]
evaluation = next((data[s] for s in ("validation", "test", "eval") if s in data), None)
if evaluation is None:
    parts = train.train_test_split(test_size={eval_fraction}, seed={seed})
    train, evaluation = parts["train"], parts["test"]
{limits}
tokenizer = AutoTokenizer.from_pretrained(MODEL)
if tokenizer.pad_token is None:
    tokenizer.pad_token = tokenizer.eos_token
'''

CAUSAL = '''\
TEXT, BLOCK = {text!r}, {max_length}
END = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id


def tokenize(batch):
    ids = tokenizer([t for t in batch[TEXT] if t.strip()])["input_ids"]
    ids = [x if x and x[-1] == END else x + [END] for x in ids]  # an end-of-text token closes each row
    return {{"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]}}


def group_texts(batch):
    """Concatenate, then cut into blocks of BLOCK tokens (the remainder is dropped): the HF course's packing."""
    joined = {{k: sum(batch[k], []) for k in batch}}
    total = len(joined["input_ids"]) // BLOCK * BLOCK
    out = {{k: [v[i:i + BLOCK] for i in range(0, total, BLOCK)] for k, v in joined.items()}}
    out["labels"] = [list(b) for b in out["input_ids"]]
    return out


train, evaluation = (d.map(tokenize, batched=True, remove_columns=d.column_names).map(group_texts, batched=True)
                     for d in (train, evaluation))
model = AutoModelForCausalLM.from_pretrained(MODEL)
if model.loss_type is None:  # GPT2LMHeadModel: so the Trainer averages the loss over the T - 1 predicted tokens
    model.loss_type = "ForCausalLM"
collator = default_data_collator
compute_metrics = None
ArgsClass, extra = TrainingArguments, {{}}
'''

CAUSAL_PADDED = '''\
TEXT, MAX_LENGTH = {text!r}, {max_length}
END = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id


def tokenize(batch):
    """Padding, not packing: one row per example, an end-of-text token after it, cut to MAX_LENGTH tokens."""
    ids = tokenizer([t for t in batch[TEXT] if t.strip()])["input_ids"]
    ids = [(x if x and x[-1] == END else x + [END])[:MAX_LENGTH] for x in ids]
    return {{"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]}}


def collator(rows):
    """Pad to the batch's longest row; padding positions are masked and their labels -100 (by position, so a
    tokenizer that pads with its end-of-text token keeps each row's real end in the loss)."""
    batch = tokenizer.pad([{{k: r[k] for k in ("input_ids", "attention_mask")}} for r in rows], return_tensors="pt")
    batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return dict(batch)


train, evaluation = (d.map(tokenize, batched=True, remove_columns=d.column_names) for d in (train, evaluation))
model = AutoModelForCausalLM.from_pretrained(MODEL)
if model.loss_type is None:  # GPT2LMHeadModel: so the Trainer averages the loss over the T - 1 predicted tokens
    model.loss_type = "ForCausalLM"
compute_metrics = None
ArgsClass, extra = TrainingArguments, {{}}
'''

SEQ2SEQ = '''\
SOURCE, TARGET = {source!r}, {target!r}


def tokenize(batch):
    enc = tokenizer(batch[SOURCE], truncation=True, max_length={max_length}, return_token_type_ids=False)
    enc["labels"] = tokenizer(text_target=batch[TARGET], truncation=True, max_length={max_target_length})["input_ids"]
    return enc


train, evaluation = (d.map(tokenize, batched=True, remove_columns=d.column_names) for d in (train, evaluation))
model = AutoModelForSeq2SeqLM.from_pretrained(MODEL)
collator = DataCollatorForSeq2Seq(tokenizer, model=model)  # pads labels with -100, builds decoder_input_ids
scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])


def compute_metrics(eval_pred):
    preds = np.where(eval_pred.predictions != -100, eval_pred.predictions, tokenizer.pad_token_id)
    labels = np.where(eval_pred.label_ids != -100, eval_pred.label_ids, tokenizer.pad_token_id)
    pairs = zip(tokenizer.batch_decode(labels, skip_special_tokens=True),
                tokenizer.batch_decode(preds, skip_special_tokens=True))
    scores = [scorer.score(ref, pred) for ref, pred in pairs]
    return {{k: float(np.mean([s[k].fmeasure for s in scores])) for k in ("rouge1", "rouge2", "rougeL")}}


ArgsClass = Seq2SeqTrainingArguments
extra = {{"predict_with_generate": True, "generation_max_length": {max_target_length}}}
'''

TAIL = '''
args = ArgsClass(
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
    report_to="none",
    **extra,
)
{trainer_class}trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                  processing_class=tokenizer, data_collator=collator, compute_metrics=compute_metrics)
result = trainer.train()
print("train", result.metrics)
metrics = trainer.evaluate()
{report}
trainer.save_model(OUTPUT + "/model")
'''


def export_script(config: TrainingConfig, settings: Settings, run_id: str = "new", eval_steps: int | None = None,
                  output: str = "reproduced-run") -> str:
    """The script's text for a causal-lm or seq2seq config; paths point at this server's model and dataset."""
    from core.data.store import DatasetStore

    p = plan(config, settings)
    ref = DatasetStore(settings.datasets_dir).ref(config.dataset, config.dataset_version)
    limits = ""
    if config.max_train_samples:
        limits += f"train = train.select(range(min({config.max_train_samples}, len(train))))\n"
    if config.max_eval_samples:
        limits += f"evaluation = evaluation.select(range(min({config.max_eval_samples}, len(evaluation))))\n"
    causal = config.task == "causal-lm"
    imports = ("AutoModelForCausalLM, Trainer, TrainingArguments, default_data_collator" if causal else
               "AutoModelForSeq2SeqLM, DataCollatorForSeq2Seq, Seq2SeqTrainer as Trainer, Seq2SeqTrainingArguments")
    head = HEAD.format(run_id=run_id, name=config.display_name(), filename=f"train_{run_id}.py", imports=imports,
                       model_path=p.model_path, data_path=str((ref.path / "data").resolve()), output=output,
                       seed=config.seed, eval_fraction=config.eval_fraction, limits=limits)
    if not causal:
        head = head.replace("import math\n", "import numpy as np\nfrom rouge_score import rouge_scorer\n")
    template = CAUSAL if getattr(config, "packing", True) else CAUSAL_PADDED
    body = (template.format(text=config.columns.get("text"), max_length=config.max_length) if causal else
            SEQ2SEQ.format(source=config.columns.get("source"), target=config.columns.get("target"),
                           max_length=config.max_length, max_target_length=config.max_target_length))
    torch_schedule = config.scheduler in _TORCH_SCHEDULE
    tail = TAIL.format(
        batch_size=config.batch_size, eval_batch_size=config.batch_size * 2, grad_accumulation=config.grad_accumulation,
        learning_rate=config.learning_rate, weight_decay=config.weight_decay, epochs=config.epochs,
        max_steps=config.max_steps, warmup=config.warmup, scheduler="linear" if torch_schedule else config.scheduler,
        optim=p.optim, bf16=p.precision == "bf16", fp16=p.precision == "fp16", seed=config.seed,
        logging_steps=config.logging_steps, eval_steps=eval_steps or config.eval_steps or 50,
        trainer_class=_TORCH_SCHEDULE.get(config.scheduler, ""),
        report='print("eval", metrics, "perplexity", math.exp(metrics["eval_loss"]))' if causal
        else 'print("eval", metrics)')
    return head + "\n" + body + tail
