"""Runtime helpers the interpreter stands on: lazy torch, meta-device conversion, safe builtins."""
from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core.expr.errors import ExpressionError
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
from core.settings import Settings


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


def _to_meta(value: Any) -> Any:
    """Same shape, strides and storage size on the data-less meta device (so view rules still apply)."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return value
        try:
            size = value.untyped_storage().nbytes() // max(value.element_size(), 1)
            base = torch.empty(size, dtype=value.dtype, device="meta")
            out = base.as_strided(value.size(), value.stride(), value.storage_offset())
        except (RuntimeError, NotImplementedError):
            out = value.to("meta")
        return out.requires_grad_(value.requires_grad) if out.is_floating_point() else out
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        return type(value)(_to_meta(v) for v in value)
    return value


def _meta_arg(value: Any) -> Any:
    """An argument for the meta dry run: 0-dim tensors become numbers, so `x.repeat(t)` sizes like the real call."""
    if _is_tensor(value) and value.ndim == 0 and value.device.type != "meta" and not value.is_complex():
        return value.item()
    return _to_meta(value)


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
    if isinstance(value, (list, tuple)) and len(value) <= 4 and _tensors(value):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'…' if len(text) > 40 else ''}"


class _Host(Protocol):
    """What a safe builtin needs from the interpreter running it (kept abstract: no import cycle)."""

    settings: Settings

    def fail(self, node: ast.AST, message: str, rule: str) -> ExpressionError: ...

    def cap(self, node: ast.AST, field: str, detail: str) -> ExpressionError: ...


@dataclass
class _Builtin:
    """A safe stand-in for a Python builtin; `fn(interp, node, *args, **kwargs)`."""

    name: str
    fn: Callable[..., Any]


def _b_range(it: _Host, node: ast.AST, *args: Any) -> range:
    r = range(*args)
    if len(r) > it.settings.max_tensor_elements:
        raise it.cap(node, "max_tensor_elements", f"range of {len(r):,} numbers")
    return r


def _b_reduce(pyfn: Callable[..., Any], method: str) -> Callable[..., Any]:
    def call(it: _Host, node: ast.AST, *args: Any, **kwargs: Any) -> Any:
        if set(kwargs) - {"default", "start"}:
            raise it.fail(node, f"{method}() takes no keyword {sorted(kwargs)[0]!r} here", "calls")
        if len(args) == 1 and _is_tensor(args[0]) and args[0].ndim > 0 and len(args[0]) > 10_000:
            raise it.fail(node, f"{method}() over a {len(args[0]):,}-row tensor is slow: use x.{method}()", "cap")
        return pyfn(*args, **kwargs)

    return call


def _b_str(it: _Host, node: ast.AST, *args: Any) -> str:
    out = str(*args)
    if len(out) > it.settings.max_text_chars:
        raise it.cap(node, "max_text_chars", f"str() of {len(out):,} characters")
    return out


def _b_round(it: _Host, node: ast.AST, x: Any, ndigits: int | None = None) -> Any:
    if ndigits is not None and abs(ndigits) > 400:  # round(10**9, -10**9) would compute 10**(10**9)
        raise it.fail(node, "round() keeps at most 400 digits", "cap")
    if _is_tensor(x):
        return x.round() if ndigits is None else x.round(decimals=ndigits)
    return round(x, ndigits)


_BUILTIN_TABLE = {
    "len": _Builtin("len", lambda it, node, x: len(x)),
    "abs": _Builtin("abs", lambda it, node, x: abs(x)),
    "min": _Builtin("min", _b_reduce(min, "min")),
    "max": _Builtin("max", _b_reduce(max, "max")),
    "sum": _Builtin("sum", _b_reduce(sum, "sum")),
    "round": _Builtin("round", _b_round),
    "int": _Builtin("int", lambda it, node, *a: int(*a)),
    "float": _Builtin("float", lambda it, node, *a: float(*a)),
    "bool": _Builtin("bool", lambda it, node, *a: bool(*a)),
    "str": _Builtin("str", _b_str),
    "range": _Builtin("range", _b_range),
}

