"""Pre-launch estimate, export-as-script, curves helpers and before/after predictions."""
import subprocess
import sys

import pytest

from core.settings import Settings
from core.training import JobManager, TrainingConfig
from core.training.curves import config_diff, ema, overfitting, progress
from core.training.estimate import estimate
from core.training.export import export_script
from tests.core.training.training_fixtures import tiny_dataset, tiny_model


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    s = Settings(workspace=ws)
    tiny_dataset(s)
    return s, tiny_model(ws / "tiny-model")


def cfg(model, **kw):
    return TrainingConfig(**{**dict(model=str(model), dataset="tiny", max_length=32, batch_size=8,
                                    learning_rate=5e-3, max_steps=4, warmup=0), **kw})


def test_estimate_counts_parameters_and_adam_state(env):
    s, model = env
    est = estimate(cfg(model), s)
    from transformers import AutoModelForSequenceClassification

    ref = AutoModelForSequenceClassification.from_pretrained(str(model), num_labels=2)
    n = sum(p.numel() for p in ref.parameters())
    assert est.parameters == n
    assert est.weights_bytes == 4 * n and est.grads_bytes == 4 * n
    assert est.optimizer_bytes == 8 * n  # AdamW: two fp32 moments per parameter
    assert est.steps_per_epoch == 5  # 36 training rows / batch 8, rounded up
    assert 0 < est.seconds_per_step < 30
    assert est.typical_length <= 32 and est.activations_bytes > 0
    assert not est.reused


def test_estimate_reports_progress_and_reuses_the_probe_when_only_step_counts_change(env):
    s, model = env
    seen = []
    first = estimate(cfg(model, max_length=24), s, progress=lambda f, what: seen.append((f, what)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("timing training step 2 of 2" in w for _, w in seen)
    # epochs, max steps and accumulation change how many steps there are, not what one costs
    again = estimate(cfg(model, max_length=24, max_steps=40, epochs=7, grad_accumulation=2), s)
    assert again.reused and again.seconds_per_step == pytest.approx(2 * first.seconds_per_step)
    assert again.parameters == first.parameters
    other = estimate(cfg(model, max_length=16), s)  # a new length changes the step: measured again
    assert not other.reused


@pytest.mark.parametrize("scheduler", ["linear", "one_cycle"])
def test_exported_script_reproduces_the_run_with_plain_transformers(env, tmp_path, scheduler):
    s, model = env
    script = export_script(cfg(model, scheduler=scheduler), s, "t", labels=["neg", "pos"], eval_steps=2,
                           output=str(tmp_path / "out"))
    assert "from core" not in script and "torchlab" not in script.lower()  # standalone
    assert ("OneCycleLR(" in script) == (scheduler == "one_cycle")
    path = tmp_path / "train.py"
    path.write_text(script)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'eval_accuracy'" in out.stdout and "'train_samples_per_second'" in out.stdout
    assert (tmp_path / "out" / "model" / "config.json").is_file()


def test_before_and_after_predictions(env):
    from core.training.predict import predict_after, predict_before

    s, model = env
    jobs = JobManager(settings=s)
    run_id = jobs.submit(cfg(model, max_steps=6))
    assert jobs.wait(run_id, 300) == "completed"
    rec = jobs.store.get(run_id)
    texts = ["loved it", "hated it"]
    before, after = predict_before(rec, texts, s), predict_after(rec, texts)
    for probs in before + after:
        assert set(probs) == {"neg", "pos"} and sum(probs.values()) == pytest.approx(1, abs=1e-5)
    assert before != after  # training changed the model
    jobs.shutdown()


def test_ema_is_debiased():
    assert ema([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert ema([0.0, 1.0], weight=0.5) == pytest.approx([0.0, 2 / 3])  # (0.5*0 + 0.5*1)/(1-0.25)


def test_overfitting_warning_needs_rising_eval_and_falling_train():
    train = [{"step": s, "loss": 1.0 - s / 100} for s in range(1, 31)]
    rising = [{"step": s, "eval_loss": 0.5 + s / 100} for s in (10, 20, 30)]
    falling = [{"step": s, "eval_loss": 0.5 - s / 100} for s in (10, 20, 30)]
    assert "overfit" in overfitting(train, rising)
    assert overfitting(train, falling) is None


def test_progress_estimates_time_left():
    rows = [{"step": s, "time": 100.0 + s} for s in range(1, 11)]  # one step per second
    p = progress(rows, total_steps=20, started=100.0)
    assert p.step == 10 and p.fraction == 0.5
    assert p.remaining_s == pytest.approx(10.0)


def test_config_diff_lists_only_differences():
    rows = config_diff({"a": {"lr": 1e-4, "bs": 16}, "b": {"lr": 5e-5, "bs": 16}})
    assert rows == [{"field": "lr", "a": "0.0001", "b": "5e-05"}]
