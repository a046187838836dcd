"""Stop, watched from the browser (#14): from the click to "stopped" every sample of the screen tells one
story — the status only moves forward, a stopping run says what it is finishing, and Stop is never
offered twice."""
import pytest

from tests.e2e.conftest import launch_and_reach, open_page, shot

pytestmark = pytest.mark.e2e

ORDER = ("running", "stopping", "stopped")
SAMPLE_JS = """() => {
  const bar = document.querySelector('[data-testid=stProgress]');
  const stop = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Stop');
  const resume = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Resume');
  const stale = !!(bar && bar.closest('[data-stale=true]'));
  return {bar: bar ? bar.innerText : '', stop: stop ? !stop.disabled : null, resume: !!resume, stale};
}"""


def status(bar: str) -> str | None:
    return next((w for w in bar.replace("·", " ").split() if w in ORDER), None)


def test_stop_moves_forward_and_says_what_it_finishes(server, page, tiny_bert):
    open_page(page, server, "fine_tuning")
    store, run_id = launch_and_reach(page, server, tiny_bert, "stop-phases", r"running · step ([3-9]|\d\d+) /")
    page.get_by_role("button", name="Stop", exact=True).click()
    samples, rank = [], 0
    for _ in range(1200):  # at most ~2 minutes of samples, every 100 ms
        s = page.evaluate(SAMPLE_JS)
        word = status(s["bar"])
        if word and not s["stale"]:
            samples.append((word, s))
            assert ORDER.index(word) >= rank, samples[-3:]  # never back from stopping to running
            rank = ORDER.index(word)
            if word == "stopping":
                # the same element says what it is finishing: a separate note could lag the bar on screen
                note = s["bar"].split("\n", 1)[1].strip() if "\n" in s["bar"] else ""
                assert "finishing" in note or "saving" in note or "saved" in note, s
                assert "remaining —" in s["bar"], s  # not counting down the whole run while it stops
                assert s["stop"] is not True, s  # Stop is not offered again while stopping
            if word == "stopped" and s["resume"]:
                break
        page.wait_for_timeout(100)
    assert samples and samples[-1][0] == "stopped" and samples[-1][1]["resume"], samples[-3:]
    rec = store.get(run_id)
    assert rec.status == "stopped" and rec.checkpoint, (rec.status, rec.checkpoint)
    assert "remaining —" in samples[-1][1]["bar"], samples[-1][1]["bar"]  # not "0:00": it is not finished
    shot(page, "stop-phases-stopped")
