"""Next-token choice as pure functions of cached logits: temperature, top-k, top-p, greedy or sampled.

No model call here, so a slider that moves only reruns these (a few ms for a 50k vocabulary).
Order as in transformers' generation: temperature, then top-k, then top-p on what top-k kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_TEMPERATURE = 1e-4  # below this, temperature is treated as 0: greedy (argmax)


@dataclass(frozen=True)
class TokenChoice:
    """One picked token with the probability it had under the shown distribution."""

    token_id: int
    probability: float
    greedy: bool


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / T) in float64; T → 0 gives a one-hot on the argmax."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature < MIN_TEMPERATURE:
        out = np.zeros_like(z)
        out[int(np.argmax(z))] = 1.0
        return out
    z = z / temperature
    e = np.exp(z - z.max())
    return e / e.sum()


def top_k_mask(probs: np.ndarray, k: int) -> np.ndarray:
    """True for exactly the k most likely tokens (k ≤ 0 keeps all; ties broken by id)."""
    keep = np.ones(probs.shape, dtype=bool)
    if 0 < k < probs.size:
        keep[:] = False
        keep[np.argsort(-probs, kind="stable")[:k]] = True
    return keep


def top_p_mask(probs: np.ndarray, p: float) -> np.ndarray:
    """True for the smallest set of most likely tokens whose mass reaches p (p ≥ 1 keeps all)."""
    keep = np.ones(probs.shape, dtype=bool)
    if p < 1.0:
        order = np.argsort(-probs, kind="stable")
        mass = np.cumsum(probs[order]) / probs.sum()
        n = int(np.searchsorted(mass, p - 1e-12, side="left")) + 1  # first prefix with mass ≥ p
        keep[:] = False
        keep[order[: min(n, probs.size)]] = True
    return keep


def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int = 0,
                     top_p: float = 1.0) -> np.ndarray:
    """The distribution a sampler draws from: temperature, top-k, top-p, renormalised (float64, sums to 1)."""
    probs = softmax(logits, temperature)
    probs = np.where(top_k_mask(probs, top_k), probs, 0.0)
    probs = np.where(top_p_mask(probs, top_p), probs, 0.0)
    return probs / probs.sum()


def choose_token(probs: np.ndarray, greedy: bool, seed: int = 0) -> TokenChoice:
    """Greedy: the argmax. Sampled: one draw with a seeded generator (the same seed, the same token)."""
    if greedy:
        i = int(np.argmax(probs))
    else:
        i = int(np.random.default_rng(seed).choice(probs.size, p=probs))
    return TokenChoice(i, float(probs[i]), greedy)


def top_tokens(probs: np.ndarray, n: int = 20) -> list[tuple[int, float]]:
    """The n most likely (id, probability), most likely first."""
    n = min(n, probs.size)
    idx = np.argpartition(-probs, n - 1)[:n]
    idx = idx[np.argsort(-probs[idx], kind="stable")]
    return [(int(i), float(probs[i])) for i in idx]
