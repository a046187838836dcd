"""Build-a-network measurements shown before launch: training vs inference memory beside the layer table, and
what batch size, shuffle and num_workers do to the DataLoader. Both run real code on real batches (cached per
config); core.scratch.memory and core.scratch.loading do the measuring."""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from components import loaders
from core.system import human_bytes


@st.cache_data(show_spinner="Measuring one training step and one inference forward…", max_entries=16)
def _memory(config_json: str, _config) -> dict:
    from dataclasses import asdict

    from core.scratch import measure
    from core.training.runner import plan

    settings = loaders.settings()
    m = measure(_config, settings, plan(_config, settings))
    return asdict(m) | {"effective_batch": m.effective_batch, "parameter_bytes": m.parameter_bytes}


def memory_view(config) -> None:
    """The measured peaks of one training step and one inference forward at the run's batch size."""
    st.markdown("**Memory, measured**")
    if not st.toggle("Measure one step", key="bn_measure_memory",
                     help="builds the network, takes one real batch and runs a training step and an inference "
                          "forward on it (again whenever the network or the batch size changes)"):
        st.caption("Training holds activations for backward, a gradient per weight and the optimizer's state; "
                   "inference only the weights and one layer's output at a time. Switch on to measure both.")
        return
    try:
        m = _memory(config.to_json(), config)
    except Exception as e:  # noqa: BLE001 - a network that can't run a step says why; the page stays up
        st.error(f"Can't measure a step: {e}")
        return
    train, infer = m["train_peak_bytes"], m["inference_peak_bytes"]
    st.metric("training step peak", human_bytes(train), f"{train / max(1, infer):.1f}× inference",
              delta_color="off", delta_arrow="off",
              help="forward + backward + optimizer step, weights and batch included")
    st.metric("inference peak", human_bytes(infer), help="one forward under torch.no_grad, in eval mode")
    st.metric("kept after the step", human_bytes(m["after_step_bytes"]),
              f"{(m['after_step_bytes'] - m['weights_bytes'] - m['batch_bytes']) / max(1, m['parameter_bytes']):.1f}"
              "× the weights on top", delta_color="off", delta_arrow="off",
              help="weights + gradients + optimizer state (+ the batch)")
    b, k = m["batch_size"], m["grad_accumulation"]
    lines = [f"Batch {b} × accumulation {k} = effective batch **{m['effective_batch']:,}**; "
             f"{m['parameters']:,} parameters = {human_bytes(m['parameter_bytes'])}, optimizer `{m['optimizer']}`."]
    if m.get("full_batch_peak_bytes"):
        lines.append(f"Accumulation leaves the peak at one micro-batch's: a single batch of {b * k:,} peaked at "
                     f"{human_bytes(m['full_batch_peak_bytes'])}.")
    elif k > 1:
        lines.append("Accumulation leaves the peak at one micro-batch's (each one's activations are freed after "
                     "its backward; gradients add up in place).")
    lines.append(f"Measured on {m['device']} with {m['method']}: the highest bytes in use, weights "
                 f"({human_bytes(m['weights_bytes'])}) and batch ({human_bytes(m['batch_bytes'])}) included; the "
                 "first step, so the optimizer state is allocated inside it.")
    st.caption(" ".join(lines))


@st.cache_data(show_spinner="Iterating the training data with each DataLoader setting…", max_entries=8)
def _loader_timings(config_json: str, _config) -> dict:
    from core.scratch import time_loaders

    return time_loaders(_config, loaders.settings())


def loader_timing_view(config) -> None:
    """On demand: one epoch of the run's prepared data through DataLoaders of several settings, timed."""
    key = ("bn_loader_timing", config.to_json())
    if st.button("Measure batch size, shuffle and num_workers", key="bn_time_loader",
                 help="iterates the prepared training rows with each DataLoader setting (no model)"):
        try:
            st.session_state[key] = _loader_timings(config.to_json(), config)
        except Exception as e:  # noqa: BLE001 - shown beside the button, the page stays up
            st.session_state[key] = {"error": str(e)}
    out = st.session_state.get(key)
    if not out:
        return
    if out.get("error"):
        st.error(f"Can't time the DataLoader: {out['error']}")
        return
    frame = pd.DataFrame([{
        "batch size": t["batch_size"], "shuffle": t["shuffle"], "num_workers": t["num_workers"],
        "batches": t["batches"], "first epoch (ms)": round(t["first_epoch_s"] * 1000, 1),
        "next epochs (ms, median)": round(t["next_epoch_s"] * 1000, 1), "rows / s": f"{t['rows_per_s']:,.0f}",
    } for t in out["timings"]])
    st.dataframe(frame, hide_index=True, key="bn_loader_table", height=35 * (len(frame) + 1) + 3)
    st.caption(
        f"Measured: the time to iterate one epoch of this run's prepared training rows ({out['rows']:,} rows) "
        f"with `DataLoader(train, batch_size, shuffle, num_workers, collate_fn={out['collate']})` — every row "
        "fetched and every batch collated, no model. *First epoch*: a fresh DataLoader (with workers, starting "
        f"them by `{out['start_method']}` is in it); *next epochs*: the median of three more with the workers "
        "kept alive (`persistent_workers=True`). Shuffle only changes the order rows are read in. Workers help "
        "when fetching a row is slow (decoding files, augmenting images); on small in-memory rows each batch "
        f"pickled back from a worker process costs more than it saves. This server has {os.cpu_count()} CPU "
        "cores, shared with training.")
