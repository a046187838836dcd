"""Safe stand-ins for the Python builtins the language offers: every walk is sized first and has the deadline.

Python's own `max`, `sum` and `str` run in C with no way to stop them: over `[[0] * 10**7] * 10**7` they
run for hours. Here a container's walk is bounded by the budget's item count (checked when it was made),
`str()` stops at max_text_chars, and loops over tensors go through the interpreter's checked ops.
"""
from __future__ import annotations

import ast
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from core.expr.budget import Budget, OverBudget
from core.expr.errors import ExpressionError
from core.expr.reprs import TooLong, bounded_str
from core.expr.values import _is_tensor
from core.settings import Settings

_NUMBERS = (int, float, bool, complex)
_ROWS = 10_000  # a builtin looping over a tensor's rows: past this, use the tensor method


class _Host(Protocol):
    """What a safe builtin needs from the interpreter running it (kept abstract: no import cycle)."""

    settings: Settings
    budget: Budget

    def fail(self, node: ast.AST, message: str, rule: str) -> ExpressionError: ...

    def cap(self, node: ast.AST, field: str, detail: str) -> ExpressionError: ...

    def guarded(self, node: ast.AST, op: Callable[..., Any], operands: tuple, name: str) -> Any: ...

    def truth(self, node: ast.AST, value: Any) -> bool: ...


@dataclass
class _Builtin:
    """A safe stand-in for a Python builtin; `fn(interp, node, *args, **kwargs)`."""

    name: str
    fn: Callable[..., Any]


def _b_range(it: _Host, node: ast.AST, *args: Any) -> range:
    r = range(*args)
    if len(r) > it.settings.max_container_items:
        raise it.cap(node, "max_container_items", f"range of {len(r):,} numbers")
    return r


def _rows_ok(it: _Host, node: ast.AST, value: Any, method: str) -> None:
    if _is_tensor(value) and value.ndim > 0 and len(value) > _ROWS:
        raise it.fail(node, f"{method}() over a {len(value):,}-row tensor is slow: use x.{method}()", "cap")


def _chunks(it: _Host, iterable: Any) -> Any:
    """The items of `iterable` in slices, checking the deadline between slices."""
    source = iter(iterable)
    while True:
        it.budget.check_time()
        chunk = list(itertools.islice(source, 4096))
        if not chunk:
            return
        yield chunk


def _b_extreme(pyfn: Callable[..., Any], op: type) -> Callable[..., Any]:
    method = pyfn.__name__

    def call(it: _Host, node: ast.AST, *args: Any, **kwargs: Any) -> Any:
        if set(kwargs) - {"default"}:
            raise it.fail(node, f"{method}() takes no keyword {sorted(set(kwargs) - {'default'})[0]!r} here", "calls")
        if len(args) == 1:
            _rows_ok(it, node, args[0], method)
        values = args if len(args) > 1 else args[0] if args else ()
        if _is_tensor(values) or not it.budget.holds_tensors(values):
            it.budget.items(values)  # sized (and refused past the cap) before C walks it
            return pyfn(*args, **kwargs)
        best, empty = None, True  # tensors inside: each comparison is a checked op
        for chunk in _chunks(it, values):
            for v in chunk:
                if empty:
                    best, empty = v, False
                elif it.truth(node, it.guarded(node, _COMPARE[op], (v, best), "compare")):
                    best = v
        if empty:
            if "default" in kwargs:
                return kwargs["default"]
            raise ValueError(f"{method}() arg is an empty sequence")
        return best

    return call


_COMPARE = {ast.Gt: lambda a, b: a > b, ast.Lt: lambda a, b: a < b}


def _b_sum(it: _Host, node: ast.AST, iterable: Any, start: Any = 0) -> Any:
    if isinstance(start, str):
        raise TypeError("sum() can't sum strings [use ''.join(seq) instead]")
    _rows_ok(it, node, iterable, "sum")
    if _is_tensor(iterable):
        return sum(iterable, start)
    if type(start) in (list, tuple):  # concatenation: sized first, then built in one pass (not quadratic)
        parts = list(iterable) if not isinstance(iterable, (list, tuple)) else iterable
        for p in parts:
            if type(p) is not type(start):
                raise TypeError(f'can only concatenate {type(start).__name__} (not "{type(p).__name__}") '
                                f"to {type(start).__name__}")
        items = it.budget.items(start) + sum(it.budget.items(p) for p in parts)
        out = type(start)(itertools.chain(start, *parts))
        it.budget.note(out, items, any(it.budget.holds_tensors(p) for p in (start, *parts)))
        return out
    if isinstance(iterable, (list, tuple, range, dict)):
        it.budget.items(iterable)
    total = start
    for chunk in _chunks(it, iterable):
        if all(type(v) in _NUMBERS for v in chunk) and type(total) in _NUMBERS:
            total = sum(chunk, total)
            continue
        for v in chunk:  # tensors (or anything else): one checked `+` at a time
            total = it.guarded(node, lambda a, b: a + b, (total, v), "binop")
    return total


def _b_str(it: _Host, node: ast.AST, *args: Any) -> str:
    if not args:
        return ""
    try:
        out = bounded_str(args[0], it.settings.max_text_chars, it.budget.check_time)
        it.budget.python_bytes += sys.getsizeof(out)  # the pieces it was joined from, as well as itself
        return out
    except TooLong:
        raise it.cap(node, "max_text_chars", f"str() of more than {it.settings.max_text_chars:,} characters") from None


def _b_round(it: _Host, node: ast.AST, x: Any, ndigits: int | None = None) -> Any:
    if ndigits is not None and abs(ndigits) > 400:  # round(10**9, -10**9) would compute 10**(10**9)
        raise it.fail(node, "round() keeps at most 400 digits", "cap")
    if _is_tensor(x):
        op = (lambda t: t.round()) if ndigits is None else (lambda t: t.round(decimals=ndigits))
        return it.guarded(node, op, (x,), "round")
    return round(x, ndigits)


def _b_abs(it: _Host, node: ast.AST, x: Any) -> Any:
    return it.guarded(node, abs, (x,), "abs") if _is_tensor(x) else abs(x)


_BUILTIN_TABLE = {
    "len": _Builtin("len", lambda it, node, x: len(x)),
    "abs": _Builtin("abs", _b_abs),
    "min": _Builtin("min", _b_extreme(min, ast.Lt)),
    "max": _Builtin("max", _b_extreme(max, ast.Gt)),
    "sum": _Builtin("sum", _b_sum),
    "round": _Builtin("round", _b_round),
    "int": _Builtin("int", lambda it, node, *a: int(*a)),
    "float": _Builtin("float", lambda it, node, *a: float(*a)),
    "bool": _Builtin("bool", lambda it, node, *a: bool(*a)),
    "str": _Builtin("str", _b_str),
    "range": _Builtin("range", _b_range),
}
__all__ = ["OverBudget", "_BUILTIN_TABLE", "_Builtin", "_Host"]
