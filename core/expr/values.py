"""Runtime helpers the interpreter stands on: lazy torch, the attributes each object exposes, meta-device conversion."""
from __future__ import annotations

import sys
from typing import Any

from core.expr.reprs import short_repr
from core.expr.rules import (
    _DTYPE_ATTRIBUTES,
    _INFO_ATTRIBUTES,
    _RESULT_ATTRIBUTES,
    LINALG_FUNCTIONS,
    NN_FUNCTIONS,
    STR_METHODS,
    TENSOR_ATTRIBUTES,
    TENSOR_METHODS,
    TORCH_ATTRIBUTES,
    TORCH_FUNCTIONS,
)


def _torch():
    import torch  # lazily: `import core.expr` stays cheap for the dataset browser

    return torch


def _is_tensor(value: Any) -> bool:
    # no tensor can exist before torch is imported, so plain-value filters never import it
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _allowed(obj: Any, callee: bool) -> frozenset[str]:
    """Which attribute names this runtime object exposes (methods if `callee`, else values)."""
    if isinstance(obj, str):
        return STR_METHODS if callee else frozenset()
    torch = sys.modules.get("torch")
    if torch is None:
        return frozenset()
    if isinstance(obj, torch.Tensor):
        return TENSOR_METHODS if callee else TENSOR_ATTRIBUTES
    if obj is torch:
        return TORCH_FUNCTIONS if callee else TORCH_ATTRIBUTES
    if obj is torch.nn:
        return frozenset() if callee else frozenset({"functional"})
    if obj is torch.nn.functional:
        return NN_FUNCTIONS if callee else frozenset()
    if obj is torch.linalg:
        return LINALG_FUNCTIONS if callee else frozenset()
    if callee:
        return frozenset({"numel"}) if isinstance(obj, torch.Size) else frozenset()
    if isinstance(obj, torch.dtype):
        return _DTYPE_ATTRIBUTES
    if isinstance(obj, torch.device):
        return frozenset({"type", "index"})
    if isinstance(obj, (torch.finfo, torch.iinfo)):
        return _INFO_ATTRIBUTES
    if type(obj).__module__ == "torch.return_types":
        return _RESULT_ATTRIBUTES
    return frozenset()


CONCRETE = "concrete"  # a memo holding this key turns small integer tensors into their values


def _to_meta(value: Any, memo: dict[Any, Any] | None = None) -> Any:
    """Same shape, strides and storage size on the data-less meta device (so view rules still apply).

    `memo` keeps sharing: a list holding one tensor 10**5 times becomes a list holding one meta tensor.
    With `memo[CONCRETE]`, an integer tensor of at most 4096 elements becomes its value (a number or a list),
    as a real call reading it as sizes would see it.
    """
    torch = _torch()
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return value
        if memo.get(CONCRETE) and value.numel() <= 4096 and not (value.is_floating_point() or value.is_complex()):
            memo[id(value)] = value.tolist()
            return memo[id(value)]
        try:
            size = value.untyped_storage().nbytes() // max(value.element_size(), 1)
            base = torch.empty(size, dtype=value.dtype, device="meta")
            out = base.as_strided(value.size(), value.stride(), value.storage_offset())
        except (RuntimeError, NotImplementedError):
            out = value.to("meta")
        out = out.requires_grad_(value.requires_grad) if out.is_floating_point() else out
    elif isinstance(value, (list, tuple)) and not isinstance(value, torch.Size) and _has_tensor(value, memo):
        out = type(value)(_to_meta(v, memo) for v in value)
    else:
        out = value
    memo[id(value)] = out
    return out


def _has_tensor(value: Any, memo: dict[Any, Any]) -> bool:
    key = ("has", id(value))
    if key not in memo:
        memo[key] = any(_is_tensor(v) or isinstance(v, (list, tuple)) and _has_tensor(v, memo) for v in value)
    return memo[key]


def _meta_arg(value: Any, memo: dict[Any, Any] | None = None) -> Any:
    """An argument for the meta dry run: 0-dim tensors become numbers, so `x.repeat(t)` sizes like the real call."""
    if _is_tensor(value) and value.ndim == 0 and value.device.type != "meta" and not value.is_complex():
        return value.item()
    return _to_meta(value, memo)


def _tensors(value: Any) -> list:
    """The tensors in a value or a (nested) list / tuple of values."""
    if "torch" not in sys.modules:
        return []
    if _is_tensor(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _describe(value: Any) -> str:
    torch = _torch()
    if isinstance(value, torch.Tensor):
        dev = "" if value.device.type == "cpu" else f" on {value.device}"
        return f"tensor of shape {tuple(value.shape)} ({str(value.dtype).removeprefix('torch.')}{dev})"
    if type(value) in (list, tuple) and len(value) <= 4 and any(_is_tensor(v) for v in value):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    return f"{type(value).__name__} {short_repr(value)}"
