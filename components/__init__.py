"""Reusable Streamlit pieces: figure builders, cached loaders, panels. Pages import from here."""


def _route_through_app() -> None:
    """Make every first visit go through app.py's st.navigation.

    Until some script in this process has called st.navigation, Streamlit treats a `pages/`
    folder beside the entry point as auto-discovered pages (multipage v1): a deep link opened
    first after a server start (say /fine_tuning) then runs that page alone, without the
    sections, the sidebar or the page config. Our pages are only ever routed by app.py, so the
    flag is switched off on first import and the run restarts through app.py.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if get_script_run_ctx() is not None:
            import streamlit as st

            st.rerun()


_route_through_app()
