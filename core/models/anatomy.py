"""One forward pass, opened: embeddings, every layer's hidden state, attention and FFN output.

The model's own tensors come from `output_attentions=True`, `output_hidden_states=True` and
forward hooks; the step-by-step recomputation in `core.models.attention` is checked against them.
"""
from __future__ import annotations

from collections.abc import Sequence

from core.models.loading import LoadedModel
from core.models.types import ATOL, Anatomy, AnatomyError, Check

# per family: hook name -> (sub-module path inside one layer, what to keep)
#   "out": the module's output (first element of a tuple), "in": its first input
HOOKS = {
    "bert": {"query": ("attention.self.query", "out"), "key": ("attention.self.key", "out"),
             "value": ("attention.self.value", "out"), "context": ("attention.self", "out"),
             "projected": ("attention.output.dense", "out"), "attention_output": ("attention.output", "out"),
             "ffn": ("output.dense", "out"), "layer_output": ("", "out")},
    "gpt2": {"qkv": ("attn.c_attn", "out"), "context": ("attn.c_proj", "in"), "projected": ("attn.c_proj", "out"),
             "ffn": ("mlp", "out"), "layer_output": ("", "out")},
    "bart": {"query": ("self_attn.q_proj", "out"), "key": ("self_attn.k_proj", "out"),
             "value": ("self_attn.v_proj", "out"), "context": ("self_attn.out_proj", "in"),
             "projected": ("self_attn.out_proj", "out"), "attention_output": ("self_attn_layer_norm", "out"),
             "ffn": ("fc2", "out"), "layer_output": ("", "out")},
}
HOOK_SOURCE = {  # in words, for the checks the page lists
    "bert": "forward hook on encoder.layer[{l}].{path}", "gpt2": "forward hook on transformer.h[{l}].{path}",
    "bart": "forward hook on encoder.layers[{l}].{path}",
}


def encode(lm: LoadedModel, text: str) -> tuple[list[int], bool]:
    """Token ids for `text` (special tokens for encoders; none for decoders), cut to the model's limit."""
    if not text.strip():
        raise AnatomyError("type a text to look at")
    ids = lm.tokenizer(text, add_special_tokens=lm.kind == "encoder")["input_ids"]
    if not ids:
        raise AnatomyError("the text has no tokens")
    truncated = len(ids) > lm.max_tokens
    if truncated and lm.kind == "encoder":  # keep [SEP] at the end, as the tokenizer's own truncation does
        ids = ids[: lm.max_tokens - 1] + ids[-1:]
    return ids[: lm.max_tokens], truncated


def _sub(layer, path: str):
    mod = layer
    for part in filter(None, path.split(".")):
        mod = getattr(mod, part)
    return mod


def _attach(lm: LoadedModel, store: dict) -> list:
    """Forward hooks that keep each layer's intermediate tensors in `store[(name, layer)]`."""
    handles = []
    for i, layer in enumerate(lm.layers):
        for name, (path, what) in HOOKS[lm.family].items():
            def hook(_m, args, out, key=(name, i), what=what):
                value = args[0] if what == "in" else (out[0] if isinstance(out, tuple) else out)
                store[key] = value[0].detach()  # drop the batch axis
            handles.append(_sub(layer, path).register_forward_hook(hook))
    return handles


def _embedding_parts(lm: LoadedModel, ids_t):
    """(token, position, token-type or None, formula, the sum as the model forms it) for one text."""
    import torch.nn.functional as F

    T = ids_t.shape[-1]
    if lm.family == "gpt2":
        tok, pos = lm.base.wte.weight[ids_t], lm.base.wpe.weight[:T]
        return tok, pos, None, "token + position", tok + pos
    if lm.family == "bart":  # the token row times embed_scale (1 unless scale_embedding); positions start at row 2
        enc = lm.base
        tok = enc.embed_tokens.weight[ids_t] * enc.embed_tokens.embed_scale
        off = enc.embed_positions.offset
        pos = enc.embed_positions.weight[off: off + T]
        ln = enc.layernorm_embedding
        total = F.layer_norm(tok + pos, (tok.shape[-1],), ln.weight, ln.bias, ln.eps)
        return tok, pos, None, "LayerNorm(token · embed_scale + position)", total
    emb = lm.base.embeddings
    tok, pos = emb.word_embeddings.weight[ids_t], emb.position_embeddings.weight[:T]
    typ = emb.token_type_embeddings.weight[0].expand_as(tok)  # one segment: every token_type_id is 0
    total = F.layer_norm(tok + pos + typ, (tok.shape[-1],), emb.LayerNorm.weight, emb.LayerNorm.bias,
                         emb.LayerNorm.eps)
    return tok, pos, typ, "LayerNorm(token + position + token type)", total


def compare(name: str, recomputed, reference, source: str) -> Check:
    """torch.allclose at ATOL, with the largest difference for the page to show."""
    import torch

    if recomputed.shape != reference.shape:
        return Check(name, source, False, float("inf"))
    diff = float((recomputed - reference).abs().max()) if recomputed.numel() else 0.0
    # max |diff| ≤ atol already satisfies allclose (|a - b| ≤ atol + rtol·|b|): skip its second pass then
    matched = diff <= ATOL or bool(torch.allclose(recomputed, reference, atol=ATOL))
    return Check(name, source, matched, diff)


def pad_id(lm: LoadedModel) -> int:
    """The id padding positions hold: the tokenizer's pad token, else its end-of-text token (GPT-2 has no pad)."""
    tok = lm.tokenizer
    for i in (tok.pad_token_id, tok.eos_token_id):
        if i is not None:
            return int(i)
    return 0


def padded_batch(lm: LoadedModel, rows: Sequence[Sequence[int]]):
    """(input_ids, attention_mask) of `rows` padded on the right to the longest (what `tokenizer(…, padding=True)`
    gives for BERT; right, not left, so a decoder's positions stay 0, 1, 2… without position_ids)."""
    import torch

    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id(lm), dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[b, : len(r)] = 1
    return ids, mask


def run_anatomy(lm: LoadedModel, ids: list[int], truncated: bool = False,
                batch_with: Sequence[int] | None = None) -> Anatomy:
    """Run the model once on `ids` and keep every intermediate the page shows.

    With `batch_with`, `ids` goes through the model as row 0 of a batch with that second text, both padded on the
    right to the longer one: when `ids` is the shorter, its Anatomy holds the [PAD] positions and their mask.
    """
    import torch

    rows = [list(ids)] + ([list(batch_with)] if batch_with is not None else [])
    ids_t, mask_t = padded_batch(lm, rows)
    store: dict = {}
    handles = _attach(lm, store)
    try:
        with torch.inference_mode():
            out = lm.runner(input_ids=ids_t, attention_mask=mask_t, output_attentions=True, output_hidden_states=True)
            tok, pos, typ, formula, total = _embedding_parts(lm, ids_t[0])
    finally:
        for h in handles:
            h.remove()
    L = len(lm.layers)
    emb_out = out.hidden_states[0][0]
    # the residual stream: GPT-2's last hidden state has ln_f applied, so every layer's output comes from its hook
    hidden = torch.stack([emb_out] + [store[("layer_output", i)] for i in range(L)])
    real = len(ids)  # row 0's own tokens; the rest of it, if any, is padding
    # the next token follows the last real token, not the padding after it
    logits = out.logits[0, real - 1].float().numpy().copy() if lm.kind == "decoder" else None
    emb_check = compare(f"{formula} = embedding output", total, emb_out, "output_hidden_states[0]")
    state_checks = [compare(f"layer {i} output = hidden_states[{i + 1}]", store[("layer_output", i)],
                            out.hidden_states[i + 1][0], f"output_hidden_states[{i + 1}]")
                    for i in range(L - (1 if lm.family == "gpt2" else 0))]  # GPT-2's last one is after ln_f
    row_ids = ids_t[0].tolist()
    return Anatomy(
        model_name=lm.name, kind=lm.kind, tokens=lm.tokenizer.convert_ids_to_tokens(row_ids), ids=row_ids,
        truncated=truncated, num_layers=L, num_heads=lm.num_heads, head_dim=lm.head_dim,
        token_embeddings=tok.detach().numpy(), position_embeddings=pos.detach().numpy(),
        token_type_embeddings=None if typ is None else typ.detach().numpy(), embedding_output=emb_out.numpy(),
        hidden_states=hidden.numpy(), layer_attentions=[a[0].numpy() for a in out.attentions],
        ffn_outputs=torch.stack([store[("ffn", i)] for i in range(L)]).numpy(),
        next_token_logits=logits, checks=[emb_check, *state_checks], references=store,
        padding=mask_t[0].bool().numpy() if real < len(row_ids) else None, batch_size=len(rows),
    )


def inspect_text(lm: LoadedModel, text: str, batch_with: str | None = None) -> Anatomy:
    """Tokenize `text` and open the forward pass (the page's one call per model and text).

    With `batch_with`, the text goes through the model batched with that second text, padded to the longer.
    """
    ids, truncated = encode(lm, text)
    other = encode(lm, batch_with)[0] if batch_with is not None else None
    return run_anatomy(lm, ids, truncated, other)
