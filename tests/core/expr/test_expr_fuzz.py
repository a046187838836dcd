"""Fuzzing the safe expression language: whatever is typed, the only failure is an ExpressionError.

Generators, from blind to grammar-aware: arbitrary Unicode text; token soup from the language's own
vocabulary (whitelisted torch functions, tensor methods, dunders, operators, brackets); programs built
from a small grammar that mostly parse, so the interpreter (not only the parser) runs; and grammars of
containers and nested structures (repetition, concatenation, shared sublists that double per line)
handed to every builtin that walks them. Besides the exception type, each input must finish in time and
must not grow the process's peak memory by more than a few hundred MB.
Runs are derandomized so CI is reproducible; TORCHLAB_FUZZ_SCALE=10 tries ten times as many inputs and
TORCHLAB_FUZZ_RANDOM=1 draws fresh ones on every run (for hunting, not CI).
"""
from __future__ import annotations

import os
import resource
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import expr
from core.expr import ExpressionError, evaluate, run
from core.settings import Settings

SCALE = int(os.environ.get("TORCHLAB_FUZZ_SCALE", "1"))
# small caps: a fuzzed formula may ask for a huge tensor or a long loop; the caps must refuse it quickly
CAPS = Settings(max_tensor_elements=20_000, max_total_bytes=4 * 2**20, expr_timeout_s=1.0, max_expr_chars=400,
                max_container_items=50_000)
RANDOM = os.environ.get("TORCHLAB_FUZZ_RANDOM", "") == "1"
FUZZ = settings(max_examples=200 * SCALE, deadline=None, derandomize=not RANDOM, database=None,
                suppress_health_check=list(HealthCheck))
TRIED: dict[str, int] = {"examples": 0, "ran": 0, "refused": 0}
GRAMMAR: dict[str, int] = {"examples": 0, "ran": 0}


def names() -> dict:
    return {"x": torch.arange(6.0).reshape(2, 3), "v": torch.ones(3, requires_grad=True), "n": 3, "s": "abc"}


def check(source: str, program: bool = False) -> None:
    """Run `source`; pass when it succeeds or raises ExpressionError, fail on anything else or a hang."""
    TRIED["examples"] += 1
    t0, rss0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        (run if program else evaluate)(source, names(), settings=CAPS)
        TRIED["ran"] += 1
    except ExpressionError as e:
        TRIED["refused"] += 1
        assert str(e) and e.line >= 1 and e.col >= 1, repr(e)  # every refusal says where
    except Exception as e:  # the bug this file hunts for
        pytest.fail(f"{type(e).__name__} (not ExpressionError) from {source!r}: {e}")
    # the wall-clock cap is 1 s; allow slack for a loaded machine, but never a hang
    assert time.perf_counter() - t0 < 10, f"{source!r} ran {time.perf_counter() - t0:.1f} s"
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0  # KiB; the peak only ever rises
    assert grew < 300_000, f"{source!r} raised the peak memory by {grew // 1024} MB"


# --------------------------------------------------------------------------- vocabularies
FUNCS = sorted(expr.TORCH_FUNCTIONS)
METHODS = sorted(expr.TENSOR_METHODS | expr.STR_METHODS)
ATTRS = sorted(expr.TENSOR_ATTRIBUTES) + ["__class__", "__dict__", "__globals__", "__subclasses__", "__init__",
                                          "__builtins__", "__code__", "__reduce__", "_cdata", "data"]
ATOMS = ["x", "v", "n", "s", "torch", "0", "1", "-1", "2.5", "1e308", "10**9", "True", "None", "'a'", "[1, 2]",
         "(1, 2)", "[]", "()", "''", "__import__", "open", "len", "range", "x.T", "torch.float16", "torch.int64"]
PUNCT = ["(", ")", "[", "]", ",", ":", ".", "+", "-", "*", "/", "//", "%", "**", "@", "<", "==", "and", "not",
         "if", "else", "lambda", "for", "in", "=", "\n", "    ", "with", "torch.no_grad()", ";", "'", '"', "\\",
         "{", "}", "&", "|", "~", "^", "\x00", "\u202e", "ｘ"]


def _call(f: str, args: list[str]) -> str:
    return f"{f}({', '.join(args)})"


# common, well-formed pieces weigh more, so a real share of programs get past the checker and run
SIMPLE_METHODS = ["sum", "mean", "abs", "t", "exp", "relu", "sigmoid", "flatten", "clone", "detach", "float",
                  "max", "argmax", "size", "numel", "contiguous", "upper", "strip", "cumsum", "softmax", "norm"]
atom = st.one_of(st.sampled_from(["x", "x", "v", "n", "s", "x.T", "2", "0.5"]), st.sampled_from(ATOMS))
expression = st.recursive(
    atom,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "*", "-"]), st.sampled_from(["x", "1", "v", "2.0"])).map(" ".join),
        st.tuples(inner, st.sampled_from(SIMPLE_METHODS)).map(lambda t: f"({t[0]}).{t[1]}()"),
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "@", "**", "//", "%", "<", "==", "and", "or"]),
                  inner).map(" ".join),
        st.tuples(st.sampled_from(FUNCS), st.lists(inner, max_size=3)).map(lambda t: _call("torch." + t[0], t[1])),
        st.tuples(inner, st.sampled_from(METHODS), st.lists(inner, max_size=2))
        .map(lambda t: _call(f"({t[0]}).{t[1]}", t[2])),
        st.tuples(inner, st.sampled_from(ATTRS)).map(lambda t: f"({t[0]}).{t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(inner, st.integers(-3, 3), st.integers(-3, 3)).map(lambda t: f"{t[0]}[{t[1]}:{t[2]}]"),
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
        inner.map(lambda e: f"-({e})"),
    ),
    max_leaves=8,
)


@FUZZ
@given(st.text(max_size=120))
def test_arbitrary_text_only_raises_expression_error(source):
    check(source)
    check(source, program=True)


@FUZZ
@given(st.lists(st.sampled_from(ATOMS + PUNCT + FUNCS[:40] + ATTRS), max_size=14))
def test_token_soup_only_raises_expression_error(tokens):
    check(" ".join(tokens))
    check("".join(tokens), program=True)


@FUZZ
@given(expression)
def test_grammar_expressions_only_raise_expression_error(source):
    ran = TRIED["ran"]
    check(source)
    GRAMMAR["examples"] += 1
    GRAMMAR["ran"] += TRIED["ran"] - ran


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "x", "torch", "__x"]), expression), min_size=1, max_size=4),
       st.booleans())
def test_grammar_programs_only_raise_expression_error(lines, no_grad):
    body = "\n".join(f"{name} = {e}" for name, e in lines)
    if no_grad:
        body = "with torch.no_grad():\n" + "\n".join("    " + ln for ln in body.splitlines())
    check(body, program=True)


# --------------------------------------------------------------------------- containers and nesting
REPEAT = ["0", "1", "2", "3", "10", "1000", "10**5", "10**9", "n", "-1", "torch.tensor(3)"]
LEAVES = ["0", "1.5", "'ab'", "None", "x", "v", "s", "n", "True", "2 ** 4000", "torch.ones(2)", "x.shape",
          "range(5)", "range(10**6)", "'xy' * 5000", "[]", "()"]
nested = st.recursive(
    st.sampled_from(LEAVES),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: "(" + "".join(f"{x}, " for x in xs) + ")"),
        st.tuples(inner, st.sampled_from(REPEAT)).map(lambda t: f"({t[0]}) * {t[1]}"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]}) + ({t[1]})"),
        st.tuples(inner, st.integers(-3, 3)).map(lambda t: f"({t[0]})[{t[1]}]"),
        st.tuples(inner, st.integers(-3, 3), st.integers(-3, 3)).map(lambda t: f"({t[0]})[{t[1]}:{t[2]}]"),
    ),
    max_leaves=10,
)
WALKS = ["{0}", "str({0})", "len({0})", "max({0})", "min({0})", "sum({0})", "sum({0}, [])", "sum({0}, ())",
         "{0} == {1}", "0 in {0}", "{0} < {1}", "torch.tensor({0})", "torch.as_tensor({0}, dtype=torch.float64)",
         "bool({0})", "len(str({0}))", "torch.cat({0})", "torch.stack({0})", "x[{0}]", "max({0}, {1})",
         "[{0}] * 10**4 == [{1}] * 10**4", "str([{0}] * 1000)", "x.new_tensor({0})", "{0} * ({1})"]


@FUZZ
@given(nested, nested, st.sampled_from(WALKS))
def test_container_grammar_only_raises_expression_error(a, b, walk):
    check(walk.format(a, b))


GROW = ["a = [a, a]", "a = (a, a, a)", "a = a + a", "a = a * 2", "a = [a] * 10", "a = [a, b]", "b = a",
        "b = str(a)", "b = a == b", "b = max(a)", "b = len(a)", "b = sum(a, [])", "b = a[0]", "a = a[::-1]",
        "b = torch.tensor(a)", "a = (a,) * 1000", "b = str(b) * 2", "a = [x] * 100 + [a]", "b = 0 in a"]


@FUZZ
@given(st.sampled_from(["[0]", "(1, 2)", "[[0] * 100]", "[x, v]", "'ab'", "[]"]),
       st.lists(st.sampled_from(GROW), min_size=1, max_size=40))
def test_nested_structure_programs_only_raise_expression_error(start, lines):
    check(f"a = {start}\nb = a\n" + "\n".join(lines), program=True)


def test_the_container_grammars_run_some_inputs():
    """Not all refused: the grammars reach the builtins with values small enough to walk."""
    before = dict(TRIED)
    for source in ["str([[0] * 3] * 2)", "max([(1, 2), (1, 3)])", "sum([[1], [2]], [])", "len([x] * 10)"]:
        check(source)
    check("a = [0]\nb = a\na = [a, a]\na = [a, a]\nb = str(a)", program=True)
    assert TRIED["ran"] - before["ran"] == 5


def test_the_fuzzers_reach_the_interpreter_not_only_the_parser():
    """A fuzzer whose every input is refused by the parser tests nothing past it."""
    before = dict(TRIED)
    for source in ["x.sum() + n", "torch.matmul(x, x.T)", "s.upper()", "x[0, 1:3]", "v.grad"]:
        check(source)
    assert TRIED["ran"] - before["ran"] >= 4
    # over the whole session the grammar fuzzers ran a real share of their inputs (printed with -s)
    print(f"\nexpr fuzz: {TRIED['examples']} inputs, {TRIED['ran']} ran, {TRIED['refused']} refused; "
          f"grammar: {GRAMMAR['ran']} of {GRAMMAR['examples']} ran")
    if GRAMMAR["examples"] >= 100:
        assert GRAMMAR["ran"] > 0.15 * GRAMMAR["examples"], GRAMMAR
