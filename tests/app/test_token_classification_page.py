"""The fine-tuning page for token classification: the mapped example before Start, then a tiny run's results
(entity table, try it with highlighted spans, label alignment of an eval row)."""
import time

import pytest

from components.training_form import CUSTOM
from core.data import DatasetStore
from core.settings import get_settings
from core.training import RunStore
from tests.core.training.test_token_classification import ner_rows
from tests.core.training.training_fixtures import tiny_model

TASK = "token-classification"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import datasets

    s = get_settings()
    store = DatasetStore(s.datasets_dir)
    if not store.versions("ner-tiny"):
        store.save(datasets.Dataset.from_dict(ner_rows(40)), "ner-tiny", "test fixture")
    import torch

    torch.manual_seed(0)  # the same random tiny BERT every time: what it learns in 20 steps does not vary
    return tiny_model(tmp_path_factory.mktemp("ner-model"))


def fill(at, model_dir):
    at.selectbox(key="ft_task").set_value(TASK).run()
    at.selectbox(key=f"ft_model_{TASK}").set_value(CUSTOM).run()
    at.text_input(key="ft_model_custom").set_value(str(model_dir))
    at.selectbox(key="ft_dataset").set_value("ner-tiny").run()
    at.number_input(key="ft_maxlen").set_value(32)
    at.number_input(key="ft_steps").set_value(20)
    at.number_input(key="ft_bs").set_value(8)
    at.number_input(key="ft_lr").set_value(2e-2)
    at.number_input(key="ft_warmup").set_value(0.0)
    at.number_input(key="ft_eval").set_value(10)
    return at.run()


def test_the_form_maps_the_columns_and_shows_one_aligned_example(open_page, tiny):
    at = fill(open_page("pages/fine_tuning.py"), tiny)
    assert not at.exception
    assert "ner-sample" in at.selectbox(key="ft_dataset").options  # the shipped CoNLL sample is offered
    assert at.selectbox(key=f"ft_col_{TASK}_tokens").value == "tokens"
    assert at.selectbox(key=f"ft_col_{TASK}_tags").value == "ner_tags"  # guessed from the usual names
    table = next(d.value for d in at.dataframe if "sub-token" in d.value.columns)
    assert table["sub-token"].iloc[0] == "[CLS]" and table["label"].iloc[0] == "-100 (ignored)"
    words = table.dropna(subset=["word"])
    assert set(words["label"]) <= {"O", "B-PER", "B-LOC", "I-LOC", "-100 (ignored)"} and "B-PER" in set(words["label"])
    assert any("first sub-token" in c.value for c in at.caption)
    # a wrong mapping is named, with the row, before Start
    at.selectbox(key=f"ft_col_{TASK}_tokens").set_value("ner_tags")
    at.selectbox(key=f"ft_col_{TASK}_tags").set_value("tokens").run()
    assert any("columns.tags" in e.value and "row 0, word 0: 'alice' is not a BIO tag" in e.value
               for e in at.error), [e.value for e in at.error]


def test_a_completed_run_shows_entities_and_tags_a_typed_sentence(open_page, tiny):
    at = fill(open_page("pages/fine_tuning.py"), tiny)
    store = RunStore(get_settings().runs_db)
    before = {r.id for r in store.runs()}
    at.button(key="ft_start").click().run()
    assert not at.exception
    # the run, from the store (other tests share it): the "Queued run" note can be lost when the run completes within that same
    # script run (the runs panel reruns the app to show its results, and the note was already popped)
    new = [r.id for r in store.runs() if r.id not in before and r.config.get("model") == str(tiny)]
    assert len(new) == 1, [e.value for e in at.error]
    run_id = new[0]
    deadline = time.time() + 240
    while store.get(run_id).status not in ("completed", "failed") and time.time() < deadline:
        time.sleep(0.3)
    assert store.get(run_id).status == "completed", store.get(run_id).message
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    fm = store.get(run_id).final_metrics
    assert metrics["entity F1"] == f"{fm['f1']:.3f}"
    assert metrics["all-O baseline"] == f"{fm['all_o_accuracy']:.1%}"
    per_entity = next(d.value for d in at.dataframe if "support" in d.value.columns)
    assert list(per_entity["entity"]) == [r["entity"] for r in fm["per_entity"]]
    at.text_input(key=f"tok_try_{run_id}").set_value("Carol visited Rome.").run()
    assert not at.exception
    html = next(m.value for m in at.markdown if "tl-entity" in m.value)
    assert ">Carol <b" in html and ">Rome <b" in html and ">PER</b>" in html and ">LOC</b>" in html
    spans = next(d.value for d in at.dataframe if "start" in d.value.columns)
    assert list(zip(spans["entity"], spans["text"], spans["start"], strict=True)) == [("PER", "Carol", 0),
                                                                                      ("LOC", "Rome", 14)]
    assert any('aggregation_strategy="first"' in c.value for c in at.code)
    assert any("DataCollatorForTokenClassification" in c.value for c in at.code)  # the export preview
    at.number_input(key=f"tok_row_{run_id}").set_value(1).run()
    table = next(d.value for d in at.dataframe if "sub-token" in d.value.columns)
    assert any("Row 1 of the eval split" in c.value for c in at.caption)
    assert table["label"].iloc[-1] == "-100 (ignored)"
    # the whole evaluation split, tagged as try-it tags one sentence: the rows equal the engine's own
    from core.training.token_classification import batch_tag

    at.button(key=f"tok_batch_{run_id}").click().run()
    assert not at.exception
    rows = next(d.value for d in at.dataframe if "entities" in d.value.columns)
    sentences = [r["sentence"] for r in rows.to_dict("records")]
    expected, _ = batch_tag(store.get(run_id), [s.split(" ") for s in sentences])
    assert rows.to_dict("records") == expected and len(rows) > 0
    assert next(m.value for m in at.metric if m.label == "throughput").endswith("sentences/s")
