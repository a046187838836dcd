"""The model-based path end to end with tiny models built from a config and saved to a folder."""
import itertools

import pytest
import torch

from core.assets import minilm_path
from core.nlp import Encoder, NLPError, classify, load_model
from core.nlp.qa import span_answer
from core.nlp.summaries import abstractive_summary, extractive_summary


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()))


def _save(model_cls, config, tokenizer, folder):
    torch.manual_seed(0)
    model = model_cls(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def _bert(**kw):
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=128, **kw)


@pytest.fixture(scope="module")
def qa_dir(tmp_path_factory, tokenizer):
    from transformers import BertForQuestionAnswering

    return _save(BertForQuestionAnswering, _bert(), tokenizer, tmp_path_factory.mktemp("qa"))


@pytest.fixture(scope="module")
def cls_dir(tmp_path_factory, tokenizer):
    from transformers import BertForSequenceClassification

    cfg = _bert(num_labels=3, id2label={0: "negative", 1: "neutral", 2: "positive"},
                label2id={"negative": 0, "neutral": 1, "positive": 2})
    return _save(BertForSequenceClassification, cfg, tokenizer, tmp_path_factory.mktemp("cls"))


@pytest.fixture(scope="module")
def bart_dir(tmp_path_factory, tokenizer):
    from transformers import BartConfig, BartForConditionalGeneration

    # the BERT vocabulary: [PAD]=0, [CLS]=101 starts, [SEP]=102 ends
    cfg = BartConfig(vocab_size=30522, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
                     pad_token_id=0, bos_token_id=101, eos_token_id=102, decoder_start_token_id=102,
                     forced_eos_token_id=None)
    return _save(BartForConditionalGeneration, cfg, tokenizer, tmp_path_factory.mktemp("bart"))


def _brute_force_best(lm, question, context, max_length, stride, max_answer_tokens):
    """The best (p_start * p_end) span over all windows by plain loops: the reference."""
    enc = lm.tokenizer(question, context, truncation="only_second", max_length=max_length, stride=stride,
                       return_overflowing_tokens=True, return_offsets_mapping=True)
    best = (-1.0, None)
    for w in range(len(enc["input_ids"])):
        inputs = {k: torch.tensor([enc[k][w]]) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            out = lm.model(**inputs)
        ctx = [i for i, s in enumerate(enc.sequence_ids(w)) if s == 1]
        allowed = [0, *ctx]  # [CLS] and the context tokens share the softmax
        ps = out.start_logits[0, allowed].softmax(-1)
        pe = out.end_logits[0, allowed].softmax(-1)
        pos = {tok: k for k, tok in enumerate(allowed)}
        for s, e in itertools.product(ctx, ctx):
            if s <= e < s + max_answer_tokens:
                p = float(ps[pos[s]] * pe[pos[e]])
                if p > best[0]:
                    off = enc["offset_mapping"][w]
                    best = (p, (off[s][0], off[e][1]))
    return best


def test_span_qa_matches_brute_force_across_windows(qa_dir):
    lm = load_model(qa_dir, "question-answering")
    context = " ".join(f"Sentence {i} tells about the river and the old mill near town {i}." for i in range(12))
    seen = []
    a = span_answer(lm, "What is near the river?", context, max_length=48, stride=16, max_answer_tokens=6,
                    progress=lambda f, m: seen.append(f))
    p, (start, end) = _brute_force_best(lm, "What is near the river?", context, 48, 16, 6)
    assert (a.start, a.end) == (start, end) and a.score == pytest.approx(p, rel=1e-5)
    assert a.text == context[a.start:a.end] and a.found
    assert "windows" in a.method and seen[-1] == 1.0
    assert len(lm.tokenizer(a.text, add_special_tokens=False)["input_ids"]) <= 6
    assert [c.score for c in a.candidates] == sorted((c.score for c in a.candidates), reverse=True)


def test_span_qa_no_answer_threshold_and_bad_input(qa_dir):
    lm = load_model(qa_dir, "question-answering")
    ctx = "The mill was built in 1820 by the river."
    assert not span_answer(lm, "When?", ctx, no_answer_threshold=-1e9).found  # null always wins
    assert span_answer(lm, "When?", ctx, no_answer_threshold=1e9).found
    with pytest.raises(NLPError, match="no room for the context"):
        span_answer(lm, "why " * 200, ctx)
    with pytest.raises(NLPError, match="context is empty"):
        span_answer(lm, "When?", "")


def test_wrong_kind_of_checkpoint_gets_a_clear_message(cls_dir, qa_dir, tmp_path):
    with pytest.raises(NLPError, match="BertForSequenceClassification, not a question-answering model"):
        load_model(cls_dir, "question-answering")
    with pytest.raises(NLPError, match="holds a BertModel, not a summarization model"):
        load_model("minilm-l6", "summarization")
    with pytest.raises(NLPError, match="BertForQuestionAnswering, not a summarization model: transformers has no"):
        load_model(qa_dir, "summarization")
    with pytest.raises(NLPError, match="offline"):
        load_model("someone/some-model", "question-answering")
    with pytest.raises(NLPError, match="no config.json"):
        load_model(str(tmp_path), "question-answering")


def test_classify_matches_the_model(cls_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["This drug worked well.", "Terrible side effects, would not take again."]
    got = classify(cls_dir, texts)
    model = AutoModelForSequenceClassification.from_pretrained(cls_dir).eval()
    enc = AutoTokenizer.from_pretrained(cls_dir)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        want = model(**enc).logits.softmax(-1)
    assert list(got[0]) == ["negative", "neutral", "positive"]
    for g, w in zip(got, want, strict=True):
        assert list(g.values()) == pytest.approx(w.tolist(), abs=1e-5) and sum(g.values()) == pytest.approx(1)


def test_abstractive_summary_generation_settings(bart_dir):
    lm = load_model(bart_dir, "summarization")
    doc = "The mill stands by the river. It was built long ago. People still visit it on Sundays."
    s = abstractive_summary(lm, doc, num_beams=2, min_length=5, max_length=12, no_repeat_ngram_size=1)
    ids = lm.tokenizer(s.text, add_special_tokens=False)["input_ids"]
    assert 1 <= len(ids) <= 12 and len(ids) == len(set(ids))  # no token twice with no_repeat_ngram_size=1
    assert s.chunks == 1 and "2 beams" in s.method and "BartForConditionalGeneration" in s.method
    # a document past the 64-token input is cut into runs of whole sentences, with progress
    long_doc = " ".join(f"Sentence number {i} is about the mill." for i in range(40))
    seen = []
    s = abstractive_summary(lm, long_doc, num_beams=1, min_length=1, max_length=4,
                            progress=lambda f, m: seen.append(f))
    assert s.chunks > 1 and len(seen) == s.chunks and seen[-1] == 1.0 and "chunks" in s.warnings[-1]
    with pytest.raises(NLPError, match="min length"):
        abstractive_summary(lm, doc, min_length=20, max_length=10)


def test_hundred_thousand_character_document_is_chunked_with_progress(tokenizer, tmp_path):
    from transformers import BertModel

    torch.manual_seed(0)
    enc = Encoder(BertModel(_bert()).eval(), tokenizer, "cpu", max_length=64, name="tiny")
    words = sorted(w for w in tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 3)[:3000]
    g = torch.Generator().manual_seed(0)
    sentences = (" ".join(words[j] for j in torch.randint(len(words), (8,), generator=g).tolist()).capitalize() + "."
                 for _ in range(4000))
    doc = " ".join(sentences)[:100_000]
    seen = []
    s = extractive_summary(doc, enc, method="textrank", max_sentences=4, progress=lambda f, m: seen.append(m))
    assert len(doc) == 100_000 and len(s.sentences) > 1000 and 1 <= len(s.kept) <= 4
    assert s.text == " ".join(s.sentences[i].text for i in s.kept)
    assert s.sentences[-1].end == len(doc)
    assert len(seen) == -(-len(s.sentences) // 32) and seen[-1].startswith(f"embedding {len(s.sentences):,} /")
