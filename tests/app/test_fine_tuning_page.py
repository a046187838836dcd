"""The fine-tuning page: launch a tiny run from the form, watch it, see results; bad input is refused."""
import time

import pytest

from components.training_form import CUSTOM
from core.settings import get_settings
from core.training import RunStore
from tests.core.training.training_fixtures import tiny_dataset, tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    s = get_settings()
    tiny_dataset(s, "tiny-ft")
    return tiny_model(tmp_path_factory.mktemp("ft-model"))


def fill(at, model_dir, steps=6, max_length=32):
    at.selectbox(key="ft_model_text-classification").set_value(CUSTOM).run()
    at.text_input(key="ft_model_custom").set_value(str(model_dir))
    at.selectbox(key="ft_dataset").set_value("tiny-ft").run()
    at.number_input(key="ft_maxlen").set_value(max_length)
    at.number_input(key="ft_steps").set_value(steps)
    at.number_input(key="ft_bs").set_value(8)
    return at


def test_launch_watch_results(open_page, tiny):
    at = fill(open_page("pages/fine_tuning.py"), tiny)
    before = len(RunStore(get_settings().runs_db).runs())
    at.button(key="ft_start").click().run()  # one click, one run: Start acts in its on_click callback
    assert not at.exception
    assert len(RunStore(get_settings().runs_db).runs()) == before + 1
    assert at.success, [e.value for e in at.error]  # the form's own message says what was refused
    msg = at.success[0].value
    run_id = msg.split("Queued run ")[1].split(":")[0]
    store = RunStore(get_settings().runs_db)
    deadline = time.time() + 240
    while store.get(run_id).status not in ("completed", "failed") and time.time() < deadline:
        time.sleep(0.5)
    assert store.get(run_id).status == "completed", store.get(run_id).message
    at.run()
    assert not at.exception
    # the launch message outlives the reruns that followed (the run completed, its results were drawn)
    assert any(f"Queued run {run_id}" in m.value for m in at.success), [m.value for m in at.success]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["majority-class baseline"] == "50.0%"
    assert "accuracy" in metrics and metrics["train loss"] != "—"
    # the selected run is this one, and its curve has all six steps
    assert next(s for s in at.selectbox if s.label == "Run").value == run_id
    assert len(store.metrics(run_id, "train")) == 6
    # the export script is plain transformers and parses
    import ast

    script = next(c.value for c in at.code if "TrainingArguments(" in c.value)
    ast.parse(script)


def test_bad_max_length_is_refused_with_the_field(open_page, tiny):
    at = fill(open_page("pages/fine_tuning.py"), tiny, max_length=4096)
    before = len(RunStore(get_settings().runs_db).runs())
    at.button(key="ft_start").click().run()
    assert not at.exception
    assert "max_length" in at.error[0].value and "64 positions" in at.error[0].value
    assert len(RunStore(get_settings().runs_db).runs()) == before
    at.run()  # the refusal stays while the form holds the refused value…
    assert any("64 positions" in e.value for e in at.error)
    at.number_input(key="ft_maxlen").set_value(32).run()  # …and goes once the field is changed
    assert not any("64 positions" in e.value for e in at.error), [e.value for e in at.error]
