""""Try it" for a saved from-scratch model: each folder is reloaded with its own class, found from config.json."""
from __future__ import annotations

import json
from pathlib import Path

MAX_INPUTS = 64


def model_kind(model_dir: str | Path) -> str:
    """classifier | seq2seq | gpt, from the saved config's model_type."""
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"no readable model in {model_dir}: {e}") from None
    kind = {"torchlab-scratch": "classifier", "torchlab-seq2seq": "seq2seq", "gpt2": "gpt"}.get(cfg.get("model_type"))
    if kind is None:
        raise ValueError(f"{model_dir} holds a {cfg.get('model_type')!r} model, not a from-scratch one")
    return kind


def predict(model_dir: str | Path, inputs: list, max_new_tokens: int = 40, seed: int = 0) -> list[dict]:
    """Classifiers: numbers (one list per example) or texts -> {"label", "probabilities"}.
    seq2seq: symbol sequences (lists of 0..symbols-1, or "3 1 4" strings) -> {"output"}.
    gpt: prompts -> {"text"} (sampled, top-k 50, seeded)."""
    import torch

    if not isinstance(inputs, list) or not inputs:
        raise ValueError("give a non-empty list of inputs")
    if len(inputs) > MAX_INPUTS:
        raise ValueError(f"at most {MAX_INPUTS} inputs at once, got {len(inputs)}")
    kind = model_kind(model_dir)
    with torch.no_grad():
        if kind == "classifier":
            return _classify(model_dir, inputs)
        if kind == "seq2seq":
            return _transduce(model_dir, inputs)
        return _generate(model_dir, inputs, max_new_tokens, seed)


def _tokenizer(model_dir):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(model_dir))


def _classify(model_dir, inputs: list) -> list[dict]:
    import torch

    from core.scratch.models import ScratchClassifier

    model = ScratchClassifier.from_pretrained(str(model_dir)).eval()
    cfg = model.config
    if cfg.input_dtype == "long":
        if not all(isinstance(t, str) for t in inputs):
            raise ValueError("this model reads text: give a list of strings")
        tok = _tokenizer(model_dir)
        enc = tok(inputs, truncation=True, max_length=cfg.input_shape[0], padding=True, return_tensors="pt")
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    else:
        n = len(cfg.feature_mean or [])
        try:
            x = torch.tensor([[float(v) for v in row] for row in inputs], dtype=torch.float32)
        except (TypeError, ValueError):
            raise ValueError(f"this model reads numbers: give one list of {n} numbers per example") from None
        if x.dim() != 2 or x.size(1) != n:
            raise ValueError(f"each example needs {n} numbers, got shape {tuple(x.shape)}")
        logits = model(inputs=x).logits
    probs = logits.softmax(-1)
    names = [cfg.id2label[i] for i in range(cfg.num_labels)]
    return [{"label": names[int(p.argmax())], "probabilities": dict(zip(names, map(float, p), strict=True))}
            for p in probs]


def _transduce(model_dir, inputs: list) -> list[dict]:
    import torch

    from core.scratch.models import Seq2SeqTransformer

    model = Seq2SeqTransformer.from_pretrained(str(model_dir)).eval()
    symbols = model.config.vocab_size - 3
    seqs = []
    for s in inputs:
        vals = [int(v) for v in s.split()] if isinstance(s, str) else [int(v) for v in s]
        if not vals or len(vals) > model.config.max_len or not all(0 <= v < symbols for v in vals):
            raise ValueError(f"each sequence needs 1 to {model.config.max_len} symbols from 0 to {symbols - 1}")
        seqs.append([v + 3 for v in vals])
    n = max(map(len, seqs))
    ids = torch.tensor([s + [0] * (n - len(s)) for s in seqs])
    out = model.greedy(ids, (ids != 0).long())
    results = []
    for row in out.tolist():
        syms = []
        for t in row:
            if t == model.config.eos_token_id or t == model.config.pad_token_id:
                break
            syms.append(t - 3 if t >= 3 else t)
        results.append({"output": syms})
    return results


def _generate(model_dir, inputs: list, max_new_tokens: int, seed: int) -> list[dict]:
    import torch

    from core.scratch.models import TinyGPT

    if not all(isinstance(t, str) for t in inputs):
        raise ValueError("give a list of prompts (strings)")
    model = TinyGPT.from_pretrained(str(model_dir)).eval()
    tok = _tokenizer(model_dir)
    torch.manual_seed(seed)
    out = []
    for prompt in inputs:
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        if ids.size(1) == 0:
            ids = torch.tensor([[tok.eos_token_id]])
        room = max(1, min(max_new_tokens, model.config.n_positions - ids.size(1)))
        gen = model.generate(ids[:, -model.config.n_positions + 1:], attention_mask=torch.ones_like(ids),
                             max_new_tokens=room, do_sample=True, top_k=50, pad_token_id=tok.pad_token_id)
        out.append({"text": tok.decode(gen[0], skip_special_tokens=True)})
    return out
