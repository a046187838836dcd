"""DatasetStore versions across processes, operations against plain `datasets` calls, browsing statistics."""
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from core.data import DataError, DatasetStore
from core.data import stats as datastats
from core.data.ops import Op, apply, code

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path):
    return DatasetStore(tmp_path / "datasets")


@pytest.fixture
def dd():
    ds = datasets.Dataset.from_dict({
        "text": ["<b>Good</b>  Pill", "bad", "bad", "  ", "OK &amp; fine", "meh"],
        "label": ["pos", "neg", "neg", None, "pos", "neu"],
        "n": [3, 1, 1, None, 5, 2],
    })
    return datasets.DatasetDict({"train": ds, "test": ds.select([0, 1])})


def test_versions_and_listing_seen_by_a_new_process(store, dd):
    r1 = store.save(dd, "reviews", "upload: r.csv")
    r2 = store.save(dd["train"], "reviews", "derived", history=["ds = ds.shuffle(seed=1)"])
    assert (r1.version, r2.version) == (1, 2) and r2.splits == {"train": 6} and r1.rows == 8
    assert [(r.name, r.version) for r in store.list()] == [("reviews", 2), ("reviews", 1)]
    assert store.load("reviews")["train"].to_list() == dd["train"].to_list()
    assert store.load("reviews", 1)["test"].to_list() == dd["test"].to_list()
    script = ("import sys; from core.data import DatasetStore; s = DatasetStore(sys.argv[1]); "
              "print([(r.name, r.version, r.rows, r.history) for r in s.list()]); "
              "s.save(s.load('reviews', 1), 'other', 'from child')")
    out = subprocess.run([sys.executable, "-c", script, str(store.root)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[('reviews', 2, 6, ['ds = ds.shuffle(seed=1)']), ('reviews', 1, 8, [])]"
    assert store.list()[0].name == "other" and store.load("other")["test"].num_rows == 2
    store.delete("reviews", 1)
    assert store.versions("reviews") == [2]
    with pytest.raises(DataError, match="no version 1"):
        store.load("reviews", 1)
    assert not [p for p in store.root.iterdir() if p.name.startswith((".tmp", ".trash"))]


def test_save_is_atomic_on_failure(store, dd, monkeypatch):
    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", boom)
    with pytest.raises(OSError):
        store.save(dd, "x", "s")
    assert store.list() == [] and not [p for p in store.root.iterdir() if p.name.startswith(".tmp")]


def test_sample_is_registered_once(store):
    ref = store.ensure_sample()
    assert ref.splits == {"train": 600, "test": 379}
    assert ref.columns == ["text", "label", "drug", "condition", "useful_count"]
    assert isinstance(store.load("drug-reviews")["train"].features["label"], datasets.ClassLabel)
    assert store.ensure_sample().version == 1 and store.versions("drug-reviews") == [1]


def test_operations_match_plain_datasets_calls(dd, tmp_path):
    def run(op, data=dd):
        return apply(data, op, scratch=tmp_path)

    tr = dd["train"]
    assert run(Op("select_columns", {"columns": ["text"]}))["train"].to_list() == tr.select_columns(["text"]).to_list()
    assert run(Op("select_rows", {"start": 1, "stop": 4}))["train"].to_list() == tr.select(range(1, 4)).to_list()
    assert run(Op("shuffle", {"seed": 7}))["train"].to_list() == tr.shuffle(seed=7).to_list()
    assert run(Op("rename", {"old": "n", "new": "count"}))["train"].to_list() == tr.rename_column("n", "count").to_list()
    got = run(Op("cast", {"column": "n", "dtype": "float64"}))["train"]
    ref = tr.cast_column("n", datasets.Value("float64"))
    assert got.features == ref.features and got.to_list() == ref.to_list()
    got = run(Op("class_label", {"column": "label"}))["train"]
    ref = tr.class_encode_column("label")
    assert got.features["label"] == ref.features["label"] and got.to_list() == ref.to_list()
    got = run(Op("map", {"preset": "strip_html", "columns": ["text"]}))
    got = run(Op("map", {"preset": "collapse_whitespace", "columns": ["text"]}), got)
    got = run(Op("map", {"preset": "lowercase", "columns": ["text"]}), got)
    assert got["train"]["text"] == ["good pill", "bad", "bad", "", "ok & fine", "meh"]
    assert run(Op("map", {"preset": "truncate", "n": 2, "columns": ["text"]}))["test"]["text"] == ["<b", "ba"]
    assert run(Op("drop_duplicates", {}))["train"]["text"] == ["<b>Good</b>  Pill", "bad", "  ", "OK &amp; fine", "meh"]
    assert run(Op("drop_empty", {}))["train"].num_rows == 5
    enc = run(Op("class_label", {"column": "label"}))
    got = run(Op("split", {"split": "train", "test_size": 2, "seed": 3, "stratify": None, "test_name": "validation"}),
              enc)
    ref = enc["train"].train_test_split(test_size=2, seed=3)
    assert list(got) == ["train", "validation", "test"]
    assert got["train"].to_list() == ref["train"].to_list() and got["validation"].to_list() == ref["test"].to_list()
    assert list(code(Op("shuffle", {"seed": 7})).split()) == ["ds", "=", "ds.shuffle(seed=7)"]


def test_concat_and_bad_arguments(dd, tmp_path, store):
    store.save(dd, "more", "s")
    got = apply(dd, Op("concat", {"name": "more", "version": 1}), scratch=tmp_path, store=store)
    assert got["train"].to_list() == datasets.concatenate_datasets([dd["train"], dd["train"]]).to_list()
    store.save(dd["train"].select_columns(["text"]), "narrow", "s")
    with pytest.raises(DataError, match="columns differ"):
        apply(dd, Op("concat", {"name": "narrow", "version": 1}), scratch=tmp_path, store=store)
    with pytest.raises(DataError, match="no column 'nope'"):
        apply(dd, Op("rename", {"old": "nope", "new": "x"}), scratch=tmp_path)
    with pytest.raises(DataError, match="stratifying needs 'label' to be a ClassLabel"):
        apply(dd, Op("split", {"split": "train", "test_size": 0.5, "seed": 0, "stratify": "label",
                                   "test_name": "validation"}), scratch=tmp_path)
    with pytest.raises(DataError, match="already a 'test' split"):
        apply(dd, Op("split", {"split": "train", "test_size": 0.5, "seed": 0}), scratch=tmp_path)


def test_filter_uses_the_safe_expression_language(dd, tmp_path):
    pytest.importorskip("core.expr")
    from core import expr

    if not hasattr(expr, "compile_expression"):
        pytest.skip("core.expr.compile_expression not there yet")
    got = apply(dd, Op("filter", {"formula": "n >= 2 and label == 'pos'"}), scratch=tmp_path)
    assert got["train"]["text"] == ["<b>Good</b>  Pill", "OK &amp; fine"] and got["test"].num_rows == 1
    with pytest.raises(DataError, match="filter formula"):
        apply(dd, Op("filter", {"formula": "__import__('os').system('true')"}), scratch=tmp_path)


def test_browse_statistics_against_hand_counts(dd):
    tr = dd["train"]
    stats = {s.name: s for s in datastats.column_stats(tr)}
    assert (stats["n"].nulls, stats["n"].distinct, stats["n"].min, stats["n"].max, stats["n"].mean) == (1, 4, 1, 5, 2.4)
    text = stats["text"]  # lengths 17, 3, 3, 2, 13, 3: binned, not listed
    assert (text.min, text.max, text.histogram.total, text.quantiles[0.5]) == (2, 17, 6, 3) and stats["label"].nulls == 1
    assert datastats.label_counts(tr, "label") == {"neg": 2, "pos": 2, "(null)": 1, "neu": 1}
    assert datastats.search(tr, "text", "BAD") == ([1, 2], 2)
    page = datastats.page(tr.class_encode_column("label"), 4, 100)
    assert list(page.index) == [4, 5] and list(page["label"]) == ["pos", "neu"]
    assert datastats.guess_label_column(tr) == "label" and datastats.text_columns(tr)[0] == "text"
    with pytest.raises(DataError, match="rows are 0 to 5"):
        datastats.row(tr, 6)


def test_token_lengths_match_the_tokenizer(dd):
    from core.assets import load_tokenizer

    tok = load_tokenizer("bert-wordpiece-uncased")
    lengths = datastats.token_lengths(dd["train"], "text", tok, limit=3)
    assert lengths == [len(tok(t, add_special_tokens=False)["input_ids"]) for t in dd["train"]["text"][:3]]
