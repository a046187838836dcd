"""A safe expression language for user formulas: parsed with `ast`, run by a small interpreter.

Nothing a user types reaches `eval`/`exec`. The interpreter walks a validated syntax tree and
allows only whitelisted node types, bound names, whitelisted `torch` functions and tensor / str
methods. Tensor operations are first run on the `meta` device (shapes only, no data) so size caps
are checked before anything is allocated.

    >>> evaluate("x.view(-1).shape", {"x": __import__("torch").zeros(2, 3)})
    torch.Size([6])
    >>> run("y = 2 * 3\\nz = y + 1")["z"]
    7
"""
from __future__ import annotations

import ast
import math
import sys
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.settings import Settings, get_settings

# ---------------------------------------------------------------- whitelists (public: pages list them)

CREATION_FUNCTIONS = frozenset({
    "tensor", "as_tensor", "zeros", "ones", "full", "empty", "arange", "linspace", "logspace", "eye",
    "rand", "randn", "randint", "randperm", "zeros_like", "ones_like", "full_like", "empty_like",
    "rand_like", "randn_like", "randint_like",
})
TORCH_FUNCTIONS = CREATION_FUNCTIONS | frozenset({
    # elementwise math
    "abs", "neg", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin", "cos",
    "tan", "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "sigmoid", "relu", "floor", "ceil",
    "round", "trunc", "frac", "sign", "clamp", "clip", "pow", "square", "reciprocal", "add", "sub", "mul",
    "div", "true_divide", "floor_divide", "remainder", "fmod", "maximum", "minimum", "lerp", "erf",
    "logit", "nan_to_num", "where", "isnan", "isinf", "isfinite", "eq", "ne", "lt", "le", "gt", "ge",
    "equal", "allclose", "isclose", "logical_and", "logical_or", "logical_not", "logical_xor",
    # reductions and sorting
    "sum", "mean", "std", "var", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "cumsum",
    "cumprod", "norm", "logsumexp", "median", "all", "any", "count_nonzero", "sort", "argsort", "topk",
    "unique", "softmax", "log_softmax", "dist",
    # linear algebra and joining
    "matmul", "mm", "bmm", "mv", "dot", "inner", "outer", "tensordot", "kron", "cross", "trace", "diag",
    "diagonal", "tril", "triu", "det", "inverse", "cdist", "cat", "concat", "concatenate", "stack",
    "hstack", "vstack", "split", "chunk", "unbind",
    # shape and indexing
    "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute", "t", "flip", "roll", "narrow",
    "select", "index_select", "gather", "masked_select", "nonzero", "argwhere", "broadcast_to",
    "broadcast_tensors", "broadcast_shapes", "movedim", "tile", "meshgrid", "searchsorted", "bucketize",
    "as_strided",
    # introspection and misc
    "numel", "is_tensor", "is_floating_point", "result_type", "promote_types", "can_cast", "finfo",
    "iinfo", "manual_seed",
})
TORCH_ATTRIBUTES = frozenset({
    "float16", "half", "bfloat16", "float32", "float", "float64", "double", "complex64", "cfloat",
    "complex128", "cdouble", "uint8", "int8", "int16", "short", "int32", "int", "int64", "long", "bool",
    "pi", "e", "inf", "nan", "nn", "linalg",
})
NN_FUNCTIONS = frozenset({
    "relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax", "leaky_relu", "elu", "softplus",
    "cross_entropy", "mse_loss", "l1_loss", "nll_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "linear", "normalize", "one_hot", "dropout", "pad",
})
LINALG_FUNCTIONS = frozenset({
    "norm", "vector_norm", "matrix_norm", "det", "inv", "solve", "qr", "svd", "svdvals", "eigh",
    "eigvalsh", "cholesky", "pinv", "matrix_rank",
})
TENSOR_METHODS = frozenset({
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "contiguous", "clone",
    "detach", "to", "cpu", "cuda", "float", "double", "half", "bfloat16", "int", "long", "short", "bool",
    "byte", "type_as", "requires_grad_", "sum", "mean", "std", "var", "prod", "max", "min", "amax", "amin",
    "argmax", "argmin", "cumsum", "cumprod", "norm", "logsumexp", "median", "all", "any", "count_nonzero",
    "softmax", "log_softmax", "abs", "neg", "exp", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "sin",
    "cos", "tan", "tanh", "sigmoid", "relu", "floor", "ceil", "round", "trunc", "sign", "clamp", "clip",
    "pow", "square", "reciprocal", "add", "sub", "mul", "div", "floor_divide", "remainder", "fmod",
    "matmul", "mm", "bmm", "mv", "dot", "outer", "maximum", "minimum", "lerp", "nan_to_num", "eq", "ne",
    "lt", "le", "gt", "ge", "equal", "allclose", "isclose", "isnan", "isinf", "logical_and", "logical_or",
    "logical_not", "where", "masked_fill", "masked_select", "nonzero", "argwhere", "gather",
    "index_select", "flatten", "unflatten", "squeeze", "unsqueeze", "expand", "expand_as", "repeat",
    "tile", "flip", "roll", "narrow", "select", "split", "chunk", "unbind", "movedim", "unfold",
    "as_strided", "diag", "diagonal", "tril", "triu", "trace", "topk", "sort", "argsort", "unique",
    "size", "dim", "numel", "nelement", "element_size", "stride", "storage_offset", "is_contiguous",
    "is_floating_point", "is_complex", "item", "tolist", "new_zeros", "new_ones", "new_full",
    "new_empty", "new_tensor",
})
TENSOR_ATTRIBUTES = frozenset({
    "shape", "dtype", "device", "ndim", "T", "mT", "H", "mH", "requires_grad", "is_leaf", "grad",
    "is_cuda", "real", "imag", "itemsize", "nbytes",
})
STR_METHODS = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "replace", "split", "count",
    "find", "isdigit", "isalpha", "isspace", "title",
})
BUILTINS = frozenset({"len", "abs", "min", "max", "round", "int", "float", "str", "bool", "sum", "range"})
_DTYPE_ATTRIBUTES = frozenset({"is_floating_point", "is_complex", "is_signed", "itemsize"})
_INFO_ATTRIBUTES = frozenset({"eps", "max", "min", "tiny", "bits", "resolution"})
_RESULT_ATTRIBUTES = frozenset({"values", "indices"})
# every method name anywhere, and every non-call attribute anywhere: the static check uses these
_CALLABLE_NAMES = TORCH_FUNCTIONS | NN_FUNCTIONS | LINALG_FUNCTIONS | TENSOR_METHODS | STR_METHODS | {"no_grad"}
_VALUE_NAMES = (TORCH_ATTRIBUTES | TENSOR_ATTRIBUTES | _DTYPE_ATTRIBUTES | _INFO_ATTRIBUTES
                | _RESULT_ATTRIBUTES | {"functional", "type", "index"})
# ops whose cost is far above their output size: estimated before running (flops = 2 * out * k)
_MATMUL_LIKE = frozenset({"matmul", "mm", "bmm", "mv", "dot", "inner", "linear", "tensordot", "cdist"})
# n x n linear algebra: cost ~ factor * n**3, factors measured against matmul on a 2-core CPU
_CUBIC = {"det": 3, "inverse": 3, "inv": 3, "solve": 3, "cholesky": 2, "qr": 6, "matrix_norm": 40, "svd": 40,
          "svdvals": 40, "eigh": 40, "eigvalsh": 40, "pinv": 40, "matrix_rank": 40}
# conservative sustained float32 rates for the time estimate (float64 counts double)
CPU_FLOPS_PER_S = 5e9
GPU_FLOPS_PER_S = 2e12
MAX_INT_BITS = 100_000  # Python ints past this (e.g. 10 ** 10 ** 6) are refused before computing

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b, ast.MatMult: lambda a, b: a @ b, ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b, ast.BitXor: lambda a, b: a ^ b,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: lambda a: -a, ast.UAdd: lambda a: +a, ast.Not: lambda a: not a, ast.Invert: lambda a: ~a,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b, ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}
_EXPR_NODES = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.Attribute,
               ast.Subscript, ast.Slice, ast.Name, ast.Constant, ast.List, ast.Tuple, ast.keyword)
_OPERATOR_NODES = (ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)
_REFUSED = {
    ast.Lambda: "lambda is not allowed", ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed", ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed", ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed", ast.NamedExpr: "the walrus operator := is not allowed",
    ast.Starred: "star-arguments (*x) are not allowed", ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed", ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed", ast.YieldFrom: "yield is not allowed",
    ast.Dict: "dict literals are not allowed", ast.Set: "set literals are not allowed",
    ast.LShift: "bit shifts are not allowed", ast.RShift: "bit shifts are not allowed",
    ast.AugAssign: "augmented assignment (x += 1) is not allowed; write x = x + 1",
}


class ExpressionError(ValueError):
    """A formula was refused or failed; `line`/`col` are 1-based, `rule` names what refused it."""

    def __init__(self, message: str, line: int = 1, col: int = 1, rule: str = "error", source_line: str = ""):
        super().__init__(message)
        self.message, self.line, self.col, self.rule, self.source_line = message, line, col, rule, source_line

    def __str__(self) -> str:
        return f"line {self.line}, col {self.col}: {self.message}"

    def caret(self) -> str:
        """The offending source line with a caret under the column."""
        return f"{self.source_line}\n{' ' * max(self.col - 1, 0)}^" if self.source_line else ""


def _error(node: ast.AST | None, source: str, message: str, rule: str) -> ExpressionError:
    line = getattr(node, "lineno", 1) or 1
    col = (getattr(node, "col_offset", 0) or 0) + 1
    # point at the part that is wrong: the attribute name, the call's name, the operator
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute) and node.end_lineno == line and node.end_col_offset:
        col = node.end_col_offset - len(node.attr) + 1
    elif isinstance(node, (ast.BinOp, ast.Compare)):
        left = node.left
        if left.end_lineno == line and left.end_col_offset is not None:
            text = source.splitlines()[line - 1] if line <= len(source.splitlines()) else ""
            col = left.end_col_offset + 1
            while col <= len(text) and text[col - 1] in " )":
                col += 1
    lines = source.splitlines()
    return ExpressionError(message, line, col, rule, lines[line - 1] if 0 < line <= len(lines) else "")


def cap_message(settings: Settings, field: str, detail: str) -> str:
    """'detail (cap max_x = N; raise it with TORCHLAB_MAX_X)'."""
    return f"{detail} (cap {field} = {getattr(settings, field):,}; raise it with {settings.env_name(field)})"


def _norm(name: str) -> str:
    # Python's parser already NFKC-normalises identifiers; names passed in by callers are not
    return name if name.isascii() else unicodedata.normalize("NFKC", name)


# ---------------------------------------------------------------- static check (nothing runs here)


def _dotted(node: ast.AST) -> list[str] | None:
    """`torch.nn.functional.relu` -> ['torch', 'nn', 'functional', 'relu']; None if not a plain chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def _torch_path_ok(path: list[str]) -> bool:
    tail = path[1:]
    if len(tail) == 1:
        return tail[0] in TORCH_FUNCTIONS | TORCH_ATTRIBUTES
    if tail[:1] == ["nn"]:
        return tail[1:2] == ["functional"] and (len(tail) == 2 or (len(tail) == 3 and tail[2] in NN_FUNCTIONS))
    if tail[:1] == ["linalg"]:
        return len(tail) == 2 and tail[1] in LINALG_FUNCTIONS
    return False


def _is_no_grad(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and not node.args and not node.keywords
            and _dotted(node.func) == ["torch", "no_grad"])


class _Checker:
    """Walks a parsed program and refuses anything outside the language, before anything runs."""

    def __init__(self, source: str, settings: Settings):
        self.source, self.settings = source, settings
        self.loads: list[ast.Name] = []

    def fail(self, node: ast.AST, message: str, rule: str) -> ExpressionError:
        return _error(node, self.source, message, rule)

    def statement(self, node: ast.stmt, nested: bool = False) -> None:
        if isinstance(node, ast.Expr):
            self.expr(node.value, 1)
        elif isinstance(node, ast.Assign):
            if len(node.targets) != 1:
                raise self.fail(node, "one target per assignment: write `a = value` on its own line", "statements")
            target = node.targets[0]
            if isinstance(target, ast.Name):
                self.name(target, store=True)
            elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                self.expr(target.value, 1)
                self.expr(target.slice, 2)
            else:
                raise self.fail(target, "only `name = value` or `name[index] = value` can be assigned", "statements")
            self.expr(node.value, 1)
        elif isinstance(node, ast.With) and not nested:
            if len(node.items) != 1 or node.items[0].optional_vars or not _is_no_grad(node.items[0].context_expr):
                raise self.fail(node, "the only `with` allowed is `with torch.no_grad():`", "statements")
            for inner in node.body:
                self.statement(inner, nested=True)
        else:
            kind = type(node).__name__
            reason = _REFUSED.get(type(node), f"{kind} statements are not allowed; only `name = value` lines")
            raise self.fail(node, reason, "statements")

    def name(self, node: ast.Name, store: bool = False) -> None:
        ident = _norm(node.id)
        if ident.startswith("__"):
            raise self.fail(node, f"dunder names like {ident!r} are not allowed", "dunder")
        if store and ident in BUILTINS | {"torch", "F"}:
            raise self.fail(node, f"{ident!r} is a built-in name and cannot be reassigned", "names")
        if not store:
            self.loads.append(node)

    def expr(self, node: ast.AST, depth: int, callee: bool = False) -> None:
        if depth > self.settings.max_expr_depth:
            raise self.fail(node, cap_message(self.settings, "max_expr_depth", "formula nested too deeply"), "cap")
        kind = type(node)
        if kind in _REFUSED:
            raise self.fail(node, _REFUSED[kind], "syntax")
        if isinstance(node, _OPERATOR_NODES):
            return
        if not isinstance(node, _EXPR_NODES):
            raise self.fail(node, f"{kind.__name__} is not allowed in a formula", "syntax")
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, complex, str, type(None), type(...))):
                raise self.fail(node, f"{type(node.value).__name__} constants are not allowed", "syntax")
            return None
        if isinstance(node, ast.Attribute):
            self.attribute(node, callee)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, (ast.Name, ast.Attribute)):
                raise self.fail(node, "only named functions and methods can be called", "calls")
            for kw in node.keywords:
                if kw.arg is None:
                    raise self.fail(kw.value, "**keyword unpacking is not allowed", "calls")
                if kw.arg.startswith("_") or kw.arg == "out":
                    raise self.fail(kw.value, f"keyword {kw.arg!r} is not allowed", "calls")
            self.expr(node.func, depth + 1, callee=True)
            for child in [*node.args, *(kw.value for kw in node.keywords)]:
                self.expr(child, depth + 1)
            return None
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.LShift, ast.RShift)):
            raise self.fail(node, _REFUSED[type(node.op)], "syntax")
        for child in ast.iter_child_nodes(node):
            self.expr(child, depth + 1)
        return None

    def attribute(self, node: ast.Attribute, callee: bool) -> None:
        attr = node.attr
        if attr.startswith("_"):
            raise self.fail(node, f"dunder and private attributes ({attr!r}) are not allowed", "dunder")
        path = _dotted(node)
        if path and path[0] == "torch":
            if path[1:] == ["no_grad"]:
                raise self.fail(node, "torch.no_grad() is only allowed as `with torch.no_grad():`", "attributes")
            if not _torch_path_ok(path):
                raise self.fail(node, f"{'.'.join(path)} is not on the whitelist of torch functions", "attributes")
        elif callee and attr not in _CALLABLE_NAMES:
            raise self.fail(node, f"method .{attr}() is not on the whitelist", "attributes")
        elif not callee and attr not in _VALUE_NAMES:
            hint = f"; .{attr} is a method: call it, .{attr}()" if attr in _CALLABLE_NAMES else ""
            raise self.fail(node, f"attribute .{attr} is not on the whitelist{hint}", "attributes")


def _parse(source: str, settings: Settings) -> ast.Module:
    """Parse and check a program; every refusal carries line and column."""
    if not isinstance(source, str):
        raise ExpressionError(f"a formula must be text, not {type(source).__name__}", rule="syntax")
    if len(source) > settings.max_expr_chars:
        detail = f"formula is {len(source):,} characters long"
        raise ExpressionError(cap_message(settings, "max_expr_chars", detail), rule="cap")
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError as e:
        line = e.lineno or 1
        lines = source.splitlines()
        text = lines[line - 1] if 0 < line <= len(lines) else (e.text or "").rstrip("\n")
        raise ExpressionError(f"syntax error: {e.msg}", line, e.offset or 1, "syntax", text) from None
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes, absurd nesting
        raise ExpressionError(f"cannot parse this formula: {e}", rule="syntax") from None
    checker = _Checker(source, settings)
    count = 0
    for stmt in tree.body:
        count += 1 + (len(stmt.body) if isinstance(stmt, ast.With) else 0)
        if count > settings.max_statements:
            raise _error(stmt, source, cap_message(settings, "max_statements", "too many statements"), "cap")
        checker.statement(stmt)
    return tree


# ---------------------------------------------------------------- the interpreter


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


@dataclass
class _Builtin:
    """A safe stand-in for a Python builtin; `fn(interp, node, *args, **kwargs)`."""

    name: str
    fn: Callable[..., Any]


def _b_range(it: _Interpreter, node: ast.AST, *args: Any) -> range:
    r = range(*args)
    if len(r) > it.settings.max_tensor_elements:
        raise it.cap(node, "max_tensor_elements", f"range of {len(r):,} numbers")
    return r


def _b_reduce(pyfn: Callable[..., Any], method: str) -> Callable[..., Any]:
    def call(it: _Interpreter, node: ast.AST, *args: Any, **kwargs: Any) -> Any:
        if set(kwargs) - {"default", "start"}:
            raise it.fail(node, f"{method}() takes no keyword {sorted(kwargs)[0]!r} here", "calls")
        if len(args) == 1 and _is_tensor(args[0]) and args[0].ndim > 0 and len(args[0]) > 10_000:
            raise it.fail(node, f"{method}() over a {len(args[0]):,}-row tensor is slow: use x.{method}()", "cap")
        return pyfn(*args, **kwargs)

    return call


def _b_str(it: _Interpreter, node: ast.AST, *args: Any) -> str:
    out = str(*args)
    if len(out) > it.settings.max_text_chars:
        raise it.cap(node, "max_text_chars", f"str() of {len(out):,} characters")
    return out


def _b_round(it: _Interpreter, node: ast.AST, x: Any, ndigits: int | None = None) -> Any:
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


# ---------------------------------------------------------------- public API


@dataclass
class Step:
    """One executed statement of a program: where it is, what it bound, and the value."""

    line: int
    source: str
    target: str | None
    value: Any
    no_grad: bool = False  # ran inside `with torch.no_grad():`


def _uses_torch(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "torch" for n in ast.walk(tree))


def _environment(names: Mapping[str, Any] | None, uses_torch: bool) -> tuple[dict[str, Any], set[str], set[str]]:
    """(env with `torch` bound if used, names of caller-given callables, the caller's own names)."""
    given = {k if k.isascii() else _norm(k): v for k, v in (names or {}).items()}
    given = {k: v for k, v in given.items() if not k.startswith("__")}
    env = {"torch": _torch(), **given} if uses_torch else dict(given)
    callables = {k for k, v in given.items() if callable(v) and not isinstance(v, type(math)) and not _is_tensor(v)}
    return env, callables, set(given)


def _check_names(tree: ast.Module, source: str, known: set[str]) -> None:
    """Every name must be bound before its line runs: refused before anything runs."""
    bound = set(known) | BUILTINS
    statements = [s for top in tree.body for s in (top.body if isinstance(top, ast.With) else [top])]
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and _norm(node.id) not in bound:
                raise _error(node, source, f"name {_norm(node.id)!r} is not defined (define it on an "
                                           "earlier line or as a named tensor)", "names")
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            bound.add(_norm(stmt.targets[0].id))
        elif isinstance(stmt, ast.Expr):
            bound.add("_")


class Compiled:
    """A checked expression: call it with names (many times) without parsing again."""

    def __init__(self, source: str, tree: ast.expr, settings: Settings):
        self.source, self.tree, self.settings = source, tree, settings
        self.uses_torch = _uses_torch(tree)
        self.free_names = sorted({_norm(n.id) for n in ast.walk(tree) if isinstance(n, ast.Name)} - BUILTINS)

    def __call__(self, names: Mapping[str, Any] | None = None) -> Any:
        env, callables, _ = _environment(names, self.uses_torch)
        missing = [n for n in self.free_names if n not in env]
        if missing:
            node = next(n for n in ast.walk(self.tree) if isinstance(n, ast.Name) and _norm(n.id) == missing[0])
            raise _error(node, self.source, f"name {missing[0]!r} is not defined", "names")
        interp = _Interpreter(self.source, self.settings, env, callables)
        try:
            return interp.eval(self.tree)
        except RecursionError:
            raise ExpressionError("formula nested too deeply", rule="cap") from None


def compile_expression(source: str, *, settings: Settings | None = None) -> Compiled:
    """Parse and check one expression once; the result evaluates it for any names."""
    settings = settings or get_settings()
    tree = _parse(source, settings)
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        node = tree.body[1] if len(tree.body) > 1 else (tree.body[0] if tree.body else None)
        if node is None:
            raise ExpressionError("the formula is empty", rule="syntax")
        raise _error(node, source, "expected a single expression here (assignments belong in a program)",
                     "statements")
    return Compiled(source, tree.body[0].value, settings)


def evaluate(source: str, names: Mapping[str, Any] | None = None, *, settings: Settings | None = None) -> Any:
    """Evaluate one expression with the given names bound."""
    return compile_expression(source, settings=settings)(names)


def trace(source: str, names: Mapping[str, Any] | None = None, *,
          settings: Settings | None = None) -> tuple[dict[str, Any], list[Step]]:
    """Run a program of assignments; returns (names bound at the end, one Step per statement)."""
    settings = settings or get_settings()
    tree = _parse(source, settings)
    env, callables, given = _environment(names, _uses_torch(tree))
    _check_names(tree, source, set(env))
    interp = _Interpreter(source, settings, env, callables)
    steps: list[Step] = []

    def execute(stmt: ast.stmt, no_grad: bool = False) -> None:
        segment = ast.get_source_segment(source, stmt) or ""
        if isinstance(stmt, ast.Assign):
            value = interp.assign(stmt)
            target = stmt.targets[0]
            name = _norm(target.id) if isinstance(target, ast.Name) else _norm(target.value.id)
            steps.append(Step(stmt.lineno, segment, name, value, no_grad))
        else:
            value = interp.eval(stmt.value)
            env["_"] = value
            steps.append(Step(stmt.lineno, segment, None, value, no_grad))

    try:
        for stmt in tree.body:
            if isinstance(stmt, ast.With):
                with _torch().no_grad():
                    for inner in stmt.body:
                        execute(inner, no_grad=True)
            else:
                execute(stmt)
    except RecursionError:
        raise ExpressionError("program nested too deeply", rule="cap") from None
    result = {k: v for k, v in env.items() if k != "torch" or "torch" in given}
    return result, steps


def run(source: str, names: Mapping[str, Any] | None = None, *, settings: Settings | None = None) -> dict[str, Any]:
    """Run a program of `name = expression` lines; returns every name bound at the end (inputs included)."""
    return trace(source, names, settings=settings)[0]
