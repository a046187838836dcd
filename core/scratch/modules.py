"""The few modules torch.nn lacks for a text stack (positional encoding, masked mean) and the Stack that runs a
resolved layer list, packing sequences for recurrent layers and masking padding for attention."""
from __future__ import annotations

import math

import torch
import torch.nn as nn


class PositionalEncoding(nn.Module):
    """Sinusoidal positions added to the embeddings (Vaswani et al., 2017; PyTorch's transformer tutorial)."""

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : d_model // 2]
        # saved with the weights: from_pretrained builds modules on `meta`, so a buffer that is only
        # computed here would come back uninitialised
        self.register_buffer("pe", pe)

    def forward(self, x):
        return self.dropout(x + self.pe[: x.size(1)].to(x.dtype))


class MeanPool(nn.Module):
    """(B, T, E) -> (B, E): the mean over real positions (mask 1) only."""

    def forward(self, x, mask=None):
        if mask is None:
            return x.mean(1)
        m = mask[:, : x.size(1)].unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp(min=1)


def make_module(kind: str, kwargs: dict) -> nn.Module:
    """The torch.nn module of a layer type (or one of the two above) from its full constructor arguments."""
    local = {"PositionalEncoding": PositionalEncoding, "MeanPool": MeanPool}
    return (local.get(kind) or getattr(nn, kind))(**kwargs)


def run_layer(module: nn.Module, x, mask=None, extra: dict | None = None):
    """One layer's forward; `mask` (B, T) marks real tokens for sequence layers, None when there is no padding."""
    extra = extra or {}
    if isinstance(module, nn.RNNBase):
        lengths = mask.sum(1) if mask is not None else None
        if lengths is not None:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                                       enforce_sorted=False)
            out, h = module(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        else:
            out, h = module(x)
        if extra.get("output", "last") == "sequence":
            return out
        h = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n)
        dirs = 2 if module.bidirectional else 1
        return torch.cat([h[-dirs + d] for d in range(dirs)], dim=-1)  # last layer, every direction
    if isinstance(module, nn.TransformerEncoderLayer):
        pad = None if mask is None else ~mask[:, : x.size(1)].bool()
        return module(x, src_key_padding_mask=pad)
    if isinstance(module, MeanPool):
        return module(x, mask)
    return module(x)


class Stack(nn.Module):
    """A resolved layer list as one module: forward(x, mask) runs each layer with what it needs."""

    def __init__(self, resolved: list):
        super().__init__()
        self.layers = nn.ModuleList(make_module(r.type, r.kwargs) for r in resolved)
        self.extras = [r.extra for r in resolved]

    def forward(self, x, mask=None, trace: list | None = None):
        for module, extra in zip(self.layers, self.extras, strict=True):
            x = run_layer(module, x, mask, extra)
            if trace is not None:
                trace.append(tuple(x.shape))
        return x
