"""Finite-difference check of autograd's gradients: the program re-run in float64, two runs per element.

Each element checked costs two more runs of the program, so the check shares the Budget of the run it
checks: it measures one run, checks as many elements as the time left allows (keeping `reserve_s` for
whatever the page does next) and says how many it skipped, or that it skipped the check entirely.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.tensors.graph import _cut_reason, _tensors

FD_MAX_ELEMENTS = 48  # leaf elements checked by finite differences (two program runs each)


@dataclass
class GradCheck:
    """Analytic gradients of the leaves against central finite differences in float64."""

    max_rel_error: float
    per_leaf: dict[str, float]
    checked: int  # elements compared
    total: int  # elements of all leaves
    tolerance: float
    note: str = ""  # why fewer elements than planned were checked (the time or memory budget), if so

    @property
    def ok(self) -> bool:
        return self.max_rel_error <= self.tolerance

    @property
    def skipped(self) -> bool:
        """Nothing was compared although there were leaf elements: no verdict."""
        return self.checked == 0 and self.total > 0


def _seeded(runner: Callable[[], dict[str, Any]], seed: int) -> dict[str, Any]:
    """Run with a fixed seed so re-runs (finite differences) see the same random tensors."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return runner()


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
                   max_elements: int = FD_MAX_ELEMENTS, budget: Any = None, run_s: float = 0.0,
                   reserve_s: float = 0.0) -> GradCheck:
    """Compare each leaf's .grad with central finite differences of the program re-run in float64.

    `frozen`: the values of the program's detach / no_grad results, held constant as autograd does.
    `budget` (a core.expr.Budget, shared with `run`): stop before a pair of runs would pass its deadline,
    estimating a run from `run_s` (the forward run's seconds) and then from the pairs measured.
    """
    import torch

    from core.expr import ExpressionError

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
    pair_s, checked, note = 2.5 * run_s, 0, ""  # float64 runs under a TorchFunctionMode: slower than float32
    for flat in picks:
        if budget is not None and budget.left() - reserve_s < pair_s:
            note = _why(checked, len(picks), pair_s, "the time budget")
            break
        k = next(i for i in range(len(sizes)) if flat < sum(sizes[: i + 1]))
        i = flat - sum(sizes[:k])
        x = float(base[k].flatten()[i])
        h = 1e-6 * max(1.0, abs(x))
        plus, minus = base[k].clone(), base[k].clone()
        plus.view(-1)[i] += h
        minus.view(-1)[i] -= h
        started = time.perf_counter()
        try:
            fd = (f(base[:k] + [plus] + base[k + 1:]) - f(base[:k] + [minus] + base[k + 1:])) / (2 * h)
        except ExpressionError as e:  # a re-run hit the shared budget (time, or memory: float64 doubles it)
            note = _why(checked, len(picks), pair_s, "the budget", e.message)
            break
        pair_s = max(pair_s, time.perf_counter() - started)
        checked += 1
        ad = 0.0 if analytic[k] is None else float(analytic[k].flatten()[i])
        rel = abs(ad - fd) / max(abs(ad), abs(fd), 1e-6)
        per_leaf[labels[k]] = max(per_leaf[labels[k]], rel)
    dtypes = {t.dtype for t in leaves}
    tol = 1e-5 if dtypes <= {torch.float64} else 1e-3 if dtypes <= {torch.float64, torch.float32} else 5e-2
    return GradCheck(max(per_leaf.values(), default=0.0), per_leaf, checked, total, tol, note)


def _why(checked: int, planned: int, pair_s: float, what: str, detail: str = "") -> str:
    head = "skipped" if not checked else f"stopped after {checked} of {planned} elements"
    reason = detail or f"each element needs two more runs of the program (about {pair_s:.2f} s)"
    return f"Finite-difference check {head}: {what} of this action would be exceeded ({reason})."
