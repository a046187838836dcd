"""The interpreter: evaluates checked nodes with size caps before allocation and one shared Budget.

Walking the syntax tree lives here; running each operation under the caps lives in `guard.py`. Every
value a node makes goes through `settle` (containers sized, tensors tracked, bytes checked), so the
ledger sees temporaries as well as names.
"""
from __future__ import annotations

import ast
import math
import time
from collections.abc import Mapping
from typing import Any

from core.expr.budget import Budget, OverBudget
from core.expr.costs import output_count
from core.expr.errors import ExpressionError, _norm
from core.expr.guard import _Guard
from core.expr.reprs import short_repr
from core.expr.rules import (
    _BINOPS,
    _COMPARE,
    _UNARY,
    CREATION_FUNCTIONS,
    MAX_DIMS,
    MAX_INT_BITS,
    MAX_OP_TENSORS,
    ZERO_FILLED,
)
from core.expr.safe_builtins import _BUILTIN_TABLE, _Builtin
from core.expr.values import CONCRETE, _allowed, _is_tensor, _meta_arg, _to_meta, _torch
from core.settings import Settings

_SEQUENCES = (str, list, tuple)
_PLAIN = frozenset({str, int, float, bool, complex, type(None)})


class _Interpreter(_Guard):
    """Evaluates checked nodes against `env`, with size caps before allocation and the budget's deadline."""

    def __init__(self, source: str, settings: Settings, env: dict[str, Any], callables: set[str],
                 budget: Budget | None = None):
        self.source, self.settings, self.env, self.callables = source, settings, env, callables
        self.budget = budget or Budget(settings)
        try:  # the caller's values count too: their tensors are held while the program runs
            for v in env.values():
                if type(v) not in _PLAIN and not _is_module(v):
                    self.budget.items(v)
                    self.budget.track(v)
        except OverBudget as e:
            raise self.cap(ast.Module(body=[], type_ignores=[]), e.field, e.detail) from None

    # --- evaluation
    def eval(self, node: ast.AST) -> Any:
        if time.perf_counter() > self.budget.deadline:
            raise self.cap(node, "expr_timeout_s", "the formula ran past its wall-clock budget")
        try:
            return _DISPATCH[type(node)](self, node)
        except OverBudget as e:
            raise self.cap(node, e.field, e.detail) from None

    def e_constant(self, node: ast.Constant) -> Any:
        return node.value

    def e_name(self, node: ast.Name) -> Any:
        ident = node.id  # the parser has NFKC-normalised it already
        if ident in self.env:
            return self.env[ident]
        if ident in _BUILTIN_TABLE:
            return _BUILTIN_TABLE[ident]
        raise self.fail(node, f"name {ident!r} is not defined", "names")

    def e_list(self, node: ast.List) -> list:
        return self.container(node, [self.eval(e) for e in node.elts])

    def e_tuple(self, node: ast.Tuple) -> tuple:
        return self.container(node, tuple(self.eval(e) for e in node.elts))

    def container(self, node: ast.AST, value: list | tuple) -> Any:
        """A list / tuple display: its size is its slots plus what its parts hold (known already)."""
        b = self.budget
        b.note(value, len(value) + sum(b.weight(v) for v in value), any(b.holds_tensors(v) for v in value))
        return value

    def e_slice(self, node: ast.Slice) -> slice:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if p is None else self.eval(p) for p in parts))

    def e_ifexp(self, node: ast.IfExp) -> Any:
        return self.eval(node.body) if self.truth(node.test, self.eval(node.test)) else self.eval(node.orelse)

    def truth(self, node: ast.AST, value: Any) -> bool:
        try:
            return bool(value)
        except Exception as e:
            raise self.runtime_error(node, e, (value,)) from None

    def e_boolop(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        value = None
        for operand in node.values:
            value = self.eval(operand)
            if self.truth(operand, value) != is_and:
                return value
        return value

    def e_unaryop(self, node: ast.UnaryOp) -> Any:
        value = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            return not self.truth(node.operand, value)
        return self.guarded(node, _UNARY[type(node.op)], (value,), "unary")

    def e_binop(self, node: ast.BinOp) -> Any:
        a, b = self.eval(node.left), self.eval(node.right)
        op = type(node.op)
        if op is ast.Mod and isinstance(a, str):
            raise self.fail(node, "printf-style % formatting of strings is not allowed", "syntax")
        items = self.python_binop_caps(node, op, a, b)
        if items is None:
            return self.guarded(node, _BINOPS[op], (a, b), "matmul" if op is ast.MatMult else "binop")
        try:  # list / tuple repetition or concatenation: sized already, recorded without a walk
            out = _BINOPS[op](a, b)
        except Exception as e:
            raise self.runtime_error(node, e, (a, b)) from None
        self.budget.note(out, items, self.budget.holds_tensors(a) or self.budget.holds_tensors(b))
        return out

    def python_binop_caps(self, node: ast.AST, op: type, a: Any, b: Any) -> int | None:
        """Refuse Python arithmetic whose result would be huge, before computing it.

        Returns the item count of a list / tuple result (None for anything else)."""
        if _is_tensor(a) and a.ndim == 0 and isinstance(b, _SEQUENCES):
            a = a.item()  # `[0] * torch.tensor(10**9)` repeats the list via __index__: size it like an int
        if _is_tensor(b) and b.ndim == 0 and isinstance(a, _SEQUENCES):
            b = b.item()
        ints = isinstance(a, int) and isinstance(b, int)
        if op is ast.Pow and ints and b > 0 and abs(a) > 1 and b * math.log2(abs(a)) > MAX_INT_BITS:
            raise self.fail(node, f"this power ({short_repr(a, 20)} ** {short_repr(b, 20)}) would have about "
                                  f"{b * math.log2(abs(a)):,.0f} bits; integers are capped at {MAX_INT_BITS:,} "
                                  "bits (use floats)", "cap")
        if op is ast.Mult and ints and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise self.fail(node, f"integer product over {MAX_INT_BITS:,} bits", "cap")
        seq, n = (a, b) if isinstance(a, _SEQUENCES) else (b, a)
        if op not in (ast.Mult, ast.Add) or not isinstance(seq, _SEQUENCES):
            return None
        if isinstance(seq, str):
            size = len(seq) * n if op is ast.Mult and isinstance(n, int) else \
                len(seq) + len(n) if isinstance(n, str) else 0
            if size > max(self.settings.max_text_chars, len(seq)):
                raise self.cap(node, "max_text_chars", f"result would hold {size:,} characters")
            return None
        if op is ast.Mult and type(n) is int and type(seq) in (list, tuple):
            return self.sized(node, self.budget.items(seq) * max(n, 0))
        if op is ast.Add and type(a) is type(b) and type(a) in (list, tuple):
            return self.sized(node, self.budget.items(a) + self.budget.items(b))
        return None

    def sized(self, node: ast.AST, items: int) -> int:
        if items > self.settings.max_container_items:
            raise self.cap(node, "max_container_items", f"result would hold {items:,} items "
                                                        "(a shared sublist counts each time it appears)")
        return items

    def e_compare(self, node: ast.Compare) -> Any:
        left = self.eval(node.left)
        result: Any = True
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.eval(right_node)
            kind = type(op)
            if (left is None or right is None) and kind in (ast.Lt, ast.LtE, ast.Gt, ast.GtE):
                # a missing value fails an ordering test instead of raising, as in SQL filters
                return False
            if kind not in (ast.Is, ast.IsNot) and (type(left) not in _PLAIN or type(right) not in _PLAIN):
                self.container_compare(node, left, right)
            if kind in (ast.In, ast.NotIn) and _is_tensor(right):  # Tensor.__contains__: (right == left).any()
                equal = self.guarded(node, lambda a, b: b == a, (left, right), "compare")  # sized: it broadcasts
                hit = self.truth(node, self.guarded(node, lambda e: e.any(), (equal,), "any"))
                result = hit if kind is ast.In else not hit
            else:
                result = self.guarded(node, _COMPARE[kind], (left, right), "compare")
            if len(node.ops) > 1 and not self.truth(node, result):
                return result
            left = right
        return result

    def container_compare(self, node: ast.AST, left: Any, right: Any) -> None:
        """Python compares lists item by item in C: with tensors inside that is unchecked tensor work."""
        for v in (left, right):
            if isinstance(v, (list, tuple, dict)) and self.budget.holds_tensors(v):
                raise self.fail(node, "comparing lists or tuples that hold tensors is not supported here: compare "
                                      "the tensors themselves (e.g. torch.equal(a, b))", "runtime")

    def e_subscript(self, node: ast.Subscript) -> Any:
        value, index = self.eval(node.value), self.eval(node.slice)
        if not (_is_tensor(value) or isinstance(value, (str, list, tuple, range, Mapping))):
            raise self.fail(node, f"cannot index a {type(value).__name__}", "indexing")
        return self.guarded(node, lambda v, i: v[i], (value, index), "index")

    def e_attribute(self, node: ast.Attribute) -> Any:
        obj = self.eval(node.value)
        if node.attr not in _allowed(obj, callee=False):
            raise self.fail(node, f"attribute .{node.attr} is not available on {type(obj).__name__}", "attributes")
        try:
            value = getattr(obj, node.attr)
        except Exception as e:
            raise self.runtime_error(node, e, (obj,)) from None
        if callable(value):  # defence in depth: values never carry functions into the program
            raise self.fail(node, f".{node.attr} is a method here: call it", "attributes")
        return self.settle(node, value)

    def e_call(self, node: ast.Call) -> Any:
        func = node.func
        args = [self.eval(a) for a in node.args]
        kwargs = {kw.arg: self.eval(kw.value) for kw in node.keywords}
        if isinstance(func, ast.Name):
            target = self.e_name(func)
            if isinstance(target, _Builtin):
                try:
                    return self.settle(node, target.fn(self, node, *args, **kwargs))
                except ExpressionError:
                    raise
                except Exception as e:
                    raise self.runtime_error(node, e, tuple(args)) from None
            if _norm(func.id) not in self.callables:
                raise self.fail(func, f"{func.id!r} is not a function", "calls")
            # a caller's own function never gets a meta dry run: it may have effects
            return self.guarded(node, lambda *a: target(*a, **kwargs), tuple(args), "call",
                                meta=lambda memo: None)
        obj = self.eval(func.value)
        name = func.attr
        if name not in _allowed(obj, callee=True):
            raise self.fail(func, f"{type(obj).__name__} has no allowed method .{name}()", "attributes")
        if isinstance(obj, str):
            return self.str_call(node, obj, name, args, kwargs)
        return self.torch_call(node, obj, name, args, kwargs)

    def str_call(self, node: ast.Call, text: str, name: str, args: list, kwargs: dict) -> Any:
        if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
            hits = len(text) + 1 if not args[0] else text.count(args[0])
            size = len(text) + hits * (len(args[1]) - len(args[0]))
            if size > max(self.settings.max_text_chars, len(text)):
                raise self.cap(node, "max_text_chars", f"replace() would give {size:,} characters")
        try:
            out = getattr(text, name)(*args, **kwargs)
        except Exception as e:
            raise self.runtime_error(node, e) from None
        return self.settle(node, out)

    def torch_call(self, node: ast.Call, obj: Any, name: str, args: list, kwargs: dict) -> Any:
        is_tensor = _is_tensor(obj)
        if name in ZERO_FILLED:  # never hand out uninitialised memory (another user's values)
            name = ZERO_FILLED[name]
            kwargs = {k: v for k, v in kwargs.items() if k != "pin_memory"}
        fn = getattr(obj, name)
        self.torch_call_caps(node, obj, name, args, kwargs)
        creation = not is_tensor and name in CREATION_FUNCTIONS | {"zeros", "zeros_like"} or \
            is_tensor and name.startswith("new_")

        def meta(memo: dict) -> Any:
            meta_kwargs = {k: _meta_arg(v, memo) for k, v in kwargs.items() if k not in {"pin_memory", "device"}}
            if creation:
                meta_kwargs["device"] = "meta"
            target = getattr(_to_meta(obj, _plain_memo(memo)), name) if is_tensor else fn
            return target(*(_meta_arg(a, memo) for a in args), **meta_kwargs)

        if name == "tolist" and is_tensor:  # its size is known from the shape: recorded without a walk
            def listed() -> Any:
                out = obj.tolist()
                if isinstance(out, list):
                    items = _nested_items(obj.shape)
                    self.budget.note(out, items, False, 32 * obj.numel() + 8 * items + 56 * (items - obj.numel() + 1))
                return out

            return self.guarded(node, lambda *_: listed(), (obj,), name, meta=lambda memo: None)
        operands = (obj, *args, *kwargs.values()) if is_tensor else (*args, *kwargs.values())
        tensor, rest = (obj, list(args)) if is_tensor else (args[0] if args else None, list(args[1:]))
        cost = (rest, kwargs, not is_tensor and obj is _torch().linalg)
        return self.guarded(node, lambda *_: fn(*args, **kwargs), operands, name, meta=meta, strict=creation,
                            count=output_count(name, tensor, rest, kwargs), cost=cost)

    def torch_call_caps(self, node: ast.Call, obj: Any, name: str, args: list, kwargs: dict) -> None:
        """Caps that need the arguments' values, checked before the dry run."""
        if name == "one_hot":
            classes = args[1] if len(args) > 1 else kwargs.get("num_classes", -1)
            if not isinstance(classes, int) or classes <= 0:
                raise self.fail(node, "F.one_hot needs num_classes=N here (else the size depends on the data)", "cap")
            if args and _is_tensor(args[0]) and args[0].numel() * classes > self.settings.max_tensor_elements:
                raise self.cap(node, "max_tensor_elements", f"one_hot result of {args[0].numel() * classes:,} elements")
        if name == "meshgrid" and args and isinstance(args[0], (list, tuple)) and len(args[0]) > MAX_DIMS:
            raise self.fail(node, f"meshgrid of {len(args[0]):,} tensors would make tensors of as many dimensions "
                                  f"(at most {MAX_DIMS} here)", "cap")
        if name == "tolist" and _is_tensor(obj):
            self.sized(node, _nested_items(obj.shape))
        for v in [*args, *kwargs.values()]:  # a list becomes (at least) one element per item: size it first
            if not isinstance(v, (list, tuple, range)):
                continue
            if self.budget.items(v) > self.settings.max_tensor_elements:
                raise self.cap(node, "max_tensor_elements", f"a list of {self.budget.items(v):,} items")
            if len(v) > MAX_OP_TENSORS and self.budget.holds_tensors(v):
                raise self.fail(node, f"a list of {len(v):,} tensors: one call takes at most {MAX_OP_TENSORS:,} "
                                      "here", "cap")

    # --- statements
    def assign(self, stmt: ast.Assign) -> Any:
        target = stmt.targets[0]
        value = self.eval(stmt.value)
        if isinstance(target, ast.Name):
            if callable(value) or isinstance(value, (type(math), _Builtin)):
                raise self.fail(stmt.value, "only values can be assigned, not functions or modules", "statements")
            self.env[_norm(target.id)] = value
            return value
        base = self.e_name(target.value)
        if not _is_tensor(base):
            raise self.fail(target, "only tensor elements can be assigned (`x[0] = 1`)", "statements")
        index = self.eval(target.slice)

        def write(b: Any, i: Any, v: Any) -> Any:
            b[i] = v
            return b

        # sized like reading base[index]: broadcast index tensors can address far more elements than base holds
        return self.guarded(stmt, write, (base, index, value), "setitem",
                            meta=lambda memo: _to_meta(base, _plain_memo(memo))[_meta_arg(index, memo)])


def _nested_items(shape: Any) -> int:
    """Slots of the nested lists x.tolist() makes for this shape (every level's lists, and the numbers)."""
    items, run = 0, 1
    for n in shape:
        run *= n
        items += run
    return items


def _plain_memo(memo: dict) -> dict:
    """The tensor an op is called on stays a tensor even when its arguments are read as values."""
    return {} if memo.get(CONCRETE) else memo


def _is_module(value: Any) -> bool:
    return isinstance(value, type(math))


_DISPATCH: dict[type, Any] = {
    ast.Constant: _Interpreter.e_constant, ast.Name: _Interpreter.e_name, ast.List: _Interpreter.e_list,
    ast.Tuple: _Interpreter.e_tuple, ast.Slice: _Interpreter.e_slice, ast.IfExp: _Interpreter.e_ifexp,
    ast.BoolOp: _Interpreter.e_boolop, ast.UnaryOp: _Interpreter.e_unaryop, ast.BinOp: _Interpreter.e_binop,
    ast.Compare: _Interpreter.e_compare, ast.Subscript: _Interpreter.e_subscript,
    ast.Attribute: _Interpreter.e_attribute, ast.Call: _Interpreter.e_call,
}
