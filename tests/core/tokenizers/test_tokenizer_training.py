"""core.tokenizers.training: text sources, corpus statistics, training and the save/load round trip."""
import dataclasses
import importlib

import pytest

from core.settings import get_settings
from core.tokenizers import training as TT

T = importlib.import_module("core.tokenizers.library")  # the package re-exports a function named compare

CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "naïve café résumé"] * 20


@pytest.fixture
def settings(tmp_path):
    return dataclasses.replace(get_settings(), workspace=tmp_path)


@pytest.mark.parametrize("model,pre", [("BPE", "whitespace"), ("BPE", "byte_level"),
                                       ("WordPiece", "whitespace"), ("Unigram", "metaspace")])
def test_train_save_load_round_trip(settings, model, pre):
    progress = TT.TrainProgress()
    vocab = 300 if pre == "byte_level" else 80  # byte-level starts from all 256 bytes
    cfg = TT.TrainConfig(f"t-{model}-{pre}", model, vocab_size=vocab, min_frequency=1, pre_tokenizer=pre)
    done = TT.train(cfg, CORPUS, progress, settings, corpus="unit test")
    assert (progress.fraction, progress.done) == (1.0, True)
    assert done.name == f"trained:{cfg.name}" and done.name in T.available(settings)
    loaded = T.load(done.name, settings)
    # the saved folder gives exactly what the trained in-memory tokenizer gives
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(f"{done.path}/tokenizer.json")
    for text in ["the cat sat", "Naïve dog on a log", "zebra"]:
        assert loaded(text).input_ids == raw.encode(text).ids
    assert len(loaded) == done.vocab_size
    assert T.family(done.name, loaded) == {"byte_level": "byte-level BPE", "metaspace": "SentencePiece Unigram"
                                           }.get(pre, model)
    # lower-cased and accents stripped by the default normalizer
    assert all(c not in "".join(loaded.tokenize("NAÏVE Café")) for c in "ÏNC")


def test_wordpiece_template_adds_cls_sep_and_pairs(settings):
    done = TT.train(TT.TrainConfig("wp", "WordPiece", vocab_size=100, min_frequency=1), CORPUS, settings=settings)
    tok = T.load(done.name, settings)
    enc = tok("the cat", "a dog")
    assert tok.convert_ids_to_tokens(enc.input_ids) == ["[CLS]", "the", "cat", "[SEP]", "a", "dog", "[SEP]"]
    assert enc.token_type_ids == [0, 0, 0, 0, 1, 1, 1]
    assert tok.pad_token == "[PAD]" and tok.unk_token == "[UNK]"


def test_vocab_smaller_than_alphabet_is_refused_before_training(settings):
    cfg = TT.TrainConfig("small", vocab_size=10)
    chars = TT.alphabet(cfg, CORPUS)
    assert chars == set("thecasonmdglivfru")  # lower-cased, accents stripped (ï -> i, é -> e)
    need = len(chars) + 5
    with pytest.raises(TT.TrainError, match=f"smaller than the alphabet.*at least {need}"):
        TT.train(cfg, CORPUS, settings=settings)
    assert not (settings.tokenizers_dir / "small").exists()
    byte_cfg = TT.TrainConfig("b", vocab_size=200, pre_tokenizer="byte_level")
    with pytest.raises(TT.TrainError, match="256 bytes, plus 5 special tokens, so at least 261"):
        TT.check_config(byte_cfg, CORPUS, settings)


def test_bad_requests_get_clear_messages(settings):
    with pytest.raises(TT.TrainError, match="no text to train on"):
        TT.train(TT.TrainConfig("e"), ["", "  "], settings=settings)
    with pytest.raises(TT.TrainError, match="name 'a b'"):
        TT.train(TT.TrainConfig("a b"), CORPUS, settings=settings)
    TT.train(TT.TrainConfig("dup", vocab_size=60, min_frequency=1), CORPUS, settings=settings)
    with pytest.raises(TT.TrainError, match="already exists"):
        TT.train(TT.TrainConfig("dup"), CORPUS, settings=settings)
    with pytest.raises(TT.TrainError, match="unknown token"):
        TT.train(TT.TrainConfig("u", "Unigram", special_tokens=("<s>",)), CORPUS, settings=settings)


def test_text_sources_and_files():
    assert "text" in TT.text_sources()[TT.SAMPLE]
    texts = TT.source_texts(TT.SAMPLE, "text", limit=5)
    assert len(texts) == 5 and all(t.strip() for t in texts)
    with pytest.raises(T.TextError, match="no column 'nope'"):
        TT.source_texts(TT.SAMPLE, "nope")
    assert TT.file_texts("a\n\nb\r\n".encode("utf-8-sig")) == ["a", "b"]
    with pytest.raises(T.TextError, match="not UTF-8"):
        TT.file_texts(b"caf\xe9", "x.txt")
    with pytest.raises(T.TextError, match="binary"):
        TT.file_texts(b"\x00\x01", "x.bin")
    with pytest.raises(T.TextError, match="empty"):
        TT.file_texts(b"\n \n", "e.txt")


def test_corpus_stats_by_hand():
    bert = T.load("bert-wordpiece-uncased")
    texts = ["unaffable", "the cat sat", "a b c d e f g h"]  # 3, 3, 8 text tokens; 1, 3, 8 words
    s = TT.corpus_stats("bert", bert, texts, max_length=6, batch_size=2)
    assert s.lengths == [5, 5, 10]
    assert s.fertility == pytest.approx(14 / 12) and s.n_unknown == 0
    assert s.pct_truncated == pytest.approx(100 / 3)
    kept = [5, 5, 6]
    assert s.pct_padding_max_length == pytest.approx(100 * (1 - 16 / 18))
    assert s.pct_padding_dynamic == pytest.approx(100 * (1 - sum(kept) / (5 * 2 + 6 * 1)))


def test_columns_of_the_dataset_store(settings):
    from core.data import DatasetStore

    ref = DatasetStore(settings.datasets_dir).ensure_sample()
    label = f"{ref.name} (v{ref.version})"
    assert TT.text_sources(settings)[label] == ref.columns
    texts = TT.source_texts(label, "text", settings)
    assert texts == TT.source_texts(TT.SAMPLE, "text")  # same reviews, train split then test split
    with pytest.raises(T.TextError, match="column 'useful_count' .* has no text"):
        TT.source_texts(label, "useful_count", settings)
