"""The static check: walks the parsed tree and refuses anything off the whitelists (nothing runs here)."""
from __future__ import annotations

import ast

from core.expr.errors import ExpressionError, _error, _norm, cap_message
from core.expr.rules import (
    _CALLABLE_NAMES,
    _EXPR_NODES,
    _OPERATOR_NODES,
    _REFUSED,
    _VALUE_NAMES,
    BUILTINS,
    LINALG_FUNCTIONS,
    NN_FUNCTIONS,
    TORCH_ATTRIBUTES,
    TORCH_FUNCTIONS,
)
from core.settings import Settings

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
