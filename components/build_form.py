"""The Build a network form: data, architecture and training settings, the run they describe, and the
layer table / memory / schedule / batch checks shown before Start."""
from __future__ import annotations

from typing import Any

import streamlit as st

from components.scratch_measure import loader_timing_view, memory_view
from components.scratch_views import (
    EMBEDDING_HELP,
    EMBEDDING_STARTS,
    IMAGE_FOLDER,
    KIND_HELP,
    KIND_LABELS,
    VALIDATION_HELP,
    batch_view,
    data_label,
    edited_layers,
    image_column_inputs,
    image_folder_inputs,
    image_samples_view,
    layer_frame,
    layers_editor,
    lr_figure,
    size_settings,
    with_pretrained_embeddings,
)
from core import scratch
from core.data import DatasetStore
from core.system import human_bytes
from core.training import ConfigError, TrainingConfig
from core.training.config import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_GRAD_ACCUMULATION,
    MAX_PATIENCE,
    MAX_STEPS,
    SCHEDULERS,
)
from core.training.curves import lr_schedule
from core.training.runner import total_steps

TEXT_KINDS = ("rnn", "transformer", "gpt")


def data_choices(kind: str, saved: list[str]) -> list[str]:
    """What the Data box offers a network of `kind`: the offline samples that suit it first, then the
    datasets saved on the Datasets page (the drug-review sample is the text networks' default)."""
    own = [n for n in saved if n != "drug-reviews"]
    if kind == "seq2seq":
        return list(scratch.TOY)
    if kind in ("mlp", "cnn"):
        return (["sklearn:digits"] if kind == "cnn" else list(scratch.SKLEARN)) + [IMAGE_FOLDER] + own
    return ["drug-reviews", *own]


def _default(columns: list[str], name: str, fallback: int) -> int:
    return columns.index(name) if name in columns else fallback


def build_form(settings: Any) -> tuple[str, str]:
    """Draw the form; (network kind, data choice)."""
    kind = st.segmented_control("Network", list(KIND_LABELS), format_func=KIND_LABELS.get, default="cnn",
                                key="bn_kind") or "cnn"
    st.caption(KIND_HELP[kind])
    store = DatasetStore(settings.datasets_dir)
    store.ensure_sample()
    refs = store.list()
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox("Data", data_choices(kind, sorted({r.name for r in refs})), key=f"bn_data_{kind}",
                           format_func=data_label,
                           help="scikit-learn's bundled samples, the toy task, a folder of images (one sub-folder per "
                                "class), or datasets saved on the Datasets page")
    if dataset == IMAGE_FOLDER:
        image_folder_inputs(c2, c3, settings)
    columns = next((r.columns for r in refs if r.name == dataset), [])
    if columns:
        if kind in TEXT_KINDS:
            c2.selectbox("Text column", columns, index=_default(columns, "text", 0), key=f"bn_text_{dataset}")
        if kind != "gpt":
            c3.selectbox("Label column", columns, index=_default(columns, "label", len(columns) - 1),
                         key=f"bn_label_{dataset}")
        if kind in ("mlp", "cnn"):
            image_column_inputs(c2, columns, dataset)
    _architecture_inputs(kind)
    _training_inputs(kind)
    return kind, dataset


def _architecture_inputs(kind: str) -> None:
    st.subheader("Architecture")
    base = scratch.default_architecture(kind)
    if "layers" in base:
        st.caption("Add, remove or resize layers; input sizes come from the layer before, so shapes re-propagate.")
        layers_editor(base, key=f"bn_layers_{kind}")
    sizes = size_settings(base)
    if sizes:
        cols = st.columns(min(len(sizes), 6))
        for i, size in enumerate(sizes):
            cols[i % len(cols)].number_input(size, 1, 10**6, base[size], key=f"bn_{kind}_{size}")
    if "pretrained_embeddings" in base:
        e = st.columns(3)
        e[0].selectbox("Embedding starts from", list(EMBEDDING_STARTS), format_func=EMBEDDING_STARTS.get,
                       key=f"bn_{kind}_pretrained", help=EMBEDDING_HELP)
        e[1].checkbox("Freeze the pretrained embeddings", key=f"bn_{kind}_freeze",
                      disabled=st.session_state.get(f"bn_{kind}_pretrained") is None,
                      help="keep MiniLM's rows fixed and train only the layers after the Embedding: far fewer "
                           "trainable parameters, so a few hundred examples overfit later")


def _training_inputs(kind: str) -> None:
    st.subheader("Training")
    small = kind in ("mlp", "cnn")
    t = st.columns(6)
    t[0].number_input("Epochs", 0.1, MAX_EPOCHS, 10.0 if small else 3.0, key="bn_epochs")
    t[1].number_input("Max steps (-1 = epochs)", -1, MAX_STEPS, -1, key="bn_steps")
    t[2].number_input("Batch size", 1, MAX_BATCH_SIZE, 64 if small or kind == "seq2seq" else 32, key="bn_batch")
    t[3].number_input("Learning rate", 1e-6, 1.0, 1e-3, format="%.1e", key="bn_lr")
    t[4].selectbox("Optimizer", ["adamw", "adamw_torch", "sgd"], key="bn_opt",
                   help="adamw: fused AdamW where the device has it")
    t[5].selectbox("LR schedule", SCHEDULERS, key="bn_sched",
                   help="Hugging Face's schedules (with warm-up) or torch's StepLR, ExponentialLR and OneCycleLR "
                        "(these ignore warm-up; one_cycle has its own rise); the curve below is the run's")
    t = st.columns(6)
    t[0].number_input("Warm-up (fraction or steps)", 0.0, float(MAX_STEPS), 0.05, key="bn_warmup")
    t[1].number_input("Gradient accumulation", 1, MAX_GRAD_ACCUMULATION, 1, key="bn_accum",
                      help="steps whose gradients add up before one optimizer step")
    t[2].number_input("Early stopping patience (0 = off)", 0, MAX_PATIENCE, 0, key="bn_patience")
    t[3].number_input("Seed", 0, 2**32 - 1, 42, key="bn_seed")
    t[4].number_input("Max length (tokens)", 8, 2048, 128, key="bn_maxlen", disabled=kind not in TEXT_KINDS)
    t[5].text_input("Run name", "", key="bn_name", max_chars=120)
    if "validation_fraction" in scratch.default_architecture(kind):
        st.number_input("Validation share of the training rows (0 = none)", 0.0, scratch.MAX_VALIDATION_FRACTION,
                        0.0, 0.05, key=f"bn_{kind}_validation", help=VALIDATION_HELP)


def config_from_state(state: Any) -> tuple[TrainingConfig, ConfigError | None]:
    """The run the page describes, read from the widgets' session state: the page body and Start's
    callback both build it here, so what is queued is exactly what the table shows. The problem is an
    impossible layer list (named as `architecture.layers`), found before the config's own checks."""
    kind = state.get("bn_kind") or "cnn"
    arch = scratch.default_architecture(kind)
    problem = None
    if "layers" in arch:
        layers, why = edited_layers(arch, state.get(f"bn_layers_{kind}"))
        arch["layers"] = layers if layers is not None else arch["layers"]
        problem = ConfigError("architecture.layers", why) if why else None
    for size in size_settings(arch):
        arch[size] = int(state.get(f"bn_{kind}_{size}", arch[size]))
    if "validation_fraction" in arch:
        arch["validation_fraction"] = float(state.get(f"bn_{kind}_validation") or 0.0)
    if "pretrained_embeddings" in arch:
        arch = with_pretrained_embeddings(arch, state.get(f"bn_{kind}_pretrained"),
                                          bool(state.get(f"bn_{kind}_freeze")))
    data = state.get(f"bn_data_{kind}")
    if data == IMAGE_FOLDER and kind in ("mlp", "cnn"):
        data = IMAGE_FOLDER + str(state.get("bn_folder") or "").strip()
        arch["image_size"] = int(state.get("bn_image_size") or 32)
    elif kind in ("mlp", "cnn") and state.get(f"bn_image_{data}"):
        arch["image_column"] = state[f"bn_image_{data}"]
        arch["image_size"] = int(state.get("bn_image_size") or 32)
    d = TrainingConfig()
    config = TrainingConfig(
        task="scratch", architecture=arch, model=f"scratch:{kind}", dataset=data or d.dataset,
        text_column=state.get(f"bn_text_{data}") or d.text_column,
        label_column=state.get(f"bn_label_{data}") or d.label_column,
        epochs=float(state["bn_epochs"]), max_steps=int(state["bn_steps"]), batch_size=int(state["bn_batch"]),
        learning_rate=float(state["bn_lr"]), optimizer=state["bn_opt"], scheduler=state["bn_sched"],
        warmup=float(state["bn_warmup"]), grad_accumulation=int(state["bn_accum"]),
        early_stopping_patience=int(state["bn_patience"]), seed=int(state["bn_seed"]),
        max_length=int(state["bn_maxlen"]), group_by_length=False, name=str(state.get("bn_name") or "").strip())
    return config, problem


def check_view(config: TrainingConfig, problem: ConfigError | None, dataset: str, settings: Any) -> dict | None:
    """Check the run before Start (data, shapes on the meta device, memory) and show the layer table, the
    memory panel, the LR schedule and one real batch; the check's result, or None with the refusal shown."""
    if problem:
        st.error(f"**{problem.field}**: {problem.message}")
        return None
    try:
        info = _check(config.to_json(), config, settings)
    except ConfigError as e:
        st.error(f"**{e.field}**: {e.message}")
        return None
    rows = info.get("layers") or []
    params = sum(r.get("params", 0) for r in rows)
    byts = sum(r.get("bytes", 0) for r in rows)
    st.markdown(f"**Layer table** — input {tuple(info.get('input_shape', ()))} per example · "
                f"{params:,} parameters ({human_bytes(byts)} as float32; ×4 while training with Adam: weights, "
                f"gradients and two moments) · {info.get('train_rows', 0):,} training rows, "
                + (f"{info['validation_rows']:,} validation rows (choose the epoch), "
                   if info.get("validation_rows") else "")
                + f"{info.get('eval_rows', 0):,} held out" + (f" · {info['classes']} classes" if info.get("classes") else ""))
    if dataset == IMAGE_FOLDER:
        image_samples_view(config.dataset, settings, info.get("skipped"))
    elif info.get("skipped"):
        st.warning(f"Some rows are not used — {scratch.skipped_note(info['skipped'])}.")
    table, memory = st.columns([3, 1])
    table.dataframe(layer_frame(rows), hide_index=True, width="stretch")
    with memory:
        memory_view(config)
    steps = total_steps(config, info.get("train_rows", 0))
    st.plotly_chart(lr_figure(*lr_schedule(config.scheduler, config.learning_rate, config.warmup, steps),
                              config.scheduler), key="bn_lr_fig")
    b, k = config.batch_size, config.grad_accumulation
    st.caption(f"{steps:,} optimizer steps · effective batch {b * k:,} ({b} × {k} accumulated)")
    with st.expander("One batch from the DataLoader, and its settings measured"):
        if st.toggle("Build it", key="bn_show_batch", help="runs the data preparation of a real run"):
            batch_view(config, settings)
        loader_timing_view(config)
    return info


@st.cache_data(show_spinner="Checking data, shapes and memory…", max_entries=32)
def _check(config_json: str, _config: TrainingConfig, _settings: Any) -> dict:
    return scratch.check(_config, _settings)
