"""Evaluation metrics of from-scratch runs, and the bigram baseline a tiny GPT has to beat."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

LAMBDAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _first(x):
    return x[0] if isinstance(x, tuple) else x


def classification_metrics(eval_pred) -> dict:
    """Accuracy and macro precision / recall / F1."""
    from sklearn.metrics import precision_recall_fscore_support

    logits, labels = np.asarray(_first(eval_pred.predictions)), np.asarray(eval_pred.label_ids)
    preds = logits.argmax(-1)
    k = logits.shape[-1]
    p, r, f, _ = precision_recall_fscore_support(labels, preds, average="macro", labels=list(range(k)),
                                                 zero_division=0)
    return {"accuracy": float((preds == labels).mean()), "precision": float(p), "recall": float(r), "f1": float(f)}


def token_accuracy_metrics(eval_pred) -> dict:
    """Share of target tokens predicted right (teacher forcing), and of whole sequences with every token right."""
    logits, labels = np.asarray(_first(eval_pred.predictions)), np.asarray(eval_pred.label_ids)
    preds = logits.argmax(-1)
    valid = labels != -100
    right = (preds == labels) & valid
    whole = (right | ~valid).all(-1)
    return {"token_accuracy": float(right.sum() / max(1, valid.sum())), "sequence_accuracy": float(whole.mean())}


def lm_metrics(eval_pred) -> dict:
    """Perplexity per token (exp of the mean next-token loss) and next-token accuracy, from TinyGPT's
    token_nll / token_hit (position t scores token t given the tokens before it; position 0 has none)."""
    nll, hit = (np.asarray(a, dtype=np.float64) for a in eval_pred.predictions[:2])
    labels = np.asarray(eval_pred.label_ids)
    valid = labels[:, 1:] != -100
    n = max(1, int(valid.sum()))
    mean = float(nll[:, 1:][valid].sum() / n)
    return {"perplexity": math.exp(min(mean, 700.0)), "token_accuracy": float(hit[:, 1:][valid].sum() / n),
            "tokens": n}


def bigram_perplexity(train: list[list[int]], held: list[list[int]], vocab: int) -> float:
    """Held-out perplexity of an interpolated bigram model over the same targets the GPT is scored on (each
    sequence's tokens after the first). Unigram counts are add-one smoothed; the mixing weight is picked on
    the held-out tokens themselves, so this is the bigram model's best case."""
    uni, pair, ctx = Counter(), Counter(), Counter()
    for seq in train:
        uni.update(seq)
        for a, b in zip(seq, seq[1:], strict=False):
            pair[a, b] += 1
            ctx[a] += 1
    total = sum(uni.values())
    targets = [(a, b) for seq in held for a, b in zip(seq, seq[1:], strict=False)]
    if not targets:
        return float("nan")
    p_uni = np.array([(uni[b] + 1) / (total + vocab) for _, b in targets])
    p_big = np.array([pair[a, b] / ctx[a] if ctx[a] else 0.0 for a, b in targets])
    has = np.array([ctx[a] > 0 for a, _ in targets])
    best = math.inf
    for lam in LAMBDAS:
        p = np.where(has, lam * p_big + (1 - lam) * p_uni, p_uni)
        best = min(best, float(np.exp(-np.log(p).mean())))
    return best
