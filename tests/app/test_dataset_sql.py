"""The SQL tab of the Datasets page (issue 18): an example over the real columns, results against pandas,
paging, errors with DuckDB's position beside the box, refusals, and saving a result as a new version."""
import uuid

from core.data import DatasetStore, sql_code


def sql_tab(at):
    return next(t for t in at.tabs if t.label == "SQL")


def run(at, sql):
    at.text_area(key="sql_query").set_value(sql)
    at.button(key="sql_run").click().run()
    assert not at.exception, at.exception
    return sql_tab(at)


def test_sql_tab_runs_pages_refuses_and_saves(open_page):
    at = open_page("pages/dataset_browser.py", timeout=180)
    sample = next(o for o in at.selectbox(key="ds_pick").options if o.startswith("drug-reviews v1 "))
    at.selectbox(key="ds_pick").set_value(sample).run()
    assert not at.exception
    store = DatasetStore.default()
    dd = store.load("drug-reviews", 1)
    train = dd["train"].to_pandas()
    train["label"] = [dd["train"].features["label"].int2str(int(i)) for i in train["label"]]

    # the example is built from this dataset's own columns, and runs
    example = at.text_area(key="sql_query").value
    assert '"label"' in example and '"text"' in example
    tab = run(at, example)
    got = tab.dataframe[0].value
    want = train["label"].value_counts()
    assert dict(zip(got["label"], got["n"], strict=True)) == want.to_dict()

    # a GROUP BY against pandas
    tab = run(at, "SELECT drug, count(*) AS n, sum(useful_count) AS useful FROM data "
                  "GROUP BY drug ORDER BY n DESC, drug LIMIT 5")
    ref = (train.groupby("drug").agg(n=("drug", "size"), useful=("useful_count", "sum")).reset_index()
           .sort_values(["n", "drug"], ascending=[False, True]).head(5))
    got = tab.dataframe[0].value
    assert got["drug"].tolist() == ref["drug"].tolist() and got["n"].tolist() == ref["n"].tolist()
    assert [int(x) for x in got["useful"]] == ref["useful"].tolist()

    # paged like the browser: page 3 of the ordered texts is rows 200..299
    tab = run(at, "SELECT text, useful_count FROM train ORDER BY useful_count DESC, text")
    assert "600 rows" in " ".join(c.value for c in tab.caption)
    at.number_input(key="sql_page_no").set_value(3).run()
    assert not at.exception
    page = sql_tab(at).dataframe[0].value
    ordered = train.sort_values(["useful_count", "text"], ascending=[False, True])
    assert list(page.index) == list(range(200, 300))
    assert page["text"].tolist() == ordered["text"].iloc[200:300].tolist()

    # an error is shown beside the box with DuckDB's message and position, not a stack trace
    tab = run(at, "SELECT label,\n       nope FROM data")
    assert "line 2, column 8" in tab.error[0].value
    assert 'Referenced column "nope" not found' in tab.code[0].value and "Traceback" not in tab.code[0].value
    tab = run(at, "COPY train TO '/tmp/torchlab-apptest.csv'")
    assert "only read-only SELECT" in tab.code[0].value
    tab = run(at, "SELECT * FROM read_csv('/etc/passwd')")
    assert "file system operations are disabled" in tab.code[0].value

    # save the whole result as a new version: the SQL goes into its history, the page opens it
    name = f"apptest-sql-{uuid.uuid4().hex[:6]}"
    sql = "SELECT text, label FROM train WHERE useful_count > 50"
    run(at, sql)
    at.text_input(key="sql_save_name").set_value(name)
    at.button(key="sql_save").click().run()
    assert not at.exception, at.exception
    try:
        saved = store.ref(name)
        assert saved.rows == int((train["useful_count"] > 50).sum()) and saved.history[-1] == sql_code(sql)
        assert at.selectbox(key="ds_pick").value == saved.label
        assert f"Saved {saved.label}" in sql_tab(at).success[0].value
        assert store.load(name)["train"]["text"] == train[train["useful_count"] > 50]["text"].tolist()
    finally:
        for v in store.versions(name):  # leave the shared test workspace as it was
            store.delete(name, v)
