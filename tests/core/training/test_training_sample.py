"""The product's promise: MiniLM fine-tuned on the built-in drug-review sample beats the majority class."""
from core.settings import Settings
from core.training import JobManager, TrainingConfig


def test_minilm_on_drug_reviews_beats_majority_baseline(tmp_path):
    jobs = JobManager(settings=Settings(workspace=tmp_path))
    # the form's defaults; evaluation and checkpoints only at the end to keep CI short
    run_id = jobs.submit(TrainingConfig(eval_steps=10_000, save_steps=10_000))
    assert jobs.wait(run_id, 900) == "completed", jobs.store.get(run_id).message
    final = jobs.store.get(run_id).final_metrics
    assert final["majority_baseline"] == 248 / 379  # "positive" in the 379 test reviews
    assert final["accuracy"] > final["majority_baseline"] + 0.02, final
    jobs.shutdown()
