"""Build a network in a real browser: resize a CNN layer, see the table re-propagate, train it on digits and
watch the curve fill in."""
import pytest

from tests.e2e.conftest import (
    chart_points,
    errors_on,
    fill,
    open_page,
    settle,
    shot,
    wait_points_above,
    wait_progress,
)

pytestmark = pytest.mark.e2e


HEAD_JS = """() => ([...document.querySelectorAll('[data-testid=stMarkdownContainer]')]
    .find(e => e.innerText.startsWith('Layer table')) || {innerText: ''}).innerText"""


def test_build_a_cnn_train_it_on_digits_and_watch_the_curve(server, page):
    open_page(page, server, "build_models")
    assert not errors_on(page)
    page.wait_for_function(f"() => ({HEAD_JS})() !== ''", timeout=60_000)
    assert "151,498 parameters" in page.evaluate(HEAD_JS)

    # resize the dense layer (row 9 of the editor: Linear 128 -> 64): the table below re-propagates
    editor = page.locator("[data-testid=stDataFrame]").first
    editor.wait_for()
    box = editor.bounding_box()
    row_h = 35
    # header row, then one row per layer; the settings column is the last one
    page.mouse.dblclick(box["x"] + box["width"] - 60, box["y"] + row_h * (9 + 1) + row_h / 2)
    cell = page.locator("textarea").first  # the grid's cell editor opens over the cell
    cell.wait_for(timeout=30_000)
    cell.fill('{"out_features": 64}')
    cell.press("Enter")
    settle(page)
    page.wait_for_function(f"() => ({HEAD_JS})().includes('85,258 parameters')", timeout=60_000)
    shot(page, "build-cnn-resized")

    fill(page, "Max steps (-1 = epochs)", 30)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Queued run", exact=False).wait_for(timeout=120_000)
    wait_progress(page, "running", 180_000)
    n = wait_points_above(page, 3, 180_000)
    assert n > 3
    wait_progress(page, "completed", 300_000)
    page.wait_for_function("() => document.body.innerText.includes('majority-class baseline')", timeout=120_000)
    assert chart_points(page) >= 30
    assert not errors_on(page)
    shot(page, "build-cnn-trained")
