"""The eval split of a run as model-ready batches, per task, and how to score a model's outputs on them.

`core.training.shrink` measures every variant (fp32, int8, ONNX…) on the same `Bench`: the same batches, timed
the same way, scored by the same function. A `BENCHES[task]` builder reads the run's own eval split through the
task's module (`core.training.data`, `token_classification.prepare`, `extractive_qa.prepare`/`features`; the
generation tasks' benches are in `core.training.shrink_generation`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.settings import Settings
from core.training.config import TrainingConfig
from core.training.store import RunRecord


def eval_rows(run: RunRecord, settings: Settings, max_rows: int = 200) -> tuple[list, list[int]]:
    """(texts or (text, pair) tuples, class ids) of a text-classification run's eval split, at most `max_rows`."""
    from core.training.data import load_splits

    config = TrainingConfig.from_dict(run.config)
    ev = load_splits(config, settings).eval
    ev = ev.select(range(min(max_rows, len(ev))))
    texts = [str(t) if t is not None else "" for t in ev[config.text_column]]
    if config.text_pair_column:
        texts = list(zip(texts, [str(t) if t is not None else "" for t in ev[config.text_pair_column]],
                         strict=True))
    return texts, list(ev["labels"])


def encode(tokenizer, texts: list, max_length: int):
    """Texts, or (text, pair) tuples, as one padded batch of tensors."""
    if texts and isinstance(texts[0], tuple):
        a, b = zip(*texts, strict=True)
        return tokenizer(list(a), list(b), padding=True, truncation=True, max_length=max_length,
                         return_tensors="pt")
    return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def scores(labels: list[int], preds: list[int], k: int) -> tuple[float, float]:
    """(accuracy, macro F1 over the k classes), as the training metrics define them.

    >>> scores([0, 0, 1, 1], [0, 1, 1, 1], 2)
    (0.75, 0.7333333333333334)
    """
    from sklearn.metrics import accuracy_score, f1_score

    acc = float(accuracy_score(labels, preds))
    f1 = float(f1_score(labels, preds, average="macro", labels=list(range(k)), zero_division=0))
    return acc, f1


@dataclass
class Bench:
    """A task's eval rows as batches of model inputs, and how to score the models' outputs on them."""

    scoring: list[dict]  # batches of `batch_size` covering the eval rows
    single: list[dict]  # batch-1 latency inputs
    batched: list[dict]  # batch-N latency inputs
    outputs: list[str]  # the model outputs scored ("logits", or "start_logits" + "end_logits")
    score: Callable[[list[tuple]], tuple[dict[str, float], list]]  # per-batch outputs -> (metrics, predictions)
    rows: int
    unit: str = "example"
    notes: list[str] = field(default_factory=list)
    # (batch index, the batch's outputs) -> what is kept of them: a causal LM's logits (rows × tokens × vocabulary,
    # too big to keep for every batch) become each label's log-probability and the argmax token; None keeps all
    reduce: Callable[[int, tuple], tuple] | None = None
    compared: int | None = None  # how many leading outputs "max output diff" compares (None: all, 0: none)
    wrap: Callable | None = None  # model -> what is scored and timed (a seq2seq model's generate()), None: itself
    no_onnx: str = ""  # why ONNX isn't offered for this task ("" when it is)


def inputs(enc, tokenizer) -> dict:
    """The model inputs of a tokenizer's output (no labels, offsets or lengths)."""
    return {k: enc[k] for k in tokenizer.model_input_names if k in enc}


def _classification(run: RunRecord, settings: Settings, tokenizer, max_rows: int, latency_rows: int, batch_size: int) -> Bench:
    import numpy as np

    config = TrainingConfig.from_dict(run.config)
    texts, labels = eval_rows(run, settings, max_rows)
    if not texts:
        raise ValueError(f"run {run.id}'s eval split is empty")
    k = len(run.plan.get("labels") or []) or (max(labels) + 1)
    n, bs, ml = len(texts), batch_size, config.max_length
    scoring = [inputs(encode(tokenizer, texts[b:b + bs], ml), tokenizer) for b in range(0, n, bs)]
    single = [inputs(encode(tokenizer, [t], ml), tokenizer) for t in texts[:latency_rows]]

    def score(outs):
        preds = [int(p) for o in outs for p in np.asarray(o[0]).argmax(-1)]
        acc, f1 = scores(labels, preds, k)
        return {"accuracy": acc, "macro F1": f1}, preds

    return Bench(scoring, single, scoring[:2], ["logits"], score, n)


def _token_classification(run: RunRecord, settings: Settings, tokenizer, max_rows: int, latency_rows: int, batch_size: int) -> Bench:
    import numpy as np

    from core.training import token_classification as tc
    from core.training.entities import entity_scores

    config = TrainingConfig.from_dict(run.config)
    prepared = tc.prepare(config, settings, str(run.model_dir))
    names = run.plan.get("labels") or prepared.labels
    if list(names) != list(prepared.labels):
        raise ValueError(f"the dataset's tags changed since run {run.id} trained ({prepared.labels} now, "
                         f"{names} then)")
    ev = prepared.eval.select(range(min(max_rows, len(prepared.eval))))
    words, tags = list(ev["tokens"]), list(ev["tags"])
    if not words:
        raise ValueError(f"run {run.id}'s eval split is empty")

    def encode(rows: range):
        enc = tokenizer([words[i] for i in rows], is_split_into_words=True, truncation=True,
                        max_length=config.max_length, padding=True, return_tensors="pt")
        seq = enc["input_ids"].shape[1]
        gold = [tc.align(enc.word_ids(j), tags[i]) for j, i in enumerate(rows)]
        return inputs(enc, tokenizer), [g + [tc.IGNORED] * (seq - len(g)) for g in gold]

    n, bs = len(words), batch_size
    encoded = [encode(range(b, min(n, b + bs))) for b in range(0, n, bs)]
    scoring, gold = [e[0] for e in encoded], [e[1] for e in encoded]
    single = [encode(range(i, i + 1))[0] for i in range(min(n, latency_rows))]

    def score(outs):
        true, pred, flat = [], [], []
        for o, g in zip(outs, gold, strict=True):
            p = np.asarray(o[0]).argmax(-1)
            for p_row, g_row in zip(p, np.asarray(g), strict=True):
                keep = g_row != tc.IGNORED
                true.append([names[i] for i in g_row[keep]])
                pred.append([names[i] for i in p_row[keep]])
                flat.extend(int(i) for i in p_row[keep])
        s = entity_scores(true, pred)
        return {"entity F1": s["f1"], "token accuracy": s["accuracy"]}, flat

    return Bench(scoring, single, scoring[:2], ["logits"], score, n,
                  notes=["a prediction is the tag of each word's first sub-token (the one trained); agreement is "
                         "over those words"])


def _question_answering(run: RunRecord, settings: Settings, tokenizer, max_rows: int, latency_rows: int, batch_size: int) -> Bench:
    import numpy as np
    import torch

    from core.training import extractive_qa as qa
    from core.training import squad

    config = TrainingConfig.from_dict(run.config)
    prepared = qa.prepare(config, settings, str(run.model_dir))
    ev = prepared.eval.select(range(min(max_rows, len(prepared.eval))))
    questions, contexts, answers = list(ev["question"]), list(ev["context"]), list(ev["answers"])
    if not questions:
        raise ValueError(f"run {run.id}'s eval split is empty")
    f = qa.features(tokenizer, questions, contexts, answers, config.max_length)  # padded to max_length
    keys = [k for k in tokenizer.model_input_names if k in f]
    w, bs = len(f["input_ids"]), batch_size

    def batch(a: int, b: int) -> dict:
        return {k: torch.tensor(f[k][a:b], dtype=torch.long) for k in keys}

    scoring = [batch(b, min(w, b + bs)) for b in range(0, w, bs)]
    single = [batch(i, i + 1) for i in range(min(w, latency_rows))]
    golds = [a["text"] for a in answers]

    def score(outs):
        start = np.concatenate([np.asarray(o[0]) for o in outs])
        end = np.concatenate([np.asarray(o[1]) for o in outs])
        best = squad.best_spans(start, end, f["example_id"], f["offset_mapping"], contexts)
        m = squad.squad_v1([b[0] for b in best], golds)
        return {"exact match": m["exact_match"], "F1": m["f1"]}, [(b[1], b[2]) for b in best]

    return Bench(scoring, single, scoring[:2], ["start_logits", "end_logits"], score, len(questions),
                  unit="window",
                  notes=[f"{len(questions)} questions in {w} windows of {config.max_length} tokens (padded, as the "
                         "run evaluated them); latency is per window; a prediction is a question's best span, "
                         "EM / F1 are SQuAD v1.1's in %"])


# task -> builder(run, settings, tokenizer, max_rows, latency_rows, batch_size) -> Bench; the generation
# tasks' builder (core.training.shrink_generation, which uses Bench from here) is added in core.training.shrink
BENCHES = {"text-classification": _classification, "token-classification": _token_classification,
           "question-answering": _question_answering}
