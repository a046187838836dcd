"""Every recomputed tensor equals the model's own (MiniLM and a tiny GPT-2), and the pure parts hold."""
import math

import numpy as np
import pytest

from core.models import (
    AnatomyError,
    attention_mask,
    compare_masks,
    head_summaries,
    inspect_text,
    load_model,
    pooled,
    reproduce_code,
    verify_walk,
    walk_head,
)

TEXT = "Transformers are amazing"


@pytest.fixture(scope="module")
def bert_anatomy(minilm):
    return inspect_text(minilm, TEXT)


def test_minilm_forward_parts(minilm, bert_anatomy):
    a = bert_anatomy
    assert a.tokens == ["[CLS]", "transformers", "are", "amazing", "[SEP]"]
    assert a.kind == "encoder" and (a.num_layers, a.num_heads, a.head_dim) == (6, 12, 32)
    T = len(a.ids)
    assert a.hidden_states.shape == (7, T, 384) and a.attentions.shape == (6, 12, T, T)
    assert a.ffn_outputs.shape == (6, T, 384) and a.residual_norms.shape == (7, T)
    emb = minilm.base.embeddings
    np.testing.assert_array_equal(a.token_embeddings[1], emb.word_embeddings.weight[a.ids[1]].detach().numpy())
    # the embedding sum after LayerNorm and every layer output agree with output_hidden_states
    assert a.checks and all(c.matched for c in a.checks), a.checks
    np.testing.assert_allclose(a.attentions.sum(-1), 1.0, atol=1e-5)
    assert a.next_token_logits is None


@pytest.mark.parametrize("layer,head", [(0, 0), (3, 7), (5, 11)])
def test_minilm_walk_matches_the_model(minilm, bert_anatomy, layer, head):
    import torch

    w = walk_head(minilm, bert_anatomy, layer, head)
    names = [c.name for c in w.checks]
    assert names[:4] == ["Q = X·W_Q + b_Q", "K = X·W_K + b_K", "V = X·W_V + b_V",
                         "softmax(Q·Kᵀ/√d_k + mask), every head"]
    assert len(w.checks) == 9 and w.all_matched, [(c.name, c.max_abs_diff) for c in w.checks]
    # the head's slice, recomputed here independently with nn.Linear on the model's own input
    att = minilm.base.encoder.layer[layer].attention.self
    x = torch.from_numpy(bert_anatomy.hidden_states[layer])
    with torch.no_grad():
        q = att.query(x)[:, head * 32:(head + 1) * 32]
        k = att.key(x)[:, head * 32:(head + 1) * 32]
        ref = torch.softmax(q @ k.T / math.sqrt(32), -1)
    assert torch.allclose(torch.from_numpy(w.weights), ref, atol=1e-5)
    assert w.q.shape == (5, 32) and w.w_q.shape == (384, 32) and w.scaling == pytest.approx(32 ** -0.5)
    assert w.mask.all()  # one sentence, no padding, bidirectional


def test_walk_first_checks_later(minilm, bert_anatomy):
    """verify=False recomputes the one head at once; verify_walk proves it (and the whole layer) afterwards."""
    quick = walk_head(minilm, bert_anatomy, 3, 7, verify=False)
    assert quick.checks == [] and not quick.all_matched  # pending is not "matched"
    full = walk_head(minilm, bert_anatomy, 3, 7)
    for name in ("q", "k", "v", "scores", "weights", "context", "concat", "projected", "layer_output"):
        np.testing.assert_allclose(getattr(quick, name), getattr(full, name), atol=1e-6)
    checks = verify_walk(minilm, bert_anatomy, quick)
    assert [c.name for c in checks] == [c.name for c in full.checks] and all(c.matched for c in checks)
    # the head the page shows is the model's own slice
    np.testing.assert_allclose(quick.weights, bert_anatomy.layer_attentions[3][7], atol=1e-5)


def test_tiny_gpt2_walk_matches_and_is_causal(gpt2):
    a = inspect_text(gpt2, "the cat sat on the mat")
    assert a.kind == "decoder" and a.tokens == ["the", "cat", "sat", "on", "the", "mat"]
    assert all(c.matched for c in a.checks)
    for layer in range(2):
        for head in range(4):
            w = walk_head(gpt2, a, layer, head)
            assert w.all_matched, [(c.name, c.max_abs_diff) for c in w.checks if not c.matched]
            assert np.all(np.triu(w.weights, 1) == 0)  # causal: nothing above the diagonal
    assert np.all(np.triu(a.attentions, 1) == 0)
    assert a.next_token_logits.shape == (gpt2.config.vocab_size,)
    # the cached logits are the LM head's on the last position
    import torch

    with torch.no_grad():
        logits = gpt2.model(torch.tensor([a.ids])).logits[0, -1].numpy()
    np.testing.assert_allclose(a.next_token_logits, logits, atol=1e-5)


def test_causal_mask_zeros_above_the_diagonal():
    m = attention_mask(4, causal=True)
    assert m.tolist() == [[True, False, False, False], [True, True, False, False],
                          [True, True, True, False], [True, True, True, True]]
    assert attention_mask(3, causal=False).all()
    assert attention_mask(3, causal=False, padding=[1, 1, 0])[:, 2].tolist() == [False] * 3


def test_mask_comparison_same_scores(minilm, bert_anatomy):
    w = walk_head(minilm, bert_anatomy, 1, 2)
    bi, causal = compare_masks(w)
    np.testing.assert_allclose(bi, w.weights, atol=1e-6)
    assert np.all(np.triu(causal, 1) == 0) and causal[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(causal.sum(-1), 1.0, atol=1e-6)
    # row i of the causal map is the softmax of the first i+1 scores only
    s = w.scores[2, :3].astype(np.float64)
    np.testing.assert_allclose(causal[2, :3], np.exp(s - s.max()) / np.exp(s - s.max()).sum(), atol=1e-6)


def test_head_summaries_against_hand_values():
    a = np.zeros((1, 2, 3, 3), dtype=np.float32)
    a[0, 0] = np.eye(3)  # every token on itself: entropy 0, distance 0
    a[0, 1] = 1 / 3  # uniform: entropy log 3, distance (2+... )/3
    s = head_summaries(a, top=2)
    assert s[0].entropy == pytest.approx(0.0, abs=1e-6) and s[0].distance == pytest.approx(0.0)
    assert s[1].entropy == pytest.approx(math.log(3), rel=1e-5)
    # |i-j| rows: (0+1+2), (1+0+1), (2+1+0) -> mean over queries of Σ/3 = (3+2+3)/9
    assert s[1].distance == pytest.approx(8 / 9, rel=1e-5)
    assert len(s[0].top_links) == 2 and all(i == j and w == 1.0 for i, j, w in s[0].top_links)


def test_top_links_and_layers_as_a_list_match_brute_force():
    rng = np.random.default_rng(0)
    a = rng.random((2, 3, 40, 40), dtype=np.float32)
    a /= a.sum(-1, keepdims=True)
    a[1, 2, 5, 9] = 0.9  # one strong link, and a row holding the second and third strongest
    a[1, 2, 7, [3, 4]] = [0.8, 0.7]
    as_array, as_list = head_summaries(a, top=3), head_summaries(list(a), top=3)
    assert as_array == as_list
    for s in as_array:
        m = a[s.layer, s.head]
        flat = np.argsort(m, axis=None)[::-1][:3]
        assert [(int(i) // 40, int(i) % 40) for i in flat] == [(q, k) for q, k, _ in s.top_links]
        np.testing.assert_allclose([w for *_, w in s.top_links], m.reshape(-1)[flat], rtol=1e-6)
        p = m.astype(np.float64)
        assert s.entropy == pytest.approx(-(p * np.log(p)).sum() / 40, rel=1e-4)
    assert as_array[-1].top_links[0][:2] == (5, 9) and [ln[:2] for ln in as_array[-1].top_links[1:]] == [(7, 3), (7, 4)]
    np.testing.assert_allclose(pooled(list(a), side=8), pooled(a, side=8), atol=0)


def test_pooled_block_means():
    a = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)
    p = pooled(a, side=4)
    assert p.shape == (1, 1, 4, 4)
    assert p[0, 0, 0, 0] == pytest.approx(a[0, 0, :2, :2].mean())
    assert pooled(a, side=16) is a


@pytest.mark.parametrize("T,side", [(512, 32), (64, 32), (300, 32), (45, 8)])
def test_pooled_equals_adaptive_avg_pool(T, side):
    """The equal-blocks shortcut and the general case both give what adaptive_avg_pool2d gives."""
    import torch
    import torch.nn.functional as F

    a = np.random.default_rng(T).random((2, 3, T, T), dtype=np.float32)
    want = np.stack([F.adaptive_avg_pool2d(torch.from_numpy(x).unsqueeze(1), side)[:, 0].numpy() for x in a])
    np.testing.assert_allclose(pooled(list(a), side), want, rtol=1e-5, atol=1e-7)


def test_long_input_is_cut_to_512(minilm):
    a = inspect_text(minilm, "word " * 700)
    assert a.truncated and len(a.ids) == 512 and a.tokens[-1] == "[SEP]"
    s = head_summaries(a.attentions)
    assert len(s) == 72 and all(0 <= h.entropy <= math.log(512) + 1e-4 for h in s)
    assert pooled(a.attentions).shape == (6, 12, 32, 32)


def test_reproduce_code_runs_and_matches(gpt2):
    a = inspect_text(gpt2, "the cat sat")
    w = walk_head(gpt2, a, 1, 2)
    ns: dict = {}
    exec(reproduce_code(gpt2, "the cat sat", 1, 2), ns)  # noqa: S102  (running the code the page shows is the test)
    np.testing.assert_allclose(ns["mine"].numpy(), w.weights, atol=1e-6)
    np.testing.assert_allclose(ns["weights"].numpy(), a.attentions[1, 2], atol=1e-6)


def test_reproduce_code_minilm(minilm, bert_anatomy):
    ns: dict = {}
    exec(reproduce_code(minilm, TEXT, 4, 1), ns)  # noqa: S102  (running the code the page shows is the test)
    np.testing.assert_allclose(ns["mine"].numpy(), bert_anatomy.attentions[4, 1], atol=1e-5)


def test_errors_are_clear(minilm, bert_anatomy, tmp_path):
    with pytest.raises(AnatomyError, match="offline"):
        load_model("gpt2")  # a hub id, offline
    with pytest.raises(AnatomyError, match="config.json"):
        load_model(str(tmp_path))
    with pytest.raises(AnatomyError, match="type a text"):
        inspect_text(minilm, "   ")
    with pytest.raises(AnatomyError, match="layer must be"):
        walk_head(minilm, bert_anatomy, 6, 0)


SHORT, LONG = "A dog barked.", "The cat sat on the mat because it was tired."


def test_padded_batch_walk_matches_and_pad_keys_get_zero(minilm):
    """The shorter text of a padded batch: every step still equals the model's own, [PAD] keys get exactly 0."""
    import torch

    a = inspect_text(minilm, SHORT, batch_with=LONG)
    n, T = 6, 13
    assert a.tokens[:n] == ["[CLS]", "a", "dog", "barked", ".", "[SEP]"] and a.tokens[n:] == ["[PAD]"] * (T - n)
    assert a.padding.tolist() == [True] * n + [False] * (T - n) and (a.real_len, a.batch_size) == (n, 2)
    assert all(c.matched for c in a.checks), a.checks
    # the batch is what the tokenizer's own padding makes, and the attentions are the model's on it
    enc = minilm.tokenizer([SHORT, LONG], padding=True, return_tensors="pt")
    assert enc["input_ids"][0].tolist() == a.ids and enc["attention_mask"][0].bool().tolist() == a.padding.tolist()
    with torch.no_grad():
        out = minilm.model(**enc, output_attentions=True)
    np.testing.assert_allclose(out.attentions[3][0].numpy(), a.layer_attentions[3], atol=1e-6)
    for layer, head in [(0, 0), (2, 5), (5, 11)]:
        w = walk_head(minilm, a, layer, head)
        assert len(w.checks) == 9 and w.all_matched, [(c.name, c.max_abs_diff) for c in w.checks]
        assert w.mask[:, :n].all() and not w.mask[:, n:].any()  # every query, real or [PAD], skips [PAD] keys
        assert np.all(w.weights[:, n:] == 0) and np.all(a.layer_attentions[layer][head][:, n:] == 0)
        np.testing.assert_allclose(w.weights.sum(-1), 1.0, atol=1e-6)
        bi, causal = compare_masks(w)  # padding kept under both masks
        assert np.all(bi[:, n:] == 0) and np.all(causal[:, n:] == 0) and np.all(np.triu(causal, 1) == 0)
    # padding changes nothing for the real tokens: their attention is the text's own, run alone
    alone = inspect_text(minilm, SHORT)
    for layer in range(6):
        np.testing.assert_allclose(a.layer_attentions[layer][:, :n, :n], alone.layer_attentions[layer], atol=1e-5)
    # the longer text of the same batch has no padding
    b = inspect_text(minilm, LONG, batch_with=SHORT)
    assert b.padding is None and b.batch_size == 2 and b.real_len == T and walk_head(minilm, b, 1, 1).all_matched


def test_padded_batch_tiny_gpt2(gpt2):
    a = inspect_text(gpt2, "the cat", batch_with="the cat sat on the mat")
    assert a.tokens == ["the", "cat"] + ["[PAD]"] * 4 and a.padding.tolist() == [True] * 2 + [False] * 4
    for layer in range(2):
        for head in range(4):
            w = walk_head(gpt2, a, layer, head)
            assert w.all_matched, [(c.name, c.max_abs_diff) for c in w.checks if not c.matched]
            assert np.all(a.layer_attentions[layer][head][:, 2:] == 0) and np.all(np.triu(w.weights, 1) == 0)
    # the next token follows the last real token, as for the text alone
    np.testing.assert_allclose(a.next_token_logits, inspect_text(gpt2, "the cat").next_token_logits, atol=1e-5)


@pytest.mark.parametrize("which", ["minilm", "gpt2"])
def test_reproduce_code_padded(request, which):
    lm = request.getfixturevalue(which)
    text, other = (SHORT, LONG) if which == "minilm" else ("the cat", "the cat sat on the mat")
    a = inspect_text(lm, text, batch_with=other)
    ns: dict = {}
    exec(reproduce_code(lm, text, 1, 1, batch_with=other), ns)  # noqa: S102  (running the code the page shows is the test)
    np.testing.assert_allclose(ns["mine"].numpy(), a.layer_attentions[1][1], atol=1e-5)
    assert bool(ns["keep"].all()) is False and np.all(ns["mine"].numpy()[:, ~a.padding] == 0)


@pytest.fixture(scope="module")
def bart(tmp_path_factory):
    from tests.core.training.generation_fixtures import tiny_bart

    return load_model(str(tiny_bart(tmp_path_factory.mktemp("tiny-bart"))))


def test_tiny_bart_encoder_walk_matches(bart):
    """A seq2seq BART opens as its encoder: every step equals the model's own, padded or not."""
    import torch

    assert (bart.family, bart.kind, bart.num_heads, bart.head_dim, len(bart.layers)) == ("bart", "encoder", 2, 16, 1)
    a = inspect_text(bart, "the cat sat on the mat")
    assert a.tokens == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]"] and a.token_type_embeddings is None
    assert [c.name for c in a.checks][0] == "LayerNorm(token · embed_scale + position) = embedding output"
    assert all(c.matched for c in a.checks), a.checks
    for head in range(2):
        w = walk_head(bart, a, 0, head)
        assert len(w.checks) == 9 and w.all_matched, [(c.name, c.max_abs_diff) for c in w.checks]
    # the weights are the encoder's inside the whole seq2seq model, and an independent recomputation agrees
    ids = torch.tensor([a.ids])
    with torch.no_grad():
        out = bart.model(input_ids=ids, decoder_input_ids=ids[:, :1], output_attentions=True)
        att = bart.model.get_encoder().layers[0].self_attn
        x = torch.from_numpy(a.hidden_states[0])
        q, k = att.q_proj(x)[:, 16:], att.k_proj(x)[:, 16:]
    np.testing.assert_allclose(out.encoder_attentions[0][0].numpy(), a.layer_attentions[0], atol=1e-6)
    np.testing.assert_allclose(torch.softmax(q @ k.T / 4, -1).numpy(), a.layer_attentions[0][1], atol=1e-6)
    p = inspect_text(bart, "the cat", batch_with="the cat sat on the mat")
    assert p.padding.tolist() == [True] * 4 + [False] * 4
    assert walk_head(bart, p, 0, 1).all_matched and np.all(p.layer_attentions[0][:, :, 4:] == 0)
    ns: dict = {}
    exec(reproduce_code(bart, "the cat", 0, 1, batch_with="the cat sat on the mat"), ns)  # noqa: S102
    np.testing.assert_allclose(ns["mine"].numpy(), p.layer_attentions[0][1], atol=1e-6)
    from core.models import position_tables

    table = position_tables(bart, 8).learned  # rows 2.. of BART's table: position 0 is its row 2
    np.testing.assert_array_equal(table, bart.base.embed_positions.weight[2:10].detach().numpy())
    np.testing.assert_array_equal(a.position_embeddings, table)


def _entropy64(anatomy) -> np.ndarray:
    """(L, nH) mean over queries of -Σ p log p, in float64 from the model's own attention weights."""
    p = np.stack(anatomy.layer_attentions).astype(np.float64)
    return -(p * np.log(np.maximum(p, 1e-300))).sum(-1).mean(-1)


@pytest.mark.parametrize("which,text,other", [("minilm", SHORT, LONG), ("minilm", "word " * 700, None),
                                              ("gpt2", "the cat", "the cat sat on the mat")])
def test_head_entropy_equals_float64_on_real_attention(request, which, text, other):
    """The summaries' float32 log pass against −Σ p log p in float64: padded, 512 tokens, causal."""
    lm = request.getfixturevalue(which)
    a = inspect_text(lm, text, batch_with=other)
    got = np.array([s.entropy for s in head_summaries(a.layer_attentions)]).reshape(a.num_layers, a.num_heads)
    np.testing.assert_allclose(got, _entropy64(a), atol=5e-6)
