"""Streamlit pieces of the Summarize & QA page: cached models, method pickers, highlighted text, tables.

Every cached object here is shared by all sessions: read-only (inference only, never trained).
"""
from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from components import loaders
from core.nlp import Answer, LoadedModel, Summary

EMBEDDINGS = "MiniLM embeddings (offline)"
QA_MODEL = "Span QA checkpoint"
SEQ2SEQ = "Seq2seq checkpoint"
MAX_SHOWN_CHARS = 4_000  # a long context is shown as a window around the answer


# --- cached loaders ----------------------------------------------------------------------------

@st.cache_resource(show_spinner="Loading the MiniLM sentence encoder…")
def encoder():
    from core.nlp import load_encoder

    return load_encoder()


def _stamp(spec: str) -> float:
    """config.json's mtime for a local folder, so a checkpoint saved again is loaded again."""
    cfg = Path(spec).expanduser() / "config.json"
    return cfg.stat().st_mtime if cfg.is_file() else 0.0


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=3)
def _model(spec: str, task: str, stamp: float) -> LoadedModel:
    from core.nlp import load_model

    return load_model(spec, task, loaders.settings())


def model(spec: str, task: str) -> LoadedModel:
    """A checkpoint for `task`, loaded once per server (NLPError if it can't be used)."""
    return _model(spec.strip(), task, _stamp(spec.strip()))


def progress_bar(label: str) -> tuple[Callable[[float, str], None], Any]:
    """(callback for core's progress, the bar) — the bar is removed by the caller when done."""
    bar = st.progress(0.0, text=label)
    return (lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), text=f"{label}: {msg}")), bar


# --- method pickers (return plain settings) ----------------------------------------------------

def qa_picker() -> dict[str, Any]:
    """The QA method and its settings."""
    method = st.radio("Method", [EMBEDDINGS, QA_MODEL], horizontal=True, key="qa_method",
                      help="Embeddings rank the context's sentences by similarity to the question; a span "
                           "QA model reads start/end logits over the tokens.")
    c = st.columns(4)
    if method == EMBEDDINGS:
        gran = c[0].radio("Answer unit", ["sentence", "clause"], key="qa_gran", horizontal=True,
                          help="clause: narrow the best sentence to its clause closest to the question")
        return {"method": method, "granularity": gran}
    runs = qa_runs()
    # the folder box first, as before runs existed; each completed extractive-QA run is one more choice
    picked = st.selectbox("Span QA checkpoint", [OTHER_CHECKPOINT, *runs], key="qa_run",
                          help="Completed extractive-QA runs of the Fine-tuning page, or any folder / hub id")
    spec = runs.get(picked) or st.text_input(
        "Checkpoint folder or hub id", key="qa_spec",
        placeholder="/path/to/squad-model or distilbert/distilbert-base-cased-distilled-squad")
    if not spec.strip():
        st.info("No span-QA checkpoint ships with Torch Lab (none is packaged offline). Fine-tune one on the "
                "Fine-tuning page (task: extractive question answering) and pick it above; or give the "
                "folder of a model fine-tuned for extractive QA (a `save_pretrained` folder) or a hub id where the "
                "network allows. Until then the MiniLM embeddings method answers offline.", icon=":material/info:")
    kw = {"max_answer_tokens": c[0].number_input("Max answer tokens", 1, 512, 30, key="qa_maxans"),
          "max_length": c[1].number_input("Window tokens", 32, 4096, 384, step=32, key="qa_maxlen"),
          "stride": c[2].number_input("Stride (overlap)", 0, 2048, 128, step=16, key="qa_stride")}
    if c[3].checkbox("No-answer threshold", key="qa_null_on", help="SQuAD 2.0 models: answer nothing when the "
                     "[CLS] score beats the best span by more than this"):
        kw["no_answer_threshold"] = c[3].number_input("Threshold", -20.0, 20.0, 0.0, key="qa_null")
    return {"method": method, "spec": spec, **kw}


OTHER_CHECKPOINT = "Other folder or hub id…"


def qa_runs() -> dict[str, str]:
    """Label -> model folder of every completed extractive-QA run (the span QA checkpoints)."""
    from core.training.extractive_qa import qa_checkpoints

    return _completed_runs(qa_checkpoints)


def seq2seq_runs() -> dict[str, str]:
    """Label -> model folder of every completed sequence-to-sequence run (summarisers)."""
    from core.training.generation import summarizer_models

    return _completed_runs(summarizer_models)


def _completed_runs(pick) -> dict[str, str]:
    try:
        from core.training import RunStore

        return pick(RunStore(loaders.settings().runs_db).runs())
    except Exception:  # a damaged or locked store must not break this page
        return {}


def summary_picker() -> dict[str, Any]:
    """The summary method and its settings."""
    method = st.radio("Method", [EMBEDDINGS, SEQ2SEQ], horizontal=True, key="sum_method",
                      help="Embeddings keep the most central sentences (extractive); a seq2seq model writes "
                           "new text (abstractive).")
    c = st.columns(5)
    if method == EMBEDDINGS:
        rank = c[0].radio("Ranking", ["centroid", "textrank"], key="sum_rank", horizontal=True)
        n = c[1].number_input("Sentences", 1, 50, 2, key="sum_n")
        words = c[2].number_input("Max words (0 = no cap)", 0, 5000, 0, key="sum_words")
        return {"method": method, "kwargs": {"method": rank, "max_sentences": n, "max_words": words or None}}
    runs = seq2seq_runs()
    picked = st.selectbox("Seq2seq checkpoint", [OTHER_CHECKPOINT, *runs], key="sum_run",
                          help="Completed sequence-to-sequence runs of the Fine-tuning page, or any folder / hub id")
    spec = runs.get(picked) or st.text_input("Checkpoint folder or hub id", key="sum_spec",
                                             placeholder="/path/to/bart-or-t5 or sshleifer/distilbart-cnn-12-6")
    if not spec.strip():
        st.info("No summarization checkpoint ships with Torch Lab. Fine-tune an encoder-decoder on the Fine-tuning "
                "page (task: sequence to sequence) and pick it above; or give the folder of a seq2seq model "
                "(BART, T5, Pegasus: a `save_pretrained` folder) or a hub id where the network allows; "
                "until then the MiniLM embeddings method summarizes offline.", icon=":material/info:")
    kw = {"num_beams": c[0].number_input("Beams", 1, 16, 4, key="sum_beams"),
          "min_length": c[1].number_input("Min new tokens", 0, 512, 10, key="sum_min"),
          "max_length": c[2].number_input("Max new tokens", 1, 1024, 128, key="sum_max"),
          "length_penalty": c[3].number_input("Length penalty", -5.0, 5.0, 1.0, step=0.1, key="sum_lp"),
          "no_repeat_ngram_size": c[4].number_input("No-repeat n-gram", 0, 10, 3, key="sum_ngram")}
    return {"method": method, "spec": spec, "kwargs": kw}


def run_qa(cfg: dict[str, Any], question: str, context: str, progress=None) -> Answer:
    """Answer with the picked method (raises NLPError on bad input or an unusable checkpoint)."""
    from core.nlp import embedding_answer, span_answer

    if cfg["method"] == EMBEDDINGS:
        return embedding_answer(question, context, encoder(), granularity=cfg["granularity"], progress=progress)
    kw = {k: v for k, v in cfg.items() if k not in ("method", "spec")}
    return span_answer(model(cfg["spec"], "question-answering"), question, context, progress=progress, **kw)


def run_summary(cfg: dict[str, Any], document: str, progress=None) -> Summary:
    """Summarize with the picked method (raises NLPError on bad input or an unusable checkpoint)."""
    from core.nlp import abstractive_summary, extractive_summary

    if cfg["method"] == EMBEDDINGS:
        return extractive_summary(document, encoder(), progress=progress, **cfg["kwargs"])
    return abstractive_summary(model(cfg["spec"], "summarization"), document, progress=progress, **cfg["kwargs"])


# --- rendering ---------------------------------------------------------------------------------

def _marked(text: str, spans: list[tuple[int, int, str]]) -> str:
    """`text` HTML-escaped, with each (start, end, colour) span wrapped in <mark>."""
    out, pos = [], 0
    for a, b, colour in sorted(spans):
        out += [html.escape(text[pos:a]),
                f'<mark style="background:{colour};padding:0 2px;border-radius:3px">{html.escape(text[a:b])}</mark>']
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def _box(inner: str) -> None:
    st.markdown(f'<div style="max-height:420px;overflow-y:auto;border:1px solid #ddd;border-radius:6px;'
                f'padding:10px 12px;line-height:1.7">{inner}</div>', unsafe_allow_html=True)


def show_answer(context: str, a: Answer) -> None:
    """The answer, its score and method, and the context with the answer highlighted."""
    for w in a.warnings:
        st.warning(w, icon=":material/info:")
    if not a.found:
        st.info(f"**No answer**: the model's no-answer score won. Best span was "
                f"“{a.candidates[0].text if a.candidates else ''}”. ({a.method})")
        return
    c = st.columns([4, 1])
    c[0].markdown(f"**Answer:** {html.escape(a.text)}", unsafe_allow_html=False)
    c[1].metric("Score", f"{a.score:.3f}")
    st.caption(f"Characters {a.start:,}–{a.end:,} of {len(context):,} · method: {a.method}")
    spans = [(a.start, a.end, "#ffd54f")]
    if a.sentence:  # the clause inside its sentence
        spans = [(a.sentence[0], a.start, "#fff3c4"), (a.start, a.end, "#ffd54f"), (a.end, a.sentence[1], "#fff3c4")]
    lo, hi = 0, len(context)
    if len(context) > MAX_SHOWN_CHARS:  # a long document: a window around the answer
        lo = max(0, a.start - MAX_SHOWN_CHARS // 2)
        hi = min(len(context), lo + MAX_SHOWN_CHARS)
    shown = [(s - lo, e - lo, col) for s, e, col in spans if s < e]
    _box(("… " * (lo > 0)) + _marked(context[lo:hi], shown) + (" …" * (hi < len(context))))
    if len(a.candidates) > 1:
        with st.expander(f"Top {len(a.candidates)} candidates"):
            st.dataframe([{"score": round(s.score, 4), "start": s.start, "end": s.end, "text": s.text}
                          for s in a.candidates], hide_index=True, width="stretch")


def show_summary(document: str, s: Summary) -> None:
    """The summary, its method, and (extractive) the kept sentences marked in the document."""
    for w in s.warnings:
        st.warning(w, icon=":material/info:")
    st.markdown("**Summary**")
    _box(html.escape(s.text).replace("\n", "<br>") if s.text else "<i>(empty)</i>")
    st.caption(f"Method: {s.method}")
    if s.kept:
        with st.expander("Kept sentences in the document, and every sentence's centrality"):
            kept = [(s.sentences[i].start, s.sentences[i].end, "#c8e6c9") for i in s.kept]
            if len(document) <= 4 * MAX_SHOWN_CHARS:
                _box(_marked(document, kept))
            st.bar_chart({"centrality": [round(x.score, 4) for x in s.sentences]}, height=180,
                          x_label="sentence", y_label="score")


def show_rouge(scores: dict[str, float]) -> None:
    c = st.columns(len(scores))
    for col, (k, v) in zip(c, scores.items(), strict=True):
        col.metric(k.replace("rouge", "ROUGE-"), f"{v:.3f}")


def show_probabilities(texts: list[str], probs: list[dict[str, float]]) -> None:
    """Each text's top label and the full distribution."""
    rows = [{"text": t[:120], "label": max(p, key=p.get), **{k: round(v, 4) for k, v in p.items()}}
            for t, p in zip(texts, probs, strict=True)]
    st.dataframe(rows, hide_index=True, width="stretch")


def finetuned_runs() -> dict[str, str]:
    """Run label -> model folder for finished fine-tuning runs that saved a model."""
    try:
        from core.training import RunStore
    except ImportError:
        return {}
    try:
        runs = RunStore(loaders.settings().runs_db).runs()
    except Exception:  # a damaged or locked store must not break this page
        return {}
    # text classifiers only: a network built from scratch (CNN, GPT…) is not a sequence classifier
    return {f"{r.name} ({r.id}, {r.status})": r.model_dir for r in runs
            if r.model_dir and r.config.get("task", "text-classification") == "text-classification"}


def saved_datasets() -> dict[str, Any]:
    """Label -> DatasetRef of the datasets saved on the dataset page (.name, .version, .splits, .columns)."""
    try:
        from core.data import DatasetStore
    except ImportError:
        return {}
    return {r.label: r for r in DatasetStore(loaders.settings().datasets_dir).list()}


def read_table(source: Any, split: str | None = None, limit: int = 1000):
    """Up to `limit` rows as a DataFrame, from an uploaded CSV file or a saved DatasetRef's split."""
    import pandas as pd

    if hasattr(source, "version"):
        from core.data import DatasetStore

        ds = DatasetStore(loaders.settings().datasets_dir).load(source.name, source.version)[split]
        return ds.select(range(min(limit, len(ds)))).to_pandas()
    return pd.read_csv(source, nrows=limit)


def memo(slot: str, key: tuple, compute: Callable[[], Any]) -> Any:
    """compute() again only when `key` changes, per session: reruns from other widgets reuse the result."""
    import hashlib

    store = st.session_state.setdefault("_nlp_memo", {})
    digest = hashlib.sha1(repr(key).encode()).hexdigest()
    if slot in store and store[slot][0] == digest:
        return store[slot][1]
    value = compute()  # an error is raised before storing, so a fixed input runs again
    store[slot] = (digest, value)
    return value


def batch_source() -> tuple[list[dict], str | None, int]:
    """(rows with role keys, "qa" | "summary" | None, row limit) from a sample, a saved dataset or a CSV."""
    from core.nlp import eval_columns, qa_rows, summary_rows

    src = st.radio("Data", ["Sample questions", "Sample summaries", "Saved dataset", "Upload CSV"],
                   horizontal=True, key="batch_src")
    limit = int(st.columns(3)[0].number_input("Rows (at most)", 1, 5000, 50, key="batch_limit"))
    if src == "Sample questions":
        return qa_rows()[:limit], "qa", limit
    if src == "Sample summaries":
        return summary_rows()[:limit], "summary", limit
    try:
        if src == "Saved dataset":
            datasets = saved_datasets()
            if not datasets:
                st.info("No saved datasets yet: load one on the Datasets page.")
                return [], None, limit
            ref = datasets[st.selectbox("Dataset", list(datasets), key="batch_ds")]
            df = read_table(ref, st.selectbox("Split", list(ref.splits), key="batch_split"), limit)
        else:
            up = st.file_uploader("CSV with (context, question, answers) or (document, summary) columns",
                                  type=["csv"], key="batch_csv")
            if up is None:
                return [], None, limit
            df = read_table(up, limit=limit)
        task, cols = eval_columns(df.columns)
    except (ValueError, OSError, KeyError) as e:
        st.error(f"Can't evaluate on this table: {e}", icon=":material/error:")
        return [], None, limit
    st.caption(f"{len(df):,} rows · {'question answering' if task == 'qa' else 'summarization'} · "
               + ", ".join(f"`{c}` as {role}" for role, c in cols.items()))
    return [{role: r[c] for role, c in cols.items()} for r in df.to_dict("records")], task, limit


def show_batch(task: str, out: list[dict]) -> None:
    """Averages, then the per-example table sorted by the chosen score."""
    from core.nlp import mean_scores

    keys = ["exact_match", "f1"] if task == "qa" else ["rouge1", "rouge2", "rougeL"]
    means = mean_scores(out, keys)
    st.markdown(f"**Averages over {len(out):,} examples**")
    c = st.columns(len(keys))
    for col, k in zip(c, keys, strict=True):
        col.metric({"exact_match": "Exact match", "f1": "Token F1"}.get(k, k.replace("rouge", "ROUGE-")),
                   f"{means.get(k, 0.0):.3f}")
    s = st.columns([2, 1])
    by = s[0].selectbox("Sort by", keys, index=len(keys) - 1, key="batch_sort")
    worst_first = s[1].toggle("Worst first", True, key="batch_order")
    if task == "qa" and means.get("exact_match", 1.0) < 0.2 < means.get("f1", 0.0):
        st.caption("Whole-sentence answers rarely match a short gold span exactly: token F1 is the fairer "
                   "score for the embedding method.")
    order = ["row", *keys] + [c for c in out[0] if c not in keys and c != "row"] if out else None
    st.dataframe(sorted(out, key=lambda r: r[by], reverse=not worst_first), hide_index=True, width="stretch",
                 column_order=order,
                 column_config={k: st.column_config.ProgressColumn(k, min_value=0.0, max_value=1.0, format="%.3f")
                                for k in keys})
    if errors := sum(bool(r["error"]) for r in out):
        st.warning(f"{errors} row(s) failed; their messages are in the error column.")
