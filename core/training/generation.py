"""Text generation fine-tunes: "causal-lm" (continue any text column) and "seq2seq" (source text -> target text),
the task module of both (core.training.tasks explains prepare / setup / mapped_example).

    causal-lm  columns {"text": col}; a decoder (GPT-2-style, a tiny GPT from Build a network, any local folder)
               AutoModelForCausalLM; rows tokenized and packed into blocks of max_length (the HF course's
               group_texts); metric perplexity = exp(eval_loss), baseline the perplexity before training.
    seq2seq    columns {"source": col, "target": col}; an encoder-decoder (T5, BART, Marian…)
               AutoModelForSeq2SeqLM, teacher forcing through `labels` (DataCollatorForSeq2Seq builds the shifted
               decoder inputs), Seq2SeqTrainer with predict_with_generate; ROUGE-1/2/L against the "lead" baseline.

Baselines and metrics live in core.training.generation_metrics; generation from a finished run (`generate`) and
the pipeline code in core.training.generation_tools; the export script in core.training.generation_export.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.training.config import ConfigError, TrainingConfig
from core.training.data import cap, hold_out, open_dataset
from core.training.generation_metrics import (  # noqa: F401 - part of this module's API
    eval_perplexity,
    lead,
    lead_baseline,
    mean_rouge,
    perplexity,
    perplexity_trainer,
    rouge_metrics,
    unigram_perplexity,
)
from core.training.tasks import TaskSetup

IGNORED = -100  # the label the loss skips (padding, and the first token of a causal block)
# Packing is the default for causal LM: rows are joined (an end-of-text token between them) and cut into blocks of
# exactly max_length tokens, so no step computes on padding (short rows like reviews would be mostly padding), every
# token is predicted with up to max_length tokens of context, and, all blocks being equal, the Trainer's eval_loss
# (a mean of per-batch means weighted by rows) is exactly the mean loss per predicted token: exp(eval_loss) is the
# true per-token perplexity. The price: a block may start mid-row and span two rows. Padding
# (`TrainingConfig.packing = False`: one row per example, an end-of-text token after it, cut to max_length, padded per
# batch) keeps rows apart; the Trainer's eval_loss then averages each batch's per-token mean (weighted by rows), so
# exp(eval_loss) is close to, not exactly, the per-token perplexity.
PACKING = True
GROUP_ROWS = 1000  # rows per datasets.map batch when packing: the tokens left over after each 1000 rows are dropped


@dataclass
class Prepared:
    """Tokenized splits and what the baselines need; `labels` is [] (no classes)."""

    task: str
    train: Any  # datasets.Dataset of model inputs: packed blocks / rows (causal), rows with labels (seq2seq)
    eval: Any
    tokenizer: Any
    packing: bool = False
    baseline: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    labels: list = field(default_factory=list)

    @property
    def train_rows(self) -> int:
        return len(self.train)

    @property
    def eval_rows(self) -> int:
        return len(self.eval)


# --- the model's kind ---------------------------------------------------------------------------------------------

def model_kind(model_config) -> str:
    """"encoder-decoder", "decoder", "encoder" or "unknown", from a transformers config (no weights read)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    t = getattr(model_config, "model_type", None)
    if getattr(model_config, "is_encoder_decoder", False) or t in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return "encoder-decoder"
    # BERT-likes also have a causal head (BertLMHeadModel, for use inside an encoder-decoder): a masked-LM
    # head says the checkpoint was trained as a bidirectional encoder
    if t in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        return "encoder"
    return "decoder" if t in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else "unknown"


def check_model(task: str, model_path: str):
    """The checkpoint's config, refused (ConfigError "model") when its architecture can't do the task."""
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError) as e:
        raise ConfigError("model", f"can't read the model config at {model_path}: {e}") from None
    kind, t = model_kind(cfg), cfg.model_type
    if task == "seq2seq" and kind != "encoder-decoder":
        raise ConfigError("model", f"{model_path} is a {t} {kind if kind != 'unknown' else 'model'}; "
                          "sequence-to-sequence needs an encoder-decoder checkpoint (T5, BART, Marian…)")
    if task == "causal-lm" and kind != "decoder":
        raise ConfigError("model", f"{model_path} is a {t} {kind if kind != 'unknown' else 'model'}; causal language "
                          "modelling needs a decoder-only checkpoint (GPT-2-style, or a tiny GPT from Build a network)")
    if task == "seq2seq":
        start = getattr(cfg, "decoder_start_token_id", None)
        if start is None:
            raise ConfigError("model", f"{model_path} has no decoder_start_token_id in its config: the decoder "
                              "can't be fed its first input")
    return cfg


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model_path)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError("model", f"{model_path} has no tokenizer that loads ({type(e).__name__}): save one beside "
                          "the model with tokenizer.save_pretrained(folder)") from None
    if tok.pad_token_id is None:  # GPT-2 has none: its end-of-text token pads (the usual recipe)
        if tok.eos_token is None:
            raise ConfigError("model", f"the tokenizer of {model_path} has neither a padding nor an end-of-text token")
        tok.pad_token = tok.eos_token
    return tok


def end_token(tok) -> int | None:
    """The token that ends a text: eos, else BERT's [SEP]."""
    return tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id


# --- data ---------------------------------------------------------------------------------------------------------

def load_rows(config: TrainingConfig, settings: Settings):
    """(train, eval, eval split name) raw datasets, capped by max_*_samples; ConfigError names the field."""
    dd, train_name, eval_name = open_dataset(config, settings)
    train = dd[train_name]
    if eval_name:
        ev = dd[eval_name]
    else:
        (train, ev), eval_name = hold_out(train, config), "held-out"
    train, ev = cap(train, ev, config)
    if len(train) == 0 or len(ev) == 0:
        raise ConfigError("dataset", f"{config.dataset} has an empty {'train' if len(train) == 0 else eval_name} split")
    return train, ev, eval_name


def check_texts(values, role: str, split: str, allow_empty: bool = False) -> None:
    """Every value a string (and not blank unless allowed); ConfigError names the column role and the row."""
    where = "" if split == "train" else f" of the {split} split"
    what = {"target": "the target", "source": "the source", "text": "the text"}.get(role, role)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ConfigError(f"columns.{role}", f"row {i}{where}: {what} is not text ({type(v).__name__} {v!r:.40})")
        if not allow_empty and not v.strip():
            raise ConfigError(f"columns.{role}", f"row {i}{where}: {what} is empty")


def group_texts(batch: dict, block_size: int) -> dict:
    """The HF course's group_texts: concatenate the batch's token lists, cut them into blocks of block_size
    (the remainder is dropped), labels = input_ids (the model shifts them by one inside its loss)."""
    joined = {k: sum(batch[k], []) for k in ("input_ids", "attention_mask")}
    total = len(joined["input_ids"]) // block_size * block_size
    out = {k: [v[i:i + block_size] for i in range(0, total, block_size)] for k, v in joined.items()}
    out["labels"] = [list(b) for b in out["input_ids"]]
    return out


def lm_dataset(ds, column: str, tokenizer, max_length: int, packing: bool):
    """Rows of text -> packed blocks of max_length (packing) or one row per example cut to max_length (padding),
    with `length`. Blank rows are skipped either way."""
    end = end_token(tokenizer)

    def encode(batch):
        texts = [t for t in batch[column] if t.strip()]
        # the whole row, an end-of-text token after it: the model sees where a row ends
        ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
        ids = [x if x and x[-1] == end or end is None else x + [end] for x in ids]
        if not packing:  # a row longer than max_length is cut (and so has no end-of-text token)
            ids = [x[:max_length] for x in ids]
        return {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids]}

    out = ds.map(encode, batched=True, remove_columns=ds.column_names, keep_in_memory=True)
    if packing:
        return out.map(group_texts, batched=True, batch_size=GROUP_ROWS, fn_kwargs={"block_size": max_length},
                       keep_in_memory=True)
    return out.map(lambda b: {"length": [len(x) for x in b["input_ids"]]}, batched=True, keep_in_memory=True)


class PadCollator:
    """Padding for causal LM rows: pad to the batch's longest, labels = input_ids with padding as -100.

    Unlike DataCollatorForLanguageModeling(mlm=False), which ignores every label equal to the padding id, it
    masks by position: a GPT-2-style tokenizer pads with its end-of-text token, and each row's real end-of-text
    token would otherwise drop out of the loss."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict]) -> dict:
        rows = [{k: f[k] for k in ("input_ids", "attention_mask")} for f in features]
        batch = self.tokenizer.pad(rows, return_tensors="pt")
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORED)
        return dict(batch)


def seq2seq_dataset(ds, config: TrainingConfig, tokenizer):
    """Sources truncated to max_length, targets to max_target_length as `labels` (padded later with -100)."""
    src, tgt = config.columns["source"], config.columns["target"]

    def encode(batch):
        enc = tokenizer(batch[src], truncation=True, max_length=config.max_length, return_token_type_ids=False)
        enc["labels"] = tokenizer(text_target=batch[tgt], truncation=True,
                                  max_length=config.max_target_length)["input_ids"]
        enc["length"] = [len(x) for x in enc["input_ids"]]
        return enc

    return ds.map(encode, batched=True, remove_columns=ds.column_names, keep_in_memory=True)


# --- the task contract -------------------------------------------------------------------------------------------

def prepare(config: TrainingConfig, settings: Settings, model_path: str) -> Prepared:
    """Every check before launch: the model's kind, the columns, each value, the token budget."""
    mcfg = check_model(config.task, model_path)
    train, ev, eval_name = load_rows(config, settings)
    tok = load_tokenizer(model_path)
    if config.task == "causal-lm":
        col = config.columns["text"]
        check_texts(train[col], "text", "train", allow_empty=True)
        check_texts(ev[col], "text", eval_name, allow_empty=True)
        packing = bool(getattr(config, "packing", PACKING))
        tr, te = (lm_dataset(d, col, tok, config.max_length, packing) for d in (train, ev))
        for name, d, rows in (("training", tr, train), ("evaluation", te, ev)):
            if len(d) == 0 and not packing:
                raise ConfigError("columns.text", f"every row of the {name} split ({len(rows)}) is blank")
            if len(d) == 0:
                raise ConfigError("max_length", f"the {name} rows ({len(rows)}) hold fewer tokens than one block of "
                                  f"{config.max_length}: lower max_length, use more rows, or pad instead of packing")
        baseline = {"unigram_perplexity": unigram_perplexity(tr["input_ids"], te["input_ids"], len(tok))}
        return Prepared("causal-lm", tr, te, tok, packing, baseline)
    src, tgt = config.columns["source"], config.columns["target"]
    for d, split in ((train, "train"), (ev, eval_name)):
        check_texts(d[src], "source", split)
        check_texts(d[tgt], "target", split)
    limit = getattr(mcfg, "max_position_embeddings", None)
    if limit and config.max_target_length > limit:
        raise ConfigError("max_target_length", f"{config.max_target_length} is above this model's limit of {limit}")
    return Prepared("seq2seq", seq2seq_dataset(train, config, tok), seq2seq_dataset(ev, config, tok), tok,
                    baseline=lead_baseline(train, ev, src, tgt))


def setup(config: TrainingConfig, model_path: str, prepared: Prepared, out: Path) -> TaskSetup:
    tok = prepared.tokenizer
    if prepared.task == "causal-lm":
        from transformers import AutoModelForCausalLM, default_data_collator

        model = AutoModelForCausalLM.from_pretrained(model_path)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tok.pad_token_id
        if getattr(model, "loss_type", None) is None:
            # transformers 5 names the loss from the class: "GPT2LMHeadModel" matches no *ForCausalLM, so loss_type is
            # None (the loss still defaults to ForCausalLMLoss), and the Trainer, which counts the tokens a causal
            # loss averages over as labels[..., 1:] only when loss_type says so, counted every label: each loss was
            # divided by T instead of T - 1 tokens per row (eval_loss 9.02 for a true 9.62 on 16-token blocks)
            model.loss_type = "ForCausalLM"
        # packed blocks are all max_length long and carry their labels: nothing to pad (run_clm.py's collator).
        # DataCollatorForLanguageModeling would also set every pad-id token's label to -100, and GPT-2-style
        # tokenizers pad with their end-of-text token: every row boundary would drop out of the loss.
        collator = default_data_collator if prepared.packing else PadCollator(tok)
        before = eval_perplexity(model, prepared.eval, collator, config.batch_size * 2)
        return TaskSetup(model, prepared.train, prepared.eval, collator, None, processing_class=tok,
                         info={"packing": prepared.packing, "block_size": config.max_length},
                         baseline={"perplexity_before": before} | prepared.baseline,
                         trainer_class=perplexity_trainer())
    from transformers import (
        AutoModelForSeq2SeqLM,
        DataCollatorForSeq2Seq,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
    )

    model = AutoModelForSeq2SeqLM.from_pretrained(model_path)
    collator = DataCollatorForSeq2Seq(tok, model=model, label_pad_token_id=IGNORED)
    return TaskSetup(model, prepared.train, prepared.eval, collator, rouge_metrics(tok), processing_class=tok,
                     info={"max_target_length": config.max_target_length}, baseline=prepared.baseline,
                     trainer_class=Seq2SeqTrainer, args_class=Seq2SeqTrainingArguments,
                     args={"predict_with_generate": True, "generation_max_length": config.max_target_length})


def extra_models(runs, task: str = "causal-lm") -> dict[str, str]:
    """Decoders offline: completed tiny-GPT runs of Build a network (a GPT2LMHeadModel subclass whose folder
    says model_type "gpt2": AutoModelForCausalLM loads it as GPT2LMHeadModel with its trained BPE tokenizer).
    A from-scratch seq2seq run reads symbol ids, not text, so none serves seq2seq."""
    out = {}
    if task == "seq2seq":
        return out
    for r in runs:
        if (r.status == "completed" and r.model_dir and r.config.get("task") == "scratch"
                and (r.config.get("architecture") or {}).get("kind") == "gpt"):
            out[f"tiny GPT run {r.id} · {r.name}"] = f"run:{r.id}"
    return out


def summarizer_models(runs) -> dict[str, str]:
    """Label -> saved model folder of every completed seq2seq run: the models a summarise / translate page can
    offer (generate with core.training.generation_tools.generate(folder, text, settings))."""
    return {f"run {r.id} · {r.name}": r.model_dir for r in runs
            if r.status == "completed" and r.model_dir and r.config.get("task") == "seq2seq"}

