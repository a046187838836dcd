"""The "Make it smaller and faster" panel under a completed run: quantise, table, pipeline code, script."""
import ast

import pytest

from core.settings import get_settings
from core.training import JobManager, TrainingConfig
from tests.core.training.training_fixtures import tiny_dataset, tiny_model


@pytest.fixture(scope="module")
def run_id(tmp_path_factory):
    """A completed tiny run in the app's workspace, finished before the page opens."""
    s = get_settings()
    tiny_dataset(s, "tiny-shrink")
    model_dir = tiny_model(tmp_path_factory.mktemp("shrink-model"))
    jobs = JobManager(settings=s)
    rid = jobs.submit(TrainingConfig(model=str(model_dir), dataset="tiny-shrink", max_length=32, batch_size=8,
                                     learning_rate=5e-3, max_steps=4, warmup=0, logging_steps=1))
    assert jobs.wait(rid, 300) == "completed", jobs.store.get(rid).message
    jobs.shutdown()
    return rid


def test_quantise_shows_the_table_code_and_script(open_page, run_id):
    at = open_page("pages/fine_tuning.py")
    at.session_state["ft_selected"] = run_id
    at.run()
    assert not at.exception
    assert any(e.label == "Make it smaller and faster" for e in at.expander)
    code = next(c.value for c in at.code if 'pipeline("text-classification"' in c.value)
    ast.parse(code)
    at.button(key=f"shrink_go_{run_id}").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    table = next(d.value for d in at.dataframe if "macro F1" in d.value.columns)
    assert list(table["model"]) == ["fp32", "int8 (dynamic)"]
    assert {"size (MB)", "ms / example, batch 1", "accuracy", "macro F1"} <= set(table.columns)
    agree = next(m for m in at.metric if m.label == "int8 agrees with fp32")
    assert agree.value.endswith("%")
    assert any("ONNX" in c.value for c in at.caption)
    at.run()  # the report stays cached for this run: the table is still there without a click
    assert any("macro F1" in d.value.columns for d in at.dataframe)
    at.button(key=f"shrink_batch_{run_id}").click().run()
    assert not at.exception
    assert next(m for m in at.metric if m.label == "pipeline throughput").value.endswith("examples/s")
    assert any({"text", "label", "score"} <= set(d.value.columns) for d in at.dataframe)
