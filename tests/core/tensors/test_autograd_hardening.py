"""Issue 13, round 2, autograd part: one budget for run + check, the gradient= boundary, in-place edits."""
from __future__ import annotations

import time

import pytest
import torch

from core.expr import Budget, ExpressionError
from core.settings import Settings
from core.tensors import AutogradError, Definition, accumulation, backprop, build
from core.tensors.autograd import _warm_up_expr, gradient_check

FIRST = "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ny = x * 2"
# one run: 20 matmuls of 300x300 (~1 GFLOP), ~0.1 s idle, ~0.5 s on a loaded machine; the 48-element check
# would re-run it 96 times in float64 (10 s or more), far past a 6 s budget
SLOW = "w = torch.ones(48, requires_grad=True)\nx = torch.rand(300, 300) / 150\n" + \
       "\n".join("x = (x @ x).tanh() + 0.1" for _ in range(20)) + "\ny = x.sum() * w.sum()"


@pytest.fixture(scope="module", autouse=True)
def warm():
    _warm_up_expr()  # one-off imports are not charged to any budget; done once here for stable timings


def test_the_gradient_check_shares_the_runs_budget_and_says_so():
    # the budget is sized from this machine's own speed: the run and backward fit, 96 re-runs do not
    from core.expr import run

    t = time.perf_counter()
    run(SLOW)
    one = time.perf_counter() - t
    limit = max(1.0, 12 * one)
    budget = Budget(Settings(expr_timeout_s=limit))
    start = time.perf_counter()
    r = backprop(SLOW, "y", budget=budget)
    took = time.perf_counter() - start
    assert took < limit + max(0.7, 2 * one), f"run + check took {took:.2f} s on a {limit:.2f} s budget"
    assert r.check.checked < r.check.total == 48
    assert "Finite-difference check" in r.check.note and "budget" in r.check.note
    assert r.grads["w"] is not None and r.grads["w"].shape == (48,)


def test_a_check_that_cannot_fit_is_skipped_not_run():
    calls = []

    def run():
        calls.append(1)
        a = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        return {"a": a, "y": (a * a).sum()}

    names = run()
    names["y"].backward()
    # the forward run is said to take 2 s: a pair of re-runs (~5 s) cannot fit in the 3 s left
    check = gradient_check(run, "y", [names["a"]], budget=Budget(Settings(expr_timeout_s=3.0)), run_s=2.0)
    assert check.skipped and check.checked == 0 and len(calls) == 1  # not one re-run
    assert check.note.startswith("Finite-difference check skipped") and "time budget" in check.note
    assert gradient_check(run, "y", [names["a"]], budget=Budget(Settings(expr_timeout_s=3.0)), run_s=0.01).ok


def test_a_small_program_is_still_fully_checked():
    r = backprop("x = torch.rand(30, requires_grad=True, dtype=torch.float64)\ny = (x * x).sum()", "y",
                 budget=Budget(Settings(expr_timeout_s=5.0)))
    assert r.check.checked == 30 and r.check.note == "" and r.check.ok


def test_the_page_action_shares_one_budget_with_accumulation():
    budget = Budget(Settings(expr_timeout_s=6.0))
    start = time.perf_counter()
    backprop(SLOW, "y", budget=budget)
    try:
        accumulation(SLOW, "y", budget=budget)
    except (ExpressionError, AutogradError) as e:  # refused for lack of time is fine; taking longer is not
        assert "expr_timeout_s" in str(e)
    assert time.perf_counter() - start < 6.0 + 0.8


def test_costly_linear_algebra_in_a_program_is_refused():
    with pytest.raises(ExpressionError, match="floating-point operations"):
        backprop("a = torch.rand(1500, 1500, requires_grad=True)\nn = torch.linalg.norm(a, 'nuc')", "n")


@pytest.mark.parametrize("gradient, words", [
    ("'abc'", "a str"), ("torch.float", "a dtype"), ("torch.finfo(torch.float32)", "a finfo"),
    ("x.shape", "a Size"), ("[1.0, 2.0, 3.0]", "a list"), ("(1, 2, 3)", "a tuple"), ("range(3)", "a range"),
    ("2 ** 99999", "too large"), ("torch.ones(3, dtype=torch.complex64)", "complex"), ("torch.ones(4)", "shape (4,)"),
    ("torch.ones(3, 1)", "shape (3, 1)"), ("1.5", "shape ()"), ("None", "only works on a scalar"),
])
def test_the_gradient_field_is_validated_at_the_boundary(gradient, words):
    with pytest.raises(AutogradError, match="gradient|[Gg]radient") as info:
        backprop(FIRST, "y", gradient=gradient)
    assert words in str(info.value) and info.value.field == "gradient"


@pytest.mark.parametrize("gradient", ["torch.ones(3).to('meta')", "torch.ones(3, device='meta')", "torch.load('x')",
                                      "torch.ones(10**9)", "y.new_empty(3).to('meta')"])
def test_gradient_expressions_the_language_refuses_name_the_field(gradient):
    with pytest.raises(ExpressionError) as info:
        backprop(FIRST, "y", gradient=gradient)
    assert info.value.field == "gradient"


def test_valid_gradients_of_every_kind_work():
    assert backprop(FIRST, "y", gradient="torch.tensor([1, 0, 2])").grads["x"].tolist() == [2.0, 0.0, 4.0]
    assert backprop(FIRST, "y", gradient="torch.ones(3) > 0").grads["x"].tolist() == [2.0, 2.0, 2.0]
    assert backprop(FIRST, "y", gradient="torch.empty(3)").grads["x"].tolist() == [0.0, 0.0, 0.0]  # zeros
    scalar = "x = torch.tensor(2.0, requires_grad=True)\ny = x * x"
    assert backprop(scalar, "y", gradient="3").grads["x"].item() == 12.0


@pytest.mark.parametrize("program, output", [
    ("a = torch.ones(3, requires_grad=True)\nb = a * 2\nc = b.sigmoid()\nc[0] = 5.0\nd = c.sum()", "d"),
    ("a = torch.ones(3, requires_grad=True)\nb = a.exp()\nb[1] = 0.0\nd = b.sum()", "d"),
    ("a = torch.ones(2, 2, requires_grad=True)\nb = a.tanh()\nv = b.T\nv[0, 1] = 3.0\nd = b.sum()", "d"),
])
def test_accumulation_on_an_in_place_edit_explains_instead_of_raising(program, output):
    with pytest.raises(AutogradError, match="changed in place"):
        accumulation(program, output)


def test_accumulation_validates_its_gradient_too():
    with pytest.raises(AutogradError) as info:
        accumulation(FIRST, "y", gradient="torch.finfo(torch.float32)")
    assert info.value.field == "gradient"


@pytest.mark.parametrize("program", ["a = torch.ones(3, requires_grad=True).to('meta')\nb = a.sum()",
                                     "a = torch.ones(3, requires_grad=True)\nb = (a * 2).to(device='meta').sum()"])
def test_meta_tensors_never_leave_the_language(program):
    with pytest.raises(ExpressionError, match="'meta' device"):
        backprop(program, "b")


def test_output_and_retain_errors_name_their_field():
    with pytest.raises(AutogradError) as info:
        backprop(FIRST, "nope")
    assert info.value.field == "output"
    with pytest.raises(AutogradError) as info:
        backprop("a = torch.tensor(2.0, requires_grad=True)\nk = torch.tensor(1.0)\nb = a * k", "b", retain=["k"])
    assert info.value.field == "retain"


# --------------------------------------------------------------------------- the tensor page's engine
def test_literals_go_through_the_language_and_its_caps():
    caps = Settings(max_tensor_elements=10_000, max_container_items=10**7, expr_timeout_s=2.0)
    start = time.perf_counter()
    ws = build([Definition("big", "literal", "[[0] * 1000] * 3000"), Definition("ok", "literal", "[[1, 2], [3, 4]]"),
                Definition("e", "literal", "torch.empty(5000)")], "", settings=caps)
    assert time.perf_counter() - start < 2.0
    assert "max_tensor_elements" in ws.errors["big"].message and "big" not in ws.names
    assert ws.names["ok"].tolist() == [[1.0, 2.0], [3.0, 4.0]] and not ws.names["e"].any()


def test_all_definitions_and_the_program_share_one_memory_budget():
    caps = Settings(max_total_bytes=3 * 2**20, max_tensor_elements=2**20)
    defs = [Definition(f"d{i}", "factory", factory="zeros", shape=(2**18,)) for i in range(4)]  # 1 MiB each
    ws = build(defs, "e = d0 + 1", settings=caps)
    assert sorted(ws.names) == ["d0", "d1"] and "max_total_bytes" in ws.errors["d2"].message
    assert ws.program_error is not None and "max_total_bytes" in ws.program_error.message
