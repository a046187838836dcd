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
from core.models.types import Anatomy, AnatomyError, HeadSummary, HeadWalk


def _weights(lm: LoadedModel, layer: int) -> dict:
    """The layer's projection matrices in the x·W convention: W is (in, out)."""
    blk = lm.layers[layer]
    if lm.family == "gpt2":  # Conv1D stores (in, out) already; c_attn holds Q, K, V side by side
        H = lm.config.hidden_size
        W, b = blk.attn.c_attn.weight, blk.attn.c_attn.bias
        return {"q": (W[:, :H], b[:H]), "k": (W[:, H:2 * H], b[H:2 * H]), "v": (W[:, 2 * H:], b[2 * H:]),
                "o": (blk.attn.c_proj.weight, blk.attn.c_proj.bias)}
    sa, so = blk.attention.self, blk.attention.output  # nn.Linear stores (out, in): transpose
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
    act = ACT2FN[lm.config.hidden_act]
    inner = act(h @ blk.intermediate.dense.weight.T + blk.intermediate.dense.bias)
    return inner @ blk.output.dense.weight.T + blk.output.dense.bias


def walk_head(lm: LoadedModel, anatomy: Anatomy, layer: int, head: int) -> HeadWalk:
    """Recompute (layer, head) from the weights and compare each step with the model's own tensors."""
    import torch
    import torch.nn.functional as F

    L, nH, d = anatomy.num_layers, anatomy.num_heads, anatomy.head_dim
    if not (0 <= layer < L and 0 <= head < nH):
        raise AnatomyError(f"layer must be 0–{L - 1} and head 0–{nH - 1}")
    refs, fam = anatomy.references, lm.family
    blk = lm.layers[layer]
    src = lambda name: HOOK_SOURCE[fam].format(l=layer, path=HOOKS[fam][name][0] or "(the layer)")  # noqa: E731
    with torch.inference_mode():
        h_in = torch.from_numpy(anatomy.hidden_states[layer])
        x = h_in if fam == "bert" else F.layer_norm(h_in, h_in.shape[-1:], blk.ln_1.weight, blk.ln_1.bias,
                                                    blk.ln_1.eps)
        W = _weights(lm, layer)
        q, k, v = (x @ W[n][0] + W[n][1] for n in "qkv")  # (T, H) all heads
        T = q.shape[0]
        heads = lambda t: t.view(T, nH, d).transpose(0, 1)  # noqa: E731  (nH, T, d)
        scale = scaling_of(lm, layer)
        scores = heads(q) @ heads(k).transpose(-1, -2) * scale
        allowed = attention_mask(T, causal=lm.kind == "decoder")
        weights = masked_softmax(scores, allowed)
        context = weights @ heads(v)
        concat = context.transpose(0, 1).reshape(T, nH * d)
        projected = concat @ W["o"][0] + W["o"][1]
        if fam == "bert":
            ln = blk.attention.output.LayerNorm
            attn_out = F.layer_norm(projected + h_in, h_in.shape[-1:], ln.weight, ln.bias, ln.eps)
            ln2 = blk.output.LayerNorm
            ffn = _ffn(lm, layer, attn_out)
            out = F.layer_norm(ffn + attn_out, h_in.shape[-1:], ln2.weight, ln2.bias, ln2.eps)
        else:
            attn_out = projected
            ffn = _ffn(lm, layer, h_in + projected)
            out = h_in + projected + ffn
        if fam == "gpt2":
            H = nH * d
            ref_qkv = refs[("qkv", layer)]
            ref_q, ref_k, ref_v = ref_qkv[:, :H], ref_qkv[:, H:2 * H], ref_qkv[:, 2 * H:]
            qkv_src = src("qkv")
        else:
            ref_q, ref_k, ref_v = refs[("query", layer)], refs[("key", layer)], refs[("value", layer)]
            qkv_src = None
        checks = [
            compare("Q = X·W_Q + b_Q", q, ref_q, qkv_src or src("query")),
            compare("K = X·W_K + b_K", k, ref_k, qkv_src or src("key")),
            compare("V = X·W_V + b_V", v, ref_v, qkv_src or src("value")),
            compare("softmax(Q·Kᵀ/√d_k + mask), every head", weights, torch.from_numpy(anatomy.attentions[layer]),
                    f"output_attentions[{layer}]"),
            compare("weights·V, heads concatenated", concat, refs[("context", layer)], src("context")),
            compare("concat·W_O + b_O", projected, refs[("projected", layer)], src("projected")),
        ]
        if fam == "bert":
            checks.append(compare("LayerNorm(concat·W_O + b_O + X)", attn_out, refs[("attention_output", layer)],
                                  src("attention_output")))
        checks += [compare("feed-forward block", ffn, refs[("ffn", layer)], src("ffn")),
                   compare("layer output (residual + feed-forward)", out, refs[("layer_output", layer)],
                           src("layer_output"))]
    sl = slice(head * d, (head + 1) * d)
    return HeadWalk(
        layer=layer, head=head, kind=anatomy.kind, scaling=scale, x=x.numpy(),
        w_q=W["q"][0][:, sl].detach().numpy(), w_k=W["k"][0][:, sl].detach().numpy(),
        w_v=W["v"][0][:, sl].detach().numpy(),
        q=q[:, sl].numpy(), k=k[:, sl].numpy(), v=v[:, sl].numpy(), scores=scores[head].numpy(), mask=allowed,
        weights=weights[head].numpy(), context=context[head].numpy(), concat=concat.numpy(),
        projected=projected.numpy(), attention_output=attn_out.numpy(), layer_output=out.numpy(), checks=checks,
    )


def compare_masks(walk: HeadWalk) -> tuple[np.ndarray, np.ndarray]:
    """(bidirectional, causal) weights of the same head on the same scores: encoder vs decoder."""
    T = walk.scores.shape[0]
    both = [masked_softmax(walk.scores, attention_mask(T, causal=c)).numpy() for c in (False, True)]
    return both[0], both[1]


def head_summaries(attentions: np.ndarray, top: int = 3) -> list[HeadSummary]:
    """Entropy, mean distance and strongest links of every head: (L, nH, T, T) in, L·nH small records out.

    Both means are matrix-vector products over the flattened T×T maps (one pass, no T×T temporaries
    per head beyond the log), so 512 tokens × 72 heads take tens of milliseconds.
    """
    import torch

    a = torch.from_numpy(attentions)
    L, nH, T, _ = a.shape
    flat = a.reshape(L * nH, T * T)
    logs = flat.clamp_min(1e-30).log_()  # p log p -> 0 as p -> 0; the clamp keeps 0·log 0 at 0
    entropy = -torch.einsum("hn,hn->h", flat, logs) / T
    pos = torch.arange(T, dtype=a.dtype)
    dist = flat @ (pos[None, :] - pos[:, None]).abs().reshape(T * T) / T
    w, idx = flat.topk(min(top, T * T), dim=-1)
    out = []
    for n in range(L * nH):
        links = tuple((int(i) // T, int(i) % T, float(x)) for x, i in zip(w[n], idx[n], strict=True))
        out.append(HeadSummary(n // nH, n % nH, float(entropy[n]), float(dist[n]), links))
    return out


def pooled(attentions: np.ndarray, side: int = 32) -> np.ndarray:
    """(L, nH, T, T) -> (L, nH, s, s) block means with s ≤ side: a model view any length can send."""
    import torch
    import torch.nn.functional as F

    L, nH, T, _ = attentions.shape
    if T <= side:
        return attentions
    a = torch.from_numpy(attentions).reshape(L * nH, 1, T, T)
    return F.adaptive_avg_pool2d(a, side).reshape(L, nH, side, side).numpy()
