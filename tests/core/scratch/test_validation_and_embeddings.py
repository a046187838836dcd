"""The text networks' training options (#16): a validation split carved from the training rows that chooses
the epoch instead of the test split, and an Embedding started from MiniLM-L6's word-embedding table."""
import pytest
import torch

from core.scratch import check, default_architecture, prepare, setup
from core.scratch import data as D
from core.settings import Settings
from core.training.config import ConfigError
from tests.core.scratch.scratch_fixtures import config, text_dataset


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("scratch-val-ws"))
    text_dataset(s, rows=80)
    return s


def minilm_rnn(freeze: bool, **changes) -> dict:
    arch = default_architecture("rnn")
    arch.update(tokenizer="bert-wordpiece-uncased", pretrained_embeddings="minilm-l6", freeze_embeddings=freeze)
    arch["layers"][0]["embedding_dim"] = 384
    arch.update(changes)
    return arch


def test_the_validation_split_comes_from_the_training_rows_disjoint_from_train_and_test(settings):
    plain = prepare(config("rnn", "tiny-reviews", seed=3), settings)
    arch = {**default_architecture("rnn"), "validation_fraction": 0.25}
    p = prepare(config("rnn", "tiny-reviews", architecture=arch, seed=3), settings)
    rows = lambda ds: [tuple(sorted(r.items())) for r in ds]  # noqa: E731
    train, val, test, before = rows(p.splits.train), rows(p.splits.validation), rows(p.splits.eval), rows(plain.splits.train)
    assert len(val) == round(len(before) * 0.25) and len(train) + len(val) == len(before)
    # the same rows as before, split in two; the test split is untouched
    assert sorted(train + val) == sorted(before)
    assert rows(plain.splits.eval) == test
    # stratified: both classes in the validation rows, in the training proportion
    labels, all_labels = list(p.splits.validation["labels"]), list(plain.splits.train["labels"])
    assert set(labels) == {0, 1}
    assert abs(labels.count(0) / len(labels) - all_labels.count(0) / len(all_labels)) <= 1 / len(labels)
    assert check(config("rnn", "tiny-reviews", architecture=arch, seed=3), settings)["validation_rows"] == len(val)


def test_validation_rows_never_overlap_training_rows_by_position(settings):
    """Same texts can repeat in the fixture, so disjointness is checked on the row positions too."""
    splits = D.store_splits(config("rnn", "tiny-reviews", seed=0), settings, False)
    tagged = D.Splits(splits.train.add_column("row", list(range(len(splits.train)))), splits.eval,
                      splits.label_names, splits.majority_baseline)
    carved = D.carve_validation(tagged, 0.2, 0)
    train, val = set(carved.train["row"]), set(carved.validation["row"])
    assert not train & val and train | val == set(range(len(splits.train)))


def test_a_gpt_validation_split_is_carved_from_the_training_texts_and_its_tokenizer_never_sees_it(settings):
    arch = {**default_architecture("gpt"), "vocab_size": 300, "validation_fraction": 0.2}
    p = prepare(config("gpt", "drug-reviews", architecture=arch, seed=0, max_train_samples=60,
                       max_eval_samples=20), settings)
    plain = prepare(config("gpt", "drug-reviews", architecture={**arch, "validation_fraction": 0.0}, seed=0,
                           max_train_samples=60, max_eval_samples=20), settings)
    train, val, test = (list(ds["text"]) for ds in (p.splits.train, p.splits.validation, p.splits.eval))
    assert len(val) == 12 and len(train) == 48
    assert sorted(train + val) == sorted(plain.splits.train["text"])
    assert test == list(plain.splits.eval["text"]) and not set(val) & set(test)
    task = setup(config("gpt", "drug-reviews", architecture=arch, seed=0, max_train_samples=60,
                        max_eval_samples=20), settings, "unused", p)
    assert task.trainer_class is not None and len(task.trainer_class.validation_dataset) == 12


def test_training_evaluates_on_validation_and_the_final_evaluation_on_test(settings, tmp_path):
    """Inside train() the Trainer reads the validation split (early stopping, best checkpoint); outside, the
    test split: the figure reported is the test split's, for the epoch the validation split chose."""
    from transformers import EarlyStoppingCallback, TrainingArguments

    arch = {**default_architecture("rnn"), "validation_fraction": 0.25}
    cfg = config("rnn", "tiny-reviews", architecture=arch, seed=0)
    task = setup(cfg, settings, tmp_path)
    seen = []

    def metrics(pred):
        seen.append(len(pred.label_ids))
        return task.compute_metrics(pred)

    args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), num_train_epochs=3, per_device_train_batch_size=16,
                             learning_rate=3e-3, report_to=[], use_cpu=True, eval_strategy="epoch",
                             save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="eval_loss",
                             seed=0, disable_tqdm=True)
    t = task.trainer_class(model=task.model, args=args, train_dataset=task.train_dataset,
                           eval_dataset=task.eval_dataset, data_collator=task.data_collator,
                           compute_metrics=metrics, callbacks=[EarlyStoppingCallback(2)])
    t.train()
    n_val, n_test = len(task.trainer_class.validation_dataset), len(task.eval_dataset)
    assert n_val != n_test and seen and set(seen) == {n_val}
    t.evaluate()
    assert seen[-1] == n_test


def test_without_best_checkpoint_the_last_logged_evaluation_is_the_test_split(settings, tmp_path):
    """The job engine reuses the last evaluation logged at the last step as the run's final figure."""
    from transformers import TrainingArguments

    arch = {**default_architecture("rnn"), "validation_fraction": 0.25}
    task = setup(config("rnn", "tiny-reviews", architecture=arch, seed=0), settings, tmp_path)
    args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), max_steps=4, per_device_train_batch_size=16,
                             report_to=[], use_cpu=True, eval_strategy="steps", eval_steps=2, save_strategy="no",
                             seed=0, disable_tqdm=True)
    t = task.trainer_class(model=task.model, args=args, train_dataset=task.train_dataset,
                           eval_dataset=task.eval_dataset, data_collator=task.data_collator,
                           compute_metrics=task.compute_metrics)
    t.train()
    evals = [h for h in t.state.log_history if "eval_loss" in h]
    last = evals[-1]
    assert last["step"] == t.state.global_step
    direct = t.evaluate()
    assert last["eval_loss"] == pytest.approx(direct["eval_loss"])
    assert evals[-2]["step"] == t.state.global_step and evals[-2]["eval_loss"] != pytest.approx(direct["eval_loss"])


@pytest.mark.parametrize("freeze", [True, False])
def test_the_embedding_starts_from_minilm_rows_and_freezing_keeps_them(settings, tmp_path, freeze):
    from tests.core.scratch.scratch_fixtures import trainer

    task = setup(config("rnn", "tiny-reviews", architecture=minilm_rnn(freeze), seed=0), settings, tmp_path)
    emb = task.model.body.layers[0]
    table = D.embedding_table("minilm-l6")
    assert emb.weight.shape == (30522, 384)
    ids = task.processing_class("good awful", add_special_tokens=False)["input_ids"]
    assert torch.equal(emb.weight[ids], table[ids]) and torch.equal(emb.weight, table)
    assert emb.weight.requires_grad is not freeze
    lstm_before = task.model.body.layers[1].weight_ih_l0.detach().clone()
    trainer(task, tmp_path / "ckpt", 3).train()
    assert torch.equal(emb.weight.detach(), table) is freeze
    assert not torch.equal(task.model.body.layers[1].weight_ih_l0.detach(), lstm_before)


def test_minilm_embeddings_need_its_vocabulary_and_width(settings):
    with pytest.raises(ConfigError) as e:
        check(config("rnn", "tiny-reviews", architecture=minilm_rnn(False, tokenizer="train")), settings)
    assert e.value.field == "architecture.tokenizer" and "bert-wordpiece-uncased" in e.value.message
    arch = minilm_rnn(False)
    arch["layers"][0]["embedding_dim"] = 64
    with pytest.raises(ConfigError) as e:
        check(config("rnn", "tiny-reviews", architecture=arch), settings)
    assert e.value.field == "architecture.layers[0]" and "384" in e.value.message
    for bad, field in (({"pretrained_embeddings": "glove"}, "pretrained_embeddings"),
                       ({"freeze_embeddings": "yes"}, "freeze_embeddings"),
                       ({"validation_fraction": 0.9}, "validation_fraction"),
                       ({"validation_fraction": True}, "validation_fraction")):
        with pytest.raises(ConfigError) as e:
            check(config("rnn", "tiny-reviews", architecture={**minilm_rnn(False), **bad}), settings)
        assert e.value.field == f"architecture.{field}"


@pytest.mark.parametrize("patience", [0, 2])
def test_the_job_engine_reports_the_test_split_for_a_run_with_a_validation_split(settings, patience):
    """Through core.training.runner (as the page's Start queues it): the curve's eval points read the
    validation rows, the final figure is the test split's, with or without early stopping."""
    from dataclasses import asdict

    from core.scratch.models import ScratchClassifier
    from core.training import RunStore
    from core.training.runner import run_training

    arch = {**default_architecture("rnn"), "validation_fraction": 0.25}
    cfg = config("rnn", "tiny-reviews", architecture=arch, seed=0, max_steps=8, eval_steps=2, batch_size=8,
                 learning_rate=3e-3, early_stopping_patience=patience)
    store = RunStore(settings.runs_db)
    run_id = store.create("validation", asdict(cfg))
    assert run_training(run_id, store, settings, lambda: False) == "completed"
    rec = store.get(run_id)
    task = setup(cfg, settings, "unused")
    model = ScratchClassifier.from_pretrained(rec.model_dir).eval()
    batch = task.data_collator([task.eval_dataset[i] for i in range(len(task.eval_dataset))])
    with torch.no_grad():
        test_loss = model(**batch).loss.item()
    assert rec.final_metrics["loss"] == pytest.approx(test_loss, abs=1e-4)
    val = task.trainer_class.validation_dataset
    batch = task.data_collator([val[i] for i in range(len(val))])
    with torch.no_grad():
        assert model(**batch).loss.item() != pytest.approx(test_loss, abs=1e-4)

