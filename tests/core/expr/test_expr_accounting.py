"""Property: the language's memory ledger never under-counts what a program really holds.

Random programs (tensors, views, splits, autograd chains, lists, strings) run with a Budget; afterwards
the truth is measured independently of the ledger: every tensor object alive now that was not before
(found by the garbage collector) and every tensor their grad_fns saved, each storage once — and, with
tracemalloc, the peak of Python allocations during the run. The ledger must be at least both.
"""
from __future__ import annotations

import gc
import tracemalloc

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.expr import Budget, ExpressionError, trace
from core.expr.budget import TENSOR_OBJECT_BYTES
from core.settings import Settings

ROOMY = Settings(max_total_bytes=512 * 2**20, max_container_items=2_000_000, max_tensor_elements=10**6,
                 expr_timeout_s=20.0, max_text_chars=10**6)
SLACK = 512 * 1024  # the interpreter's own bookkeeping: syntax tree, steps, the ledger's dictionaries
WARM: list[bool] = []

SIZES = st.sampled_from([1, 7, 1000, 20_000])
MAKE = ["torch.ones({n})", "torch.zeros({n}, requires_grad=True)", "torch.randn({n}, dtype=torch.float64)",
        "torch.arange({n}).float()", "torch.empty({n})"]
FROM_TENSOR = ["{t} * 2", "{t}.exp()", "{t}.clone()", "{t}[::2]", "{t}.view(-1)", "{t}.sigmoid().tanh()",
               "torch.cat([{t}, {t}])", "{t}.detach()", "({t} + 1).sum()", "{t}.exp().exp().exp()",
               "{t} * {t} * {t}", "{t}.float().contiguous()", "{t}[{t}.detach() > 0]", "{t}.sort().values"]
TO_CONTAINER = ["({t}, {t} + 1)", "[{t}] * {k}", "{t}.split({s})", "[{t} * 2, [{t} * 3, {t}]]", "{t}.tolist()",
                "{t}.chunk(3)"]
PLAIN = ["[0] * {m}", "[[0] * {m}] * {k}", "str([1.5] * {m})", "'ab' * {m}", "[{m}, 'x' * {m}]", "2 ** {m}",
         "([0] * {m}) + ([1] * {m})", "sum([[0] * {k}] * {k}, [])", "list_ok", "str(2 ** {m})"]


@st.composite
def programs(draw) -> str:
    lines, tensors = [], []
    for i in range(draw(st.integers(1, 6))):
        n, m, k, s = draw(SIZES), draw(st.sampled_from([1, 50, 3000, 20_000])), draw(st.sampled_from([2, 10, 300])), \
            draw(st.sampled_from([1000, 25_000]))
        kind = draw(st.sampled_from(["make", "tensor", "container", "plain"] if tensors else ["make", "plain"]))
        t = draw(st.sampled_from(tensors)) if tensors else ""
        template = draw(st.sampled_from({"make": MAKE, "tensor": FROM_TENSOR, "container": TO_CONTAINER,
                                         "plain": PLAIN}[kind]))
        if template == "list_ok":
            template = "[1, (2, 3), 'four', None]"
        lines.append(f"v{i} = " + template.format(n=n, m=m, k=k, s=s, t=t))
        if kind in ("make", "tensor") and not template.startswith("({t} + 1).sum"):
            tensors.append(f"v{i}")
    return "\n".join(lines)


def _saved(fn, seen: set, out: list) -> None:
    stack = [fn]
    while stack:
        f = stack.pop()
        if f is None or id(f) in seen:
            continue
        seen.add(id(f))
        for attr in dir(f):
            if attr.startswith("_saved_"):
                try:
                    v = getattr(f, attr)
                except RuntimeError:
                    continue
                out.extend(x for x in (v if isinstance(v, (list, tuple)) else [v]) if isinstance(x, torch.Tensor))
        stack.extend(nxt for nxt, _ in f.next_functions)


def _tensors_alive() -> list:
    return [o for o in gc.get_objects() if issubclass(type(o), torch.Tensor)]  # type(): no deprecated proxies


def _warm_up() -> None:
    """Every template once, unmeasured: first uses load torch's lazy modules (tens of MB of Python)."""
    lines = ["t = torch.ones(8, requires_grad=True)"]
    for template in MAKE + FROM_TENSOR + TO_CONTAINER + PLAIN:
        if template != "list_ok":
            lines.append("w = " + template.format(n=8, m=8, k=2, s=3, t="t"))
    trace("\n".join(lines), settings=ROOMY)


def real_storage_bytes(before: set[int]) -> tuple[int, int]:
    """(bytes of distinct live storages of tensors made since `before`, with what autograd saved; objects)."""
    gc.collect(0)  # tensors die by reference count; a young-generation pass is enough for stray cycles
    live = [o for o in _tensors_alive() if id(o) not in before and not o.is_meta]
    saved: list = []
    seen: set = set()
    for t in live:
        if t.grad_fn is not None:
            _saved(t.grad_fn, seen, saved)
    storages = {}
    for t in live + saved:
        st_ = t.untyped_storage()
        storages[st_._cdata] = st_.nbytes()
    return sum(storages.values()), len(live)


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(programs())
def test_the_ledger_never_under_counts(source):
    if not WARM:
        _warm_up()
        WARM.append(True)
    gc.collect(0)
    before = {id(o) for o in _tensors_alive()}
    budget = Budget(ROOMY)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        try:
            out, steps = trace(source, settings=ROOMY, budget=budget)
        except ExpressionError as e:  # refused (e.g. a shape that does not work): nothing to compare
            assert e.rule in ("runtime", "cap"), e
            return
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    storage, objects = real_storage_bytes(before)
    held = budget.held_bytes()
    assert held >= storage, f"ledger {held:,} < live storages {storage:,} for\n{source}"
    python = held - storage  # what the ledger holds beyond storages: tensor objects and Python values
    assert python + SLACK >= peak, f"ledger {python:,} + slack < traced Python peak {peak:,} for\n{source}"
    assert objects * TENSOR_OBJECT_BYTES <= held
    del out, steps


def test_the_property_can_fail():
    """A ledger that forgot autograd's saved tensors would be caught: the check above is not vacuous."""
    gc.collect()
    before = {id(o) for o in _tensors_alive()}
    out, _ = trace("a = torch.zeros(100000, requires_grad=True)\nb = a.exp().exp().exp().sum()", settings=ROOMY)
    storage, _ = real_storage_bytes(before)
    named = sum(t.untyped_storage().nbytes() for t in out.values())
    assert storage >= named + 3 * 400_000  # the three exp results live on in the graph, unnamed
