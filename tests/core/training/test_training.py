"""The training engine end to end on CPU: a tiny BERT, a few rows, a few steps."""
import subprocess
import sys
import time

import pytest
from transformers import TrainerCallback

from core.settings import Settings
from core.training import ConfigError, JobManager, RunStore, TrainingConfig
from core.training.jobs import ThreadRunner
from tests.core.training.training_fixtures import tiny_dataset, tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def settings(tmp_path):
    s = Settings(workspace=tmp_path / "ws")
    tiny_dataset(s)
    return s


def cfg(model_dir, **kw) -> TrainingConfig:
    base = dict(model=str(model_dir), dataset="tiny", max_length=32, batch_size=8, learning_rate=5e-3,
                max_steps=8, warmup=0, logging_steps=1)
    return TrainingConfig(**{**base, **kw})


class Slow(TrainerCallback):
    """Makes each step take a while, so a Stop lands mid-run."""

    def on_step_end(self, args, state, control, **kw):
        time.sleep(0.15)


class Boom(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 2:
            raise RuntimeError("injected failure at step 2")


class PoisonWeights(TrainerCallback):
    """Turns the classifier's weights to NaN after step 2: the next loss is NaN."""

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.global_step == 2:
            model.classifier.weight.data.fill_(float("nan"))


def test_run_end_to_end_writes_metrics_and_model(settings, model_dir):
    jobs = JobManager(settings=settings)
    run_id = jobs.submit(cfg(model_dir))
    assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
    train = jobs.store.metrics(run_id, "train")
    assert [m["step"] for m in train] == list(range(1, 9))
    for key in ("loss", "learning_rate", "grad_norm", "epoch", "samples_per_s", "tokens_per_s"):
        assert key in train[-1], key
    evals = jobs.store.metrics(run_id, "eval")
    assert evals and {"eval_loss", "eval_accuracy", "eval_f1", "eval_confusion_matrix"} <= set(evals[-1])
    rec = jobs.store.get(run_id)
    cm = rec.final_metrics["confusion_matrix"]
    assert sum(map(sum, cm)) == 4  # 10% of 40 rows held out
    assert rec.final_metrics["majority_baseline"] == pytest.approx(0.5)
    assert rec.plan["labels"] == ["neg", "pos"]  # string labels became classes
    assert (settings.checkpoints_dir / run_id / "model" / "config.json").is_file()
    assert rec.model_dir.endswith("model")
    jobs.shutdown()


def test_stop_then_resume_continues_the_step_count(settings, model_dir):
    jobs = JobManager(settings=settings, runner=ThreadRunner(lambda run_id: [Slow()]))
    run_id = jobs.submit(cfg(model_dir, max_steps=16, save_steps=100, eval_steps=100))
    deadline = time.time() + 120
    while len(jobs.store.metrics(run_id, "train")) < 3 and time.time() < deadline:
        time.sleep(0.1)
    jobs.stop(run_id)
    assert jobs.wait(run_id, 120) == "stopped"
    stopped_at = max(m["step"] for m in jobs.store.metrics(run_id, "train"))
    assert 3 <= stopped_at < 16
    rec = jobs.store.get(run_id)
    assert rec.checkpoint and rec.checkpoint.endswith(f"checkpoint-{stopped_at}")
    # the training time of the first segment is kept: at least the steps' own sleeps, at most the wall time
    first = rec.train_seconds
    assert 0.15 * stopped_at <= first <= rec.finished - rec.created

    jobs.resume(run_id)
    assert jobs.wait(run_id, 300) == "completed"
    steps = [m["step"] for m in jobs.store.metrics(run_id, "train")]
    assert steps == list(range(1, 17)), "one curve, continuing where it stopped"
    rec = jobs.store.get(run_id)
    assert rec.final_metrics["global_step"] == 16
    # elapsed counts both segments; the resume point says what came back from the checkpoint
    assert rec.train_seconds >= first + 0.15 * (16 - stopped_at)
    assert rec.elapsed() == rec.train_seconds
    (resume,) = jobs.store.metrics(run_id, "resume")
    assert resume["step"] == resume["from_step"] == stopped_at
    assert resume["restored"] == ["weights", "optimizer", "scheduler", "RNG", "data position"]
    jobs.shutdown()


def test_second_process_sees_the_run(settings, model_dir):
    jobs = JobManager(settings=settings)
    run_id = jobs.submit(cfg(model_dir, max_steps=2))
    jobs.wait(run_id, 300)
    code = ("import sys; from core.training import RunStore; s = RunStore(sys.argv[1]); "
            "r = s.get(sys.argv[2]); print(r.status, len(s.metrics(r.id, 'train')))")
    out = subprocess.run([sys.executable, "-c", code, str(settings.runs_db), run_id],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["completed", "2"], out.stderr
    jobs.shutdown()


def test_injected_exception_fails_the_job_and_the_next_job_runs(settings, model_dir):
    jobs = JobManager(settings=settings, runner=ThreadRunner(lambda run_id: [Boom()] if run_id == first[0] else []))
    first = [None]
    first[0] = run_id = jobs.submit(cfg(model_dir))
    assert jobs.wait(run_id, 300) == "failed"
    assert "injected failure at step 2" in jobs.store.get(run_id).message
    assert (settings.checkpoints_dir / run_id / "error.log").read_text().count("RuntimeError") >= 1
    ok = jobs.submit(cfg(model_dir, max_steps=2))
    assert jobs.wait(ok, 300) == "completed"
    jobs.shutdown()


def test_nan_loss_fails_with_message(settings, model_dir):
    jobs = JobManager(settings=settings, runner=ThreadRunner(lambda run_id: [PoisonWeights()]))
    run_id = jobs.submit(cfg(model_dir))
    assert jobs.wait(run_id, 300) == "failed"
    msg = jobs.store.get(run_id).message
    assert "loss became nan at step 3" in msg
    jobs.shutdown()


def test_dead_servers_runs_show_as_interrupted_and_resume(settings, model_dir):
    store = RunStore(settings.runs_db)
    config = cfg(model_dir, max_steps=3)
    run_id = store.create("orphan", __import__("json").loads(config.to_json()))
    store.update(run_id, status="running", owner="localhost-that-died:1:1")
    store.update(run_id, owner=f"{__import__('socket').gethostname()}:999999:1")  # a pid that isn't running
    jobs = JobManager(settings=settings)
    assert jobs.status(run_id) == "interrupted"
    jobs.resume(run_id)
    assert jobs.wait(run_id, 300) == "completed"
    assert [m["step"] for m in jobs.store.metrics(run_id, "train")] == [1, 2, 3]
    jobs.shutdown()


def test_delete_removes_run_and_files(settings, model_dir):
    jobs = JobManager(settings=settings)
    run_id = jobs.submit(cfg(model_dir, max_steps=2))
    jobs.wait(run_id, 300)
    jobs.delete(run_id)
    assert run_id not in {r.id for r in jobs.store.runs()}
    assert not (settings.checkpoints_dir / run_id).exists()
    jobs.shutdown()


@pytest.mark.parametrize("change, field", [
    (dict(batch_size=0), "batch_size"),
    (dict(learning_rate=-1e-3), "learning_rate"),
    (dict(max_length=-4), "max_length"),
    (dict(max_length=4096), "max_length"),  # above the model's 64 positions
    (dict(epochs=0, max_steps=-1), "epochs"),
    (dict(text_column="body"), "text_column"),
    (dict(label_column="nope"), "label_column"),
    (dict(dataset="missing"), "dataset"),
    (dict(precision="fp16"), "precision"),  # no GPU here
    (dict(model="bert-base-uncased"), "model"),  # a hub id, offline
])
def test_bad_configs_are_refused_before_launch(settings, model_dir, change, field):
    import torch

    if field == "precision" and torch.cuda.is_available():
        pytest.skip("fp16 is valid on a GPU")
    jobs = JobManager(settings=settings)
    with pytest.raises(ConfigError) as e:
        jobs.submit(cfg(model_dir, **change))
    assert e.value.field == field
    assert jobs.store.runs() == []  # nothing queued
    jobs.shutdown()


@pytest.mark.parametrize("labels, field, words", [
    (("pos", "pos"), "label_column", "single class"),
    (("pos", None), "label_column", "no label"),
    ((0.5, 1.5), "label_column", "regression"),
])
def test_bad_labels_are_refused(tmp_path, model_dir, labels, field, words):
    s = Settings(workspace=tmp_path / "ws")
    tiny_dataset(s, "odd", labels=labels)
    jobs = JobManager(settings=s)
    with pytest.raises(ConfigError, match=words) as e:
        jobs.submit(cfg(model_dir, dataset="odd"))
    assert e.value.field == field
    jobs.shutdown()


def test_empty_split_is_refused(tmp_path, model_dir):
    import datasets

    from core.data import DatasetStore

    s = Settings(workspace=tmp_path / "ws")
    # what a filter that matches nothing leaves behind
    empty = datasets.Dataset.from_dict({"text": ["a"], "label": ["x"]}).filter(lambda r: False)
    DatasetStore(s.datasets_dir).save(empty, "empty", "test")
    with pytest.raises(ConfigError, match="empty") as e:
        JobManager(settings=s).submit(cfg(model_dir, dataset="empty"))
    assert e.value.field == "dataset"


def test_torchrun_runner_two_cpu_processes(settings, model_dir):
    """The scale-out path: the same config under torchrun, 2 processes over gloo, same store."""
    from core.training.distributed import TorchrunRunner

    jobs = JobManager(settings=settings, runner=TorchrunRunner(nproc=2))
    run_id = jobs.submit(cfg(model_dir, max_steps=4))
    assert jobs.wait(run_id, 400) == "completed", jobs.store.get(run_id).message
    rec = jobs.store.get(run_id)
    assert rec.runner == "torchrun" and rec.plan["processes"] == 2
    train = jobs.store.metrics(run_id, "train")
    assert [m["step"] for m in train] == [1, 2, 3, 4]  # rank 0 alone writes
    assert (settings.checkpoints_dir / run_id / "model" / "config.json").is_file()
    jobs.shutdown()
