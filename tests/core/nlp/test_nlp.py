"""Offline QA and summarization with the packaged MiniLM: right sentences on hand-made cases."""
import pytest
import torch

from core.nlp import NLPError, answer, check_text, sentence_spans, summarize
from core.nlp.qa import answer_type, clause_spans
from core.nlp.summaries import centrality
from core.settings import Settings


@pytest.fixture(scope="module")
def encoder():
    from core.nlp import load_encoder

    return load_encoder(device="cpu")


def test_sentence_spans_offsets_and_edge_cases():
    text = "Dr. Smith arrived at 9 p.m. on Monday. He left!  Then what?\n\nA new paragraph"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Dr. Smith arrived at 9 p.m. on Monday.", "He left!", "Then what?", "A new paragraph"]
    zh = "茶起源于中国。绿茶不发酵！红茶呢？"
    assert [zh[a:b] for a, b in sentence_spans(zh)] == ["茶起源于中国。", "绿茶不发酵！", "红茶呢？"]
    # one sentence of 130 words is cut into windows of at most 60 words, covering it in order
    long = " ".join(f"w{i}" for i in range(130)) + "."
    pieces = [long[a:b] for a, b in sentence_spans(long)]
    assert [len(p.split()) for p in pieces] == [60, 60, 10] and " ".join(pieces) == long


CASES = [  # (context, question, the sentence that answers it)
    ("Mount Everest is the highest mountain above sea level. It lies on the border between Nepal and "
     "China. Many climbers use bottled oxygen near the summit. The first confirmed ascent was in 1953 "
     "by Edmund Hillary and Tenzing Norgay. Tea houses along the trail serve travellers.",
     [("Who first climbed Everest?", "The first confirmed ascent was in 1953 by Edmund Hillary and Tenzing Norgay."),
      ("Which countries does Everest border?", "It lies on the border between Nepal and China."),
      ("Why do climbers carry oxygen?", "Many climbers use bottled oxygen near the summit.")]),
    ("Photosynthesis turns light into chemical energy. Plants take in carbon dioxide through small "
     "pores called stomata. Chlorophyll absorbs mostly red and blue light and reflects green. The "
     "process releases oxygen as a by-product. Cats sleep for most of the day.",
     [("Why are leaves green?", "Chlorophyll absorbs mostly red and blue light and reflects green."),
      ("How does carbon dioxide enter a plant?", "Plants take in carbon dioxide through small pores called stomata."),
      ("What gas is released?", "The process releases oxygen as a by-product.")]),
]


@pytest.mark.parametrize("context,qa", CASES)
def test_embedding_qa_finds_the_right_sentence(encoder, context, qa):
    for question, want in qa:
        a = answer(question, context, encoder)
        assert a.text == want, question
        assert context[a.start:a.end] == a.text and a.found
        assert a.candidates[0].text == want and a.candidates[0].score >= a.candidates[1].score
        assert "embedding similarity" in a.method


def test_answer_types_and_clause_narrowing(encoder):
    assert answer_type("When was it built?") == "date" and answer_type("How many legs?") == "number"
    assert answer_type("Where is it?") == "place" and answer_type("Who is it?") is None
    ctx = "The bridge opened to traffic in 1937. It spans the strait, linking the city to the county."
    a = answer("When did the bridge open?", ctx, encoder)
    assert a.text == "The bridge opened to traffic in 1937." and "date" in a.method
    s = "Hamlet was written by William Shakespeare around 1600, during the reign of Elizabeth I."
    assert [s[a:b] for a, b in clause_spans(s, 0, len(s))] == [
        "Hamlet was written by William Shakespeare around 1600", "during the reign of Elizabeth I."]
    a = answer("Who wrote Hamlet?", "Paris is large. " + s, encoder, granularity="clause")
    assert a.text == "Hamlet was written by William Shakespeare around 1600"
    assert a.sentence == (16, 16 + len(s)) and a.start == 16


def test_bad_input(encoder):
    with pytest.raises(NLPError, match="context is empty"):
        answer("Why?", "   ", encoder)
    with pytest.raises(NLPError, match="question is empty"):
        answer("", "Some text.", encoder)
    with pytest.raises(NLPError, match="TORCHLAB_MAX_TEXT_CHARS"):
        check_text("x" * 101, "document", Settings(max_text_chars=100))
    a = answer("What is the capital city of France and why is it famous?", "Paris.", encoder)
    assert a.text == "Paris." and "longer than the context" in a.warnings[0]
    a = answer("乌龙茶主要产于哪里？", "茶起源于中国。乌龙茶主要产于福建和台湾。", encoder)
    assert any("without spaces" in w for w in a.warnings)


def test_textrank_matches_networkx_pagerank():
    import networkx as nx

    g = torch.Generator().manual_seed(0)
    vecs = torch.nn.functional.normalize(torch.randn(7, 5, generator=g), dim=1)
    sim = (vecs @ vecs.T).clamp(min=0).fill_diagonal_(0)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(7))
    graph.add_weighted_edges_from((i, j, float(sim[i, j])) for i in range(7) for j in range(7) if sim[i, j] > 0)
    want = nx.pagerank(graph, alpha=0.85, weight="weight", tol=1e-12)
    got = centrality(vecs, "textrank")
    assert got.tolist() == pytest.approx([want[i] for i in range(7)], abs=1e-6)
    centre = torch.nn.functional.normalize(vecs.mean(0), dim=0)
    assert torch.allclose(centrality(vecs, "centroid"), vecs @ centre)


DOC = ("Solar panels turn sunlight into electricity. Most panels are made of silicon cells. "
       "The electricity from solar panels can power homes and charge batteries. "
       "My neighbour's dog barks at the postman every morning. "
       "Solar power is a renewable source of energy that does not burn fuel. "
       "Panels work less well on cloudy days, but they still produce some electricity.")


@pytest.mark.parametrize("method", ["centroid", "textrank"])
def test_extractive_summary(encoder, method):
    s = summarize(DOC, encoder, method=method, max_sentences=3)
    kept = [s.sentences[i].text for i in s.kept]
    assert len(kept) == 3 and list(s.kept) == sorted(s.kept)
    assert "My neighbour's dog barks at the postman every morning." not in kept
    assert s.text == " ".join(kept) and method.replace("textrank", "graph") in s.method
    ranked = sorted(range(len(s.sentences)), key=lambda i: -s.sentences[i].score)
    assert ranked[-1] == 3  # the off-topic sentence is the least central
    short = summarize(DOC, encoder, method=method, max_sentences=5, max_words=12)
    assert sum(len(short.sentences[i].text.split()) for i in short.kept) <= 12 or len(short.kept) == 1


def test_summary_of_short_text_says_so(encoder):
    s = summarize("Only one sentence here.", encoder)
    assert s.text == "Only one sentence here." and "only 1 sentence" in s.warnings[0]
    with pytest.raises(NLPError, match="at least one"):
        summarize(DOC, encoder, max_sentences=0)
