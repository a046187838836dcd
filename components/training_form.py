"""The launch form: widgets in, a TrainingConfig out (a plain value, no Streamlit objects).

The widgets stop at the limits `TrainingConfig.validate` enforces, and the config is validated as it is
drawn: a value that can't work (a batch over the memory cap, …) is named right under its widget.
"""
from __future__ import annotations

import streamlit as st

from core.training import ConfigError, TrainingConfig
from core.training.config import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_GRAD_ACCUMULATION,
    MAX_LENGTH,
    MAX_PATIENCE,
    MAX_SAMPLES,
    MAX_STEPS,
    OPTIMIZERS,
    PRECISIONS,
    REPORT_TOOLS,
    SCHEDULERS,
    TASK_ROLES,
    TASKS,
)

CUSTOM = "Local folder or hub id…"
# the pretrained tasks the form offers (a from-scratch network is built on the Build a network page)
TASK_LABELS = {"text-classification": "Text classification", "token-classification": "Token classification (NER)",
               "question-answering": "Extractive question answering", "causal-lm": "Causal language modelling",
               "seq2seq": "Sequence to sequence (summarise, translate)"}
assert set(TASK_LABELS) == set(TASKS) - {"scratch"}
PACKING = {"blocks (packing)": True, "one padded row each (padding)": False}  # the causal-lm choice
GENERATIVE = ("causal-lm", "seq2seq")  # the packaged encoder can't generate: a decoder comes from elsewhere


def model_choices(runs, task: str = "text-classification") -> dict[str, str]:
    """Label -> model spec: the packaged encoder (not for generation), completed runs of the same task,
    what the task's module adds (`extra_models(runs)`: e.g. a from-scratch GPT), or a custom path."""
    out = {} if task in GENERATIVE else {"MiniLM-L6 (packaged, 22.7M params)": "minilm-l6"}
    for r in runs:
        if r.status == "completed" and r.model_dir and r.config.get("task", "text-classification") == task:
            out[f"run {r.id} · {r.name}"] = f"run:{r.id}"
    extra = getattr(_module(task), "extra_models", None) if task in TASK_ROLES else None
    if extra is not None:
        out |= extra(runs, task)
    out[CUSTOM] = ""
    return out


def _module(task: str):
    from core.training.tasks import task_module

    try:
        return task_module(task)
    except ModuleNotFoundError:  # a task whose module has not landed yet: the form says so, nothing breaks
        return None


def launch_form(dataset_refs, runs) -> TrainingConfig:
    """Read every field of the config; core validates it here (shown under the widget) and again on Start."""
    d = TrainingConfig()
    slots: dict[str, object] = {}  # field -> an empty spot right under its widget, for its error
    task = st.selectbox("Task", list(TASK_LABELS), format_func=TASK_LABELS.get, key="ft_task",
                        help="What the pretrained model learns to do; each task reads its own columns")
    if task in TASK_ROLES and _module(task) is None:
        st.warning(f"{TASK_LABELS[task]} is not available in this build yet: its training module is missing.")
    c1, c2 = st.columns(2)
    with c1:
        models = model_choices(runs, task)
        label = st.selectbox("Model", list(models), key=f"ft_model_{task}")
        if not models[label]:
            st.text_input("Folder on the server, or a hub id", key="ft_model_custom",
                          placeholder="/path/to/save_pretrained-folder or bert-base-uncased")
        if task in GENERATIVE:
            st.caption("Offline, a decoder comes from a completed tiny-GPT / seq2seq run on **Build a network** "
                       "or a local `save_pretrained` folder; the packaged MiniLM is an encoder and can't generate.")
        slots["model"] = st.empty()
    names = sorted({r.name for r in dataset_refs} | {"drug-reviews"})
    with c2:
        dataset = st.selectbox("Dataset", names, index=names.index("drug-reviews"), key="ft_dataset",
                               help="Datasets saved on the Datasets page; drug-reviews is the built-in sample")
        versions = sorted({r.version for r in dataset_refs if r.name == dataset}, reverse=True)
        version = st.selectbox("Version", versions or [None], key=f"ft_version_{dataset}",  # per dataset: a stale version never carries over
                               format_func=lambda v: "latest" if v is None else f"v{v}")
    ref = next((r for r in dataset_refs if r.name == dataset and r.version == version), None)
    columns = ref.columns if ref else ["text", "label", "drug", "condition", "useful_count"]
    if task in TASK_ROLES:
        roles = TASK_ROLES[task]
        cols = st.columns(len(roles))
        for col, (role, what) in zip(cols, roles.items(), strict=True):
            with col:
                st.selectbox(f"{role.capitalize()} column", columns, index=_index(columns, _guess(columns, role)),
                             key=f"ft_col_{task}_{role}", help=what)
                slots[f"columns.{role}"] = st.empty()
        if task == "causal-lm":
            st.radio("Rows become", list(PACKING), key="ft_packing", horizontal=True,
                     help="Packing joins the rows (an end-of-text token after each) and cuts the stream into blocks "
                          "of max length: no padding, but a block may span two rows. Padding keeps one row per "
                          "example, cut to max length and padded to its batch's longest; the example below shows "
                          "which one.")
            slots["packing"] = st.empty()
    else:
        c1, c2, c3 = st.columns(3)
        c1.selectbox("Text column", columns, index=_index(columns, "text"), key="ft_text")
        c2.selectbox("Second text column (sentence pairs)", [None, *columns], key="ft_pair",
                     format_func=lambda c: "— none —" if c is None else c)
        c3.selectbox("Label column", columns, index=_index(columns, "label"), key="ft_label")

    st.markdown("**Hyperparameters**")
    c = st.columns(4)
    c[0].number_input("Max length (tokens)", 1, MAX_LENGTH, 128 if task != "question-answering" else 384,
                      key=f"ft_maxlen_{task}" if task == "question-answering" else "ft_maxlen")
    slots["max_length"] = c[0].empty()
    c[1].number_input("Batch size", 1, MAX_BATCH_SIZE, d.batch_size, key="ft_bs")
    slots["batch_size"] = c[1].empty()
    c[2].number_input("Learning rate", 1e-7, 1.0, d.learning_rate, format="%.1e", key="ft_lr")
    slots["learning_rate"] = c[2].empty()
    c[3].number_input("Epochs", 0.0, min(100.0, MAX_EPOCHS), d.epochs, step=0.5, key="ft_epochs")
    slots["epochs"] = c[3].empty()
    c = st.columns(4)
    c[0].number_input("Max steps (-1 = use epochs)", -1, MAX_STEPS, -1, key="ft_steps")
    slots["max_steps"] = c[0].empty()
    c[1].number_input("Use first N training rows (0 = all)", 0, MAX_SAMPLES, 0, key="ft_ntrain")
    c[2].number_input("Warm-up (fraction or steps)", 0.0, float(MAX_STEPS), d.warmup, key="ft_warmup")
    slots["warmup"] = c[2].empty()
    c[3].selectbox("Scheduler", SCHEDULERS, key="ft_sched")
    with st.expander("More settings"):
        c = st.columns(4)
        c[0].number_input("Weight decay", 0.0, 0.99, d.weight_decay, key="ft_wd")
        c[1].number_input("Gradient accumulation", 1, MAX_GRAD_ACCUMULATION, 1, key="ft_accum")
        slots["grad_accumulation"] = c[1].empty()
        c[2].selectbox("Precision", PRECISIONS, key="ft_prec",
                       help="auto = bf16 on a GPU that has it, else fp32")
        c[3].selectbox("Optimizer", OPTIMIZERS, key="ft_opt",
                       help="adamw = fused AdamW where available (fast, stable)")
        c = st.columns(4)
        c[0].number_input("Seed", 0, 2**31 - 1, d.seed, key="ft_seed")
        c[1].number_input("Evaluate every N steps (0 = 5× per run)", 0, MAX_STEPS, 0, key="ft_eval")
        c[2].number_input("Early-stopping patience (0 = off)", 0, min(100, MAX_PATIENCE), 0,
                          key="ft_patience")
        c[3].number_input("Held-out fraction (no test split)", 0.01, 0.9, d.eval_fraction,
                          key="ft_evalfrac")
        c = st.columns(4)
        c[0].checkbox("Group batches by length (less padding)", True, key="ft_group")
        c[1].checkbox("Also log to TensorBoard", False, key="ft_tensorboard",
                      help="through the Trainer's report_to; the run's page shows the command to open it")
        c[3].checkbox("Also log to Trackio", False, key="ft_trackio",
                      help="Hugging Face's local experiment tracker (transformers' TrackioCallback), into the "
                           "workspace's trackio folder; the run's page shows the command to open it")
        if task == "seq2seq":
            c[2].number_input("Max target length (tokens)", 1, MAX_LENGTH, d.max_target_length, key="ft_maxtarget")
        st.text_input("Run name", key="ft_name", placeholder="default: model on dataset")
        slots["name"] = st.empty()
    config = config_from_state(st.session_state, runs)
    try:
        config.validate()
    except ConfigError as e:
        # an empty field is only unfinished: the page names it if Start is pressed anyway
        if e.field in slots and e.message != "must not be empty":
            slots[e.field].error(e.message)
    else:
        if task in TASK_ROLES and _module(task) is not None:
            mapped_example_view(config)
    return config


def _guess(columns: list[str], role: str) -> str:
    """The column a role most likely reads: its own name, then the usual dataset names for it."""
    usual = {"tags": ("ner_tags", "tags", "labels", "label"), "tokens": ("tokens", "words"),
             "source": ("document", "article", "source", "text"), "target": ("summary", "highlights", "target")}
    return next((c for c in (role, *usual.get(role, ())) if c in columns), columns[0] if columns else role)


def mapped_example_view(config: TrainingConfig) -> None:
    """One row exactly as the model will see it (tokens, labels, masks), before Start: AutoTrain's column
    mapping shown, so a wrong column is visible before a run spends minutes on it."""
    from components import loaders

    with st.expander("One example, as the model will see it", expanded=True):
        try:
            ex = _mapped_example(config.to_json(), loaders.settings())
        except ConfigError as e:
            st.error(f"**{e.field}**: {e.message}")
            return
        except Exception as e:  # noqa: BLE001 - the preview's boundary: whatever odd data provokes, the form stays
            st.error(f"Could not map an example from {config.dataset!r} with this column mapping "
                     f"({type(e).__name__}: {str(e)[:300]}); Start checks every row and names the one at fault.")
            return
        for note in ex.notes:
            st.caption(note)
        st.dataframe(ex.table, hide_index=True, height=min(38 + 35 * len(ex.table), 320))


@st.cache_data(show_spinner="Mapping one example…", max_entries=8)
def _mapped_example(config_json: str, _settings):
    import json

    from core.training.runner import plan

    config = TrainingConfig.from_dict(json.loads(config_json))
    from core.training.tasks import mapped_example

    return mapped_example(config, _settings, plan(config, _settings).model_path)


def config_from_state(state, runs) -> TrainingConfig:
    """The config the form's widgets hold, read by key: the same in a script run and in a button callback.

    Start acts in its `on_click` callback, which runs before the rerun it triggers, so a click can
    never be lost to a rerun that starts over before reaching the button (one click, one action).
    """
    d = TrainingConfig()
    task = state.get("ft_task") or d.task
    models = model_choices(runs, task)
    chosen = state.get(f"ft_model_{task}")
    model = models.get(chosen, "") if chosen is not None else next(iter(models.values()))
    model = model or str(state.get("ft_model_custom") or "")
    dataset = state.get("ft_dataset", d.dataset)

    def get(key, default):
        v = state.get(key)
        return default if v is None else v

    roles = TASK_ROLES.get(task, {})
    return TrainingConfig(
        task=task, columns={r: str(state.get(f"ft_col_{task}_{r}") or "") for r in roles},
        max_target_length=int(get("ft_maxtarget", d.max_target_length)),
        packing=PACKING.get(state.get("ft_packing"), True) if task == "causal-lm" else True,
        report_to=",".join(t for t in REPORT_TOOLS if state.get(f"ft_{t}")) or "none",
        model=model, dataset=dataset, dataset_version=state.get(f"ft_version_{dataset}"),
        text_column=get("ft_text", d.text_column), text_pair_column=state.get("ft_pair"),
        label_column=get("ft_label", d.label_column),
        max_length=int(get("ft_maxlen_question-answering", 384) if task == "question-answering"
                       else get("ft_maxlen", 128)),
        batch_size=int(get("ft_bs", d.batch_size)), learning_rate=float(get("ft_lr", d.learning_rate)),
        epochs=float(get("ft_epochs", d.epochs)), max_steps=int(get("ft_steps", -1)),
        max_train_samples=int(get("ft_ntrain", 0)) or None, warmup=float(get("ft_warmup", d.warmup)),
        scheduler=get("ft_sched", d.scheduler), weight_decay=float(get("ft_wd", d.weight_decay)),
        grad_accumulation=int(get("ft_accum", 1)), precision=get("ft_prec", d.precision),
        optimizer=get("ft_opt", d.optimizer), seed=int(get("ft_seed", d.seed)),
        eval_steps=int(get("ft_eval", 0)) or None, early_stopping_patience=int(get("ft_patience", 0)),
        eval_fraction=float(get("ft_evalfrac", d.eval_fraction)), group_by_length=bool(get("ft_group", True)),
        name=str(get("ft_name", "")),
    )


def _index(options: list[str], wanted: str) -> int:
    return options.index(wanted) if wanted in options else 0
