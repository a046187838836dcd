"""The launch form alone: a config value validate() refuses is named right under the widget that set it."""
from streamlit.testing.v1 import AppTest


def _form():
    import streamlit as st

    from components.training_form import launch_form

    config = launch_form([], [])
    st.session_state["built"] = config.to_json()


def _form_with_columns():
    """The form over a saved dataset with NER-style column names (no data is read to map them)."""
    from types import SimpleNamespace

    import streamlit as st

    from components.training_form import launch_form

    ref = SimpleNamespace(name="ner", version=1, columns=["id", "words", "ner_tags", "summary", "document"])
    config = launch_form([ref], [])
    st.session_state["built"] = config.to_json()


def test_a_refused_value_is_named_under_its_widget_and_the_form_still_returns_the_config():
    at = AppTest.from_function(_form, default_timeout=60)
    at.run()
    assert not at.exception and not at.error  # the defaults are valid
    at.number_input(key="ft_bs").set_value(4096)
    at.number_input(key="ft_maxlen").set_value(8192)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["4,096 × max_length 8,192 = 33,554,432 tokens per step, over the memory "
                                           "cap of 524,288: lower one of them (gradient accumulation gives the "
                                           "same effective batch)"]
    column = next(c for c in at.columns if c.error)
    assert [w.label for w in column.number_input] == ["Batch size"]  # beside the widget that caused it
    assert '"batch_size": 4096' in at.session_state["built"]  # the page still gets the config to refuse on Start
    at.number_input(key="ft_maxlen").set_value(128).run()
    assert not at.error


def test_an_unfinished_custom_model_is_left_to_the_page():
    from components.training_form import CUSTOM

    at = AppTest.from_function(_form, default_timeout=60)
    at.run()
    at.selectbox(key="ft_model_text-classification").set_value(CUSTOM).run()
    assert not at.exception and not at.error  # "must not be empty" is shown by the page only if Start is pressed
    assert '"model": ""' in at.session_state["built"]


def test_picking_a_task_maps_its_roles_to_columns_and_the_config_carries_them():
    import json

    at = AppTest.from_function(_form_with_columns, default_timeout=60)
    at.run()
    at.selectbox(key="ft_dataset").set_value("ner").run()
    at.selectbox(key="ft_task").set_value("token-classification").run()
    assert not at.exception
    # each role has its column picker, guessed from the usual names
    assert at.selectbox(key="ft_col_token-classification_tags").value == "ner_tags"
    assert at.selectbox(key="ft_col_token-classification_tokens").value == "words"
    built = json.loads(at.session_state["built"])
    assert built["task"] == "token-classification" and built["columns"]["tags"] == "ner_tags"
    at.selectbox(key="ft_col_token-classification_tokens").set_value("ner_tags").run()
    # the same column for two roles is named under the role that repeats it
    assert any("already the tokens column" in e.value for e in at.error), [e.value for e in at.error]
    at.selectbox(key="ft_col_token-classification_tokens").set_value("words").run()
    assert not any("already" in e.value for e in at.error)

    at.selectbox(key="ft_task").set_value("seq2seq").run()
    assert at.selectbox(key="ft_col_seq2seq_source").value == "document"
    assert at.selectbox(key="ft_col_seq2seq_target").value == "summary"
    models = at.selectbox(key="ft_model_seq2seq").options
    assert not any("MiniLM" in m for m in models)  # an encoder can't generate: not offered
    assert any("Build a network" in c.value for c in at.caption)  # says where a decoder comes from offline


def test_the_tracker_checkboxes_set_report_to():
    import json

    at = AppTest.from_function(_form, default_timeout=60)
    at.run()
    assert json.loads(at.session_state["built"])["report_to"] == "none"
    expected = {("ft_trackio",): "trackio", ("ft_tensorboard",): "tensorboard",
                ("ft_tensorboard", "ft_trackio"): "tensorboard,trackio"}
    for keys, value in expected.items():
        for k in ("ft_tensorboard", "ft_trackio"):
            at.checkbox(key=k).set_value(k in keys)
        at.run()
        assert not at.exception and not at.error
        assert json.loads(at.session_state["built"])["report_to"] == value
