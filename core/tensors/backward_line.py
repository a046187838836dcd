"""A program's own `X.backward(...)` line: the way every tutorial picks the output and its gradient.

The expression language does not run `.backward()` (the page runs it itself, hooked step by step), so
`split_backward` takes a final top-level `X.backward(...)` statement off the program: X becomes the output
(an expression such as `d.sum()` is bound to a name first) and the argument the gradient. `.backward`
anywhere else is refused with a message that says where it belongs. Nothing here runs the program.
"""
from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass

from core.expr import ExpressionError

OUTPUT_FIELD = "Call .backward() on"  # the page's output field, as its messages name it
_KEEP_KWARGS = {"retain_graph"}  # harmless here: the page runs backward once per graph


@dataclass(frozen=True)
class BackwardLine:
    """The final `X.backward(...)` statement of a program, taken off it."""

    program: str  # what runs in the language: the program without the line (+ `name = X` when X is an expression)
    output: str  # the name backward runs on, bound by `program`
    target: str  # X as written: `d`, `d.sum()`
    gradient: str | None  # the gradient argument as written, or None
    source: str  # the statement as written, e.g. `d.backward()`
    line: int  # 1-based line of the statement
    rest: str  # the program without the line (what the user wrote before it)


def _parse(program: str) -> ast.Module | None:
    if not isinstance(program, str) or len(program) > 200_000:
        return None
    try:
        return ast.parse(program, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # the language reports it, with a caret
        return None


def _is_backward_call(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Attribute) and stmt.value.func.attr == "backward")


def _refuse(node: ast.AST, program: str, message: str) -> ExpressionError:
    lines = program.splitlines()
    line = getattr(node, "lineno", 1) or 1
    col = (getattr(node, "col_offset", 0) or 0) + 1
    if isinstance(node, ast.Attribute) and node.end_lineno == line and node.end_col_offset:
        col = node.end_col_offset - len(node.attr) + 1
    return ExpressionError(message, line, col, "backward", lines[line - 1] if 0 < line <= len(lines) else "")


def _misplaced(node: ast.Attribute, program: str) -> ExpressionError:
    what = ast.get_source_segment(program, node.value) or "x"
    return _refuse(node, program, f"`.backward()` can only be the program's last line, on its own (like "
                                  f"`{what}.backward()`): it picks the tensor backward runs on. Put it last, or "
                                  f"delete it and type the tensor's name in the '{OUTPUT_FIELD}' field.")


def _fresh_name(target: str, taken: set[str]) -> str:
    """`d.sum()` -> `d_sum`: a readable name for an expression backward runs on, not taken by the program."""
    base = re.sub(r"\W+", "_", target).strip("_")[:24].strip("_").lower() or "out"
    if not base.isidentifier() or keyword.iskeyword(base) or base == "torch" or not base.isascii():
        base = "out"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}{i}", i + 1
    return name


def bound_names(tree: ast.Module) -> list[str]:
    """Names a parsed program assigns, ordered by their last assignment (`with` bodies included)."""
    order: dict[str, int] = {}
    statements = [s for top in tree.body for s in (top.body if isinstance(top, ast.With) else [top])]
    for i, stmt in enumerate(statements):
        if isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                if isinstance(t, ast.Name):
                    order.pop(t.id, None)
                    order[t.id] = i
    return list(order)


def assigned_names(program: str) -> list[str] | None:
    """Names the program assigns, last-assigned last; None when it does not parse."""
    tree = _parse(program)
    return None if tree is None else bound_names(tree)


def split_backward(program: str) -> BackwardLine | None:
    """The program's final top-level `X.backward(...)` taken off it, or None when it has none.

    Raises ExpressionError (with line and column) for `.backward` anywhere else, or arguments the page
    cannot honour. A program that does not parse returns None: the language then reports the syntax error.
    """
    tree = _parse(program)
    if tree is None:
        return None
    last = tree.body[-1] if tree.body and _is_backward_call(tree.body[-1]) else None
    for stmt in tree.body[:-1] if last is not None else tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Attribute) and node.attr == "backward":
                raise _misplaced(node, program)
    if last is None:
        return None
    call = last.value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
    for node in [call.func.value, *call.args, *(k.value for k in call.keywords)]:
        for inner in ast.walk(node):
            if isinstance(inner, ast.Attribute) and inner.attr == "backward":
                raise _misplaced(inner, program)
    gradient_node = _gradient_argument(call, program)
    lines = program.splitlines()
    before = lines[:last.lineno - 1]
    prefix = lines[last.lineno - 1][:last.col_offset].rstrip().rstrip(";").rstrip() if lines else ""
    rest = "\n".join([*before, prefix] if prefix else before)
    target = ast.get_source_segment(program, call.func.value) or ""
    if isinstance(call.func.value, ast.Name):
        output, run = call.func.value.id, rest
    else:  # `d.sum().backward()`: bind the expression to a name on the same line, so errors keep their line
        output = _fresh_name(target, set(bound_names(tree)) | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
        assign = f"{output} = ({target})"
        run = "\n".join([*before, f"{prefix}; {assign}" if prefix else assign])
    gradient = None if gradient_node is None else ast.get_source_segment(program, gradient_node)
    return BackwardLine(run, output, target, gradient, ast.get_source_segment(program, last) or "",
                        last.lineno, rest)


def _gradient_argument(call: ast.Call, program: str) -> ast.expr | None:
    """The gradient passed to backward (first positional or gradient=), refusing what the page cannot do."""
    if len(call.args) > 1 or any(isinstance(a, ast.Starred) for a in call.args):
        raise _refuse(call.args[-1], program, "backward() here takes one positional argument, the gradient (e.g. "
                                     "`y.backward(torch.ones_like(y))`).")
    gradient = call.args[0] if call.args else None
    for k in call.keywords:
        if k.arg == "gradient" and gradient is None:
            gradient = k.value
        elif k.arg not in _KEEP_KWARGS:
            name = "gradient (given twice)" if k.arg == "gradient" else f"{k.arg}=" if k.arg else "**"
            raise _refuse(k.value, program, f"backward() here accepts only a gradient (and retain_graph=); "
                                            f"{name} is not supported on this page.")
    return gradient
