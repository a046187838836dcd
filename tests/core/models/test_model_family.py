"""Which saved run folders the anatomy page can open: BERT-family encoders, GPT-2-style decoders, BART encoders."""
import json

import pytest

from core.models import model_family


@pytest.mark.parametrize("model_type,family", [("bert", "bert"), ("gpt2", "gpt2"), ("bart", "bart"),
                                               ("torchlab-scratch", None), ("torchlab-seq2seq", None), ("t5", None),
                                               ("marian", None), ("mbart", None)])
def test_family_from_the_saved_config(tmp_path, model_type, family):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    assert model_family(tmp_path) == family


def test_a_folder_without_a_readable_config_is_not_offered(tmp_path):
    assert model_family(tmp_path) is None
    (tmp_path / "config.json").write_text("{not json")
    assert model_family(tmp_path) is None
