"""One truth on screen (#14): every status a screen shows agrees, lives without a reload, and a click acts once.

Each test samples what the browser shows in one JavaScript call (one moment), so two places that
disagree are caught even when each would be right a second later.
"""
import os
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import (
    fill_launch_form,
    launch_and_reach,
    open_page,
    press_start,
    run_options,
    settle,
    shot,
    wait_progress,
    watch_frontend,
)

pytestmark = pytest.mark.e2e

# every place that shows a run's status, read at one instant
SCREEN_JS = """() => {
  const text = (sel) => [...document.querySelectorAll(sel)].map(e => e.innerText);
  const queue = text('[data-testid=stCaptionContainer]').find(t => t.startsWith('Queue:')) || '';
  const picker = [...document.querySelectorAll('[data-testid=stSelectbox]')]
      .find(e => e.innerText.trim() === 'Run');
  const input = picker ? picker.querySelector('input') : null;
  const sidebar = document.querySelector('[data-testid=stSidebar]');
  const bar = document.querySelector('[data-testid=stProgress]');
  // Streamlit marks an element the running rerun has not redrawn yet as stale (data-stale)
  const stale = [picker, bar].some(e => e && e.closest('[data-stale=true]'));
  return {queue, picker: input ? input.value : '', stale,
          progress: text('[data-testid=stProgress]')[0] || '',
          sidebar: sidebar ? sidebar.innerText : ''};
}"""
STATES = ("queued", "running", "stopping", "stopped", "completed", "failed", "interrupted")


def screen(page) -> dict[str, str]:
    return page.evaluate(SCREEN_JS)


def status_in(text: str) -> str | None:
    """The first run status word in a label like '🟢 running · name · id'."""
    words = text.replace("·", " ").split()
    return next((w for w in words if w in STATES), None)


def queue_counts(queue: str) -> dict[str, int]:
    """'Queue: 1 running · 0 stopping · 2 queued — …' -> {'running': 1, 'stopping': 0, 'queued': 2}."""
    head = queue.split("—")[0].removeprefix("Queue:")
    out = {}
    for part in head.split("·"):
        n, word = part.split()
        out[word] = int(n)
    return out


def sidebar_counts(sidebar: str) -> dict[str, int]:
    line = next((ln for ln in sidebar.splitlines() if any(f" {s}" in f" {ln}" for s in STATES)), "")
    out = {}
    for part in line.split("·"):
        bits = part.split()
        if len(bits) == 2 and bits[0].isdigit():
            out[bits[1]] = int(bits[0])
    return out


def test_every_status_agrees_while_a_run_goes_and_after_it_ends(server, browser, tiny_bert):
    """Picker, progress line, queue line and sidebar agree at every instant; a second browser follows."""
    from core.training import RunStore

    a = browser.new_context(viewport={"width": 1400, "height": 2000}).new_page()
    b = browser.new_context(viewport={"width": 1400, "height": 2000}).new_page()
    crashes_a, crashes_b = watch_frontend(a), watch_frontend(b)
    try:
        open_page(a, server, "fine_tuning")
        open_page(b, server, "fine_tuning")
        b.get_by_role("tab", name="Runs").click()
        settle(b)
        fill_launch_form(a, tiny_bert, steps=12, name="truth-run")
        press_start(a)
        a.get_by_role("tab", name="Runs").click()
        store = RunStore(server.workspace / "runs.sqlite")
        run_id = next(r.id for r in store.runs() if r.name == "truth-run")

        # the second browser (which keeps its own selection) counts the new run without a reload
        b.wait_for_function(f"() => /Queue: 1 running|1 queued/.test(({SCREEN_JS})().queue)", timeout=60_000)

        samples, deadline = [], time.monotonic() + 300
        while time.monotonic() < deadline:
            s = screen(a)
            if s["progress"] and s["picker"] and not s["stale"]:
                samples.append(s)
                picked, shown = status_in(s["picker"]), status_in(s["progress"])
                assert picked == shown, s  # one read of the store: never two answers
                q = queue_counts(s["queue"])
                assert q.get(picked, 0) >= 1 or picked not in q, s
                if picked == "completed":
                    break
            a.wait_for_timeout(150)
        assert samples and status_in(samples[-1]["picker"]) == "completed", samples[-3:]
        assert any(status_in(x["picker"]) == "running" for x in samples), "never saw it running"
        shot(a, "truth-completed")

        # after completion, without a reload: the sidebar names what exists, in both browsers
        expected = store.snapshot().counts
        for pg in (a, b):
            pg.wait_for_function("(want) => document.querySelector('[data-testid=stSidebar]').innerText"
                                 ".includes(want)", arg=f"{expected['completed']} completed", timeout=5_000)
            counts = sidebar_counts(screen(pg)["sidebar"])
            assert counts == expected, (counts, expected)
            assert "running" not in counts and "no jobs yet" not in screen(pg)["sidebar"]
        # and the second browser's run picker lists it with its final status, once its panel has redrawn
        # (it polls once a second; a loaded machine can hold a redraw up to a minute)
        b.wait_for_function(f"() => /Queue: 0 running/.test(({SCREEN_JS})().queue)", timeout=60_000)
        assert any(o.startswith(f"✅ completed · truth-run · {run_id}") for o in run_options(b)), run_options(b)
        shot(b, "truth-second-browser")
        assert not crashes_a + crashes_b, crashes_a + crashes_b
    except Exception:
        shot(a, "FAILED-truth-browser-a")
        shot(b, "FAILED-truth-browser-b")
        raise
    finally:
        a.context.close()
        b.context.close()


def test_stop_and_resume_keep_elapsed_time_and_mark_the_resume(server, page, tiny_bert):
    open_page(page, server, "fine_tuning")
    store, run_id = launch_and_reach(page, server, tiny_bert, "elapsed-run", r"step ([5-9]|\d\d+) /")
    page.get_by_role("button", name="Stop", exact=True).click()
    line = wait_progress(page, "stopped", 120_000)
    before = store.get(run_id).train_seconds
    assert before > 0

    def elapsed(text: str) -> int:
        m, s = text.split("elapsed ")[1].split(" ")[0].split(":")[-2:]
        return int(m) * 60 + int(s)

    assert abs(elapsed(line) - before) <= 1.5, (line, before)
    page.wait_for_timeout(2500)  # a pause between stop and resume must not count as training time
    page.get_by_role("button", name="Resume", exact=True).click()
    line = wait_progress(page, "running", 120_000)
    assert elapsed(line) >= int(before), line  # elapsed goes on from where it was, never from 0:00
    page.get_by_text("Resumed 1×", exact=False).wait_for(timeout=120_000)
    caption = page.get_by_text("Resumed 1×", exact=False).inner_text()
    assert "weights" in caption and "optimizer" in caption and "data position" in caption, caption
    shot(page, "truth-resumed")
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_progress(page, "stopped", 120_000)
    rec = store.get(run_id)
    assert rec.train_seconds >= before


@pytest.fixture
def busy_cpu():
    """Both cores saturated by busy loops for at most 90 s (bounded, ends by itself)."""
    code = "import time\nend = time.time() + 90\nwhile time.time() < end:\n    pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 2)]
    yield
    for h in hogs:
        h.kill()
        h.wait(timeout=10)


def test_one_click_on_start_queues_exactly_one_run_on_a_saturated_cpu(server, page, tiny_bert, busy_cpu):
    from core.training import RunStore

    store = RunStore(server.workspace / "runs.sqlite")
    open_page(page, server, "fine_tuning")
    fill_launch_form(page, tiny_bert, steps=2, name="one-click")
    before = sum(r.name == "one-click" for r in store.runs())
    page.get_by_role("button", name="Start training").click()  # once, while other fragments refresh
    page.get_by_text("Queued run", exact=False).wait_for(timeout=120_000)
    settle(page)
    assert sum(r.name == "one-click" for r in store.runs()) == before + 1
    shot(page, "truth-one-click")
