"""Token classification (named entities): a tag per word, learnt by a pretrained encoder.

The data is a tokens column (a list of words per row) and a tags column (a list of BIO tags per row, or
a `List(ClassLabel)` of ids). A word split into several sub-tokens is labelled on its first sub-token
only; the other sub-tokens and the special tokens get -100, which the loss and the metrics skip (the
Hugging Face course's rule). Scores are entity-level precision / recall / F1 (`core.training.entities`,
seqeval's definition) and token accuracy, against an "everything O" baseline.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from core.training.config import ConfigError, TrainingConfig
from core.training.data import cap, hold_out, open_dataset
from core.training.entities import BIO_TAG, entities, entity_scores
from core.training.tasks import MappedExample, TaskSetup

IGNORED = -100  # the label of sub-tokens that are not a word's first, and of special tokens
_WORD = re.compile(r"\w+(?:[-']\w+)*|[^\w\s]")  # how "try it" splits a typed sentence into words


@dataclass
class Prepared:
    """The checked splits: `tokens` (list of words) and `tags` (list of label ids into `labels`) per row."""

    train: object  # datasets.Dataset
    eval: object
    labels: list[str]  # "O" first, then sorted

    @property
    def train_rows(self) -> int:
        return len(self.train)

    @property
    def eval_rows(self) -> int:
        return len(self.eval)


def prepare(config: TrainingConfig, settings: Settings, model_path: str) -> Prepared:
    """Open the dataset, check every row (ConfigError names the field and the row), split, encode tags."""
    import datasets

    dd, train_name, eval_name = open_dataset(config, settings)
    tok_col, tag_col = config.columns["tokens"], config.columns["tags"]
    parts = {train_name: dd[train_name]} | ({eval_name: dd[eval_name]} if eval_name else {})
    rows = {}
    for name, ds in parts.items():
        if len(ds) == 0:
            raise ConfigError("dataset", f"the {name!r} split of {config.dataset} is empty")
        rows[name] = _checked_rows(ds, tok_col, tag_col, name if len(parts) > 1 else "")
    used = {t for tokens_tags in rows.values() for _, tags in tokens_tags for t in tags}
    names = _tag_names(dd[train_name].features[tag_col])
    labels = label_list(used | set(names or ()))
    index = {t: i for i, t in enumerate(labels)}
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                  "tags": datasets.List(datasets.ClassLabel(names=labels))})

    def encoded(pairs):
        return datasets.Dataset.from_dict({"tokens": [w for w, _ in pairs],
                                           "tags": [[index[t] for t in tags] for _, tags in pairs]},
                                          features=features)

    train = encoded(rows[train_name])
    if eval_name:
        ev = encoded(rows[eval_name])
    else:
        train, ev = hold_out(train, config)
    train, ev = cap(train, ev, config)
    if not any(t for tags in train["tags"] for t in tags):
        raise ConfigError("columns.tags", f"every training tag in {tag_col!r} is 'O': there is no entity "
                          "to learn")
    return Prepared(train, ev, labels)


def _tag_names(feature) -> list[str] | None:
    """A `List(ClassLabel)` column's tag names, else None (the tags are strings)."""
    from datasets import ClassLabel

    inner = getattr(feature, "feature", None)
    return list(inner.names) if isinstance(inner, ClassLabel) else None


def _checked_rows(ds, tok_col: str, tag_col: str, split: str) -> list[tuple[list[str], list[str]]]:
    """(words, tag strings) per row; the first bad row raises ConfigError with its field and row number."""
    names = _tag_names(ds.features[tag_col])
    where = f" of {split!r}" if split else ""
    out = []
    for i, (words, tags) in enumerate(zip(ds[tok_col], ds[tag_col], strict=True)):
        row = f"row {i}{where}"
        if not isinstance(words, list):
            raise ConfigError("columns.tokens", f"{row}: {tok_col!r} must hold a list of words, got "
                              f"{type(words).__name__} {_short(words)}")
        if not isinstance(tags, list):
            raise ConfigError("columns.tags", f"{row}: {tag_col!r} must hold a list of tags, got "
                              f"{type(tags).__name__} {_short(tags)}")
        for j, w in enumerate(words):
            if not isinstance(w, str) or not w.strip():
                raise ConfigError("columns.tokens", f"{row}, word {j}: every token must be non-empty text, got "
                                  f"{_short(w)} ({type(w).__name__})")
        if len(words) != len(tags):
            raise ConfigError("columns.tags", f"{row}: {len(words)} tokens but {len(tags)} tags")
        if names is not None:
            tags = [names[t] for t in tags]
        for j, t in enumerate(tags):
            if not isinstance(t, str) or not BIO_TAG.match(t):
                raise ConfigError("columns.tags", f"{row}, word {j}: {_short(t)} is not a BIO tag (O, B-TYPE "
                                  "or I-TYPE)" + (": whole-number tags need a ClassLabel naming them"
                                                  if isinstance(t, int) else ""))
        out.append((words, tags))
    return out


def _short(v, n: int = 40) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 1] + "…"


def label_list(tags) -> list[str]:
    """"O" first, then every B- and I- of each entity type seen (the model can then tag any entity with
    more than one word, even one whose I- never appears in training), sorted."""
    kinds = {t[2:] for t in tags if t != "O"}
    return ["O", *sorted(f"{p}-{k}" for k in kinds for p in "BI")]


def align(word_ids: list[int | None], word_tags: list[int]) -> list[int]:
    """The label of each sub-token: the word's tag on its first sub-token, IGNORED elsewhere."""
    out, prev = [], None
    for w in word_ids:
        out.append(IGNORED if w is None or w == prev else word_tags[w])
        prev = w
    return out


def _tokenizer(model_path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    if not tok.is_fast:
        raise ConfigError("model", "token classification needs a fast tokenizer (its word_ids map sub-tokens "
                          "to words); this model has only a slow one")
    return tok


def tokenize(ds, tokenizer, max_length: int, cache_file: str | None = None):
    """Sub-tokens of the words (truncated to max_length, padded per batch later) with aligned labels."""

    def enc(batch):
        out = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        out["labels"] = [align(out.word_ids(i), tags) for i, tags in enumerate(batch["tags"])]
        out["length"] = [len(x) for x in out["input_ids"]]
        return out

    kwargs = {"cache_file_name": cache_file} if cache_file else {"keep_in_memory": True}
    return ds.map(enc, batched=True, remove_columns=ds.column_names, **kwargs)


def metrics_fn(labels: list[str]):
    """EvalPrediction -> entity precision / recall / F1, token accuracy and the per-entity table, over the
    labelled positions (each word's first sub-token, as trained)."""
    import numpy as np

    def compute(eval_pred) -> dict:
        logits, gold = eval_pred.predictions, eval_pred.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        preds = np.asarray(logits).argmax(-1)
        true_tags, pred_tags = [], []
        for p_row, g_row in zip(preds, np.asarray(gold), strict=True):
            keep = g_row != IGNORED
            true_tags.append([labels[i] for i in g_row[keep]])
            pred_tags.append([labels[i] for i in p_row[keep]])
        return entity_scores(true_tags, pred_tags)

    return compute


def setup(config: TrainingConfig, model_path: str, prepared: Prepared, out: Path) -> TaskSetup:
    """The encoder with a fresh tagging head, the aligned splits, the padding collator and the metrics."""
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification

    tokenizer = _tokenizer(model_path)
    train = tokenize(prepared.train, tokenizer, config.max_length, str(out / "train-tokens.arrow"))
    ev = tokenize(prepared.eval, tokenizer, config.max_length, str(out / "eval-tokens.arrow"))
    labels = prepared.labels
    model = AutoModelForTokenClassification.from_pretrained(
        model_path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)}, ignore_mismatched_sizes=True)
    scored = [y for row in ev["labels"] for y in row if y != IGNORED]
    all_o = sum(y == 0 for y in scored) / len(scored) if scored else 0.0
    return TaskSetup(model, train, ev, DataCollatorForTokenClassification(tokenizer), metrics_fn(labels),
                     processing_class=tokenizer, info={"labels": labels},
                     baseline={"all_o_accuracy": all_o, "all_o_f1": 0.0})


def aligned_row(config: TrainingConfig, settings: Settings, model_path: str, split: str = "train",
                row: int = 0, prepared: Prepared | None = None) -> MappedExample:
    """One row of a split as the model sees it: one table row per sub-token, with its word and label."""
    prepared = prepared or prepare(config, settings, model_path)
    ds = prepared.train if split == "train" else prepared.eval
    if not 0 <= row < len(ds):
        raise ConfigError("row", f"the {split} split has rows 0 to {len(ds) - 1}, not {row}")
    words, tags = ds[row]["tokens"], ds[row]["tags"]
    tokenizer = _tokenizer(model_path)
    enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=config.max_length)
    word_ids = enc.word_ids()
    labels = align(word_ids, tags)
    table = [{"sub-token": t, "word index": w, "word": None if w is None else words[w], "label id": y,
              "label": "-100 (ignored)" if y == IGNORED else prepared.labels[y], "attention mask": m}
             for t, w, y, m in zip(tokenizer.convert_ids_to_tokens(enc["input_ids"]), word_ids, labels,
                                   enc["attention_mask"], strict=True)]
    seen = {w for w in word_ids if w is not None}
    notes = [f"Row {row} of the {split} split: {len(words)} words → {len(word_ids)} sub-tokens. Each word's "
             "label goes on its first sub-token; its other sub-tokens and the special tokens get -100, which the "
             "loss and the scores skip."]
    if len(seen) < len(words):
        notes.append(f"Truncated at max_length {config.max_length}: the last {len(words) - len(seen)} of "
                     f"{len(words)} words are cut, so they are neither trained nor scored.")
    else:
        notes.append(f"Nothing truncated: the row fits in max_length {config.max_length}.")
    return MappedExample(table, notes)


def mapped_example(config: TrainingConfig, settings: Settings, model_path: str) -> MappedExample:
    """The first training row as the model sees it (the launch form's preview; also runs every data check)."""
    return aligned_row(config, settings, model_path, "train", 0)


def split_words(text: str) -> list[tuple[str, int, int]]:
    """A typed sentence as (word, start, end) with character offsets: runs of letters / digits, and each
    punctuation mark alone (CoNLL's tokenisation)."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def load_tagger(model_dir: str):
    """(model, tokenizer) of a saved token-classification model, on CPU in eval mode."""
    from transformers import AutoModelForTokenClassification

    if not model_dir or not Path(model_dir, "config.json").is_file():
        raise ValueError(f"no saved model at {model_dir!r}: finish or resume the run first")
    return AutoModelForTokenClassification.from_pretrained(model_dir).eval(), _tokenizer(model_dir)


def predict(run_record, text_or_words, tagger=None) -> list[dict]:
    """Entities the run's model finds in a sentence (a string, or a list of words joined by spaces):
    [{"entity", "text", "start", "end", "score"}] with character offsets into the sentence."""
    import torch

    if isinstance(text_or_words, str):
        text, spans = text_or_words, split_words(text_or_words)
    else:
        text, spans, pos = " ".join(text_or_words), [], 0
        for w in text_or_words:
            spans.append((w, pos, pos + len(w)))
            pos += len(w) + 1
    if not spans:
        return []
    model, tokenizer = tagger or load_tagger(run_record.model_dir)
    enc = tokenizer([w for w, _, _ in spans], is_split_into_words=True, truncation=True,
                    max_length=min(512, getattr(model.config, "max_position_embeddings", 512)), return_tensors="pt")
    with torch.no_grad():
        probs = model(**enc).logits[0].softmax(-1)
    id2label = model.config.id2label
    first = {}  # word -> its first sub-token's position: the one that was trained
    for pos, w in enumerate(enc.word_ids(0)):
        if w is not None and w not in first:
            first[w] = pos
    words = sorted(first)  # words past the model's length are cut
    tags = [id2label[int(probs[first[w]].argmax())] for w in words]
    out = []
    for kind, a, b in entities(tags):
        score = float(sum(probs[first[words[i]]].max() for i in range(a, b + 1)) / (b - a + 1))
        start, end = spans[words[a]][1], spans[words[b]][2]
        out.append({"entity": kind, "text": text[start:end], "start": start, "end": end, "score": score})
    return out


def pipeline_code(model_dir: str) -> str:
    """The same model through transformers' own pipeline."""
    # "first": a word takes its first sub-token's tag, the one trained (the others were -100); "simple" would
    # group sub-tokens by their own, untrained, tags and could split a word in two
    return (f'from transformers import pipeline\n\ntagger = pipeline("token-classification", model={model_dir!r},\n'
            f'                  aggregation_strategy="first")\nprint(tagger("Angela Merkel visited Paris."))\n')


SCRIPT = '''\
"""Reproduce Torch Lab run {run_id!r} with plain transformers: {name} (token classification).

Run it with the same packages as Torch Lab (requirements.txt): python {filename}
"""
import numpy as np
from datasets import ClassLabel, load_from_disk
from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                          Trainer, TrainingArguments, set_seed)

MODEL = {model_path!r}
DATA = {data_path!r}  # a datasets.DatasetDict saved with save_to_disk
TOKENS, TAGS = {tokens!r}, {tags!r}
LABELS = {labels!r}
OUTPUT = {output!r}

set_seed({seed})
data = load_from_disk(DATA)
train = data["train"] if "train" in data else data[list(data)[0]]
evaluation = next((data[s] for s in ("validation", "test", "eval") if s in data and data[s] is not train), None)


def encode_tags(ds):
    """Words in `tokens`, their tags as ids into LABELS in `tags` (a ClassLabel's ids go through its names)."""
    index = {{name: i for i, name in enumerate(LABELS)}}
    inner = getattr(ds.features[TAGS], "feature", None)
    names = inner.names if isinstance(inner, ClassLabel) else None
    return ds.map(lambda b: {{"tokens": b[TOKENS], "tags": [[index[names[t] if names else t] for t in row]
                                                            for row in b[TAGS]]}},
                  batched=True, remove_columns=ds.column_names)


train = encode_tags(train)
if evaluation is None:
    parts = train.train_test_split(test_size=max(1, round(len(train) * {eval_fraction})), seed={seed})
    train, evaluation = parts["train"], parts["test"]
else:
    evaluation = encode_tags(evaluation)
{limits}
tokenizer = AutoTokenizer.from_pretrained(MODEL)


def tokenize_and_align(batch):
    """A word's tag on its first sub-token; -100 (ignored by the loss) on the rest and on special tokens."""
    out = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length={max_length})
    out["labels"] = []
    for i, tags in enumerate(batch["tags"]):
        previous, labels = None, []
        for word in out.word_ids(i):
            labels.append(-100 if word is None or word == previous else tags[word])
            previous = word
        out["labels"].append(labels)
    return out


train = train.map(tokenize_and_align, batched=True, remove_columns=train.column_names)
evaluation = evaluation.map(tokenize_and_align, batched=True, remove_columns=evaluation.column_names)

model = AutoModelForTokenClassification.from_pretrained(
    MODEL, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
    label2id={{n: i for i, n in enumerate(LABELS)}}, ignore_mismatched_sizes=True)


# entity-level scores as seqeval computes them (pip install seqeval gives the same numbers)
{entity_code}

def compute_metrics(eval_pred):
    preds = np.argmax(eval_pred.predictions, axis=-1)
    true, pred = [], []
    for p, g in zip(preds, eval_pred.label_ids):
        keep = g != -100
        true.append([LABELS[i] for i in g[keep]])
        pred.append([LABELS[i] for i in p[keep]])
    scores = entity_scores(true, pred)
    return {{k: v for k, v in scores.items() if k != "per_entity"}}


{arguments}trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                  processing_class=tokenizer, data_collator=DataCollatorForTokenClassification(tokenizer),
                  compute_metrics=compute_metrics)
result = trainer.train()
print("train", result.metrics)
print("eval", trainer.evaluate())
trainer.save_model(OUTPUT + "/model")
'''


def export_script(config: TrainingConfig, settings: Settings, run_id: str = "new", labels=None,
                  eval_steps: int | None = None, output: str = "reproduced-run") -> str:
    """A standalone Trainer script for this run. The TrainingArguments (and a torch schedule's Trainer
    subclass) come from the text-classification export, so both scripts set the same fields the same way."""
    import inspect

    from core.data.store import DatasetStore
    from core.training import entities as entity_module
    from core.training.export import export_script as classification_script
    from core.training.runner import plan

    p = plan(config, settings)
    ref = DatasetStore(settings.datasets_dir).ref(config.dataset, config.dataset_version)
    base = classification_script(config, settings, run_id, labels, eval_steps, output)
    arguments = base[base.index("args = TrainingArguments("): base.index("trainer = Trainer(")]
    limits = ""
    if config.max_train_samples:
        limits += f"train = train.select(range(min({config.max_train_samples}, len(train))))\n"
    if config.max_eval_samples:
        limits += f"evaluation = evaluation.select(range(min({config.max_eval_samples}, len(evaluation))))\n"
    entity_code = "\n\n".join(inspect.getsource(f) for f in (entity_module.entities, entity_module.entity_scores))
    return SCRIPT.format(
        run_id=run_id, name=config.display_name(), filename=f"train_{run_id}.py", model_path=p.model_path,
        data_path=str((ref.path / "data").resolve()), tokens=config.columns["tokens"], tags=config.columns["tags"],
        labels=list(labels or []), output=output, seed=config.seed, eval_fraction=config.eval_fraction,
        limits=limits, max_length=config.max_length, entity_code=entity_code, arguments=arguments)


def batch_tag(run_record, sentences, tagger=None, limit: int = 500) -> tuple[list[dict], float]:
    """Tag up to `limit` sentences (each a list of words) with the run's model: ([{"sentence", "entities"}],
    sentences per second), the way "try it" tags one; the throughput includes the word-to-span grouping."""
    import time

    tagger = tagger or load_tagger(run_record.model_dir)
    chosen = [list(map(str, words)) for words in list(sentences)[:limit]]
    t = time.perf_counter()
    rows = [{"sentence": " ".join(words),
             "entities": " · ".join(f"{e['text']} ({e['entity']})" for e in predict(run_record, words, tagger))}
            for words in chosen]
    seconds = time.perf_counter() - t
    return rows, (len(rows) / seconds if seconds > 0 else float("inf"))
