"""Estimates made before an op runs: its floating-point work, how many tensors it returns, the bytes it adds.

`OP_COSTS` names every op whose time is far above its output size; `tests/core/expr` checks that every
torch.linalg function on the whitelist has an entry, so a new one cannot slip in unestimated.
"""
from __future__ import annotations

import math
from typing import Any

from core.expr.budget import TENSOR_OBJECT_BYTES

# (kind, factor): "matmul" = factor * out * k; "cubic" = factor * batch * m * n * min(m, n) (measured against
# matmul on a 2-core CPU); "norm" = cubic (an SVD) for a nuclear / spectral matrix norm, else linear;
# "linear" = factor * input elements; "nlogn" = factor * n * log2(n) of the input
OP_COSTS: dict[str, tuple[str, float]] = {
    **{n: ("matmul", 2.0) for n in ("matmul", "mm", "bmm", "mv", "dot", "inner", "linear", "tensordot", "cdist")},
    "det": ("cubic", 3), "inverse": ("cubic", 3), "inv": ("cubic", 3), "solve": ("cubic", 3),
    "cholesky": ("cubic", 2), "qr": ("cubic", 6), "svd": ("cubic", 40), "svdvals": ("cubic", 40),
    "eigh": ("cubic", 40), "eigvalsh": ("cubic", 40), "pinv": ("cubic", 40), "matrix_rank": ("cubic", 40),
    "norm": ("norm", 40), "matrix_norm": ("norm", 40), "vector_norm": ("linear", 2),
    # sorting: factor * n * log2(n) over the input; 10**7 floats sort in 1.5-4 s on the 2-core machine
    "sort": ("nlogn", 40), "argsort": ("nlogn", 40), "unique": ("nlogn", 40), "topk": ("nlogn", 10),
}
_SPECTRAL = ("nuc", 2, -2, 2.0, -2.0)


def _ord(args: list, kwargs: dict, keys: tuple[str, ...]) -> tuple[Any, Any]:
    """(ord / p, dim) of a norm call, positional or keyword; `args` excludes the input tensor."""
    order = next((kwargs[k] for k in keys if k in kwargs), args[0] if args else None)
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    return order, dim


def _matrix_norm_is_spectral(name: str, a: Any, args: list, kwargs: dict, linalg: bool) -> bool:
    if name == "matrix_norm":
        order = kwargs.get("ord", args[0] if args else "fro")
        return order in _SPECTRAL
    order, dim = _ord(args, kwargs, ("ord", "p"))
    if not linalg:  # torch.norm / Tensor.norm: only p='nuc' is a matrix norm needing an SVD
        return order == "nuc"
    matrix = (isinstance(dim, (tuple, list)) and len(dim) == 2) or (dim is None and order is not None and a.ndim == 2)
    return matrix and order in _SPECTRAL


def op_flops(name: str, inputs: list, args: list, kwargs: dict, shaped: Any, linalg: bool = False) -> float:
    """Estimated floating-point operations of one op (0 when its cost is bounded by its output size).

    `inputs`: the tensors involved, the op's input first; `args`: positional arguments after that input.
    """
    if name not in OP_COSTS or not inputs:
        return 0.0
    kind, factor = OP_COSTS[name]
    a = inputs[0]
    if kind == "norm":
        kind = "cubic" if a.ndim >= 2 and _matrix_norm_is_spectral(name, a, args, kwargs, linalg) else "linear"
    if kind == "linear":
        return factor * a.numel()
    if kind == "nlogn":
        return factor * a.numel() * math.log2(max(a.numel(), 2))
    if kind == "cubic":
        if a.ndim < 2:
            return factor * a.numel()
        m, n = a.shape[-2], a.shape[-1]
        batch = a.numel() / max(m * n, 1)
        flops = factor * batch * m * n * min(m, n)
        if name == "solve" and len(inputs) > 1:  # the right-hand sides: 2 n^2 per column
            b = inputs[1]
            flops += 2.0 * n * b.numel()
        return flops
    outs = shaped if isinstance(shaped, (list, tuple)) else [shaped]
    out = next((t for t in outs if hasattr(t, "numel")), None)
    if out is None:
        return 0.0
    k = a.shape[-1] if a.ndim else 1
    if name == "tensordot" and len(inputs) > 1:
        k = math.sqrt(a.numel() * inputs[1].numel() / max(out.numel(), 1))
    return factor * out.numel() * k


def output_count(name: str, tensor: Any, args: list, kwargs: dict) -> int:
    """How many tensors split / chunk / unbind will return (0 when not one of them or not knowable)."""
    if name not in ("split", "chunk", "unbind") or not hasattr(tensor, "shape"):
        return 0
    try:
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0) if name != "unbind" else \
            kwargs.get("dim", args[0] if args else 0)
        size = tensor.shape[int(dim)]
        if name == "unbind":
            return size
        arg = kwargs.get("split_size_or_sections", kwargs.get("chunks", args[0] if args else 1))
        if isinstance(arg, (list, tuple)):
            return len(arg)
        arg = int(arg)
        if name == "chunk":
            return min(arg, max(size, 1))
        return -(-size // arg) if arg > 0 else 0
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0  # a bad argument: the dry run raises torch's own error


def new_bytes(outputs: list, inputs: list) -> int:
    """Bytes an op's (meta) outputs add: storages of non-views that are not an input, once each, plus objects."""
    total, seen = 0, {id(t) for t in inputs}
    for t in outputs:
        total += TENSOR_OBJECT_BYTES
        if id(t) in seen or t._is_view():
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
    return total
