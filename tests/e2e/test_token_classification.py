"""Token classification in a real browser: pick the task, map the columns, start, watch it complete, try it."""
import datasets
import pytest
from playwright.sync_api import expect

from core.data import DatasetStore
from core.settings import Settings
from tests.core.training.test_token_classification import ner_rows
from tests.e2e.conftest import choose, errors_on, fill, open_page, press_start, settle, shot, wait_progress

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ner_tiny(tiny_bert):
    """The toy NER grammar beside the tiny BERT in the server's workspace."""
    store = DatasetStore(Settings(workspace=tiny_bert.parent).datasets_dir)
    if not store.versions("ner-tiny"):
        store.save(datasets.Dataset.from_dict(ner_rows(40)), "ner-tiny", "e2e fixture")
    return tiny_bert


def test_token_classification_journey(server, page, ner_tiny):
    open_page(page, server, "fine_tuning")
    choose(page, "Task", "Token classification (NER)", reveals="Tokens column", other="Text classification")
    choose(page, "Model", "Local folder or hub id…", reveals="Folder on the server, or a hub id",
           other="MiniLM-L6 (packaged, 22.7M params)")
    fill(page, "Folder on the server, or a hub id", ner_tiny)
    choose(page, "Dataset", "ner-tiny")
    # the roles' columns are guessed from their usual names; one row shows as the model will see it
    expect(page.get_by_role("combobox", name="Tokens column", exact=True)).to_have_value("tokens", timeout=30_000)
    expect(page.get_by_role("combobox", name="Tags column", exact=True)).to_have_value("ner_tags", timeout=30_000)
    # 10 steps, one evaluation and checkpoint at the end: the tiny model learns the toy grammar by then
    for label, value in (("Max length (tokens)", 32), ("Batch size", 8), ("Max steps (-1 = use epochs)", 10),
                         ("Learning rate", "3.0e-02"), ("Warm-up (fraction or steps)", 0)):
        fill(page, label, value)
    page.get_by_text("More settings", exact=True).click()
    fill(page, "Evaluate every N steps (0 = 5× per run)", 10)
    page.get_by_text("first sub-token", exact=False).first.wait_for(timeout=60_000)
    shot(page, "token-classification-launch")
    press_start(page)

    page.get_by_role("tab", name="Runs").click()
    wait_progress(page, "completed", 240_000)
    settle(page)
    page.get_by_text("Per entity type", exact=True).wait_for(timeout=60_000)
    box = page.get_by_label("Sentence to tag", exact=True)
    box.fill("Carol visited Rome.")
    box.press("Enter")
    settle(page)
    spans = page.locator(".tl-entity")
    # the prefilled sentence's spans stay on screen until the rerun with the typed one lands (under load it
    # can start after settle() looked): wait for the typed sentence's own first entity
    expect(spans.first).to_contain_text("Carol", timeout=60_000)
    expect(spans).to_have_count(2, timeout=30_000)
    assert [t.split()[0] for t in spans.all_inner_texts()] == ["Carol", "Rome"]
    assert [t.split()[-1] for t in spans.all_inner_texts()] == ["PER", "LOC"]
    shot(page, "token-classification-try-it")
    assert errors_on(page) == []
