"""Summarize & QA — placeholder until issue #8 lands."""
import streamlit as st

st.title("Summarize & QA")
st.info(
    "**Not built yet** (issue #8). This page will let you: Extractive question answering and summarization with the packaged MiniLM embeddings, model-based QA and summarization with any local checkpoint, scored with ROUGE and exact match / F1.",
    icon=":material/construction:",
)
