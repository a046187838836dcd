"""Extractive question answering (SQuAD): the answer is a span of the context, found by start/end logits.

Data: a question, a context and SQuAD answers `{"text": [...], "answer_start": [...]}` per row (a dict column,
or that dict as JSON text). Every row is checked before launch (`prepare`); an error names the column and row.

Preprocessing is the Hugging Face course's: question and context as a pair, only the context truncated
(`truncation="only_second"`), a long context cut into windows of `max_length` tokens overlapping by
`doc_stride(max_length)` tokens (`return_overflowing_tokens`), offsets kept to map tokens back to characters.
A training window is labelled with the answer's first and last token, or [CLS] for both when the answer is
not inside it. Evaluation maps every window's start/end logits back to text (n-best, at most 30 tokens,
`core.training.squad.best_spans`) and scores SQuAD v1.1 exact match and F1.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from core.training.config import ConfigError, TrainingConfig
from core.training.data import cap, hold_out, open_dataset
from core.training.tasks import MappedExample, TaskSetup

ROLES = ("question", "context", "answers")
FORMAT = ('answers: {"text": ["Paris"], "answer_start": [31]} per row (a dict column, or that dict as JSON '
          'text): each text exactly as it appears at character answer_start of the context')


def doc_stride(max_length: int) -> int:
    """Tokens two windows of a long context share: a quarter of the window (96 at the usual 384; the course
    uses 128 there). A fixed 128 would not fit small windows: the stride must stay below the context's room."""
    return max(1, max_length // 4)


@dataclass
class Prepared:
    """Checked train / eval rows with the columns renamed to the roles; answers as SQuAD dicts."""

    train: Any  # datasets.Dataset: question, context, answers, row
    eval: Any
    labels: list[str]
    baseline_words: int  # the first-N-words guess: N is the median gold answer length in training

    @property
    def train_rows(self) -> int:
        return len(self.train)

    @property
    def eval_rows(self) -> int:
        return len(self.eval)


# --- data ------------------------------------------------------------------------------------

def parse_answers(value: Any, where: str) -> dict:
    """A SQuAD answers value as {"text": [str], "answer_start": [int]}; ConfigError naming `where` if not."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError("columns.answers", f"{where}: {value[:60]!r} is not SQuAD answers; expected "
                              + FORMAT) from None
    if not isinstance(value, dict) or not {"text", "answer_start"} <= set(value):
        raise ConfigError("columns.answers", f"{where}: {str(value)[:60]!r} is not SQuAD answers; expected {FORMAT}")
    texts, starts = value["text"], value["answer_start"]
    if not isinstance(texts, (list, tuple)) or not isinstance(starts, (list, tuple)) or len(texts) != len(starts):
        raise ConfigError("columns.answers", f"{where}: text and answer_start must be lists of the same length")
    if not texts:
        raise ConfigError("columns.answers", f"{where}: no answer (SQuAD 2.0 unanswerable questions are not "
                          "supported: every row needs at least one answer)")
    for t, s in zip(texts, starts, strict=True):
        if not isinstance(t, str) or not t.strip():
            raise ConfigError("columns.answers", f"{where}: an answer text is empty")
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError("columns.answers", f"{where}: answer_start {s!r} is not a character position")
    return {"text": [str(t) for t in texts], "answer_start": [int(s) for s in starts]}


def check_row(question: Any, context: Any, answers: Any, where: str) -> dict:
    """The row's answers as a SQuAD dict, after every check of one row (ConfigError names field and row)."""
    if not isinstance(question, str) or not question.strip():
        raise ConfigError("columns.question", f"{where}: the question is empty")
    if not isinstance(context, str) or not context.strip():
        raise ConfigError("columns.context", f"{where}: the context is empty")
    ans = parse_answers(answers, where)
    for text, start in zip(ans["text"], ans["answer_start"], strict=True):
        found = context[start:start + len(text)]
        if found != text:
            raise ConfigError("columns.answers", f"{where}: answer {text!r} is not at character {start} of the "
                              f"context (found {found!r})")
    return ans


def _checked(ds, config: TrainingConfig, split: str):
    """The split with columns question, context, answers (SQuAD dicts) and row (its index in the split)."""
    import datasets

    c = config.columns
    q, ctx, a = list(ds[c["question"]]), list(ds[c["context"]]), list(ds[c["answers"]])
    answers = [check_row(q[i], ctx[i], a[i], f"{split} row {i}") for i in range(len(ds))]
    return datasets.Dataset.from_dict({"question": q, "context": ctx, "answers": answers,
                                       "row": list(range(len(ds)))})


def tokenizer_for(model_path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tok, "is_fast", False):
        raise ConfigError("model", "extractive QA needs a fast tokenizer (tokenizer.json): its character offsets "
                          "map the answer to tokens")
    return tok


def _check_questions(ds, tok, max_length: int, split: str) -> None:
    """A question must leave the context room for more than the stride in a window (the tokenizer's rule)."""
    room = max_length - tok.num_special_tokens_to_add(pair=True) - doc_stride(max_length)
    lengths = [len(x) for x in tok(list(ds["question"]), add_special_tokens=False)["input_ids"]]
    for i, n in enumerate(lengths):
        if n >= room:
            raise ConfigError("columns.question", f"{split} row {i}: the question is {n} tokens, leaving no room "
                              f"for the context in a {max_length}-token window with stride {doc_stride(max_length)}:"
                              " raise max_length or shorten the question")


def prepare(config: TrainingConfig, settings: Settings, model_path: str) -> Prepared:
    """Open, check every row of, and split the dataset (a context longer than the model is windowed, not refused)."""
    import statistics

    dd, train_name, eval_name = open_dataset(config, settings)
    if len(dd[train_name]) == 0:
        raise ConfigError("dataset", f"the {train_name!r} split of {config.dataset} is empty")
    tok = tokenizer_for(model_path)
    train = _checked(dd[train_name], config, train_name)
    _check_questions(train, tok, config.max_length, train_name)
    if eval_name:
        ev = _checked(dd[eval_name], config, eval_name)
        _check_questions(ev, tok, config.max_length, eval_name)
        if len(ev) == 0:
            raise ConfigError("dataset", f"the {eval_name!r} split of {config.dataset} is empty")
    else:
        train, ev = hold_out(train, config)
    train, ev = cap(train, ev, config)
    words = statistics.median(len(a["text"][0].split()) for a in list(train["answers"]))
    return Prepared(train, ev, [], max(1, round(words)))


# --- features --------------------------------------------------------------------------------

def features(tok, questions, contexts, answers, max_length: int, stride: int | None = None,
             padding: str | bool = "max_length") -> dict:
    """Windows of (question, context) with start/end token labels, and per window its example index and the
    context offsets (None for question, special and padding tokens), as the course's two preprocessors."""
    stride = doc_stride(max_length) if stride is None else stride
    q_first = tok.padding_side == "right"  # models that pad on the left (XLNet) read the context first
    enc = tok([q.lstrip() for q in questions] if q_first else contexts,  # the course strips the question's lead
              contexts if q_first else [q.lstrip() for q in questions],
              truncation="only_second" if q_first else "only_first", max_length=max_length, stride=stride,
              return_overflowing_tokens=True, return_offsets_mapping=True, padding=padding)
    ctx_id = 1 if q_first else 0
    out = {k: enc[k] for k in enc if k not in ("offset_mapping", "overflow_to_sample_mapping")}
    out.update(start_positions=[], end_positions=[], example_id=[], offset_mapping=[])
    for i, offs in enumerate(enc["offset_mapping"]):
        ex = enc["overflow_to_sample_mapping"][i]
        seq = enc.sequence_ids(i)
        ids = enc["input_ids"][i]
        cls = ids.index(tok.cls_token_id) if tok.cls_token_id in ids else 0
        a_start = answers[ex]["answer_start"][0]
        a_end = a_start + len(answers[ex]["text"][0])
        ctx_tokens = [t for t, s in enumerate(seq) if s == ctx_id]
        first, last = (ctx_tokens[0], ctx_tokens[-1]) if ctx_tokens else (0, -1)
        if not ctx_tokens or offs[first][0] > a_start or offs[last][1] < a_end:  # the answer is not (wholly) here
            start = end = cls
        else:
            start = first
            while start <= last and offs[start][0] <= a_start:
                start += 1
            end = last
            while end >= first and offs[end][1] >= a_end:
                end -= 1
            start, end = start - 1, end + 1
        out["start_positions"].append(start)
        out["end_positions"].append(end)
        out["example_id"].append(ex)
        out["offset_mapping"].append([tuple(o) if s == ctx_id else None for o, s in zip(offs, seq, strict=True)])
    return out


def _map(ds, tok, config: TrainingConfig, cache: str | None):
    def enc(batch):
        f = features(tok, batch["question"], batch["context"], batch["answers"], config.max_length)
        f["example_id"] = [batch["row"][i] for i in f["example_id"]]
        return f

    kwargs = {"cache_file_name": cache} if cache else {"keep_in_memory": True}
    return ds.map(enc, batched=True, remove_columns=ds.column_names, **kwargs)


def metrics_fn(examples, example_ids: list[int], offsets: list[list], positions: tuple[list, list]):
    """compute_metrics for the Trainer, a closure over the evaluation windows.

    The Trainer's EvalPrediction holds only per-window arrays (start/end logits, and the labels); mapping them
    back to text needs each window's example and offsets, which can't pass through the collator as tensors.
    A closure built once in `setup` keeps them beside the model-ready eval dataset, so the runner's stock
    Trainer (evaluate, early stopping, the torch-schedule subclass) works unchanged; the course's alternative,
    a Trainer subclass overriding evaluate, would duplicate the evaluation loop. It relies on the evaluation
    order being the dataset's: the windows carry no `length` column, so the runner never length-groups them
    (the Trainer then evaluates sequentially); the labels are compared below to catch any reordering.
    """
    import numpy as np

    from core.training import squad

    row_index = {row: i for i, row in enumerate(list(examples["row"]))}
    ex_index = [row_index[r] for r in example_ids]
    contexts = list(examples["context"])
    golds = [a["text"] for a in list(examples["answers"])]

    def compute(eval_pred) -> dict:
        start_logits, end_logits = eval_pred.predictions[:2]
        labels = eval_pred.label_ids
        if labels is not None and not (np.array_equal(np.asarray(labels[0]), positions[0])
                                       and np.array_equal(np.asarray(labels[1]), positions[1])):
            raise RuntimeError("evaluation windows came back in another order than the dataset's")
        best = squad.best_spans(start_logits, end_logits, ex_index, offsets, contexts)
        return squad.squad_v1([b[0] for b in best], golds)

    return compute


def baseline(examples, words: int) -> dict[str, float]:
    """EM / F1 of the untrained guess "the context's first N words" on the evaluation rows."""
    from core.training import squad

    m = squad.squad_v1([squad.first_words(c, words) for c in list(examples["context"])],
                       [a["text"] for a in list(examples["answers"])])
    return {"baseline_exact_match": m["exact_match"], "baseline_f1": m["f1"]}


def setup(config: TrainingConfig, model_path: str, prepared: Prepared, out: Path) -> TaskSetup:
    """AutoModelForQuestionAnswering (a fresh start/end head) on windows padded to max_length."""
    from transformers import AutoModelForQuestionAnswering, default_data_collator

    tok = tokenizer_for(model_path)
    train = _map(prepared.train, tok, config, str(out / "qa-train.arrow")).remove_columns(
        ["example_id", "offset_mapping"])
    ev = _map(prepared.eval, tok, config, None)
    ids, offsets = list(ev["example_id"]), list(ev["offset_mapping"])
    positions = (list(ev["start_positions"]), list(ev["end_positions"]))
    ev = ev.remove_columns(["example_id", "offset_mapping"])
    model = AutoModelForQuestionAnswering.from_pretrained(model_path)
    info = {"doc_stride": doc_stride(config.max_length), "train_windows": len(train), "eval_windows": len(ev),
            "baseline_words": prepared.baseline_words}
    # default_data_collator: every window is padded to max_length at tokenization (the course's recipe)
    return TaskSetup(model, train, ev, default_data_collator, metrics_fn(prepared.eval, ids, offsets, positions),
                     processing_class=tok, info=info, baseline=baseline(prepared.eval, prepared.baseline_words))


# --- the form's mapped example, and answers from a finished run --------------------------------

def mapped_example(config: TrainingConfig, settings: Settings, model_path: str) -> MappedExample:
    """The first training row's first window, token by token: what the model reads and which tokens are labels."""
    dd, train_name, _ = open_dataset(config, settings)
    ds = dd[train_name]
    if len(ds) == 0:
        raise ConfigError("dataset", f"the {train_name!r} split of {config.dataset} is empty")
    c = config.columns
    row = ds[0]
    ans = check_row(row[c["question"]], row[c["context"]], row[c["answers"]], f"{train_name} row 0")
    tok = tokenizer_for(model_path)
    _check_questions({"question": [row[c["question"]]]}, tok, config.max_length, train_name)
    stride = doc_stride(config.max_length)
    f = features(tok, [row[c["question"]]], [row[c["context"]]], [ans], config.max_length, padding=False)
    ids, offs = f["input_ids"][0], f["offset_mapping"][0]
    context = row[c["context"]]
    start, end = f["start_positions"][0], f["end_positions"][0]
    special = set(tok.all_special_ids)
    table = []
    for t, (tid, o) in enumerate(zip(ids, offs, strict=True)):
        label = " / ".join(n for n, p in (("start", start), ("end", end)) if p == t)
        entry = {"#": t, "token": tok.convert_ids_to_tokens(tid), "id": tid}
        if "token_type_ids" in f:
            entry["token_type"] = f["token_type_ids"][0][t]
        part = "context" if o is not None else "special" if tid in special else "question"
        entry |= {"sequence": part,
                  "offsets": "" if o is None else f"{o[0]}–{o[1]}", "text": "" if o is None else context[o[0]:o[1]],
                  "attention": f["attention_mask"][0][t], "label": label}
        table.append(entry)
    windows = len(f["input_ids"])
    where = [i for i in range(windows) if f["start_positions"][i] != 0 or f["end_positions"][i] != 0]
    notes = [f"Row 0 becomes {windows} window{'s' * (windows > 1)} of at most {config.max_length} tokens "
             f"(question + context); a longer context is cut with a stride of {stride} tokens "
             f"(max_length // 4) shared by neighbouring windows, so an answer cut by one window is whole in the next.",
             f"Answer {ans['text'][0]!r} at character {ans['answer_start'][0]}: "
             + (f"in window{'s' * (len(where) > 1)} {', '.join(str(i + 1) for i in where)}. " if where else
                "in no window (too long for one?). ")
             + "A window without the answer is labelled start = end = [CLS] (token 0): 'not here'.",
             "Below: window 1. Offsets are character positions in the context; the question and special "
             "tokens have none, and only context tokens can be an answer.",
             "Expected data: question and context text, and " + FORMAT + "."]
    return MappedExample(table, notes)


def qa_checkpoints(runs) -> dict[str, str]:
    """Label -> model folder of every completed question-answering run (the span QA checkpoints)."""
    return {f"run {r.id} · {r.name}": r.model_dir for r in runs
            if r.status == "completed" and r.model_dir and r.config.get("task") == "question-answering"
            and Path(r.model_dir, "config.json").is_file()}


def answer(run_record, question: str, context: str, model=None) -> tuple[str, int, int, float]:
    """(text, start_char, end_char, score) from the run's saved model; `model` a cached core.nlp LoadedModel.
    The score is p(start) × p(end) within the best window (core.nlp.span_answer)."""
    from core.nlp import load_model, span_answer

    if not run_record.model_dir or not Path(run_record.model_dir, "config.json").is_file():
        raise ValueError(f"run {run_record.id} has no saved model ({run_record.status}): finish or resume it first")
    lm = model or load_model(run_record.model_dir, "question-answering")
    max_length = int(run_record.config.get("max_length", 384))
    a = span_answer(lm, question, context, max_length=max_length, stride=doc_stride(max_length),
                    max_answer_tokens=30)
    return a.text, a.start, a.end, a.score


def eval_examples(run_record, settings: Settings, n: int = 5) -> list[dict]:
    """The first `n` evaluation rows of the run's data: question, context and gold answers ([] if gone)."""
    config = TrainingConfig.from_dict(run_record.config)
    try:
        from core.training.runner import plan

        prepared = prepare(config, settings, plan(config, settings).model_path)
    except ValueError:  # the dataset or model was deleted since
        return []
    ev = prepared.eval.select(range(min(n, len(prepared.eval))))
    return [{"question": q, "context": c, "gold": a["text"]}
            for q, c, a in zip(list(ev["question"]), list(ev["context"]), list(ev["answers"]), strict=True)]


def batch_answer(run_record, settings: Settings, model=None, limit: int = 500) -> tuple[list[dict], dict, float]:
    """Answer up to `limit` evaluation questions of the run with its saved model: (rows with gold, predicted,
    EM and F1; SQuAD v1.1 EM / F1 over them in %; questions per second). Spans are ranked as "try it" ranks them
    (p(start) × p(end)), so the scores can differ slightly from the run's own (summed logits)."""
    import time

    from core.training import squad

    examples = eval_examples(run_record, settings, n=limit)
    t = time.perf_counter()
    predicted = [answer(run_record, ex["question"], ex["context"], model)[0] for ex in examples]
    seconds = time.perf_counter() - t
    rows = []
    for ex, text in zip(examples, predicted, strict=True):
        em, f1 = squad.score(text, ex["gold"])
        rows.append({"question": ex["question"], "gold": " | ".join(ex["gold"]), "predicted": text, "EM": em,
                     "F1": round(f1, 3)})
    totals = squad.squad_v1(predicted, [ex["gold"] for ex in examples]) if examples else {}
    return rows, totals, (len(rows) / seconds if seconds > 0 else float("inf"))
