"""Build a network: MLP, CNN, RNN, Transformer, seq2seq or a tiny GPT, trained as a background run."""
import streamlit as st

from components import loaders
from components.build_form import build_form, check_view, config_from_state
from components.jobs import job_manager
from components.launch import start_button
from components.scratch_views import scratch_results
from components.training_live import RESULTS_KEY, results_target, runs_panel

st.title("Build a network")
st.caption("Stack layers, see every shape and parameter before anything is allocated, then train it in the "
           "background with the Hugging Face Trainer — the same engine, live curves, stop / resume and compare "
           "as fine-tuning.")
settings = loaders.settings()
jobs = job_manager()

kind, dataset = build_form(settings)
config, problem = config_from_state(st.session_state)
info = check_view(config, problem, dataset, settings)
start_button(jobs, config_from_state, key="bn_start", flash_key="bn_flash", disabled=info is None,
             success="Queued run {run_id}: it trains below.")

# --- runs ---------------------------------------------------------------------------------------------
st.subheader("Runs")
st.caption("Every run, fine-tunes included: the same queue, live curves, stop / resume as on the Fine-tuning page.")
snap = jobs.store.snapshot()
st.session_state[RESULTS_KEY] = target = results_target(snap)
runs_panel(jobs, settings, empty="No runs yet: press **Start training** above.")
if target:
    rec = snap.get(target)
    if rec.config.get("task") == "scratch":
        scratch_results(rec, settings)
    else:
        st.info("This run is a fine-tune: its results are on the **Fine-tuning** page.")
