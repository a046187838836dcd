"""Tokenizers: compare families side by side, batch and pad, measure on a dataset, browse, train your own.

Each tab catches the core's errors beside the widget that caused them, inside `chips.tab_errors`, so one
tab's failure never blanks the tabs after it.
"""
import pandas as pd
import streamlit as st

from components import loaders
from components import token_chips as chips
from core import tokenizers as T
from core.assets import AssetError

settings = loaders.settings()
DEFAULT = ["bert-wordpiece-uncased", "cl100k_base", "xlm-r-unigram"]  # one of each family
CLASSIC = "Transformers are amazing\nunaffable"
MAX_ROWS = 20_000  # rows of a dataset measured per tokenizer, so the tab answers in seconds

st.title("Tokenizers")
st.caption("The same text through WordPiece, byte-level BPE and SentencePiece Unigram: every chip is one "
           "token over the exact characters it came from. Hover a chip for its id and raw token; a dashed red "
           "border means another tokenizer cuts that stretch of text differently.")

# a tokenizer added below or trained in the last run joins the selection before the widget is drawn
ss = st.session_state
ss.setdefault("tok_selected", DEFAULT)
ss.setdefault("tok_extra", [])
options = T.available(settings)
options += [e for e in ss.tok_extra if e not in options]
kept = [n for n in ss.tok_selected if n in options]  # a trained folder may have been deleted meanwhile
if new := ss.pop("tok_add", None):
    kept = [n for n in kept if n != new][-5:] + [new]
if kept != ss.tok_selected:
    ss.tok_selected = kept
selected = st.multiselect("Tokenizers (2 to 6)", options, key="tok_selected", max_selections=6)
with st.expander("Add a tokenizer folder from the server, or a hub id"):
    spec = st.text_input("Folder path or hub id", placeholder="/data/my-tokenizer  or  bert-base-uncased")
    if st.button("Add", key="tok_add_btn") and spec.strip():
        try:
            name = T.add_tokenizer(spec, settings)  # a folder is checked and remembered; else a hub id
            chips.tokenizer(name)  # loads it now, so an offline hub id is refused here
            ss.tok_extra.append(name)
            ss.tok_add = name
            st.rerun()
        except AssetError as e:
            st.error(str(e))

toks, errors = chips.load_many(selected)
for e in errors:
    st.error(e)
if len(toks) < 2:
    st.info("Pick at least two tokenizers to see where they split differently.")

compare_tab, batch_tab, data_tab, vocab_tab, train_tab = st.tabs(
    ["Compare", "Batch & padding", "Dataset", "Vocabulary", "Train your own"])

with compare_tab, chips.tab_errors("Compare"):
    text = st.text_area("Text", CLASSIC, height=100, help=f"up to {settings.max_text_chars:,} characters "
                        f"({settings.env_name('max_text_chars')})")
    try:
        cmp = T.compare(toks, text, settings)
    except T.TextError as e:
        st.warning(str(e))
    else:
        for note in T.text_notes(text):
            st.caption(f"ⓘ {note}")
        st.dataframe(pd.DataFrame(chips.stats_rows(cmp)), hide_index=True)
        chips.render_comparison(cmp, toks)
        with st.expander("What `Ġ`, `▁` and `##` mean"):
            st.markdown(chips.markers_help())

with batch_tab, chips.tab_errors("Batch & padding"):
    c1, c2 = st.columns([2, 1])
    lines = c1.text_area("One sentence per line (`first ||| second` for a pair)",
                         "Transformers are amazing\nunaffable\nTokenizers pad short sentences to the longest one",
                         height=120)
    bt = c2.selectbox("Tokenizer", list(toks), key="batch_tok")
    padding = c2.radio("Padding", ["longest", "max_length", "do_not_pad"], horizontal=True)
    max_length = c2.number_input("max_length", 2, T.MAX_BATCH_POSITIONS, 8)
    truncation = c2.checkbox("Truncate to max_length", True)
    overflow = c2.checkbox("Keep the overflow as extra rows (stride)", False,
                           help="pairs keep the first part whole and window the second (the question-answering recipe)")
    stride = c2.number_input("stride (tokens repeated between overflow rows)", 0, T.MAX_BATCH_POSITIONS, 2,
                             disabled=not overflow)
    rows = [ln for ln in lines.splitlines() if ln.strip()]
    is_pair = bool(rows) and all("|||" in r for r in rows)
    firsts = [r.split("|||", 1)[0].strip() for r in rows] if is_pair else rows
    try:
        bv = T.batch_encode(toks[bt], firsts, pairs=[r.split("|||", 1)[1].strip() for r in rows] if is_pair else None,
                            padding=padding, max_length=int(max_length), truncation=truncation, stride=int(stride),
                            overflow=overflow) if bt else None
    except T.TextError as e:  # a refused batch, right under the padding / truncation widgets that caused it
        c2.error(str(e))
        bv = None
    if bv:
        st.markdown(f"**{bv.shape[0]} rows × {bv.shape[1]} positions**" + (" (pairs)" if is_pair else ""))
        grid = pd.DataFrame(bv.tokens).fillna("").rename(columns=str)
        grid.insert(0, "sentence", bv.sample_of_row)
        st.dataframe(grid, hide_index=True)
        for key, values in bv.tensors.items():
            st.caption(key)
            st.dataframe(pd.DataFrame(values).rename(columns=str), hide_index=True)
        st.code(bv.tensor_repr, language="python")

sources = T.text_sources(settings)  # the Dataset tab and the training form both offer these
with data_tab, chips.tab_errors("Dataset"):
    d1, d2, d3 = st.columns(3)
    source = d1.selectbox("Dataset", list(sources))
    column = d2.selectbox("Text column", sources[source])
    ml = d3.slider("max_length", 8, 512, 128, step=8)
    try:
        stats = [chips.corpus_stats(n, source, column, ml, MAX_ROWS) for n in toks]
    except T.TextError as e:
        st.warning(str(e))
        stats = []
    if stats:
        st.dataframe(pd.DataFrame(chips.corpus_rows(stats)), hide_index=True)
        st.plotly_chart(chips.length_histogram(stats, ml))
        st.caption(f"{len(stats[0].lengths):,} texts (at most the first {MAX_ROWS:,}), {stats[0].n_words:,} "
                   "words. Fertility = text tokens per whitespace word; padding waste = pad slots / all slots.")

with vocab_tab, chips.tab_errors("Vocabulary"):
    v1, v2 = st.columns([1, 2])
    vt = v1.selectbox("Tokenizer", list(toks), key="vocab_tok")
    query = v2.text_input("Search tokens (text or an id)", "amaz")
    merged = []
    if vt:
        try:
            hits = T.vocab_search(toks[vt], query)
            st.dataframe(pd.DataFrame(hits, columns=["id", "token", "as text"]), hide_index=True)
            merged = chips.merges(vt)
        except T.TextError as e:
            v2.warning(str(e))
        if merged:
            st.caption(f"BPE merges ({len(merged):,}, in the order they are applied) whose result contains "
                       f"{query!r}")
            st.dataframe(pd.DataFrame(T.search_merges(merged, query.strip()),
                                      columns=["rank", "left", "right", "result"]), hide_index=True)
        else:
            st.caption(f"{vt} is not a BPE model: it has no merge list.")

with train_tab, chips.tab_errors("Train your own"):
    with st.form("train"):
        f1, f2, f3 = st.columns(3)
        name = f1.text_input("Name", "my-bpe")
        model = f1.selectbox("Model", T.MODELS)
        pre = f2.selectbox("Pre-tokenizer", T.PRE_TOKENIZERS)
        norms = f2.multiselect("Normalizer", T.NORMALIZERS, ["NFD", "lowercase", "strip_accents"])
        vocab = f3.number_input("Vocabulary size", 1, T.MAX_VOCAB, 2000)
        min_freq = f3.number_input("Min frequency", 1, 1000, 2)
        specials = st.text_input("Special tokens (space-separated; empty: the model's usual ones)", "")
        src = st.selectbox("Train on", list(sources) + ["an uploaded text file"], key="train_src")
        col = st.text_input("Column (for a dataset)", "text")
        upload = st.file_uploader("Text file (one text per line)", type=["txt", "csv", "jsonl", "md"])
        go = st.form_submit_button("Train", type="primary")
        st.caption("The bar follows the texts the Rust trainer has read; its merge / pruning phase after that "
                   "reports no steps, so the bar waits at 90% with that phase named.")
    if go:
        try:
            config = T.TrainConfig(name.strip(), model, int(vocab), int(min_freq), tuple(norms), pre,
                                   tuple(specials.split()))
            if src == "an uploaded text file":
                if upload is None:
                    raise T.TextError("choose a text file to upload first")
                texts, corpus = T.file_texts(upload.getvalue(), upload.name), upload.name
            else:
                texts, corpus = T.source_texts(src, col.strip(), settings), f"{src} / {col}"
            done = chips.train_with_progress(config, texts, corpus)
        except (T.TextError, T.TrainError) as e:
            st.error(str(e))
        else:
            ss.tok_trained = (f"Trained **{done.name}**: {done.vocab_size:,} tokens in {done.seconds:.2f} s from "
                              f"{len(texts):,} texts, saved in `{done.path}`; it is now in the comparison.",
                              done.notes)
            ss.tok_add = done.name
            st.rerun()  # so the selection at the top picks it up
    if trained := ss.pop("tok_trained", None):
        st.success(trained[0])
        for note in trained[1]:
            st.caption(f"ⓘ {note}")
