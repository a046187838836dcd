"""Fine-tuning: launch a run, watch it live, compare runs, try the model."""
import pandas as pd
import streamlit as st

from components import loaders
from components.jobs import job_manager
from components.launch import start_button
from components.training_form import config_from_state, launch_form
from components.training_live import RESULTS_KEY, results_target, run_label, runs_panel
from components.training_results import results
from components.training_views import compare_figure
from core.data import DatasetStore, ensure_ner_sample
from core.system import human_bytes
from core.training import ConfigError
from core.training.curves import config_diff

st.title("Fine-tuning")
st.caption("Fine-tune a pretrained Transformer for the tutorials' tasks (classify text, tag entities, answer "
           "questions from a passage, generate) with the Hugging Face Trainer in a background thread. Runs live in "
           "the workspace: refresh, open a second browser or restart the server, and they are still here.")
settings = loaders.settings()
jobs = job_manager()
runs = jobs.store.runs()
launch, watch, compare = st.tabs(["Launch", "Runs", "Compare"])

with launch:
    store = DatasetStore(settings.datasets_dir)
    store.ensure_sample()  # the built-in drug-review sample is always offered
    ensure_ner_sample(store)  # and the CoNLL sample for token classification
    refs = store.list()
    config = launch_form(refs, runs)
    b1, b2, _ = st.columns([1, 1, 3])
    start_button(jobs, lambda state: (config_from_state(state, runs), None), key="ft_start", flash_key="ft_flash",
                 success="Queued run {run_id}: open the **Runs** tab to watch it.", container=b1)
    if b2.button("Estimate first", key="ft_estimate"):
        from core.training.estimate import estimate

        try:
            bar = st.progress(0.0, text="Estimating…")
            est = estimate(config, settings, progress=lambda f, what: bar.progress(f, text=what))
            bar.empty()
            c = st.columns(4)
            c[0].metric("Parameters", f"{est.parameters / 1e6:.1f} M")
            c[1].metric("Training memory", human_bytes(est.total_bytes),
                        help="weights + gradients + optimizer state + activations")
            c[2].metric("Seconds / step", f"{est.seconds_per_step:.2f}")
            c[3].metric("Time / epoch", f"{est.seconds_per_epoch / 60:.1f} min", help=f"{est.steps_per_epoch} steps")
            st.caption(
                f"weights {human_bytes(est.weights_bytes)} · gradients {human_bytes(est.grads_bytes)} · optimizer "
                f"{human_bytes(est.optimizer_bytes)} · activations {human_bytes(est.activations_bytes)} "
                f"({'measured peak' if est.activations_measured else 'estimated'} at batch {config.batch_size} × "
                f"{est.typical_length} tokens"
                + (", the 90th-percentile length after dynamic padding" if config.task == "text-classification"
                   else "") + f") on {est.device}"
                + "".join(f" · {n}" for n in est.notes)  # what the figures mean for this task
                + (" · step timing reused from the last estimate (only the number of steps changed)"
                   if est.reused else ""))
        except ConfigError as e:
            st.error(f"**{e.field}**: {e.message}")

with watch:
    snap = jobs.store.snapshot()
    st.session_state[RESULTS_KEY] = target = results_target(snap)
    runs_panel(jobs, settings)  # live: queue line, table, picker and progress from one read a second
    if target:
        results(jobs, snap.get(target), settings)

with compare:
    done = [r for r in runs if jobs.store.metrics(r.id, "train", after_seq=0)]
    chosen = st.multiselect("Runs to compare", [r.id for r in done], default=[r.id for r in done[:2]],
                            format_func=lambda i: run_label(next(r for r in done if r.id == i)), key="ft_cmp")
    if chosen:
        curves = {i: (jobs.store.metrics(i, "train"), jobs.store.metrics(i, "eval")) for i in chosen}
        st.plotly_chart(compare_figure(curves), key="ft_cmp_fig")
        recs = {i: jobs.store.get(i) for i in chosen}
        diff = config_diff({i: r.config for i, r in recs.items()})
        st.markdown("**Config differences**")
        st.dataframe(pd.DataFrame(diff) if diff else pd.DataFrame([{"field": "(identical configs)"}]),
                     hide_index=True)
        st.markdown("**Final metrics**")
        # every number any of the runs reports (accuracy, entity F1, exact match, ROUGE, perplexity…)
        keys = list(dict.fromkeys(k for r in recs.values() for k, v in r.final_metrics.items()
                                  if isinstance(v, (int, float)) and not isinstance(v, bool)))
        st.dataframe(pd.DataFrame([{"run": i, "task": r.config.get("task", "text-classification"), "status": r.status,
                                    **{k: r.final_metrics.get(k) for k in keys}} for i, r in recs.items()]),
                     hide_index=True)
