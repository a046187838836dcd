"""The interpreter: evaluates checked nodes with size caps before allocation and a wall-clock deadline."""
from __future__ import annotations

import ast
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from core.expr.errors import ExpressionError, _error, _norm, cap_message
from core.expr.rules import (
    _BINOPS,
    _COMPARE,
    _CUBIC,
    _MATMUL_LIKE,
    _UNARY,
    CPU_FLOPS_PER_S,
    CREATION_FUNCTIONS,
    GPU_FLOPS_PER_S,
    MAX_INT_BITS,
)
from core.expr.values import (
    _BUILTIN_TABLE,
    _allowed,
    _Builtin,
    _describe,
    _is_tensor,
    _meta_arg,
    _tensors,
    _to_meta,
    _torch,
)
from core.settings import Settings


class _Interpreter:
    """Evaluates checked nodes against `env`, with size caps before allocation and a wall-clock deadline."""

    def __init__(self, source: str, settings: Settings, env: dict[str, Any], callables: set[str]):
        self.source, self.settings, self.env, self.callables = source, settings, env, callables
        self.deadline = time.perf_counter() + settings.expr_timeout_s

    # --- errors
    def fail(self, node: ast.AST, message: str, rule: str) -> ExpressionError:
        return _error(node, self.source, message, rule)

    def cap(self, node: ast.AST, field: str, detail: str) -> ExpressionError:
        return self.fail(node, cap_message(self.settings, field, detail), "cap")

    def runtime_error(self, node: ast.AST, exc: BaseException, operands: tuple = ()) -> ExpressionError:
        """Turn a torch / Python error into plain words with the shapes involved."""
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        segment = ast.get_source_segment(self.source, node) or ""
        where = f"`{segment[:60]}` failed" if segment else "this step failed"
        kind = {"ZeroDivisionError": "division by zero", "OverflowError": "number too large"}.get(
            type(exc).__name__, "")
        message = f"{where}: {kind + ' — ' if kind else ''}{text}"
        shown = [_describe(v) for v in operands if _tensors(v)]
        if shown:
            message += " (operands: " + "; ".join(shown) + ")"
        return self.fail(node, message, "runtime")

    # --- evaluation
    def eval(self, node: ast.AST) -> Any:
        if time.perf_counter() > self.deadline:
            raise self.cap(node, "expr_timeout_s", "the formula ran past its wall-clock budget")
        return _DISPATCH[type(node)](self, node)

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
        return [self.eval(e) for e in node.elts]

    def e_tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.eval(e) for e in node.elts)

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
        self.python_binop_caps(node, op, a, b)
        return self.guarded(node, _BINOPS[op], (a, b), "matmul" if op is ast.MatMult else "binop")

    def python_binop_caps(self, node: ast.AST, op: type, a: Any, b: Any) -> None:
        """Refuse Python arithmetic whose result would be huge, before computing it."""
        if _is_tensor(a) and a.ndim == 0 and isinstance(b, (str, list, tuple)):
            a = a.item()  # `[0] * torch.tensor(10**9)` repeats the list via __index__: size it like an int
        if _is_tensor(b) and b.ndim == 0 and isinstance(a, (str, list, tuple)):
            b = b.item()
        ints = isinstance(a, int) and isinstance(b, int)
        if op is ast.Pow and ints and b > 0 and abs(a) > 1 and b * math.log2(abs(a)) > MAX_INT_BITS:
            raise self.fail(node, f"{a} ** {b} would have about {b * math.log2(abs(a)):,.0f} bits; "
                                  f"integers are capped at {MAX_INT_BITS:,} bits (use floats)", "cap")
        if op is ast.Mult and ints and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise self.fail(node, f"integer product over {MAX_INT_BITS:,} bits", "cap")
        if op in (ast.Mult, ast.Add):
            seq, n = (a, b) if isinstance(a, (str, list, tuple)) else (b, a)
            if isinstance(seq, (str, list, tuple)):
                size = 0
                if op is ast.Mult and isinstance(n, int):
                    size = len(seq) * n
                elif op is ast.Add and isinstance(n, (str, list, tuple)):
                    size = len(seq) + len(n)
                field = "max_text_chars" if isinstance(seq, str) else "max_tensor_elements"
                if size > max(getattr(self.settings, field), len(seq)):
                    raise self.cap(node, field, f"result would hold {size:,} items")

    def e_compare(self, node: ast.Compare) -> Any:
        left = self.eval(node.left)
        result: Any = True
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.eval(right_node)
            if (left is None or right is None) and isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                # a missing value fails an ordering test instead of raising, as in SQL filters
                return False
            result = self.guarded(node, _COMPARE[type(op)], (left, right), "compare")
            if len(node.ops) > 1 and not self.truth(node, result):
                return result
            left = right
        return result

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
        return value

    def e_call(self, node: ast.Call) -> Any:
        func = node.func
        args = [self.eval(a) for a in node.args]
        kwargs = {kw.arg: self.eval(kw.value) for kw in node.keywords}
        if isinstance(func, ast.Name):
            target = self.e_name(func)
            if isinstance(target, _Builtin):
                try:
                    return target.fn(self, node, *args, **kwargs)
                except ExpressionError:
                    raise
                except Exception as e:
                    raise self.runtime_error(node, e, tuple(args)) from None
            if _norm(func.id) not in self.callables:
                raise self.fail(func, f"{func.id!r} is not a function", "calls")
            # a caller's own function never gets a meta dry run: it may have effects
            return self.guarded(node, lambda *a: target(*a, **kwargs), tuple(args), "call", meta=lambda: None)
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
            return getattr(text, name)(*args, **kwargs)
        except Exception as e:
            raise self.runtime_error(node, e) from None

    def torch_call(self, node: ast.Call, obj: Any, name: str, args: list, kwargs: dict) -> Any:
        fn = getattr(obj, name)
        is_tensor = _is_tensor(obj)
        if name == "one_hot":
            classes = args[1] if len(args) > 1 else kwargs.get("num_classes", -1)
            if not isinstance(classes, int) or classes <= 0:
                raise self.fail(node, "F.one_hot needs num_classes=N here (else the size depends on the data)", "cap")
            if args and _is_tensor(args[0]) and args[0].numel() * classes > self.settings.max_tensor_elements:
                raise self.cap(node, "max_tensor_elements", f"one_hot result of {args[0].numel() * classes:,} elements")
        if name == "tolist" and is_tensor and obj.numel() > self.settings.max_tensor_elements // 10:
            raise self.cap(node, "max_tensor_elements", f"tolist() of {obj.numel():,} elements (a tenth of the cap)")
        creation = not is_tensor and name in CREATION_FUNCTIONS or is_tensor and name.startswith("new_")

        def meta() -> Any:
            meta_kwargs = {k: _meta_arg(v) for k, v in kwargs.items() if k not in {"pin_memory", "device"}}
            if creation:
                meta_kwargs["device"] = "meta"
            target = getattr(_to_meta(obj), name) if is_tensor else fn
            return target(*(_meta_arg(a) for a in args), **meta_kwargs)

        operands = (obj, *args, *kwargs.values()) if is_tensor else (*args, *kwargs.values())
        return self.guarded(node, lambda *_: fn(*args, **kwargs), operands, name, meta=meta, strict=creation)

    def guarded(self, node: ast.AST, op: Callable[..., Any], operands: tuple, name: str,
                meta: Callable[[], Any] | None = None, strict: bool = False) -> Any:
        """Run `op(*operands)`; for tensors, first on the meta device to check sizes and cost."""
        plain = all(type(v) in _PLAIN_TYPES for v in operands)  # the per-row filter path: skip tensor checks
        inputs = _tensors(list(operands)) if not plain and "torch" in sys.modules else []
        if inputs or strict:
            torch = _torch()
            if not _META_READY:
                started = time.perf_counter()
                _warm_meta()
                self.deadline += time.perf_counter() - started  # a one-off library load is not the user's time
            try:
                with torch.no_grad():
                    shaped = meta() if meta is not None else op(*(_meta_arg(v) for v in operands))
            except Exception as e:
                # only ops whose output is bounded by their inputs may run unsized (boolean masks, unique…);
                # any other meta failure is the user's error (shape mismatch), reported before running
                small = sum(t.numel() for t in inputs) <= _SMALL_INPUTS
                if strict or not (name in _UNSIZED_OK or small):
                    raise self.runtime_error(node, e, operands) from None
                shaped = None  # small inputs: let the real call give torch's own, familiar error
            if shaped is not None:
                self.check_sizes(node, shaped)
                self.check_cost(node, name, inputs, shaped)
        try:
            out = op(*operands)
        except ExpressionError:
            raise
        except Exception as e:
            raise self.runtime_error(node, e, operands) from None
        if inputs or strict:
            self.check_sizes(node, out)
        return out

    def check_sizes(self, node: ast.AST, result: Any) -> None:
        """Elements per tensor and total bytes held, for a real or meta result."""
        outs = _tensors(result if isinstance(result, (list, tuple)) else [result])
        new_bytes = 0
        held = self.held_storages()
        for t in outs:
            if t.numel() > self.settings.max_tensor_elements:
                raise self.cap(node, "max_tensor_elements", f"a tensor of shape {tuple(t.shape)} "
                                                            f"has {t.numel():,} elements")
            if t.device.type == "meta":
                new_bytes += 0 if t._is_view() else t.numel() * t.element_size()
            elif _storage_key(t) not in held:
                new_bytes += t.untyped_storage().nbytes()
        total = sum(held.values()) + new_bytes
        if new_bytes and total > self.settings.max_total_bytes:
            raise self.cap(node, "max_total_bytes", f"the program would hold {total:,} bytes of tensors")

    def held_storages(self) -> dict[tuple, int]:
        out = {}
        for t in _tensors(list(self.env.values())):
            if t.device.type != "meta":
                out[_storage_key(t)] = t.untyped_storage().nbytes()
        return out

    def check_cost(self, node: ast.AST, name: str, inputs: list, shaped: Any) -> None:
        """Refuse a matmul-like or cubic op whose estimated time exceeds the remaining budget."""
        outs = _tensors(shaped if isinstance(shaped, (list, tuple)) else [shaped])
        if not inputs or not outs or (name not in _MATMUL_LIKE and name not in _CUBIC):
            return
        a = inputs[0]
        if name in _CUBIC:
            n = a.shape[-1] if a.ndim else 1
            flops = _CUBIC[name] * (a.numel() / max(n, 1)) * n * n
        else:
            k = a.shape[-1] if a.ndim else 1
            if name == "tensordot" and len(inputs) > 1:
                k = math.sqrt(a.numel() * inputs[1].numel() / max(outs[0].numel(), 1))
            flops = 2.0 * outs[0].numel() * k
        rate = GPU_FLOPS_PER_S if a.device.type == "cuda" else CPU_FLOPS_PER_S
        rate /= 2 if a.element_size() >= 8 else 1
        left = max(self.deadline - time.perf_counter(), 0.0)
        if flops / rate > left:
            raise self.cap(node, "expr_timeout_s", f"this step needs about {flops:.1e} floating-point operations, "
                                                   f"roughly {flops / rate:.1f} s here, more than the {left:.1f} s left")

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
        try:
            base[index] = value
        except Exception as e:
            raise self.runtime_error(stmt, e, (base, value)) from None
        return base


# no meta kernel (data-dependent output) or a device move: safe to run unsized, output <= inputs
_UNSIZED_OK = frozenset({"nonzero", "argwhere", "masked_select", "unique", "equal", "allclose", "isclose", "index",
                         "where", "item", "tolist", "to", "cuda", "cpu", "one_hot", "compare", "median", "call"})
_SMALL_INPUTS = 100_000  # below this many input elements a failed dry run is retried for real
_PLAIN_TYPES = frozenset({str, int, float, bool, complex, type(None)})
_META_READY: list[bool] = []


def _warm_meta() -> None:
    """The first meta-device op loads torch's meta registrations (seconds); do it once, off the budget."""
    torch = _torch()
    m = torch.empty(2, 2, device="meta")
    _ = (m + 1, m @ m, m.softmax(0))
    g = torch.empty(2, 2, requires_grad=True)  # the first autograd-tracked op imports torch._dynamo
    _ = (g.to("meta") * 2, (g * 2).sum())
    _META_READY.append(True)


def _storage_key(t: Any) -> tuple:
    return (t.device.type, t.untyped_storage().data_ptr())


_DISPATCH: dict[type, Callable[[_Interpreter, Any], Any]] = {
    ast.Constant: _Interpreter.e_constant, ast.Name: _Interpreter.e_name, ast.List: _Interpreter.e_list,
    ast.Tuple: _Interpreter.e_tuple, ast.Slice: _Interpreter.e_slice, ast.IfExp: _Interpreter.e_ifexp,
    ast.BoolOp: _Interpreter.e_boolop, ast.UnaryOp: _Interpreter.e_unaryop, ast.BinOp: _Interpreter.e_binop,
    ast.Compare: _Interpreter.e_compare, ast.Subscript: _Interpreter.e_subscript,
    ast.Attribute: _Interpreter.e_attribute, ast.Call: _Interpreter.e_call,
}


