"""The sidebar every page shares: the device in use and the training jobs."""
from __future__ import annotations

import streamlit as st

from components import loaders
from core.system import human_bytes


def render_sidebar() -> None:
    report = loaders.device_report()
    with st.sidebar:
        st.caption("Device")
        if report.gpus:
            g = report.gpus[0]
            st.markdown(f"**{report.device_in_use}** · {g.name} ({human_bytes(g.total_bytes)})")
        else:
            st.markdown(f"**{report.device_in_use}** · {report.cpu_cores} cores, no GPU")
        st.caption("Training runs")
        st.fragment(_runs_summary, run_every=loaders.settings().poll_interval_s)()


def _runs_summary() -> None:
    """What exists in the run store ('3 completed · 1 running'), re-read every poll on every page."""
    from components.jobs import job_manager

    st.markdown(job_manager().store.snapshot().summary())
