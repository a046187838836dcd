"""Browser smoke check: the home page loads at localhost and shows the device panel."""
import pytest

from tests.e2e.conftest import ARTIFACTS, wait_for_app

pytestmark = pytest.mark.e2e


def test_home_page_shows_device_panel(server, page):
    page.goto(server.url)
    wait_for_app(page)
    page.get_by_text("Offline assets", exact=True).wait_for(timeout=90_000)
    # the asset table appears once every packaged asset has been loaded once
    page.get_by_role("cell", name="cl100k_base", exact=True).wait_for(timeout=120_000)
    page.get_by_text("Device in use").wait_for()
    body = page.inner_text("body")
    assert "CPU cores" in body and "CUDA" in body
    assert "cl100k_base" in body
    assert page.locator("[data-testid=stException]").count() == 0
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)
