"""The sidebar every page shares: the device in use and the training jobs."""
from __future__ import annotations

import streamlit as st

from components import loaders
from components.fragments import live_fragment
from core.system import human_bytes

IDLE_POLL_S = 10.0  # the runs summary's poll while no run is queued, running or stopping


def render_sidebar() -> None:
    poll = loaders.settings().poll_interval_s
    with st.sidebar:
        st.caption("Device")
        ready = loaders.device_report(wait=False) is not None
        live_fragment(_device, None if ready else poll)
        st.caption("Training runs")
        # every poll reruns a fragment, and a widget change landing during one is sometimes dropped by
        # Streamlit (see components.fragments): with no run active the summary can only change when a run
        # starts, so it polls slowly until then and switches to `poll` with one full rerun
        fast = st.session_state["sb_fast_poll"] = loaders.run_store().snapshot().active
        live_fragment(_runs_summary, poll if fast else max(IDLE_POLL_S, poll))


def _device() -> None:
    """The device line; while the background probe runs (it imports torch), says so and polls."""
    report = loaders.device_report(wait=False)
    if report is None:
        st.markdown("probing the device…")
    elif report.gpus:
        g = report.gpus[0]
        st.markdown(f"**{report.device_in_use}** · {g.name} ({human_bytes(g.total_bytes)})")
    else:
        st.markdown(f"**{report.device_in_use}** · {report.cpu_cores} cores, no GPU")


def _runs_summary() -> None:
    """What exists in the run store ('3 completed · 1 running'), re-read every poll on every page."""
    snap = loaders.run_store().snapshot()
    st.markdown(snap.summary())
    follow_active_runs(snap)


def follow_active_runs(snap) -> None:
    """Called by every live fragment that reads the run store: when a run is active (started here or in
    another browser) while the sidebar polls at its idle rate, one full rerun puts it on the fast rate, so
    the sidebar never lags the runs panel beside it."""
    if snap.active and not st.session_state.get("sb_fast_poll"):
        st.rerun(scope="app")
