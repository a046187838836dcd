"""The Runs tab: queue line, runs table, run picker and live panel, all drawn from one read of the store.

Everything that shows a run's status lives in one fragment that re-reads the store about once a
second, so no two places on the screen can disagree for longer than one refresh. The results of a
completed run (inputs, model loads) are drawn outside the fragment; the fragment asks for a full
rerun when the selected run or its completion changes.
"""
from __future__ import annotations

import hashlib
import re

import pandas as pd
import streamlit as st

from components.fragments import live_fragment
from components.sidebar import follow_active_runs
from components.training_views import duration, live_figure
from core.training.curves import headline, overfitting, progress
from core.training.store import ACTIVE, MetricsFollower, Snapshot

BADGE = {"queued": "🕒", "running": "🟢", "stopping": "🟠", "stopped": "⏸️", "completed": "✅", "failed": "❌",
         "interrupted": "⚠️"}
RESULTS_KEY = "ft_results_for"  # the completed run whose results the last full run drew (or None)


def run_label(r) -> str:
    return f"{BADGE.get(r.status, '')} {r.status} · {r.name} · {r.id}"


def queue_line(snap: Snapshot, concurrency: int) -> str:
    c = snap.counts
    return (f"Queue: {c.get('running', 0)} running · {c.get('stopping', 0)} stopping · {c.get('queued', 0)} queued"
            f" — {concurrency} job(s) at a time on this device · all runs: {snap.summary()}")


def _cell(v, fmt: str = "{:.1%}"):
    return "—" if v is None else fmt.format(v) if isinstance(v, (int, float)) else v


def runs_table(runs) -> pd.DataFrame:
    rows = []
    for r in runs:
        label, value, base = headline(r.config.get("task", "text-classification"), r.final_metrics)
        rows.append({"status": f"{BADGE.get(r.status, '')} {r.status}", "name": r.name, "run": r.id,
                     "steps": _cell(r.total_steps, "{:,}"), "metric": label, "score": value, "baseline": base,
                     "train time": duration(r.elapsed()), "device": _cell(r.device), "runner": _cell(r.runner)})
    return pd.DataFrame(rows)


def selected_run(snap: Snapshot) -> str | None:
    """The run the picker shows: the one chosen (or just started), else the newest."""
    ids = [r.id for r in snap.runs]
    sel = st.session_state.get("ft_selected")
    return sel if sel in ids else (ids[0] if ids else None)


def results_target(snap: Snapshot) -> str | None:
    """The selected run if it is completed: whose results belong under the panel."""
    rid = selected_run(snap)
    rec = snap.get(rid) if rid else None
    return rid if rec is not None and rec.status == "completed" else None


def runs_panel(jobs, settings, empty: str = "No runs yet. Start one on the **Launch** tab.") -> None:
    """The live Runs tab (a fragment polling the store)."""

    def panel() -> None:
        snap = jobs.store.snapshot()  # the one read every status below comes from
        follow_active_runs(snap)
        if not snap.runs:
            st.info(empty)
            return
        ids = [r.id for r in snap.runs]
        labels = [run_label(r) for r in snap.runs]
        # The browser keeps showing an option's old label when only labels change (a status moved on),
        # so the picker is keyed by its labels: a new status draws a new picker, on the same run.
        key = "ft_run_" + hashlib.sha1("\n".join(labels).encode()).hexdigest()[:12]
        picked = st.session_state.get(key)
        run_id = picked if picked in ids else selected_run(snap)
        st.session_state["ft_selected"] = run_id
        rec = snap.get(run_id)
        # Everything is read before anything is drawn: the elements below then reach the browser
        # back to back, so the picker and the progress line are never a slow read apart on screen.
        view = _live_view(jobs, rec, snap)
        st.caption(queue_line(snap, jobs.concurrency))
        st.dataframe(runs_table(snap.runs), hide_index=True, height=min(38 + 35 * len(snap.runs), 250))
        st.selectbox("Run", ids, index=ids.index(run_id), key=key, format_func=lambda i: labels[ids.index(i)])
        _progress_line(rec, view)
        controls(jobs, rec)
        live(rec, view)
        if results_target(snap) != st.session_state.get(RESULTS_KEY):
            st.rerun(scope="app")  # a run completed or another was picked: draw its results below

    live_fragment(panel, settings.poll_interval_s)


def _act(action, *args) -> None:
    """A button's on_click: it runs before the rerun the click causes, so a click is never lost to a
    rerun that starts over (an auto-refresh landing at the same moment) and acts exactly once."""
    try:
        action(*args)
    except (ValueError, KeyError) as e:  # e.g. the run changed state in another browser meanwhile
        st.session_state["ft_action_error"] = str(e)


def _delete(jobs, run_id: str) -> None:
    jobs.delete(run_id)
    st.session_state.pop("ft_selected", None)


def _rename(jobs, run_id: str) -> None:
    new = str(st.session_state.get(f"ft_rename_{run_id}") or "").strip()
    if new:
        jobs.store.update(run_id, name=new[:120])


def controls(jobs, rec) -> None:
    # every column always holds one element (disabled when it does not apply): a fragment rerun that
    # left a column empty could keep showing the element an earlier state drew there
    c1, c2, c3 = st.columns([1, 1, 4])
    if rec.status in ("stopped", "interrupted", "failed"):
        c1.button("Resume", key="ft_resume", type="primary", on_click=_act, args=(jobs.resume, rec.id))
    else:
        c1.button("Stop", key="ft_stop", help="saves a checkpoint", on_click=_act, args=(jobs.stop, rec.id),
                  disabled=rec.status not in ("queued", "running"))
    c2.button("Delete", key="ft_delete", on_click=_act, args=(_delete, jobs, rec.id), disabled=rec.status in ACTIVE,
              help="stop the run first" if rec.status in ACTIVE else None)
    with c3.popover("Rename"):
        st.text_input("New name", rec.name, key=f"ft_rename_{rec.id}", max_chars=120)
        st.button("Save name", key=f"ft_rename_btn_{rec.id}", on_click=_act, args=(_rename, jobs, rec.id))
    err = st.session_state.pop("ft_action_error", None)
    if err:
        st.error(err)


def _follower(jobs, run_id: str) -> MetricsFollower:
    """This session's incremental reader of one run's metrics."""
    cache = st.session_state.setdefault("ft_followers", {})
    f = cache.get(run_id)
    if f is None or f.store.path != jobs.store.path:
        cache.clear()  # one run at a time: the cache never grows with the number of runs viewed
        f = cache[run_id] = MetricsFollower(jobs.store, run_id)
    return f


def _status_text(rec, step: int) -> str:
    if rec.status == "stopping":
        return rec.message or f"stopping: finishing step {step + 1}, then saving a checkpoint…"
    if rec.status == "queued":
        return "waiting for the device: another run is training"
    return rec.message or ""


def _live_view(jobs, rec, snap: Snapshot) -> dict:
    """What the live panel shows for one run, read from the store before anything is drawn."""
    f = _follower(jobs, rec.id)
    f.refresh()
    train = f.rows["train"]
    finished = rec.finished if rec.status not in ACTIVE else None
    pr = progress(train, rec.total_steps, rec.started if rec.status in ("running", "stopping") else None,
                  finished, before_s=rec.train_seconds, now=snap.taken)
    if rec.status in ("queued", "stopping", "stopped", "failed", "interrupted"):
        pr.remaining_s = None  # not counting down: "0:00" would read as finished
    return {"follower": f, "train": train, "evals": f.rows["eval"], "resumes": f.rows["resume"], "progress": pr}


def _progress_line(rec, view: dict) -> None:
    """The run's status, counts and what it is doing now, in ONE element: the browser applies each element
    as it arrives, so a note drawn as its own element could still say "running" under a bar that already
    says "stopping" (seen under load). A failure's full reason follows as an error below."""
    pr = view["progress"]
    line = (f"{BADGE.get(rec.status, '')} {rec.status} · step {pr.step} / {pr.total or '?'}"
            f" · elapsed {duration(pr.elapsed_s)} · remaining {duration(pr.remaining_s)}")
    note = _status_text(rec, pr.step) if rec.status != "failed" else ""
    st.progress(pr.fraction, text=f"{line}  \n{_escape_md(note)}" if note else line)


def _escape_md(text: str) -> str:
    """A store message shown as plain text inside the progress line's markdown."""
    return re.sub(r"([\\`*_{}\[\]<>()#+\-.!|~$])", r"\\\1", text)


def live(rec, view: dict) -> None:
    f, train, evals, resumes, pr = (view[k] for k in ("follower", "train", "evals", "resumes", "progress"))
    if rec.status == "failed" and rec.message:
        st.error(rec.message)
    if resumes:
        last = resumes[-1]
        st.caption(f"Resumed {len(resumes)}× · last from step {last['step']}, restored: "
                   f"{', '.join(last.get('restored') or []) or 'nothing (no checkpoint: started over)'}")
    if train:
        last = train[-1]
        m = st.columns(5)
        m[0].metric("train loss", f"{last['loss']:.4f}" if isinstance(last.get("loss"), float) else "—")
        m[1].metric("eval loss", f"{evals[-1]['eval_loss']:.4f}" if evals else "—")
        # the task's headline metric at the last evaluation (accuracy, entity F1, SQuAD F1, perplexity, ROUGE-L)
        label, value, _ = headline(rec.config.get("task", "text-classification"),
                                   {k.removeprefix("eval_"): v for k, v in (evals[-1] if evals else {}).items()})
        m[2].metric(f"eval {label}", value)
        m[3].metric("samples / s", f"{last.get('samples_per_s', 0):.1f}")
        m[4].metric("tokens / s", f"{last['tokens_per_s']:,.0f}" if last.get("tokens_per_s") else "—",
                    help="counted for token inputs; images and tables have none")
        c1, c2 = st.columns([1, 2])
        smoothing = c1.slider("Smoothing", 0.0, 0.99, 0.8, key="ft_smooth")
        steps = (train[0]["step"], train[-1]["step"])
        zoom = c2.slider("Steps shown (full resolution when ≤ 4,000 points)", steps[0], max(steps[1], steps[0] + 1),
                         (steps[0], max(steps[1], steps[0] + 1)), key=f"ft_zoom_{rec.id}") \
            if steps[1] > steps[0] else None
        st.plotly_chart(live_figure(train, evals, smoothing, resumes=resumes, x_range=zoom, series=f.series),
                        key="ft_live_fig")
        warn = overfitting(train, evals)
        if warn:
            st.warning(warn)
        if any("gpu_mem_allocated_mb" in t for t in train[-5:]):
            st.caption(f"GPU memory: {last.get('gpu_mem_allocated_mb', 0):,.0f} MiB allocated, "
                       f"{last.get('gpu_mem_reserved_mb', 0):,.0f} MiB reserved")
    elif rec.status in ("running", "stopping"):
        st.caption("Loading the model and tokenizing the data… the first points appear after step 1.")
