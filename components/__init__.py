"""Reusable Streamlit pieces: figure builders, cached loaders, panels. Pages import from here."""
