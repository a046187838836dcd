"""The Transformer anatomy page through app.py: MiniLM by default, a tiny GPT-2 folder, an offline hub id."""
import json

import numpy as np
import pytest

from tests.core.models.model_fixtures import tiny_gpt2

PAGE = "pages/transformer_anatomy.py"


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return str(tiny_gpt2(tmp_path_factory.mktemp("anatomy-gpt2")))


def _texts(at):
    return " ".join(m.value for m in [*at.markdown, *at.caption, *at.info, *at.success, *at.error])


def test_minilm_heads_steps_and_checks(open_page):
    at = open_page(PAGE, timeout=180)
    assert not at.exception
    assert "bert encoder · 6 layers × 12 heads · d_k = 32 · 13 tokens" in _texts(at)
    # 1 embedding sum + 6 layer outputs + 9 steps of the open head, all equal to the model's own
    assert [s.value for s in at.success] == ["16 of 16 recomputed tensors match the model's own (atol 1e-05)"]
    at.selectbox(key="anat_layer").set_value(4)
    at.selectbox(key="anat_head").set_value(11)
    at.run()
    for step in ("4 · softmax", "6 · concat & project"):
        at.radio(key="anat_step").set_value(step)
        at.run()
        assert not at.exception
        assert at.success and at.success[0].value.startswith("16 of 16")
    assert "encoder" in at.info[0].value and "save_pretrained" in at.info[0].value  # the next-token hint
    assert "att.query.weight[rows]" in at.code[0].value and "layer, head = 4, 11" in at.code[0].value


def _click_model_view(at, layer: int, head: int, n_heads: int = 12):
    """Rerun as the browser does after a click on a model-view tile: AppTest has no plotly widget, so the
    chart's selection state (what Streamlit's frontend sends for a points selection) is added by hand."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    chart = next(e for e in at.get("plotly_chart") if e.key == "anat_model_view")
    states = at._tree.get_widget_states()
    index = layer * n_heads + head
    point = {"curve_number": 1, "point_number": index, "point_index": index, "customdata": [layer, head]}
    ws = WidgetState(id=chart.proto.id, string_value=json.dumps(
        {"selection": {"points": [point], "point_indices": [index], "box": [], "lasso": []}}))
    states.widgets.append(ws)
    return at._run(states)


def test_click_a_head_in_the_model_view_opens_it(open_page):
    at = open_page(PAGE, timeout=180)
    chart = next(e for e in at.get("plotly_chart") if e.key == "anat_model_view")
    assert json.loads(chart.proto.spec)["data"][1]["customdata"][5 * 12 + 11] == [5, 11]  # a marker per tile
    _click_model_view(at, 3, 7)
    assert not at.exception
    assert (at.selectbox(key="anat_layer").value, at.selectbox(key="anat_head").value) == (3, 7)
    assert "16 of 16" in at.success[0].value
    assert "att.query.weight[rows]" in at.code[0].value and "layer, head = 3, 7" in at.code[0].value
    at.radio(key="anat_step").set_value("2 · scores")  # another widget's rerun keeps the opened head
    at.run()
    assert (at.selectbox(key="anat_layer").value, at.selectbox(key="anat_head").value) == (3, 7)
    spec = json.loads(next(e for e in at.get("plotly_chart") if e.key == "anat_model_view").proto.spec)
    assert "layer 3, head 7 framed" in spec["layout"]["title"]["text"]
    at.selectbox(key="anat_head").set_value(2)  # the pickers still work after a click
    at.run()
    assert at.selectbox(key="anat_head").value == 2 and not at.exception


def test_tiny_gpt2_next_token_greedy(open_page, gpt2_dir):
    from core.models import inspect_text, load_model

    at = open_page(PAGE, timeout=180)
    at.selectbox(key="anat_model").set_value("Local folder or hub id…")
    at.run()
    at.text_input(key="anat_spec").set_value(gpt2_dir)
    at.text_area(key="anat_text").set_value("the cat sat on the")
    at.run()
    assert not at.exception, at.exception
    assert "gpt2 decoder · 2 layers × 4 heads" in _texts(at)
    assert at.success and at.success[0].value.startswith("10 of 10")  # 1 + 1 layer outputs + 8 steps
    at.slider(key="anat_temp").set_value(0.0)
    at.button(key="anat_greedy").click()
    at.run()
    assert not at.exception
    lm = load_model(gpt2_dir)
    expected = lm.tokenizer.convert_ids_to_tokens(
        int(np.argmax(inspect_text(lm, "the cat sat on the").next_token_logits)))
    assert f"Generated: `{expected}` (1.000, greedy)" in [m.value for m in at.markdown]
    assert at.success[0].value.startswith("10 of 10")  # the forward on 6 tokens checks out too


def test_offline_hub_id_says_so(open_page):
    at = open_page(PAGE, timeout=180)
    at.selectbox(key="anat_model").set_value("Local folder or hub id…")
    at.run()
    at.text_input(key="anat_spec").set_value("openai-community/gpt2")
    at.run()
    assert not at.exception
    assert at.error and "offline" in at.error[0].value
