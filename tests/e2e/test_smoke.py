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


def test_deep_link_on_a_fresh_server_goes_through_navigation(browser, tmp_path):
    """The first visit after a start, straight to a page URL, still gets app.py's navigation."""
    from tests.e2e.conftest import Server, wait_for_app

    s = Server(tmp_path / "ws").start()
    try:
        pg = browser.new_page()
        pg.goto(s.url + "/fine_tuning")
        wait_for_app(pg)
        pg.get_by_role("heading", name="Fine-tuning").wait_for(timeout=60_000)
        nav = pg.inner_text("[data-testid=stSidebarNav]")
        assert "Learn PyTorch" in nav and "Transformers" in nav  # the sections of st.navigation
        assert "Device" in pg.inner_text("[data-testid=stSidebar]")
        pg.close()
    finally:
        s.stop()
