"""Real-browser journeys: what a person does on each page, in Debian's chromium against `streamlit run`.

One server (the session `server` fixture) serves every journey; its workspace holds a tiny BERT and
a tiny dataset so a fine-tuning run takes seconds. Each journey leaves screenshots in test-artifacts/e2e.
"""
import re

import pytest

from tests.e2e.conftest import (
    PAGES,
    chart_points,
    choose,
    errors_on,
    fill,
    launch_run,
    open_page,
    progress_text,
    settle,
    shot,
    step_of,
    wait_points_above,
    wait_progress,
)

pytestmark = pytest.mark.e2e

# row 0 is hostile on purpose: the page must show it as text, never as an element
CSV_ROWS = [("<img src=x onerror=window.__xss=1>", "neg"), ("unaffable", "pos"), ("great film", "pos"),
            ("a good movie", "pos"), ("the film was very bad", "neg"), ("loved it", "pos")]
SENTENCE = "Transformers are amazing"


def metrics(page) -> dict[str, str]:
    """label -> value of every st.metric on the page."""
    out = {}
    for m in page.locator("[data-testid=stMetric]").all():
        out[m.locator("[data-testid=stMetricLabel]").inner_text().strip()] = \
            m.locator("[data-testid=stMetricValue]").inner_text().strip()
    return out


def test_journey_1_every_page_from_the_navigation(server, page):
    open_page(page, server, "")
    nav = page.locator("[data-testid=stSidebarNav]")
    seen = []
    for path, title in PAGES.items():
        title = "Home" if path == "" else title
        nav.get_by_role("link", name=title, exact=True).click()
        heading = PAGES[path]
        page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=120_000)
        settle(page, 120_000)
        assert page.url.rstrip("/").endswith(path), (page.url, path)
        assert errors_on(page) == [], f"{title}: {errors_on(page)}"
        shot(page, f"journey1-{path or 'home'}")
        seen.append(title)
    assert len(seen) == len(PAGES)


def test_journey_2_upload_a_csv_see_rows_labels_and_token_lengths(server, page, tmp_path):
    from core.assets import load_tokenizer

    csv = tmp_path / "journey-reviews.csv"
    csv.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in CSV_ROWS), encoding="utf-8")
    open_page(page, server, "dataset_browser")
    page.get_by_text("Load a dataset", exact=True).click()
    page.locator("[data-testid=stFileUploaderDropzoneInput]").first.set_input_files(str(csv))
    page.get_by_text("journey-reviews.csv").first.wait_for(timeout=30_000)
    # the server has the file once a run names it: "Save as" offers the file's stem
    page.locator(f"input[placeholder='{csv.stem}']").wait_for(timeout=60_000)
    settle(page)
    page.get_by_role("button", name="Load and save").click()
    page.get_by_text("Saved journey-reviews v", exact=False).wait_for(timeout=60_000)
    settle(page)
    # the new version is picked: its caption counts the rows and columns
    page.get_by_text(f"{len(CSV_ROWS)} rows in train · 2 columns", exact=False).wait_for(timeout=30_000)
    page.get_by_text("Row detail (full texts)", exact=True).click()
    settle(page)
    body = page.inner_text("[data-testid=stMain]")
    assert CSV_ROWS[0][0] in body  # the hostile row is shown literally, as text
    assert page.locator("img[src=x]").count() == 0 and page.evaluate("() => window.__xss") is None
    shot(page, "journey2-rows")

    page.get_by_role("tab", name="Statistics").click()
    choose(page, "Label column", "label")
    page.locator(".gtitle", has_text="label: distribution").wait_for(timeout=30_000)
    bars = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(g => g.data && g.data[0])
        .filter(d => d && d.type === 'bar').map(d => Object.fromEntries(d.x.map((x, i) => [x, d.y[i]])))""")
    assert {"pos": 4, "neg": 2} in bars

    name = "bert-wordpiece-uncased"
    choose(page, "Tokenizer for token lengths", name)
    page.get_by_text("Show token-length histogram").click()
    settle(page)
    title = f"text: tokens ({name})"
    page.locator(".gtitle", has_text=title).wait_for(timeout=60_000)
    charts = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(g =>
        [g.layout && g.layout.title && (g.layout.title.text || g.layout.title), g.data && g.data[0].x,
         g.data && g.data[0].y])""")
    # the bars are binned in core (#18): whole-number bins of width 1 over these short texts, x = the length
    bins = next(({x: y for x, y in zip(xs, ys, strict=True) if y} for t, xs, ys in charts if t and title in t),
                charts)
    tok = load_tokenizer(name)
    reference = [len(tok(t)["input_ids"]) for t, _ in CSV_ROWS]  # special tokens counted, as truncation does
    assert bins == {n: reference.count(n) for n in reference}
    assert reference[1] == 5  # [CLS] una ##ffa ##ble [SEP] (shared/ASSETS.md)
    assert errors_on(page) == []
    shot(page, "journey2-statistics")


def test_journey_3_compare_tokenizers_then_train_a_bpe(server, page):
    from tokenizers import Tokenizer

    from core.assets import load_tokenizer

    open_page(page, server, "tokenizer_lab")
    text = page.get_by_label("Text", exact=True)
    for attempt in range(2):
        text.fill(SENTENCE)
        text.press("Control+Enter")
        settle(page)
        try:  # the server drew the new text (see `choose` on a commit Streamlit can drop under load)
            page.wait_for_function("(t) => document.querySelector('[data-testid=stMain]').innerText"
                                   ".includes('cl100k_base · byte-level BPE · 4 tokens')",
                                   timeout=15_000 if attempt == 0 else 60_000)
            break
        except Exception:
            if attempt:
                raise
            text.fill("")  # a different value, so the next commit is a change
            text.press("Control+Enter")
            settle(page)
    body = page.inner_text("[data-testid=stMain]")
    for name in ("bert-wordpiece-uncased", "cl100k_base", "xlm-r-unigram"):
        n = len(load_tokenizer(name)(SENTENCE)["input_ids"])  # the library's count, specials included
        assert re.search(rf"{re.escape(name)} · [^·]+ · {n} tokens", body), (name, n)
    assert "cl100k_base · byte-level BPE · 4 tokens" in body  # ids [9140, 388, 527, 8056]
    shot(page, "journey3-compare")

    page.get_by_role("tab", name="Train your own").click()
    form = page.locator("[data-testid=stForm]")
    fill(page, "Name", "journey-bpe", scope=form, commit=False)
    fill(page, "Vocabulary size", 300, scope=form, commit=False)
    form.get_by_role("button", name="Train").click()
    page.get_by_text(re.compile(r"Trained \S*journey-bpe")).wait_for(timeout=120_000)
    settle(page)
    page.get_by_role("tab", name="Compare").click()
    body = page.inner_text("[data-testid=stMain]")
    trained = Tokenizer.from_file(str(server.workspace / "tokenizers" / "journey-bpe" / "tokenizer.json"))
    n = len(trained.encode(SENTENCE).ids)
    # it joined the comparison: the four tokenizers side by side, the new one with its own count
    assert re.search(rf"trained:journey-bpe · [^·]+ · {n} tokens", body), body[-1500:]
    assert "cl100k_base · byte-level BPE · 4 tokens" in body
    assert errors_on(page) == []
    shot(page, "journey3-trained")


def test_journey_4_watch_stop_reload_resume(server, page, tiny_bert):
    from core.training import RunStore

    steps = 400  # far more than the test waits for: it stops the run itself, on a fast or a slow machine
    open_page(page, server, "fine_tuning")
    launch_run(page, tiny_bert, steps=steps, eval_every=10, name="journey4")
    page.get_by_role("tab", name="Runs").click()
    # the chart gains points twice while nobody touches the page
    counts = [wait_points_above(page, 0, 120_000)]
    for _ in range(2):
        counts.append(wait_points_above(page, counts[-1]))
    assert counts[0] < counts[1] < counts[2] < steps, counts
    shot(page, "journey4-live")

    page.get_by_role("button", name="Stop", exact=True).click()
    wait_progress(page, "stopped", 90_000)
    settle(page)
    stopped_at = step_of(progress_text(page))
    assert counts[2] <= stopped_at < steps

    page.reload()
    page.get_by_role("heading", name="Fine-tuning", exact=True).wait_for(timeout=60_000)
    page.get_by_role("tab", name="Runs").click()
    settle(page)
    assert "journey4" in page.get_by_role("combobox", name="Run", exact=True).input_value()
    assert "stopped" in progress_text(page) and step_of(progress_text(page)) == stopped_at
    assert chart_points(page) == stopped_at  # the curve survived the reload
    shot(page, "journey4-after-reload")

    page.get_by_role("button", name="Resume", exact=True).click()
    wait_progress(page, "running", 60_000)
    resumed = wait_points_above(page, stopped_at + 2, 120_000)  # the same curve goes on past the stop
    store = RunStore(server.workspace / "runs.sqlite")
    run_id = next(r.id for r in store.runs() if r.name == "journey4")
    logged = [m["step"] for m in store.metrics(run_id, "train")]
    assert logged[:resumed] == list(range(1, resumed + 1))  # one continuous step count, no restart at 1
    shot(page, "journey4-resumed")
    page.get_by_role("button", name="Stop", exact=True).click()  # free the CPU for the next journeys
    wait_progress(page, "stopped", 90_000)
    assert store.get(run_id).status == "stopped" and errors_on(page) == []


def test_journey_5_autograd_default_example(server, page):
    open_page(page, server, "autograd_graph")
    assert page.get_by_role("combobox", name="Example", exact=True).input_value() == "First lesson: d = a*b + a"
    page.locator("[data-testid=stMetricLabel]", has_text="a.grad").first.wait_for(timeout=60_000)
    m = metrics(page)
    # d = a*b + a at a=2, b=3: dd/da = b + 1 = 4, dd/db = a = 2
    assert m["a.grad"] == "4" and m["b.grad"] == "2", m
    assert errors_on(page) == []
    shot(page, "journey5-autograd")
