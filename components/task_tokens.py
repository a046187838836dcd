"""A token-classification run's results: entity scores vs the all-O baseline, the per-entity table, "try it"
with highlighted entities, the pipeline code, the export script and the label alignment of any eval row."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from components.training_results import eval_split_batch, model_download
from components.training_shrink import shrink_panel

# one color per entity type, in the order the run's labels name them
PALETTE = ("#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fbcfe8", "#fed7aa", "#a5f3fc", "#d9f99d")


@st.cache_resource(show_spinner="Loading the run's tagger…", max_entries=4)
def _tagger(model_dir: str):
    from core.training.token_classification import load_tagger

    return load_tagger(model_dir)


@st.cache_resource(show_spinner="Reading the run's data…", max_entries=4)
def _prepared(run_id: str, config_json: str, model_path: str, _settings):
    """The run's checked splits (the seed makes the same eval split the run scored)."""
    from core.training import TrainingConfig
    from core.training.token_classification import prepare

    return prepare(TrainingConfig.from_dict(json.loads(config_json)), _settings, model_path)


def entity_types(labels: list[str]) -> list[str]:
    return sorted({lab[2:] for lab in labels if lab != "O"})


def highlighted(text: str, spans: list[dict], types: list[str]) -> str:
    """The sentence as HTML with each entity in a colored box labelled with its type."""
    colors = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(types)}
    out, pos = [], 0
    for s in sorted(spans, key=lambda s: s["start"]):
        out.append(html.escape(text[pos:s["start"]]))
        color = colors.get(s["entity"], "#e5e7eb")
        out.append(f'<span class="tl-entity" style="background:{color};padding:1px 4px;border-radius:4px" '
                   f'title="p = {s["score"]:.2f}">{html.escape(text[s["start"]:s["end"]])} '
                   f'<b style="font-size:0.75em">{html.escape(s["entity"])}</b></span>')
        pos = s["end"]
    out.append(html.escape(text[pos:]))
    return "".join(out)


def results(rec, settings) -> None:
    fm = rec.final_metrics or {}
    labels = rec.plan.get("labels") or []
    base = fm.get("all_o_accuracy")
    m = st.columns(4)
    m[0].metric("entity F1", f"{fm.get('f1', 0):.3f}", f"{fm.get('f1', 0):+.3f} vs all-O (F1 0)",
                help="seqeval's entity-level F1: an entity counts only when its type and both ends match")
    m[1].metric("entity precision / recall", f"{fm.get('precision', 0):.2f} / {fm.get('recall', 0):.2f}")
    acc = fm.get("accuracy", 0)
    m[2].metric("token accuracy", f"{acc:.1%}", f"{acc - base:+.1%} vs all-O" if base is not None else None,
                help="share of words (first sub-tokens) tagged right")
    m[3].metric("all-O baseline", f"{base:.1%}" if base is not None else "—",
                help="token accuracy of tagging every word O: high on text with few entities, with entity F1 0")
    if fm.get("per_entity"):
        st.markdown("**Per entity type**")
        st.dataframe(pd.DataFrame(fm["per_entity"]), hide_index=True, key="tok_per_entity",
                     column_config={k: st.column_config.NumberColumn(format="%.3f")
                                    for k in ("precision", "recall", "f1")})
    if not rec.model_dir or not Path(rec.model_dir, "config.json").is_file():
        st.info("This run has no saved model: finish or resume it to try it.")
        return
    prepared = _prepared_or_none(rec, settings)
    try_it(rec, settings, prepared, labels)
    st.markdown("**The same model through the pipeline**")
    from core.training.token_classification import pipeline_code

    st.code(pipeline_code(rec.model_dir), language="python")
    c1, c2 = st.columns(2)
    model_download(c1, rec, "tok")
    export(c2, rec, settings, labels)
    if prepared is not None:
        alignment(rec, settings, prepared)
        batch(rec, prepared)
    shrink_panel(rec, settings)


def batch(rec, prepared) -> None:
    """The run's model over its whole evaluation split (up to 500 sentences), with the throughput."""
    from core.training.token_classification import batch_tag

    def run():
        rows, per_s = batch_tag(rec, prepared.eval["tokens"], _tagger(rec.model_dir))
        return rows, {}, per_s

    eval_split_batch("Tag the evaluation split", f"tok_batch_{rec.id}", run, "sentences",
                     "The evaluation split is empty: no sentences to tag.")


def _prepared_or_none(rec, settings):
    from core.training.config import ConfigError

    try:
        return _prepared(rec.id, json.dumps(rec.config, sort_keys=True), rec.model_dir, settings)
    except (ConfigError, ValueError, OSError) as e:  # the dataset was deleted or changed since
        st.caption(f"The run's dataset can't be read any more ({e}): no examples from it.")
        return None


def try_it(rec, settings, prepared, labels) -> None:
    from core.training.token_classification import predict

    st.markdown("**Try it**")
    first = " ".join(prepared.eval[0]["tokens"]) if prepared is not None and len(prepared.eval) else ""
    st.caption("Prefilled with the first sentence of this run's evaluation split; type any sentence. Words are "
               "split at spaces and punctuation, as CoNLL data is.")
    text = st.text_input("Sentence to tag", first, key=f"tok_try_{rec.id}", max_chars=settings.max_text_chars)
    if not text.strip():
        return
    spans = predict(rec, text, _tagger(rec.model_dir))
    st.markdown(highlighted(text, spans, entity_types(labels)), unsafe_allow_html=True)
    if spans:
        st.dataframe(pd.DataFrame(spans), hide_index=True, key="tok_spans",
                     column_config={"score": st.column_config.NumberColumn(format="%.2f")})
    else:
        st.caption("No entity found in this sentence.")


def export(col, rec, settings, labels) -> None:
    from core.training import ConfigError, TrainingConfig
    from core.training.token_classification import export_script

    try:
        script = export_script(TrainingConfig.from_dict(rec.config), settings, rec.id, labels,
                               rec.plan.get("eval_steps"))
    except (ConfigError, ValueError) as e:  # the model folder or dataset version is gone since
        col.info(f"Can't export this run as a script any more: {e}")
        return
    col.download_button("Export as script", script, file_name=f"train_{rec.id}.py", mime="text/x-python",
                        key="tok_script")
    with st.expander("Script preview"):
        st.code(script, language="python")


def alignment(rec, settings, prepared) -> None:
    from core.training import ConfigError, TrainingConfig
    from core.training.token_classification import aligned_row

    st.markdown("**Label alignment of an evaluation row**")
    n = len(prepared.eval)
    row = st.number_input(f"Row of the evaluation split (0–{n - 1})", 0, max(0, n - 1), 0, key=f"tok_row_{rec.id}")
    try:
        ex = aligned_row(TrainingConfig.from_dict(rec.config), settings, rec.model_dir, "eval", int(row), prepared)
    except ConfigError as e:
        st.error(f"**{e.field}**: {e.message}")
        return
    for note in ex.notes:
        st.caption(note)
    st.dataframe(ex.table, hide_index=True, key="tok_alignment", height=min(38 + 35 * len(ex.table), 320))
