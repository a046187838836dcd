"""The one place where heavy objects are cached for the whole server (st.cache_resource).

Everything returned here is shared by every browser session: treat it as read-only.
Fine-tuning and anything that mutates works on a fresh copy.
"""
from __future__ import annotations

import streamlit as st

from core.settings import Settings, get_settings


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner="Probing the machine…")
def device_report():
    from core.system import device_report as probe

    return probe(settings().device)


@st.cache_resource(show_spinner="Loading tokenizer…", max_entries=16)
def packaged_tokenizer(name: str):
    from core.assets import load_tokenizer

    return load_tokenizer(name, settings())


@st.cache_resource(show_spinner="Checking offline assets…")
def asset_check() -> dict[str, tuple[bool, str]]:
    """Each registry asset -> (loads, detail), checked once per server."""
    from core.assets import check_assets

    return check_assets(settings())
