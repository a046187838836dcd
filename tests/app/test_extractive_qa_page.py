"""Extractive QA through the pages: the form's mapped example, a run launched from it with "try it", and the run
offered as a span QA checkpoint on Summarize & QA."""
import time
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from components.training_form import CUSTOM
from core.settings import get_settings
from core.training import RunStore
from tests.app.conftest import APP
from tests.core.training.qa_fixtures import qa_dataset
from tests.core.training.training_fixtures import tiny_model


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The fine-tuning page with an extractive-QA run launched from its form and completed: (AppTest, run id)."""
    qa_dataset(get_settings(), "tiny-qa-app")
    model = tiny_model(tmp_path_factory.mktemp("qa-page-model"))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    shown = config.get_option("client.showErrorDetails")
    config.set_option("client.showErrorDetails", "full")  # a failure below says what failed, not "redacted"
    at.switch_page("pages/fine_tuning.py").run()
    at.selectbox(key="ft_task").set_value("question-answering").run()
    at.selectbox(key="ft_model_question-answering").set_value(CUSTOM).run()
    at.text_input(key="ft_model_custom").set_value(str(model))
    at.selectbox(key="ft_dataset").set_value("tiny-qa-app")
    at.number_input(key="ft_maxlen_question-answering").set_value(64)  # the tiny BERT's 64 positions
    at.number_input(key="ft_steps").set_value(4)
    at.number_input(key="ft_bs").set_value(8)
    at.number_input(key="ft_eval").set_value(4)  # one evaluation and checkpoint, at the end
    at.run()
    assert not at.exception, [(e.message, e.stack_trace) for e in at.exception]
    mapped = [d.value for d in at.dataframe if "token" in d.value.columns]
    notes = " ".join(c.value for c in at.caption)
    store = RunStore(get_settings().runs_db)
    before = {r.id for r in store.runs()}
    at.button(key="ft_start").click().run()
    assert not at.error, [e.value for e in at.error]
    # the store, not the flash, names the run (a rerun may eat the flash; other tests may share the store)
    new = [r.id for r in store.runs() if r.id not in before and r.config.get("model") == str(model)]
    assert len(new) == 1, new
    run_id = new[0]
    deadline = time.time() + 240
    while store.get(run_id).status not in ("completed", "failed") and time.time() < deadline:
        time.sleep(0.5)
    assert store.get(run_id).status == "completed", store.get(run_id).message
    at.run()
    yield at, run_id, mapped, notes
    config.set_option("client.showErrorDetails", shown)


def test_the_form_shows_one_example_as_the_model_sees_it(launched):
    _, _, mapped, notes = launched
    assert mapped, "no mapped example drawn"
    table = mapped[0]
    assert table["token"].iloc[0] == "[CLS]" and "what" in list(table["token"])
    assert set(table["sequence"]) == {"special", "question", "context"}
    start = table[table["label"].str.contains("start")]
    end = table[table["label"].str.contains("end")]
    assert len(start) == len(end) == 1
    # the labelled tokens' text is the answer of row 0 ("Paris", a single token)
    assert start["text"].iloc[0] == "Paris" and end["text"].iloc[0] == "Paris"
    assert "1 window of at most 64 tokens" in notes and "stride of 16 tokens" in notes


def test_a_completed_run_answers_with_the_span_marked_in_the_context(launched):
    at, run_id, _, _ = launched
    assert not at.exception, [(e.message, e.stack_trace) for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert {"exact match", "F1", "baseline EM / F1"} <= set(metrics)
    assert metrics["baseline EM / F1"] == "0.0 / 0.0"  # the first word (a country) is never the capital
    # try it: prefilled from the evaluation split; the model's answer is a marked span of the context
    marked = [m.value for m in at.markdown if "<mark" in m.value]
    assert marked and "tl-qa-context" in marked[0]
    context = at.text_area(key=f"qa_try_c_{run_id}").value
    at.text_input(key=f"qa_try_q_{run_id}").set_value("What is the capital of Norway?")
    at.text_area(key=f"qa_try_c_{run_id}").set_value("Norway is a country with a long history. Its capital is Oslo.")
    at.run()
    assert not at.exception and context
    answer = next(m.value for m in at.markdown if m.value.startswith("**Answer:**")).removeprefix("**Answer:** ")
    shown = next(m.value for m in at.markdown if "<mark" in m.value)
    assert f">{answer}</mark>" in shown
    assert any("AutoModelForQuestionAnswering" in c.value for c in at.code)
    script = next(c.value for c in at.code if "Trainer(" in c.value)
    compile(script, "train.py", "exec")  # the export script is valid Python


def test_summarize_page_offers_the_run_as_a_span_qa_checkpoint(launched):
    _, run_id, _, _ = launched
    rec = RunStore(get_settings().runs_db).get(run_id)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("pages/summarize_qa.py").run()
    at.radio(key="qa_method").set_value("Span QA checkpoint").run()
    picker = at.selectbox(key="qa_run")
    # the folder box stays the default (as before runs were offered); the runs are further choices
    assert picker.value.startswith("Other") and at.text_input(key="qa_spec").value == ""
    label = next(o for o in picker.options if o.startswith(f"run {run_id}"))
    assert all(o.startswith("run ") or o.startswith("Other") for o in picker.options)
    picker.set_value(label).run()
    assert not at.exception, [(e.message, e.stack_trace) for e in at.exception]
    texts = " ".join(c.value for c in at.caption)
    assert f"span model BertForQuestionAnswering ({rec.model_dir}" in texts
    assert any(m.value.startswith("**Answer:**") for m in at.markdown)
    assert Path(rec.model_dir, "config.json").is_file()


def test_the_evaluation_split_is_answered_with_its_squad_scores(launched):
    from core.training import squad

    at, run_id, _, _ = launched
    at.button(key=f"qa_batch_{run_id}").click().run()
    assert not at.exception, [(e.message, e.stack_trace) for e in at.exception]
    # the split's table: every evaluation question, so the longest of the tables with answers
    rows = max((d.value for d in at.dataframe if {"predicted", "EM"} <= set(d.value.columns)), key=len).to_dict("records")
    # the table's scores are SQuAD's for each row, and the panel's totals their mean in %
    for r in rows:
        em, f1 = squad.score(r["predicted"], r["gold"].split(" | "))
        assert (r["EM"], r["F1"]) == (em, round(f1, 3))
    totals = squad.squad_v1([r["predicted"] for r in rows], [r["gold"].split(" | ") for r in rows])
    metrics = [(m.label, m.value) for m in at.metric]
    assert ("exact match", f"{totals['exact_match']:.1f}") in metrics and ("F1", f"{totals['f1']:.1f}") in metrics
    assert next(v for k, v in metrics if k == "throughput").endswith("questions/s")
