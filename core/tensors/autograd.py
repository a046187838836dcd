"""The real grad_fn graph of a program as nodes and edges, backward step by step, checked by finite differences.

The engine works on any callable that returns named tensors (`backprop_fn`), so tests and notebooks
can use it directly; `backprop(program, ...)` runs a program of the safe expression language
(`core.expr`) through it. Drawing lives in `components/graph_view.py`.
"""
from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.tensors.graph import GraphEdge, GraphNode, _build, _clip, _cut_reason, _tensors, recorder

FD_MAX_ELEMENTS = 48  # leaf elements checked by finite differences (two program runs each)


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
class GradCheck:
    """Analytic gradients of the leaves against central finite differences in float64."""

    max_rel_error: float
    per_leaf: dict[str, float]
    checked: int  # elements compared
    total: int  # elements of all leaves
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_rel_error <= self.tolerance


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
    """Backward cannot run as asked; the message says why in plain words."""


# --- recording a program while it runs -----------------------------------------------------------


def _seeded(runner: Callable[[], dict[str, Any]], seed: int) -> dict[str, Any]:
    """Run with a fixed seed so re-runs (finite differences) see the same random tensors."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return runner()


# --- the graph as data ----------------------------------------------------------------------------


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
    """Run the program under the recorder; check the output can be backpropagated from."""
    import torch

    rec = recorder()
    with rec:
        names = _seeded(run, seed)
    out = _tensor(names, output, "output")
    if not out.requires_grad:
        how = rec.cuts.get(id(out), ("",))[0]
        made = f" (it was made under {how})" if how else ""
        raise AutogradError(f"Cannot call {output}.backward(): `{output}` does not require grad{made}. "
                            + _REASONS[0][1][0].upper() + _REASONS[0][1][1:])
    grad = gradient(names) if callable(gradient) else gradient
    if grad is None and out.numel() != 1:
        raise AutogradError(f"`{output}` has shape {tuple(out.shape)}: " + _REASONS[1][1])
    if grad is not None:
        grad = torch.as_tensor(grad)
        if grad.shape != out.shape:
            raise AutogradError(f"The gradient has shape {tuple(grad.shape)} but `{output}` has shape "
                                f"{tuple(out.shape)}: they must match (one number per output element).")
        grad = grad.to(dtype=out.dtype, device=out.device)
    return names, rec, out, grad


def _tensor(names: dict[str, Any], name: str, role: str) -> Any:
    import torch

    if name not in names:
        known = ", ".join(k for k, v in names.items() if isinstance(v, torch.Tensor)) or "none"
        raise AutogradError(f"The {role} `{name}` is not a variable of the program (tensors: {known}).")
    if not isinstance(names[name], torch.Tensor):
        raise AutogradError(f"The {role} `{name}` is a {type(names[name]).__name__}, not a tensor.")
    return names[name]


def _named_leaves(names: dict[str, Any]) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {}
    for k, v in names.items():
        if isinstance(v, torch.Tensor) and v.is_leaf and v.requires_grad and not any(v is t for t in out.values()):
            out[k] = v
    return out


def backprop_fn(run: Callable[[], dict[str, Any]], output: str, retain: Sequence[str] = (), gradient: Any = None,
                *, check: bool = True, seed: int = 0, program: str = "") -> AutogradResult:
    """Run `run()` (-> named tensors), backpropagate from `output`, return the graph with values and grads.

    `gradient`: None for a scalar output, else a tensor of the output's shape or a callable names -> tensor.
    """
    names, rec, out, grad = _prepare(run, output, gradient, seed)
    for name in retain:
        t = _tensor(names, name, "retained tensor")
        if not t.requires_grad:
            raise AutogradError(f"Cannot retain_grad() on `{name}`: it does not require grad, so no "
                                "gradient will ever reach it.")
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
    except RuntimeError as e:
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
                                      frozen=[t for _, _, t in rec.cuts.values()])
    return result


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
             *, check: bool = True, seed: int = 0) -> AutogradResult:
    """Run a program of the expression language, backpropagate from `output`; raises ExpressionError / AutogradError."""
    from core import expr

    _warm_up_expr()

    grad = (lambda names: expr.evaluate(gradient, names)) if gradient and gradient.strip() else None
    result = backprop_fn(lambda: expr.run(program), output, retain, grad, check=check, seed=seed, program=program)
    result.code = python_code(program, output, retain, gradient if grad else None)
    return result


def accumulation(program: str, output: str, gradient: str | None = None, retain_graph: bool = True,
                 seed: int = 0) -> AccumulationResult:
    """Call backward twice on one graph (gradients add up), then zero_grad; a failing second call is explained."""
    import torch

    from core import expr

    _warm_up_expr()
    grad_of = (lambda names: expr.evaluate(gradient, names)) if gradient and gradient.strip() else None
    names, _, out, grad = _prepare(lambda: expr.run(program), output, grad_of, seed)
    leaves = _named_leaves(names)
    out.backward(gradient=grad, retain_graph=retain_graph)
    first = {k: None if t.grad is None else t.grad.clone() for k, t in leaves.items()}
    second, error = None, None
    try:
        out.backward(gradient=grad)
        second = {k: None if t.grad is None else t.grad.clone() for k, t in leaves.items()}
    except RuntimeError as e:
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


def python_code(program: str, output: str, retain: Sequence[str] = (), gradient: str | None = None) -> str:
    """The plain PyTorch script that does what the page does."""
    lines = ["import torch", "", program.rstrip(), ""]
    lines += [f"{r}.retain_grad()  # keep the gradient of a non-leaf tensor" for r in retain]
    lines.append(f"{output}.backward({'gradient=' + gradient if gradient else ''})")
    lines.append("")
    return "\n".join(lines)


# --- checking gradients ----------------------------------------------------------------------------

def _float64_swap(values: list, frozen: list):
    """A TorchFunctionMode that computes in float64, replaces the k-th leaf by values[k] and the k-th
    cut (detach / no_grad result) by its value from the original run, so finite differences see the
    same function autograd differentiates."""
    import torch
    from torch.overrides import TorchFunctionMode

    class Swap(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.mine: list = []
            self.cuts = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if not isinstance(out, torch.Tensor) or out.is_meta:
                return out
            if out.grad_fn is None and out.requires_grad and not any(out is m for m in self.mine):
                k = len(self.mine)
                new = values[k].to(out.device).clone().requires_grad_(True) if k < len(values) else out.double()
                self.mine.append(new)
                return new
            if out.grad_fn is None and _cut_reason(getattr(func, "__name__", ""),
                                                   _tensors(args) + _tensors(kwargs or {})):
                self.cuts += 1
                if self.cuts <= len(frozen):
                    return frozen[self.cuts - 1].detach().to(out.device, torch.float64)
            if out.is_floating_point() and out.dtype != torch.float64:
                return out.double()
            return out

    return Swap()


def gradient_check(run: Callable[[], dict[str, Any]], output: str, leaves: Sequence[Any], gradient: Any = None,
                   seed: int = 0, labels: Sequence[str] | None = None, frozen: Sequence[Any] = (),
                   max_elements: int = FD_MAX_ELEMENTS) -> GradCheck:
    """Compare each leaf's .grad with central finite differences of the program re-run in float64.

    `frozen`: the values of the program's detach / no_grad results, held constant as autograd does.
    """
    import torch

    base = [t.detach().to(torch.float64) for t in leaves]
    analytic = [t.grad for t in leaves]
    weight = None if gradient is None else gradient.detach().to(torch.float64)
    sizes = [b.numel() for b in base]
    total = sum(sizes)
    picks = range(total) if total <= max_elements else sorted(random.Random(seed).sample(range(total), max_elements))

    def f(values: list) -> float:
        with _float64_swap(values, list(frozen)):
            y = _seeded(run, seed)[output].to(torch.float64)
        y = y.detach()
        return float((y * weight.to(y.device)).sum() if weight is not None else y.sum())

    labels = list(labels or [f"leaf{i}" for i in range(len(base))])
    per_leaf = dict.fromkeys(labels, 0.0)
    for flat in picks:
        k = next(i for i in range(len(sizes)) if flat < sum(sizes[: i + 1]))
        i = flat - sum(sizes[:k])
        x = float(base[k].flatten()[i])
        h = 1e-6 * max(1.0, abs(x))
        plus, minus = base[k].clone(), base[k].clone()
        plus.view(-1)[i] += h
        minus.view(-1)[i] -= h
        fd = (f(base[:k] + [plus] + base[k + 1:]) - f(base[:k] + [minus] + base[k + 1:])) / (2 * h)
        ad = 0.0 if analytic[k] is None else float(analytic[k].flatten()[i])
        rel = abs(ad - fd) / max(abs(ad), abs(fd), 1e-6)
        per_leaf[labels[k]] = max(per_leaf[labels[k]], rel)
    dtypes = {t.dtype for t in leaves}
    tol = 1e-5 if dtypes <= {torch.float64} else 1e-3 if dtypes <= {torch.float64, torch.float32} else 5e-2
    return GradCheck(max(per_leaf.values(), default=0.0), per_leaf, len(picks), total, tol)
