"""ExpressionError and the message helpers every part of the language raises with."""
from __future__ import annotations

import ast
import unicodedata

from core.settings import Settings


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

