"""Extractive QA: SQuAD v1.1 scores against hand-computed values, windows and offsets, refused rows, a tiny run."""
import json

import numpy as np
import pytest

from core.settings import Settings
from core.training import ConfigError, JobManager, TrainingConfig, squad
from core.training import extractive_qa as qa
from core.training.runner import prepare
from tests.core.training.qa_fixtures import CAPITALS, QA_COLUMNS, qa_dataset, qa_rows
from tests.core.training.training_fixtures import tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("tiny-qa-model"))  # 64 positions


@pytest.fixture(scope="module")
def tok(model_dir):
    return qa.tokenizer_for(str(model_dir))


@pytest.fixture
def settings(tmp_path):
    return Settings(workspace=tmp_path / "ws")


def cfg(model_dir, **kw) -> TrainingConfig:
    base = dict(task="question-answering", columns=QA_COLUMNS, model=str(model_dir), dataset="tiny-qa",
                max_length=64, batch_size=8, learning_rate=5e-3, max_steps=6, warmup=0, eval_steps=3)
    return TrainingConfig(**{**base, **kw})


# --- SQuAD v1.1 scores: each expected number worked out by hand from evaluate-v1.1.py's definitions ---------

@pytest.mark.parametrize("text, expected", [
    ("The  Eiffel-Tower, in PARIS!", "eiffeltower in paris"),  # punctuation removed, not replaced by a space
    ("An apple a day", "apple day"),  # articles as whole words only…
    ("theatre and another", "theatre and another"),  # …not inside words
    ("U.S. (1990)", "us 1990"),
    ("Paris。", "paris。"),  # the official set is ASCII punctuation only
])
def test_normalisation_is_the_official_one(text, expected):
    assert squad.normalize_answer(text) == expected


def test_exact_match_and_f1_against_hand_computed_values():
    assert squad.exact_match("the Eiffel Tower!", "Eiffel tower") == 1.0
    assert squad.exact_match("Paris。", "Paris") == 0.0
    assert squad.f1("in Paris, France", "Paris") == pytest.approx(0.5)  # P 1/3, R 1
    assert squad.f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)  # P 3/4, R 1
    assert squad.f1("paris paris", "paris") == pytest.approx(2 / 3)  # a bag: the second paris is unmatched
    assert squad.f1("", "paris") == 0.0  # v1.1: nothing shared scores 0
    # the best over the gold answers, each measure on its own
    assert squad.score("Lyon", ["Paris", "Lyon city"]) == (0.0, pytest.approx(2 / 3))
    m = squad.squad_v1(["Paris", "in Rome"], [["paris"], ["Milan", "Rome"]])
    assert m["exact_match"] == pytest.approx(50.0)
    assert m["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)  # "in rome" vs "rome": P 1/2, R 1


# --- windows, labels and offsets --------------------------------------------------------------------------

def _answer_windows(f):
    return [i for i in range(len(f["input_ids"])) if (f["start_positions"][i], f["end_positions"][i]) != (0, 0)]


def test_offsets_map_the_labelled_tokens_back_to_the_answer_exactly(tok):
    context = "Zürich, on the Limmat, hosts the ETH (founded 1855) and many banks."
    rows = [("Which river?", "Limmat"), ("Founded when?", "1855"), ("Hosts what?", "the ETH (founded 1855)"),
            ("Where?", "Zürich")]
    answers = [{"text": [a], "answer_start": [context.index(a)]} for _, a in rows]
    f = qa.features(tok, [q for q, _ in rows], [context] * len(rows), answers, 64)
    assert len(f["input_ids"]) == len(rows) and all(len(x) == 64 for x in f["input_ids"])  # padded for the collator
    for i, (_, a) in enumerate(rows):
        s, e = f["start_positions"][i], f["end_positions"][i]
        offs = f["offset_mapping"][i]
        assert context[offs[s][0]:offs[e][1]] == a  # "Zürich": offsets point into the original, accented text
    # post-processing maps logits peaked on those tokens back to the same characters
    start_logits = np.full((len(rows), 64), -5.0)
    end_logits = np.full((len(rows), 64), -5.0)
    for i in range(len(rows)):
        start_logits[i, f["start_positions"][i]] = end_logits[i, f["end_positions"][i]] = 5.0
    best = squad.best_spans(start_logits, end_logits, f["example_id"], f["offset_mapping"], [context] * len(rows))
    assert [(b[0], b[1], b[2]) for b in best] == [(a, context.index(a), context.index(a) + len(a)) for _, a in rows]


def test_a_long_context_is_windowed_with_stride_and_the_answer_is_in_a_window(tok, model_dir, settings):
    filler = " ".join(f"Sentence {i} says nothing at all about the question." for i in range(40))
    context = filler + " The treasure is buried under the old oak tree. " + filler
    answer = "under the old oak tree"
    ans = {"text": [answer], "answer_start": [context.index(answer)]}
    f = qa.features(tok, ["Where is the treasure?"], [context], [ans], 64, padding=False)
    windows = len(f["input_ids"])
    assert windows > 10  # far beyond the model's 64 positions
    stride = qa.doc_stride(64)
    assert stride == 16
    # neighbouring windows share `stride` context tokens
    ctx = [[t for t, o in zip(f["input_ids"][w], f["offset_mapping"][w], strict=True) if o is not None]
           for w in range(windows)]
    assert all(ctx[w][-stride:] == ctx[w + 1][:stride] for w in range(windows - 1))
    found = _answer_windows(f)
    assert found
    for w in found:
        offs = f["offset_mapping"][w]
        assert context[offs[f["start_positions"][w]][0]:offs[f["end_positions"][w]][1]] == answer
    # the whole dataset of such rows is accepted (windowed, not refused) by the run's checks
    rows = {"question": ["Where is the treasure?"] * 4, "context": [context] * 4, "answers": [ans] * 4}
    qa_dataset(settings, rows=rows)
    p, prepared = prepare(cfg(model_dir), settings)
    assert (p.train_rows, p.eval_rows) == (3, 1)


# --- refused before launch, naming the field and the row ------------------------------------------------

def _bad(settings, model_dir, row: int, as_json: bool = False, **values):
    rows = qa_rows(12)
    if as_json:  # the answers column as JSON text, so a row can hold any shape
        rows["answers"] = [json.dumps(a) for a in rows["answers"]]
    for k, v in values.items():
        rows[k][row] = v
    qa_dataset(settings, rows=rows)
    with pytest.raises(ConfigError) as e:
        JobManager(settings=settings).submit(cfg(model_dir))
    return e.value


def test_bad_rows_are_refused_naming_field_and_row(settings, model_dir):
    e = _bad(settings, model_dir, 7, context="The fair of the region is in Lyon every spring.",
             answers={"text": ["Paris"], "answer_start": [29]})
    assert e.field == "columns.answers"
    assert e.message == "train row 7: answer 'Paris' is not at character 29 of the context (found 'Lyon ')"
    e = _bad(settings, model_dir, 3, question="  ")
    assert (e.field, e.message) == ("columns.question", "train row 3: the question is empty")
    e = _bad(settings, model_dir, 5, context="")
    assert (e.field, e.message) == ("columns.context", "train row 5: the context is empty")
    e = _bad(settings, model_dir, 2, as_json=True, answers=json.dumps(["Paris"]))
    assert e.field == "columns.answers" and e.message.startswith("train row 2: ") and "answer_start" in e.message
    e = _bad(settings, model_dir, 4, as_json=True, answers="Paris")
    assert e.field == "columns.answers" and e.message.startswith("train row 4: 'Paris' is not SQuAD answers")
    e = _bad(settings, model_dir, 6, as_json=True, answers=json.dumps({"text": ["Paris"], "answer_start": ["3"]}))
    assert e.field == "columns.answers" and "train row 6: answer_start '3' is not a character position" in e.message
    e = _bad(settings, model_dir, 9, answers={"text": [], "answer_start": []})
    assert e.field == "columns.answers" and "train row 9: no answer" in e.message
    e = _bad(settings, model_dir, 1, question="why " * 60)
    assert e.field == "columns.question" and "train row 1: the question is 60 tokens" in e.message
    with pytest.raises(ConfigError) as missing:
        JobManager(settings=settings).submit(cfg(model_dir, columns=QA_COLUMNS | {"context": "passage"}))
    assert missing.value.field == "columns.context"


def test_answers_as_json_text_are_accepted(settings, model_dir):
    rows = qa_rows(10)
    rows["answers"] = [json.dumps(a) for a in rows["answers"]]
    qa_dataset(settings, rows=rows)
    _, prepared = prepare(cfg(model_dir), settings)
    assert prepared.train_rows + prepared.eval_rows == 10
    assert prepared.train["answers"][0]["text"] in [[city] for _, city in CAPITALS]


# --- the closure's mapping and a run end to end ---------------------------------------------------------

def test_metrics_closure_scores_windows_and_refuses_reordered_ones(settings, model_dir, tmp_path):
    from transformers import EvalPrediction

    qa_dataset(settings)
    config = cfg(model_dir)
    _, prepared = prepare(config, settings)
    task = qa.setup(config, str(model_dir), prepared, tmp_path)
    ev = task.eval_dataset
    starts, ends = np.array(ev["start_positions"]), np.array(ev["end_positions"])
    s_log, e_log = np.full((len(ev), 64), -5.0), np.full((len(ev), 64), -5.0)
    s_log[np.arange(len(ev)), starts] = e_log[np.arange(len(ev)), ends] = 5.0
    assert task.compute_metrics(EvalPrediction((s_log, e_log), (starts, ends))) == {"exact_match": 100.0,
                                                                                    "f1": 100.0}
    moved = starts.copy()
    moved[0] += 1  # labels that don't line up with the windows the closure holds: a reordered evaluation
    with pytest.raises(RuntimeError, match="order"):
        task.compute_metrics(EvalPrediction((s_log, e_log), (moved, ends)))
    assert task.info["doc_stride"] == 16
    assert "length" not in task.train_dataset.column_names  # no length grouping: evaluation stays in order


def test_a_few_steps_through_the_job_manager(settings, model_dir):
    qa_dataset(settings)
    jobs = JobManager(settings=settings)
    run_id = jobs.submit(cfg(model_dir))
    assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
    rec = jobs.store.get(run_id)
    fm = rec.final_metrics
    assert 0 <= fm["exact_match"] <= 100 and 0 <= fm["f1"] <= 100 and fm["f1"] >= fm["exact_match"]
    assert fm["global_step"] == 6
    # the first-word guess ("France", "Spain"…) never overlaps a capital
    assert (fm["baseline_exact_match"], fm["baseline_f1"]) == (0.0, 0.0)
    evals = jobs.store.metrics(run_id, "eval")
    assert evals and {"eval_exact_match", "eval_f1", "eval_loss"} <= set(evals[-1])
    text, start, end, score = qa.answer(rec, "What is the capital of Peru?",
                                        "Peru is a country with a long history. Its capital is Lima.")
    assert text == "Peru is a country with a long history. Its capital is Lima."[start:end] and 0 <= score <= 1
    assert list(qa.qa_checkpoints(jobs.store.runs()).values()) == [rec.model_dir]
    # the evaluation split in one go: each question answered as try-it answers, scored with SQuAD v1.1
    rows, totals, per_s = qa.batch_answer(rec, settings, limit=3)
    examples = qa.eval_examples(rec, settings, n=3)
    assert [r["predicted"] for r in rows] == [qa.answer(rec, e["question"], e["context"])[0] for e in examples]
    assert totals == squad.squad_v1([r["predicted"] for r in rows], [e["gold"] for e in examples]) and per_s > 0
    jobs.shutdown()
