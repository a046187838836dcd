"""Checked ops: every tensor op is sized on the meta device first, costed, run, then its result is accounted.

`_Guard` is the half of the interpreter that runs operations (the other half, `interpreter.py`, walks the
syntax tree). Order for one op: how many tensors it will return (split / chunk / unbind) -> a dry run on
the meta device (shapes only, no data) -> elements, dimensions, new bytes and floating-point work against
the caps and the time left -> the real op -> its result must hold real data (never meta) and is added to
the budget's ledger, which then must still be under max_total_bytes.
"""
from __future__ import annotations

import ast
import sys
import time
from collections.abc import Callable
from typing import Any

from core.expr.budget import TENSOR_OBJECT_BYTES, Budget, OverBudget
from core.expr.costs import new_bytes, op_flops
from core.expr.errors import ExpressionError, _error, cap_message
from core.expr.rules import CPU_FLOPS_PER_S, GPU_FLOPS_PER_S, MAX_DIMS
from core.expr.values import CONCRETE, _describe, _meta_arg, _tensors, _torch
from core.settings import Settings

# no meta kernel (data-dependent output) or a device move: safe to run unsized, output <= inputs
_UNSIZED_OK = frozenset({"nonzero", "argwhere", "masked_select", "unique", "equal", "allclose", "isclose", "index",
                         "setitem", "where", "item", "tolist", "to", "cuda", "cpu", "one_hot", "median", "call"})
_SECONDS_PER_OUTPUT = 50e-6  # one tensor of a split: dry run, real op and the ledger (20-50 µs measured, 2 cores)
_SMALL_INPUTS = 100_000  # below this many input elements a failed dry run is retried for real (see dry_run)
_PLAIN_TYPES = frozenset({str, int, float, bool, complex, type(None)})
_REAL_DEVICES = frozenset({"cpu", "cuda", "mps"})
_META_READY: list[bool] = []


class _Guard:
    """Runs operations for the interpreter under the caps; needs `source`, `settings` and `budget`."""

    source: str
    settings: Settings
    budget: Budget

    # --- errors
    def fail(self, node: ast.AST, message: str, rule: str) -> ExpressionError:
        return _error(node, self.source, message, rule)

    def cap(self, node: ast.AST, field: str, detail: str) -> ExpressionError:
        return self.fail(node, cap_message(self.settings, field, detail), "cap")

    def runtime_error(self, node: ast.AST, exc: BaseException, operands: tuple = ()) -> ExpressionError:
        """Turn a torch / Python error into plain words with the shapes involved."""
        if isinstance(exc, OverBudget):
            return self.cap(node, exc.field, exc.detail)
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        segment = ast.get_source_segment(self.source, node) or ""
        where = f"`{segment[:60]}` failed" if segment else "this step failed"
        kind = {"ZeroDivisionError": "division by zero", "OverflowError": "number too large",
                "MemoryError": "out of memory"}.get(type(exc).__name__, "")
        message = f"{where}: {kind + ' — ' if kind else ''}{text}"
        shown = [_describe(v) for v in operands if self.budget.holds_tensors(v)][:4]
        if shown:
            message += " (operands: " + "; ".join(shown) + ")"
        return self.fail(node, message, "runtime")

    # --- the checked op
    def guarded(self, node: ast.AST, op: Callable[..., Any], operands: tuple, name: str,
                meta: Callable[[dict], Any] | None = None, strict: bool = False,
                count: int = 0, cost: tuple = ([], {}, False)) -> Any:
        """Run `op(*operands)`; for tensors, first on the meta device to check sizes and cost."""
        if not strict and all(map(_PLAIN_TYPES.__contains__, map(type, operands))):  # per-row filters: no tensors
            try:
                return self.settle(node, op(*operands))
            except ExpressionError:
                raise
            except Exception as e:
                raise self.runtime_error(node, e, operands) from None
        try:
            self.budget.check_time()
            inputs = _distinct(t for v in operands for t in self.budget.tensors_in(v))
        except OverBudget as e:
            raise self.cap(node, e.field, e.detail) from None
        if inputs or strict:
            self.dry_run(node, op, operands, name, inputs, meta, strict, count, cost)
        started = time.perf_counter()
        try:
            out = op(*operands)
        except ExpressionError:
            raise
        except Exception as e:
            raise self.runtime_error(node, e, operands) from None
        finally:
            self.budget.op_s += time.perf_counter() - started
        return self.settle(node, out)

    def dry_run(self, node: ast.AST, op: Callable[..., Any], operands: tuple, name: str, inputs: list,
                meta: Callable[[dict], Any] | None, strict: bool, count: int, cost: tuple) -> None:
        """Size and cost the op on the meta device; refuse before anything is allocated."""
        if count:  # split / chunk / unbind: the dry run itself would make that many (meta) tensors
            if count > self.settings.max_container_items:
                raise self.cap(node, "max_container_items", f"this would return {count:,} tensors")
            if count * _SECONDS_PER_OUTPUT > self.budget.left():
                raise self.cap(node, "expr_timeout_s", f"this would return {count:,} tensors, about "
                                                       f"{count * _SECONDS_PER_OUTPUT:.1f} s to make and count, "
                                                       f"more than the {max(self.budget.left(), 0):.1f} s left")
            self.check_bytes(node, count * TENSOR_OBJECT_BYTES)
        if not _META_READY:
            started = time.perf_counter()
            _warm_meta()
            self.budget.extend(time.perf_counter() - started)  # a one-off library load is not the user's time
        memo: dict[Any, Any] = {}
        try:
            shaped = _meta_call(op, operands, meta, memo)
        except Exception as e:
            try:  # sizes given as small integer tensors (x.tile((t, 2))): again with their values, as the real
                memo = {CONCRETE: True}  # call reads them
                shaped = _meta_call(op, operands, meta, memo)
            except Exception:
                # only ops whose output is bounded by their inputs may run unsized (boolean masks, unique…);
                # any other failure is the user's error (a shape mismatch): reported before anything runs,
                # except that small inputs run for real to get torch's own, familiar message (what made a dry
                # run fail while the real call would succeed, sizes read from tensors, was tried above)
                small = sum(t.numel() for t in inputs) <= _SMALL_INPUTS
                if strict or not (name in _UNSIZED_OK or small):
                    raise self.runtime_error(node, e, operands) from None
                self.check_cost(node, name, inputs, None, *cost)  # unique: no shape, but a cost from its input
                return
        outs = _tensors(shaped if isinstance(shaped, (list, tuple)) else [shaped])
        self.check_shapes(node, outs)
        self.check_bytes(node, new_bytes(outs, list(memo.values())))
        self.check_cost(node, name, inputs, shaped, *cost)

    def check_shapes(self, node: ast.AST, outs: list) -> None:
        for t in outs:
            if t.numel() > self.settings.max_tensor_elements:
                raise self.cap(node, "max_tensor_elements", f"a tensor of shape {tuple(t.shape)} "
                                                            f"has {t.numel():,} elements")
            if t.ndim > MAX_DIMS:
                raise self.fail(node, f"a tensor of {t.ndim:,} dimensions (at most {MAX_DIMS} here)", "cap")

    def check_bytes(self, node: ast.AST, extra: int = 0) -> None:
        try:
            self.budget.check_bytes(extra)
        except OverBudget as e:
            raise self.cap(node, e.field, e.detail) from None

    def check_cost(self, node: ast.AST, name: str, inputs: list, shaped: Any,
                   args: list, kwargs: dict, linalg: bool) -> None:
        """Refuse a matmul-like or linear-algebra op whose estimated time exceeds the time left."""
        flops = op_flops(name, inputs, args, kwargs, shaped, linalg)
        if not flops:
            return
        a = inputs[0]
        rate = GPU_FLOPS_PER_S if a.device.type == "cuda" else CPU_FLOPS_PER_S
        rate /= 2 if a.element_size() >= 8 else 1
        left = max(self.budget.left(), 0.0)
        if flops / rate > left:
            raise self.cap(node, "expr_timeout_s", f"this step needs about {flops:.1e} floating-point operations, "
                                                   f"roughly {flops / rate:.1f} s here, more than the {left:.1f} s left")

    def settle(self, node: ast.AST, value: Any) -> Any:
        """Account a value just made: real data only, containers sized, tensors tracked, bytes checked."""
        kind = type(value)
        if kind in _PLAIN_TYPES:
            if kind is str or kind is int and value.bit_length() > 62:
                self.budget.python_bytes += sys.getsizeof(value)
            return value
        try:
            self.budget.items(value)
            tensors = self.budget.tensors_in(value)
        except OverBudget as e:
            raise self.cap(node, e.field, e.detail) from None
        for t in tensors:
            if t.device.type not in _REAL_DEVICES:
                raise self.fail(node, f"tensors on the {t.device.type!r} device hold no data here: use the CPU "
                                      "(or CUDA)", "runtime")
            if t.numel() > self.settings.max_tensor_elements:  # ops that ran unsized
                raise self.cap(node, "max_tensor_elements", f"a tensor of shape {tuple(t.shape)} "
                                                            f"has {t.numel():,} elements")
        if tensors:
            self.budget.track_tensors(tensors)
        self.check_bytes(node)
        return value


def _meta_call(op: Callable[..., Any], operands: tuple, meta: Callable[[dict], Any] | None, memo: dict) -> Any:
    with _torch().no_grad():
        return meta(memo) if meta is not None else op(*(_meta_arg(v, memo) for v in operands))


def _distinct(tensors: Any) -> list:
    seen: dict[int, Any] = {}
    for t in tensors:
        seen.setdefault(id(t), t)
    return list(seen.values())


def _warm_meta() -> None:
    """The first meta-device op loads torch's meta registrations (seconds); do it once, off the budget."""
    torch = _torch()
    m = torch.empty(2, 2, device="meta")
    _ = (m + 1, m @ m, m.softmax(0))
    g = torch.empty(2, 2, requires_grad=True)  # the first autograd-tracked op imports torch._dynamo
    _ = (g.to("meta") * 2, (g * 2).sum())
    _META_READY.append(True)
