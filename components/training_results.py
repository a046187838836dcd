"""A completed run's results: metrics, confusion matrix, "try the model", before/after, downloads."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components.training_shrink import shrink_panel
from components.training_views import confusion_figure, probability_figure


@st.cache_data(show_spinner=False, max_entries=16)
def _examples(run_id: str, config: dict, _rec, _settings) -> list[str]:
    from core.training.predict import eval_examples

    return eval_examples(_rec, _settings)


def classifier_metrics(m, fm: dict) -> None:
    """Accuracy against the majority-class baseline and macro F1, in the first three of columns `m`."""
    base = fm.get("majority_baseline")
    m[0].metric("accuracy", f"{fm.get('accuracy', 0):.1%}",
                f"{fm.get('accuracy', 0) - base:+.1%} vs majority baseline" if base is not None else None)
    m[1].metric("majority-class baseline", f"{base:.1%}" if base is not None else "—")
    m[2].metric("macro F1", f"{fm.get('f1', 0):.3f}")


def eval_split_batch(button: str, key: str, run, unit: str, empty: str) -> None:
    """A button that runs a task's model over its evaluation split, then its throughput, scores and rows.

    `run()` gives (rows, {score name: shown value}, items per second); items go one at a time, as try-it does."""
    if not st.button(button, key=key):
        return
    rows, scores, per_s = run()
    if not rows:
        st.caption(empty)
        return
    c = st.columns(1 + len(scores))
    c[0].metric("throughput", f"{per_s:.1f} {unit}/s", help=f"one {unit[:-1]} at a time, as try-it does")
    for col, (name, value) in zip(c[1:], scores.items(), strict=True):
        col.metric(name, value)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{key}_table")


def model_download(col, rec, prefix: str) -> None:
    """A button that zips the run's save_pretrained folder (on demand: it can be large), then the download."""
    from core.training.predict import zip_model

    if col.button("Prepare model download (.zip)", key=f"{prefix}_zip"):
        st.session_state[f"{prefix}_zip_bytes"] = (rec.id, zip_model(rec.model_dir))
    z = st.session_state.get(f"{prefix}_zip_bytes")
    if z and z[0] == rec.id:
        col.download_button("Download model", z[1], file_name=f"{rec.id}-model.zip", mime="application/zip",
                            key=f"{prefix}_zip_dl")


TASK_VIEWS = {  # each pretrained task's results view: metrics, "try it", export (components/task_*.py)
    "token-classification": "components.task_tokens",
    "question-answering": "components.task_qa",
    "causal-lm": "components.task_generation",
    "seq2seq": "components.task_generation",
}


def task_results(rec, settings) -> None:
    """A pretrained task's own results view, and the TensorBoard command when the run logged there."""
    import importlib

    st.subheader(f"Results · {rec.name}")
    try:
        view = importlib.import_module(TASK_VIEWS[rec.config["task"]])
    except (KeyError, ModuleNotFoundError):
        st.info(f"This build has no results view for {rec.config.get('task')!r} runs; the final metrics:")
        st.json(rec.final_metrics)
    else:
        try:
            view.results(rec, settings)
        except Exception as e:  # noqa: BLE001 - one run's view failing (its model folder deleted…) keeps the page up
            st.error(f"Can't show this run's results: {type(e).__name__}: {str(e)[:300]}")
    trackers_note(rec)


def trackers_note(rec) -> None:
    """The commands that open the other trackers a run also logged to (TensorBoard, Trackio)."""
    from core.training.runner import report_tools

    tools = report_tools(rec.config)
    if "tensorboard" in tools and rec.model_dir:
        from pathlib import Path

        from core.training.runner import tensorboard_dir

        st.caption("This run also logged to TensorBoard; open it with")
        st.code(f"tensorboard --logdir {tensorboard_dir(Path(rec.model_dir).parent)}", language="bash")
    where = (rec.plan or {}).get("trackio")
    if "trackio" in tools and where:
        from core.training.trackio_log import open_command

        st.caption(f"This run also logged to Trackio as run “{where['run']}”; open it with")
        st.code(open_command(where), language="bash")


def results(jobs, rec, settings) -> None:
    from core.training.config import ConfigError, TrainingConfig
    from core.training.export import export_script
    from core.training.predict import predict_after, predict_before

    if rec.config.get("task") == "scratch":  # a network built on the Build a network page
        from components.scratch_views import scratch_results

        scratch_results(rec, settings)
        return
    if rec.config.get("task", "text-classification") != "text-classification":
        task_results(rec, settings)
        return
    fm = rec.final_metrics
    labels = rec.plan.get("labels", [])
    st.subheader(f"Results · {rec.name}")
    m = st.columns(4)
    classifier_metrics(m, fm)
    m[3].metric("macro precision / recall", f"{fm.get('precision', 0):.2f} / {fm.get('recall', 0):.2f}")
    if fm.get("confusion_matrix"):
        st.plotly_chart(confusion_figure(fm["confusion_matrix"], labels), key="ft_cm")

    st.markdown("**Try the model**")
    examples = _examples(rec.id, rec.config, rec, settings)
    st.caption(f"Prefilled from this run's own evaluation split ({rec.config.get('dataset')}); "
               "type anything to classify it.")
    text = st.text_area("Text to classify", examples[0] if examples else "", key=f"ft_try_{rec.id}",
                        max_chars=settings.max_text_chars)
    if text.strip():
        try:
            after = predict_after(rec, [text])[0]
            st.plotly_chart(probability_figure(after), key="ft_probs")
        except ValueError as e:
            st.error(str(e))
    if st.toggle("Same examples before and after fine-tuning", key="ft_before_after"):
        chosen = [t for t in dict.fromkeys([text, *examples]) if t.strip()]
        with st.spinner("Loading the backbone with its untrained head…"):
            before = predict_before(rec, chosen, settings)
            after = predict_after(rec, chosen)
        rows = [{"text": t, "before": max(b, key=b.get), "p(before)": max(b.values()),
                 "after": max(a, key=a.get), "p(after)": max(a.values())}
                for t, b, a in zip(chosen, before, after, strict=True)]
        st.dataframe(pd.DataFrame(rows), hide_index=True)

    c1, c2 = st.columns(2)
    model_download(c1, rec, "ft")
    try:
        script = export_script(TrainingConfig.from_dict(rec.config), settings, rec.id, labels,
                               rec.plan.get("eval_steps"))
    except (ConfigError, ValueError) as e:  # the model folder or dataset version is gone since
        c2.info(f"Can't export this run as a script any more: {e}")
    else:
        c2.download_button("Export as script", script, file_name=f"train_{rec.id}.py", mime="text/x-python",
                           key="ft_script")
        with st.expander("Script preview"):
            st.code(script, language="python")
    shrink_panel(rec, settings)
    trackers_note(rec)
