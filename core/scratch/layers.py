"""An editable layer list -> torch.nn modules, with shapes propagated on the `meta` device (no allocation).

A layer is a dict: {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1}. Input sizes
(in_features, in_channels, input_size, d_model, num_features) are never written by hand: each comes from
the shape the layer before it produces, so resizing one layer re-propagates through the rest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from core.training.config import ConfigError

# parameter -> (default, kind); default None = required. kinds: int (>= 1), int0 (>= 0), prob, bool, choice
LAYER_PARAMS: dict[str, dict[str, tuple]] = {
    "Linear": {"out_features": (None, "int"), "bias": (True, "bool")},
    "Conv2d": {"out_channels": (None, "int"), "kernel_size": (3, "int"), "stride": (1, "int"),
               "padding": (0, "int0")},
    "MaxPool2d": {"kernel_size": (2, "int"), "stride": (None, "int?")},
    "Dropout": {"p": (0.1, "prob")},
    "BatchNorm1d": {}, "BatchNorm2d": {}, "LayerNorm": {},
    "ReLU": {}, "GELU": {}, "Flatten": {},
    "Embedding": {"num_embeddings": (None, "int"), "embedding_dim": (None, "int")},
    "LSTM": {"hidden_size": (None, "int"), "num_layers": (1, "int"), "bidirectional": (False, "bool"),
             "output": ("last", ("last", "sequence"))},
    "GRU": {"hidden_size": (None, "int"), "num_layers": (1, "int"), "bidirectional": (False, "bool"),
            "output": ("last", ("last", "sequence"))},
    "RNN": {"hidden_size": (None, "int"), "num_layers": (1, "int"), "bidirectional": (False, "bool"),
            "output": ("last", ("last", "sequence"))},
    "TransformerEncoderLayer": {"nhead": (4, "int"), "dim_feedforward": (None, "int?"), "dropout": (0.1, "prob")},
    "PositionalEncoding": {"dropout": (0.0, "prob")},  # sinusoidal, as in "Attention is all you need"
    "MeanPool": {},  # (B, T, E) -> (B, E): the mean over the real (unpadded) positions
}
LAYER_TYPES = tuple(LAYER_PARAMS)
RECURRENT = ("LSTM", "GRU", "RNN")
MAX_SIZE = 2**24  # any one size parameter; the parameter-memory cap catches the rest
# the rank each layer needs on input, counting the batch: 2 = (B, F), 3 = (B, T, E), 4 = (B, C, H, W)
NEEDS_RANK = {"Conv2d": (4,), "MaxPool2d": (4,), "BatchNorm2d": (4,), "BatchNorm1d": (2,), "Embedding": (2,),
              "LSTM": (3,), "GRU": (3,), "RNN": (3,), "TransformerEncoderLayer": (3,),
              "PositionalEncoding": (3,), "MeanPool": (3,)}


@dataclass
class Resolved:
    """One layer with every size filled in and the shapes it maps between (batch dimension excluded)."""

    name: str  # "layers[2]" or "head"
    type: str
    kwargs: dict  # the torch.nn constructor arguments
    extra: dict  # what the forward needs beyond the module (RNN output mode)
    in_shape: tuple
    out_shape: tuple
    params: int

    def row(self) -> dict:
        act = math.prod(self.out_shape) * 4
        return {"name": self.name, "type": self.type, "output_shape": ["B", *self.out_shape], "params": self.params,
                "bytes": self.params * 4, "activation_bytes": act,
                "args": {k: v for k, v in self.kwargs.items() if k != "batch_first"}}


def shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _check_params(i: int, spec: object) -> tuple[str, dict]:
    """The layer's type and its parameters with defaults; ConfigError names architecture.layers[i]."""
    fld = f"architecture.layers[{i}]"
    if not isinstance(spec, dict):
        raise ConfigError(fld, f"must be a mapping with a 'type', got {type(spec).__name__}")
    kind = spec.get("type")
    if kind not in LAYER_PARAMS:
        raise ConfigError(fld, f"unknown layer type {kind!r}; one of {', '.join(LAYER_TYPES)}")
    known = LAYER_PARAMS[kind]
    unknown = sorted(set(spec) - set(known) - {"type"})
    if unknown:
        raise ConfigError(fld, f"{kind} has no parameter {unknown[0]!r}; it takes {', '.join(known) or 'none'}")
    out = {}
    for p, (default, rule) in known.items():
        v = spec.get(p, default)
        if v is None and rule == "int?":
            out[p] = None
            continue
        if v is None:
            raise ConfigError(fld, f"{kind} needs {p}")
        if rule in ("int", "int?", "int0"):
            low = 0 if rule == "int0" else 1
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= MAX_SIZE:
                size = "zero-sized: " if v == 0 and low == 1 else ""
                raise ConfigError(fld, f"{size}{kind} {p} must be a whole number from {low} to {MAX_SIZE:,}, got {v!r}")
        elif rule == "prob":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ConfigError(fld, f"{kind} {p} must be a probability in [0, 1), got {v!r}")
        elif rule == "bool":
            if not isinstance(v, bool):
                raise ConfigError(fld, f"{kind} {p} must be true or false, got {v!r}")
        elif v not in rule:
            raise ConfigError(fld, f"{kind} {p} must be one of {', '.join(rule)}, got {v!r}")
        out[p] = v
    return kind, out


def _kwargs(kind: str, p: dict, shape: tuple, fld: str) -> tuple[dict, dict]:
    """Constructor arguments from the user's parameters and the incoming shape (batch excluded)."""
    last = shape[-1] if shape else 1
    if kind == "Linear":
        return {"in_features": last, "out_features": p["out_features"], "bias": p["bias"]}, {}
    if kind == "Conv2d":
        return {"in_channels": shape[0], **p}, {}
    if kind == "MaxPool2d":
        return {"kernel_size": p["kernel_size"], "stride": p["stride"] or p["kernel_size"]}, {}
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return {"num_features": shape[0]}, {}
    if kind == "LayerNorm":
        return {"normalized_shape": last}, {}
    if kind in RECURRENT:
        return {"input_size": last, "hidden_size": p["hidden_size"], "num_layers": p["num_layers"],
                "bidirectional": p["bidirectional"], "batch_first": True}, {"output": p["output"]}
    if kind == "TransformerEncoderLayer":
        if last % p["nhead"]:
            raise ConfigError(fld, f"TransformerEncoderLayer gets width {last} from the layer before, which "
                              f"{p['nhead']} heads do not divide: pick nhead dividing {last}")
        return {"d_model": last, "nhead": p["nhead"], "dim_feedforward": p["dim_feedforward"] or 4 * last,
                "dropout": p["dropout"], "batch_first": True}, {}
    if kind == "PositionalEncoding":
        return {"d_model": last, "max_len": shape[0], "dropout": p["dropout"]}, {}
    return dict(p), {}


def resolve(layers: object, input_shape: tuple, num_classes: int | None = None, dtype: str = "float"
            ) -> list[Resolved]:
    """Fill every layer's sizes and propagate shapes through the stack on `meta`; ConfigError names the layer
    whose input does not fit. `num_classes` appends the classification head (a Linear to the classes)."""
    import torch

    from core.scratch.modules import make_module, run_layer

    if not isinstance(layers, list) or not layers:
        raise ConfigError("architecture.layers", "must be a non-empty list of layers")
    if len(layers) > 200:
        raise ConfigError("architecture.layers", f"at most 200 layers, got {len(layers)}")
    shape = tuple(input_shape)
    out: list[Resolved] = []
    with torch.device("meta"):
        x = torch.empty(2, *shape, dtype=torch.long if dtype == "long" else torch.float32)
        specs = list(enumerate(layers))
        if num_classes is not None:
            specs.append(("head", {"type": "Linear", "out_features": num_classes}))
        for i, spec in specs:
            fld = "architecture.layers" if i == "head" else f"architecture.layers[{i}]"
            kind, p = _check_params(0 if i == "head" else i, spec)
            name = "head" if i == "head" else f"layers[{i}]"
            ranks = NEEDS_RANK.get(kind)
            if i == "head" and x.dim() != 2:
                raise ConfigError(fld, f"the classification head (Linear to {num_classes} classes) needs "
                                  f"(B, features) but the last layer gives (B, {', '.join(map(str, shape))}): "
                                  "end with Flatten, MeanPool or an RNN with output 'last'")
            if ranks and x.dim() not in ranks:
                want = {2: "(B, F)", 3: "(B, T, E)", 4: "(B, C, H, W)"}[ranks[0]]
                raise ConfigError(fld, f"{name} ({kind}) needs input {want} but gets (B, {', '.join(map(str, shape))})")
            if kind == "Embedding" and x.dtype != torch.long:
                raise ConfigError(fld, f"{name} (Embedding) needs token ids, but gets real numbers "
                                  f"(B, {', '.join(map(str, shape))}): put it first in a text model")
            if kind != "Embedding" and x.dtype == torch.long:
                raise ConfigError(fld, f"{name} ({kind}) gets token ids: start a text model with an Embedding")
            kwargs, extra = _kwargs(kind, p, shape, fld)
            module = make_module(kind, kwargs)
            try:
                y = run_layer(module, x, None, extra)
            except (RuntimeError, ValueError, IndexError) as e:
                raise ConfigError(fld, f"{name} ({kind} {_brief(kwargs)}) does not fit its input "
                                  f"(B, {', '.join(map(str, shape))}): {str(e).splitlines()[0]}") from None
            new = tuple(y.shape[1:])
            if any(s < 1 for s in new):
                raise ConfigError(fld, f"{name} ({kind} {_brief(kwargs)}) turns (B, {', '.join(map(str, shape))}) "
                                  f"into an empty shape (B, {', '.join(map(str, new))})")
            params = sum(t.numel() for t in module.parameters())
            out.append(Resolved(name, kind, kwargs, extra, shape, new, params))
            x, shape = y, new
    return out


def _brief(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "batch_first")


def param_bytes(resolved: list[Resolved]) -> int:
    """Training memory for the parameters: weights, gradients and two Adam moments, fp32 (16 bytes each)."""
    return sum(r.params for r in resolved) * 16
