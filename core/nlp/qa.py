"""Question answering two ways: sentence embeddings (offline) and a span model's start/end logits."""
from __future__ import annotations

import re
from typing import Any

from core.nlp.encoder import (
    Encoder,
    LoadedModel,
    _input_limit,
    check_text,
    load_encoder,
    script_warning,
    sentence_spans,
)
from core.nlp.types import Answer, NLPError, Progress, Span

GRANULARITIES = ("sentence", "clause")
TYPE_BONUS = 0.1  # added to the cosine of a sentence holding the kind of thing the question asks for
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
# answer types of classic factoid QA: (what the question starts with, what the answer sentence holds)
ANSWER_TYPES = {
    "date": (re.compile(r"^\s*(when\b|what year|in what year|which year|what date)", re.I),
             re.compile(rf"\b(1\d{{3}}|20\d{{2}})\b|\b({_MONTHS})\b|\bcentury\b", re.I)),
    "number": (re.compile(r"^\s*how (many|much|tall|long|old|far|big|high|large|wide|deep|heavy)\b", re.I),
               re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|"
                          r"million|billion|dozen)\b", re.I)),
    "place": (re.compile(r"^\s*(where\b|in which (country|city|place))", re.I),
              re.compile(r"\b(in|at|near|from|on|to)\s+(the\s+)?[A-Z]")),
}


def answer_type(question: str) -> str | None:
    """'date', 'number' or 'place' when the question asks for one, else None."""
    return next((name for name, (q, _) in ANSWER_TYPES.items() if q.search(question)), None)
_CLAUSE_BREAK = re.compile(r"[,;:]\s+|\s+[–—]\s+|[，；：、]")


def _check(question: str, context: str) -> list[str]:
    """Validate both fields; warnings that don't stop the answer."""
    context = check_text(context, "context")
    question = check_text(question, "question")
    warnings = []
    if len(question.strip()) > len(context.strip()):
        warnings.append(f"The question ({len(question.strip())} characters) is longer than the context "
                        f"({len(context.strip())}): were the two fields swapped? The answer can only come "
                        "from the context.")
    if note := script_warning(context):
        warnings.append(note)
    return warnings


def clause_spans(text: str, start: int, end: int, min_words: int = 3) -> list[tuple[int, int]]:
    """Clauses of the sentence text[start:end], cut at , ; : and dashes; short bits join a neighbour."""
    cuts = [start] + [start + m.end() for m in _CLAUSE_BREAK.finditer(text[start:end])] + [end]
    pieces = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if text[a:b].strip()]
    merged: list[tuple[int, int]] = []
    for a, b in pieces:
        if merged and len(text[merged[-1][0]:merged[-1][1]].split()) < min_words:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    if len(merged) > 1 and len(text[merged[-1][0]:merged[-1][1]].split()) < min_words:
        merged[-2:] = [(merged[-2][0], merged[-1][1])]
    # trim the separator and spaces off each piece's end
    return [(a, a + len(text[a:b].rstrip(" ,;:–—，；：、"))) for a, b in merged]


def embedding_answer(question: str, context: str, encoder: Encoder, *, granularity: str = "sentence",
                     top_k: int = 5, progress: Progress | None = None) -> Answer:
    """Rank the context's sentences by cosine similarity to the question and return the best.

    A sentence holding what a when / how many / where question asks for (a date, a number, a
    place) gets TYPE_BONUS on top of its cosine: the answer-type matching of classic factoid QA.

    With granularity "clause", the best sentence is then narrowed to its clause closest to the
    question (the score stays the sentence's, since that is what was ranked).
    """
    if granularity not in GRANULARITIES:
        raise NLPError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    warnings = _check(question, context)
    spans = sentence_spans(context)
    vecs = encoder.encode([question] + [context[a:b] for a, b in spans], progress=progress)
    sims = (vecs[1:] @ vecs[0]).tolist()
    kind = answer_type(question)
    if kind:  # similarity alone misses "finished in 1889" for "when was it completed?"
        holds = ANSWER_TYPES[kind][1]
        sims = [s + TYPE_BONUS * bool(holds.search(context[a:b])) for s, (a, b) in zip(sims, spans, strict=True)]
    ranked = sorted(range(len(spans)), key=lambda i: -sims[i])
    candidates = tuple(Span(spans[i][0], spans[i][1], sims[i], context[spans[i][0]:spans[i][1]])
                       for i in ranked[:top_k])
    best = candidates[0]
    method = f"embedding similarity ({encoder.name} sentence vectors, best of {len(spans)} sentences)"
    if kind:
        method += f", +{TYPE_BONUS} for sentences holding a {kind} (the question asks for one)"
    start, end, sentence = best.start, best.end, None
    if granularity == "clause":
        clauses = clause_spans(context, best.start, best.end)
        if len(clauses) > 1:
            cvecs = encoder.encode([context[a:b] for a, b in clauses])
            c = int((cvecs @ vecs[0]).argmax())
            start, end, sentence = clauses[c][0], clauses[c][1], (best.start, best.end)
            method += f", narrowed to the closest of its {len(clauses)} clauses"
    return Answer(context[start:end], start, end, best.score, method, True, candidates, sentence,
                  tuple(warnings))


def span_answer(lm: LoadedModel, question: str, context: str, *, max_answer_tokens: int = 30,
                max_length: int = 384, stride: int = 128, no_answer_threshold: float | None = None,
                top_k: int = 5, batch_size: int = 8, progress: Progress | None = None) -> Answer:
    """Extract the best span with a question-answering model's start/end logits.

    Long contexts are read in windows of `max_length` tokens overlapping by `stride`; the best
    span over all windows wins. A span's score is p(start) * p(end) within its window. With
    `no_answer_threshold` set, "no answer" is returned when the [CLS] (null) logit sum beats the
    best span's logit sum by more than the threshold (SQuAD 2.0 convention).
    """
    import torch

    warnings = _check(question, context)
    tok = lm.tokenizer
    if not getattr(tok, "is_fast", False):
        raise NLPError(f"{lm.source}: the QA path needs a fast tokenizer (tokenizer.json) for character offsets")
    max_length = min(max_length, _input_limit(lm))
    q_len = len(tok(question, add_special_tokens=False)["input_ids"])
    if q_len + 8 >= max_length:
        raise NLPError(f"the question is {q_len} tokens long and leaves no room for the context in a "
                       f"{max_length}-token window: shorten the question")
    stride = max(0, min(stride, (max_length - q_len) // 2 - 4))  # the tokenizer needs stride < room left
    enc = tok(question, context, truncation="only_second", max_length=max_length, stride=stride,
              return_overflowing_tokens=True, return_offsets_mapping=True, padding="longest",
              return_tensors="pt")
    n = enc["input_ids"].shape[0]
    inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    spans: list[tuple[Span, float]] = []  # each span with its start+end logit sum
    null_score = float("inf")
    with torch.inference_mode():
        for b in range(0, n, batch_size):
            out = lm.model(**{k: v[b:b + batch_size].to(lm.device) for k, v in inputs.items()})
            for w in range(out.start_logits.shape[0]):
                i = b + w
                found, null = _window_spans(enc, i, out.start_logits[w].float().cpu(),
                                            out.end_logits[w].float().cpu(), context, max_answer_tokens, top_k)
                spans.extend(found)
                null_score = min(null_score, null)
            if progress:
                progress(min(b + batch_size, n) / n, f"read {min(b + batch_size, n)} / {n} windows")
    if not spans:
        raise NLPError("the model found no span inside the context (the context may be only special tokens)")
    spans.sort(key=lambda s: -s[0].score)
    (best, best_logit), ranked = spans[0], tuple(s for s, _ in spans[:top_k])
    method = f"span model {lm.architecture} ({lm.source}), {n} window{'s' * (n > 1)} of ≤{max_length} tokens"
    if no_answer_threshold is not None and null_score - best_logit > no_answer_threshold:
        return Answer("", 0, 0, best.score, method + ", no-answer score won", False, ranked, None,
                      tuple(warnings))
    return Answer(best.text, best.start, best.end, best.score, method, True, ranked, None, tuple(warnings))


def _window_spans(enc, i: int, start_logits, end_logits, context: str, max_answer_tokens: int,
                  top_k: int) -> tuple[list[tuple[Span, float]], float]:
    """Window i's top (span, start+end logit sum) pairs as character spans, and its null logit sum."""
    import torch

    seq = enc.sequence_ids(i)
    offsets = enc["offset_mapping"][i].tolist()
    ctx = torch.tensor([s == 1 for s in seq])
    cls = 0  # BERT-like models put [CLS] first; its logits are the "no answer" score
    allowed = ctx.clone()
    allowed[cls] = True
    p_start = start_logits.masked_fill(~allowed, float("-inf")).softmax(-1)
    p_end = end_logits.masked_fill(~allowed, float("-inf")).softmax(-1)
    null = float(start_logits[cls] + end_logits[cls])
    # every (start, end) pair inside the context, end >= start, at most max_answer_tokens long
    scores = p_start[:, None] * p_end[None, :]
    band = torch.ones_like(scores, dtype=torch.bool).triu().tril(max_answer_tokens - 1)
    valid = band & ctx[:, None] & ctx[None, :]
    scores = scores.masked_fill(~valid, -1.0)
    k = min(top_k, int(valid.sum()))
    out = []
    if k:
        top = scores.flatten().topk(k)
        for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            s, e = divmod(flat, scores.shape[1])
            a, b = offsets[s][0], offsets[e][1]
            out.append((Span(a, b, float(score), context[a:b]), float(start_logits[s] + end_logits[e])))
    return out, null


def answer(question: str, context: str, encoder: Encoder | None = None, **kwargs: Any) -> Answer:
    """The best span of `context` for `question`, by MiniLM embedding similarity (offline)."""
    return embedding_answer(question, context, encoder or load_encoder(), **kwargs)
