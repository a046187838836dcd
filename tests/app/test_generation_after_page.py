"""A causal-lm / seq2seq run's results: batch inference over the evaluation split with throughput, and the
"Make it smaller and faster" panel (int8 vs fp32 with the task's metric)."""
import pytest
from streamlit.testing.v1 import AppTest

from core.settings import Settings
from tests.core.models.model_fixtures import tiny_gpt2
from tests.core.training.generation_fixtures import text_dataset


def _results_script(workspace: str, run_id: str):
    from pathlib import Path

    from components.task_generation import results
    from core.settings import Settings
    from core.training import RunStore

    settings = Settings(workspace=Path(workspace))
    results(RunStore(settings.runs_db).get(run_id), settings)


def _causal_run(tmp_path, column: str = "document"):
    """A completed causal-lm run record whose model is a tiny GPT-2 folder (no training: the view is under test)."""
    from core.training import RunStore, TrainingConfig

    settings = Settings(workspace=tmp_path / "ws")
    text_dataset(settings, "tiny-gen-text")
    gpt = tiny_gpt2(tmp_path / "gpt")
    config = TrainingConfig(task="causal-lm", model=str(gpt), dataset="tiny-gen-text", columns={"text": column},
                            max_length=16, max_steps=4)
    store = RunStore(settings.runs_db)
    run_id = store.create("gpt on text", config.__dict__)
    store.update(run_id, status="completed", model_dir=str(gpt), plan={"packing": True, "block_size": 16,
                 "train_rows": 12, "eval_rows": 2, "eval_steps": 4},
                 final_metrics={"loss": 9.0, "perplexity": 8103.08, "perplexity_before": 30000.0})
    return settings, run_id


def test_batch_generation_shows_throughput_and_every_row(tmp_path):
    settings, run_id = _causal_run(tmp_path)
    at = AppTest.from_function(_results_script, args=(str(settings.workspace), run_id), default_timeout=180).run()
    assert not at.exception
    at.number_input(key=f"gen_{run_id}_new").set_value(3)
    at.number_input(key=f"gen_batch_rows_{run_id}").set_value(4)
    at.number_input(key=f"gen_batch_size_{run_id}").set_value(2)
    at.button(key=f"gen_batch_{run_id}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["throughput"].endswith("examples/s") and float(metrics["throughput"].split()[0]) > 0
    assert float(metrics["generated tokens / s"].replace(",", "")) > 0
    table = next(d.value for d in at.dataframe if "generated" in d.value.columns)
    assert len(table) == 4 and list(table["new tokens"]) == [3] * 4
    assert {"prompt", "generated", "reference", "ROUGE-L"} <= set(table.columns)


def test_batch_generation_names_a_column_it_cannot_use(tmp_path):
    settings, run_id = _causal_run(tmp_path, column="text")  # every row has 6 words or fewer
    at = AppTest.from_function(_results_script, args=(str(settings.workspace), run_id), default_timeout=180).run()
    at.button(key=f"gen_batch_{run_id}").click().run()
    assert not at.exception
    assert any("columns.text" in e.value and "more than 6 words" in e.value for e in at.error), \
        [e.value for e in at.error]


def test_shrink_panel_compares_int8_and_onnx_perplexity(tmp_path):
    settings, run_id = _causal_run(tmp_path)
    at = AppTest.from_function(_results_script, args=(str(settings.workspace), run_id), default_timeout=300).run()
    assert any(e.label == "Make it smaller and faster" for e in at.expander)
    at.button(key=f"shrink_go_{run_id}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "perplexity" in d.value.columns)
    assert list(table["model"]) == ["fp32", "int8 (dynamic)", "ONNX (onnxruntime)", "ONNX int8 (onnxruntime)"]
    assert {"ms / block, batch 1", "ms / block, batch 32", "next-token accuracy", "agrees with fp32"} <= set(table.columns)
    rows = table.set_index("model")
    assert rows.loc["ONNX (onnxruntime)", "agrees with fp32"] == "100.0%"
    assert rows.loc["ONNX (onnxruntime)", "perplexity"] == pytest.approx(rows.loc["fp32", "perplexity"], rel=1e-4)
    assert next(m for m in at.metric if m.label == "int8 agrees with fp32").value.endswith("%")


def test_shrink_panel_says_why_a_seq2seq_run_has_no_onnx(tmp_path):
    from core.training import RunStore, TrainingConfig
    from tests.core.training.generation_fixtures import tiny_bart

    settings = Settings(workspace=tmp_path / "ws")
    text_dataset(settings, "tiny-gen-text")
    bart = tiny_bart(tmp_path / "bart")
    config = TrainingConfig(task="seq2seq", model=str(bart), dataset="tiny-gen-text",
                            columns={"source": "document", "target": "summary"}, max_length=24, max_target_length=8)
    store = RunStore(settings.runs_db)
    run_id = store.create("bart", config.__dict__)
    store.update(run_id, status="completed", model_dir=str(bart), plan={"eval_steps": 4},
                 final_metrics={"rouge1": 0.1, "rouge2": 0.0, "rougeL": 0.1, "lead_rougeL": 0.05})
    at = AppTest.from_function(_results_script, args=(str(settings.workspace), run_id), default_timeout=300).run()
    at.button(key=f"shrink_go_{run_id}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "ROUGE-L" in d.value.columns and "model" in d.value.columns)
    assert list(table["model"]) == ["fp32", "int8 (dynamic)", "ONNX (onnxruntime)"]
    assert "not offered for sequence-to-sequence" in table.set_index("model").loc["ONNX (onnxruntime)", "note"]


def test_form_offers_packing_or_padding_and_maps_the_chosen_one(open_page, tmp_path):
    from components.training_form import CUSTOM, PACKING, config_from_state
    from core.settings import get_settings

    text_dataset(get_settings(), "tiny-gen-text")
    gpt = tiny_gpt2(tmp_path / "gpt")
    at = open_page("pages/fine_tuning.py")
    at.selectbox(key="ft_task").set_value("causal-lm").run()
    at.selectbox(key="ft_model_causal-lm").set_value(CUSTOM).run()
    at.text_input(key="ft_model_custom").set_value(str(gpt))
    at.selectbox(key="ft_dataset").set_value("tiny-gen-text").run()
    at.selectbox(key="ft_col_causal-lm_text").set_value("text")
    at.number_input(key="ft_maxlen").set_value(16).run()
    assert at.radio(key="ft_packing").value == "blocks (packing)"
    assert any(c.value.startswith("Packing:") for c in at.caption)
    at.radio(key="ft_packing").set_value("one padded row each (padding)").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(c.value.startswith("Padding:") for c in at.caption)
    table = next(t.value for t in at.dataframe if "input token" in getattr(t.value, "columns", []))
    assert table["input token"].iloc[0] == "[CLS]" and len(table) < 16  # one row, padded to its batch's longest
    assert config_from_state(at.session_state, []).packing is False
    assert PACKING[at.radio(key="ft_packing").value] is False


def test_estimate_first_probes_a_causal_lm(open_page, tmp_path):
    from transformers import AutoModelForCausalLM

    from components.training_form import CUSTOM
    from core.settings import get_settings

    text_dataset(get_settings(), "tiny-gen-text")
    gpt = tiny_gpt2(tmp_path / "gpt")
    at = open_page("pages/fine_tuning.py")
    at.selectbox(key="ft_task").set_value("causal-lm").run()
    at.selectbox(key="ft_model_causal-lm").set_value(CUSTOM).run()
    at.text_input(key="ft_model_custom").set_value(str(gpt))
    at.selectbox(key="ft_dataset").set_value("tiny-gen-text").run()
    at.selectbox(key="ft_col_causal-lm_text").set_value("text")
    at.number_input(key="ft_maxlen").set_value(16).run()
    at.button(key="ft_estimate").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    n = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(str(gpt)).parameters())
    assert metrics["Parameters"] == f"{n / 1e6:.1f} M"
    assert float(metrics["Seconds / step"]) > 0
    caption = next(c.value for c in at.caption if "activations" in c.value)
    assert "packed:" in caption and "logits" in caption, caption  # the task's own notes, not "dynamic padding"
    assert "dynamic padding" not in caption, caption
