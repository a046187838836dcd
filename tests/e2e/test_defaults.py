"""Defaults that follow the data in hand (#14), in a real browser: each screen is left in test-artifacts."""
import pytest

from tests.core.training.training_fixtures import NEGATIVE, POSITIVE
from tests.e2e.conftest import (
    errors_on,
    fill_launch_form,
    open_page,
    press_start,
    settle,
    shot,
    wait_progress,
)

pytestmark = pytest.mark.e2e


def test_own_text_replaces_the_sample_and_an_empty_checkpoint_says_what_to_do(server, page):
    open_page(page, server, "summarize_qa")
    picker = page.get_by_role("combobox", name="Document", exact=True)
    assert picker.input_value() != "(your own text)"
    sample_q = page.get_by_role("combobox", name="Sample question", exact=True)
    assert sample_q.input_value() == "What makes the dough rise?"
    box = page.get_by_label("Document / context", exact=True)
    box.fill("The lighthouse keeper lit the lamp at dusk. Ships passed safely through the strait all night.")
    box.press("Tab")  # commit the text area
    settle(page)
    page.wait_for_function("() => [...document.querySelectorAll('input[role=combobox]')]"
                           ".some(e => e.value === '(your own text)')", timeout=30_000)
    # the sample's text area is replaced by the own-text one (wait for the old element to go)
    page.wait_for_function("() => document.querySelectorAll('textarea[aria-label=\"Document / context\"]')"
                           ".length === 1", timeout=60_000)
    main = page.inner_text("[data-testid=stMain]")
    assert page.get_by_role("combobox", name="Sample question", exact=True).count() == 0
    assert page.get_by_label("Gold answers, separated by | (optional)", exact=True).input_value() == ""
    assert page.get_by_label("Document / context", exact=True).input_value().startswith("The lighthouse keeper")
    assert "Type a question about your text" in main
    page.get_by_label("Question", exact=True).fill("When was the lamp lit?")
    page.get_by_label("Question", exact=True).press("Enter")
    settle(page)
    page.get_by_text("at dusk", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("Span QA checkpoint", exact=True).first.click()
    settle(page)
    page.get_by_text("No span-QA checkpoint ships with Torch Lab", exact=False).wait_for(timeout=30_000)
    assert errors_on(page) == []
    shot(page, "defaults-own-text-and-checkpoint-hint")


def test_runs_get_distinct_names_and_try_it_starts_from_the_runs_own_data(server, page, tiny_bert):
    open_page(page, server, "fine_tuning")
    for _ in range(2):  # the same settings twice, no name given
        fill_launch_form(page, tiny_bert, steps=2)
        press_start(page)
    page.get_by_role("tab", name="Runs").click()
    settle(page)
    wait_progress(page, "completed", 180_000)
    from core.training import RunStore

    store = RunStore(server.workspace / "runs.sqlite")
    names = [r.name for r in store.runs() if r.config.get("dataset") == "tiny" and r.config.get("max_steps") == 2]
    assert len(names) >= 2 and len(set(names)) == len(names), names
    assert any(n.endswith("#2") for n in names), names
    # the newest run is selected; its "try the model" box holds a sentence of its own evaluation split
    page.wait_for_function("() => { const t = [...document.querySelectorAll('textarea')]"
                           ".find(e => e.getAttribute('aria-label') === 'Text to classify'); return t && t.value; }",
                           timeout=60_000)
    text = page.get_by_label("Text to classify", exact=True).input_value()
    assert text in POSITIVE + NEGATIVE, text
    assert "medication" not in text
    shot(page, "defaults-run-names-and-try-it")
