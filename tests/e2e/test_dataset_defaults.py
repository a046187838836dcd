"""Datasets page defaults follow the data in hand and no click is lost (#14), in a real browser.

A gapminder-like file (country, continent, year, lifeExp, pop, gdpPercap, iso_alpha, iso_num) is the
data: its label is the continent (5 classes), not the country (142), it has no `text` column, and its
statistics have no "None". Each screen is left in test-artifacts/e2e.
"""
import random
import subprocess
import sys
import uuid

import pytest

from tests.e2e.conftest import errors_on, open_page, settle, shot

pytestmark = pytest.mark.e2e
CONTINENTS = ["Africa", "Americas", "Asia", "Europe", "Oceania"]
# the visible cells of every st.dataframe (glide draws a canvas and mirrors the cells in an a11y table)
CELLS_JS = """() => [...document.querySelectorAll('[data-testid=stDataFrame] table [role=gridcell]')]
    .map(e => e.innerText.trim())"""


def gapminder_csv(path, countries: int = 142, years: int = 12):
    """1,704 rows like plotly's gapminder; returns the frame."""
    import pandas as pd

    rnd = random.Random(7)
    rows = [{"country": f"Country {c:03d}", "continent": CONTINENTS[c % 5], "year": 1952 + 5 * y,
             "lifeExp": round(30 + rnd.random() * 50, 3), "pop": 100_000 + 1_000 * c + y,
             "gdpPercap": round(rnd.random() * 40_000, 4), "iso_alpha": f"C{c:02d}"[:3], "iso_num": 4 + c}
            for c in range(countries) for y in range(years)]
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    return df


def upload(page, csv, name: str) -> None:
    """Upload through the Load tab's file input and press Load and save once (saved as the file's stem)."""
    page.get_by_text("Load a dataset", exact=True).click()
    page.locator("[data-testid=stFileUploaderDropzoneInput]").first.set_input_files(str(csv))
    page.get_by_text(csv.name).first.wait_for(timeout=30_000)
    # the server has the file once a run names it: "Save as" offers the file's stem
    page.locator(f"input[placeholder='{csv.stem}']").wait_for(timeout=60_000)
    settle(page)
    page.get_by_role("button", name="Load and save").click()
    page.get_by_text(f"Saved {name} v1", exact=False).wait_for(timeout=60_000)
    settle(page)


def saved(server, name: str, df):
    """The frame saved straight into the server's store (as an upload would) and picked on the next run."""
    import datasets

    from core.data import DatasetStore

    return DatasetStore(server.workspace / "datasets").save(datasets.Dataset.from_pandas(df), name, "test")


def pick(page, label: str) -> None:
    page.get_by_role("combobox", name="Dataset", exact=True).click()
    page.get_by_role("option", name=label, exact=False).first.click()
    settle(page)


def test_label_column_of_an_uploaded_file_is_guessed_from_its_values_and_says_why(server, page, tmp_path):
    name = f"gap-{uuid.uuid4().hex[:6]}"
    csv = tmp_path / f"{name}.csv"
    gapminder_csv(csv)
    open_page(page, server, "dataset_browser")
    upload(page, csv, name)
    page.get_by_text("1,704 rows in train · 8 columns", exact=False).wait_for(timeout=30_000)
    page.get_by_role("tab", name="Statistics").click()
    assert page.get_by_role("combobox", name="Label column", exact=True).input_value() == "continent"
    why = page.get_by_text("label column: continent — 5 classes over 1,704 rows", exact=False)
    why.wait_for(timeout=30_000)
    assert "country has 142" in why.inner_text()
    assert page.get_by_role("combobox", name="Text column", exact=True).input_value() == "country"
    page.get_by_text("text column: country — the longest texts", exact=False).wait_for(timeout=30_000)
    bars = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(g => g.data && g.data[0])
        .filter(d => d && d.type === 'bar').map(d => Object.fromEntries(d.x.map((x, i) => [x, d.y[i]])))""")
    assert {c: 12 * sum(1 for i in range(142) if i % 5 == k) for k, c in enumerate(CONTINENTS)} in bars
    assert errors_on(page) == []
    shot(page, "datasets-label-guess-gapminder")


def test_statistics_show_a_dash_never_none(server, page):
    open_page(page, server, "dataset_browser")  # the drug-review sample: a ClassLabel has no min / max / mean
    pick(page, "drug-reviews v1 ")
    page.get_by_role("tab", name="Statistics").click()
    page.wait_for_function(f"() => ({CELLS_JS})().includes('useful_count')", timeout=30_000)
    cells = page.evaluate(CELLS_JS)
    assert "class label (3)" in cells and "—" in cells
    assert not {"None", "nan", "NaN", "null"} & set(cells), cells
    shot(page, "datasets-statistics-dash")


def test_default_filter_uses_a_real_column_of_the_file(server, page, tmp_path):
    from core.data import default_formula

    df = gapminder_csv(tmp_path / "g.csv")
    ref = saved(server, f"gapf-{uuid.uuid4().hex[:6]}", df)
    open_page(page, server, "dataset_browser")
    pick(page, ref.label)
    page.get_by_role("tab", name="Shape").click()
    expected = default_formula(__import__("datasets").Dataset.from_pandas(df))
    page.wait_for_function("(v) => [...document.querySelectorAll('input')].some(e => e.getAttribute('aria-label')"
                           " === 'Formula over the columns' && e.value !== '')", timeout=30_000)
    formula = page.get_by_label("Formula over the columns", exact=True).input_value()
    assert formula == expected
    column, threshold = formula.split(" > ")
    assert column == "lifeExp" and 30 < float(threshold) < 80  # a number column, compared with its median
    page.get_by_role("button", name="Apply", exact=True).click()
    kept = int((df.lifeExp > float(threshold)).sum())
    page.get_by_text(f"Result · train {kept:,} rows", exact=False).wait_for(timeout=60_000)
    assert 0 < kept < len(df)
    assert errors_on(page) == []
    shot(page, "datasets-default-filter")


def test_shown_code_runs_in_a_plain_python_and_gives_the_pages_result(server, page, tmp_path):
    import datasets

    from core.data import DatasetStore

    df = gapminder_csv(tmp_path / "g.csv", countries=20, years=3)
    ref = saved(server, f"gapc-{uuid.uuid4().hex[:6]}", df)
    open_page(page, server, "dataset_browser")
    pick(page, ref.label)
    page.get_by_role("tab", name="Shape").click()
    page.get_by_role("button", name="Apply", exact=True).click()  # the default filter
    page.get_by_text("ds = ds.filter(lambda r:", exact=False).wait_for(timeout=60_000)
    settle(page)
    script = page.locator("[data-testid=stCode]").filter(has_text="load_from_disk").first.inner_text()
    assert "core" not in script and "store." not in script
    page.get_by_role("button", name="Save as a new version").click()
    page.get_by_text(f"Saved {ref.name} v2", exact=False).wait_for(timeout=60_000)
    app = DatasetStore(server.workspace / "datasets").load(ref.name, 2)
    out = tmp_path / "out"
    (tmp_path / "shape.py").write_text(script + f"\nds.save_to_disk({str(out)!r})\n")
    run = subprocess.run([sys.executable, "-I", str(tmp_path / "shape.py")], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    got = datasets.load_from_disk(str(out))
    assert got["train"].to_list() == app["train"].to_list() and 0 < len(got["train"]) < len(df)
    assert errors_on(page) == []
    shot(page, "datasets-show-code-saved")


def test_a_click_on_load_and_save_survives_a_rerun_that_starts_over(server, page, tmp_path):
    """The click and another widget's change arrive together: the second rerun starts the script over."""
    from core.data import DatasetStore

    name = f"click-{uuid.uuid4().hex[:6]}"
    csv = tmp_path / f"{name}.csv"
    gapminder_csv(csv, countries=10, years=2)
    open_page(page, server, "dataset_browser")
    page.get_by_text("Load a dataset", exact=True).click()
    page.locator("[data-testid=stFileUploaderDropzoneInput]").first.set_input_files(str(csv))
    page.get_by_text(csv.name).first.wait_for(timeout=30_000)
    # the server has the file once a run names it: "Save as" offers the file's stem
    page.locator(f"input[placeholder='{csv.stem}']").wait_for(timeout=60_000)
    settle(page)
    store = DatasetStore(server.workspace / "datasets")
    # the click and, in the same instant, two more reruns that start the script over (toggling "Fix column
    # names" twice leaves it as it was)
    page.evaluate("""() => {
        const button = [...document.querySelectorAll('button')].find(b => b.innerText.includes('Load and save'));
        const other = [...document.querySelectorAll('[data-testid=stCheckbox] input')]
            .find(e => e.closest('[data-testid=stCheckbox]').innerText.includes('Fix column names'));
        button.click(); other.click(); other.click();
    }""")
    page.get_by_text(f"Saved {name} v1", exact=False).wait_for(timeout=60_000)
    settle(page)
    assert [r.version for r in store.list() if r.name == name] == [1]  # once, not lost, not twice
    page.get_by_text("20 rows in train · 8 columns", exact=False).wait_for(timeout=30_000)
    assert errors_on(page) == []
    shot(page, "datasets-one-click-load")
