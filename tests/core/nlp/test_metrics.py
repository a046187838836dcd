"""ROUGE and SQuAD exact match / F1 against values computed by hand and against rouge_score itself."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.nlp.metrics import (
    _rouge_tokenizer,
    eval_columns,
    evaluate_qa,
    evaluate_summaries,
    exact_match_f1,
    mean_scores,
    normalize_answer,
    parse_answers,
    rouge,
    rouge_details,
)


def test_rouge_identical_and_disjoint():
    assert rouge("the cat sat on the mat", "the cat sat on the mat") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert rouge("dogs bark loudly", "the cat sat") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_rouge_worked_example():
    # prediction: the cat sat on the mat / reference: the cat lay on the mat (6 tokens each)
    # ROUGE-1: shared unigrams the×2, cat, on, mat = 5 -> P = R = 5/6 -> F = 5/6
    # ROUGE-2: bigrams {the cat, on the, the mat} shared of 5 each -> 3/5
    # ROUGE-L: LCS "the cat on the mat" = 5 -> 5/6
    r = rouge("the cat sat on the mat", "the cat lay on the mat")
    assert r == pytest.approx({"rouge1": 5 / 6, "rouge2": 3 / 5, "rougeL": 5 / 6})


def test_rouge_precision_recall_are_not_swapped():
    # prediction "the cat" vs reference "the cat sat down": P1 = 2/2, R1 = 2/4 -> F1 = 2/3;
    # bigrams: 1 of 1 predicted, 1 of 3 in the reference -> F = 2 * 1 * 1/3 / (4/3) = 1/2
    d = rouge_details("the cat", "the cat sat down")
    assert d["precision"]["rouge1"] == 1.0 and d["recall"]["rouge1"] == 0.5
    assert d["fmeasure"] == pytest.approx({"rouge1": 2 / 3, "rouge2": 1 / 2, "rougeL": 2 / 3})


def test_rouge_scripts_without_spaces():
    # characters: 茶 起 源 于 中 国 vs 茶 起 源 于 印 度 -> 4 shared of 6; bigrams 3 of 5; LCS 4
    pred, ref = "茶起源于中国", "茶起源于印度"
    assert rouge(pred, ref, tokenizer="default") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    assert rouge(pred, ref) == pytest.approx({"rouge1": 4 / 6, "rouge2": 3 / 5, "rougeL": 4 / 6})
    # Cyrillic keeps its words with "auto", and the default tokenizer drops them all
    assert rouge("кошка сидит", "кошка спит")["rouge1"] == pytest.approx(0.5)
    assert rouge("кошка сидит", "кошка спит", tokenizer="default")["rouge1"] == 0.0


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
def test_auto_tokenizer_matches_rouge_score_on_ascii(text):
    assert _rouge_tokenizer("auto", False).tokenize(text) == _rouge_tokenizer("default", False).tokenize(text)


def test_rouge_against_rouge_score_with_stemmer():
    from rouge_score import rouge_scorer

    pred, ref = "The runners were running quickly through parks", "A runner runs quickly in the park"
    want = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(ref, pred)
    got = rouge(pred, ref, use_stemmer=True)
    assert got == pytest.approx({k: v.fmeasure for k, v in want.items()})
    assert got["rouge1"] > rouge(pred, ref)["rouge1"]  # stemming matches runner/runners, park/parks


def test_unknown_tokenizer():
    with pytest.raises(ValueError, match="unknown ROUGE tokenizer"):
        rouge("a", "b", tokenizer="nope")


def test_normalize_answer():
    assert normalize_answer("  The Eiffel   Tower!! ") == "eiffel tower"
    assert normalize_answer("an apple, a pear") == "apple pear"


def test_exact_match_f1_known_values():
    assert exact_match_f1("The Eiffel Tower.", ["eiffel tower"]) == (1.0, 1.0)
    assert exact_match_f1("Paris", ["London"]) == (0.0, 0.0)
    # "eiffel tower in paris" (4 tokens) vs "eiffel tower" (2): 2 shared -> P = 1/2, R = 1 -> F1 = 2/3;
    # vs "Paris": P = 1/4, R = 1 -> F1 = 2/5; the best gold answer counts
    em, f1 = exact_match_f1("the Eiffel tower in Paris", ["Paris", "Eiffel Tower"])
    assert em == 0.0 and f1 == pytest.approx(2 / 3)
    assert exact_match_f1("the Eiffel tower in Paris", ["Paris"])[1] == pytest.approx(2 / 5)
    assert exact_match_f1("Paris", "Paris") == (1.0, 1.0)  # a bare string is one answer


def test_exact_match_f1_no_answer_and_cjk():
    assert exact_match_f1("", []) == (1.0, 1.0)
    assert exact_match_f1("something", []) == (0.0, 0.0)
    assert exact_match_f1("", ["Paris"]) == (0.0, 0.0)
    # characters: 福 建 和 台 湾 (5) vs 福 建 (2): P = 2/5, R = 1 -> F1 = 4/7
    assert exact_match_f1("福建和台湾", ["福建"]) == (0.0, pytest.approx(4 / 7))


def test_parse_answers_and_columns():
    assert parse_answers(["a", "b"]) == ["a", "b"]
    assert parse_answers({"text": ["x"], "answer_start": [3]}) == ["x"]
    assert parse_answers('{"text": ["x", "y"], "answer_start": [1, 2]}') == ["x", "y"]
    assert parse_answers('["p", "q"]') == ["p", "q"]
    assert parse_answers("plain") == ["plain"]
    assert parse_answers(float("nan")) == [] and parse_answers(None) == []
    assert eval_columns(["Context", "question", "answers"]) == (
        "qa", {"context": "Context", "question": "question", "answers": "answers"})
    assert eval_columns(["article", "highlights", "id"])[0] == "summary"
    with pytest.raises(ValueError, match="needs"):
        eval_columns(["a", "b"])


def test_batch_evaluation():
    rows = [{"context": "c", "question": "q1", "answers": ["yes"]},
            {"context": "c", "question": "q2", "answers": '["no", "nope"]'},
            {"context": "c", "question": "bad", "answers": ["x"]}]

    def answer_fn(q, c):
        if q == "bad":
            raise ValueError("broken row")
        return {"q1": "Yes!", "q2": "no way"}[q]

    seen = []
    out = evaluate_qa(rows, answer_fn, progress=lambda f, _: seen.append(f))
    assert [r["exact_match"] for r in out] == [1.0, 0.0, 0.0]
    assert out[1]["f1"] == pytest.approx(2 / 3)  # "no way" vs "no": P 1/2, R 1
    assert out[2]["error"] == "broken row"
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert mean_scores(out)["exact_match"] == pytest.approx(1 / 3)
    s = evaluate_summaries([{"document": "d", "summary": "the cat sat"}], lambda d: "the cat sat")
    assert s[0]["rouge1"] == 1.0 and s[0]["rougeL"] == 1.0
