"""Results of a causal-lm or seq2seq run: perplexity against the untrained model (or ROUGE against the lead
baseline), "Try it" with greedy / beam / sampling settings, the transformers code, and the downloads."""
from __future__ import annotations

import streamlit as st

from core.training import generation_tools as T
from core.training.config import ConfigError, TrainingConfig

DECODING = ("greedy", "beam search", "sampling")


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=2)
def _generator(path: str, stamp: float):
    """One loaded model per saved folder (and its modification time): shared read-only; generate() never mutates it."""
    return T.load_generator(path)


def generator(path: str):
    from pathlib import Path

    return _generator(path, (Path(path) / "config.json").stat().st_mtime)


@st.cache_data(show_spinner=False, max_entries=16)
def _example(run_id: str, config: dict, _settings) -> str:
    """A prompt from the run's own evaluation split: a row's first words (causal) or a source (seq2seq)."""
    from core.training import generation as G

    try:
        _, ev, _ = G.load_rows(TrainingConfig.from_dict(config), _settings)
    except (ConfigError, ValueError):
        return ""
    cfg = TrainingConfig.from_dict(config)
    if cfg.task == "seq2seq":
        return str(ev[0][cfg.columns["source"]])
    text = next((t for t in ev[cfg.columns["text"]] if isinstance(t, str) and t.strip()), "")
    return " ".join(text.split()[:6])


def metrics(rec) -> None:
    fm = rec.final_metrics or {}
    m = st.columns(4)
    if rec.config.get("task") == "causal-lm":
        ppl, before = fm.get("perplexity"), fm.get("perplexity_before")
        m[0].metric("perplexity", _num(ppl), f"{ppl - before:+,.1f} vs before training" if _real(ppl, before) else None,
                    delta_color="inverse", help="exp(evaluation loss): the model is as unsure as a uniform choice "
                    "among this many tokens; lower is better")
        m[1].metric("perplexity before training", _num(before), help="the same blocks, the untrained model")
        m[2].metric("unigram perplexity", _num(fm.get("unigram_perplexity")),
                    help="token frequencies of the training split, no context: a model should beat this")
        m[3].metric("eval loss", _num(fm.get("loss"), 3))
        if rec.plan.get("packing"):
            st.caption(f"Text packed into blocks of {rec.plan.get('block_size')} tokens: {rec.plan.get('train_rows', 0):,} "
                       f"training and {rec.plan.get('eval_rows', 0):,} evaluation blocks.")
        elif rec.plan.get("packing") is False:
            st.caption(f"Padding: one row per example, cut to {rec.plan.get('block_size')} tokens and padded per batch "
                       f"({rec.plan.get('train_rows', 0):,} training and {rec.plan.get('eval_rows', 0):,} evaluation "
                       "rows); perplexity = exp(eval loss), which averages each batch's per-token loss, so it is close "
                       "to, not exactly, the per-token perplexity.")
        return
    for col, k, name in zip(m, ("rouge1", "rouge2", "rougeL"), ("ROUGE-1", "ROUGE-2", "ROUGE-L"), strict=False):
        v, base = fm.get(k), fm.get(f"lead_{k}")
        col.metric(name, _num(v, 3), f"{v - base:+.3f} vs lead" if _real(v, base) else None)
    m[3].metric(f"lead baseline ROUGE-L (first {fm.get('lead_words', '?')} words)", _num(fm.get("lead_rougeL"), 3))


def _real(*vs) -> bool:
    return all(isinstance(v, (int, float)) and v == v and abs(v) != float("inf") for v in vs)


def _num(v, digits: int = 1) -> str:
    return f"{v:,.{digits}f}" if _real(v) else ("—" if v is None else str(v))


def generation_settings(prefix: str) -> T.GenerationSettings:
    """The decoding widgets -> GenerationSettings (plain values)."""
    lim = T.LIMITS
    c = st.columns(4)
    how = c[0].radio("Decoding", DECODING, key=f"{prefix}_decoding", horizontal=False)
    new = c[1].number_input("Max new tokens", 1, lim["max_new_tokens"][1], 40, key=f"{prefix}_new")
    s = T.GenerationSettings(max_new_tokens=int(new))
    if how == "beam search":
        s.num_beams = int(c[2].number_input("Beams", 2, lim["num_beams"][1], 4, key=f"{prefix}_beams"))
    elif how == "sampling":
        s.do_sample = True
        s.temperature = float(c[2].slider("Temperature", 0.05, 2.0, 1.0, 0.05, key=f"{prefix}_temp"))
        s.top_p = float(c[2].slider("Top-p", 0.05, 1.0, 0.95, 0.05, key=f"{prefix}_topp"))
        s.top_k = int(c[3].number_input("Top-k (0 = off)", 0, lim["top_k"][1], 50, key=f"{prefix}_topk"))
        s.seed = int(c[3].number_input("Seed", 0, 2**31 - 1, 0, key=f"{prefix}_seed"))
    return s


def _generate(rec, prompt_key: str, s: T.GenerationSettings, out_key: str) -> None:
    """Button callback (runs before the rerun it triggers, so the click is never lost)."""
    prompt = st.session_state.get(prompt_key, "")
    try:
        st.session_state[out_key] = ("ok", T.generate(generator(rec.model_dir), prompt, s))
    except (ConfigError, ValueError, OSError) as e:
        st.session_state[out_key] = ("error", str(e))


def try_it(rec, settings) -> None:
    st.markdown("**Try it**")
    causal = rec.config.get("task") == "causal-lm"
    prefix, prompt_key, out_key = f"gen_{rec.id}", f"gen_prompt_{rec.id}", f"gen_out_{rec.id}"
    st.text_area("Prompt: the model continues it" if causal else "Source text: the model writes its target",
                 _example(rec.id, rec.config, settings), key=prompt_key, max_chars=T.MAX_PROMPT_CHARS)
    s = generation_settings(prefix)
    st.button("Generate", key=f"{prefix}_go", type="primary", on_click=_generate, args=(rec, prompt_key, s, out_key))
    out = st.session_state.get(out_key)
    if out:
        (st.error if out[0] == "error" else st.success)(out[1] or "(the model produced only special tokens)")
    with st.expander("The same in plain transformers"):
        st.code(T.pipeline_code("decoder" if causal else "encoder-decoder", rec.model_dir,
                                st.session_state.get(prompt_key, ""), s), language="python")
    batch(rec, settings, s)


def batch(rec, settings, s: T.GenerationSettings) -> None:
    """The run's model over rows of its evaluation split, several prompts per generate() call: every output, its
    ROUGE against the reference, and the throughput (examples/s, generated tokens/s)."""
    import pandas as pd

    causal = rec.config.get("task") == "causal-lm"
    st.markdown("**Generate for the evaluation split**")
    st.caption(("Each evaluation row's first " + str(T.PROMPT_WORDS) + " words are the prompt; the rest of the row "
                "is the reference its continuation is compared with (a loose measure)") if causal else
               "Each evaluation row's source is the input; its target is the reference.")
    c = st.columns(3)
    rows = int(c[0].number_input("Rows", 1, T.MAX_BATCH_ROWS, 32, key=f"gen_batch_rows_{rec.id}"))
    size = int(c[1].number_input("Prompts per generate() call", 1, 64, 8, key=f"gen_batch_size_{rec.id}"))
    if not c[2].button("Generate for the evaluation split", key=f"gen_batch_{rec.id}",
                       help="with the decoding settings of Try it above"):
        return
    with st.spinner(f"Generating for {rows} evaluation rows…"):
        try:
            out = T.batch_generate(generator(rec.model_dir), TrainingConfig.from_dict(rec.config), settings, s,
                                   rows, size)
        except (ConfigError, ValueError, OSError) as e:  # the dataset is gone since, or bad settings
            st.error(f"Can't generate for the evaluation split: {e}")
            return
    m = st.columns(4)
    m[0].metric("throughput", f"{out.examples_per_s:.1f} examples/s",
                help=f"{len(out.rows)} rows in {out.seconds:.2f} s, {out.batch_size} per generate() call, "
                     "tokenising and decoding included")
    m[1].metric("generated tokens / s", f"{out.tokens_per_s:.0f}",
                help=f"{out.new_tokens:,} new tokens, each row counted up to its end-of-text token")
    m[2].metric("ROUGE-1", f"{out.scores['rouge1']:.3f}")
    m[3].metric("ROUGE-L", f"{out.scores['rougeL']:.3f}",
                help="against the rest of each row" if causal else "against each row's target")
    st.dataframe(pd.DataFrame(out.rows), hide_index=True, key=f"gen_batch_table_{rec.id}")


def downloads(rec, settings) -> None:
    from components.training_results import model_download
    from core.training.generation_export import export_script

    c1, c2 = st.columns(2)
    model_download(c1, rec, f"gen_{rec.id}")
    try:
        script = export_script(TrainingConfig.from_dict(rec.config), settings, rec.id, rec.plan.get("eval_steps"))
    except (ConfigError, ValueError) as e:  # the model folder or dataset version is gone since
        c2.info(f"Can't export this run as a script any more: {e}")
        return
    c2.download_button("Export as script", script, file_name=f"train_{rec.id}.py", mime="text/x-python",
                       key=f"gen_script_{rec.id}")
    with st.expander("Script preview"):
        st.code(script, language="python")


def results(rec, settings) -> None:
    """The run's results view (components.training_results.TASK_VIEWS)."""
    metrics(rec)
    if not rec.model_dir:
        st.info("This run saved no model: nothing to try.")
        return
    try_it(rec, settings)
    downloads(rec, settings)
    from components.training_shrink import shrink_panel

    shrink_panel(rec, settings)
