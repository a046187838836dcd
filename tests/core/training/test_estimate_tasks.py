""""Estimate first" for every pretrained task: the probe runs the task module's own setup (model, head, tokenization,
collator) on a sample, so parameters and steps per epoch are the run's, and it refuses what the run would refuse."""
import math
from types import SimpleNamespace

import pytest

from core.settings import Settings
from core.training import ConfigError, TrainingConfig
from core.training.estimate import estimate
from tests.core.models.model_fixtures import tiny_gpt2
from tests.core.training.generation_fixtures import text_dataset, tiny_bart
from tests.core.training.qa_fixtures import QA_COLUMNS, qa_dataset
from tests.core.training.test_token_classification import ner_rows, save
from tests.core.training.training_fixtures import tiny_model


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("estimate-tasks")
    s = Settings(workspace=root / "ws")
    text_dataset(s)
    qa_dataset(s)
    save(s, ner_rows(40))
    return s, SimpleNamespace(gpt=tiny_gpt2(root / "gpt"), bart=tiny_bart(root / "bart"), bert=tiny_model(root / "bert"))


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_causal_lm_estimate_is_the_runs_model_and_blocks(env):
    from transformers import AutoModelForCausalLM

    from core.training import generation as G

    s, m = env
    config = TrainingConfig(task="causal-lm", model=str(m.gpt), dataset="tiny-text", columns={"text": "text"},
                            max_length=8, batch_size=4, max_steps=4)
    seen = []
    est = estimate(config, s, progress=lambda f, what: seen.append((f, what)))
    n = _params(AutoModelForCausalLM.from_pretrained(str(m.gpt)))
    assert est.parameters == n and est.weights_bytes == 4 * n and est.optimizer_bytes == 8 * n
    blocks = len(G.prepare(config, s, str(m.gpt)).train)
    assert est.steps_per_epoch == math.ceil(blocks / 4) and est.typical_length == 8 and est.examples_per_row == 1
    assert 0 < est.seconds_per_step < 30 and not est.reused
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0
    # the logits term: 2 × 4 bytes × batch 4 × 8 tokens × vocabulary, on top of the layers
    assert est.activations_bytes > 2 * 4 * 4 * 8 * 30522 and any("logits" in n for n in est.notes)
    again = estimate(TrainingConfig(**{**config.__dict__, "max_steps": 40, "epochs": 9.0}), s)
    assert again.reused and again.seconds_per_step == est.seconds_per_step
    padded = estimate(TrainingConfig(**{**config.__dict__, "packing": False}), s)
    rows = len(G.prepare(TrainingConfig(**{**config.__dict__, "packing": False}), s, str(m.gpt)).train)
    assert not padded.reused and padded.steps_per_epoch == math.ceil(rows / 4) and padded.typical_length <= 8


def test_seq2seq_token_classification_and_qa_estimates(env):
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoModelForSeq2SeqLM,
        AutoModelForTokenClassification,
    )

    from core.training import extractive_qa as qa
    from core.training import token_classification as tc

    s, m = env
    seq = TrainingConfig(task="seq2seq", model=str(m.bart), dataset="tiny-text", max_length=24, max_target_length=8,
                         columns={"source": "document", "target": "summary"}, batch_size=8, max_steps=4)
    est = estimate(seq, s)
    assert est.parameters == _params(AutoModelForSeq2SeqLM.from_pretrained(str(m.bart)))
    assert est.steps_per_epoch == math.ceil(36 / 8)  # 40 rows, 10 % held out

    ner = TrainingConfig(task="token-classification", model=str(m.bert), dataset="ner", max_length=32, batch_size=8,
                         columns={"tokens": "tokens", "tags": "ner_tags"}, max_steps=4)
    est = estimate(ner, s)
    labels = tc.prepare(ner, s, str(m.bert)).labels
    assert est.parameters == _params(AutoModelForTokenClassification.from_pretrained(str(m.bert),
                                                                                      num_labels=len(labels)))
    assert est.steps_per_epoch == math.ceil(36 / 8)

    qcfg = TrainingConfig(task="question-answering", model=str(m.bert), dataset="tiny-qa", max_length=24,
                          batch_size=8, columns=QA_COLUMNS, max_steps=4)
    est = estimate(qcfg, s)
    assert est.parameters == _params(AutoModelForQuestionAnswering.from_pretrained(str(m.bert)))
    prepared = qa.prepare(qcfg, s, str(m.bert))
    tok = qa.tokenizer_for(str(m.bert))
    windows = len(qa.features(tok, list(prepared.train["question"]), list(prepared.train["context"]),
                              list(prepared.train["answers"]), 24)["input_ids"])
    assert windows > len(prepared.train)  # 24 tokens: the contexts are split into several windows each
    assert est.steps_per_epoch == math.ceil(windows / 8) and est.typical_length == 24
    assert any("windows per question" in n for n in est.notes)


def test_estimate_refuses_what_the_run_would_refuse(env):
    s, m = env
    with pytest.raises(ConfigError) as e:  # an encoder can't generate
        estimate(TrainingConfig(task="seq2seq", model=str(m.bert), dataset="tiny-text", max_length=16,
                                columns={"source": "document", "target": "summary"}), s)
    assert e.value.field == "model" and "encoder-decoder" in e.value.message
    with pytest.raises(ConfigError) as e:
        estimate(TrainingConfig(task="causal-lm", model=str(m.gpt), dataset="tiny-text", columns={"text": "nope"},
                                max_length=16), s)
    assert e.value.field.startswith("columns")
    with pytest.raises(ConfigError) as e:
        estimate(TrainingConfig(task="scratch", architecture={"kind": "mlp"}, dataset="tiny-text"), s)
    assert e.value.field == "task" and "Build a network" in e.value.message
    with pytest.raises(ConfigError) as e:
        estimate(TrainingConfig(task="causal-lm", model=str(m.gpt), dataset="tiny-text", columns={"text": "text"},
                                max_length=16), s, probe_steps=0)
    assert e.value.field == "probe_steps"
