"""Summarize & QA: answer questions from a document, summarize it, score both; classify with a fine-tuned run."""
import streamlit as st

from components import nlp_views as V
from core.nlp import (
    SAMPLES,
    TOKENIZERS,
    NLPError,
    classify,
    evaluate_qa,
    evaluate_summaries,
    exact_match_f1,
    rouge,
)

OWN = "(your own text)"
st.title("Summarize & QA")
st.caption("Offline, answers and summaries come from the packaged MiniLM sentence embeddings (extractive); "
           "with a checkpoint folder or a hub id, from a span QA model or a seq2seq model (`generate`).")



def _edited(pick: str) -> None:
    """A sample's text edited or replaced is the user's own text: the picker, sample questions and gold
    answers must stop claiming it is the sample."""
    text = st.session_state.get(f"doc_{pick}", "")
    if pick in SAMPLES and text.strip() != SAMPLES[pick].document.strip():
        st.session_state["doc_pick"] = OWN
        st.session_state[f"doc_{OWN}"] = text


pick = st.selectbox("Document", [*SAMPLES, OWN], key="doc_pick")
sample = SAMPLES.get(pick)
upload = st.file_uploader("…or upload a text file", type=["txt", "md"], key="doc_file") if not sample else None
document = st.text_area("Document / context", sample.document if sample else "", height=180, key=f"doc_{pick}",
                        on_change=_edited, args=(pick,))
if upload is not None:
    document = upload.getvalue().decode("utf-8", errors="replace")
    st.caption(f"Using **{upload.name}** ({len(document):,} characters).")

qa_tab, sum_tab, cls_tab, batch_tab = st.tabs(["Question answering", "Summarization", "Classify text",
                                               "Batch evaluation"])
with qa_tab:
    qa_cfg = V.qa_picker()
    questions = list(sample.questions) if sample else []
    q_pick = st.selectbox("Sample question", questions, key=f"qpick_{pick}") if questions else None
    question = st.text_input("Question", q_pick or "", key=f"q_{pick}_{q_pick}")
    golds = st.text_input("Gold answers, separated by | (optional)",
                          " | ".join(sample.questions.get(question, ())) if sample else "", key=f"gold_{question}")
    if not question.strip():
        st.info("Type a question about your text.", icon=":material/info:")
    elif qa_cfg["method"] != V.QA_MODEL or qa_cfg["spec"].strip():  # no checkpoint yet: the picker says what to give
        try:
            progress, bar = V.progress_bar("Answering")
            ans = V.memo("qa", (qa_cfg, question, document),
                         lambda: V.run_qa(qa_cfg, question, document, progress))
            bar.empty()
            V.show_answer(document, ans)
            if golds.strip() and ans.found:
                em, f1 = exact_match_f1(ans.text, [g.strip() for g in golds.split("|")])
                c = st.columns(2)
                c[0].metric("Exact match", f"{em:.0f}")
                c[1].metric("Token F1", f"{f1:.3f}")
        except (NLPError, OSError) as e:
            bar.empty()
            st.error(str(e), icon=":material/error:")

with sum_tab:
    sum_cfg = V.summary_picker()
    reference = st.text_area("Reference summary (optional, for ROUGE)", sample.summary if sample else "",
                             height=80, key=f"ref_{pick}")
    tok = st.selectbox("ROUGE tokenizer", TOKENIZERS, key="rouge_tok",
                       help="auto: Unicode words, one token per character in scripts written without spaces; "
                            "default: rouge_score's own ([a-z0-9] only: other scripts score zero)")
    if sum_cfg["method"] != V.SEQ2SEQ or sum_cfg["spec"].strip():  # no checkpoint yet: the picker says so
        try:
            progress, bar = V.progress_bar("Summarizing")
            summ = V.memo("sum", (sum_cfg, document), lambda: V.run_summary(sum_cfg, document, progress))
            bar.empty()
            V.show_summary(document, summ)
            if reference.strip():
                V.show_rouge(rouge(summ.text, reference, tokenizer=tok))
        except (NLPError, OSError) as e:
            bar.empty()
            st.error(str(e), icon=":material/error:")

with cls_tab:
    runs = V.finetuned_runs()
    if not runs:
        st.info("No fine-tuned runs yet — train one on the Fine-tuning page, or give a saved model folder below.")
    choice = st.selectbox("Fine-tuned run", [*runs, "Other folder…"], key="cls_run")
    folder = runs.get(choice) or st.text_input("Model folder (a `save_pretrained` folder)", key="cls_dir")
    lines = st.text_area("Texts, one per line", "This medicine worked wonders for me.\n"
                         "Terrible side effects, I stopped after a week.", key="cls_texts").splitlines()
    if folder:
        try:
            texts = [t for t in lines if t.strip()]
            V.show_probabilities(texts, classify(V.model(folder, "text-classification"), texts))
        except (NLPError, OSError) as e:
            st.error(str(e), icon=":material/error:")

with batch_tab:
    st.caption("Scores every row with the methods picked in the other two tabs.")
    rows, task, limit = V.batch_source()
    if rows and st.button("Evaluate", type="primary", key="batch_go"):
        progress, bar = V.progress_bar("Evaluating")
        rows = rows[:limit]
        if task == "qa":
            out = evaluate_qa(rows, lambda q, c: V.run_qa(qa_cfg, q, c).text, progress)
        else:
            out = evaluate_summaries(rows, lambda d: V.run_summary(sum_cfg, d).text, tokenizer=tok,
                                     progress=progress)
        bar.empty()
        st.session_state["batch_result"] = (task, out)
    if "batch_result" in st.session_state:
        V.show_batch(*st.session_state["batch_result"])
