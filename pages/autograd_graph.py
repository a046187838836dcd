"""Autograd graph — placeholder until issue #4 lands."""
import streamlit as st

st.title("Autograd graph")
st.info(
    "**Not built yet** (issue #4). This page will let you: Run a small program with tensors that require grad, draw the real grad_fn graph with values and gradients on every node, step through backward, and run one optimizer step on a small MLP.",
    icon=":material/construction:",
)
