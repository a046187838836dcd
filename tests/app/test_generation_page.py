"""Causal LM on the fine-tuning page: the form maps one example from a local decoder folder; a finished run's
results generate text from a prompt with the chosen decoding."""
import pytest
from streamlit.testing.v1 import AppTest

from components.training_form import CUSTOM
from core.settings import Settings, get_settings
from tests.core.models.model_fixtures import tiny_gpt2
from tests.core.training.generation_fixtures import text_dataset


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    text_dataset(get_settings(), "tiny-gen-text")
    return tiny_gpt2(tmp_path_factory.mktemp("gen-gpt") / "gpt")


def test_form_maps_a_causal_example_from_a_local_folder(open_page, gpt):
    at = open_page("pages/fine_tuning.py")
    at.selectbox(key="ft_task").set_value("causal-lm").run()
    at.selectbox(key="ft_model_causal-lm").set_value(CUSTOM).run()
    at.text_input(key="ft_model_custom").set_value(str(gpt))
    at.selectbox(key="ft_dataset").set_value("tiny-gen-text").run()
    at.selectbox(key="ft_col_causal-lm_text").set_value("text")
    at.number_input(key="ft_maxlen").set_value(16).run()
    assert not at.exception
    tables = [t.value for t in at.dataframe if "input token" in getattr(t.value, "columns", [])]
    assert tables, [e.value for e in at.error]
    table = tables[0]
    assert len(table) == 16 and table["input token"].iloc[0] == "[CLS]"
    assert list(table["predicts (next token)"].iloc[:-1]) == list(table["input token"].iloc[1:])
    assert any("Packing" in c.value for c in at.caption)


def _results_script(workspace: str, run_id: str):
    from pathlib import Path

    from components.task_generation import results
    from core.settings import Settings
    from core.training import RunStore

    settings = Settings(workspace=Path(workspace))
    results(RunStore(settings.runs_db).get(run_id), settings)


def test_results_try_it_generates_text(tmp_path, gpt, monkeypatch):
    from core.training import RunStore, TrainingConfig

    settings = Settings(workspace=tmp_path / "ws")
    text_dataset(settings, "tiny-gen-text")
    config = TrainingConfig(task="causal-lm", model=str(gpt), dataset="tiny-gen-text", columns={"text": "text"},
                            max_length=16, max_steps=4)
    store = RunStore(settings.runs_db)
    run_id = store.create("gpt on text", config.__dict__ | {})
    store.update(run_id, status="completed", model_dir=str(gpt), plan={"packing": True, "block_size": 16,
                 "train_rows": 12, "eval_rows": 2, "eval_steps": 4},
                 final_metrics={"loss": 9.0, "perplexity": 8103.08, "perplexity_before": 30000.0,
                                "unigram_perplexity": 2600.0})
    at = AppTest.from_function(_results_script, args=(str(settings.workspace), run_id), default_timeout=120).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["perplexity"] == "8,103.1" and metrics["perplexity before training"] == "30,000.0"
    prompt = at.text_area(key=f"gen_prompt_{run_id}")
    assert prompt.value  # prefilled from the run's evaluation split
    prompt.set_value("the cat sat")
    at.radio(key=f"gen_{run_id}_decoding").set_value("beam search").run()
    at.number_input(key=f"gen_{run_id}_new").set_value(5).run()
    at.button(key=f"gen_{run_id}_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    out = at.success[0].value
    assert out.startswith("the cat sat") and len(out) > len("the cat sat")  # 5 new tokens
    assert any('pipeline("text-generation"' in c.value and "num_beams=4" in c.value for c in at.code)
    assert any("AutoModelForCausalLM" in c.value and "group_texts" in c.value for c in at.code)  # the export script
    # the Transformer anatomy page lists the completed causal-lm run (a GPT-2-style folder it opens)
    from components import anatomy_views, loaders

    monkeypatch.setattr(loaders, "settings", lambda: settings)
    assert anatomy_views.model_options()[f"run: gpt on text ({run_id})"] == str(gpt)
