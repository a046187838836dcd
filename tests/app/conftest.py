"""AppTest helpers: every page is opened through app.py, as the navigation routes it."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def open_page():
    """open_page('pages/x.py', timeout=…) -> an AppTest that has rendered that page."""

    def _open(page: str, timeout: float = 120) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=timeout)
        at.run()
        if page != "pages/home.py":
            at.switch_page(page)
            at.run()
        return at

    return _open
