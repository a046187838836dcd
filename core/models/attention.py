"""Self-attention of one (layer, head) recomputed from the layer's own weights, and checked.

    Q = X·W_Q + b_Q,  K = X·W_K + b_K,  V = X·W_V + b_V          (X: the layer's input; GPT-2: ln_1 of it)
    scores = Q·Kᵀ / √d_k,  weights = softmax(scores + mask),  context = weights·V
    all heads' contexts side by side · W_O + b_O  (BERT then: LayerNorm(that + X))

Every step is compared with what the model produced in the same forward pass (hooks and
`output_attentions`), so the page can say which numbers it has proved.
"""
from __future__ import annotations

import numpy as np

from core.models.anatomy import HOOK_SOURCE, HOOKS, compare
from core.models.loading import LoadedModel
from core.models.types import Anatomy, AnatomyError, Check, HeadWalk


def _weights(lm: LoadedModel, layer: int) -> dict:
    """The layer's projection matrices in the x·W convention: W is (in, out)."""
    blk = lm.layers[layer]
    if lm.family == "gpt2":  # Conv1D stores (in, out) already; c_attn holds Q, K, V side by side
        H = lm.config.hidden_size
        W, b = blk.attn.c_attn.weight, blk.attn.c_attn.bias
        return {"q": (W[:, :H], b[:H]), "k": (W[:, H:2 * H], b[H:2 * H]), "v": (W[:, 2 * H:], b[2 * H:]),
                "o": (blk.attn.c_proj.weight, blk.attn.c_proj.bias)}
    if lm.family == "bart":  # nn.Linear stores (out, in): transpose
        sa = blk.self_attn
        return {"q": (sa.q_proj.weight.T, sa.q_proj.bias), "k": (sa.k_proj.weight.T, sa.k_proj.bias),
                "v": (sa.v_proj.weight.T, sa.v_proj.bias), "o": (sa.out_proj.weight.T, sa.out_proj.bias)}
    sa, so = blk.attention.self, blk.attention.output
    return {"q": (sa.query.weight.T, sa.query.bias), "k": (sa.key.weight.T, sa.key.bias),
            "v": (sa.value.weight.T, sa.value.bias), "o": (so.dense.weight.T, so.dense.bias)}


def scaling_of(lm: LoadedModel, layer: int) -> float:
    scale = lm.head_dim ** -0.5
    if lm.family == "gpt2":
        scale = scale if lm.config.scale_attn_weights else 1.0
        if lm.config.scale_attn_by_inverse_layer_idx:
            scale /= float(layer + 1)
    return scale


def attention_mask(seq_len: int, causal: bool, padding=None) -> np.ndarray:
    """(T, T) True where query i may look at key j: not a padding key, and j ≤ i when causal."""
    allowed = np.ones((seq_len, seq_len), dtype=bool)
    if padding is not None:
        allowed &= np.asarray(padding, dtype=bool)[None, :]
    if causal:
        allowed &= np.tril(np.ones((seq_len, seq_len), dtype=bool))
    return allowed


def masked_softmax(scores, allowed):
    """softmax(scores + mask) with mask = 0 where allowed, the float32 minimum elsewhere (as transformers)."""
    import torch

    scores = torch.as_tensor(scores)
    additive = torch.where(torch.as_tensor(allowed), 0.0, torch.finfo(scores.dtype).min)
    return torch.softmax(scores + additive, dim=-1)


def _ffn(lm: LoadedModel, layer: int, h):
    """The feed-forward block on `h` (BERT: after attention; GPT-2: the stream, ln_2 inside)."""
    import torch.nn.functional as F
    from transformers.activations import ACT2FN

    blk = lm.layers[layer]
    if lm.family == "gpt2":
        x = F.layer_norm(h, h.shape[-1:], blk.ln_2.weight, blk.ln_2.bias, blk.ln_2.eps)
        act = ACT2FN[lm.config.activation_function]
        return act(x @ blk.mlp.c_fc.weight + blk.mlp.c_fc.bias) @ blk.mlp.c_proj.weight + blk.mlp.c_proj.bias
    if lm.family == "bart":
        act = ACT2FN[lm.config.activation_function]
        return act(h @ blk.fc1.weight.T + blk.fc1.bias) @ blk.fc2.weight.T + blk.fc2.bias
    act = ACT2FN[lm.config.hidden_act]
    inner = act(h @ blk.intermediate.dense.weight.T + blk.intermediate.dense.bias)
    return inner @ blk.output.dense.weight.T + blk.output.dense.bias


def _recompute_layer(lm: LoadedModel, anatomy: Anatomy, layer: int) -> dict:
    """The layer's attention and feed-forward recomputed for every head from the weights (the verification)."""
    import torch.nn.functional as F

    nH, d = anatomy.num_heads, anatomy.head_dim
    blk, fam = lm.layers[layer], lm.family
    h_in = _t(anatomy.hidden_states[layer])
    x = _input(lm, layer, h_in)
    W = _weights(lm, layer)
    q, k, v = (x @ W[n][0] + W[n][1] for n in "qkv")  # (T, H) all heads
    T = q.shape[0]
    heads = lambda t: t.view(T, nH, d).transpose(0, 1)  # noqa: E731  (nH, T, d)
    scores = heads(q) @ heads(k).transpose(-1, -2) * scaling_of(lm, layer)
    weights = masked_softmax(scores, attention_mask(T, causal=lm.kind == "decoder", padding=anatomy.padding))
    concat = (weights @ heads(v)).transpose(0, 1).reshape(T, nH * d)
    projected = concat @ W["o"][0] + W["o"][1]
    if fam != "gpt2":  # post-LayerNorm (BERT, BART): normalise after each residual add
        ln, ln2 = ((blk.self_attn_layer_norm, blk.final_layer_norm) if fam == "bart"
                   else (blk.attention.output.LayerNorm, blk.output.LayerNorm))
        attn_out = F.layer_norm(projected + h_in, h_in.shape[-1:], ln.weight, ln.bias, ln.eps)
        ffn = _ffn(lm, layer, attn_out)
        out = F.layer_norm(ffn + attn_out, h_in.shape[-1:], ln2.weight, ln2.bias, ln2.eps)
    else:
        attn_out = projected
        ffn = _ffn(lm, layer, h_in + projected)
        out = h_in + projected + ffn
    return {"q": q, "k": k, "v": v, "weights": weights, "concat": concat, "projected": projected,
            "attention_output": attn_out, "ffn": ffn, "layer_output": out}


def _t(a: np.ndarray):
    import torch

    return torch.from_numpy(a)


def _input(lm: LoadedModel, layer: int, h_in):
    """What the attention reads: the residual stream (BERT, BART) or ln_1 of it (GPT-2, pre-LayerNorm)."""
    import torch.nn.functional as F

    if lm.family != "gpt2":
        return h_in
    ln = lm.layers[layer].ln_1
    return F.layer_norm(h_in, h_in.shape[-1:], ln.weight, ln.bias, ln.eps)


def _both(name: str, full, ref, head_value, head_ref, source: str) -> Check:
    """One check over every head recomputed and over the single head the page shows (its own slices)."""
    a, b = compare(name, full, ref, source), compare(name, head_value, head_ref, source)
    return Check(name, source, a.matched and b.matched, max(a.max_abs_diff, b.max_abs_diff))


def verify_walk(lm: LoadedModel, anatomy: Anatomy, walk: HeadWalk) -> list[Check]:
    """Recompute the walk's whole layer from the weights and compare every step with the model's own tensors.

    The nine checks cover every head of the layer and, for the first five, the head the walk shows.
    """
    import torch

    layer, head, d, fam = walk.layer, walk.head, anatomy.head_dim, lm.family
    refs, sl = anatomy.references, slice(head * d, (head + 1) * d)
    src = lambda name: HOOK_SOURCE[fam].format(l=layer, path=HOOKS[fam][name][0] or "(the layer)")  # noqa: E731
    with torch.inference_mode():
        r = _recompute_layer(lm, anatomy, layer)
        if fam == "gpt2":
            H = anatomy.num_heads * d
            ref_qkv = refs[("qkv", layer)]
            ref = {"q": ref_qkv[:, :H], "k": ref_qkv[:, H:2 * H], "v": ref_qkv[:, 2 * H:]}
            qkv_src = dict.fromkeys("qkv", src("qkv"))
        else:
            ref = {"q": refs[("query", layer)], "k": refs[("key", layer)], "v": refs[("value", layer)]}
            qkv_src = {"q": src("query"), "k": src("key"), "v": src("value")}
        own = _t(anatomy.layer_attentions[layer])
        mine = {n: _t(getattr(walk, n)) for n in ("q", "k", "v", "weights", "context")}
        checks = [_both(f"{n.upper()} = X·W_{n.upper()} + b_{n.upper()}", r[n], ref[n], mine[n], ref[n][:, sl],
                        qkv_src[n]) for n in "qkv"]
        checks += [
            _both("softmax(Q·Kᵀ/√d_k + mask), every head", r["weights"], own, mine["weights"], own[head],
                  f"output_attentions[{layer}]"),
            _both("weights·V, heads concatenated", r["concat"], refs[("context", layer)], mine["context"],
                  refs[("context", layer)][:, sl], src("context")),
            compare("concat·W_O + b_O", r["projected"], refs[("projected", layer)], src("projected")),
        ]
        if fam != "gpt2":
            checks.append(compare("LayerNorm(concat·W_O + b_O + X)", r["attention_output"],
                                  refs[("attention_output", layer)], src("attention_output")))
        checks += [compare("feed-forward block", r["ffn"], refs[("ffn", layer)], src("ffn")),
                   compare("layer output (residual + feed-forward)", r["layer_output"], refs[("layer_output", layer)],
                           src("layer_output"))]
    return checks


def walk_head(lm: LoadedModel, anatomy: Anatomy, layer: int, head: int, verify: bool = True) -> HeadWalk:
    """Recompute (layer, head) from the weights; with `verify`, check every step against the model's own.

    Without `verify` only the one head is recomputed (a 1/nH slice of the layer's attention, no
    feed-forward), so a page can draw it at once and run `verify_walk` after.
    """
    import torch

    L, nH, d = anatomy.num_layers, anatomy.num_heads, anatomy.head_dim
    if not (0 <= layer < L and 0 <= head < nH):
        raise AnatomyError(f"layer must be 0–{L - 1} and head 0–{nH - 1}")
    refs, sl = anatomy.references, slice(head * d, (head + 1) * d)
    with torch.inference_mode():
        x = _input(lm, layer, _t(anatomy.hidden_states[layer]))
        W = _weights(lm, layer)
        w_q, w_k, w_v = (W[n][0][:, sl] for n in "qkv")
        q, k, v = (x @ W[n][0][:, sl] + W[n][1][sl] for n in "qkv")  # (T, d): this head's columns only
        scale = scaling_of(lm, layer)
        scores = q @ k.T * scale
        allowed = attention_mask(q.shape[0], causal=lm.kind == "decoder", padding=anatomy.padding)
        weights = masked_softmax(scores, allowed)
        context = weights @ v
        projected = refs[("projected", layer)]
        walk = HeadWalk(
            layer=layer, head=head, kind=anatomy.kind, scaling=scale, x=x.numpy(), w_q=w_q.detach().numpy(),
            w_k=w_k.detach().numpy(), w_v=w_v.detach().numpy(), q=q.numpy(), k=k.numpy(), v=v.numpy(),
            scores=scores.numpy(), mask=allowed, weights=weights.numpy(), context=context.numpy(),
            concat=refs[("context", layer)].numpy(), projected=projected.numpy(),
            attention_output=refs.get(("attention_output", layer), projected).numpy(),
            layer_output=refs[("layer_output", layer)].numpy(), padding=anatomy.padding,
        )
    if verify:
        walk.checks = verify_walk(lm, anatomy, walk)
    return walk


def compare_masks(walk: HeadWalk) -> tuple[np.ndarray, np.ndarray]:
    """(bidirectional, causal) weights of the same head on the same scores: encoder vs decoder (padding kept)."""
    T = walk.scores.shape[0]
    both = [masked_softmax(walk.scores, attention_mask(T, causal=c, padding=walk.padding)).numpy()
            for c in (False, True)]
    return both[0], both[1]
