"""The public API: compile_expression, evaluate, trace, run."""
from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.expr.budget import Budget
from core.expr.checker import _parse
from core.expr.errors import ExpressionError, _error, _norm
from core.expr.interpreter import _Interpreter
from core.expr.rules import BUILTINS
from core.expr.values import _is_tensor, _torch
from core.settings import Settings, get_settings

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

    def __call__(self, names: Mapping[str, Any] | None = None, *, budget: Budget | None = None) -> Any:
        env, callables, _ = _environment(names, self.uses_torch)
        missing = [n for n in self.free_names if n not in env]
        if missing:
            node = next(n for n in ast.walk(self.tree) if isinstance(n, ast.Name) and _norm(n.id) == missing[0])
            raise _error(node, self.source, f"name {missing[0]!r} is not defined", "names")
        interp = _Interpreter(self.source, self.settings, env, callables, budget)
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


def evaluate(source: str, names: Mapping[str, Any] | None = None, *, settings: Settings | None = None,
             budget: Budget | None = None) -> Any:
    """Evaluate one expression with the given names bound; `budget` shares one deadline and memory ledger."""
    return compile_expression(source, settings=settings)(names, budget=budget)


def trace(source: str, names: Mapping[str, Any] | None = None, *, settings: Settings | None = None,
          budget: Budget | None = None) -> tuple[dict[str, Any], list[Step]]:
    """Run a program of assignments; returns (names bound at the end, one Step per statement).

    The step history keeps every statement's value: the budget's ledger counts it (a rebinding does not
    free the old value while the history holds it).
    """
    settings = settings or get_settings()
    tree = _parse(source, settings)
    env, callables, given = _environment(names, _uses_torch(tree))
    _check_names(tree, source, set(env))
    interp = _Interpreter(source, settings, env, callables, budget)
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


def run(source: str, names: Mapping[str, Any] | None = None, *, settings: Settings | None = None,
        budget: Budget | None = None) -> dict[str, Any]:
    """Run a program of `name = expression` lines; returns every name bound at the end (inputs included)."""
    return trace(source, names, settings=settings, budget=budget)[0]
