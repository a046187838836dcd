"""The Summarize & QA page through app.py: answers, summaries with ROUGE, bad input, batch evaluation."""
import pytest

PAGE = "pages/summarize_qa.py"


@pytest.fixture(scope="module")
def bert_qa_dir(tmp_path_factory):
    """A tiny span-QA BERT saved with the packaged WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    from core.assets import minilm_path

    folder = tmp_path_factory.mktemp("qa")
    torch.manual_seed(0)
    BertForQuestionAnswering(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=64, max_position_embeddings=128)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(folder)
    return str(folder)


def _texts(at):
    return " ".join(m.value for m in [*at.markdown, *at.caption, *at.info, *at.warning, *at.error])


def test_sample_answer_summary_and_scores(open_page):
    at = open_page(PAGE, timeout=180)
    assert not at.exception
    # the first sample's first question answered from its document, with EM / F1 against the gold answers
    assert "**Answer:** Yeast feeds on the sugars in the flour and releases carbon dioxide, so the dough rises." \
        in [m.value for m in at.markdown]
    assert "embedding similarity" in _texts(at)
    labels = {m.label: m.value for m in at.metric}
    # normalised, the answer has 13 tokens (three "the" dropped) and holds all 10 of the longer gold
    # answer's: P = 10/13, R = 1 -> F1 = 20/23 = 0.870
    assert labels["Token F1"] == "0.870" and labels["Exact match"] == "0"
    assert {"ROUGE-1", "ROUGE-2", "ROUGE-L"} <= labels.keys()
    assert "extractive, centroid" in _texts(at)

    # another sample and question: the answer and the summary follow
    at.selectbox(key="doc_pick").set_value("Lighthouses").run()
    at.selectbox(key="qpick_Lighthouses").set_value("When was the Fresnel lens designed?").run()
    assert not at.exception
    assert "**Answer:** In 1822 the French physicist Augustin Fresnel designed a lens made of concentric rings " \
           "of glass prisms." in [m.value for m in at.markdown]
    at.radio(key="sum_rank").set_value("textrank").run()
    assert "graph ranking" in _texts(at) and not at.exception


def test_bad_input_gets_messages(open_page, bert_qa_dir, tmp_path):
    at = open_page(PAGE, timeout=180)
    at.selectbox(key="doc_pick").set_value("(your own text)").run()
    assert "Type a question about your text" in _texts(at) and "the document is empty" in _texts(at)
    at.text_area(key="doc_(your own text)").set_value("Short text.").run()
    at.text_input(key="q_(your own text)_None").set_value("What does this rather long question ask about?").run()
    assert "longer than the context" in _texts(at) and not at.exception
    # a checkpoint that isn't a seq2seq model, and an offline hub id
    at.radio(key="sum_method").set_value("Seq2seq checkpoint").run()
    at.text_input(key="sum_spec").set_value(bert_qa_dir).run()
    assert "BertForQuestionAnswering, not a summarization model" in _texts(at)
    at.radio(key="qa_method").set_value("Span QA checkpoint").run()
    at.text_input(key="qa_spec").set_value("someone/some-squad-model").run()
    assert "offline" in _texts(at)
    at.text_input(key="qa_spec").set_value(bert_qa_dir).run()
    assert "span model BertForQuestionAnswering" in _texts(at) and not at.exception
    # classification: no runs -> the hint; a folder that is not a classifier -> a clear message
    # (the shared test workspace may hold runs from the training tests)
    runs = at.selectbox(key="cls_run")
    assert "No fine-tuned runs yet" in _texts(at) or len(runs.options) > 1
    runs.set_value("Other folder…").run()
    at.text_input(key="cls_dir").set_value(bert_qa_dir).run()
    assert "not a text-classification model" in _texts(at)


def test_batch_evaluation_on_samples(open_page):
    at = open_page(PAGE, timeout=180)
    at.button(key="batch_go").click().run()
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    assert "Exact match" in labels and "Token F1" in labels
    table = at.dataframe[-1].value
    assert len(table) == 15 and {"question", "prediction", "exact_match", "f1"} <= set(table.columns)
    assert list(table["f1"]) == sorted(table["f1"])  # worst first
    at.radio(key="batch_src").set_value("Sample summaries").run()
    at.button(key="batch_go").click().run()
    table = at.dataframe[-1].value
    assert len(table) == 4 and table["rougeL"].between(0, 1).all() and not at.exception


def test_classify_offers_only_text_classifier_runs(tmp_path, monkeypatch):
    """A network built from scratch (a CNN on digits) is never offered as a text classifier."""
    from components import loaders, nlp_views
    from core.settings import Settings
    from core.training import RunStore

    s = Settings(workspace=tmp_path)
    monkeypatch.setattr(loaders, "settings", lambda: s)
    store = RunStore(s.runs_db)
    fine = store.create("fine-tune", {"task": "text-classification"})
    old = store.create("older fine-tune", {})  # stored before runs had a task: a fine-tune
    cnn = store.create("cnn", {"task": "scratch", "architecture": {"kind": "cnn"}})
    for rid in (fine, old, cnn):
        store.update(rid, model_dir=str(tmp_path / rid))
    offered = set(nlp_views.finetuned_runs().values())
    assert offered == {str(tmp_path / fine), str(tmp_path / old)}


def test_a_completed_seq2seq_run_is_offered_as_a_summariser(open_page, tmp_path_factory):
    """A sequence-to-sequence run of the Fine-tuning page is one click away on the Summarization tab."""
    from core.settings import get_settings
    from core.training import RunStore, TrainingConfig
    from tests.core.training.generation_fixtures import tiny_bart

    folder = tiny_bart(tmp_path_factory.mktemp("sum-bart") / "bart")
    store = RunStore(get_settings().runs_db)
    config = TrainingConfig(task="seq2seq", model=str(folder), dataset="tiny-text",
                            columns={"source": "document", "target": "summary"})
    run_id = store.create("bart summariser", config.__dict__)
    store.update(run_id, status="completed", model_dir=str(folder))
    other = store.create("bart not finished", config.__dict__)  # only completed runs are offered
    at = open_page(PAGE, timeout=180)
    at.radio(key="sum_method").set_value("Seq2seq checkpoint").run()
    picker = at.selectbox(key="sum_run")
    label = f"run {run_id} · bart summariser"
    assert label in picker.options and not any(other in o for o in picker.options), picker.options
    picker.set_value(label).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not [t for t in at.text_input if t.key == "sum_spec"]  # the run stands in for the folder box
    assert any("BartForConditionalGeneration" in c.value for c in at.caption), [c.value for c in at.caption]
    # its decoder has 64 learned positions: the default 128 new tokens are capped, and the page says so
    assert any("capped at 63 new tokens (asked: 128)" in w.value for w in at.warning), [w.value for w in at.warning]
