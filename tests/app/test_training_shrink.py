"""The "Make it smaller and faster" panel under a completed run: quantise + ONNX export, the table (with the ONNX
rows), pipeline code and serving scripts; and the same panel under a token-classification run's results."""
import ast

import pytest

from core.settings import get_settings
from core.training import JobManager, TrainingConfig
from tests.core.training.test_token_classification import ner_rows
from tests.core.training.training_fixtures import tiny_dataset, tiny_model

MODELS = ["fp32", "int8 (dynamic)", "ONNX (onnxruntime)", "ONNX int8 (onnxruntime)"]


def _completed(config: TrainingConfig) -> str:
    jobs = JobManager(settings=get_settings())
    rid = jobs.submit(config)
    assert jobs.wait(rid, 300) == "completed", jobs.store.get(rid).message
    jobs.shutdown()
    return rid


@pytest.fixture(scope="module")
def run_id(tmp_path_factory):
    """A completed tiny run in the app's workspace, finished before the page opens."""
    tiny_dataset(get_settings(), "tiny-shrink")
    model_dir = tiny_model(tmp_path_factory.mktemp("shrink-model"))
    return _completed(TrainingConfig(model=str(model_dir), dataset="tiny-shrink", max_length=32, batch_size=8,
                                     learning_rate=5e-3, max_steps=4, warmup=0, logging_steps=1))


@pytest.fixture(scope="module")
def ner_run_id(tmp_path_factory):
    import datasets
    import torch

    from core.data import DatasetStore

    store = DatasetStore(get_settings().datasets_dir)
    if not store.versions("ner-shrink"):
        store.save(datasets.Dataset.from_dict(ner_rows(40)), "ner-shrink", "test fixture")
    torch.manual_seed(0)
    model_dir = tiny_model(tmp_path_factory.mktemp("shrink-ner-model"))
    return _completed(TrainingConfig(task="token-classification", columns={"tokens": "tokens", "tags": "ner_tags"},
                                     model=str(model_dir), dataset="ner-shrink", max_length=32, batch_size=8,
                                     learning_rate=2e-2, max_steps=8, warmup=0, logging_steps=4))


def _measured_table(at, rid: str, metric: str):
    at.button(key=f"shrink_go_{rid}").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    return next(d.value for d in at.dataframe if metric in d.value.columns)


def test_quantise_shows_the_table_code_and_script(open_page, run_id):
    at = open_page("pages/fine_tuning.py")
    at.session_state["ft_selected"] = run_id
    at.run()
    assert not at.exception
    assert any(e.label == "Make it smaller and faster" for e in at.expander)
    code = next(c.value for c in at.code if 'pipeline("text-classification"' in c.value)
    ast.parse(code)
    table = _measured_table(at, run_id, "macro F1")
    assert list(table["model"]) == MODELS
    assert {"size (MB)", "ms / example, batch 1", "accuracy", "macro F1", "agrees with fp32", "note"} <= set(table.columns)
    onnx = table.set_index("model").loc["ONNX (onnxruntime)"]
    assert onnx["size (MB)"] > 0 and onnx["ms / example, batch 1"] > 0 and onnx["note"] == ""
    assert onnx["agrees with fp32"] == "100.0%"
    assert onnx["accuracy"] == table.set_index("model").loc["fp32", "accuracy"]
    agree = next(m for m in at.metric if m.label == "int8 agrees with fp32")
    assert agree.value.endswith("%")
    assert any("ONNX: torch.onnx.export" in c.value and "onnx/model.onnx" in c.value for c in at.caption)
    at.run()  # the report stays cached for this run: the table is still there without a click
    assert any("macro F1" in d.value.columns for d in at.dataframe)
    at.button(key=f"shrink_batch_{run_id}").click().run()
    assert not at.exception
    assert next(m for m in at.metric if m.label == "pipeline throughput").value.endswith("examples/s")
    assert any({"text", "label", "score"} <= set(d.value.columns) for d in at.dataframe)


def test_the_panel_is_under_token_classification_results_too(open_page, ner_run_id):
    at = open_page("pages/fine_tuning.py")
    at.session_state["ft_selected"] = ner_run_id
    at.run()
    assert not at.exception
    assert any(e.label == "Make it smaller and faster" for e in at.expander)
    table = _measured_table(at, ner_run_id, "entity F1")
    assert list(table["model"]) == MODELS
    assert {"entity F1", "token accuracy", "agrees with fp32"} <= set(table.columns)
    assert table.set_index("model").loc["ONNX (onnxruntime)", "agrees with fp32"] == "100.0%"
    assert not any('pipeline("text-classification"' in c.value for c in at.code)  # classification-only parts
