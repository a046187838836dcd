"""Build-a-network widgets: the layer-list editor, the layer table, the LR preview and a run's results."""
from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components import loaders
from core.system import human_bytes

KIND_LABELS = {"mlp": "MLP (numbers)", "cnn": "CNN (images)", "rnn": "RNN / LSTM / GRU (text)",
               "transformer": "Transformer encoder (text)", "seq2seq": "Seq2seq nn.Transformer (toy task)",
               "gpt": "Tiny GPT (next token)"}
KIND_HELP = {
    "mlp": "Linear layers on the numeric columns of a table: scikit-learn's iris, wine, breast cancer and digits, "
           "a dataset saved on the Datasets page, or the flattened pixels of a folder of images.",
    "cnn": "Convolutions on images: scikit-learn's 1,797 handwritten digits (8×8 pixels, bundled, no download), "
           "or a folder of your own images in the workspace (one sub-folder per class).",
    "rnn": "An Embedding then LSTM / GRU / RNN over token ids (packed sequences: padding is never read).",
    "transformer": "nn.TransformerEncoder layers with sinusoidal positions, mean-pooled into a classifier.",
    "seq2seq": "The encoder–decoder nn.Transformer of the PyTorch tutorials, learning to reverse a sequence.",
    "gpt": "A decoder-only causal LM (GPT-2 blocks, sized down) with a BPE tokenizer trained on your text.",
}


# the Embedding's starting point: None = random, or a packaged model's word-embedding table
EMBEDDING_STARTS = {None: "random (learnt from zero)", "minilm-l6": "MiniLM-L6 word embeddings (384-d)"}
EMBEDDING_HELP = ("Start the first Embedding from the packaged all-MiniLM-L6-v2's word-embedding table (30,522 "
                  "rows of 384 numbers, BERT's uncased WordPiece vocabulary), like loading GloVe vectors in the "
                  "classic tutorials, instead of random numbers. The text is then split with BERT's WordPiece "
                  "tokenizer and the Embedding is 384 wide, whatever the layer list says.")
VALIDATION_HELP = ("Rows moved from the training split to a validation split. While training, the evaluations "
                   "(the curve's eval points, early stopping, the best checkpoint kept with a patience above 0) "
                   "read these rows; the held-out test split is evaluated once, at the end, so it never chooses "
                   "the epoch. Set an early stopping patience to stop on them and keep the best epoch.")


# the data choice that reads a folder of images: the path typed beside it completes config.dataset
IMAGE_FOLDER = "folder:"
IMAGE_FOLDER_LABEL = "Image folder in the workspace…"


def data_label(choice: str) -> str:
    return IMAGE_FOLDER_LABEL if choice == IMAGE_FOLDER else choice


def image_folder_inputs(path_col, size_col, settings) -> None:
    """The folder's path and the square size its images are resized to (read back from session state)."""
    from core.data import allowed_dirs
    from core.scratch import DEFAULT_IMAGE_SIZE, IMAGE_FOLDER_LAYOUT, IMAGE_SIZE_RANGE

    root = allowed_dirs(settings)[0]
    path_col.text_input("Image folder", "", key="bn_folder", max_chars=4096, placeholder="shapes",
                        help=f"A folder inside {root} (or a folder the server's admin allows): {IMAGE_FOLDER_LAYOUT}. "
                             f"For example {root}/shapes/circle/001.png and {root}/shapes/square/001.png: type "
                             "`shapes`. Files Pillow can't read are skipped and counted.")
    size_col.number_input("Image size (pixels, square)", *IMAGE_SIZE_RANGE, DEFAULT_IMAGE_SIZE, key="bn_image_size",
                          help="every image is resized to this × this; grey when every file is grey, else RGB")


def image_column_inputs(col, columns: list[str], dataset: str) -> None:
    """For an MLP / CNN on a saved dataset: the column holding images, if any (else the numeric columns are the
    inputs), and the square size they are resized to."""
    from core.scratch import DEFAULT_IMAGE_SIZE, IMAGE_SIZE_RANGE

    chosen = col.selectbox("Image column", [None, *columns], key=f"bn_image_{dataset}",
                           format_func=lambda c: "none: the numeric columns are the inputs" if c is None else c,
                           help="a column holding paths to image files (inside the folders the server may read, "
                                "e.g. shapes/circle/001.png under the workspace's imports), or the images' bytes "
                                "(a Hugging Face Image column saved as Parquet); rows whose image can't be read are "
                                "skipped and counted")
    if chosen is not None:
        col.number_input("Image size (pixels, square)", *IMAGE_SIZE_RANGE, DEFAULT_IMAGE_SIZE, key="bn_image_size",
                         help="every image is resized to this × this; grey when every image is grey, else RGB")


def image_samples_view(dataset: str, settings, skipped: dict | None) -> None:
    """A few images of the folder with their class, and what was left out."""
    from core.scratch import skipped_note

    if skipped:
        st.warning(f"Some files are not used — {skipped_note(skipped)}.")
    try:
        shown = _samples(dataset)
    except ValueError as e:
        st.error(str(e))
        return
    if shown:
        st.image([a for _, a in shown], caption=[label for label, _ in shown], width=72)


@st.cache_data(show_spinner=False, max_entries=8, ttl=60)
def _samples(dataset: str) -> list:
    from core.scratch import image_samples

    return image_samples(dataset, loaders.settings())


def with_pretrained_embeddings(arch: dict, name: str | None, freeze: bool) -> dict:
    """The architecture with its Embedding started from `name`'s table (None: random): the tokenizer and
    the first Embedding's width become the table's, which core.scratch requires."""
    out = {**arch, "pretrained_embeddings": name, "freeze_embeddings": bool(freeze and name)}
    if not name:
        return out
    from core.scratch import data as D

    out["tokenizer"] = D.PRETRAINED_EMBEDDINGS[name]
    layers = [dict(layer) for layer in out.get("layers", [])]
    for layer in layers:
        if layer.get("type") == "Embedding":
            layer["embedding_dim"] = D.embedding_width(name)
            layer.pop("num_embeddings", None)  # filled from the tokenizer
            break
    out["layers"] = layers
    return out


def size_settings(arch: dict) -> list[str]:
    """The architecture's whole-number settings (d_model, n_layer…): one number input each on the page."""
    return [k for k, v in arch.items() if isinstance(v, int) and not isinstance(v, bool)]


def layer_rows(arch: dict) -> list[dict]:
    """The editor's rows for an architecture's layer list: a type and its settings as a JSON object."""
    return [{"type": layer.get("type"), "settings": json.dumps({k: v for k, v in layer.items() if k != "type"})}
            for layer in arch.get("layers", [])]


def layers_editor(arch: dict, key: str) -> None:
    """Edit the layer list as a table; what it holds is read back with `edited_layers` (from session state,
    so a button's callback sees exactly what the table shows)."""
    from core.scratch import LAYER_PARAMS, LAYER_TYPES

    rows = layer_rows(arch)
    st.data_editor(
        pd.DataFrame(rows, columns=["type", "settings"]), key=key, num_rows="dynamic", hide_index=False,
        width="stretch", height=35 * (len(rows) + 2) + 3,  # every layer in view, no scrolling
        column_config={
            "type": st.column_config.SelectboxColumn("layer", options=list(LAYER_TYPES), required=True),
            "settings": st.column_config.TextColumn(
                "settings (JSON)", help="e.g. {\"out_features\": 64}. Settings per layer: " + "; ".join(
                    f"{t}: {', '.join(p) or '—'}" for t, p in LAYER_PARAMS.items())),
        })


def edited_layers(arch: dict, edits: dict | None) -> tuple[list | None, str | None]:
    """The layer list after the editor's edits ({"edited_rows", "added_rows", "deleted_rows"}, the value
    st.data_editor keeps in session state); returns (layers, error naming the row).

    Settings are read with `json.loads` (a data format, never code); input sizes are not written by hand:
    core fills each from the shape the layer before produces.
    """
    rows = layer_rows(arch)
    edits = edits or {}
    for i, change in (edits.get("edited_rows") or {}).items():
        if 0 <= int(i) < len(rows):
            rows[int(i)] = {**rows[int(i)], **change}
    gone = {int(i) for i in edits.get("deleted_rows") or []}
    rows = [r for i, r in enumerate(rows) if i not in gone] + [dict(r) for r in edits.get("added_rows") or []]
    layers = []
    for i, row in enumerate(rows):
        if not row.get("type"):
            return None, f"row {i}: pick a layer type"
        text = str(row.get("settings") or "").strip() or "{}"
        try:
            settings = json.loads(text)
        except ValueError as e:
            return None, f"row {i} ({row['type']}): settings are not a JSON object ({e.msg} at column {e.colno})"
        if not isinstance(settings, dict):
            return None, f"row {i} ({row['type']}): settings must be a JSON object like {{\"p\": 0.1}}"
        layers.append({**settings, "type": row["type"]})
    return layers, None


def layer_frame(rows: list[dict]) -> pd.DataFrame:
    """The layer table as shown: sizes filled in from the shapes, output shape per example (B = batch)."""
    return pd.DataFrame([{
        "layer": r.get("name"), "type": r.get("type"),
        "settings": ", ".join(f"{k}={v}" for k, v in (r.get("args") or {}).items()),
        "output shape": " × ".join(map(str, r.get("output_shape") or [])),
        "parameters": f"{r.get('params', 0):,}", "weights": human_bytes(r.get("bytes", 0)),
        "activations / example": human_bytes(r.get("activation_bytes", 0)),
    } for r in rows])


def lr_figure(steps: list[int], lrs: list[float], scheduler: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=steps, y=lrs, mode="lines", name="learning rate"))
    fig.update_layout(height=220, margin=dict(l=10, r=10, t=30, b=10), title=f"{scheduler} schedule",
                      xaxis_title="step", yaxis_title="learning rate")
    return fig


def digits_figure(pixels: list[float], side: int = 8) -> go.Figure:
    grid = [pixels[i * side:(i + 1) * side] for i in range(side)]
    fig = go.Figure(go.Heatmap(z=grid, colorscale="Greys", showscale=False))
    fig.update_layout(height=200, width=200, margin=dict(l=0, r=0, t=0, b=0),
                      yaxis=dict(autorange="reversed", visible=False), xaxis=dict(visible=False))
    return fig


def scratch_results(rec, settings) -> None:
    """A completed from-scratch run: its metrics against the baseline, and the model to try."""
    # imported here: training_results draws these results (a module-level import would be circular)
    from components.training_results import classifier_metrics, model_download
    from components.training_views import confusion_figure, probability_figure
    from core.scratch import predict

    fm, kind = rec.final_metrics, (rec.config.get("architecture") or {}).get("kind")
    st.subheader(f"Results · {rec.name}")
    m = st.columns(4)
    if kind == "gpt":
        ppl, base = fm.get("perplexity"), fm.get("bigram_perplexity")
        m[0].metric("held-out perplexity", f"{ppl:,.1f}" if ppl else "—",
                    f"{ppl - base:+,.1f} vs bigram model" if ppl and base else None, delta_color="inverse")
        m[1].metric("bigram-model perplexity (same tokens)", f"{base:,.1f}" if base else "—")
    elif kind == "seq2seq":
        m[0].metric("token accuracy", f"{fm.get('token_accuracy', 0):.1%}")
        if fm.get("sequence_accuracy") is not None:
            m[1].metric("whole sequences right", f"{fm['sequence_accuracy']:.1%}")
    else:
        classifier_metrics(m, fm)
    m[3].metric("parameters", f"{rec.plan.get('params', 0):,}")
    if fm.get("confusion_matrix"):
        st.plotly_chart(confusion_figure(fm["confusion_matrix"], rec.plan.get("labels", [])), key="bn_cm")


    c1, c2 = st.columns(2)
    model_download(c1, rec, "bn")
    script, problem = _export(rec.id, rec.config, rec.plan, rec.model_dir)
    if problem:  # the dataset version or the saved tokenizer is gone since, or a kind the export can't write
        c2.info(f"Can't export this run as a script: {problem}")
    else:
        c2.download_button("Export as script", script, file_name=f"train_{rec.id}.py", mime="text/x-python",
                           key="bn_script", help="plain PyTorch + transformers: the data, the network and the "
                                                 "Trainer with this run's settings; same seed, same eval loss")
        with st.expander("Script preview"):
            st.code(script, language="python")
    st.markdown("**Try the model**")
    inputs, shown = _try_inputs(rec, kind, settings)
    if not inputs:
        return
    try:
        out = predict(rec.model_dir, inputs)[0]
    except ValueError as e:
        st.error(str(e))
        return
    if "probabilities" in out:
        st.plotly_chart(probability_figure(out["probabilities"]), key="bn_probs")
    elif "output" in out:
        st.markdown(f"Output: `{' '.join(map(str, out['output']))}` (input reversed: `{shown}`)")
    else:
        st.text_area("Generated", out.get("text", ""), disabled=True, key=f"bn_gen_out_{rec.id}")


@st.cache_data(show_spinner="Writing the script…", max_entries=8)
def _export(run_id: str, config: dict, plan: dict, model_dir: str | None) -> tuple[str, str | None]:
    """(the run's exported script, None), or ("", why it can't be written)."""
    from core.data import DataError
    from core.scratch import export_script
    from core.training import ConfigError, TrainingConfig

    try:
        return export_script(TrainingConfig.from_dict(config), loaders.settings(), plan, run_id,
                             model_dir=model_dir), None
    except (ConfigError, DataError, ValueError, OSError) as e:
        return "", str(e)


def _try_inputs(rec, kind: str, settings) -> tuple[list, str]:
    """The input box for this kind of model; returns ([one input], what the reversal should give)."""
    if kind == "seq2seq":
        text = st.text_input("A sequence of symbols (numbers separated by spaces)", "3 1 4 1 5 9",
                             key=f"bn_try_{rec.id}")
        return ([text] if text.strip() else []), " ".join(reversed(text.split()))
    if kind == "gpt":
        text = st.text_input("Prompt", "This medication", key=f"bn_try_{rec.id}", max_chars=500)
        return ([text] if text.strip() else []), ""
    if kind in ("rnn", "transformer"):
        text = st.text_area("Text to classify", "It worked well and the side effects were mild.",
                            key=f"bn_try_{rec.id}", max_chars=settings.max_text_chars)
        return ([text] if text.strip() else []), ""
    example = _eval_example(rec.id, rec.config)
    if example is None:
        st.info("The run's dataset is gone, so there is no example to try.")
        return [], ""
    values, label = example
    shape = rec.plan.get("input_shape") or []
    if kind == "cnn" and len(values) == 64:
        st.plotly_chart(digits_figure(values), key="bn_digit")
    elif kind == "cnn" and len(shape) == 3 and len(values) == shape[0] * shape[1] * shape[2]:
        import numpy as np

        image = np.asarray(values, dtype=np.float32).reshape(shape).transpose(1, 2, 0)
        st.image(image if shape[0] == 3 else image[:, :, 0], width=96, clamp=True)
    st.caption(f"An example from the run's own evaluation split (true class: {label}).")
    return [values], ""


@st.cache_data(show_spinner=False, max_entries=8)
def _eval_example(run_id: str, config: dict) -> tuple[list[float], str] | None:
    from core.scratch import example_row
    from core.training import TrainingConfig

    try:
        return example_row(TrainingConfig.from_dict(config), loaders.settings())
    except ValueError:
        return None


def batch_view(config, settings) -> None:
    """One real batch from a torch DataLoader over the run's training data, through the run's own collate
    function: each tensor's shape, dtype and first rows (padding shows as the pad id)."""
    try:
        batch, collate = _one_batch(config.to_json(), config)
    except Exception as e:  # noqa: BLE001 - any data problem is shown beside the view, the page stays up
        st.error(f"Can't build a batch: {e}")
        return
    st.caption(f"`DataLoader(train, batch_size={min(config.batch_size, 8)}, shuffle=True, collate_fn={collate})` "
               "— the same collate function the Trainer uses (at most 8 rows shown).")
    st.dataframe(pd.DataFrame([{"tensor": k, "shape": " × ".join(map(str, v.shape)), "dtype": str(v.dtype)}
                               for k, v in batch.items()]), hide_index=True)
    for k, v in batch.items():
        st.markdown(f"`{k}`")
        shown = v.reshape(-1, 1) if v.dim() < 2 else v.flatten(1)  # one row per example
        st.dataframe(pd.DataFrame(shown[:, :32].tolist()), height=min(38 + 35 * len(shown), 320))


@st.cache_data(show_spinner="Building one batch…", max_entries=4)
def _one_batch(config_json: str, _config) -> tuple[dict, str]:
    import tempfile

    import torch
    from torch.utils.data import DataLoader

    from core.scratch import setup

    with tempfile.TemporaryDirectory() as tmp:
        task = setup(_config, loaders.settings(), tmp)
    collate = task.data_collator
    if collate is None:
        from transformers import default_data_collator as collate
    loader = DataLoader(task.train_dataset, batch_size=min(_config.batch_size, 8), shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(_config.seed))
    batch = next(iter(loader))
    name = getattr(collate, "__name__", type(collate).__name__)
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}, name
