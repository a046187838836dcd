"""Torch Lab entry point: routes every page explicitly and draws the shared sidebar."""
import streamlit as st
import transformers  # noqa: F401 - see below

from components import loaders
from components.sidebar import render_sidebar

st.set_page_config(page_title="Torch Lab", page_icon="🔥", layout="wide")

PAGES = {
    "Torch Lab": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    ],
    "Learn PyTorch": [
        st.Page("pages/tensor_playground.py", title="Tensor playground", icon=":material/grid_on:"),
        st.Page("pages/autograd_graph.py", title="Autograd graph", icon=":material/account_tree:"),
        st.Page("pages/build_models.py", title="Build a network", icon=":material/stacks:"),
    ],
    "Transformers": [
        st.Page("pages/tokenizer_lab.py", title="Tokenizers", icon=":material/text_fields:"),
        st.Page("pages/dataset_browser.py", title="Datasets", icon=":material/table:"),
        st.Page("pages/fine_tuning.py", title="Fine-tuning", icon=":material/model_training:"),
        st.Page("pages/summarize_qa.py", title="Summarize & QA", icon=":material/question_answer:"),
        st.Page("pages/transformer_anatomy.py", title="Transformer anatomy", icon=":material/neurology:"),
    ],
}

# `import transformers` above: while one thread is still executing transformers/__init__ (a training job,
# another session's first page), `datasets` pickles a fingerprint by reading attributes of whatever
# sys.modules["transformers"] holds, and a half-built module fails with "module 'transformers' has no
# attribute 'PreTrainedTokenizerBase'". An import waits for a module another thread is importing, so
# after this line every script run sees it whole. It costs ~1 s once per server process.
page = st.navigation(PAGES)
render_sidebar()
page.run()
loaders.start_warm_up()  # after the page: the probes never delay the first page a visitor sees
