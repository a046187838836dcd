"""The autograd page's defaults follow the program in hand (#14), in a real browser; screens in test-artifacts."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import choose, errors_on, open_page, settle, shot

pytestmark = pytest.mark.e2e

OUTPUT = "Call .backward() on"
OUTPUT_LABEL = re.compile(r"^Call `?\.backward\(\)`? on$")  # the field; before #14 its label had backticks
BLITZ = "x = torch.ones(2, 2, requires_grad=True)\ny = x + 2\nz = y * y * 3\nout = z.mean()"


def program(page, text: str, shows: str) -> None:
    """Type a program into the text area, commit it (Ctrl+Enter) as a person does, wait until the page
    `shows` the given text and the run has finished."""
    box = page.get_by_label("Program", exact=False)
    box.fill(text)
    box.press("Control+Enter")
    settle(page)
    wait_text(page, shows)
    finished(page)


def finished(page, timeout_ms: int = 60_000) -> None:
    """No script running and no stale element of the previous run left (Streamlit drops those at the end)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]') && "
                           "!document.querySelector('[data-stale=true]')", timeout=timeout_ms)


def wait_text(page, text: str, timeout_ms: int = 60_000) -> None:
    """Wait until the page shows `text` (a run can still be streaming in after `settle`)."""
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout_ms)


def codes(page, wait_for: str = "") -> list[str]:
    """The text of every code block, once one contains `wait_for`."""
    if wait_for:
        page.locator("[data-testid=stCode]", has_text=wait_for).first.wait_for(timeout=60_000)
    return [t.strip() for t in page.locator("[data-testid=stCode]").all_inner_texts()]


def main_text(page) -> str:
    return page.inner_text("[data-testid=stMain]")


def test_a_tutorials_backward_line_picks_the_output(server, page):
    open_page(page, server, "autograd_graph")
    program(page, BLITZ + "\nout.backward()", "After out.backward(), the gradients")
    field = page.get_by_label(OUTPUT_LABEL)
    expect(field).to_have_value("out", timeout=30_000)
    assert field.is_disabled()
    assert errors_on(page) == []
    text = main_text(page)
    assert "Set by the program's last line out.backward()" in text and "After out.backward()" in text
    assert "[[4.5, 4.5],\n [4.5, 4.5]]" in codes(page, "4.5")  # d(out)/dx = 3/2 (x + 2) = 4.5, as the tutorial says
    shot(page, "autograd-backward-line")
    # backward in the middle of the program: one plain message saying where it belongs
    program(page, "a = torch.ones(2, requires_grad=True)\nd = a.sum()\nd.backward()\ne = d * 2",
            "can only be the program's last line")
    errors = errors_on(page)
    assert len(errors) == 1 and "last line" in errors[0] and OUTPUT in errors[0], errors
    shot(page, "autograd-backward-in-the-middle")


def test_a_new_program_resets_stale_output_and_retain_fields(server, page):
    open_page(page, server, "autograd_graph")
    expect(page.get_by_label(OUTPUT_LABEL)).to_have_value("d", timeout=30_000)  # first lesson: d, retain c
    program(page, "p = torch.tensor([1.0, 2.0], requires_grad=True)\nq = p * p\nloss = q.sum()\nk = torch.ones(2)",
            "Backward now runs on loss")
    assert errors_on(page) == []
    expect(page.get_by_label(OUTPUT_LABEL)).to_have_value("loss", timeout=30_000)  # k: no grad
    expect(page.get_by_label("on (comma-separated)", exact=False)).to_have_value("", timeout=30_000)
    text = main_text(page)
    assert "Backward now runs on loss, the last tensor assigned that requires grad (d is not in this program)" \
        in text, text[:2000]
    assert "retain_grad: dropped c (not in this program)" in text
    grads = [t.split() for t in page.locator("[data-testid=stMetric]").all_inner_texts() if ".grad" in t]
    assert grads == [["p.grad", "[2,", "4]"]], grads  # only p: no a/b/c.grad left from the first lesson
    shot(page, "autograd-stale-fields-reset")


def test_home_how_to_names_controls_the_autograd_page_has(server, page):
    open_page(page, server, "")
    step = page.locator("li", has_text="Autograd graph")
    controls = step.locator("em").all_inner_texts()
    assert controls, step.inner_text()
    open_page(page, server, "autograd_graph")
    for name in controls:  # every control the text tells a person to use is on the page, by that name
        found = page.get_by_role("tab", name=name, exact=True).or_(page.get_by_role("button", name=name, exact=True))
        found.first.wait_for(timeout=30_000)  # times out when the page has no such control
    page.get_by_role("tab", name=controls[-1], exact=True).click()
    page.get_by_text("Step 4 of 4: the engine runs", exact=False).wait_for(timeout=30_000)
    panel = page.locator("[role=tabpanel]:not([hidden])")  # a tab draws its chart and table when shown
    panel.get_by_role("slider").wait_for(timeout=30_000)
    panel.locator("svg text", has_text="4. AccumulateGrad").first.wait_for(timeout=30_000)
    panel.locator("[data-testid=stDataFrame]").wait_for(timeout=30_000)
    finished(page)
    assert errors_on(page) == []
    shot(page, "autograd-home-how-to-step-by-step")


def test_the_headline_shows_gradient_values_of_tensor_leaves(server, page):
    import torch

    open_page(page, server, "autograd_graph")
    choose(page, "Example", "Tiny neuron: sigmoid(w @ x + b)")
    w = torch.tensor([[0.5, -1.0, 0.25]], requires_grad=True)
    (-torch.log(torch.sigmoid(w @ torch.tensor([1.0, 2.0, 3.0]) + 0.1)).sum()).backward()
    want = "[[" + ", ".join(f"{v:.4g}" for v in w.grad[0].tolist()) + "]]"
    page.get_by_text(want, exact=True).wait_for(timeout=30_000)
    finished(page)
    assert want in codes(page, want)
    assert page.locator("[data-testid=stMetric]", has_text="w.grad").count() == 0  # was a metric 'tensor (1, 3)'
    assert errors_on(page) == []
    shot(page, "autograd-headline-values")
    program(page, "w = torch.ones(20, 30, requires_grad=True)\nloss = (w * 3).sum()", "600 values")
    assert "shape (20, 30), 600 values\nfirst: 3, 3, 3, 3, 3, 3, …\nmin 3 · mean 3 · max 3" in codes(page, "600 values")
    assert errors_on(page) == []
    shot(page, "autograd-headline-large-leaf")
