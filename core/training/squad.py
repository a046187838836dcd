"""SQuAD v1.1 scoring and the span post-processing of extractive QA (the Hugging Face course's recipe).

Exact match and F1 follow the official `evaluate-v1.1.py` word for word: lower-case, strip ASCII punctuation
(`string.punctuation`), drop the articles a/an/the, collapse whitespace; F1 on bags of the remaining words;
each the best over the gold answers; the averages in percent. `core.nlp.metrics.exact_match_f1` is not used
here: it widens the punctuation set (CJK marks), splits CJK text per character (MLQA) and scores an empty
answer against an empty gold as a match (SQuAD 2.0), so its numbers are not the v1.1 ones papers report.

    >>> exact_match("The Eiffel Tower!", "eiffel tower"), round(f1("in Paris, France", "Paris"), 3)
    (1.0, 0.5)
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

N_BEST = 20  # start and end candidates kept per window (the course's n_best)
MAX_ANSWER_TOKENS = 30  # longest answer span considered, in tokens

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the official v1.1 order)."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    """Harmonic mean of word precision and recall over the normalised bags of words (0 when none shared)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def score(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) of one prediction, each the best over the gold answers, in 0..1."""
    return max(exact_match(prediction, g) for g in golds), max(f1(prediction, g) for g in golds)


def squad_v1(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """{"exact_match", "f1"}: averages over the examples in percent, as the official script prints them."""
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    scores = [score(p, g) for p, g in zip(predictions, golds, strict=True)]
    return {"exact_match": 100.0 * sum(s[0] for s in scores) / len(scores),
            "f1": 100.0 * sum(s[1] for s in scores) / len(scores)}


def first_words(context: str, n: int) -> str:
    """The untrained guess: the context's first `n` words."""
    return " ".join(context.split()[:n])


def best_spans(start_logits, end_logits, example_ids: Sequence[int], offsets: Sequence[Sequence],
               contexts: Sequence[str], n_best: int = N_BEST,
               max_answer_tokens: int = MAX_ANSWER_TOKENS) -> list[tuple[str, int, int, float]]:
    """Each example's best (text, start_char, end_char, start+end logit) over all of its windows.

    Row i of the logits is window i, of example `example_ids[i]`; `offsets[i][t]` is token t's (start, end)
    in the context, or None outside the context (question, special tokens, padding). An example with no
    valid span gets ("", 0, 0, -inf).
    """
    import numpy as np

    best: list[tuple[str, int, int, float]] = [("", 0, 0, float("-inf"))] * len(contexts)
    for i, ex in enumerate(example_ids):
        offs = offsets[i]
        s_log, e_log = np.asarray(start_logits[i]), np.asarray(end_logits[i])
        # the Trainer pads logits of shorter batches (-100): indices past this window's tokens are skipped
        starts = np.argsort(s_log)[-1:-n_best - 1:-1]
        ends = np.argsort(e_log)[-1:-n_best - 1:-1]
        for s in starts:
            if s >= len(offs) or offs[s] is None:
                continue
            for e in ends:
                if e >= len(offs) or offs[e] is None or e < s or e - s + 1 > max_answer_tokens:
                    continue
                logit = float(s_log[s] + e_log[e])
                if logit > best[ex][3]:
                    a, b = int(offs[s][0]), int(offs[e][1])
                    best[ex] = (contexts[ex][a:b], a, b, logit)
    return best
