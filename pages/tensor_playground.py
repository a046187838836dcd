"""Tensor playground — placeholder until issue #3 lands."""
import streamlit as st

st.title("Tensor playground")
st.info(
    "**Not built yet** (issue #3). This page will let you: Define tensors by literal, factory or formula in a safe expression language; see values, shape, dtype, strides, storage offset and the underlying storage strip, views vs copies, broadcasting, and CPU vs GPU timings.",
    icon=":material/construction:",
)
