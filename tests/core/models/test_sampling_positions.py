"""Temperature, top-k, top-p and the sinusoidal table against hand values."""
import math

import numpy as np
import pytest

from core.models import (
    choose_token,
    cosine_similarity,
    next_token_probs,
    position_tables,
    sinusoidal_table,
    softmax,
    top_k_mask,
    top_p_mask,
    top_tokens,
)

LOGITS = np.array([2.0, 1.0, 0.5, 3.0, -1.0])


def test_softmax_matches_formula():
    e = np.exp(LOGITS / 2.0)
    np.testing.assert_allclose(softmax(LOGITS, 2.0), e / e.sum())


@pytest.mark.parametrize("t", [0.0, 1e-5, 1e-3])
def test_temperature_to_zero_is_argmax(t):
    p = next_token_probs(LOGITS, temperature=t)
    assert int(np.argmax(p)) == 3 and p[3] == pytest.approx(1.0) and p.sum() == pytest.approx(1.0)


def test_top_k_keeps_exactly_k():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=1000)
    for k in (1, 5, 50):
        p = next_token_probs(logits, top_k=k)
        assert np.count_nonzero(p) == k
        assert set(np.flatnonzero(p)) == set(np.argsort(-logits)[:k])
    ties = next_token_probs(np.zeros(10), top_k=3)
    assert np.count_nonzero(ties) == 3  # ties do not let more than k through


def test_top_p_keeps_smallest_set_over_p():
    probs = np.array([0.1, 0.4, 0.3, 0.15, 0.05])
    # sorted: 0.4, 0.3 (0.7), 0.15 (0.85), 0.1 (0.95), 0.05 (1.0)
    assert top_p_mask(probs, 0.7).tolist() == [False, True, True, False, False]  # reaches 0.7 exactly
    assert top_p_mask(probs, 0.71).tolist() == [False, True, True, True, False]
    assert top_p_mask(probs, 0.3).tolist() == [False, True, False, False, False]
    p = next_token_probs(np.log(probs), top_p=0.8)
    np.testing.assert_allclose(p, [0, 0.4 / 0.85, 0.3 / 0.85, 0.15 / 0.85, 0], atol=1e-12)


def test_top_k_then_top_p_and_mask_shapes():
    p = next_token_probs(LOGITS, temperature=1.0, top_k=2, top_p=0.5)
    assert np.count_nonzero(p) == 1 and p[3] == 1.0
    assert top_k_mask(np.ones(4), 0).all() and top_p_mask(np.ones(4) / 4, 1.0).all()


def test_choose_token_greedy_and_seeded():
    p = next_token_probs(LOGITS)
    g = choose_token(p, greedy=True)
    assert g.token_id == 3 and g.probability == pytest.approx(p[3])
    a, b = choose_token(p, greedy=False, seed=7), choose_token(p, greedy=False, seed=7)
    assert a == b and a.probability == pytest.approx(p[a.token_id])
    assert [i for i, _ in top_tokens(p, 3)] == [3, 0, 1]


def test_sinusoidal_table_hand_values():
    pe = sinusoidal_table(50, 8)
    assert pe.shape == (50, 8)
    assert pe[0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1]
    assert pe[1, 0] == pytest.approx(math.sin(1.0))
    assert pe[1, 1] == pytest.approx(math.cos(1.0))
    assert pe[3, 2] == pytest.approx(math.sin(3 / 10000 ** (2 / 8)))
    assert pe[7, 5] == pytest.approx(math.cos(7 / 10000 ** (4 / 8)))
    sim = cosine_similarity(pe)
    assert np.allclose(np.diag(sim), 1.0, atol=1e-6) and np.allclose(sim, sim.T, atol=1e-6)


def test_position_tables_minilm(minilm):
    t = position_tables(minilm, 20)
    assert t.learned.shape == (20, 384) == t.sinusoidal.shape
    np.testing.assert_array_equal(t.learned, minilm.base.embeddings.position_embeddings.weight[:20].detach().numpy())
    assert t.learned_similarity.shape == (20, 20)
    assert t.learned_similarity[3, 3] == pytest.approx(1.0, abs=1e-5)
