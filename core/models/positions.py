"""Positional encoding: the paper's sinusoidal table beside the model's learned one."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PositionTables:
    """Both tables for the first n positions, and each one's position-to-position cosine similarity."""

    sinusoidal: np.ndarray  # (n, d)
    learned: np.ndarray  # (n, d) the model's position embeddings
    sinusoidal_similarity: np.ndarray  # (n, n)
    learned_similarity: np.ndarray  # (n, n)


def sinusoidal_table(n_positions: int, dim: int) -> np.ndarray:
    """Vaswani et al. 2017: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same)."""
    pos = np.arange(n_positions, dtype=np.float64)[:, None]
    rate = 10000.0 ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    table = np.zeros((n_positions, dim))
    table[:, 0::2] = np.sin(pos / rate)
    table[:, 1::2] = np.cos(pos / rate[: dim // 2])
    return table.astype(np.float32)


def cosine_similarity(table: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, n) cosine similarity between every pair of rows."""
    t = np.asarray(table, dtype=np.float64)
    unit = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return (unit @ unit.T).astype(np.float32)


def position_tables(lm, n_positions: int) -> PositionTables:
    """The sinusoidal and the learned table of `lm` (a LoadedModel) for positions 0..n-1."""
    base = lm.base
    if lm.family == "bart":  # BART's table starts at row `offset` (2): rows 0 and 1 are never looked up
        weight = base.embed_positions.weight[base.embed_positions.offset:]
    else:
        weight = base.wpe.weight if lm.family == "gpt2" else base.embeddings.position_embeddings.weight
    n = max(1, min(n_positions, weight.shape[0]))
    learned = weight[:n].detach().float().numpy().copy()
    sin = sinusoidal_table(n, learned.shape[1])
    return PositionTables(sin, learned, cosine_similarity(sin), cosine_similarity(learned))
