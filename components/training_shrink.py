"""After training: quantise a completed run to int8 and export it to ONNX, compare; the run as a pipeline;
a serving script. Drawn under the results of text-classification, token-classification, QA, causal-lm and seq2seq
runs."""
from __future__ import annotations

import pandas as pd
import streamlit as st

REPORTS = "shrink_reports"  # session state: run id -> ShrinkReport (measuring takes a while; once per run)

# per task: what the metrics are, what one "prediction" is (for the agreement metric)
WHAT = {"text-classification": ("accuracy and macro F1", "evaluation rows", "class"),
        "token-classification": ("entity F1 (seqeval's) and token accuracy", "words of the evaluation rows",
                                 "tag"),
        "question-answering": ("SQuAD exact match and F1", "evaluation questions", "answer span"),
        "causal-lm": ("perplexity and next-token accuracy (the forward pass; ONNX exports it)",
                      "predicted positions of the evaluation blocks", "next token"),
        "seq2seq": ("ROUGE-L and ROUGE-1 of greedy generate() (ONNX is not offered for seq2seq: the table says why)",
                    "evaluation rows", "generated text")}


def shrink_panel(rec, settings) -> None:
    """The "Make it smaller and faster" expander under a completed run's results (the tasks in `WHAT`)."""
    from core.training.shrink import ShrinkOptions, quantize

    task = rec.config.get("task", "text-classification")
    if task not in WHAT or not rec.model_dir:
        return
    metrics, units, what = WHAT[task]
    with st.expander("Make it smaller and faster"):
        st.caption("Dynamic int8 quantisation of every nn.Linear layer (`torch.ao.quantization.quantize_dynamic`), "
                   "ONNX export (`torch.onnx.export`, run with onnxruntime) and onnxruntime's own int8 "
                   f"quantisation of that graph, each measured against the fp32 model on this run's own evaluation "
                   f"split (first 200 rows): size on disk, latency, {metrics}.")
        reports = st.session_state.setdefault(REPORTS, {})
        if st.button("Quantise, export to ONNX and measure", key=f"shrink_go_{rec.id}"):
            with st.spinner("Quantising and exporting, then timing every model on the evaluation split…"):
                try:
                    reports[rec.id] = quantize(rec, settings, ShrinkOptions())
                except ValueError as e:  # no saved model, or the dataset is gone since
                    st.error(f"Can't measure this run: {e}")
        report = reports.get(rec.id)
        if report is not None:
            st.dataframe(pd.DataFrame(report.table()), hide_index=True, key=f"shrink_table_{rec.id}")
            st.metric("int8 agrees with fp32", f"{report.agreement:.1%}",
                      help=f"share of the {units} where the int8 model predicts the same {what} as fp32 "
                           f"({report.eval_rows} rows)")
            st.caption(f"Saved to `{report.quantized_path}`"
                       + (f" and `{report.onnx_path}`" if report.onnx_path else "")
                       + f" · {report.onnx} · " + " · ".join(report.notes))
        if task == "text-classification":
            _use_it(rec, settings)


def _use_it(rec, settings) -> None:
    """A text-classification run as a `transformers.pipeline`, its serving scripts, batch inference."""
    from core.training.serve import script_name, serve_script
    from core.training.shrink import ShrinkOptions, batch_predict, eval_rows, onnx_path, pipeline_code

    st.markdown("**Use it as a `transformers.pipeline`**")
    try:
        st.code(pipeline_code(rec), language="python")
        st.download_button("Download a serving script (http.server)", serve_script(rec),
                           file_name=script_name(rec), mime="text/x-python", key=f"shrink_serve_{rec.id}")
    except ValueError as e:
        st.info(str(e))
        return
    if onnx_path(rec) is not None:
        st.download_button("Download a serving script (onnxruntime, no torch)", serve_script(rec, backend="onnx"),
                           file_name=script_name(rec, "onnx"), mime="text/x-python",
                           key=f"shrink_serve_onnx_{rec.id}")
    pairs = bool(rec.config.get("text_pair_column"))
    st.caption("Run it with `python " + script_name(rec) + " --port 8000`, then POST "
               + ('`{"texts": ["..."], "text_pairs": ["..."]}`' if pairs else '`{"texts": ["..."]}`')
               + " to `http://127.0.0.1:8000/predict`.")
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
