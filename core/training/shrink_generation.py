"""The eval split of a causal-lm or seq2seq run as a `Bench` (core.training.shrink_data) for the shrink report.

    causal-lm  the run's evaluation blocks (packing) or rows (padding), collated as the run evaluated them; a model's
               logits are reduced per batch to each label's log-probability and the argmax token (logits of every
               block at once would be rows × tokens × vocabulary floats); the metric is perplexity, exp of the mean
               loss per predicted token (the run's own definition), and next-token accuracy; a "prediction" is the
               argmax next token at each predicted position; the output compared with fp32 is the labels'
               log-probability. Latency is one forward pass over a block (what perplexity costs), not generation.
               ONNX is the same forward pass exported (logits).
    seq2seq    the run's evaluation sources; what is scored and timed is greedy `generate()` up to
               max_target_length tokens, as the run's Seq2SeqTrainer evaluated (predict_with_generate,
               generation_max_length); ROUGE-1 / ROUGE-L against the decoded labels (the run's references); a
               "prediction" is the generated text. ONNX is not offered: see NO_ONNX_SEQ2SEQ.
"""
from __future__ import annotations

from types import SimpleNamespace

from core.settings import Settings
from core.training.config import TrainingConfig
from core.training.shrink_data import Bench
from core.training.store import RunRecord

IGNORED = -100
SCORING_FLOATS = 2**26  # at most this many logits (256 MB of float32) per scoring batch of a causal LM
NO_ONNX_SEQ2SEQ = ("not offered for sequence-to-sequence runs: generate() runs the encoder once, then the decoder "
                   "once per new token with a key/value cache; one exported forward graph doesn't cover that loop "
                   "(it takes separate encoder and decoder-with-past graphs and a generation loop around them, "
                   "Hugging Face Optimum's export), so only torch's int8 is compared here")


def bench(run: RunRecord, settings: Settings, tokenizer, max_rows: int, latency_rows: int, batch_size: int) -> Bench:
    config = TrainingConfig.from_dict(run.config)
    if config.task == "causal-lm":
        return _causal(run, config, settings, max_rows, latency_rows, batch_size)
    return _seq2seq(run, config, settings, max_rows, latency_rows, batch_size)


def _prepared(run: RunRecord, config: TrainingConfig, settings: Settings):
    from core.training import generation as G

    prepared = G.prepare(config, settings, str(run.model_dir))
    if len(prepared.eval) == 0:
        raise ValueError(f"run {run.id}'s eval split is empty")
    return prepared


def token_logprobs(logits, labels):
    """(log-probability of each next-token label [rows, T - 1], 0 where the label is ignored; the argmax token
    [rows, T - 1]) of a causal LM's logits [rows, T, vocabulary]: position t predicts the label at t + 1."""
    import torch

    logits = torch.as_tensor(logits, dtype=torch.float32)
    labels = torch.as_tensor(labels)
    nxt = labels[:, 1:]
    keep = nxt != IGNORED
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, nxt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(keep, logp, torch.zeros_like(logp)).numpy(), logits[:, :-1].argmax(-1).numpy()


def _causal(run, config, settings, max_rows, latency_rows, batch_size) -> Bench:
    import math

    import numpy as np
    from transformers import default_data_collator

    from core.training.generation import PadCollator

    prepared = _prepared(run, config, settings)
    tok = prepared.tokenizer
    collate = default_data_collator if prepared.packing else PadCollator(tok)  # as the run collated
    ev = prepared.eval.select(range(min(max_rows, len(prepared.eval))))
    feats = [{k: ev[i][k] for k in ("input_ids", "attention_mask", *(("labels",) if prepared.packing else ()))}
             for i in range(len(ev))]

    def batch(rows: list[dict]) -> tuple[dict, object]:
        b = collate(rows)
        return {k: b[k] for k in ("input_ids", "attention_mask")}, b["labels"]

    longest = max(len(f["input_ids"]) for f in feats)
    step = max(1, min(batch_size, SCORING_FLOATS // max(1, longest * len(tok))))
    encoded = [batch(feats[b:b + step]) for b in range(0, len(feats), step)]
    scoring, gold = [e[0] for e in encoded], [e[1] for e in encoded]
    single = [batch(feats[i:i + 1])[0] for i in range(min(len(feats), latency_rows))]
    batched = [batch(feats[b:b + batch_size])[0] for b in range(0, min(len(feats), 2 * batch_size), batch_size)]

    def reduce(i: int, outs: tuple) -> tuple:
        return token_logprobs(outs[0], gold[i])

    def score(outs):
        nll, n, right, preds = 0.0, 0, 0, []
        for (logp, top), labels in zip(outs, gold, strict=True):
            keep = np.asarray(labels)[:, 1:] != IGNORED
            nll -= float(np.asarray(logp, dtype=np.float64)[keep].sum())
            n += int(keep.sum())
            hits = np.asarray(top)[keep]
            right += int((hits == np.asarray(labels)[:, 1:][keep]).sum())
            preds.extend(int(t) for t in hits)
        ppl = math.exp(nll / n) if n and nll / n < 700 else float("inf")
        return {"perplexity": ppl, "next-token accuracy": right / n if n else 0.0}, preds

    unit = "block" if prepared.packing else "row"
    what = (f"{len(ev)} evaluation blocks of {config.max_length} tokens" if prepared.packing else
            f"{len(ev)} evaluation rows (one per example, up to {config.max_length} tokens, padded per batch)")
    notes = [f"{what}; perplexity = exp(mean loss per predicted token), as the run computes it; a prediction is the "
             "argmax next token at each predicted position; the output compared with fp32 is each label's "
             "log-probability (nats)",
             f"latency is one forward pass per {unit} (the logits perplexity needs), not text generation"]
    if step < batch_size:
        notes.append(f"scored {step} {unit}s per forward pass (the logits of {batch_size} would take "
                     f"{batch_size * longest * len(tok) * 4 / 1e9:.1f} GB)")
    if _tied(run):
        notes.append("the output layer shares the fp32 embedding table (tied weights); torch's int8 file stores an "
                     "int8 copy of it beside that table")
    return Bench(scoring, single, batched, ["logits"], score, len(ev), unit=unit, notes=notes, reduce=reduce,
                 compared=1)


def _tied(run: RunRecord) -> bool:
    import json
    from pathlib import Path

    cfg = json.loads(Path(run.model_dir, "config.json").read_text())
    return bool(cfg.get("tie_word_embeddings", True))


class Generate:
    """A seq2seq model called like the scored models: `model(**batch).sequences` is its greedy generate() output,
    decoded as the run's Seq2SeqTrainer evaluated (generation_max_length = max_target_length)."""

    def __init__(self, model, max_length: int, pad: int):
        self.model, self.max_length, self.pad = model, max_length, pad

    def __call__(self, **batch):
        import torch

        out = self.model.generate(**batch, max_length=self.max_length, num_beams=1, do_sample=False)
        # rows that stop early are padded; pad every batch to max_length so the outputs line up across variants
        out = torch.nn.functional.pad(out, (0, self.max_length - out.shape[1]), value=self.pad)
        return SimpleNamespace(sequences=out)

    def eval(self):
        return self


def _seq2seq(run, config, settings, max_rows, latency_rows, batch_size) -> Bench:
    import numpy as np

    from core.training.generation_metrics import mean_rouge

    prepared = _prepared(run, config, settings)
    tok = prepared.tokenizer
    ev = prepared.eval.select(range(min(max_rows, len(prepared.eval))))
    feats = [{k: ev[i][k] for k in ("input_ids", "attention_mask")} for i in range(len(ev))]
    refs = tok.batch_decode([[t for t in row if t != IGNORED] for row in ev["labels"]], skip_special_tokens=True)

    def batch(rows: list[dict]) -> dict:
        return dict(tok.pad(rows, return_tensors="pt"))

    scoring = [batch(feats[b:b + batch_size]) for b in range(0, len(feats), batch_size)]
    single = [batch(feats[i:i + 1]) for i in range(min(len(feats), latency_rows))]
    pad = tok.pad_token_id

    def score(outs):
        rows = [[int(t) for t in row] for o in outs for row in np.asarray(o[0])]
        texts = tok.batch_decode(rows, skip_special_tokens=True)
        r = mean_rouge(texts, refs)
        return {"ROUGE-L": r["rougeL"], "ROUGE-1": r["rouge1"]}, texts

    notes = [f"{len(ev)} evaluation rows; what is scored and timed is greedy generate() up to "
             f"{config.max_target_length} tokens, as the run evaluated (predict_with_generate), so latency is per "
             "generated output, not one forward pass; a variant that ends its outputs sooner or later is faster or "
             "slower for that reason too; a prediction is the generated text (agreement: the same text as fp32's)",
             "ROUGE against the decoded labels (targets cut to max_target_length), as the run's own ROUGE"]
    return Bench(scoring, single, scoring[:2], ["sequences"], score, len(ev), notes=notes, compared=0,
                 wrap=lambda model: Generate(model, config.max_target_length, pad), no_onnx=NO_ONNX_SEQ2SEQ)
