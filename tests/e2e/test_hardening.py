"""Hardening in a real browser: two sessions at once, a server killed mid-training, hostile text on pages.

Figures these tests establish (also in bench/RESULTS.md): 2 concurrent sessions, 2 queued jobs
on one device, 1 kill -9 and restart during training, nothing lost.
"""
import re
import time

import pytest

from tests.e2e.conftest import (
    Server,
    choose,
    errors_on,
    fill,
    fill_launch_form,
    launch_run,
    open_page,
    press_start,
    progress_text,
    run_options,
    seed_workspace,
    settle,
    shot,
    step_of,
    wait_progress,
)

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=window.__xss=1>"


def poll_statuses(store, run_ids: list[str], timeout: float = 240) -> list[dict[str, str]]:
    """Every distinct combination of the runs' statuses seen until all have finished."""
    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = {i: store.get(i).status for i in run_ids}
        if not seen or seen[-1] != now:
            seen.append(now)
        if all(s in ("completed", "failed", "stopped", "interrupted") for s in now.values()):
            return seen
        time.sleep(0.1)
    raise TimeoutError(f"runs still active after {timeout} s: {seen[-1]}")


def test_two_sessions_share_runs_queue_on_one_device_and_keep_their_own_state(server, browser, tiny_bert,
                                                                              tmp_path):
    from core.training import RunStore

    a = browser.new_context(viewport={"width": 1400, "height": 2200}).new_page()
    b = browser.new_context(viewport={"width": 1400, "height": 2200}).new_page()
    try:
        # session A: a tensor of its own and a file in its uploader
        open_page(a, server, "tensor_playground")
        form = a.locator("[data-testid=stForm]")
        fill(a, "name", "secret_a", scope=form, commit=False)
        form.get_by_text("literal", exact=True).click()
        fill(a, "literal or formula", "[[7.0, 7.0]]", scope=form, commit=False)
        form.get_by_role("button", name="Define tensor").click()
        settle(a)
        a.get_by_text("secret_a", exact=False).first.wait_for(timeout=30_000)
        csv = tmp_path / "session-a-only.csv"
        csv.write_text("text,label\nmine,pos\n", encoding="utf-8")
        open_page(a, server, "dataset_browser")
        a.get_by_text("Load a dataset", exact=True).click()
        a.locator("[data-testid=stFileUploaderDropzoneInput]").first.set_input_files(str(csv))
        a.get_by_text("session-a-only.csv").first.wait_for(timeout=30_000)

        # session B sees none of it
        open_page(b, server, "tensor_playground")
        assert "secret_a" not in b.inner_text("[data-testid=stMain]")
        open_page(b, server, "dataset_browser")
        b.get_by_text("Load a dataset", exact=True).click()
        settle(b)
        assert "session-a-only.csv" not in b.inner_text("[data-testid=stMain]")
        assert "secret_a" not in b.inner_text("[data-testid=stMain]")
        shot(b, "hardening-session-b-clean")

        # both launch a run at about the same moment: one device, so the second waits in the queue
        open_page(a, server, "fine_tuning")
        open_page(b, server, "fine_tuning")
        fill_launch_form(a, tiny_bert, steps=12, name="session-a")
        fill_launch_form(b, tiny_bert, steps=4, name="session-b")
        press_start(a)
        press_start(b)
        store = RunStore(server.workspace / "runs.sqlite")
        ids = {r.name: r.id for r in store.runs() if r.name in ("session-a", "session-b")}
        assert len(ids) == 2
        seen = [{i: store.get(i).status for i in ids.values()}]
        b.get_by_role("tab", name="Runs").click()
        settle(b)
        shot(b, "hardening-session-b-queued")  # B's own run in the queue behind A's
        seen += poll_statuses(store, list(ids.values()))
        # B waited in the queue while A ran, and the two never ran at once
        assert {ids["session-a"]: "running", ids["session-b"]: "queued"} in seen, seen
        assert not any(all(s == "running" for s in snap.values()) for snap in seen), seen
        ra, rb = store.get(ids["session-a"]), store.get(ids["session-b"])
        assert ra.status == rb.status == "completed", (ra.message, rb.message)
        assert rb.started >= ra.finished - 0.5, "the second job started before the first had finished"

        # both sessions list the same runs (the run store is shared; session state is not)
        a.get_by_role("tab", name="Runs").click()
        settle(a)
        settle(b)
        wait_progress(b, "completed", 60_000)
        # a page lists runs as of its last rerun (statuses may lag there); the runs themselves must agree
        opts_a, opts_b = run_options(a), run_options(b)
        runs_a = sorted(o.split(" · ", 1)[1] for o in opts_a)
        assert runs_a == sorted(o.split(" · ", 1)[1] for o in opts_b)
        assert f"session-a · {ids['session-a']}" in runs_a and f"session-b · {ids['session-b']}" in runs_a
        assert errors_on(a) == [] and errors_on(b) == []
        shot(a, "hardening-session-a-runs")
    finally:
        a.context.close()
        b.context.close()


def test_server_killed_during_training_resumes_from_its_checkpoint(page, tmp_path):
    from core.data.store import DatasetStore
    from core.training import RunStore

    ws = tmp_path / "ws"
    model = seed_workspace(ws)
    s = Server(ws).start()
    try:
        open_page(page, s, "fine_tuning")
        launch_run(page, model, steps=3, name="finished-before")
        store = RunStore(ws / "runs.sqlite")
        done_id = next(r.id for r in store.runs() if r.name == "finished-before")
        assert poll_statuses(store, [done_id])[-1][done_id] == "completed"
        datasets_before = [(r.name, r.version, r.rows) for r in DatasetStore(ws / "datasets").list()]

        launch_run(page, model, steps=24, eval_every=8, name="crash")
        crash_id = next(r.id for r in store.runs() if r.name == "crash")
        ckpts = ws / "runs" / crash_id / "checkpoints"
        # kill between two saves, 2-5 steps after a whole checkpoint: a kill during a save leaves a torn
        # folder that resume trips over (tests/core/training/test_crash_recovery.py pins that bug down)
        deadline = time.monotonic() + 240
        while True:
            assert time.monotonic() < deadline, "no kill window within 240 s"
            steps = [m["step"] for m in store.metrics(crash_id, "train")]
            whole = [int(p.name.split("-")[1]) for p in ckpts.glob("checkpoint-*")
                     if (p / "trainer_state.json").is_file()]
            if steps and whole and 2 <= steps[-1] - max(whole) <= 5:
                break
            assert store.get(crash_id).status in ("queued", "running"), "the run ended before the kill"
            time.sleep(0.02)
        s.kill()  # SIGKILL: the training thread dies with the process, mid-step
        assert store.get(crash_id).status == "running", "the run ended before the kill: nothing was tested"
        killed_at = max(m["step"] for m in store.metrics(crash_id, "train"))

        s.start()
        page.reload()
        page.get_by_role("heading", name="Fine-tuning", exact=True).wait_for(timeout=120_000)
        page.get_by_role("tab", name="Runs").click()
        settle(page)
        # the restarted server's first Runs tab run (torch imports, the store's recovery) can outlast settle's
        # wait on a loaded machine: wait for the progress line itself
        assert "interrupted" in wait_progress(page, "interrupted", 180_000)
        assert "the server stopped while this run was running" in page.inner_text("[data-testid=stMain]")
        assert store.get(crash_id).status == "interrupted"
        shot(page, "hardening-restart-interrupted")

        # a loaded machine can keep the restarted server's first reruns (torch imports) past the click's default
        # 30 s, with the page greyed while it reconnects: wait for the button to be live, however long it takes
        page.get_by_role("button", name="Resume", exact=True).click(timeout=180_000)
        wait_progress(page, "completed", 240_000)
        settle(page)
        rec = store.get(crash_id)
        assert rec.status == "completed" and rec.final_metrics["global_step"] == 24, rec.message
        # resumed from a checkpoint, not from scratch: one continuous curve of 24 steps
        assert [m["step"] for m in store.metrics(crash_id, "train")] == list(range(1, 25))
        assert step_of(progress_text(page)) == 24 and killed_at >= 10
        # nothing finished was lost
        done = store.get(done_id)
        assert done.status == "completed" and (ws / "runs" / done_id / "model" / "config.json").is_file()
        assert [m["step"] for m in store.metrics(done_id, "train")] == [1, 2, 3]
        after = [(r.name, r.version, r.rows) for r in DatasetStore(ws / "datasets").list()]
        assert after == datasets_before and ("tiny", 1, 40) in after
        assert errors_on(page) == []
        shot(page, "hardening-restart-resumed")
    finally:
        s.stop()


# where each page takes free text, and what to type there (a program gets the markup as a string literal)
HOSTILE_INPUTS = {
    "tokenizer_lab": ("label", "Text", XSS),
    "summarize_qa": ("document", "Document / context", f"The pill {XSS} helped my headache. I took it daily."),
    "dataset_browser": ("label", "Search text", XSS),
    "tensor_playground": ("area", None, f"y = '{XSS}'"),
    "autograd_graph": ("area", None, f"d = {XSS}"),  # a syntax error: the message quotes the line
}


@pytest.mark.parametrize("path", list(HOSTILE_INPUTS))
def test_pages_show_hostile_text_as_text(server, page, path):
    """User text with markup reaches the page as characters, never as elements or script."""
    how, label, text = HOSTILE_INPUTS[path]
    open_page(page, server, path)
    if path == "dataset_browser":  # search the drug reviews' text (the page opens on the newest dataset: the
        # shared e2e workspace's may be another test's CoNLL data, whose list columns can't be searched)
        page.get_by_role("combobox", name="Dataset", exact=True).click()
        page.get_by_role("option", name=re.compile(r"^drug-reviews v")).first.click()
        settle(page)
    if how == "document":  # the user's own document: the answer is highlighted inside it
        choose(page, "Document", "(your own text)")
        page.wait_for_function(f"() => document.querySelectorAll('[aria-label=\"{label}\"]').length === 1")
        fill(page, "Question", "What helped?")
    if how == "document":  # the question's rerun may briefly redraw the sample's text area: wait it out
        page.wait_for_function(f"() => document.querySelectorAll('[aria-label=\"{label}\"]').length === 1")
    box = (page.get_by_label(label, exact=True) if how in ("label", "document")
           else page.locator("[data-testid=stTextArea] textarea").first)
    box.fill(text)
    box.press("Enter" if box.evaluate("e => e.tagName") == "INPUT" else "Control+Enter")
    settle(page, 120_000)
    # innerText leaves out what is typed in inputs: this is the page echoing it
    page.wait_for_function("() => document.querySelector('[data-testid=stMain]').innerText"
                           ".includes('onerror=window.__xss=1>')", timeout=120_000)
    main = page.inner_text("[data-testid=stMain]")
    assert "<img" in main and "onerror=window.__xss=1>" in main, f"{path}: the text should show literally"
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("[data-testid=stException]").count() == 0
    shot(page, f"hardening-hostile-{path}")
