"""Tokenizers — placeholder until issue #5 lands."""
import streamlit as st

st.title("Tokenizers")
st.info(
    "**Not built yet** (issue #5). This page will let you: Compare 2–6 tokenizers side by side (WordPiece, byte-level BPE, SentencePiece Unigram) with token chips aligned to the text, batch padding and truncation, dataset statistics, a vocabulary browser, and train your own BPE / WordPiece / Unigram tokenizer.",
    icon=":material/construction:",
)
