"""Datasets — placeholder until issue #6 lands."""
import streamlit as st

st.title("Datasets")
st.info(
    "**Not built yet** (issue #6). This page will let you: Upload a CSV / TSV / JSON Lines / Parquet file (or use the drug-review sample), browse it page by page with column statistics and a label chart, and shape it with Hugging Face datasets operations saved as versions.",
    icon=":material/construction:",
)
