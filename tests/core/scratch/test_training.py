"""Each kind trains a few steps with the Hugging Face Trainer on its TaskSetup (dry-run size), the held-out loss
goes down, its metrics come out, and "try it" works on the saved folder."""
import math

import pytest
import torch

from core.scratch import check, predict, setup
from core.settings import Settings
from tests.core.scratch.scratch_fixtures import config, text_dataset, trainer


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("scratch-ws"))
    text_dataset(s)
    return s


def train_and_save(cfg, settings, tmp_path, steps, lr=3e-3, batch=16):
    task = setup(cfg, settings, tmp_path)
    t = trainer(task, tmp_path / "ckpt", steps, lr, batch)
    before = t.evaluate()
    t.train()
    after = t.evaluate()
    t.save_model(str(tmp_path / "model"))
    return task, before, after


def assert_reloads_the_same(task, folder):
    """The saved folder gives the trained model's logits (buffers such as positional tables included)."""
    batch = task.data_collator([task.eval_dataset[i] for i in range(4)])
    reloaded = type(task.model).from_pretrained(str(folder)).eval()
    with torch.no_grad():
        assert torch.allclose(task.model.eval()(**batch).logits, reloaded(**batch).logits, atol=1e-5)


def test_mlp_on_iris(settings, tmp_path):
    cfg = config("mlp", "sklearn:iris", eval_fraction=0.3)
    assert check(cfg, settings)["classes"] == 3
    task, before, after = train_and_save(cfg, settings, tmp_path, 30, lr=1e-2)
    assert after["eval_loss"] < before["eval_loss"]
    assert after["eval_accuracy"] > 0.6 and "eval_f1" in after
    assert task.baseline["majority_baseline"] == pytest.approx(1 / 3, abs=0.05)
    out = predict(tmp_path / "model", [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    assert [o["label"] for o in out] == ["setosa", "virginica"]
    assert sum(out[0]["probabilities"].values()) == pytest.approx(1.0)


def test_cnn_on_digits(settings, tmp_path):
    cfg = config("cnn", "sklearn:digits", max_train_samples=256, max_eval_samples=128)
    task, before, after = train_and_save(cfg, settings, tmp_path, 16, lr=2e-3, batch=32)
    assert after["eval_loss"] < before["eval_loss"] and after["eval_accuracy"] > 0.5
    assert task.info["layers"][0]["type"] == "Conv2d" and task.info["input_shape"] == [1, 8, 8]
    row = task.eval_dataset[0]
    out = predict(tmp_path / "model", [row["inputs"].tolist()])
    assert out[0]["label"] in [str(d) for d in range(10)]


def test_mlp_on_numeric_columns_of_a_workspace_dataset(settings, tmp_path):
    cfg = config("mlp", "tiny-reviews", eval_fraction=0.25)
    info = check(cfg, settings)
    assert info["input_shape"] == [1] and info["labels"] == ["neg", "pos"]


@pytest.mark.parametrize("kind", ["rnn", "transformer"])
def test_text_classifiers(settings, tmp_path, kind):
    arch = config(kind, "x").architecture
    arch["vocab_size"] = 300
    cfg = config(kind, "tiny-reviews", architecture=arch, max_length=32, eval_fraction=0.25)
    task, before, after = train_and_save(cfg, settings, tmp_path, 12, lr=5e-3)
    assert after["eval_loss"] < before["eval_loss"]
    assert "eval_accuracy" in after and task.baseline["majority_baseline"] > 0
    assert task.info["layers"][0]["args"]["num_embeddings"] == len(task.processing_class)
    assert_reloads_the_same(task, tmp_path / "model")
    out = predict(tmp_path / "model", ["no side effects, works well", "made me sick"])
    assert {o["label"] for o in out} <= {"neg", "pos"}


def test_rnn_with_a_packaged_tokenizer(settings, tmp_path):
    arch = config("rnn", "x").architecture
    arch["tokenizer"] = "bert-wordpiece-uncased"
    arch["layers"][1] = {"type": "GRU", "hidden_size": 16}
    cfg = config("rnn", "tiny-reviews", architecture=arch, max_length=16)
    info = check(cfg, settings)
    assert info["layers"][0]["args"]["num_embeddings"] == 30522


def test_seq2seq_reverse(settings, tmp_path):
    arch = config("seq2seq", "x").architecture
    arch.update(d_model=32, dim_feedforward=64, train_size=256, eval_size=64, max_len=6, dropout=0.0)
    cfg = config("seq2seq", "toy:reverse", architecture=arch)
    task, before, after = train_and_save(cfg, settings, tmp_path, 20, lr=3e-3, batch=32)
    assert after["eval_loss"] < before["eval_loss"]
    assert 0 <= after["eval_token_accuracy"] <= 1 and "eval_sequence_accuracy" in after
    assert_reloads_the_same(task, tmp_path / "model")
    out = predict(tmp_path / "model", [[1, 2, 3], "4 5"])
    assert len(out) == 2 and all(isinstance(s, int) for s in out[0]["output"])


def test_tiny_gpt(settings, tmp_path):
    arch = config("gpt", "x").architecture
    arch.update(vocab_size=300, n_embd=32, n_layer=1, n_head=2, dropout=0.0)
    cfg = config("gpt", "tiny-reviews", architecture=arch, max_length=32, eval_fraction=0.2)
    task, before, after = train_and_save(cfg, settings, tmp_path, 15, lr=5e-3)
    assert after["eval_loss"] < before["eval_loss"]
    assert after["eval_perplexity"] < before["eval_perplexity"]
    assert math.isfinite(task.baseline["bigram_perplexity"]) and task.baseline["bigram_perplexity"] > 1
    # perplexity per token: the model's own causal-LM loss over every held-out token at once
    batch = task.data_collator([task.eval_dataset[i] for i in range(len(task.eval_dataset))])
    with torch.no_grad():
        loss = task.model.eval()(**batch).loss.item()
    assert after["eval_perplexity"] == pytest.approx(math.exp(loss), rel=1e-4)
    out = predict(tmp_path / "model", ["great drug"], max_new_tokens=5)
    assert out[0]["text"].startswith("great drug")
