"""The Statistics tab (#18): the class-balance filter composes with browse paging and search, a click on the
balance chart sets the filter, and the token-length histogram's max_length slider reports the truncated share."""
import uuid

import pytest

from components.data_views import number
from core.data import DatasetStore

N = 250


@pytest.fixture
def saved():
    """A 250-row dataset: label 'neg' on every third row (84 rows), texts of growing length."""
    import datasets

    texts = [f"review number {i} " + "good " * (i % 40) for i in range(N)]
    labels = ["neg" if i % 3 == 0 else "pos" for i in range(N)]
    store = DatasetStore.default()
    name = f"apptest-stats-{uuid.uuid4().hex[:6]}"
    ref = store.save(datasets.Dataset.from_dict({"text": texts, "label": labels, "score": [i / 10 for i in range(N)]}),
                     name, "test")
    yield ref, texts, labels
    for v in store.versions(name):
        store.delete(name, v)


def test_class_filter_composes_with_paging_and_search_and_token_slider(open_page, saved):
    ref, texts, labels = saved
    at = open_page("pages/dataset_browser.py", timeout=180)
    at.selectbox(key="ds_pick").set_value(ref.label).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="st_label").value == "label"
    # the statistics table (the second table on the page) over every row, as pandas gives them
    import pandas as pd

    table = at.dataframe[1].value.set_index("column")
    lengths = pd.Series(texts).str.len()
    assert table.loc["score", ["count", "nulls", "distinct", "min", "max", "mean"]].tolist() == \
        ["250", "0", "250", "0", "24.9", "12.45"]
    assert table.loc["text", ["of", "min", "median", "max"]].tolist() == \
        ["length (chars)", str(lengths.min()), number(lengths.median()), str(lengths.max())]
    assert table.loc["label", "top values"] == "pos (166) · neg (84)"
    assert at.selectbox(key="br_class").options == ["(all rows)", "pos", "neg"]  # most common first

    neg = [i for i in range(N) if labels[i] == "neg"]
    at.selectbox(key="br_class").set_value("neg").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table.index) == neg[:84] and set(table["label"]) == {"neg"}  # 84 rows fit one page
    assert any(f"84 of {N} rows have label = 'neg'" in c.value for c in at.caption)

    # search inside the filter: only 'neg' rows whose text holds "number 1", under their own row numbers
    at.text_input(key="br_query").set_value("number 1").run()
    want = [i for i in neg if "number 1" in texts[i]]
    assert list(at.dataframe[0].value.index) == want and len(want) == 36  # of 111 rows in all
    at.text_input(key="br_query").set_value("").run()

    # paging composes: all rows on page 3 (200..249), then the filter clamps the page to its last one
    at.selectbox(key="br_class").set_value("(all rows)").run()
    at.number_input(key="br_page").set_value(3).run()
    assert list(at.dataframe[0].value.index[:1]) == [200]
    at.selectbox(key="br_class").set_value("pos").run()
    assert not at.exception, at.exception
    pos = [i for i in range(N) if labels[i] == "pos"]  # 166 rows: page 2 holds 100..165 of them
    assert at.number_input(key="br_page").value == 2
    assert list(at.dataframe[0].value.index) == pos[100:]

    # the token-length histogram: the caption's share is the hand count over the tokenizer's own lengths
    from core.assets import load_tokenizer

    tok = load_tokenizer("bert-wordpiece-uncased")
    lengths = [len(ids) for ids in tok(texts)["input_ids"]]
    at.selectbox(key="st_tok").set_value("bert-wordpiece-uncased")
    at.selectbox(key="st_text").set_value("text")
    at.toggle(key="st_tokshow").set_value(True).run()
    assert not at.exception, at.exception
    for max_length in (16, 32):
        at.slider(key="st_maxlen").set_value(max_length).run()
        over = sum(n > max_length for n in lengths)
        note = next(c.value for c in at.caption if "would be truncated" in c.value)
        assert f"{over / N:.1%} of rows would be truncated at max_length={max_length}" in note
        assert f"{over:,} of all {N} texts" in note
    assert 0 < sum(n > 32 for n in lengths) < sum(n > 16 for n in lengths) < N  # the two settings differ


def test_a_click_on_a_balance_bar_sets_the_filter():
    """AppTest can't click a plotly chart: the on_select callback is checked on the state it reads."""
    from unittest import mock

    import components.data_views as V

    event = {"selection": {"points": [{"x": "neg", "y": 84, "point_index": 1}], "point_indices": [1]}}
    assert V.class_from_selection(event) == "neg"
    assert V.class_from_selection({"selection": {"points": []}}) is None and V.class_from_selection(None) is None
    state = {"st_balance": event}
    with mock.patch.object(V.st, "session_state", state):
        V.class_click()
        assert state["br_class"] == "neg"
        state["st_balance"] = {"selection": {"points": []}}
        V.class_click()
        assert state["br_class"] == V.ALL_CLASSES
