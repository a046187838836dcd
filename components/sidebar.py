"""The sidebar every page shares: the device in use and the training jobs."""
from __future__ import annotations

import streamlit as st

from components import loaders
from components.fragments import live_fragment
from core.system import human_bytes


def render_sidebar() -> None:
    poll = loaders.settings().poll_interval_s
    with st.sidebar:
        st.caption("Device")
        ready = loaders.device_report(wait=False) is not None
        live_fragment(_device, None if ready else poll)
        st.caption("Training runs")
        live_fragment(_runs_summary, poll)


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
    st.markdown(loaders.run_store().snapshot().summary())
