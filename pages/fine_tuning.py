"""Fine-tuning — placeholder until issue #7 lands."""
import streamlit as st

st.title("Fine-tuning")
st.info(
    "**Not built yet** (issue #7). This page will let you: Fine-tune MiniLM (or any local model) on a dataset in the background and watch loss, learning rate and throughput update live; stop, resume and compare runs.",
    icon=":material/construction:",
)
