"""The Transformer anatomy page through app.py: MiniLM by default, a tiny GPT-2 folder, an offline hub id."""
import json

import numpy as np
import pytest

from tests.core.models.model_fixtures import tiny_gpt2

PAGE = "pages/transformer_anatomy.py"
SAMPLE = "The cat sat on the mat because it was tired."  # the page's default text


@pytest.fixture(scope="module")
def minilm_for_page():
    from core.models import load_model

    return load_model("minilm-l6")


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


def _chart(at, key):
    return json.loads(next(e for e in at.get("plotly_chart") if e.key == key).proto.spec)


def _z(at, key) -> np.ndarray:
    """The first trace's z as numbers: plotly sends a numpy array as {dtype, bdata (base64), shape}."""
    import base64

    z = _chart(at, key)["data"][0]["z"]
    if isinstance(z, list):
        return np.asarray(z, dtype=float)
    shape = [int(n) for n in str(z["shape"]).split(",")]
    return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape).astype(float)


def _expected_hover(lm, text, layer, head):
    """Per token (id, embedding norm, key it attends most, that weight) from the model itself, not the page."""
    import torch

    enc = lm.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        out = lm.model(**enc, output_attentions=True, output_hidden_states=True)
    norms = out.hidden_states[0][0].norm(dim=-1)
    att = out.attentions[layer][0, head]
    return [(int(i), float(n), int(att[q].argmax()), float(att[q].max()))
            for q, (i, n) in enumerate(zip(enc["input_ids"][0], norms, strict=True))]


def _parse_hover(text):
    """'<b>3:sat</b><br>id 2938<br>embedding norm 12.345<br>attends most to 4:on (0.123)' -> numbers."""
    import re

    m = re.fullmatch(r"<b>(\d+):(.+)</b><br>id (\d+)<br>embedding norm ([\d.]+)<br>attends most to (\d+):(.+) "
                     r"\(([\d.]+)\)", text)
    assert m, text
    return int(m[3]), float(m[4]), int(m[5]), float(m[7])


def test_hovering_a_token_shows_its_id_norm_and_strongest_key(open_page):
    """The head view's hover text against the model's own ids, embedding output and attentions."""
    from core.models import load_model

    at = open_page(PAGE, timeout=180)
    at.selectbox(key="anat_layer").set_value(3)
    at.selectbox(key="anat_head").set_value(7)
    at.run()
    spec = _chart(at, "anat_head_view")
    queries = next(t for t in spec["data"] if t.get("name") == "queries")
    expected = _expected_hover(load_model("minilm-l6"), SAMPLE, 3, 7)
    assert len(queries["hovertext"]) == len(expected) == 13
    for text, (tid, norm, key, weight) in zip(queries["hovertext"], expected, strict=True):
        got = _parse_hover(text)
        assert got[0] == tid and got[2] == key, (text, tid, key)
        assert got[1] == pytest.approx(norm, abs=5e-4) and got[3] == pytest.approx(weight, abs=5e-4)
    assert queries["hovertext"][2].startswith("<b>2:cat</b><br>id 4937<br>")


def test_head_view_heat_map_hover_past_forty_tokens(minilm_for_page):
    """Past 40 tokens the head view is a heat map; the token column at its left carries the same hover."""
    from components.anatomy_views import head_view
    from core.models import inspect_text, walk_head

    text = " ".join(["the cat sat on the mat"] * 10)
    a = inspect_text(minilm_for_page, text)
    fig = head_view(a, walk_head(minilm_for_page, a, 1, 4, verify=False).weights, 1, 4)
    assert fig.data[0].type == "heatmap" and fig.data[0].z.shape == (62, 62)
    queries = next(t for t in fig.data if t.name == "queries")
    expected = _expected_hover(minilm_for_page, text, 1, 4)
    assert len(queries.hovertext) == 62
    for text_, (tid, norm, key, weight) in zip(queries.hovertext, expected, strict=True):
        got = _parse_hover(text_)
        assert got[0] == tid and got[2] == key
        assert got[1] == pytest.approx(norm, abs=5e-4) and got[3] == pytest.approx(weight, abs=5e-4)
    assert "hover the column at the left" in fig.layout.title.text
    long = inspect_text(minilm_for_page, "word " * 300)  # past 128 tokens: block means, no token to hover
    fig = head_view(long, long.layer_attentions[0][0], 0, 0)
    assert fig.data[0].z.shape == (128, 128) and len(fig.data) == 1 and "block means" in fig.layout.title.text


def test_padding_batch_masks_pad_keys(open_page):
    """A second, shorter text batched with the first: its [PAD] keys are blocked and weigh exactly 0, and all 16
    recomputed tensors still equal the model's own on the padded row."""
    at = open_page(PAGE, timeout=180)
    at.toggle(key="anat_pad").set_value(True)
    at.run()
    assert not at.exception
    assert "13 tokens · batched with the other text, padded to the longer: 6 tokens of this text, 7 padding" in _texts(at)
    assert at.success and at.success[0].value == "16 of 16 recomputed tensors match the model's own (atol 1e-05)"
    at.radio(key="anat_step").set_value("3 · mask")
    at.run()
    assert "**Padding.**" in _texts(at) and "largest weight on a padding key here: 0)" in _texts(at)
    mask = _z(at, "anat_step_fig0")
    assert mask.shape == (13, 13) and mask[:, :6].all() and not mask[:, 6:].any()
    at.radio(key="anat_step").set_value("4 · softmax")
    at.run()
    weights = _z(at, "anat_step_fig0")
    assert np.all(weights[:, 6:] == 0) and np.allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert "masked_fill(~keep" in at.code[0].value and "'A dog barked.'" in at.code[0].value
    queries = next(t for t in _chart(at, "anat_head_view")["data"] if t.get("name") == "queries")
    assert queries["hovertext"][6].startswith("<b>6:[PAD]</b><br>id 0<br>")
    at.radio(key="anat_row").set_value("the first text")  # the longer row has no padding
    at.run()
    assert not at.exception and "13 tokens of this text, 0 padding" in _texts(at)
    assert "no padding" in _texts(at) and at.success[0].value.startswith("16 of 16")


@pytest.fixture(scope="module")
def bart_dir(tmp_path_factory):
    from tests.core.training.generation_fixtures import tiny_bart

    return str(tiny_bart(tmp_path_factory.mktemp("anatomy-bart")))


def test_a_bart_opens_as_its_encoder(open_page, bart_dir):
    at = open_page(PAGE, timeout=180)
    at.selectbox(key="anat_model").set_value("Local folder or hub id…")
    at.run()
    at.text_input(key="anat_spec").set_value(bart_dir)
    at.text_area(key="anat_text").set_value("the cat sat on the mat")
    at.run()
    assert not at.exception, at.exception
    assert "bart encoder · 1 layers × 2 heads · d_k = 16 · 8 tokens · This is the encoder of a seq2seq BART" in _texts(at)
    assert at.success and at.success[0].value.startswith("11 of 11")  # embeddings + 1 layer output + 9 steps
    assert "seq2seq BART" in at.info[0].value  # the next-token tab says why there is no next token
    assert "model.get_encoder().layers[layer].self_attn" in at.code[0].value


def test_seq2seq_runs_in_the_picker(tmp_path, monkeypatch, bart_dir):
    """A completed BART run is offered (its encoder); a T5 run is named with the reason it is not."""
    import shutil

    from components import anatomy_views, loaders
    from core.settings import Settings
    from core.training import RunStore

    settings = Settings(workspace=tmp_path)
    monkeypatch.setattr(loaders, "settings", lambda: settings)
    store = RunStore(settings.runs_db)
    t5 = tmp_path / "t5"
    t5.mkdir()
    (t5 / "config.json").write_text(json.dumps({"model_type": "t5"}))
    bart = shutil.copytree(bart_dir, tmp_path / "bart")
    ids = {}
    for name, folder in (("summariser", bart), ("t5 summariser", t5)):
        ids[name] = store.create(name, {"task": "seq2seq"})
        store.set_status(ids[name], "completed", model_dir=str(folder))
    options = anatomy_views.model_options()
    assert options[f"run: summariser ({ids['summariser']})"] == str(bart)
    assert not any("t5 summariser" in label for label in options)
    note = anatomy_views.unopened_seq2seq()
    assert note.startswith("Not listed: seq2seq run t5 summariser (t5).") and "relative position bias" in note
