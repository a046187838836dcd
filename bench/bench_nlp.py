"""Offline QA / summarization: encoder batching side by side, a 100,000-character document, answer quality.

    .venv/bin/python -m bench.bench_nlp [--sentences 512]

1. MiniLM sentence encoding, the same sentences three ways in one run: one at a time, batches of 32
   in document order, batches of 32 sorted by length (what `core.nlp.Encoder` does).
2. Embedding QA and extractive summaries on a 100,000-character document (drug reviews).
3. Answer quality of the embedding method on the built-in sample questions: exact match, token F1,
   and how often the returned sentence contains a gold answer.
"""
from __future__ import annotations

import argparse
import time

import torch


def _encode_plain(enc, texts, batch_size):
    """Batches in the given order (no length sorting): the baseline."""
    out = []
    with torch.inference_mode():
        for b in range(0, len(texts), batch_size):
            t = enc.tokenizer(texts[b:b + batch_size], padding=True, truncation=True, max_length=256,
                              return_tensors="pt")
            h = enc.model(**t).last_hidden_state
            m = t["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1))
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=512)
    a = ap.parse_args()
    from core.assets import drug_reviews
    from core.nlp import answer, load_encoder, sentence_spans, summarize
    from core.nlp.metrics import exact_match_f1, normalize_answer
    from core.nlp.samples import qa_rows

    torch.set_num_threads(max(1, torch.get_num_threads()))
    enc = load_encoder(device="cpu")
    doc = " ".join(drug_reviews()["text"].tolist())[:100_000]
    spans = sentence_spans(doc)
    texts = [doc[s:e] for s, e in spans][:a.sentences]
    print(f"threads {torch.get_num_threads()}; {len(texts)} review sentences for the encoder test")

    timings = {}
    for name, fn in [("one at a time", lambda: _encode_plain(enc, texts, 1)),
                     ("batch 32, document order", lambda: _encode_plain(enc, texts, 32)),
                     ("batch 32, sorted by length", lambda: enc.encode(texts, batch_size=32))]:
        t0 = time.perf_counter()
        vecs = fn()
        timings[name] = time.perf_counter() - t0
        print(f"  {name:28s} {timings[name]:7.2f} s  {len(texts) / timings[name]:7.1f} sentences/s")
    ref = _encode_plain(enc, texts, 1)
    print(f"  max |difference| sorted-batch vs one-at-a-time: {(vecs - ref).abs().max():.2e}")
    base = timings["one at a time"]
    for k, v in timings.items():
        print(f"  speed-up over one at a time, {k}: {base / v:.2f}x")

    t0 = time.perf_counter()
    ans = answer("Did the medication help with anxiety?", doc, enc)
    t_qa = time.perf_counter() - t0
    t0 = time.perf_counter()
    summ = summarize(doc, enc, method="textrank", max_sentences=5)
    t_sum = time.perf_counter() - t0
    print(f"100,000-character document, {len(spans):,} sentences: answer {t_qa:.1f} s, "
          f"textrank summary {t_sum:.1f} s (score {ans.score:.3f}: {ans.text[:80]!r})")
    print(f"  summary keeps sentences {list(summ.kept)}")

    rows = qa_rows()
    hits, ems, f1s = 0, [], []
    for r in rows:
        a_ = answer(r["question"], r["context"], enc)
        em, f1 = exact_match_f1(a_.text, r["answers"])
        ems.append(em)
        f1s.append(f1)
        hits += any(normalize_answer(g) in normalize_answer(a_.text) for g in r["answers"])
    print(f"sample questions ({len(rows)}): sentence holds a gold answer {hits}/{len(rows)}, "
          f"mean EM {sum(ems) / len(rows):.3f}, mean token F1 {sum(f1s) / len(rows):.3f}")


if __name__ == "__main__":
    main()
