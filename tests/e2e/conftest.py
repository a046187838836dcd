"""A real Streamlit server on a free localhost port and Debian's chromium driven by playwright."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from screenshot import CHROMIUM_ARGS, free_port, start_server  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Server:
    """A running `streamlit run app.py` with its own workspace; restartable on the same port."""

    def __init__(self, workspace: Path):
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self):
        self.proc = start_server(self.port, {"TORCHLAB_WORKSPACE": str(self.workspace)})
        return self

    def kill(self):
        """Hard kill, as a crash would."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        """Terminate; a server still busy after 60 s (a loaded machine, a training thread) is killed."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("e2e-workspace")).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian chromium is missing: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell that a test failed."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def page(browser, request):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1400, "height": 2200})
    pg = ctx.new_page()
    crashes = watch_frontend(pg)
    yield pg
    assert not crashes, f"the Streamlit frontend crashed: {crashes[:3]}"
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:  # what the browser showed when the test failed
        pg.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
    ctx.close()


def watch_frontend(page) -> list[str]:
    """Collect the frontend's element-tree errors (a delta pointing past its parent blanks the page)."""
    crashes: list[str] = []
    page.on("console", lambda m: crashes.append(m.text[:300]) if "Bad delta path" in m.text
            or "Cannot set a node" in m.text else None)
    return crashes


def wait_for_app(page, timeout_ms: int = 90_000):
    """Wait until Streamlit has finished running the script (no 'Running…' status)."""
    page.wait_for_selector("[data-testid=stApp]", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout_ms)


# --------------------------------------------------------------------------- journey helpers
# Streamlit draws widgets with react-aria / baseweb: a selectbox is a combobox named by its label,
# its options appear in a listbox; inputs commit on Enter; the status widget shows while a script runs.

PAGES = {  # url path -> the page's title, as st.navigation routes them in app.py
    "": "Torch Lab", "tensor_playground": "Tensor playground", "autograd_graph": "Autograd graph",
    "build_models": "Build a network",
    "tokenizer_lab": "Tokenizers", "dataset_browser": "Datasets", "fine_tuning": "Fine-tuning",
    "summarize_qa": "Summarize & QA", "transformer_anatomy": "Transformer anatomy",
}
ERRORS = "[data-testid=stException], [data-testid=stAlertContentError]"
# plotly keeps its traces on the chart's DOM node: the number of points of the first trace named `name`
# (`_fullData[i]._length`: traces are sent as packed float32 arrays, so `data[i].x` has no length)
POINTS_JS = """(name) => { for (const g of document.querySelectorAll('.js-plotly-plot')) {
  const t = (g._fullData || []).find(d => d.name === name); if (t) return t._length; } return -1; }"""


def settle(page, timeout_ms: int = 90_000) -> None:
    """Give a rerun time to begin, then wait until no script is running."""
    page.wait_for_timeout(400)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=timeout_ms)


def open_page(page, server, path: str, timeout_ms: int = 120_000) -> None:
    """Go to a page URL and wait for its title and the end of its first run."""
    page.goto(f"{server.url}/{path}")
    wait_for_app(page, timeout_ms)
    page.get_by_role("heading", name=PAGES[path], exact=True).wait_for(timeout=timeout_ms)
    settle(page, timeout_ms)


def choose(page, label: str, option: str, reveals: str | None = None, other: str | None = None) -> None:
    """Pick `option` in the selectbox labelled `label`.

    `reveals`: the label of a widget the choice makes appear. Streamlit (1.67) now and then answers a
    selectbox change that lands while a `run_every` fragment is rerunning with no full rerun (seen
    about 1 in 10 on a loaded 2-core machine; the browser shows the new value, the server drew the
    page without it). The choice is then made again via `other`, which makes the server rerun with it.
    """
    for attempt in range(3):
        # a rerun landing on the click can close the list as it opens (seen under load): open it again
        page.get_by_role("combobox", name=label, exact=True).click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000 if attempt < 2 else 30_000)
            break
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            settle(page)
    settle(page)
    if reveals is None:
        return
    try:
        page.get_by_label(reveals, exact=True).wait_for(timeout=15_000)
    except Exception:
        choose(page, label, other)
        choose(page, label, option)
        page.get_by_label(reveals, exact=True).wait_for(timeout=30_000)


def fill(page, label: str, value, scope=None, commit: bool = True) -> None:
    """Type into a text / number input and commit it with Enter (not inside a form: Enter submits it)."""
    box = (scope or page).get_by_label(label, exact=True)
    box.fill(str(value))
    if commit:
        box.press("Enter")
        settle(page)


def errors_on(page, settle_ms: int = 3_000) -> list[str]:
    """The text of every exception box and st.error on the page, once the page has stopped changing.

    Right after a page switch, Streamlit can briefly keep an empty, stale element of the previous
    run while the new one streams in; a real error has text and stays.
    """
    texts: list[str] = []
    for _ in range(max(1, settle_ms // 500)):
        texts = [t for t in page.locator(ERRORS).all_inner_texts() if t.strip()]
        if not texts:
            return []
        page.wait_for_timeout(500)
    return texts


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def chart_points(page, trace: str = "train loss") -> int:
    return page.evaluate(POINTS_JS, trace)


def wait_points_above(page, n: int, timeout_ms: int = 60_000, trace: str = "train loss") -> int:
    """Wait, without touching the page, until the chart holds more than `n` points; returns the count."""
    page.wait_for_function(f"() => ({POINTS_JS})({trace!r}) > {n}", timeout=timeout_ms)
    return chart_points(page, trace)


def wait_progress(page, word: str, timeout_ms: int = 120_000) -> str:
    """Wait until the live view's progress line contains `word` (a status); returns the line."""
    page.wait_for_function("(w) => [...document.querySelectorAll('[data-testid=stProgress]')]"
                           ".some(e => e.innerText.includes(w))", arg=word, timeout=timeout_ms)
    return progress_text(page)


def seed_workspace(workspace: Path) -> Path:
    """A tiny BERT folder and the tiny labelled dataset inside `workspace`; returns the model folder."""
    from core.settings import Settings
    from tests.core.training.training_fixtures import tiny_dataset, tiny_model

    model = workspace / "tiny-model"
    if not (model / "config.json").is_file():
        tiny_model(model)
        tiny_dataset(Settings(workspace=workspace))
    return model


@pytest.fixture(scope="session")
def tiny_bert(server) -> Path:
    """The shared server's workspace holds a tiny model and dataset (pages list them on their next run)."""
    return seed_workspace(server.workspace)


def fill_launch_form(page, model: Path, steps: int, eval_every: int = 0, name: str = "") -> None:
    """Fill the Launch tab for a tiny run on the tiny dataset (max length 32, batch 8)."""
    page.get_by_role("tab", name="Launch").click()
    choose(page, "Model", "Local folder or hub id…", reveals="Folder on the server, or a hub id",
           other="MiniLM-L6 (packaged, 22.7M params)")
    fill(page, "Folder on the server, or a hub id", model)
    choose(page, "Dataset", "tiny")
    fill(page, "Max length (tokens)", 32)
    fill(page, "Batch size", 8)
    fill(page, "Max steps (-1 = use epochs)", steps)
    if eval_every or name:
        more = page.locator("details").filter(has_text="More settings")
        if more.get_attribute("open") is None:  # a second launch from the same page finds it open
            page.get_by_text("More settings", exact=True).click()
        if eval_every:  # also the checkpoint interval
            fill(page, "Evaluate every N steps (0 = 5× per run)", eval_every)
        if name:
            fill(page, "Run name", name)


def press_start(page) -> None:
    """Click Start and wait for its own "Queued run …" (the Launch tab keeps the last launch's message)."""
    before = page.locator("[data-testid=stAlertContentSuccess]").all_inner_texts()
    page.get_by_role("button", name="Start training").click()
    try:
        page.wait_for_function(
            "(before) => [...document.querySelectorAll('[data-testid=stAlertContentSuccess]')]"
            ".some(e => e.innerText.includes('Queued run') && !before.includes(e.innerText))", arg=before,
            timeout=60_000)
    except Exception as e:  # say what the page showed instead (CI keeps only this text, not the screenshot)
        alerts = page.locator("[data-testid=stAlert], [data-testid=stException]").all_inner_texts()
        running = page.locator("[data-testid=stStatusWidget]").count() > 0
        main = page.locator("[data-testid=stMain]").inner_text()[:800]
        raise AssertionError(f"no new 'Queued run' after Start; alerts on the page: {alerts}; "
                             f"a script still running: {running}; before: {before}; the page: {main!r}") from e
    settle(page)


def launch_and_reach(page, server, model: Path, name: str, step_pattern: str):
    """Launch a 400-step run named `name` (checkpoint every 5 steps), open the Runs tab and wait until the
    progress line matches `step_pattern` (a JS regex); returns (RunStore, run id)."""
    from core.training import RunStore

    fill_launch_form(page, model, steps=400, eval_every=5, name=name)
    press_start(page)
    page.get_by_role("tab", name="Runs").click()
    store = RunStore(server.workspace / "runs.sqlite")
    run_id = next(r.id for r in store.runs() if r.name == name)
    page.wait_for_function("(p) => (document.querySelector('[data-testid=stProgress]')||{innerText:''})"
                           ".innerText.match(new RegExp(p))", arg=step_pattern, timeout=180_000)
    return store, run_id


def launch_run(page, model: Path, steps: int, eval_every: int = 0, name: str = "") -> None:
    """Fill the Launch tab and press Start."""
    fill_launch_form(page, model, steps, eval_every, name)
    press_start(page)


def run_options(page) -> list[str]:
    """The entries of the Runs tab's run picker ('✅ completed · name · id'), as this session sees them."""
    page.get_by_role("combobox", name="Run", exact=True).click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return options


def progress_text(page) -> str:
    """The live view's progress line ('🟢 running · step 3 / 40 · …'), or '' before it shows."""
    bars = page.locator("[data-testid=stProgress]").all_inner_texts()
    return bars[0] if bars else ""


def step_of(text: str) -> int:
    """The step number out of a progress line."""
    import re

    m = re.search(r"step (\d+) /", text)
    return int(m.group(1)) if m else -1
