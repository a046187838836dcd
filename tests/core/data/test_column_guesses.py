"""Issue 14: defaults follow the data in hand — text / label columns and the filter formula come from types
and cardinality, with the reason said; the shaping code runs in a plain Python with only `datasets`."""
import random
import subprocess
import sys

import datasets
import pytest

from core.data import DatasetStore, Op, apply, default_formula, guess_columns, history_code, python_formula


def gapminder(rows_per_country: int = 12, countries: int = 40) -> datasets.Dataset:
    """Like plotly's gapminder: country (many), continent (5), year (12), numbers, iso codes."""
    rnd = random.Random(0)
    continents = ["Africa", "Americas", "Asia", "Europe", "Oceania"]
    rows = []
    for c in range(countries):
        for y in range(rows_per_country):
            rows.append({"country": f"Country {c:03d}", "continent": continents[c % 5], "year": 1952 + 5 * y,
                         "lifeExp": round(40 + rnd.random() * 40, 3), "pop": 10_000 + c * 1_000 + y,
                         "gdpPercap": rnd.random() * 30_000, "iso_alpha": f"C{c:02d}", "iso_num": 4 + c})
    return datasets.Dataset.from_list(rows)


def test_gapminder_label_is_the_continent_and_the_reason_names_the_country():
    g = guess_columns(gapminder())
    assert g.label == "continent"
    assert g.label_why.startswith("label column: continent — 5 classes over 480 rows")
    assert "country has 40" in g.label_why  # the runner-up is named with its count
    assert g.text == "country" and "characters on average" in g.text_why
    formula = default_formula(gapminder(), g)
    assert formula.startswith("lifeExp > ")  # a numeric comparison: the texts are short
    assert 40 <= float(formula.split("> ")[1]) <= 80


@pytest.mark.parametrize("columns, label, why", [
    # a ClassLabel column wins over everything
    ({"t": ["a"] * 4, "y": datasets.ClassLabel(names=["n", "p"])}, "y", "a ClassLabel column"),
    # a usual name wins among candidates
    ({"flag": [True, False] * 10, "label": ["pos", "neg", "neu", "pos"] * 5}, "label", "3 classes"),
    # an id-like column (by name, or unique per row) is never a label
    ({"user_id": [1, 2] * 10, "grade": [1, 2, 3, 4] * 5}, "grade", "user_id is an id"),
    ({"code": [f"c{i}" for i in range(20)], "ok": [True, False] * 10}, "ok", "code is unique per row"),
    # long free text is never a label, even with few distinct values
    ({"review": ["a long review that goes on and on about the product " * 2, "short but long enough " * 4] * 10,
      "stars": [1, 5] * 10}, "stars", "review is free text"),
    # text before true/false before integers
    ({"year": [2000, 2001] * 10, "kind": ["x", "y"] * 10}, "kind", "year has 2"),
])
def test_label_rules(columns, label, why):
    if "y" in columns and isinstance(columns["y"], datasets.ClassLabel):
        ds = datasets.Dataset.from_dict({"t": columns["t"], "y": [0, 1, 1, 0]},
                                        features=datasets.Features({"t": datasets.Value("string"), "y": columns["y"]}))
    else:
        ds = datasets.Dataset.from_dict(columns)
    g = guess_columns(ds)
    assert g.label == label
    assert why in g.label_why


def test_no_label_says_why():
    ds = datasets.Dataset.from_dict({"x": [0.5, 1.5] * 10, "name": [f"n{i}" for i in range(20)]})
    g = guess_columns(ds)
    assert g.label is None and g.label_why.startswith("no column looks like a label")
    assert "name is unique per row" in g.label_why


@pytest.mark.parametrize("columns, formula", [
    ({"text": ["word " * n for n in range(1, 41)]}, "len(text) > 100"),  # free text: its median length
    ({"body": ["word " * n for n in range(1, 41)], "score": [1.0] * 40}, "len(body) > 100"),
    ({"name": ["ab", "abc", "abcd"] * 4, "price": [1.0, 2.0, 3.0] * 4}, "price > 2"),  # short text: a number
    ({"name": ["ab", "abc", "abcd"] * 4}, "name == 'ab'"),  # the only text is a label: one class
    ({"code": ["x" * k for k in range(1, 13)]}, "len(code) > 6"),  # short text, no number: its length
    ({"word": ["aa", "bb", "cc", "dd"]}, "len(word) >= 2"),  # never a threshold above every row
    ({"flag": [True, False, True]}, "flag == True"),
    ({"n": [1, None, 5, 7]}, "n is not None and n > 5"),  # nulls are guarded, not a failing row
])
def test_default_formula_uses_a_real_column_of_the_right_type(columns, formula, tmp_path):
    ds = datasets.Dataset.from_dict(columns)
    assert default_formula(ds) == formula
    kept = apply(datasets.DatasetDict({"train": ds}), Op("filter", {"formula": formula}), scratch=tmp_path)
    assert 0 < kept["train"].num_rows <= len(ds)


def test_drug_reviews_guesses_are_kept(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    store.ensure_sample()  # on its own, not relying on an earlier test having registered it
    tr = store.load("drug-reviews")["train"]
    g = guess_columns(tr)
    assert (g.text, g.label) == ("text", "label")
    assert default_formula(tr, g).startswith("len(text) > ")


def test_formula_as_plain_python():
    assert python_formula("len(text) > 5 and label == 'pos'") == "len(r['text']) > 5 and r['label'] == 'pos'"
    assert python_formula("text.lower().startswith('a')  ") == "r['text'].lower().startswith('a')"


def test_shown_code_runs_in_an_isolated_python_and_gives_the_apps_result(tmp_path):
    """The Shape tab's code, run by `python -I` (no repository, no Torch Lab), equals what `apply` made."""
    store = DatasetStore(tmp_path / "datasets")
    ds = gapminder(3, 10).add_column("text", [("<b>Big</b>  " if i % 4 else "") + f"Row {i} " + "x" * (i % 9)
                                              for i in range(30)])
    ref = store.save(datasets.DatasetDict({"train": ds, "test": ds.select(range(8))}), "gap", "test")
    other = store.save(datasets.DatasetDict({"train": ds.select(range(5))}), "more", "test")
    ops = [Op("filter", {"formula": "lifeExp > 45 and len(country) > 3"}),
           Op("map", {"preset": "strip_html", "columns": ["text"], "n": 0}),
           Op("map", {"preset": "collapse_whitespace", "columns": ["text"], "n": 0}),
           Op("concat", {"name": other.name, "version": other.version}),
           Op("drop_duplicates", {}), Op("class_label", {"column": "continent"}),
           Op("rename", {"old": "iso_num", "new": "number"}), Op("cast", {"column": "year", "dtype": "float64"}),
           Op("shuffle", {"seed": 3}), Op("select_rows", {"start": 1, "stop": 20}),
           Op("split", {"split": "train", "test_size": 0.25, "test_name": "validation", "seed": 1,
                        "stratify": None}),
           Op("select_columns", {"columns": ["text", "continent", "number", "year", "lifeExp"]})]
    dd = store.load(ref.name, ref.version)
    for op in ops:
        dd = apply(dd, op, scratch=tmp_path, store=store)
    script = history_code(ref.path / "data", ops, store, "gap v1")
    assert "core" not in script and "store." not in script
    out = tmp_path / "out"
    (tmp_path / "shape.py").write_text(
        "import importlib.util\nassert importlib.util.find_spec('core') is None  # no Torch Lab here\n"
        + script + f"\nds.save_to_disk({str(out)!r})\n")
    run = subprocess.run([sys.executable, "-I", str(tmp_path / "shape.py")], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    got = datasets.load_from_disk(str(out))
    assert list(got) == list(dd) == ["train", "validation", "test"]
    for split in dd:
        assert got[split].features == dd[split].features
        assert got[split].to_list() == dd[split].to_list() and len(dd[split]) > 0
