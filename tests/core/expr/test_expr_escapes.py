"""Sandbox-escape corpus: every attempt must raise ExpressionError and leave no trace on disk."""
from __future__ import annotations

import pytest
import torch

from core.expr import ExpressionError, run

CANARY = "CANARY"  # replaced by a path inside tmp_path in each test

ATTEMPTS = [
    # class-hierarchy walks
    "().__class__.__bases__[0].__subclasses__()",
    "''.__class__.__mro__[1].__subclasses__()",
    "[].__class__.__base__.__subclasses__()",
    "x.__class__.__mro__",
    "x[0].__class__",
    "x.shape.__class__",
    "[x][0].__class__.__init__.__globals__",
    "torch.tensor(1).__class__.__subclasses__()",
    "x.__reduce_ex__(2)",
    "x.__setattr__('a', 1)",
    "x.dtype.__reduce__()",
    # builtins recovery
    "__import__('os').system('touch CANARY')",
    "__builtins__",
    "torch.__builtins__",
    "torch.__dict__['load']('CANARY')",
    "len.__self__",
    "str.__dict__",
    "str.maketrans('a', 'b')",
    "open('CANARY', 'w')",
    "eval('1')",
    "exec(\"open('CANARY', 'w')\")",
    "compile('1', 'x', 'eval')",
    "getattr(torch, 'load')('CANARY')",
    "vars(torch)",
    "globals()",
    "locals()",
    "dir(torch)",
    "type(x)",
    "breakpoint()",
    "input()",
    "help(torch)",
    # frames through generators, lambdas, comprehensions
    "(g for g in [1]).gi_frame.f_globals",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "{k: 1 for k in 'ab'}",
    "(lambda: open('CANARY', 'w'))()",
    "(y := open('CANARY', 'w'))",
    # format-string tricks
    "f'{x.__class__}'",
    "'{0.__class__}'.format(x)",
    "'{.__globals__}'.format(len)",
    "'%s' % x",
    "'{x}'.format_map(y)",
    # star-args and call tricks
    "max(*[1, 2])",
    "torch.zeros(**opts)",
    "x.to(out=x)",
    "torch.add(x, x, out=x)",
    "(x.view)(-1).__class__",
    "x.sum.__self__",
    "x.view.__func__",
    "x.new_tensor.__call__([1])",
    # torch's file, pickle and native entry points
    "torch.load('CANARY')",
    "torch.save(x, 'CANARY')",
    "torch.hub.load('owner/repo', 'model')",
    "torch.from_file('CANARY', size=1)",
    "torch.ops.aten.add(x, x)",
    "torch.classes",
    "torch.utils.data",
    "torch._C._get_tracing_state()",
    "torch.serialization.save(x, 'CANARY')",
    "torch.jit.load('CANARY')",
    "torch.package",
    "torch.multiprocessing",
    "torch.backends",
    "torch.set_default_device('cpu')",
    "torch.compile(x)",
    "torch.nn.Module()",
    "torch.nn.functional.torch",
    "torch.linalg.torch",
    "x.numpy()",
    "x.storage()",
    "x.untyped_storage().fill_(0)",
    "x.storage().fill_(0)",
    "x.register_hook(len)",
    "x.apply_(len)",
    "x.grad_fn.next_functions",
    "x.backward()",
    "x.type('torch.FloatTensor')",
    "torch.manual_seed(0).get_state()",
    # unicode look-alikes (Python NFKC-normalises identifiers)
    "\uff4f\uff50\uff45\uff4e('CANARY', 'w')",
    "\uff3f\uff3fimport\uff3f\uff3f('os')",
    "x.\uff3f\uff3fclass\uff3f\uff3f",
    "\U0001d428\U0001d429\U0001d41e\U0001d427('CANARY')",
    "torch.\U0001d425\U0001d428\U0001d41a\U0001d41d('CANARY')",
    # statements outside the language
    "import os",
    "from os import system",
    "with open('CANARY', 'w') as f:\n    f.write('x')",
    "def f():\n    return 1",
    "class A:\n    pass",
    "for i in range(3):\n    y = i",
    "while True:\n    y = 1",
    "try:\n    y = 1\nexcept Exception:\n    y = 2",
    "global x",
    "del x",
    "x += 1",
    "a, b = 1, 2",
    "x.attr = 1",
    "yield x",
    "async def f():\n    await x",
    # rebinding and smuggling functions or modules
    "torch = x",
    "f = torch.load",
    "t = torch\ny = t.load('CANARY')",
    "m = torch.nn\ny = m",
    "len = 3",
    "v = x.view",
    "z = str",
    # parser abuse
    "1\x00",
    "(" * 500 + "1" + ")" * 500,
    "b'bytes'",
]


@pytest.mark.parametrize("source", ATTEMPTS)
def test_escape_attempt_is_refused(source, tmp_path):
    canary = tmp_path / "canary.txt"
    names = {"x": torch.ones(2, requires_grad=False), "y": {"x": 1}, "opts": {"size": (2,)}}
    with pytest.raises(ExpressionError) as info:
        run(source.replace(CANARY, str(canary)), names)
    assert info.value.message and info.value.line >= 1 and info.value.col >= 1
    assert not canary.exists()
    assert list(tmp_path.iterdir()) == []


def test_corpus_is_large_enough():
    assert len(set(ATTEMPTS)) >= 60


def test_refusals_name_the_rule():
    with pytest.raises(ExpressionError, match="whitelist") as info:
        run("y = torch.load('x')")
    assert info.value.rule == "attributes" and info.value.col == 11
    with pytest.raises(ExpressionError, match="dunder") as info:
        run("y = x.__class__", {"x": 1})
    assert info.value.rule == "dunder"
    with pytest.raises(ExpressionError, match="imports are not allowed"):
        run("import os")


def test_caller_names_are_not_mutated_by_rebinding():
    names = {"x": torch.ones(2)}
    out = run("x = x + 1", names)
    assert torch.equal(names["x"], torch.ones(2)) and torch.equal(out["x"], torch.full((2,), 2.0))
