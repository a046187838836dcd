"""Every input that can't train is refused by `check` before launch, with the field named."""
import pytest

from core.scratch import check, default_architecture
from core.settings import Settings
from core.training.config import ConfigError
from tests.core.scratch.scratch_fixtures import config, text_dataset


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("scratch-bad"))
    text_dataset(s)
    text_dataset(s, "one-class", labels=("pos",))
    return s


def refused(cfg, settings) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        check(cfg, settings)
    return e.value


def arch(kind, **changes):
    a = default_architecture(kind)
    a.update(changes)
    return a


def test_zero_sized_layer(settings):
    a = arch("mlp")
    a["layers"][3]["out_features"] = 0
    e = refused(config("mlp", "sklearn:wine", architecture=a), settings)
    assert e.field == "architecture.layers[3]" and "zero-sized" in e.message


def test_impossible_shapes_name_the_layer_and_the_shapes(settings):
    a = arch("cnn")
    a["layers"].insert(7, {"type": "MaxPool2d", "kernel_size": 8})
    e = refused(config("cnn", "sklearn:digits", architecture=a), settings)
    assert e.field == "architecture.layers[7]" and "(B, 64, 4, 4)" in e.message


def test_heads_must_divide_the_width(settings):
    a = arch("transformer", vocab_size=300)
    a["layers"][2]["nhead"] = 5
    e = refused(config("transformer", "tiny-reviews", architecture=a), settings)
    assert e.field == "architecture.layers[2]" and "64" in e.message


def test_a_text_column_given_to_the_cnn(settings):
    a = arch("cnn", feature_columns=["text"])
    e = refused(config("cnn", "tiny-reviews", architecture=a), settings)
    assert e.field == "architecture.feature_columns" and "text" in e.message


def test_image_shape_must_match_the_columns(settings):
    e = refused(config("cnn", "sklearn:iris"), settings)
    assert e.field == "architecture.image_shape" and "64" in e.message


def test_labels_with_one_class(settings):
    e = refused(config("mlp", "one-class"), settings)
    assert e.field == "label_column" and "single class" in e.message
    e = refused(config("rnn", "one-class", architecture=arch("rnn", vocab_size=300)), settings)
    assert e.field == "label_column"


def test_tokenizer_vocabulary_must_match_the_embedding(settings):
    a = arch("rnn", tokenizer="bert-wordpiece-uncased")
    a["layers"][0]["num_embeddings"] = 1000
    e = refused(config("rnn", "tiny-reviews", architecture=a), settings)
    assert e.field == "architecture.layers[0]" and "30,522" in e.message
    e = refused(config("gpt", "tiny-reviews", architecture=arch("gpt", tokenizer="bert-wordpiece-uncased",
                                                                vocab_size=2000)), settings)
    assert e.field == "architecture.vocab_size" and "30,522" in e.message


def test_sizes_over_the_memory_cap(settings):
    a = arch("mlp")
    a["layers"][0]["out_features"] = 2**24
    e = refused(config("mlp", "sklearn:digits", architecture=a), settings)
    assert e.field == "architecture.layers" and "GiB" in e.message and "layers[" in e.message
    e = refused(config("gpt", "tiny-reviews", architecture=arch("gpt", vocab_size=300, n_embd=8192, n_layer=96,
                                                                n_head=64)), settings)
    assert e.field == "architecture" and "GiB" in e.message


@pytest.mark.parametrize(("kind", "dataset", "changes", "field"), [
    ("rnn", "sklearn:iris", {}, "dataset"),
    ("mlp", "toy:reverse", {}, "dataset"),
    ("seq2seq", "tiny-reviews", {}, "dataset"),
    ("mlp", "no-such-data", {}, "dataset"),
    ("mlp", "tiny-reviews", {"feature_columns": ["nope"]}, "architecture.feature_columns"),
    ("seq2seq", "toy:reverse", {"d_model": 30, "nhead": 4}, "architecture.nhead"),
    ("seq2seq", "toy:reverse", {"min_len": 9, "max_len": 3}, "architecture.min_len"),
    ("seq2seq", "toy:reverse", {"num_encoder_layers": 0}, "architecture.num_encoder_layers"),
    ("gpt", "tiny-reviews", {"n_head": 3}, "architecture.n_head"),
    ("gpt", "tiny-reviews", {"vocab_size": 5}, "architecture.vocab_size"),
    ("gpt", "tiny-reviews", {"tokenizer": "no-such-tokenizer"}, "architecture.tokenizer"),
    ("mlp", "sklearn:iris", {"depth": 3}, "architecture.depth"),
    ("mlp", "sklearn:iris", {"layers": []}, "architecture.layers"),
    ("mlp", "sklearn:iris", {"layers": [{"type": "Linear"}]}, "architecture.layers[0]"),
    ("mlp", "sklearn:iris", {"layers": [{"type": "Bogus"}]}, "architecture.layers[0]"),
    ("mlp", "sklearn:iris", {"layers": [{"type": "Dropout", "p": 1.5}]}, "architecture.layers[0]"),
    ("mlp", "sklearn:iris", {"layers": [{"type": "Linear", "out_features": 4, "size": 2}]}, "architecture.layers[0]"),
    ("mlp", "sklearn:iris", {"layers": [{"type": "Embedding", "embedding_dim": 4, "num_embeddings": 9}]},
     "architecture.layers[0]"),
    ("rnn", "tiny-reviews", {"vocab_size": 300, "layers": [{"type": "LSTM", "hidden_size": 8}]},
     "architecture.layers[0]"),
])
def test_refused_with_the_field(settings, kind, dataset, changes, field):
    a = arch(kind, **changes)
    e = refused(config(kind, dataset, architecture=a), settings)
    assert e.field == field, e


def test_unknown_kind(settings):
    e = refused(config("mlp", "sklearn:iris", architecture={"kind": "resnet"}), settings)
    assert e.field == "architecture.kind"
