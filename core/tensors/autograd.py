"""The real grad_fn graph of a program as nodes and edges, backward step by step, checked by finite differences.

The engine works on any callable that returns named tensors (`backprop_fn`), so tests and notebooks
can use it directly; `backprop(program, ...)` runs a program of the safe expression language
(`core.expr`) through it. Drawing lives in `components/graph_view.py`.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.tensors.backward_line import OUTPUT_FIELD, assigned_names, split_backward
from core.tensors.gradcheck import FD_MAX_ELEMENTS as FD_MAX_ELEMENTS  # re-exported: the page and tests
from core.tensors.gradcheck import GradCheck, _seeded, gradient_check
from core.tensors.graph import GraphEdge, GraphNode, _build, _clip, recorder


@dataclass(frozen=True)
class Example:
    """A ready-made program for the page."""

    program: str
    output: str
    gradient: str | None = None
    retain: tuple[str, ...] = ()


EXAMPLES: dict[str, Example] = {
    "First lesson: d = a*b + a": Example(
        "a = torch.tensor(2.0, requires_grad=True)\nb = torch.tensor(3.0, requires_grad=True)\n"
        "c = a * b\nd = c + a", "d", retain=("c",)),
    "Vector output with a gradient": Example(
        "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ny = x * x\nz = torch.exp(-y)",
        "z", gradient="torch.tensor([1.0, 0.5, 0.25])"),
    "no_grad and detach cut the graph": Example(
        "a = torch.tensor(2.0, requires_grad=True)\nb = torch.tensor(3.0, requires_grad=True)\n"
        "with torch.no_grad():\n    s = a * b\nc = a.detach() * b\nd = c + s + a", "d"),
    "Tiny neuron: sigmoid(w @ x + b)": Example(
        "w = torch.tensor([[0.5, -1.0, 0.25]], requires_grad=True)\nx = torch.tensor([1.0, 2.0, 3.0])\n"
        "b = torch.tensor([0.1], requires_grad=True)\nz = w @ x + b\np = torch.sigmoid(z)\n"
        "loss = -torch.log(p).sum()", "loss", retain=("z",)),
}
DEFAULT_EXAMPLE = next(iter(EXAMPLES))


@dataclass
class BackwardStep:
    """One grad_fn run by the engine: what gradient arrived and what it sent on."""

    index: int
    node_id: str
    label: str
    grad_outputs: list[Any]  # gradient w.r.t. the node's outputs (arriving)
    grad_inputs: list[Any]  # gradients it passes to its next_functions (leaving)


@dataclass
class AutogradResult:
    """A program's graph with forward values and, after backward, gradients."""

    program: str
    output: str
    grads: dict[str, Any]  # leaf and retained names -> .grad (None where no gradient reached)
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    values: dict[str, Any]  # every tensor the program named
    steps: list[BackwardStep]
    outside: dict[str, str]  # named tensors not in the graph -> why
    saved_bytes: int  # bytes of distinct storages the grad_fns kept alive for backward
    check: GradCheck | None = None
    code: str = ""
    call: str = ""  # the backward call as a tutorial writes it: `d.backward()`, `z.backward(gradient=…)`

    def node(self, node_id: str) -> GraphNode:
        return next(n for n in self.nodes if n.id == node_id)


@dataclass
class AccumulationResult:
    """Two backward() calls on one graph, then zero_grad."""

    after_first: dict[str, Any]
    after_second: dict[str, Any] | None  # None when the second backward failed
    error: str | None  # plain-words reason the second backward failed
    after_zero: dict[str, Any]  # .grad after optimizer.zero_grad()
    code: str


class AutogradError(ValueError):
    """Backward cannot run as asked; the message says why in plain words.

    `field` names the input that caused it ("program", "output", "retain" or "gradient"), so a page can
    show the message beside that widget.
    """

    def __init__(self, message: str, field: str = "program"):
        super().__init__(message)
        self.field = field


# --- plain words for torch's errors ----------------------------------------------------------------

_REASONS = [
    ("does not require grad and does not have a grad_fn",
     "this tensor does not require grad: nothing it was computed from has requires_grad=True "
     "(or it was made under torch.no_grad() / by .detach()), so there is no graph to go back through."),
    ("grad can be implicitly created only for scalar outputs",
     "backward() without a gradient only works on a scalar. Give a gradient of the output's shape "
     "(the vector of the vector-Jacobian product, e.g. torch.ones_like(y)), or reduce it first with .sum()."),
    ("leaf Variable that requires grad is being used in an in-place operation",
     "an in-place operation (add_, mul_, x[i] = …) changed a leaf that requires grad. Autograd cannot "
     "record changes to its own inputs: use the out-of-place form (x = x + 1), or do it under torch.no_grad()."),
    ("Trying to backward through the graph a second time",
     "the first backward() freed the graph's saved tensors to save memory, so a second backward() has "
     "nothing to work with. Pass retain_graph=True to the first call, or run the forward pass again."),
    ("modified by an inplace operation",
     "a tensor that backward needs was changed in place after it was used; its gradient would be wrong, "
     "so torch refuses. Use out-of-place operations on values that feed the graph."),
]


def plain_reason(message: str) -> str | None:
    """torch's error message -> the same reason in plain words, or None when it is not a known one."""
    return next((why for key, why in _REASONS if key in message), None)

# --- backward ---------------------------------------------------------------------------------------

def _prepare(run: Callable[[], dict[str, Any]], output: str, gradient: Any, seed: int) -> tuple:
    """Run the program under the recorder; check the output can be backpropagated from.

    Returns (names, recorder, output tensor, gradient tensor or None, seconds the run took).
    """
    rec = recorder()
    started = time.perf_counter()
    with rec:
        names = _seeded(run, seed)
    run_s = time.perf_counter() - started
    out = _tensor(names, output, "output")
    if not out.requires_grad:
        how = rec.cuts.get(id(out), ("",))[0]
        made = f" (it was made under {how})" if how else ""
        raise AutogradError(f"Cannot call {output}.backward(): `{output}` does not require grad{made}. "
                            + _REASONS[0][1][0].upper() + _REASONS[0][1][1:], "output")
    try:
        grad = gradient(names) if callable(gradient) else gradient
    except ValueError as e:  # ExpressionError from the gradient= field: say which field it came from
        e.field = "gradient"  # type: ignore[attr-defined]
        raise
    if grad is None and out.numel() != 1:
        raise AutogradError(f"`{output}` has shape {tuple(out.shape)}: " + _REASONS[1][1], "gradient")
    return names, rec, out, None if grad is None else _gradient_tensor(grad, out, output), run_s


def _gradient_tensor(value: Any, out: Any, output: str) -> Any:
    """The gradient= value as a tensor matching the output, or an AutogradError that says what is wrong."""
    import torch

    from core.expr import short_repr

    shape = tuple(out.shape)
    want = f"a tensor of shape {shape}, e.g. torch.ones_like({output})"
    if isinstance(value, (bool, int, float)) and not isinstance(value, torch.Tensor):
        try:
            value = torch.tensor(float(value))
        except OverflowError:
            raise AutogradError(f"gradient= is {short_repr(value)}, too large for a float: give {want}.",
                                "gradient") from None
    if not isinstance(value, torch.Tensor):
        kind = type(value).__name__
        raise AutogradError(f"gradient= must be {want}; it is a {kind} ({short_repr(value)}).", "gradient")
    if value.device.type not in ("cpu", "cuda", "mps"):
        raise AutogradError(f"gradient= is on the {value.device.type!r} device, which holds no values: give {want}.",
                            "gradient")
    if value.is_complex() and not out.is_complex():
        raise AutogradError(f"gradient= is complex but `{output}` is real: give {want}.", "gradient")
    if tuple(value.shape) != shape:
        raise AutogradError(f"The gradient has shape {tuple(value.shape)} but `{output}` has shape {shape}: they "
                            "must match (one number per output element).", "gradient")
    return value.detach().to(dtype=out.dtype, device=out.device)


def _tensor(names: dict[str, Any], name: str, role: str) -> Any:
    import torch

    field = "output" if role == "output" else "retain"

    if not name:
        raise AutogradError(f"Name the tensor to call .backward() on in the '{OUTPUT_FIELD}' field, or end the "
                            "program with a line like `loss.backward()`.", field)
    if name not in names:
        known = ", ".join(k for k, v in names.items() if isinstance(v, torch.Tensor)) or "none"
        raise AutogradError(f"The {role} `{name}` is not a variable of the program (tensors: {known}).", field)
    if not isinstance(names[name], torch.Tensor):
        raise AutogradError(f"The {role} `{name}` is a {type(names[name]).__name__}, not a tensor.", field)
    return names[name]


def _named_leaves(names: dict[str, Any]) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    for k, v in names.items():
        if isinstance(v, torch.Tensor) and v.is_leaf and v.requires_grad and not any(v is t for t in out.values()):
            out[k] = v
    return out


def backprop_fn(run: Callable[[], dict[str, Any]], output: str, retain: Sequence[str] = (), gradient: Any = None,
                *, check: bool = True, seed: int = 0, program: str = "", budget: Any = None) -> AutogradResult:
    """Run `run()` (-> named tensors), backpropagate from `output`, return the graph with values and grads.

    `gradient`: None for a scalar output, else a tensor of the output's shape or a callable names -> tensor.
    `budget`: the core.expr.Budget `run` uses; backward must fit in what is left of it, and the gradient
    check gets what remains after that.
    """
    ops_before = budget.op_s if budget is not None else 0.0
    names, rec, out, grad, run_s = _prepare(run, output, gradient, seed)
    _backward_fits(budget, budget.op_s - ops_before if budget is not None else 0.0, rec.leaves)
    for name in retain:
        t = _tensor(names, name, "retained tensor")
        if not t.requires_grad:
            raise AutogradError(f"Cannot retain_grad() on `{name}`: it does not require grad, so no "
                                "gradient will ever reach it.", "retain")
        if t.grad_fn is not None:
            t.retain_grad()
    nodes, edges, saved_bytes, fn_ids, tensor_of = _build(out, names, rec)
    by_id = {n.id: n for n in nodes}
    steps: list[BackwardStep] = []

    def hook_for(nid: str) -> Callable:
        def hook(grad_inputs: tuple, grad_outputs: tuple) -> None:
            steps.append(BackwardStep(len(steps) + 1, nid, by_id[nid].label,
                                      [_clip(g) for g in grad_outputs], [_clip(g) for g in grad_inputs]))
        return hook

    handles = [fn.register_hook(hook_for(nid)) for fn, nid in fn_ids.items()]
    try:
        out.backward(gradient=grad)
    except (RuntimeError, TypeError, NotImplementedError) as e:
        raise AutogradError(plain_reason(str(e)) or str(e)) from None
    finally:
        for h in handles:
            h.remove()
    for s in steps:
        by_id[s.node_id].step, by_id[s.node_id].grad = s.index, s.grad_outputs[0] if s.grad_outputs else None
    for nid, t in tensor_of.items():
        if t.is_leaf or t.retains_grad:
            by_id[nid].grad = _clip(t.grad)
    grads = {k: t.grad for k, t in _named_leaves(names).items()}
    grads.update({k: names[k].grad for k in retain if names[k].retains_grad})
    result = AutogradResult(program, output, grads, nodes, edges,
                            {k: v for k, v in names.items() if _is_tensor(v)}, steps,
                            _outside(names, by_id, rec, output), saved_bytes,
                            code=python_code(program, output, retain, gradient if isinstance(gradient, str) else None))
    if check:
        leaf_names = {id(t): by_id[nid].label for nid, t in tensor_of.items() if t.is_leaf}
        result.check = gradient_check(run, output, rec.leaves, grad, seed,
                                      [leaf_names.get(id(t), f"leaf{i}") for i, t in enumerate(rec.leaves)],
                                      frozen=[t for _, _, t in rec.cuts.values()], budget=budget, run_s=run_s,
                                      reserve_s=run_s)
    return result


def _backward_fits(budget: Any, forward_ops_s: float, leaves: Sequence[Any], passes: int = 1) -> None:
    """Refuse backward() when it would not fit in what is left of the budget: about twice the time the
    forward pass spent in tensor ops, and the leaves' gradients (kept per pass) in the memory cap."""
    if budget is None:
        return
    from core.expr import cap_message
    from core.expr.budget import OverBudget

    need_s, left = 2.0 * forward_ops_s * passes, budget.left()
    if need_s > left:
        raise AutogradError(cap_message(budget.settings, "expr_timeout_s",
                                        f"backward() needs about {need_s:.1f} s (twice the forward pass's tensor "
                                        f"work), more than the {max(left, 0):.1f} s left"))
    try:
        budget.check_bytes(sum(t.numel() * t.element_size() for t in leaves) * (passes + 1))
    except OverBudget as e:
        raise AutogradError(cap_message(budget.settings, e.field, f"backward() would add the leaves' gradients: "
                                                                  f"{e.detail}")) from None


def _is_tensor(v: Any) -> bool:
    import torch

    return isinstance(v, torch.Tensor)


def _outside(names: dict[str, Any], by_id: dict[str, GraphNode], rec: Any, output: str) -> dict[str, str]:
    """Named tensors the graph does not contain, and why."""
    inside = {a for n in by_id.values() if n.kind != "grad_fn" for a in [n.label, *n.aliases]}
    out = {}
    for k, v in names.items():
        if not _is_tensor(v) or k in inside:
            continue
        if id(v) in rec.cuts:
            out[k] = f"made by {rec.cuts[id(v)][0]} from tensors that require grad: no gradient flows back through it"
        elif v.requires_grad:
            out[k] = f"requires grad, but `{output}` does not depend on it (its .grad stays None)"
        else:
            out[k] = "a constant (requires_grad=False): autograd does not track it"
    return out


@functools.cache
def _warm_up_expr() -> None:
    """Run one tiny program so one-time lazy imports are not charged to the user's time budget.

    core.expr dry-runs ops on the meta device; the first such op on a tensor that requires grad imports
    torch._dynamo (about 5 s on a busy 2-core machine), which alone can exceed expr_timeout_s.
    """
    from core import expr

    try:
        expr.run("w = torch.ones(2, requires_grad=True)\ny = (w * w + w).sum()")
    except expr.ExpressionError:
        pass


def backprop(program: str, output: str, retain: Sequence[str] = (), gradient: str | None = None,
             *, check: bool = True, seed: int = 0, budget: Any = None) -> AutogradResult:
    """Run a program of the expression language, backpropagate from `output`; raises ExpressionError / AutogradError.

    A final `X.backward(g)` line of the program (see `split_backward`) decides the output and gradient,
    whatever `output` and `gradient` say. The run, the gradient= field and the finite-difference check share one `budget` (a core.expr.Budget;
    a fresh one with the default caps if not given): the whole action fits in one time and memory budget.
    """
    from core import expr

    line = split_backward(program)
    run, output, gradient = (line.program, line.output, line.gradient) if line else (program, output, gradient)
    budget = _ready_budget(budget)
    grad = (lambda names: expr.evaluate(gradient, names, budget=budget)) if gradient and gradient.strip() else None
    try:
        result = backprop_fn(lambda: expr.run(run, budget=budget), output, retain, grad, check=check,
                             seed=seed, program=program, budget=budget)
    except (RuntimeError, TypeError, NotImplementedError, IndexError) as e:  # never a raw torch error on the page
        raise AutogradError(plain_reason(str(e)) or f"autograd could not run this: {str(e)[:300]}") from None
    result.code = python_code(line.rest if line else program, output, retain, gradient if grad else None,
                              call=line.source if line else None)
    result.call = line.source if line else f"{output}.backward({'gradient=' + gradient if grad else ''})"
    return result


def _ready_budget(budget: Any) -> Any:
    """Warm the language up (one-off imports) without charging the user's budget for it."""
    from core import expr

    started = time.perf_counter()
    _warm_up_expr()
    if budget is None:
        return expr.Budget()
    budget.extend(time.perf_counter() - started)
    return budget


def accumulation(program: str, output: str, gradient: str | None = None, retain_graph: bool = True,
                 seed: int = 0, *, budget: Any = None) -> AccumulationResult:
    """Call backward twice on one graph (gradients add up), then zero_grad; a failing second call is explained.

    Raises ExpressionError (the program or gradient=) or AutogradError (backward cannot run at all).
    """
    import torch

    from core import expr

    line = split_backward(program)
    if line:
        program, output, gradient = line.program, line.output, line.gradient
    budget = _ready_budget(budget)
    grad_of = (lambda names: expr.evaluate(gradient, names, budget=budget)) if gradient and gradient.strip() else None
    ops_before = budget.op_s
    names, rec, out, grad, _ = _prepare(lambda: expr.run(program, budget=budget), output, grad_of, seed)
    _backward_fits(budget, budget.op_s - ops_before, rec.leaves, passes=2)
    leaves = _named_leaves(names)
    try:
        out.backward(gradient=grad, retain_graph=retain_graph)
    except (RuntimeError, TypeError, NotImplementedError) as e:  # e.g. a value backward needs was changed in place
        raise AutogradError(plain_reason(str(e)) or str(e)) from None
    first = {k: None if t.grad is None else t.grad.clone() for k, t in leaves.items()}
    second, error = None, None
    try:
        out.backward(gradient=grad)
        second = {k: None if t.grad is None else t.grad.clone() for k, t in leaves.items()}
    except (RuntimeError, TypeError, NotImplementedError) as e:
        error = plain_reason(str(e)) or str(e)
    if leaves:
        torch.optim.SGD(list(leaves.values()), lr=0.0).zero_grad()  # the real call, default set_to_none=True
    after_zero = {k: t.grad for k, t in leaves.items()}
    g = f"gradient={gradient}, " if grad is not None else ""
    code = (f"import torch\n\n{program}\n\n{output}.backward({g}retain_graph={retain_graph})\n"
            f"print({', '.join(f'{k}.grad' for k in leaves)})\n{output}.backward({g.rstrip(', ')})"
            f"  # gradients add up\nprint({', '.join(f'{k}.grad' for k in leaves)})\n"
            f"optimizer = torch.optim.SGD([{', '.join(leaves)}], lr=0.1)\noptimizer.zero_grad()  # .grad -> None\n")
    return AccumulationResult(first, second, error, after_zero, code)


def python_code(program: str, output: str, retain: Sequence[str] = (), gradient: str | None = None,
                call: str | None = None) -> str:
    """The plain PyTorch script that does what the page does; `call`: the program's own backward line."""
    lines = ["import torch", "", program.rstrip(), ""]
    lines += [f"{r}.retain_grad()  # keep the gradient of a non-leaf tensor" for r in retain]
    lines.append(call or f"{output}.backward({'gradient=' + gradient if gradient else ''})")
    lines.append("")
    return "\n".join(lines)


@dataclass
class Fields:
    """The output / retain_grad / gradient= fields, fitted to a program; `notes` say what was changed and why."""

    output: str
    retain: list[str]
    gradient: str
    notes: list[str]


def fit_fields(program: str, output: str | None, retain: Sequence[str], gradient: str = "", *,
               budget: Any = None) -> Fields:
    """Fields that name variables the program does not assign are reset to valid defaults.

    A stale retain_grad name is dropped. A stale (or empty) output becomes the last assigned tensor that
    requires grad (running the program once to know), with gradient= cleared for a scalar and kept or set to
    `torch.ones_like(...)` for a tensor. `output=None`: the program's own backward line decides it, leave it.
    A program that does not parse or run is left to backprop to report.
    """
    from core import expr

    names_in = assigned_names(program)
    fields = Fields(output or "", list(retain), gradient or "", [])
    if names_in is None:
        return fields
    dropped = [r for r in retain if r not in names_in]
    if dropped:
        fields.retain = [r for r in retain if r in names_in]
        fields.notes.append(f"retain_grad: dropped {', '.join(f'`{r}`' for r in dropped)} (not in this program).")
    if output is None or output in names_in:
        return fields
    budget = _ready_budget(budget)
    try:
        names, steps = expr.trace(program, budget=budget)
    except (ValueError, RuntimeError, TypeError, NotImplementedError, IndexError):
        return fields
    picked = next((s.target for s in reversed(steps) if s.target and _is_tensor(names.get(s.target))
                   and names[s.target].requires_grad), None)
    why = f"`{output}` is not in this program" if output else "no output was named"
    if picked is None:
        fields.output = ""
        fields.notes.append(f"Backward has nothing to run on ({why}, and no tensor of it requires grad): give a "
                            "leaf `requires_grad=True`.")
        return fields
    fields.output, out = picked, names[picked]
    text = f"Backward now runs on `{picked}`, the last tensor assigned that requires grad ({why})."
    if out.numel() == 1:
        fields.gradient = ""
    elif not _gradient_fits(fields.gradient, names, out, budget):
        fields.gradient = f"torch.ones_like({picked})"
        text += f" `{picked}` has shape {tuple(out.shape)}, so gradient= is `torch.ones_like({picked})`."
    fields.notes.insert(0, text)
    return fields


def _gradient_fits(gradient: str, names: dict[str, Any], out: Any, budget: Any) -> bool:
    from core import expr

    if not gradient.strip():
        return False
    try:
        g = expr.evaluate(gradient, names, budget=budget)
    except (ValueError, RuntimeError, TypeError, NotImplementedError, IndexError):
        return False
    return _is_tensor(g) and tuple(g.shape) == tuple(out.shape)
