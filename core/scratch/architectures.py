"""Architecture specs (JSON-able dicts) per kind: defaults, checks, and the layer table before training."""
from __future__ import annotations

import copy
import math

from core.training.config import ConfigError

KINDS = ("mlp", "cnn", "rnn", "transformer", "seq2seq", "gpt")
TEXT_KINDS = ("rnn", "transformer")
MAX_PARAM_BYTES = 2 * 2**30  # parameters × 16 bytes (weights, gradients, two Adam moments in fp32)

# the text classifiers' training options beside the layers:
# validation_fraction: share of the training rows held out to choose the epoch (early stopping and the best
#   checkpoint are judged on it; the test split is scored once, at the end). 0 = none: the engine then
#   evaluates on the test split while training, as before.
# pretrained_embeddings: "minilm-l6" starts the first Embedding from MiniLM-L6's 384-d word-embedding table
#   (BERT's uncased WordPiece vocabulary), like loading GloVe vectors; None = random (learnt from zero).
# freeze_embeddings: keep those pretrained rows fixed while the rest trains.
_TEXT_OPTIONS = {"validation_fraction": 0.0, "pretrained_embeddings": None, "freeze_embeddings": False}
MAX_VALIDATION_FRACTION = 0.5
_DEFAULTS = {
    "mlp": {"layers": [{"type": "Linear", "out_features": 128}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.1},
                       {"type": "Linear", "out_features": 64}, {"type": "ReLU"}],
            "feature_columns": None, "image_size": None, "image_column": None},
    # image_size: an image folder's images (or an image column's) are resized to image_size × image_size
    #   (None = 32); image_shape then comes from the images (1 channel when every image is grey, else 3)
    # image_column: a workspace dataset's column holding images (paths to image files inside the readable
    #   folders, encoded bytes, or a `datasets` Image column); the label column holds the classes
    "cnn": {"image_shape": [1, 8, 8], "feature_columns": None, "image_size": None, "image_column": None,
            "layers": [{"type": "Conv2d", "out_channels": 32, "kernel_size": 3, "padding": 1},
                       {"type": "BatchNorm2d"}, {"type": "ReLU"},
                       {"type": "Conv2d", "out_channels": 64, "kernel_size": 3, "padding": 1},
                       {"type": "BatchNorm2d"}, {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
                       {"type": "Dropout", "p": 0.25}, {"type": "Flatten"},
                       {"type": "Linear", "out_features": 128}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.3}]},
    "rnn": {"tokenizer": "train", "vocab_size": 2000, **_TEXT_OPTIONS,
            "layers": [{"type": "Embedding", "embedding_dim": 64},
                       {"type": "LSTM", "hidden_size": 64, "bidirectional": True},
                       {"type": "Dropout", "p": 0.2}]},
    "transformer": {"tokenizer": "train", "vocab_size": 2000, **_TEXT_OPTIONS,
                    "layers": [{"type": "Embedding", "embedding_dim": 64}, {"type": "PositionalEncoding"},
                               {"type": "TransformerEncoderLayer", "nhead": 4, "dim_feedforward": 128},
                               {"type": "TransformerEncoderLayer", "nhead": 4, "dim_feedforward": 128},
                               {"type": "MeanPool"}, {"type": "Dropout", "p": 0.1}]},
    "seq2seq": {"d_model": 64, "nhead": 4, "num_encoder_layers": 2, "num_decoder_layers": 2,
                "dim_feedforward": 128, "dropout": 0.1, "norm_first": True, "symbols": 10, "min_len": 4, "max_len": 12,
                "train_size": 5000, "eval_size": 500},
    # untied output layer: on a few hundred texts the direct token -> next-token path (a bigram) is learnt early
    "gpt": {"tokenizer": "train", "vocab_size": 2000, "n_embd": 128, "n_layer": 2, "n_head": 4, "dropout": 0.1,
            "tie_embeddings": False, "validation_fraction": 0.0},
}
# whole-number settings of the kinds without a layer list: (lowest, highest)
_SIZES = {"d_model": (1, 4096), "nhead": (1, 64), "num_encoder_layers": (1, 48), "num_decoder_layers": (1, 48),
          "dim_feedforward": (1, 65536), "symbols": (2, 1000), "min_len": (1, 256), "max_len": (1, 256),
          "train_size": (1, 10**6), "eval_size": (1, 10**6), "n_embd": (1, 8192), "n_layer": (1, 96),
          "n_head": (1, 128), "vocab_size": (1, 10**6)}


def default_architecture(kind: str) -> dict:
    """A working starting point for each kind (a fresh copy: edit it freely)."""
    if kind not in _DEFAULTS:
        raise ConfigError("architecture.kind", f"one of {', '.join(KINDS)}; got {kind!r}")
    return {"kind": kind, **copy.deepcopy(_DEFAULTS[kind])}


def full_architecture(arch: object) -> dict:
    """The user's spec over the kind's defaults, every non-layer value checked; ConfigError names the key."""
    if not isinstance(arch, dict):
        raise ConfigError("architecture", f"must be a mapping with a 'kind', got {type(arch).__name__}")
    out = default_architecture(arch.get("kind"))
    unknown = sorted(set(arch) - set(out))
    if unknown:
        raise ConfigError(f"architecture.{unknown[0]}", f"not a setting of a {out['kind']} "
                          f"(settings: {', '.join(sorted(out))})")
    out.update(copy.deepcopy(arch))
    for key, (low, high) in _SIZES.items():
        if key in out:
            v = out[key]
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                zero = "zero-sized: " if v == 0 else ""
                raise ConfigError(f"architecture.{key}", f"{zero}must be a whole number from {low:,} to {high:,}, "
                                  f"got {v!r}")
    if "dropout" in out and (isinstance(out["dropout"], bool) or not isinstance(out["dropout"], (int, float))
                             or not 0 <= out["dropout"] < 1):
        raise ConfigError("architecture.dropout", f"must be a probability in [0, 1), got {out['dropout']!r}")
    v = out.get("validation_fraction", 0.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= MAX_VALIDATION_FRACTION:
        raise ConfigError("architecture.validation_fraction", f"a share of the training rows from 0 (none) to "
                          f"{MAX_VALIDATION_FRACTION}, got {v!r}")
    kind = out["kind"]
    if out.get("pretrained_embeddings") is not None:
        from core.scratch.data import PRETRAINED_EMBEDDINGS

        if out["pretrained_embeddings"] not in PRETRAINED_EMBEDDINGS:
            raise ConfigError("architecture.pretrained_embeddings", f"one of {', '.join(PRETRAINED_EMBEDDINGS)}, or "
                              f"empty for random embeddings; got {out['pretrained_embeddings']!r}")
    for key in ("norm_first", "tie_embeddings", "freeze_embeddings"):
        if not isinstance(out.get(key, True), bool):
            raise ConfigError(f"architecture.{key}", f"must be true or false, got {out[key]!r}")
    if kind == "seq2seq":
        if out["d_model"] % out["nhead"]:
            raise ConfigError("architecture.nhead", f"{out['nhead']} heads do not divide d_model {out['d_model']}")
        if out["min_len"] > out["max_len"]:
            raise ConfigError("architecture.min_len", f"{out['min_len']} is above max_len {out['max_len']}")
    if kind == "gpt" and out["n_embd"] % out["n_head"]:
        raise ConfigError("architecture.n_head", f"{out['n_head']} heads do not divide n_embd {out['n_embd']}")
    if kind == "cnn":
        shape = out["image_shape"]
        if (not isinstance(shape, list) or len(shape) != 3
                or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 4096 for s in shape)):
            raise ConfigError("architecture.image_shape", f"[channels, height, width] of whole numbers ≥ 1, got {shape!r}")
    if out.get("image_size") is not None:
        from core.scratch.images import SIZE_RANGE

        v, (low, high) = out["image_size"], SIZE_RANGE
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ConfigError("architecture.image_size", f"a whole number of pixels from {low} to {high}, or empty "
                              f"(32), got {v!r}")
    if out.get("image_column") is not None and (not isinstance(out["image_column"], str) or not out["image_column"]):
        raise ConfigError("architecture.image_column", f"the name of the column holding the images, or empty; got "
                          f"{out['image_column']!r}")
    if not isinstance(out.get("tokenizer", ""), str):
        raise ConfigError("architecture.tokenizer", "must be a tokenizer name or 'train'")
    return out


def with_vocab(arch: dict, vocab: int) -> dict:
    """Fill the Embedding's num_embeddings from the tokenizer; one given by hand must match it."""
    out = copy.deepcopy(arch)
    for i, layer in enumerate(out.get("layers", [])):
        if isinstance(layer, dict) and layer.get("type") == "Embedding":
            given = layer.get("num_embeddings")
            if given is not None and given != vocab:
                raise ConfigError(f"architecture.layers[{i}]", f"Embedding num_embeddings {given!r} does not match "
                                  f"the tokenizer's vocabulary of {vocab:,} tokens: leave it empty or set {vocab}")
            layer["num_embeddings"] = vocab
    return out


def input_shape(arch: dict, n_features: int = 0, max_length: int = 128) -> tuple:
    """One example's shape, batch excluded."""
    kind = arch["kind"]
    if kind == "mlp":
        return (n_features,)
    if kind == "cnn":
        return tuple(arch["image_shape"])
    if kind == "seq2seq":
        return (arch["max_len"],)
    return (max_length,)


def layer_table(architecture: dict, input_shape: tuple, num_classes: int | None = None) -> list[dict]:
    """Layer name, type, output shape, parameters and bytes for one example, by shape propagation on `meta`
    (nothing allocated). Classifiers get a final "head" row when `num_classes` is given."""
    from core.scratch.layers import resolve

    arch = full_architecture(architecture)
    kind = arch["kind"]
    if kind in ("mlp", "cnn", *TEXT_KINDS):
        if kind in TEXT_KINDS:
            arch = with_vocab(arch, arch.get("vocab_size") or 2000) if not _has_vocab(arch) else arch
        dtype = "long" if kind in TEXT_KINDS else "float"
        rows = [r.row() for r in resolve(arch["layers"], tuple(input_shape), num_classes, dtype)]
    else:
        import torch

        with torch.device("meta"):
            # eager attention: the SDPA mask builder reads mask values, which `meta` tensors do not have
            extra = {"vocab": arch["vocab_size"], "attn_implementation": "eager"} if kind == "gpt" else {}
            model = build_model(arch, max_length=input_shape[0], **extra)
            rows = trace_rows(model, example_inputs(kind, model, input_shape[0], "meta"))
    check_memory(rows)
    return rows


def _has_vocab(arch: dict) -> bool:
    return all(layer.get("num_embeddings") for layer in arch["layers"]
               if isinstance(layer, dict) and layer.get("type") == "Embedding")


def check_memory(rows: list[dict]) -> None:
    params = sum(r["params"] for r in rows)
    if params * 16 > MAX_PARAM_BYTES:
        big = max(rows, key=lambda r: r["params"])
        raise ConfigError("architecture.layers" if big["name"].startswith(("layers", "head")) else "architecture",
                          f"{params:,} parameters need {params * 16 / 2**30:.1f} GiB to train (weights, gradients, "
                          f"Adam moments), over the {MAX_PARAM_BYTES / 2**30:.0f} GiB cap; the largest is "
                          f"{big['name']} ({big['type']}, {big['params']:,})")


def build_model(arch: dict, vocab: int | None = None, max_length: int = 128, **config_kwargs):
    """The seq2seq or GPT model of a full architecture (the classifiers are built in core.scratch.task)."""
    from core.scratch.models import Seq2SeqConfig, Seq2SeqTransformer, TinyGPT, TinyGPTConfig

    if arch["kind"] == "seq2seq":
        cfg = Seq2SeqConfig(vocab_size=3 + arch["symbols"], max_len=arch["max_len"],
                            **{k: arch[k] for k in ("d_model", "nhead", "num_encoder_layers", "num_decoder_layers",
                                                    "dim_feedforward", "dropout", "norm_first")},
                            **config_kwargs)
        return Seq2SeqTransformer(cfg)
    d = arch["dropout"]
    cfg = TinyGPTConfig(vocab_size=vocab, n_positions=max_length, n_embd=arch["n_embd"], n_layer=arch["n_layer"],
                        n_head=arch["n_head"], resid_pdrop=d, embd_pdrop=d, attn_pdrop=d, use_cache=False,
                        tie_word_embeddings=arch["tie_embeddings"],
                        **config_kwargs)
    return TinyGPT(cfg)


def example_inputs(kind: str, model, length: int, device: str = "cpu") -> dict:
    """A batch of two examples of the model's input size (what the table's shapes are measured on)."""
    import torch

    ids = torch.ones(2, length, dtype=torch.long, device=device)
    if kind == "seq2seq":
        return {"input_ids": ids, "attention_mask": ids.bool(), "labels": torch.ones(2, length + 1, dtype=torch.long,
                                                                                    device=device)}
    return {"input_ids": ids, "attention_mask": ids}


def _traced(model) -> list[tuple[str, object]]:
    """The modules a table shows for the encoder–decoder and the GPT (blocks, not every sub-layer)."""
    import torch.nn as nn

    out = []
    for name, m in model.named_modules():
        depth = name.count(".")
        if isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)) or name in (
                "embed", "positions", "generator", "lm_head", "transformer.wte", "transformer.wpe",
                "transformer.ln_f", "transformer.encoder.norm", "transformer.decoder.norm") or (
                name.startswith("transformer.h.") and depth == 2):
            out.append((name, m))
    return out


def trace_rows(model, inputs: dict) -> list[dict]:
    """Run `model` once (on meta or for real) and record each shown module's output shape and parameters."""
    import torch

    rows, hooks = [], []
    for name, m in _traced(model):
        def hook(mod, args, out, name=name):
            t = out[0] if isinstance(out, tuple) else out
            params = sum(p.numel() for p in mod.parameters())
            rows.append({"name": name, "type": type(mod).__name__, "output_shape": ["B", *t.shape[1:]],
                         "params": params, "bytes": params * 4, "activation_bytes": math.prod(t.shape[1:]) * 4,
                         "args": {}})
        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in hooks:
            h.remove()
    return rows
