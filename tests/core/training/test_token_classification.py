"""Token classification: BIO checks, label alignment, entity scores against seqeval, a tiny run end to end."""
import ast
import random

import datasets
import numpy as np
import pytest
from seqeval.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

from core.data import DatasetStore
from core.data.conll import parse_conll
from core.settings import Settings
from core.training import ConfigError, JobManager, TrainingConfig
from core.training.entities import entities, entity_scores
from core.training.token_classification import (
    IGNORED,
    align,
    aligned_row,
    export_script,
    label_list,
    metrics_fn,
    predict,
    prepare,
)
from tests.core.training.training_fixtures import tiny_model

NAMES = ["alice", "bob", "carol", "dave"]
PLACES = [["paris"], ["rome"], ["oslo"], ["new", "york"]]


def tagged(name, place, other=None):
    """'alice met bob in new york .' or 'alice visited rome .' with its BIO tags."""
    words = [name] + (["met", other, "in"] if other else ["visited"]) + [*place, "."]
    tags = ["B-PER"] + (["O", "B-PER", "O"] if other else ["O"]) + \
        ["B-LOC"] + ["I-LOC"] * (len(place) - 1) + ["O"]
    return words, tags


def ner_rows(n=40):
    rows = [tagged(NAMES[i % 4], PLACES[(i // 4) % 4], NAMES[(i + 1) % 4] if i % 3 == 0 else None)
            for i in range(n)]
    return {"tokens": [w for w, _ in rows], "ner_tags": [t for _, t in rows]}


def save(settings, data, name="ner"):
    if not isinstance(data, (datasets.Dataset, datasets.DatasetDict)):
        data = datasets.Dataset.from_dict(data)
    return DatasetStore(settings.datasets_dir).save(data, name, "test fixture")


def cfg(model="minilm-l6", **kw) -> TrainingConfig:
    base = dict(task="token-classification", columns={"tokens": "tokens", "tags": "ner_tags"}, model=model,
                dataset="ner", max_length=32, batch_size=8, learning_rate=2e-2, max_steps=20, warmup=0,
                logging_steps=5, eval_steps=10, save_steps=100)
    return TrainingConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    torch.manual_seed(0)  # the same random tiny BERT every time: what it learns in 20 steps does not vary
    return tiny_model(tmp_path_factory.mktemp("tiny-ner-model"))


@pytest.fixture
def settings(tmp_path):
    return Settings(workspace=tmp_path / "ws")


# ---- alignment -------------------------------------------------------------------------------------------

def test_labels_put_o_first_and_every_entity_type_gets_b_and_i():
    assert label_list({"B-PER", "O", "I-LOC"}) == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]


def test_align_labels_only_each_words_first_sub_token():
    # [CLS] una ##ffa ##ble paris [SEP]: word 0 is three sub-tokens
    assert align([None, 0, 0, 0, 1, None], [7, 3]) == [IGNORED, 7, IGNORED, IGNORED, 3, IGNORED]
    assert align([None, 0, 1, 1, 2, None], [0, 1, 2]) == [IGNORED, 0, 1, IGNORED, 2, IGNORED]


def test_aligned_row_with_the_real_tokenizer(settings):
    save(settings, {"tokens": [["unaffable", "Paris", "."]] * 4, "ner_tags": [["B-MISC", "B-LOC", "O"]] * 4})
    ex = aligned_row(cfg(), settings, _minilm(), "train", 0)
    rows = [(r["sub-token"], r["word index"], r["label"]) for r in ex.table]
    assert rows == [("[CLS]", None, "-100 (ignored)"), ("una", 0, "B-MISC"), ("##ffa", 0, "-100 (ignored)"),
                    ("##ble", 0, "-100 (ignored)"), ("paris", 1, "B-LOC"), (".", 2, "O"),
                    ("[SEP]", None, "-100 (ignored)")]
    labels = ["O", "B-LOC", "B-MISC", "I-LOC", "I-MISC"]
    assert [r["label id"] for r in ex.table] == [-100, labels.index("B-MISC"), -100, -100, 1, 0, -100]
    assert all(r["attention mask"] == 1 for r in ex.table)
    assert "Nothing truncated" in ex.notes[-1]
    short = aligned_row(cfg(max_length=4), settings, _minilm(), "train", 0)
    assert [r["sub-token"] for r in short.table] == ["[CLS]", "una", "##ffa", "[SEP]"]
    assert "the last 2 of 3 words are cut" in short.notes[-1]


def _minilm() -> str:
    from core.assets import minilm_path

    return str(minilm_path())


# ---- entity scores against seqeval -----------------------------------------------------------------------

HAND_MADE = [  # (gold, predicted)
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
    (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),  # an I- without a B- starts an entity
    (["B-PER", "I-LOC", "O"], ["B-PER", "I-PER", "O"]),  # a change of type starts a new one
    (["O", "B-ORG", "I-ORG", "I-ORG"], ["O", "B-ORG", "I-ORG", "O"]),  # a wrong end: no match
    (["B-LOC", "B-LOC", "O"], ["B-LOC", "I-LOC", "O"]),
    (["O", "O", "O"], ["B-MISC", "O", "I-MISC"]),
    (["I-MISC", "B-MISC", "I-PER"], ["O", "O", "O"]),
]


def test_entities_match_seqeval_on_hand_made_sequences():
    for gold, pred in HAND_MADE:
        for seq in (gold, pred):
            assert entities(seq) == get_entities(seq), seq
    assert entities(["I-PER", "I-PER", "O", "I-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]


def test_entity_scores_match_seqeval_and_hand_computed_values():
    true, pred = [g for g, _ in HAND_MADE], [p for _, p in HAND_MADE]
    got = entity_scores(true, pred)
    # by hand: 11 gold entities (2+1+2+1+2+0+3), 8 predicted (2+1+1+1+1+2+0), 3 matched (rows 0 and 1)
    assert got["precision"] == pytest.approx(3 / 8)
    assert got["recall"] == pytest.approx(3 / 11)
    assert got["precision"] == pytest.approx(precision_score(true, pred))
    assert got["recall"] == pytest.approx(recall_score(true, pred))
    assert got["f1"] == pytest.approx(f1_score(true, pred))
    assert got["accuracy"] == pytest.approx(accuracy_score(true, pred))
    report = classification_report(true, pred, output_dict=True, zero_division=0)
    for row in got["per_entity"]:
        ref = report[row["entity"]]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (ref["precision"], ref["recall"], ref["f1-score"], ref["support"])), row["entity"]
    assert [r["entity"] for r in got["per_entity"]] == ["LOC", "MISC", "ORG", "PER"]


def test_entity_scores_match_seqeval_on_random_sequences():
    rnd = random.Random(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]
    true = [[rnd.choice(tags) for _ in range(rnd.randint(1, 12))] for _ in range(300)]
    pred = [[t if rnd.random() < 0.7 else rnd.choice(tags) for t in row] for row in true]
    got = entity_scores(true, pred)
    assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(
        (precision_score(true, pred), recall_score(true, pred), f1_score(true, pred)))
    assert entity_scores(true, true)["f1"] == 1.0
    assert entity_scores([["O"]], [["O"]])["f1"] == 0.0  # no entity anywhere: seqeval's zero_division 0


def test_compute_metrics_reads_only_labelled_sub_tokens():
    labels = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    gold = np.array([[IGNORED, 2, 4, IGNORED, 0, 1, IGNORED], [IGNORED, 1, 3, 0, IGNORED, IGNORED, IGNORED]])
    guess = np.array([[0, 2, 4, 1, 0, 1, 2], [0, 1, 0, 0, 4, 0, 0]])  # wrong only where ignored in row 0
    logits = np.eye(len(labels))[guess] * 5.0

    class Pred:
        predictions, label_ids = logits, gold

    got = metrics_fn(labels)(Pred())
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "O", "O"]]
    assert got["f1"] == pytest.approx(f1_score(true, pred)) and got["precision"] == pytest.approx(2 / 3)
    assert got["accuracy"] == pytest.approx(6 / 7)


# ---- data checks -----------------------------------------------------------------------------------------

BAD = [  # (rows, field, words in the message)
    ({"tokens": [["a", "b"], ["c"]], "ner_tags": ["O O", "O"]}, "columns.tags", "row 0: 'ner_tags' must hold a list"),
    ({"tokens": [["a"]] * 12 + [["a", "b", "c", "d", "e"]], "ner_tags": [["O"]] * 12 + [["O"] * 4]},
     "columns.tags", "row 12: 5 tokens but 4 tags"),
    ({"tokens": [["Ann", "ran"]] * 3, "ner_tags": [["B-PER", "O"], ["B-PER", "O"], ["X-PER", "O"]]},
     "columns.tags", "row 2, word 0: 'X-PER' is not a BIO tag"),
    ({"tokens": [[1, 2]], "ner_tags": [["B-PER", "O"]]}, "columns.tokens", "row 0, word 0: every token must be "
     "non-empty text, got 1 (int)"),
    ({"tokens": [["Ann", "ran"], ["Ann", None]], "ner_tags": [["B-PER", "O"]] * 2}, "columns.tokens",
     "row 1, word 1: every token must be non-empty text, got None"),
    ({"tokens": [["Ann", " "]], "ner_tags": [["B-PER", "O"]]}, "columns.tokens", "row 0, word 1: every token"),
    ({"tokens": ["Ann ran"], "ner_tags": [["B-PER", "O"]]}, "columns.tokens", "row 0: 'tokens' must hold a list"),
    ({"tokens": [["Ann", "ran"]], "ner_tags": [[1, 0]]}, "columns.tags",
     "row 0, word 0: 1 is not a BIO tag (O, B-TYPE or I-TYPE): whole-number tags need a ClassLabel"),
    ({"tokens": [["Ann", "ran"]] * 3, "ner_tags": [["O", "O"]] * 3}, "columns.tags", "every training tag"),
    ({"tokens": [], "ner_tags": []}, "dataset", "the 'train' split of ner is empty"),
]


@pytest.mark.parametrize("rows,field,words", BAD)
def test_bad_rows_are_refused_naming_field_and_row(settings, rows, field, words, monkeypatch):
    if rows["tokens"]:
        save(settings, datasets.Dataset.from_dict(rows))
    else:  # the store can't reopen a saved empty table (load_from_disk fails), so hand one to prepare
        from core.training import token_classification

        features = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                      "ner_tags": datasets.List(datasets.Value("string"))})
        empty = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)})
        monkeypatch.setattr(token_classification, "open_dataset", lambda config, settings: (empty, "train", None))
    with pytest.raises(ConfigError) as e:
        prepare(cfg(), settings, "")
    assert e.value.field == field and words in e.value.message, (e.value.field, e.value.message)


def test_a_missing_column_and_a_bad_eval_split_are_named(settings):
    save(settings, ner_rows(8))
    with pytest.raises(ConfigError) as e:
        prepare(cfg(columns={"tokens": "words", "tags": "ner_tags"}), settings, "")
    assert e.value.field == "columns.tokens" and "no column 'words'" in e.value.message
    good = datasets.Dataset.from_dict(ner_rows(8))
    bad = datasets.Dataset.from_dict({"tokens": [["a", "b"]] * 4, "ner_tags": [["O", "O"]] * 3 + [["O"]]})
    save(settings, datasets.DatasetDict({"train": good, "test": bad}), "ner2")
    with pytest.raises(ConfigError) as e:
        prepare(cfg(dataset="ner2"), settings, "")
    assert e.value.field == "columns.tags" and e.value.message.startswith("row 3 of 'test': 2 tokens but 1 tags")


def test_classlabel_tags_use_their_names_and_splits_honour_the_limits(settings):
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    rows = ner_rows(40)
    ids = [[names.index(t) for t in row] for row in rows["ner_tags"]]
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(datasets.ClassLabel(names=names))})
    save(settings, datasets.Dataset.from_dict({"tokens": rows["tokens"], "ner_tags": ids}, features=features))
    p = prepare(cfg(eval_fraction=0.25), settings, "")
    assert p.labels == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    assert (p.train_rows, p.eval_rows) == (30, 10)
    first = p.train[0]
    original = rows["tokens"].index(first["tokens"])
    assert [p.labels[i] for i in first["tags"]] == rows["ner_tags"][original]
    limited = prepare(cfg(eval_fraction=0.25, max_train_samples=7, max_eval_samples=3), settings, "")
    assert (limited.train_rows, limited.eval_rows) == (7, 3)
    assert limited.eval["tokens"] == p.eval["tokens"][:3]


def test_conll_text_reads_into_tokens_and_tags():
    got = parse_conll("-DOCSTART- -X- O O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter\tB-PER\n")
    assert got == {"tokens": [["EU", "rejects"], ["Peter"]], "ner_tags": [["B-ORG", "O"], ["B-PER"]]}


def test_a_conll_file_loads_as_the_loader_would_memory_map_it(tmp_path):
    from core.data.conll import load_conll
    from core.data.limits import Limits
    from core.data.types import DataError

    src = tmp_path / "x.conll"
    src.write_text("EU\tB-ORG\nrejects\tO\n\nPeter B-PER\nBlackburn I-PER\n", encoding="utf-8")
    report = load_conll(src, tmp_path / "x.arrow")
    ds = datasets.Dataset.from_file(str(tmp_path / "x.arrow"))
    assert ds.to_dict() == {"tokens": [["EU", "rejects"], ["Peter", "Blackburn"]],
                            "ner_tags": [["B-ORG", "O"], ["B-PER", "I-PER"]]}
    assert report.format == "conll" and "2 sentences, 4 words" in report.notes[0]
    with pytest.raises(DataError, match="over the row cap"):
        load_conll(src, tmp_path / "y.arrow", Limits(rows=1))
    src.write_text("EU B-ORG\nrejects\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: 'rejects' has a word but no tag"):
        load_conll(src, tmp_path / "z.arrow")


def test_the_shipped_conll_sample_prepares(settings):
    p = prepare(cfg(dataset="ner-sample"), settings, "")
    assert (p.train_rows, p.eval_rows) == (54, 6)
    assert p.labels == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-MISC", "I-ORG", "I-PER"]
    first = DatasetStore(settings.datasets_dir).load("ner-sample")["train"][0]
    assert first == {"tokens": ["Angela", "Merkel", "visited", "Paris", "on", "Monday", "."],
                     "ner_tags": ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O"]}


# ---- a run end to end ------------------------------------------------------------------------------------

def test_a_tiny_run_completes_stores_entity_metrics_and_tags_a_sentence(settings, model_dir):
    save(settings, ner_rows(40))
    jobs = JobManager(settings=settings)
    try:
        run_id = jobs.submit(cfg(str(model_dir)))
        assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
    finally:
        jobs.shutdown()
    rec = jobs.store.get(run_id)
    fm = rec.final_metrics
    assert rec.plan["labels"] == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    # the all-O baseline, by hand from the run's own eval rows (nothing is truncated at 32 tokens)
    ev = prepare(cfg(str(model_dir)), settings, "").eval
    words = [t for row in ev["tags"] for t in row]
    assert fm["all_o_accuracy"] == pytest.approx(words.count(0) / len(words))
    assert {"precision", "recall", "f1", "accuracy", "per_entity", "loss"} <= set(fm)
    assert {r["entity"] for r in fm["per_entity"]} <= {"LOC", "PER"}
    evals = jobs.store.metrics(run_id, "eval")
    assert evals and "eval_f1" in evals[-1]
    # 20 steps on a toy grammar: the tiny model learns it, beating the all-O baseline
    assert fm["f1"] > 0.5 and fm["accuracy"] > fm["all_o_accuracy"]
    text = "Bob visited New York ."
    spans = predict(rec, text)
    assert [(s["entity"], s["text"], s["start"], s["end"]) for s in spans] == [("PER", "Bob", 0, 3),
                                                                             ("LOC", "New York", 12, 20)]
    # the same spans as transformers' own pipeline with the code the results page shows
    from transformers import pipeline

    tagger = pipeline("token-classification", model=rec.model_dir, aggregation_strategy="first", device="cpu")
    assert [(d["entity_group"], d["start"], d["end"]) for d in tagger(text)] == \
        [(s["entity"], s["start"], s["end"]) for s in spans]
    assert predict(rec, ["alice", "met", "dave"])[0] | {"score": 0} == {"entity": "PER", "text": "alice",
                                                                        "start": 0, "end": 5, "score": 0}
    script = export_script(TrainingConfig.from_dict(rec.config), settings, run_id, rec.plan["labels"], 10)
    ast.parse(script)
    assert "DataCollatorForTokenClassification" in script and "def entity_scores" in script
    # the evaluation split in one go: each sentence tagged as try-it tags it, and a throughput
    from core.training.token_classification import batch_tag

    rows, per_s = batch_tag(rec, ev["tokens"], limit=3)
    assert len(rows) == min(3, len(ev)) and per_s > 0
    for row, words in zip(rows, ev["tokens"], strict=False):
        assert row["sentence"] == " ".join(words)
        assert row["entities"] == " · ".join(f"{e['text']} ({e['entity']})" for e in predict(rec, words))
