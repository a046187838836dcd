"""Types every part of `core.models` shares: the error, checks, the forward pass and one head's walk.

Arrays are numpy float32, one text (no batch axis; a text batched with another is its row, [PAD]s included): T tokens, H hidden, L layers, nH heads, d = H / nH.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

ATOL = 1e-5  # every recomputed tensor must equal the model's own to this, in float32


class AnatomyError(ValueError):
    """A model or input the anatomy can't open; the message says what to do instead."""


@dataclass(frozen=True)
class Check:
    """One recomputed tensor compared with what the model itself produced."""

    name: str  # what was recomputed, as a formula
    reference: str  # where the model's own value came from
    matched: bool  # torch.allclose(recomputed, reference, atol=ATOL)
    max_abs_diff: float


@dataclass
class Anatomy:
    """Everything one forward pass shows, for one text."""

    model_name: str
    kind: str  # "encoder" (bidirectional) | "decoder" (causal)
    tokens: list[str]
    ids: list[int]
    truncated: bool  # the text had more tokens than the limit
    num_layers: int
    num_heads: int
    head_dim: int
    token_embeddings: np.ndarray  # (T, H) rows of the token table
    position_embeddings: np.ndarray  # (T, H) rows of the learned position table
    token_type_embeddings: np.ndarray | None  # (T, H), BERT's segment table; None for GPT-2
    embedding_output: np.ndarray  # (T, H) their sum (after LayerNorm for BERT): layer 0's input
    hidden_states: np.ndarray  # (L+1, T, H): [0] the embeddings, [l+1] layer l's output (the residual stream)
    layer_attentions: list[np.ndarray]  # L × (nH, T, T) softmax weights: output_attentions=True, not copied
    ffn_outputs: np.ndarray  # (L, T, H) the feed-forward block's output before the residual add
    next_token_logits: np.ndarray | None  # (V,) logits after the last token, causal LMs only
    checks: list[Check] = field(default_factory=list)  # the embedding sum against the model's
    references: dict[str, Any] = field(default_factory=dict, repr=False)  # hook tensors per (name, layer)
    padding: np.ndarray | None = None  # (T,) True for this text's own tokens, False for [PAD]; None: no padding
    batch_size: int = 1  # rows in the batch this text went through the model in (2 when batched with another)

    @property
    def residual_norms(self) -> np.ndarray:
        """(L+1, T) the L2 norm of every token's residual-stream vector after each layer."""
        return np.linalg.norm(self.hidden_states, axis=-1)

    @property
    def attentions(self) -> np.ndarray:
        """(L, nH, T, T) stacked: a fresh copy (75 MB at 512 tokens); per layer, read `layer_attentions`."""
        return np.stack(self.layer_attentions)

    @property
    def seq_len(self) -> int:
        return len(self.ids)

    @property
    def real_len(self) -> int:
        """Tokens of the text itself, padding left out."""
        return self.seq_len if self.padding is None else int(self.padding.sum())


@dataclass
class HeadWalk:
    """Self-attention of one (layer, head) recomputed step by step from the layer's weights.

    The head's own steps (q … context) are recomputed from the weights; the layer-wide tensors (concat …
    layer_output) are the model's own from the forward's hooks. `verify_walk` recomputes the whole layer and
    checks both against the model.
    """

    layer: int
    head: int
    kind: str
    scaling: float  # 1/sqrt(d_k) (GPT-2 may divide further by layer + 1)
    x: np.ndarray  # (T, H) the attention's input (GPT-2: after ln_1)
    w_q: np.ndarray  # (H, d) this head's columns of W_Q (x @ W convention)
    w_k: np.ndarray
    w_v: np.ndarray
    q: np.ndarray  # (T, d)
    k: np.ndarray
    v: np.ndarray
    scores: np.ndarray  # (T, T) Q Kᵀ · scaling
    mask: np.ndarray  # (T, T) True where a query may attend to a key (not a [PAD] key; causal: not a later one)
    weights: np.ndarray  # (T, T) softmax(scores + mask)
    context: np.ndarray  # (T, d) weights · V
    concat: np.ndarray  # (T, H) every head's context side by side (the model's own)
    projected: np.ndarray  # (T, H) concat · W_O + b_O
    attention_output: np.ndarray  # (T, H) BERT: LayerNorm(projected + x); GPT-2: projected
    layer_output: np.ndarray  # (T, H) after the feed-forward block and its residual
    checks: list[Check] = field(default_factory=list)  # empty until `verify_walk` has run
    padding: np.ndarray | None = None  # (T,) False at [PAD] keys, as `Anatomy.padding`

    @property
    def all_matched(self) -> bool:
        """Verified, and every check matched (False while the checks are pending)."""
        return bool(self.checks) and all(c.matched for c in self.checks)


@dataclass(frozen=True)
class HeadSummary:
    """One head in numbers a browser can take for any length: entropy, distance, strongest links."""

    layer: int
    head: int
    entropy: float  # mean over queries of -Σ p log p (nats)
    distance: float  # mean over queries of Σ p |i - j| (tokens)
    top_links: tuple[tuple[int, int, float], ...]  # (query, key, weight), strongest first
