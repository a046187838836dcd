"""core.tensors.autograd against hand-computed values, torch's own graph and finite differences."""
import random

import pytest
import torch

from core import expr
from core.tensors.autograd import (
    EXAMPLES,
    AutogradError,
    accumulation,
    backprop,
    backprop_fn,
    gradient_check,
    plain_reason,
)

FIRST = EXAMPLES["First lesson: d = a*b + a"]


def test_first_lesson_values_and_graph():
    r = backprop(FIRST.program, "d", retain=["c"])
    assert r.grads["a"].item() == 4.0 and r.grads["b"].item() == 2.0
    assert r.grads["c"].item() == 1.0  # retained non-leaf: dd/dc
    kinds = {n.label: n.kind for n in r.nodes}
    assert kinds == {"a": "leaf", "b": "leaf", "c": "tensor", "d": "tensor", "MulBackward0": "grad_fn",
                     "AddBackward0": "grad_fn", "AccumulateGrad": "grad_fn"}
    assert sum(n.label == "AccumulateGrad" for n in r.nodes) == 2
    by_label = {n.label: n for n in r.nodes}
    assert by_label["c"].value.item() == 6.0 and by_label["d"].value.item() == 8.0
    assert by_label["d"].grad is None  # non-leaf, not retained: .grad stays None
    ids = {n.id: n.label for n in r.nodes}
    pairs = {(ids[e.src], ids[e.dst], e.kind) for e in r.edges}
    assert ("a", "AccumulateGrad", "leaf") in pairs
    assert ("MulBackward0", "c", "output") in pairs and ("c", "AddBackward0", "input") in pairs
    assert ("AccumulateGrad", "AddBackward0", "next") in pairs  # a feeds the add directly as well
    mul = by_label["MulBackward0"]
    assert sorted(s.attr for s in mul.saved) == ["other", "self"] and mul.saved_bytes == 8
    assert r.check.ok and r.check.max_rel_error < 1e-6 and r.check.checked == 2
    assert "d.backward()" in r.code and "c.retain_grad()" in r.code


def test_node_ids_are_stable_across_runs():
    ids = [[n.id for n in backprop(FIRST.program, "d", check=False).nodes] for _ in range(2)]
    assert ids[0] == ids[1] and "t:a" in ids[0] and "fn0" in ids[0]


def test_backward_steps_follow_the_engine():
    r = backprop(FIRST.program, "d", check=False)
    assert [s.label for s in r.steps] == ["AddBackward0", "MulBackward0", "AccumulateGrad", "AccumulateGrad"]
    mul = r.steps[1]
    assert mul.grad_outputs[0].item() == 1.0
    assert [g.item() for g in mul.grad_inputs] == [3.0, 2.0]  # d(ab)/da = b, d(ab)/db = a
    acc = {r.node(s.node_id).grad.item() for s in r.steps[2:]}
    assert acc == {4.0, 2.0}


def _torch_grad_fn_names(out: torch.Tensor) -> list[str]:
    names, stack, seen = [], [out.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.append(type(fn).__name__)
        stack.extend(f for f, _ in fn.next_functions)
    return sorted(names)


@pytest.mark.parametrize("program, reference", [
    ("x = torch.tensor([1.0, 2.0], requires_grad=True)\ny = (torch.tanh(x) * x).sum()",
     lambda: (lambda x: (torch.tanh(x) * x).sum())(torch.tensor([1.0, 2.0], requires_grad=True))),
    ("w = torch.ones(2, 3, requires_grad=True)\nv = torch.ones(3)\ny = torch.sigmoid(w @ v).mean()",
     lambda: torch.sigmoid(torch.ones(2, 3, requires_grad=True) @ torch.ones(3)).mean()),
    ("x = torch.tensor([0.5, 1.5], requires_grad=True)\ny = torch.softmax(x, dim=0)[0]",
     lambda: torch.softmax(torch.tensor([0.5, 1.5], requires_grad=True), dim=0)[0]),
])
def test_grad_fn_labels_match_torch(program, reference):
    r = backprop(program, "y", check=False)
    assert sorted(n.label for n in r.nodes if n.kind == "grad_fn") == _torch_grad_fn_names(reference())


UNARY = ["torch.tanh({})", "torch.sigmoid({})", "torch.sin({})", "({} * {})", "torch.exp({} * 0.3)"]
BINARY = ["({} + {})", "({} - {})", "({} * {})", "({} / (1.5 + {} * {}))"]


def _random_program(rng: random.Random) -> str:
    lines = [f"x = torch.tensor({[round(rng.uniform(-1, 1), 3) for _ in range(3)]}, dtype=torch.float64, "
             "requires_grad=True)",
             f"y = torch.tensor({[round(rng.uniform(-1, 1), 3) for _ in range(3)]}, dtype=torch.float64, "
             "requires_grad=True)"]
    names = ["x", "y"]
    for i in range(rng.randint(2, 5)):
        if rng.random() < 0.5:
            a = rng.choice(names)
            body = rng.choice(UNARY).format(a, a)
        else:
            a, b = rng.choice(names), rng.choice(names)
            body = rng.choice(BINARY).format(a, b, b)
        names.append(f"v{i}")
        lines.append(f"v{i} = {body}")
    lines.append(f"out = ({names[-1]} * {names[-2]}).sum()")
    return "\n".join(lines)


@pytest.mark.parametrize("seed", range(8))
def test_random_programs_match_finite_differences(seed):
    program = _random_program(random.Random(seed))
    r = backprop(program, "out")
    assert r.check.ok and r.check.max_rel_error < 1e-6, program
    # independent reference: central differences through core.expr with the leaves passed in as names
    body = "\n".join(program.splitlines()[2:])
    base = {k: r.values[k].detach().clone() for k in ("x", "y")}
    for name in ("x", "y"):
        for i in range(3):
            h = 1e-6
            plus, minus = dict(base), dict(base)
            plus[name], minus[name] = base[name].clone(), base[name].clone()
            plus[name][i] += h
            minus[name][i] -= h
            fd = (expr.run(body, plus)["out"] - expr.run(body, minus)["out"]).item() / (2 * h)
            grad = r.grads[name]  # None when `out` does not depend on this leaf
            assert (0.0 if grad is None else grad[i].item()) == pytest.approx(fd, rel=1e-5, abs=1e-8), program


def test_gradient_check_catches_a_wrong_gradient():
    def run():
        a = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
        return {"a": a, "y": (a * a).sum()}

    names = run()
    names["y"].backward()
    assert gradient_check(run, "y", [names["a"]]).max_rel_error < 1e-8
    names["a"].grad[1] += 0.5  # 4.0 -> 4.5
    bad = gradient_check(run, "y", [names["a"]])
    assert not bad.ok and bad.max_rel_error == pytest.approx(0.5 / 4.5, rel=1e-4)


def test_vector_output_with_gradient():
    ex = EXAMPLES["Vector output with a gradient"]
    r = backprop(ex.program, ex.output, gradient=ex.gradient)
    x = torch.tensor([1.0, 2.0, 3.0])
    g = torch.tensor([1.0, 0.5, 0.25])
    assert torch.allclose(r.grads["x"], -2 * x * torch.exp(-x * x) * g)
    assert r.check.ok
    assert "gradient=torch.tensor" in r.code


def test_no_grad_and_detach_cut_the_graph():
    ex = EXAMPLES["no_grad and detach cut the graph"]
    r = backprop(ex.program, ex.output)
    assert r.grads["a"].item() == 1.0  # only the `+ a` path: the detach and no_grad paths carry nothing
    assert r.grads["b"].item() == 2.0  # through a.detach() * b, with a.detach() = 2
    assert "torch.no_grad()" in r.outside["s"]
    cuts = {(r.node(e.src).label, e.label) for e in r.edges if e.kind == "cut"}
    assert ("a", "detach()") in cuts and ("a", "torch.no_grad()") in cuts and ("b", "torch.no_grad()") in cuts
    assert r.check.ok  # finite differences hold cut values fixed, as autograd does


def test_tiny_neuron_against_torch():
    ex = EXAMPLES["Tiny neuron: sigmoid(w @ x + b)"]
    r = backprop(ex.program, ex.output, ex.retain)
    w = torch.tensor([[0.5, -1.0, 0.25]], requires_grad=True)
    b = torch.tensor([0.1], requires_grad=True)
    (-torch.log(torch.sigmoid(w @ torch.tensor([1.0, 2.0, 3.0]) + b)).sum()).backward()
    assert torch.allclose(r.grads["w"], w.grad) and torch.allclose(r.grads["b"], b.grad)
    assert r.outside["x"].startswith("a constant")


@pytest.mark.parametrize("program, output, gradient, words", [
    ("a = torch.tensor(2.0)\nb = a * 3", "b", None, "does not require grad"),
    ("a = torch.tensor([1.0, 2.0], requires_grad=True)\nb = a * 3", "b", None, "only works on a scalar"),
    ("a = torch.tensor([1.0, 2.0], requires_grad=True)\nb = a * 3", "b", "torch.ones(3)", "must match"),
    ("a = torch.tensor([1.0, 2.0], requires_grad=True)\nb = a.exp()\nb[0] = 1.0\nc = b.sum()", "c", None,
     "changed in place"),
    ("a = torch.tensor([1.0, 2.0], requires_grad=True)\nb = a * 3", "zz", None, "not a variable"),
])
def test_bad_backward_gets_plain_words(program, output, gradient, words):
    with pytest.raises(AutogradError, match=words):
        backprop(program, output, gradient=gradient)


def test_in_place_on_leaf_and_bad_program():
    with pytest.raises(expr.ExpressionError) as e:
        backprop("a = torch.tensor([1.0, 2.0], requires_grad=True)\na[0] = 5.0\nb = a.sum()", "b")
    assert e.value.line == 2 and "out-of-place" in plain_reason(str(e.value))
    with pytest.raises(expr.ExpressionError):
        backprop("a = torch.tensor(1.0, requires_grad=True)\nb = a *", "b")


def test_accumulation_and_zero_grad():
    r = accumulation(FIRST.program, "d")
    assert r.after_first["a"].item() == 4.0 and r.after_second["a"].item() == 8.0
    assert r.after_second["b"].item() == 4.0 and r.error is None
    assert r.after_zero == {"a": None, "b": None}
    r = accumulation(FIRST.program, "d", retain_graph=False)
    assert r.after_second is None and "retain_graph=True" in r.error


def test_backprop_fn_works_on_plain_torch():
    def run():
        a = torch.tensor(3.0, requires_grad=True)
        return {"a": a, "y": a ** 3}

    r = backprop_fn(run, "y")
    assert r.grads["a"].item() == pytest.approx(27.0)
    assert [n.label for n in r.nodes if n.kind == "grad_fn"] == ["PowBackward0", "AccumulateGrad"]
