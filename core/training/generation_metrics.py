"""Baselines and metrics of the generation tasks (core.training.generation): perplexity from the evaluation loss,
the untrained model's and the unigram perplexity, ROUGE of generated text and of the lead baseline."""
from __future__ import annotations

import math
from functools import cache

IGNORED = -100  # the label the loss skips


def unigram_perplexity(train_blocks, eval_blocks, vocab_size: int) -> float:
    """Perplexity of add-one-smoothed training token frequencies on the tokens the model predicts (every label
    but each block's first, which has no context)."""
    from collections import Counter

    counts = Counter(t for b in train_blocks for t in b if t != IGNORED)
    total = sum(counts.values()) + vocab_size
    nll, n = 0.0, 0
    for b in eval_blocks:
        for t in b[1:]:
            if t != IGNORED:
                nll -= math.log((counts[t] + 1) / total)
                n += 1
    return math.exp(nll / n) if n else float("nan")


def perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")  # exp overflows a float past ~709


@cache
def perplexity_trainer():
    """Trainer that adds `perplexity` = exp(loss) to every evaluation.

    Computed from the evaluation loss inside `evaluation_loop`, so it is logged with the other eval_* values
    (the live curve, the final metrics) without a compute_metrics: that would make the Trainer gather every
    logit of the evaluation set (rows × tokens × vocabulary floats) just to recompute the loss it already has.
    """
    from transformers import Trainer

    class PerplexityTrainer(Trainer):
        def evaluation_loop(self, *args, **kwargs):
            out = super().evaluation_loop(*args, **kwargs)
            prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
            loss = out.metrics.get(f"{prefix}_loss")
            if loss is not None:
                out.metrics[f"{prefix}_perplexity"] = perplexity(float(loss))
            return out

    return PerplexityTrainer


def mean_rouge(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measure (0..1) over pairs, each scored by core.nlp.metrics.rouge (rouge-score)."""
    from core.nlp.metrics import ROUGE_TYPES, rouge

    if not predictions:
        return {k: 0.0 for k in ROUGE_TYPES}
    scores = [rouge(p, r) for p, r in zip(predictions, references, strict=True)]
    return {k: sum(s[k] for s in scores) / len(scores) for k in ROUGE_TYPES}


def lead(text: str, words: int) -> str:
    """The "lead" baseline summary: the first `words` words of the source."""
    return " ".join(text.split()[:words])


def lead_baseline(train, ev, src: str, tgt: str) -> dict:
    """ROUGE of the lead (as many first words of the source as a training target's median word count)."""
    import statistics

    n = max(1, round(statistics.median(len(t.split()) for t in train[tgt])))
    scores = mean_rouge([lead(s, n) for s in ev[src]], list(ev[tgt]))
    return {f"lead_{k}": v for k, v in scores.items()} | {"lead_words": n}


def rouge_metrics(tokenizer):
    """compute_metrics for Seq2SeqTrainer(predict_with_generate): generated ids and labels decoded, then ROUGE."""
    import numpy as np

    pad = tokenizer.pad_token_id

    def compute(eval_pred) -> dict:
        preds, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(preds, tuple):
            preds = preds[0]
        preds = np.where(np.asarray(preds) != IGNORED, preds, pad)
        labels = np.where(np.asarray(labels) != IGNORED, labels, pad)
        out = mean_rouge(tokenizer.batch_decode(preds, skip_special_tokens=True),
                         tokenizer.batch_decode(labels, skip_special_tokens=True))
        out["gen_len"] = float(np.mean([(row != pad).sum() for row in preds])) if len(preds) else 0.0
        return out

    return compute


def eval_perplexity(model, dataset, collator, batch_size: int) -> float:
    """exp(mean loss per predicted token) of `model` on `dataset`: the perplexity before training, measured on
    the very blocks the Trainer evaluates (the untrained model is the baseline that says what fine-tuning bought;
    unigram frequencies, also stored, say whether the model beats counting)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    nll, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(dataset), batch_size):
            rows = [dataset[j] for j in range(i, min(i + batch_size, len(dataset)))]
            batch = {k: v.to(device) for k, v in collator(rows).items() if k in ("input_ids", "attention_mask", "labels")}
            count = int((batch["labels"][:, 1:] != IGNORED).sum())
            nll += float(model(**batch).loss) * count
            n += count
    model.to("cpu").train()
    return perplexity(nll / n) if n else float("nan")
