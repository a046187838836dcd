"""A safe expression language for user formulas: parsed with `ast`, run by a small interpreter.

Nothing a user types reaches `eval`/`exec`. The interpreter walks a validated syntax tree and
allows only whitelisted node types, bound names, whitelisted `torch` functions and tensor / str
methods. Tensor operations are first run on the `meta` device (shapes only, no data) so size caps
are checked before anything is allocated.

    >>> evaluate("x.view(-1).shape", {"x": __import__("torch").zeros(2, 3)})
    torch.Size([6])
    >>> run("y = 2 * 3\\nz = y + 1")["z"]
    7

Parts: `rules` (whitelists), `errors`, `checker` (static check), `values` (runtime helpers), `budget`
(one deadline and memory ledger, shareable across calls), `costs` (estimates before an op runs), `reprs`
(bounded text of values), `safe_builtins`, `guard` (checked ops), `interpreter`, `program` (this API).
"""
from core.expr.budget import Budget
from core.expr.errors import ExpressionError, cap_message
from core.expr.program import Compiled, Step, compile_expression, evaluate, run, trace
from core.expr.reprs import short_repr
from core.expr.rules import (
    BUILTINS,
    CREATION_FUNCTIONS,
    LINALG_FUNCTIONS,
    NN_FUNCTIONS,
    STR_METHODS,
    TENSOR_ATTRIBUTES,
    TENSOR_METHODS,
    TORCH_ATTRIBUTES,
    TORCH_FUNCTIONS,
)

__all__ = [
    "BUILTINS", "Budget", "CREATION_FUNCTIONS", "LINALG_FUNCTIONS", "NN_FUNCTIONS", "STR_METHODS",
    "TENSOR_ATTRIBUTES", "TENSOR_METHODS", "TORCH_ATTRIBUTES", "TORCH_FUNCTIONS", "Compiled", "ExpressionError", "Step",
    "cap_message", "compile_expression", "evaluate", "run", "short_repr", "trace",
]
