"""An extractive-QA run's results: SQuAD EM / F1 against the first-words baseline, evaluation examples with
gold and predicted answers, "try it" with the answer highlighted in the context, the code, the export script."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from components.training_results import eval_split_batch, model_download
from components.training_shrink import shrink_panel

MARK = '<mark style="background:#ffd54f;padding:0 2px;border-radius:3px">{}</mark>'


@st.cache_resource(show_spinner="Loading the run's QA model…", max_entries=4)
def _model(model_dir: str, stamp: float):
    """The run's model, loaded once per server and only read (inference); `stamp` reloads a re-saved folder."""
    from core.nlp import load_model

    return load_model(model_dir, "question-answering")


def _loaded(rec):
    return _model(rec.model_dir, Path(rec.model_dir, "config.json").stat().st_mtime)


@st.cache_data(show_spinner="Reading the run's evaluation rows…", max_entries=8)
def _examples(run_id: str, config_json: str, _rec, _settings) -> list[dict]:
    from core.training.extractive_qa import eval_examples

    return eval_examples(_rec, _settings)


def highlighted(context: str, start: int, end: int) -> str:
    """The context as HTML with [start, end) in a <mark>."""
    return (html.escape(context[:start]) + MARK.format(html.escape(context[start:end]))
            + html.escape(context[end:])).replace("\n", "<br>")


def results(rec, settings) -> None:
    fm = rec.final_metrics or {}
    em, f1 = fm.get("exact_match", 0.0), fm.get("f1", 0.0)
    bem, bf1 = fm.get("baseline_exact_match"), fm.get("baseline_f1")
    words = rec.plan.get("baseline_words", "N")
    m = st.columns(4)
    m[0].metric("exact match", f"{em:.1f}", f"{em - bem:+.1f} vs baseline" if bem is not None else None,
                help="SQuAD v1.1: % of questions whose predicted span equals a gold answer after normalisation "
                     "(lower case, no punctuation, no a/an/the)")
    m[1].metric("F1", f"{f1:.1f}", f"{f1 - bf1:+.1f} vs baseline" if bf1 is not None else None,
                help="SQuAD v1.1: word overlap of prediction and the best-matching gold answer, averaged, in %")
    m[2].metric("baseline EM / F1", f"{bem:.1f} / {bf1:.1f}" if bem is not None else "—",
                help=f"an untrained guess: the context's first {words} words (the median gold answer length)")
    m[3].metric("windows (train / eval)", f"{rec.plan.get('train_windows', '—')} / {rec.plan.get('eval_windows', '—')}",
                help=f"question + context windows of {rec.config.get('max_length')} tokens, stride "
                     f"{rec.plan.get('doc_stride', '—')}")
    if not rec.model_dir or not Path(rec.model_dir, "config.json").is_file():
        st.info("This run has no saved model: finish or resume it to try it.")
        return
    examples = _examples(rec.id, json.dumps(rec.config, sort_keys=True), rec, settings)
    eval_table(rec, examples)
    try_it(rec, settings, examples)
    from core.training.qa_export import pipeline_code

    with st.expander("Use the model in your own code"):
        st.code(pipeline_code(rec.model_dir, int(rec.config.get("max_length", 384))), language="python")
    c1, c2 = st.columns(2)
    model_download(c1, rec, "qa")
    export(c2, rec, settings)
    batch(rec, settings)
    shrink_panel(rec, settings)


def batch(rec, settings) -> None:
    """The run's model over its evaluation split (up to 500 questions): every answer, SQuAD scores, throughput."""
    from core.training.extractive_qa import batch_answer

    def run():
        rows, totals, per_s = batch_answer(rec, settings, _loaded(rec))
        shown = {"exact match": f"{totals['exact_match']:.1f}", "F1": f"{totals['f1']:.1f}"} if totals else {}
        return rows, shown, per_s

    eval_split_batch("Answer the evaluation split", f"qa_batch_{rec.id}", run, "questions",
                     "The run's dataset can't be read any more: no evaluation questions.")


def eval_table(rec, examples: list[dict]) -> None:
    """A few evaluation questions: gold answers, the run's answer, and its SQuAD scores."""
    from core.training import squad
    from core.training.extractive_qa import answer

    if not examples:
        st.caption("The run's dataset can't be read any more: no evaluation examples.")
        return
    rows = []
    for ex in examples:
        text = answer(rec, ex["question"], ex["context"], _loaded(rec))[0]
        em, f1 = squad.score(text, ex["gold"])
        rows.append({"question": ex["question"], "gold": " | ".join(ex["gold"]), "predicted": text,
                     "EM": em, "F1": round(f1, 3)})
    st.markdown("**Evaluation examples**")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="qa_eval_examples")


def try_it(rec, settings, examples: list[dict]) -> None:
    from core.nlp import NLPError
    from core.training.extractive_qa import answer

    st.markdown("**Try it**")
    st.caption("Prefilled with this run's first evaluation row; ask anything about any passage.")
    first = examples[0] if examples else {"question": "", "context": ""}
    question = st.text_input("Question", first["question"], key=f"qa_try_q_{rec.id}", max_chars=1000)
    context = st.text_area("Context", first["context"], key=f"qa_try_c_{rec.id}", height=150,
                           max_chars=settings.max_text_chars)
    if not (question.strip() and context.strip()):
        return
    try:
        text, start, end, score = answer(rec, question, context, _loaded(rec))
    except (NLPError, ValueError) as e:
        st.error(str(e))
        return
    c = st.columns([4, 1])
    c[0].markdown(f"**Answer:** {html.escape(text)}")
    c[1].metric("p(start) × p(end)", f"{score:.3f}")
    st.markdown(f'<div class="tl-qa-context" style="border:1px solid #ddd;border-radius:6px;padding:8px 12px;'
                f'line-height:1.7">{highlighted(context, start, end)}</div>', unsafe_allow_html=True)


def export(col, rec, settings) -> None:
    from core.training import ConfigError, TrainingConfig
    from core.training.qa_export import export_script

    try:
        script = export_script(TrainingConfig.from_dict(rec.config), settings, rec.id, rec.plan.get("eval_steps"))
    except (ConfigError, ValueError) as e:  # the model folder or dataset version is gone since
        col.info(f"Can't export this run as a script any more: {e}")
        return
    col.download_button("Export as script", script, file_name=f"train_{rec.id}.py", mime="text/x-python",
                        key="qa_script")
    with st.expander("Script preview"):
        st.code(script, language="python")
