"""Summaries two ways: extractive by sentence centrality (offline), abstractive with a seq2seq model."""
from __future__ import annotations

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
from core.nlp.metrics import no_space_share
from core.nlp.types import NLPError, Progress, Span, Summary

METHODS = {
    "centroid": "centroid: sentences closest to the mean of all sentence vectors",
    "textrank": "graph ranking (LexRank/TextRank): PageRank over the sentence-similarity graph",
}
REDUNDANT = 0.92  # a candidate this similar to a kept sentence adds nothing: skip it


def centrality(vecs, method: str, damping: float = 0.85, iters: int = 100):
    """One score per sentence vector (rows of unit vectors): centroid cosine or PageRank."""
    import torch

    if method == "centroid":
        centre = torch.nn.functional.normalize(vecs.mean(0), dim=0)
        return vecs @ centre
    if method != "textrank":
        raise NLPError(f"unknown summary method {method!r}; one of {', '.join(METHODS)}")
    sim = (vecs @ vecs.T).clamp(min=0)  # negative similarity is no edge
    sim.fill_diagonal_(0)
    rows = sim.sum(1, keepdim=True)
    n = len(vecs)
    # a sentence like no other has no edges: let it jump anywhere, as PageRank's dangling nodes do
    trans = torch.where(rows > 0, sim / rows.clamp(min=1e-12), torch.full_like(sim, 1 / n))
    rank = torch.full((n,), 1 / n)
    for _ in range(iters):
        new = (1 - damping) / n + damping * (trans.T @ rank)
        if (new - rank).abs().sum() < 1e-8:
            return new
        rank = new
    return rank


def extractive_summary(text: str, encoder: Encoder, *, method: str = "centroid", max_sentences: int = 3,
                       max_words: int | None = None, progress: Progress | None = None) -> Summary:
    """Keep the most central sentences, in their original order, up to `max_sentences` / `max_words`."""
    if method not in METHODS:
        raise NLPError(f"unknown summary method {method!r}; one of {', '.join(METHODS)}")
    if max_sentences < 1:
        raise NLPError(f"the summary needs at least one sentence, got max_sentences={max_sentences}")
    text = check_text(text, "document")
    warnings = [w for w in [script_warning(text)] if w]
    spans = sentence_spans(text)
    vecs = encoder.encode([text[a:b] for a, b in spans], progress=progress)
    scores = centrality(vecs, method).tolist() if len(spans) > 1 else [1.0]
    sentences = tuple(Span(a, b, s, text[a:b]) for (a, b), s in zip(spans, scores, strict=True))
    if len(spans) <= max_sentences and max_words is None:
        warnings.append(f"The document has only {len(spans)} sentence{'s' * (len(spans) != 1)}: "
                        "the summary is the whole text.")
    kept: list[int] = []
    words, skipped = 0, 0
    for i in sorted(range(len(spans)), key=lambda i: -scores[i]):
        if len(kept) >= max_sentences:
            break
        n_words = _length(sentences[i].text)
        if kept and max_words is not None and words + n_words > max_words:
            continue  # a shorter, lower-ranked sentence may still fit
        if kept and float((vecs[kept] @ vecs[i]).max()) > REDUNDANT:
            skipped += 1
            continue
        kept.append(i)
        words += n_words
    kept.sort()
    if skipped and len(kept) < max_sentences:
        warnings.append(f"{skipped} high-ranked sentence{'s' * (skipped > 1)} repeated a kept one "
                        f"(cosine > {REDUNDANT}) and {'were' if skipped > 1 else 'was'} left out.")
    joiner = "" if no_space_share(text) > 0.3 else " "
    summary = joiner.join(sentences[i].text for i in kept)
    how = f"extractive, {METHODS[method]} ({encoder.name}); kept {len(kept)} of {len(spans)} sentences"
    return Summary(summary, how, sentences, tuple(kept), tuple(warnings))


def _length(text: str) -> int:
    """Words, or characters for scripts written without spaces."""
    return len(text) if no_space_share(text) > 0.3 else len(text.split())


def abstractive_summary(lm: LoadedModel, text: str, *, num_beams: int = 4, min_length: int = 10,
                        max_length: int = 128, length_penalty: float = 1.0, no_repeat_ngram_size: int = 3,
                        progress: Progress | None = None) -> Summary:
    """Generate a summary with a seq2seq model; a document longer than its input is summarized in chunks.

    Lengths are in generated tokens. Each chunk is a run of whole sentences that fits the model's
    input; the chunk summaries are joined in order.
    """
    import torch

    text = check_text(text, "document")
    if min_length > max_length:
        raise NLPError(f"min length {min_length} is above max length {max_length}")
    tok, cfg = lm.tokenizer, lm.model.config
    # T5 was trained with a task prefix; other seq2seq models read the text as is
    prefix = "summarize: " if cfg.model_type in ("t5", "mt5", "umt5") else ""
    limit = _input_limit(lm) - len(tok(prefix)["input_ids"]) - 2
    chunks = _chunks(text, tok, limit)
    warnings = [w for w in [script_warning(text)] if w]
    if len(chunks) > 1:
        warnings.append(f"The document is longer than the model's {limit + 2}-token input: it was summarized "
                        f"in {len(chunks)} chunks, joined in order.")
    # a decoder with learned positions (BART, Pegasus, Marian) can't write past its last position: generate()
    # would index past the position table; T5's relative positions have no such end
    positions = None if cfg.model_type in ("t5", "mt5", "umt5") else getattr(cfg, "max_position_embeddings", None)
    if positions and max_length > positions - 1:
        warnings.append(f"This model's decoder has {positions} positions: the summary is capped at "
                        f"{positions - 1} new tokens (asked: {max_length}).")
        max_length, min_length = positions - 1, min(min_length, positions - 1)
    gen = dict(num_beams=num_beams, min_new_tokens=min_length, max_new_tokens=max_length,
               no_repeat_ngram_size=no_repeat_ngram_size or 0)
    if num_beams > 1:  # length_penalty only shapes beam scores; greedy search would warn about it
        gen.update(length_penalty=length_penalty, early_stopping=True)
    parts = []
    with torch.inference_mode():
        for k, chunk in enumerate(chunks):
            enc = tok(prefix + chunk, truncation=True, max_length=limit + 2, return_tensors="pt").to(lm.device)
            # only what an encoder-decoder reads: a BERT-style tokenizer adds token_type_ids too
            ids = lm.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **gen)
            parts.append(tok.decode(ids[0], skip_special_tokens=True).strip())
            if progress:
                progress((k + 1) / len(chunks), f"summarized chunk {k + 1} / {len(chunks)}")
    how = (f"abstractive, {lm.architecture} ({lm.source}).generate: {num_beams} beam{'s' * (num_beams > 1)}, "
           f"{min_length}–{max_length} new tokens, length penalty {length_penalty}, "
           f"no repeated {no_repeat_ngram_size}-grams")
    return Summary(" ".join(p for p in parts if p), how, warnings=tuple(warnings), chunks=len(chunks))


def _chunks(text: str, tok, limit: int) -> list[str]:
    """Runs of whole sentences of at most `limit` tokens each (a longer sentence is its own chunk)."""
    spans = sentence_spans(text)
    lengths = [len(ids) for ids in tok([text[a:b] for a, b in spans], add_special_tokens=False)["input_ids"]]
    chunks: list[tuple[int, int]] = []
    used = 0
    for (a, b), n in zip(spans, lengths, strict=True):
        if chunks and used + n <= limit:
            chunks[-1] = (chunks[-1][0], b)
            used += n
        else:
            chunks.append((a, b))
            used = n
    return [text[a:b] for a, b in chunks]


def summarize(text: str, encoder: Encoder | None = None, **kwargs: Any) -> Summary:
    """An extractive summary of `text` ranked by MiniLM sentence centrality (offline)."""
    return extractive_summary(text, encoder or load_encoder(), **kwargs)
