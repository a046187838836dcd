"""core.data.colstats against pandas (#18): describe(), str.len(), value_counts(), nunique() on csv-spectrum files
and generated frames; histograms against numpy's; token lengths against the tokenizer; truncation by hand.

Tolerance: counts, nulls, distinct (exact mode), min/max and top-value counts are equal; mean, std and quantiles
agree to a relative 1e-9 (DuckDB and pandas sum in a different order).
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data import DataError, class_rows, column_stats, label_counts, load_file, token_length_profile
from core.data import colstats as C

SPECTRUM = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "csv-spectrum"
CASES = sorted(p.stem for p in (SPECTRUM / "csvs").glob("*.csv")) if SPECTRUM.is_dir() else []
REL = 1e-9


def _check_against_pandas(stats, df: pd.DataFrame) -> None:
    """Every column's figures equal pandas' on the same values (NaN and None are missing to both)."""
    assert [s.name for s in stats] == list(df.columns)
    for s in stats:
        col = df[s.name]
        assert (s.count, s.nulls) == (int(col.count()), int(col.isna().sum())), s.name
        if s.kind in ("number", "text"):
            values = col.astype("float64") if s.kind == "number" else col.dropna().str.len().astype("float64")
            if s.count == 0:
                assert s.mean is None and s.histogram is None
                continue
            d = values.describe()
            assert (s.min, s.max) == (d["min"], d["max"]), s.name
            assert s.mean == pytest.approx(d["mean"], rel=REL), s.name
            if s.count > 1:
                assert s.std == pytest.approx(d["std"], rel=REL, abs=1e-12), s.name
            for q in C.QUANTILES:
                assert s.quantiles[q] == pytest.approx(values.quantile(q), rel=REL, abs=1e-12), (s.name, q)
            h = s.histogram
            assert h.total == s.count and len(h.edges) == len(h.counts) + 1
            # numpy's histogram over the same edges (its last bin is closed too) gives the same counts
            assert h.counts == np.histogram(values.dropna(), bins=h.edges)[0].tolist(), s.name
        if s.distinct is not None and not s.distinct_approx:
            assert s.distinct == col.nunique(), s.name
        if s.kind in ("text", "class", "bool"):
            counts = col.value_counts()
            for value, n in s.top:
                key = {"True": True, "False": False}.get(value, value) if s.kind == "bool" else value
                assert counts[key] == n, (s.name, value)
            assert s.top[0][1] == counts.iloc[0] if len(counts) else s.top == []


@pytest.mark.skipif(not SPECTRUM.is_dir(), reason=f"csv-spectrum not found at {SPECTRUM}")
@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("empty")])
def test_csv_spectrum_stats_equal_pandas(case, tmp_path):
    ds = load_file(SPECTRUM / "csvs" / f"{case}.csv", cache_dir=tmp_path)
    _check_against_pandas(column_stats(ds), ds.to_pandas())


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    n = 5_000
    words = ["naïve", "café", "東京", "👍🏽", "the", "a", "tokenizer", "x" * 30]
    df = pd.DataFrame({
        "x": rng.normal(3.0, 2.0, n),
        "i": rng.integers(-5, 500, n),
        "small": rng.integers(1, 11, n),
        "text": [" ".join(rng.choice(words, k)) for k in rng.integers(0, 25, n)],
        "label": rng.choice(["pos", "neg", "neu"], n, p=[0.6, 0.3, 0.1]),
        "flag": rng.random(n) < 0.3,
    })
    df["x"] = df["x"].where(rng.random(n) > 0.1)  # NaN: missing to pandas, so to the statistics
    df["text"] = df["text"].where(rng.random(n) > 0.05, None)
    df["label"] = df["label"].where(rng.random(n) > 0.02, None)
    return df


def test_generated_frame_stats_equal_pandas(frame):
    import datasets

    ds = datasets.Dataset.from_pandas(frame, preserve_index=False)
    stats = column_stats(ds)
    _check_against_pandas(stats, frame)
    by = {s.name: s for s in stats}
    assert [s.kind for s in stats] == ["number", "number", "number", "text", "text", "bool"]
    assert by["small"].histogram.edges == [k - 0.5 for k in range(1, 12)]  # one bin per whole number 1..10
    assert [v for v, _ in by["label"].top] == frame["label"].value_counts().index.tolist()


def test_class_labels_select_and_approximate_distinct(frame, monkeypatch):
    import datasets

    ds = datasets.Dataset.from_pandas(frame[["label", "i"]].fillna({"label": "neu"}), preserve_index=False)
    enc = ds.class_encode_column("label")
    lab = {s.name: s for s in column_stats(enc)}["label"]
    assert lab.kind == "class" and dict(lab.top) == frame["label"].fillna("neu").value_counts().to_dict()
    assert label_counts(enc, "label") == frame["label"].fillna("neu").value_counts().to_dict()
    # a select/shuffle's indices mapping: the statistics are those of the rows it selects
    picked = enc.shuffle(seed=1).select(range(1_000))
    _check_against_pandas([s for s in column_stats(picked) if s.name == "i"], picked.to_pandas()[["i"]])
    # a "large" table (from 10 rows on): text and real numbers with many values (from 10 on) get DuckDB's
    # HyperLogLog (within a few %) and top texts from a sample, counted exactly; whole numbers, classes and
    # true/false stay exact
    monkeypatch.setattr(C, "EXACT_DISTINCT_ROWS", 10)
    big = datasets.Dataset.from_pandas(frame[["x", "i", "label", "flag"]], preserve_index=False)
    few = {s.name: s for s in column_stats(big)}  # fewer distinct values than FEW_VALUES: counted exactly
    assert [few[c].distinct_approx for c in ("x", "label")] == [False, False]
    assert (few["x"].distinct, dict(few["label"].top)) == (frame["x"].nunique(), frame["label"].value_counts().to_dict())
    monkeypatch.setattr(C, "FEW_VALUES", 2)
    by = {s.name: s for s in column_stats(big)}
    assert by["x"].distinct_approx and by["x"].distinct == pytest.approx(frame["x"].nunique(), rel=0.05)
    assert by["label"].distinct_approx and dict(by["label"].top) == frame["label"].value_counts().to_dict()
    assert (by["i"].distinct_approx, by["i"].distinct) == (False, frame["i"].nunique())
    assert not by["flag"].distinct_approx
    assert dict(by["flag"].top) == {str(k): v for k, v in frame["flag"].value_counts().items()}
    lab = {s.name: s for s in column_stats(enc)}["label"]
    assert not lab.distinct_approx and dict(lab.top) == frame["label"].fillna("neu").value_counts().to_dict()


def test_class_rows_equal_pandas_masks(frame):
    import datasets

    ds = datasets.Dataset.from_pandas(frame, preserve_index=False)
    assert class_rows(ds, "label", "neg").tolist() == np.flatnonzero(frame["label"] == "neg").tolist()
    assert class_rows(ds, "label", "(null)").tolist() == np.flatnonzero(frame["label"].isna()).tolist()
    assert class_rows(ds, "flag", "True").tolist() == np.flatnonzero(frame["flag"]).tolist()
    enc = datasets.Dataset.from_dict({"y": ["b", "a", "b"]}).class_encode_column("y")
    assert class_rows(enc, "y", "b").tolist() == [0, 2]
    with pytest.raises(DataError, match="no class 'c'"):
        class_rows(enc, "y", "c")


def test_empty_and_all_null_columns():
    import datasets

    ds = datasets.Dataset.from_dict({"x": [None, None], "t": [None, "ab"]},
                                    features=datasets.Features({"x": datasets.Value("float64"),
                                                                "t": datasets.Value("string")}))
    x, t = column_stats(ds)
    assert (x.count, x.nulls, x.mean, x.histogram) == (0, 2, None, None)
    assert (t.count, t.nulls, t.min, t.histogram.counts, t.top) == (1, 1, 2, [1], [("ab", 1)])
    assert column_stats(ds.select([]))[0].count == 0


@pytest.fixture(scope="module")
def bert():
    from core.assets import load_tokenizer

    return load_tokenizer("bert-wordpiece-uncased")


def test_token_lengths_equal_the_tokenizers(bert):
    import datasets

    texts = [f"review {i}: " + "unaffable " * (i % 17) for i in range(300)]
    ds = datasets.Dataset.from_dict({"text": texts[:40] + [None], "n": list(range(41))})
    prof = token_length_profile(ds, "text", bert)
    assert not prof.sampled and prof.rows == 40
    assert prof.lengths.tolist() == [len(bert(t)["input_ids"]) for t in texts[:40]]  # [CLS] .. [SEP] counted
    big = datasets.Dataset.from_dict({"text": texts})
    prof = token_length_profile(big, "text", bert, sample=50, seed=3)
    idx = np.sort(np.random.default_rng(3).choice(300, 50, replace=False))  # the documented draw
    assert prof.sampled and prof.rows == 300 and len(prof.lengths) == 50
    assert prof.lengths.tolist() == [len(bert(texts[i])["input_ids"]) for i in idx]
    assert prof.histogram().total == 50
    with pytest.raises(DataError, match="not text"):
        token_length_profile(ds, "n", bert)


def test_truncated_share_by_hand():
    prof = C.TokenLengths(np.array([5, 7, 9, 12, 8, 8]), rows=6, sampled=False)
    assert prof.truncated_share(8) == 2 / 6  # 9 and 12 are cut; 8 fits exactly
    assert prof.truncated_share(4) == 1.0 and prof.truncated_share(12) == 0.0
    h = prof.histogram(bins=4)  # 5..12 in whole-number bins of 2
    assert h.edges == [4.5, 6.5, 8.5, 10.5, 12.5] and h.counts == [1, 3, 1, 1]


def test_take_sorted_equals_arrow_take_across_chunks():
    import pyarrow as pa

    col = pa.chunked_array([["a", "b", None], [], ["c"], ["d", "e", "f", "g"]])
    rows = np.array([0, 2, 3, 4, 7])
    assert C.take_sorted(col, rows).to_pylist() == col.take(pa.array(rows)).to_pylist() == ["a", None, "c", "d", "g"]
