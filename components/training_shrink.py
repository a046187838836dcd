"""After training: quantise a completed run to int8 and compare, the run as a pipeline, a serving script."""
from __future__ import annotations

import pandas as pd
import streamlit as st

REPORTS = "shrink_reports"  # session state: run id -> ShrinkReport (measuring takes a while; once per run)


def shrink_panel(rec, settings) -> None:
    """The "Make it smaller and faster" expander under a completed text-classification run's results."""
    from core.training.serve import script_name, serve_script
    from core.training.shrink import ShrinkOptions, batch_predict, eval_rows, pipeline_code, quantize

    if rec.config.get("task", "text-classification") != "text-classification" or not rec.model_dir:
        return
    with st.expander("Make it smaller and faster"):
        st.caption("Dynamic int8 quantisation of every nn.Linear layer (`torch.ao.quantization.quantize_dynamic`), "
                   "measured side by side with the fp32 model on this run's own evaluation split "
                   "(first 200 rows).")
        reports = st.session_state.setdefault(REPORTS, {})
        if st.button("Quantise to int8 and measure", key=f"shrink_go_{rec.id}"):
            with st.spinner("Quantising, then timing both models on the evaluation split…"):
                try:
                    reports[rec.id] = quantize(rec, settings, ShrinkOptions())
                except ValueError as e:  # no saved model, or the dataset is gone since
                    st.error(f"Can't quantise this run: {e}")
        report = reports.get(rec.id)
        if report is not None:
            st.dataframe(pd.DataFrame(report.table()), hide_index=True)
            st.metric("int8 agrees with fp32", f"{report.agreement:.1%}",
                      help=f"share of the {report.eval_rows} evaluation rows where both predict the same class")
            st.caption(f"Saved to `{report.quantized_path}` · {report.onnx} · " + " · ".join(report.notes))

        st.markdown("**Use it as a `transformers.pipeline`**")
        try:
            st.code(pipeline_code(rec), language="python")
            st.download_button("Download a serving script (http.server)", serve_script(rec),
                               file_name=script_name(rec), mime="text/x-python", key=f"shrink_serve_{rec.id}")
            st.caption("Run it with `python " + script_name(rec) + " --port 8000`, then POST "
                       '`{"texts": ["..."]}` to `http://127.0.0.1:8000/predict`.')
        except ValueError as e:
            st.info(str(e))
            return
        if st.button("Run the pipeline over the evaluation split", key=f"shrink_batch_{rec.id}"):
            with st.spinner("Classifying the evaluation split with transformers.pipeline…"):
                try:
                    texts, _ = eval_rows(rec, settings, ShrinkOptions().max_rows)
                    preds, per_s = batch_predict(rec, texts)
                except ValueError as e:
                    st.error(f"Can't run the pipeline: {e}")
                    return
            st.metric("pipeline throughput", f"{per_s:.1f} examples/s", help="batch 32, tokenising included")
            st.dataframe(pd.DataFrame([{"text": t if isinstance(t, str) else " / ".join(t), **p}
                                       for t, p in zip(texts, preds, strict=True)]), hide_index=True)
