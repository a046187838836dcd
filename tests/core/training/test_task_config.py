"""The task-aware config (#17): a column mapping checked before any data is read, and TensorBoard logging of a
run to its own folder and to Trackio, agreeing step for step with the run store."""
from pathlib import Path

import pytest

from core.settings import Settings
from core.training import ConfigError, JobManager, TrainingConfig
from core.training.config import TASK_ROLES
from tests.core.training.training_fixtures import tiny_dataset, tiny_model


def refused(**kw) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        TrainingConfig(**kw).validate()
    return e.value


def test_each_task_needs_exactly_its_roles_each_a_distinct_column():
    full = {"tokens": "words", "tags": "ner_tags"}
    TrainingConfig(task="token-classification", columns=full).validate()
    assert refused(task="token-classification", columns={"tokens": "words"}).field == "columns.tags"
    e = refused(task="token-classification", columns={**full, "question": "q"})
    assert e.field == "columns.question" and "tokens, tags" in e.message
    e = refused(task="token-classification", columns={"tokens": "words", "tags": "words"})
    assert e.field == "columns.tags" and "already the tokens column" in e.message
    assert refused(task="seq2seq", columns={"source": "a", "target": " "}).field == "columns.target"
    assert refused(task="question-answering", columns=["question"]).field == "columns"
    assert refused(task="causal-lm", columns={"text": "t" * 5000}).field == "columns.text"
    assert refused(task="text-classification", columns={"text": "t"}).field == "columns"
    assert refused(task="ner").field == "task"
    assert refused(report_to="wandb").field == "report_to"
    for task, roles in TASK_ROLES.items():  # every role named in the table is one the task accepts
        TrainingConfig(task=task, columns={r: f"col_{r}" for r in roles}).validate()


def test_a_mapped_task_does_not_check_the_classification_columns():
    # text_column == label_column would be refused for text classification; another task never reads them
    TrainingConfig(task="causal-lm", columns={"text": "body"}, text_column="x", label_column="x").validate()
    assert refused(text_column="x", label_column="x").field == "label_column"


def _tiny_run(tmp_path, **config):
    """(settings, the tiny model, a finished 4-step tiny run's id, its jobs' store) with `config` on top."""
    settings = Settings(workspace=tmp_path / "ws")
    tiny_dataset(settings)
    model = tiny_model(tmp_path / "tiny")
    jobs = JobManager(settings=settings)
    run_id = jobs.submit(TrainingConfig(**{**dict(model=str(model), dataset="tiny", max_length=32, batch_size=8,
                                                  max_steps=4, warmup=0), **config}))
    assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
    jobs.shutdown()
    return settings, model, run_id, jobs.store


def _tensorboard_losses(settings, run_id):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from core.training.runner import run_dir, tensorboard_dir

    acc = EventAccumulator(str(tensorboard_dir(run_dir(settings, run_id))))
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars("train/loss")}, acc.Tags()["scalars"]


def test_tensorboard_gets_the_same_losses_as_the_store(tmp_path):
    from core.training.runner import run_dir, tensorboard_dir

    settings, model, run_id, store = _tiny_run(tmp_path, report_to="tensorboard")
    logged, tags = _tensorboard_losses(settings, run_id)
    stored = {m["step"]: m["loss"] for m in store.metrics(run_id, "train")}
    assert sorted(logged) == sorted(stored) == [1, 2, 3, 4]
    assert all(logged[s] == pytest.approx(stored[s], rel=1e-5) for s in stored)
    assert "eval/loss" in tags
    # a run without report_to writes no events
    other = JobManager(settings=settings)
    plain = other.submit(TrainingConfig(model=str(model), dataset="tiny", max_length=32, batch_size=8, max_steps=1,
                                        warmup=0))
    assert other.wait(plain, 300) == "completed"
    other.shutdown()
    assert not tensorboard_dir(run_dir(settings, plain)).exists()


def test_trackio_and_tensorboard_get_the_store_s_losses(tmp_path):
    from core.training.trackio_log import PROJECT, logged_losses, open_command

    settings, _, run_id, store = _tiny_run(tmp_path, eval_steps=2, name="both", report_to="tensorboard,trackio")
    where = store.get(run_id).plan["trackio"]
    assert where["project"] == PROJECT and where["run"] == f"{run_id} · both"
    assert (Path(where["dir"]) / f"{PROJECT}.db").is_file()
    assert open_command(where) == f"TRACKIO_DIR={where['dir']} trackio show --project {PROJECT}"
    stored = {m["step"]: m["loss"] for m in store.metrics(run_id, "train")}
    tracked = logged_losses(where)
    assert sorted(tracked) == sorted(stored) == [1, 2, 3, 4]
    assert all(tracked[s] == pytest.approx(stored[s], rel=1e-6) for s in stored)
    assert sorted(_tensorboard_losses(settings, run_id)[0]) == [1, 2, 3, 4]  # both at once


def test_each_task_has_one_headline_metric_against_its_baseline():
    from core.training.curves import headline

    assert headline("text-classification", {"accuracy": 0.702, "majority_baseline": 0.654}) == \
        ("accuracy", "70.2%", "65.4%")
    assert headline("token-classification", {"f1": 0.5912, "accuracy": 0.86, "all_o_f1": 0.0}) == \
        ("entity F1", "0.591", "0.000")
    assert headline("question-answering", {"exact_match": 40.0, "f1": 52.25, "baseline_f1": 3.5}) == \
        ("F1 (SQuAD, %)", "52.2", "3.5")
    assert headline("causal-lm", {"perplexity": 1359.04, "perplexity_before": 30153.2}) == \
        ("perplexity", "1,359.0", "30,153.2")
    assert headline("seq2seq", {"rougeL": 0.93, "lead_rougeL": 0.1}) == ("ROUGE-L", "0.930", "0.100")
    # a from-scratch run: whatever its network reports (a tiny GPT has no accuracy)
    assert headline("scratch", {"perplexity": 79.7, "bigram_perplexity": 77.8}) == ("perplexity", "79.7", "77.8")
    assert headline("scratch", {"token_accuracy": 0.9996}) == ("token accuracy", "100.0%", "—")
    assert headline("causal-lm", {}) == ("perplexity", "—", "—")  # still running: nothing to show yet
