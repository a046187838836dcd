"""Home: what Torch Lab is, the machine it runs on, and the offline assets it found."""
import pandas as pd
import streamlit as st

from components import loaders
from components.fragments import live_fragment
from core.assets import REGISTRY
from core.system import human_bytes

st.title("Torch Lab")
st.markdown(
    "A workbench for learning and experimenting with **PyTorch** and **Hugging Face Transformers** "
    "on real tensors, real autograd graphs, real tokenizers and real fine-tuning runs. "
    "Everything runs on this server — on its GPU when it has one — and works offline."
)

cols = st.columns(3)
TOUR = [
    ("pages/tensor_playground.py", "Tensor playground", "values, strides and the storage behind a view"),
    ("pages/autograd_graph.py", "Autograd graph", "the grad_fn graph with values and gradients"),
    ("pages/tokenizer_lab.py", "Tokenizers", "WordPiece vs BPE vs Unigram, side by side"),
    ("pages/dataset_browser.py", "Datasets", "upload a CSV, inspect it, shape it"),
    ("pages/fine_tuning.py", "Fine-tuning", "train in the background, watch the loss live"),
    ("pages/summarize_qa.py", "Summarize & QA", "extractive QA and summaries, scored"),
]
for i, (path, title, what) in enumerate(TOUR):
    with cols[i % 3]:
        st.page_link(path, label=f"**{title}**")
        st.caption(what)

st.subheader("How to use it")
st.markdown(
    "1. Start in the **Tensor playground**: type `x = torch.tensor([[1, 2], [3, 4]])`, then `x.T` and see why "
    "a transpose copies nothing.\n"
    "2. Open **Autograd graph**: its first example, `d = a * b + a`, is backpropagated as it loads (the "
    "gradients head the *Graph* tab); open the *Backward step by step* tab to see each gradient arrive.\n"
    "3. Compare how four tokenizer families split *unaffable* on **Tokenizers**.\n"
    "4. Load the drug-review sample on **Datasets**, then fine-tune MiniLM on it on **Fine-tuning** and watch "
    "it beat the majority-class baseline.\n\n"
    "Runs, datasets and trained tokenizers are kept in the workspace folder "
    f"`{loaders.settings().workspace}`: a refresh, a second browser or a server restart loses nothing."
)

st.subheader("Device")


def device_panel() -> None:
    report = loaders.device_report(wait=False)
    if report is None:  # the background probe imports torch: the rest of the page does not wait for it
        st.caption("Probing the device (importing torch)…")
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("CPU cores", report.cpu_cores, help=report.cpu_model)
    c2.metric("RAM", human_bytes(report.ram_total_bytes), help=f"{human_bytes(report.ram_available_bytes)} free")
    c3.metric("CUDA", "available" if report.cuda_available else "not available")
    c4.metric("Device in use", report.device_in_use)
    st.caption(f"CPU: {report.cpu_model} · RAM free: {human_bytes(report.ram_available_bytes)} · "
               f"Python {report.python}")
    if report.gpus:
        st.dataframe(pd.DataFrame([{"GPU": g.index, "name": g.name, "memory": human_bytes(g.total_bytes),
                                    "compute capability": g.capability, "bf16": g.bf16} for g in report.gpus]),
                     hide_index=True)
    else:
        st.caption("No GPU on this server: training and the timing panels run on the CPU.")
    st.dataframe(pd.DataFrame([{"library": k, "version": v} for k, v in report.versions.items()]),
                 hide_index=True, width=360)


def assets_panel() -> None:
    checks = loaders.asset_check(wait=False)
    if checks is None:
        st.caption("Loading each packaged tokenizer and model once to check it (in the background, ~20 s on a "
                   "2-core CPU)…")
    st.table(pd.DataFrame([{
        "loads": ("✅" if checks[n][0] else "❌") if checks else "⏳",
        "name": n, "kind": a.kind, "family": a.family, "checked": checks[n][1] if checks else "checking…",
        "package": a.package, "provenance": a.provenance, "licence": a.licence,
    } for n, a in REGISTRY.items()]).set_index("loads"))


poll = loaders.settings().poll_interval_s
live_fragment(device_panel, None if loaders.device_report(wait=False) else poll)
st.subheader("Offline assets")
live_fragment(assets_panel, None if loaders.asset_check(wait=False) else poll)
st.caption("Every asset above ships inside a package from the package registry; nothing is downloaded "
           "at run time. Hub ids work only where the network allows (TORCHLAB_OFFLINE=0).")
