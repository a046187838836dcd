"""Scores for generated text: ROUGE-1/2/L against a reference, SQuAD exact match and token F1.

ROUGE goes through `rouge_score` (offline). Its default tokenizer keeps only `[a-z0-9]`, so any
text in Cyrillic, Greek, Chinese… scores zero; the "auto" tokenizer here keeps Unicode letters
and splits scripts written without spaces (Chinese, Japanese, Thai…) into single characters,
and gives exactly the default tokenizer's tokens on ASCII text.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
TOKENIZERS = ("auto", "default", "whitespace", "char")

# Scripts written without spaces between words: one token per character. Han, kana, Hangul
# syllables are split too (Korean does use spaces, but per-character matching is the common
# choice for CJK ROUGE), plus Thai, Lao, Khmer and Myanmar.
_NO_SPACE = (r"\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3100-\u312f"
             r"\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff")
_NO_SPACE_CHAR = re.compile(f"[{_NO_SPACE}]")
_AUTO_TOKEN = re.compile(f"[{_NO_SPACE}]|[^\\W_{_NO_SPACE}]+")


def no_space_share(text: str) -> float:
    """Share of the letters of `text` that belong to a script written without spaces."""
    letters = sum(ch.isalnum() for ch in text)
    return len(_NO_SPACE_CHAR.findall(text)) / letters if letters else 0.0


class _RegexTokenizer:
    """A rouge_score tokenizer: lowercase, then the tokens a pattern finds (Porter-stemmed if asked)."""

    def __init__(self, pattern: re.Pattern[str], use_stemmer: bool = False):
        self._pattern = pattern
        self._stemmer = None
        if use_stemmer:
            from nltk.stem import porter

            self._stemmer = porter.PorterStemmer()

    def tokenize(self, text: str) -> list[str]:
        tokens = self._pattern.findall(text.lower())
        if self._stemmer:  # like rouge_score: only words longer than 3 characters, only ASCII ones
            tokens = [self._stemmer.stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]
        return tokens


def _rouge_tokenizer(tokenizer: str, use_stemmer: bool):
    if tokenizer == "default":
        from rouge_score.tokenizers import DefaultTokenizer

        return DefaultTokenizer(use_stemmer=use_stemmer)
    if tokenizer == "auto":
        return _RegexTokenizer(_AUTO_TOKEN, use_stemmer)
    if tokenizer == "whitespace":
        return _RegexTokenizer(re.compile(r"\S+"), use_stemmer)
    if tokenizer == "char":
        return _RegexTokenizer(re.compile(r"[^\W_]"), False)
    raise ValueError(f"unknown ROUGE tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")


def rouge(prediction: str, reference: str, *, tokenizer: str = "auto",
          use_stemmer: bool = False) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures of `prediction` against `reference`.

    >>> rouge("the cat sat", "the cat sat")["rouge1"]
    1.0
    """
    return rouge_details(prediction, reference, tokenizer=tokenizer, use_stemmer=use_stemmer)["fmeasure"]


def rouge_details(prediction: str, reference: str, *, tokenizer: str = "auto",
                  use_stemmer: bool = False) -> dict[str, dict[str, float]]:
    """Precision, recall and F-measure per ROUGE type: {"precision": {...}, "recall": ..., "fmeasure": ...}."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=_rouge_tokenizer(tokenizer, use_stemmer))
    scores = scorer.score(reference, prediction)  # rouge_score takes (target, prediction)
    return {part: {k: float(getattr(s, part)) for k, s in scores.items()}
            for part in ("precision", "recall", "fmeasure")}


# --- SQuAD exact match / token F1 -------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | set("，。！？、；：「」『』（）《》“”‘’")


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lowercase, drop punctuation and a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_tokens(text: str) -> list[str]:
    """Normalised answer tokens; characters of scripts without spaces count one each (as MLQA does)."""
    return _AUTO_TOKEN_SPACED.findall(normalize_answer(text))


_AUTO_TOKEN_SPACED = re.compile(f"[{_NO_SPACE}]|[^\\s{_NO_SPACE}]+")


def _f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:  # SQuAD v2: an empty side scores 1 only when both are empty
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match_f1(prediction: str, answers: Sequence[str]) -> tuple[float, float]:
    """SQuAD exact match and token F1 of `prediction`, each the best over the gold `answers`.

    An empty list (or only empty answers) means "no answer": an empty prediction scores (1, 1).

    >>> exact_match_f1("The Eiffel Tower", ["eiffel tower", "Paris"])
    (1.0, 1.0)
    """
    if isinstance(answers, str):  # a bare string is one answer, not a list of characters
        answers = [answers]
    golds = [a for a in answers if normalize_answer(a)] or [""]
    pred_norm, pred_tokens = normalize_answer(prediction), answer_tokens(prediction)
    em = max(float(pred_norm == normalize_answer(g)) for g in golds)
    f1 = max(_f1(pred_tokens, answer_tokens(g)) for g in golds)
    return em, f1


def mean_scores(rows: Iterable[dict[str, object]], keys: Iterable[str] | None = None) -> dict[str, float]:
    """Average of each float-valued key (or of `keys`) over rows; a row without a key is skipped for it."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    wanted = set(keys) if keys is not None else None
    for row in rows:
        for k, v in row.items():
            if (k in wanted) if wanted is not None else isinstance(v, float):
                sums[k] = sums.get(k, 0.0) + float(v)
                counts[k] = counts.get(k, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


# --- batch evaluation over a table ------------------------------------------------------------

# column names accepted for each task, first match wins (SQuAD, CNN/DailyMail, XSum, SAMSum…)
QA_COLUMNS = {"context": ("context", "passage", "paragraph", "document", "text"),
              "question": ("question", "query"),
              "answers": ("answers", "answer", "answer_text", "gold_answers", "gold")}
SUMMARY_COLUMNS = {"document": ("document", "article", "text", "dialogue", "source", "content"),
                   "summary": ("summary", "highlights", "abstract", "reference", "target")}


def eval_columns(columns: Iterable[str]) -> tuple[str, dict[str, str]]:
    """("qa" | "summary", role -> column) for a table, or ValueError saying which columns are needed."""
    lower = {str(c).lower(): str(c) for c in columns}
    for task, roles in (("qa", QA_COLUMNS), ("summary", SUMMARY_COLUMNS)):
        found = {role: next((lower[n] for n in names if n in lower), None) for role, names in roles.items()}
        if all(found.values()):
            return task, found  # type: ignore[return-value]
    raise ValueError(f"the table has columns {', '.join(map(str, columns)) or 'none'}; batch evaluation needs "
                     "(context, question, answers) for QA or (document, summary) for summarization")


def parse_answers(value: object) -> list[str]:
    """Gold answers from a cell: a list, a SQuAD dict {"text": [...]}, JSON of either, or one string."""
    import json

    if value is None or (isinstance(value, float) and value != value):  # None / NaN: no answer
        return []
    if isinstance(value, dict):
        return parse_answers(value.get("text", []))
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in "[{":
            try:
                return parse_answers(json.loads(s))
            except ValueError:
                pass
        return [s] if s else []
    if hasattr(value, "tolist"):  # numpy arrays from parquet / arrow
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v).strip()]
    return [str(value)]


def evaluate_qa(rows: Sequence[dict], answer_fn, progress=None) -> list[dict[str, object]]:
    """Answer every (context, question, answers) row with answer_fn(question, context) -> text and score it.

    A row whose answer fails (bad input) keeps its error message and an empty prediction.
    """
    out = []
    for i, row in enumerate(rows):
        golds = parse_answers(row["answers"])
        try:
            prediction, error = answer_fn(str(row["question"]), str(row["context"])), ""
        except ValueError as e:
            prediction, error = "", str(e)
        em, f1 = exact_match_f1(prediction, golds)
        out.append({"row": i, "question": row["question"], "prediction": prediction,
                    "answers": " | ".join(golds), "exact_match": em, "f1": f1, "error": error})
        if progress:
            progress((i + 1) / len(rows), f"answered {i + 1} / {len(rows)}")
    return out


def evaluate_summaries(rows: Sequence[dict], summarize_fn, *, tokenizer: str = "auto",
                       progress=None) -> list[dict[str, object]]:
    """Summarize every (document, summary) row with summarize_fn(document) -> text; ROUGE against the reference."""
    out = []
    for i, row in enumerate(rows):
        try:
            prediction, error = summarize_fn(str(row["document"])), ""
        except ValueError as e:
            prediction, error = "", str(e)
        scores = rouge(prediction, str(row["summary"]), tokenizer=tokenizer)
        out.append({"row": i, "prediction": prediction, "reference": row["summary"], **scores, "error": error})
        if progress:
            progress((i + 1) / len(rows), f"summarized {i + 1} / {len(rows)}")
    return out
