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
        jobs_summary = _jobs_summary()
        if jobs_summary:
            st.caption("Training jobs")
            st.markdown(jobs_summary)


def _jobs_summary() -> str | None:
    """One line on running / queued jobs."""
    from components.jobs import job_manager

    counts = job_manager().counts()
    if not any(counts.values()):
        return "no jobs yet"
    return " · ".join(f"{n} {state}" for state, n in counts.items() if n)
