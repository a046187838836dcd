"""A program's own `X.backward(...)` line (#14): taken off the program as the output and gradient; elsewhere refused."""
import pytest
import torch

from core.expr import ExpressionError
from core.tensors.autograd import accumulation, backprop, fit_fields
from core.tensors.backward_line import assigned_names, split_backward

BLITZ = ("x = torch.ones(2, 2, requires_grad=True)\ny = x + 2\nz = y * y * 3\nout = z.mean()\n")


@pytest.mark.parametrize("line, output, target, gradient", [
    ("out.backward()", "out", "out", None),
    ("out.backward(g)", "out", "out", "g"),
    ("out.backward(gradient=torch.ones_like(out))", "out", "out", "torch.ones_like(out)"),
    ("out.backward(torch.ones(3), retain_graph=True)", "out", "out", "torch.ones(3)"),
    ("z.sum().backward()", "z_sum", "z.sum()", None),
    ("(z * 2).mean().backward()", "z_2_mean", "(z * 2).mean()", None),
    ("out.backward(  # the gradient\n    g)", "out", "out", "g"),
])
def test_a_final_backward_line_names_the_output_and_gradient(line, output, target, gradient):
    b = split_backward(BLITZ + line)
    assert (b.output, b.target, b.gradient, b.source, b.line) == (output, target, gradient, line, 5)
    assert b.rest == BLITZ.rstrip("\n")
    assert "backward" not in b.program and b.program.startswith(b.rest)
    if output != target:  # an expression is bound to a fresh name on the line the call was on
        assert b.program.splitlines()[4] == f"{output} = ({target})"


def test_no_backward_line_or_a_syntax_error_is_left_alone():
    assert split_backward(BLITZ) is None
    assert split_backward("x = (") is None  # the language reports the syntax error, with a caret
    assert split_backward("") is None


def test_same_line_statements_and_name_clashes():
    b = split_backward("a = torch.ones(2, requires_grad=True); a.sum().backward()")
    assert b.program == "a = torch.ones(2, requires_grad=True); a_sum = (a.sum())" and b.output == "a_sum"
    b = split_backward("a_sum = torch.ones(2, requires_grad=True)\na_sum.sum().backward()")
    assert b.output == "a_sum_sum"
    b = split_backward("a = torch.ones(2, requires_grad=True)\ntorch.sum(a).backward()")
    assert b.output == "torch_sum_a"


@pytest.mark.parametrize("program, line, col", [
    ("a = torch.ones(2, requires_grad=True)\nd = a.sum()\nd.backward()\ne = d * 2", 3, 3),  # in the middle
    ("a = torch.ones(2, requires_grad=True)\nwith torch.no_grad():\n    a.sum().backward()", 3, 13),  # nested
    ("a = torch.ones(2, requires_grad=True)\nb = a.sum().backward()", 2, 13),  # assigned
    ("a = torch.ones(2, requires_grad=True)\nf = a.backward", 2, 7),  # not even called
    ("a = torch.ones(2, requires_grad=True)\na.sum().backward().backward()", 2, 9),  # the receiver calls it
])
def test_backward_anywhere_else_says_put_it_last(program, line, col):
    with pytest.raises(ExpressionError) as e:
        split_backward(program)
    assert (e.value.line, e.value.col) == (line, col)
    assert "last line" in str(e.value) and "Call .backward() on" in str(e.value)
    assert e.value.caret().splitlines()[1].index("^") == col - 1
    with pytest.raises(ExpressionError, match="last line"):
        backprop(program, "a")


@pytest.mark.parametrize("call, words", [
    ("d.backward(g, h)", "one positional argument"),
    ("d.backward(inputs=[a])", "inputs= is not supported"),
    ("d.backward(*gs)", "one positional argument"),
])
def test_arguments_the_page_cannot_honour_are_refused(call, words):
    with pytest.raises(ExpressionError, match=words):
        split_backward("a = torch.ones(2, requires_grad=True)\nd = a * 2\n" + call)


def test_backprop_runs_the_backward_line_like_pytorch():
    r = backprop(BLITZ + "out.backward()", "ignored")  # the line wins over the output argument
    assert r.output == "out" and r.call == "out.backward()"
    assert torch.equal(r.grads["x"], torch.full((2, 2), 4.5)) and r.check.ok
    assert r.code.rstrip().endswith("out.backward()") and r.code.count("backward") == 1
    vec = "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ny = x * x\n"
    r = backprop(vec + "y.backward(torch.tensor([1.0, 0.1, 0.01]))", "")
    assert torch.allclose(r.grads["x"], torch.tensor([2.0, 0.4, 0.06]))
    r = backprop(vec + "y.sum().backward()", "", retain=["y"])
    assert r.output == "y_sum" and torch.equal(r.grads["x"], torch.tensor([2.0, 4.0, 6.0]))
    assert torch.equal(r.grads["y"], torch.ones(3))
    assert "y.retain_grad()" in r.code and r.code.rstrip().endswith("y.sum().backward()")
    acc = accumulation(vec + "y.sum().backward()", "")
    assert torch.equal(acc.after_second["x"], torch.tensor([4.0, 8.0, 12.0]))


def test_a_missing_gradient_on_the_line_is_the_plain_scalar_reason():
    from core.tensors import AutogradError

    with pytest.raises(AutogradError, match="only works on a scalar") as e:
        backprop("x = torch.ones(3, requires_grad=True)\ny = x * 2\ny.backward()", "")
    assert e.value.field == "gradient"


def test_assigned_names_follow_the_last_assignment():
    assert assigned_names("a = 1\nb = 2\nwith torch.no_grad():\n    c = a\na = 3") == ["b", "c", "a"]
    assert assigned_names("a = (") is None


def test_fit_fields_resets_stale_names_and_says_what_it_picked():
    program = "p = torch.tensor([1.0, 2.0], requires_grad=True)\nq = p * p\nloss = q.sum()\nk = torch.ones(2)"
    f = fit_fields(program, "d", ["c", "q"], "")
    assert (f.output, f.retain, f.gradient) == ("loss", ["q"], "")  # k does not require grad
    assert "`loss`" in f.notes[0] and "`d` is not in this program" in f.notes[0] and "`c`" in f.notes[1]
    assert fit_fields(program, "q", ["q"], "").notes == []  # nothing stale: nothing changes
    assert fit_fields(program, None, [], "").output == ""  # the program's backward line decides: left alone
    vec = "w = torch.ones(3, requires_grad=True)\nv = w * 2"
    f = fit_fields(vec, "z", [], "torch.tensor([1.0, 2.0])")
    assert (f.output, f.gradient) == ("v", "torch.ones_like(v)") and "shape (3,)" in f.notes[0]
    assert fit_fields(vec, "z", [], "torch.tensor([1.0, 2.0, 3.0])").gradient == "torch.tensor([1.0, 2.0, 3.0])"
    f = fit_fields("w = torch.ones(3)", "z", [], "")
    assert f.output == "" and "requires_grad=True" in f.notes[0]
    assert fit_fields("w = (", "z", ["c"], "").output == "z"  # a broken program is reported by backprop
