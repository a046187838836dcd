"""The one JobManager of this server process (shared by every browser session)."""
from __future__ import annotations

import streamlit as st

from components import loaders
from core.training import JobManager


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    return JobManager(settings=loaders.settings())
