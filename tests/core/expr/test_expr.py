"""The expression language: results against plain torch / Python, errors with positions, and caps."""
from __future__ import annotations

import operator
import resource
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.expr import (
    NN_FUNCTIONS,
    TENSOR_ATTRIBUTES,
    TENSOR_METHODS,
    TORCH_FUNCTIONS,
    ExpressionError,
    compile_expression,
    evaluate,
    run,
    trace,
)
from core.settings import Settings

SMALL = Settings(max_tensor_elements=1_000, max_total_bytes=100_000, max_expr_chars=200, max_expr_depth=12,
                 max_statements=5, expr_timeout_s=2.0)


# ---------------------------------------------------------------- results


def test_first_lesson_examples():
    out = run("x = torch.tensor([[1, 2], [3, 4]], dtype=torch.float32)\ny = x + 2\nz = torch.matmul(x, y.T)\n"
              "x.view(-1)")
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert out["x"].dtype == torch.float32 and torch.equal(out["x"], x)
    assert torch.equal(out["y"], x + 2)
    assert torch.equal(out["z"], torch.tensor([[11.0, 17.0], [25.0, 39.0]]))
    assert torch.equal(out["_"], torch.tensor([1.0, 2.0, 3.0, 4.0]))


def test_views_share_storage_and_writes_show_through():
    out = run("x = torch.arange(6).reshape(2, 3)\nv = x.T\nv[0, 1] = 100\nc = x.T.contiguous()")
    assert out["x"][1, 0].item() == 100
    assert out["v"].untyped_storage().data_ptr() == out["x"].untyped_storage().data_ptr()
    assert out["c"].untyped_storage().data_ptr() != out["x"].untyped_storage().data_ptr()
    assert out["v"].stride() == (1, 3)


def test_indexing_forms():
    x = torch.arange(24).reshape(2, 3, 4)
    names = {"x": x, "i": torch.tensor([0, 2])}
    assert torch.equal(evaluate("x[..., ::2]", names), x[..., ::2])
    assert torch.equal(evaluate("x[None, 1, :, -1]", names), x[None, 1, :, -1])
    assert torch.equal(evaluate("x[x > 20]", names), x[x > 20])
    assert torch.equal(evaluate("x[:, i]", names), x[:, torch.tensor([0, 2])])
    assert torch.equal(evaluate("x[1][2][3]", names), x[1][2][3])


def test_methods_keywords_and_functional():
    x = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    names = {"x": x, "F": torch.nn.functional}
    assert torch.allclose(evaluate("x.softmax(dim=-1)", names), x.softmax(dim=-1))
    assert torch.allclose(evaluate("F.gelu(x)", names), torch.nn.functional.gelu(x))
    assert torch.allclose(evaluate("torch.nn.functional.log_softmax(x, dim=1)", names), x.log_softmax(1))
    target = torch.tensor([0, 1])
    assert torch.allclose(evaluate("F.cross_entropy(x, t)", {**names, "t": target}),
                          torch.nn.functional.cross_entropy(x, target))
    assert evaluate("x.max(dim=0).indices.tolist()", names) == [1, 1]
    assert evaluate("x.to(torch.float64).dtype", names) == torch.float64
    assert evaluate("torch.finfo(torch.float32).eps", names) == torch.finfo(torch.float32).eps
    y = evaluate("torch.tensor(2.0, requires_grad=True) * 3")
    assert y.requires_grad and y.grad_fn is not None


def test_no_grad_block_cuts_the_graph():
    out = run("w = torch.ones(2, requires_grad=True)\nwith torch.no_grad():\n    a = w * 2\nb = w * 2")
    assert not out["a"].requires_grad and out["b"].requires_grad


def test_plain_values_for_filters():
    f = compile_expression('len(text) > 5 and label == "positive" and "refund" in text.lower()')
    assert f.free_names == ["label", "text"]
    assert f({"text": "Want a REFUND", "label": "positive"}) is True
    assert f({"text": "Want a REFUND", "label": "negative"}) is False
    assert evaluate("rating >= 7 or rating is None", {"rating": None}) is True
    assert evaluate("rating >= 7 or rating is None", {"rating": 3}) is False
    assert evaluate("x if x > 0 else -x", {"x": -4}) == 4
    assert evaluate("round(max(abs(-2.5), 1.25), 1) + sum(range(4))") == 8.5
    assert evaluate("text.replace('a', 'b').split()", {"text": "a ca"}) == ["b", "cb"]
    assert evaluate("[1, 2] + [3] == [1, 2, 3] and not (1, 2) is None")


def test_unicode_identifiers_are_normalised():
    assert evaluate("\uff58 + 1", {"x": 2}) == 3  # full-width x is x, as in Python
    assert run("\U0001d41a = 5")["a"] == 5


def test_run_returns_inputs_and_new_names():
    out, steps = trace("b = a * 2\nb + 1", {"a": 3})
    assert out == {"a": 3, "b": 6, "_": 7}
    assert [(s.line, s.target, s.source) for s in steps] == [(1, "b", "b = a * 2"), (2, None, "b + 1")]


def test_import_does_not_load_torch_or_streamlit():
    code = "import sys, core.expr as e; e.evaluate('len(s) > 1', {'s': 'ab'}); " \
           "print('torch' in sys.modules, 'streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_whitelists_are_public_and_safe():
    assert {"tensor", "zeros", "matmul", "where"} <= TORCH_FUNCTIONS
    assert {"load", "save", "from_file", "hub", "ops"}.isdisjoint(TORCH_FUNCTIONS)
    assert {"view", "contiguous", "softmax"} <= TENSOR_METHODS and "numpy" not in TENSOR_METHODS
    assert {"T", "mT", "shape"} <= TENSOR_ATTRIBUTES and "cross_entropy" in NN_FUNCTIONS
    assert not any(n.startswith("_") for n in TORCH_FUNCTIONS | TENSOR_METHODS | TENSOR_ATTRIBUTES)


# ---------------------------------------------------------------- errors


def test_error_is_value_error_with_position():
    with pytest.raises(ValueError) as info:
        run("a = 1\nb = a +* 2")
    e = info.value
    assert isinstance(e, ExpressionError) and e.rule == "syntax" and e.line == 2
    assert str(e).startswith("line 2, col ") and e.caret().splitlines()[0] == "b = a +* 2"


def test_undefined_name_points_at_it_before_running():
    with pytest.raises(ExpressionError) as info:
        run("a = torch.zeros(2)\nb = a + c", {})
    assert (info.value.line, info.value.col, info.value.rule) == (2, 9, "names")
    assert "'c' is not defined" in info.value.message


def test_torch_errors_in_plain_words_with_shapes():
    with pytest.raises(ExpressionError) as info:
        evaluate("a @ b", {"a": torch.ones(2, 3), "b": torch.ones(2, 3)})
    msg = info.value.message
    assert "cannot be multiplied" in msg and "(2, 3)" in msg and info.value.col == 3
    with pytest.raises(ExpressionError, match="division by zero"):
        evaluate("1 / 0")
    with pytest.raises(ExpressionError, match="single expression"):
        evaluate("y = 1")


# ---------------------------------------------------------------- caps


def test_element_cap_is_checked_before_allocating():
    assert evaluate("torch.zeros(10, 100)", settings=SMALL).numel() == 1000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ExpressionError) as info:
        evaluate("torch.ones(20000, 1) + torch.ones(1, 20000)", settings=SMALL)  # 1.6 GB if it ran
    assert info.value.rule == "cap" and "TORCHLAB_MAX_TENSOR_ELEMENTS" in info.value.message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    for src in ["torch.zeros(10**6, 10**6)", "torch.arange(10**12)", "torch.ones(5).expand(10**4, 5)",
                "torch.ones(40).repeat(40)", "F.one_hot(torch.tensor([3]), 10**6)", "torch.linspace(0, 1, 10**9)"]:
        with pytest.raises(ExpressionError, match="max_tensor_elements"):
            evaluate(src, {"F": torch.nn.functional}, settings=SMALL)


def test_total_bytes_cap_counts_storages_once():
    cap = Settings(max_total_bytes=100_000)
    ok = "a = torch.zeros(10000)\nv = a.view(100, 100)\nw = a[::2]"  # 40 KB held, views are free
    assert run(ok, settings=cap)["w"].shape == (5000,)
    with pytest.raises(ExpressionError) as info:
        run("a = torch.zeros(10000)\nb = torch.zeros(10000)\nc = a + b", settings=cap)
    assert info.value.line == 3 and "TORCHLAB_MAX_TOTAL_BYTES" in info.value.message


def test_text_and_statement_caps():
    cases = {"1 + " * 60 + "1": "max_expr_chars", "-" * 20 + "1": "max_expr_depth",
             "\n".join(f"a{i} = {i}" for i in range(6)): "max_statements"}
    for src, cap in cases.items():
        with pytest.raises(ExpressionError, match=cap):
            run(src, settings=SMALL)


def test_python_value_caps():
    with pytest.raises(ExpressionError, match="max_text_chars"):
        evaluate("'a' * 10**9")
    with pytest.raises(ExpressionError, match="max_text_chars"):
        evaluate("t.replace('a', 'a' * 1000)", {"t": "a" * 100_000})
    with pytest.raises(ExpressionError, match="bits"):
        evaluate("9 ** 10 ** 8")
    with pytest.raises(ExpressionError, match="max_container_items"):
        evaluate("range(10**12)")
    with pytest.raises(ExpressionError, match="max_container_items"):
        evaluate("[0] * 10**9")
    assert evaluate("len('ab' * 1000)") == 2000
    n = {"n": torch.tensor(10**9), "x": torch.ones(3, 4)}
    with pytest.raises(ExpressionError, match="max_container_items"):
        evaluate("[0] * n", n)  # a 0-dim tensor repeats a list through __index__
    with pytest.raises(ExpressionError, match="max_tensor_elements"):
        evaluate("x.repeat(n, 1)", n)  # sized with n as a number before running
    with pytest.raises(ExpressionError, match="400 digits"):
        evaluate("round(10**9, -10**9)")


X = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))
METHODS = [
    ("x.unfold(1, 2, 1)", lambda x: x.unfold(1, 2, 1)), ("x.as_strided((2, 2), (1, 2))", lambda x: x.as_strided((2, 2), (1, 2))),
    ("x.T.reshape(-1)", lambda x: x.T.reshape(-1)), ("x[:1].expand(5, 4)", lambda x: x[:1].expand(5, 4)),
    ("x.masked_fill(x > 0, 0)", lambda x: x.masked_fill(x > 0, 0)), ("x.topk(2).values", lambda x: x.topk(2).values),
    ("x.sort(dim=0).indices", lambda x: x.sort(dim=0).indices), ("x.cumsum(1)", lambda x: x.cumsum(1)),
    ("torch.cat([x, x], dim=1)", lambda x: torch.cat([x, x], dim=1)), ("torch.stack([x, x])", lambda x: torch.stack([x, x])),
    ("torch.where(x > 0, x, 0.0)", lambda x: torch.where(x > 0, x, 0.0)), ("x.nonzero()", lambda x: x.nonzero()),
    ("x.new_full((2,), 3.0)", lambda x: x.new_full((2,), 3.0)), ("torch.linalg.svdvals(x)", torch.linalg.svdvals),
    ("torch.nn.functional.pad(x, (1, 1))", lambda x: torch.nn.functional.pad(x, (1, 1))),
    ("x.int().float().mean(dim=1, keepdim=True)", lambda x: x.int().float().mean(dim=1, keepdim=True)),
]


@pytest.mark.parametrize("src,ref", METHODS, ids=[m[0] for m in METHODS])
def test_whitelisted_methods_match_torch(src, ref):
    got, want = evaluate(src, {"x": X}), ref(X)
    assert got.shape == want.shape and torch.allclose(got.float(), want.float(), atol=1e-6)


def test_wall_clock_budget_stops_a_slow_program():
    fast = Settings(expr_timeout_s=0.3)
    program = "\n".join(f"a{i} = torch.rand(300000).sort().values.cumsum(0)" for i in range(100))
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="TORCHLAB_EXPR_TIMEOUT_S") as info:
        run(program, settings=fast)
    assert time.perf_counter() - start < 3 and info.value.line > 1


def test_matmul_cost_is_estimated_before_running():
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match="floating-point operations"):
        evaluate("a @ a", {"a": torch.ones(3000, 3000)}, settings=Settings(expr_timeout_s=0.5))
    assert time.perf_counter() - start < 0.5


# ---------------------------------------------------------------- property tests against plain torch

LEAVES = {"a": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)),
          "b": torch.randn(4, generator=torch.Generator().manual_seed(1)),
          "c": torch.randn(3, 1, generator=torch.Generator().manual_seed(2))}
UNARY = [("torch.tanh({})", torch.tanh), ("({}).abs()", torch.abs), ("-({})", operator.neg),
         ("torch.relu({})", torch.relu), ("({}).sigmoid()", torch.sigmoid), ("({}).t().t()", lambda t: t.t().t()),
         ("({}).clamp(min=-0.5, max=0.5)", lambda t: t.clamp(min=-0.5, max=0.5)),
         ("({}).contiguous()", lambda t: t.contiguous())]
BINARY = [("({} + {})", operator.add), ("({} - {})", operator.sub), ("({} * {})", operator.mul),
          ("torch.maximum({}, torch.as_tensor({}))", lambda x, y: torch.maximum(x, torch.as_tensor(y))),
          ("torch.where({} > {}, 1.0, -1.0)",
                                                      lambda x, y: torch.where(x > y, 1.0, -1.0))]
FINAL = [("{}", lambda t: t), ("({}).sum(dim=-1)", lambda t: t.sum(dim=-1)), ("({}).mean()", torch.mean),
         ("({}).reshape(-1)", lambda t: t.reshape(-1)), ("({}).softmax(dim=0)", lambda t: t.softmax(dim=0))]


def tensor_exprs(names: list[str]):
    leaves = st.sampled_from(names).map(lambda n: (n, lambda env, n=n: env[n]))
    consts = st.sampled_from([0.5, 2.0, -1.0]).map(lambda v: (repr(v), lambda env, v=v: v))

    def extend(inner):
        unary = st.tuples(st.sampled_from(UNARY), inner).map(
            lambda p: (p[0][0].format(p[1][0]), lambda env, f=p[0][1], g=p[1][1]: f(g(env))))
        binary = st.tuples(st.sampled_from(BINARY), inner, st.one_of(inner, consts)).map(
            lambda p: (p[0][0].format(p[1][0], p[2][0]),
                       lambda env, f=p[0][1], g=p[1][1], h=p[2][1]: f(torch.as_tensor(g(env)), h(env))))
        return st.one_of(unary, binary)

    return st.recursive(leaves, extend, max_leaves=6)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_programs_match_plain_torch(data):
    env = dict(LEAVES)
    lines, names = [], list(LEAVES)
    for i in range(data.draw(st.integers(1, 4))):
        src, fn = data.draw(tensor_exprs(names))
        final_src, final_fn = data.draw(st.sampled_from(FINAL))
        lines.append(f"v{i} = " + final_src.format(src))
        try:
            env[f"v{i}"] = final_fn(torch.as_tensor(fn(env)))
        except RuntimeError:  # plain torch refuses (shapes do not broadcast): so must the language
            with pytest.raises(ExpressionError, match="must match|size") as info:
                run("\n".join(lines), LEAVES)
            assert info.value.line == i + 1
            return
        names.append(f"v{i}")
    out = run("\n".join(lines), LEAVES)
    for name in names:
        assert out[name].shape == env[name].shape and torch.allclose(out[name], env[name], equal_nan=True)


INT_OPS = [("+", operator.add), ("-", operator.sub), ("*", operator.mul), ("//", operator.floordiv),
           ("%", operator.mod)]


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.integers(-50, 50).map(lambda v: (f"({v})", v)),
                    lambda inner: st.tuples(inner, st.sampled_from(INT_OPS), inner), max_leaves=8))
def test_random_integer_arithmetic_matches_python(tree):
    def build(node):
        if len(node) == 2:
            return node
        (ls, lv), (sym, fn), (rs, rv) = build(node[0]), node[1], build(node[2])
        failed = lv is None or rv is None or (sym in "//%" and rv == 0)
        return (f"({ls} {sym} {rs})", None if failed else fn(lv, rv))

    src, expected = build(tree)
    if expected is None:
        with pytest.raises(ExpressionError, match="division by zero|modulo"):
            evaluate(src)
    else:
        assert evaluate(src) == expected
