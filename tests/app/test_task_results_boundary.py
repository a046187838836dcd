"""A task's results view that fails says so in place, and the rest of the page still draws."""
from streamlit.testing.v1 import AppTest


def _results(workspace: str, run_id: str):
    from pathlib import Path

    import streamlit as st

    from components.training_results import task_results
    from core.settings import Settings
    from core.training import RunStore

    settings = Settings(workspace=Path(workspace))
    task_results(RunStore(settings.runs_db).get(run_id), settings)
    st.caption("after the results")  # the page goes on


def _run(tmp_path):
    from core.settings import Settings
    from core.training import RunStore, TrainingConfig

    settings = Settings(workspace=tmp_path / "ws")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{not json")  # damaged after the run completed
    config = TrainingConfig(task="token-classification", model=str(model), dataset="nowhere",
                            columns={"tokens": "tokens", "tags": "ner_tags"})
    store = RunStore(settings.runs_db)
    run_id = store.create("ner", config.__dict__)
    store.update(run_id, status="completed", model_dir=str(model), plan={"labels": ["O", "B-PER", "I-PER"]},
                 final_metrics={"f1": 0.5, "precision": 0.5, "recall": 0.5, "accuracy": 0.9, "all_o_accuracy": 0.8})
    return AppTest.from_function(_results, args=(str(settings.workspace), run_id), default_timeout=120)


def test_a_damaged_run_says_what_it_cannot_show(tmp_path):
    at = _run(tmp_path).run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "0.500"  # what the store holds is shown
    assert any("Can't export this run as a script any more" in i.value for i in at.info)
    assert any("dataset can't be read any more" in c.value for c in at.caption)
    assert any("after the results" in c.value for c in at.caption)


def test_a_view_that_raises_is_named_not_raised(tmp_path, monkeypatch):
    from components import task_tokens

    def broken(rec, settings):
        raise RuntimeError("the view broke")

    monkeypatch.setattr(task_tokens, "results", broken)
    at = _run(tmp_path).run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["Can't show this run's results: RuntimeError: the view broke"]
    assert any("after the results" in c.value for c in at.caption)
