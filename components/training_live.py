"""The live view of one run: a fragment that redraws from the run store about once a second."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from components.training_views import confusion_figure, duration, live_figure, probability_figure
from core.training.curves import overfitting, progress
from core.training.store import ACTIVE

BADGE = {"queued": "🕒", "running": "🟢", "stopping": "🟠", "stopped": "⏸️", "completed": "✅", "failed": "❌",
         "interrupted": "⚠️"}


def run_label(r) -> str:
    return f"{BADGE.get(r.status, '')} {r.status} · {r.name} · {r.id}"


def live_run(jobs, run_id: str, settings) -> None:
    rec = jobs.store.get(run_id)
    c1, c2, c3, c4 = st.columns([1, 1, 1, 3])
    if rec.status in ("queued", "running") and c1.button("Stop", key="ft_stop", help="saves a checkpoint"):
        jobs.stop(run_id)
        st.rerun()
    if rec.status in ("stopped", "interrupted", "failed") and c1.button("Resume", key="ft_resume", type="primary"):
        jobs.resume(run_id)
        st.rerun()
    if rec.status not in ACTIVE and c2.button("Delete", key="ft_delete"):
        jobs.delete(run_id)
        st.session_state.pop("ft_selected", None)
        st.rerun()
    smoothing = c4.slider("Smoothing", 0.0, 0.99, 0.8, key="ft_smooth")
    if rec.message:
        (st.error if rec.status == "failed" else st.info)(rec.message)

    active = rec.status in ACTIVE

    @st.fragment(run_every=settings.poll_interval_s if active else None)
    def chart() -> None:
        r = jobs.store.get(run_id)
        train = jobs.store.metrics(run_id, "train")
        evals = jobs.store.metrics(run_id, "eval")
        pr = progress(train, r.total_steps, r.started, r.finished if r.status not in ACTIVE else None)
        st.progress(pr.fraction, text=f"{BADGE.get(r.status, '')} {r.status} · step {pr.step} / {pr.total or '?'} · "
                    f"elapsed {duration(pr.elapsed_s)} · remaining {duration(pr.remaining_s)}")
        if train:
            last = train[-1]
            m = st.columns(5)
            m[0].metric("train loss", f"{last['loss']:.4f}")
            m[1].metric("eval loss", f"{evals[-1]['eval_loss']:.4f}" if evals else "—")
            m[2].metric("eval accuracy", f"{evals[-1]['eval_accuracy']:.1%}" if evals else "—")
            m[3].metric("samples / s", f"{last.get('samples_per_s', 0):.1f}")
            m[4].metric("tokens / s", f"{last.get('tokens_per_s', 0):,.0f}")
            st.plotly_chart(live_figure(train, evals, smoothing), key="ft_live_fig")
            warn = overfitting(train, evals)
            if warn:
                st.warning(warn)
            if any("gpu_mem_allocated_mb" in t for t in train):
                st.caption(f"GPU memory: {last.get('gpu_mem_allocated_mb', 0):,.0f} MiB allocated, "
                           f"{last.get('gpu_mem_reserved_mb', 0):,.0f} MiB reserved")
        elif r.status in ACTIVE:
            st.caption("Loading the model and tokenizing the data… the first points appear after step 1.")
        if r.status != rec.status and (active or r.status in ACTIVE):
            st.rerun(scope="app")  # status changed: redraw the run list, the buttons and the results

    chart()
    if rec.status == "completed":
        results(jobs, rec, settings)


def results(jobs, rec, settings) -> None:
    from core.training.config import ConfigError, TrainingConfig
    from core.training.export import export_script
    from core.training.predict import predict_after, predict_before, zip_model

    fm = rec.final_metrics
    labels = rec.plan.get("labels", [])
    st.subheader("Results")
    m = st.columns(4)
    base = fm.get("majority_baseline")
    m[0].metric("accuracy", f"{fm.get('accuracy', 0):.1%}",
                f"{fm.get('accuracy', 0) - base:+.1%} vs majority baseline" if base is not None else None)
    m[1].metric("majority-class baseline", f"{base:.1%}" if base is not None else "—")
    m[2].metric("macro F1", f"{fm.get('f1', 0):.3f}")
    m[3].metric("macro precision / recall", f"{fm.get('precision', 0):.2f} / {fm.get('recall', 0):.2f}")
    if fm.get("confusion_matrix"):
        st.plotly_chart(confusion_figure(fm["confusion_matrix"], labels), key="ft_cm")

    st.markdown("**Try the model**")
    text = st.text_area("Text to classify", "This medication worked wonders, no side effects at all.",
                        key="ft_try", max_chars=settings.max_text_chars)
    if text.strip():
        try:
            after = predict_after(rec, [text])[0]
            st.plotly_chart(probability_figure(after), key="ft_probs")
        except ValueError as e:
            st.error(str(e))
    if st.toggle("Same examples before and after fine-tuning", key="ft_before_after"):
        examples = [text, "I had terrible headaches and stopped after a week.", "It is OK, nothing special."]
        with st.spinner("Loading the backbone with its untrained head…"):
            before = predict_before(rec, examples, settings)
            after = predict_after(rec, examples)
        rows = [{"text": t, "before": max(b, key=b.get), "p(before)": max(b.values()),
                 "after": max(a, key=a.get), "p(after)": max(a.values())} for t, b, a in zip(examples, before, after,
                                                                                             strict=True)]
        st.dataframe(pd.DataFrame(rows), hide_index=True)

    c1, c2 = st.columns(2)
    if c1.button("Prepare model download (.zip)", key="ft_zip"):
        st.session_state["ft_zip_bytes"] = (rec.id, zip_model(rec.model_dir))
    z = st.session_state.get("ft_zip_bytes")
    if z and z[0] == rec.id:
        c1.download_button("Download model", z[1], file_name=f"{rec.id}-model.zip", mime="application/zip",
                           key="ft_zip_dl")
    try:
        script = export_script(TrainingConfig.from_dict(rec.config), settings, rec.id, labels,
                               rec.plan.get("eval_steps"))
    except (ConfigError, ValueError) as e:  # the model folder or dataset version is gone since
        c2.info(f"Can't export this run as a script any more: {e}")
        return
    c2.download_button("Export as script", script, file_name=f"train_{rec.id}.py", mime="text/x-python",
                       key="ft_script")
    with st.expander("Script preview"):
        st.code(script, language="python")
