"""Tensor introspection against torch's own answers and hand-worked layouts."""
import pytest
import torch

from core.expr import ExpressionError
from core.settings import Settings
from core.tensors.introspect import (
    Definition,
    broadcast,
    build,
    compare_devices,
    contiguous_plan,
    contiguous_strides,
    inspect,
    relations,
    storage_map,
)


def test_inspect_matches_torch():
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    s = base[:, 1::2]
    info = inspect(s)
    assert (info.shape, info.stride, info.storage_offset) == ((3, 2), (4, 2), 1)
    assert (info.numel, info.element_size, info.nbytes) == (6, 8, 48)
    assert (info.storage_elements, info.storage_bytes, info.is_contiguous) == (12, 96, False)
    assert info.storage_id == base.untyped_storage().data_ptr() and info.dtype == "float64"


def test_storage_map_reading_orders():
    r = torch.arange(12.0).reshape(3, 4)
    assert storage_map(r.T).order == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]  # column by column
    assert storage_map(r[:, 1::2]).order == [1, 3, 5, 7, 9, 11]
    assert storage_map(r[1]).order == [4, 5, 6, 7] and storage_map(r[1]).values == list(map(float, range(12)))
    expanded = storage_map(torch.tensor([7.0, 8.0]).expand(3, 2))
    assert expanded.order == [0, 1, 0, 1, 0, 1] and expanded.repeats
    big = storage_map(torch.zeros(1000), limit=10)
    assert big.truncated and len(big.values) == 10 and big.storage_elements == 1000
    # the map agrees with torch: the value at storage[order[k]] is the k-th element
    t = r.T[1:, ::2]
    m = storage_map(t)
    assert [m.values[k] for k in m.order] == t.reshape(-1).tolist()


def test_views_versus_copies():
    r = torch.arange(6.0).reshape(2, 3)
    names = {"r": r, "v": r.view(-1), "t": r.T, "c": r.T.contiguous(), "n": 3}
    rel = relations(names)
    assert rel["r"] == ["v", "t"] and rel["c"] == [] and "n" not in rel
    assert contiguous_plan(r).startswith("already contiguous")
    assert "copy 6 elements (24 bytes)" in contiguous_plan(r.T) and "(2, 1)" in contiguous_plan(r.T)
    assert contiguous_strides((2, 3, 4)) == torch.zeros(2, 3, 4).stride()


@pytest.mark.parametrize("a,b", [((3, 1), (4,)), ((2, 1, 5), (3, 1)), ((5,), (5,)), ((), (2, 3)), ((0, 1), (1, 4))])
def test_broadcast_matches_torch(a, b):
    got = broadcast(a, b)
    assert got.result == tuple(torch.broadcast_shapes(a, b)) and got.reason == ""


def test_broadcast_failure_names_the_axis():
    got = broadcast((2, 3), (4, 3))
    with pytest.raises(RuntimeError):
        torch.broadcast_shapes((2, 3), (4, 3))
    assert got.result is None and "axis -2: 2 vs 4" in got.reason
    assert got.rows[1] == (3, 3, 3, "equal")


def test_build_first_lesson_and_code_that_reproduces_it():
    defs = [Definition("x", "literal", "[[1, 2], [3, 4]]"),
            Definition("w", "factory", factory="randn", shape=(2, 3), seed=7),
            Definition("a", "factory", factory="arange", shape=(2, 2), low=1.0)]
    ws = build(defs, "y = x + 2\nz = torch.matmul(x, y.T)\nwith torch.no_grad():\n    q = w * 2")
    assert not ws.errors and ws.program_error is None
    assert torch.equal(ws.names["z"], torch.tensor([[11.0, 17.0], [25.0, 39.0]]))
    assert torch.equal(ws.names["w"], torch.randn(2, 3, generator=torch.Generator().manual_seed(7)))
    assert torch.equal(ws.names["a"], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    # the generated plain-PyTorch script, run as real Python, gives the same tensors
    for name in ("z", "w", "q", "a"):
        script = ws.code_for(name).replace(f"print({name})", "")
        scope: dict = {}
        exec(compile(script, "<generated>", "exec"), scope)  # noqa: S102 — our own generated code, not user input
        assert torch.equal(scope[name], ws.names[name]), name
    assert "with torch.no_grad():\n    q = w * 2" in ws.code_for("q")


def test_bad_definitions_are_reported_and_others_survive():
    defs = [Definition("x", "literal", "[[1, 2], [3]]"), Definition("ok", "factory", factory="ones", shape=(2,)),
            Definition("big", "factory", factory="zeros", shape=(10**5, 10**5)),
            Definition("torch", "formula", "ok * 2"), Definition("f", "formula", "ok.numpy()")]
    ws = build(defs, "y = ok +* 1", Settings())
    assert set(ws.errors) == {"x", "big", "torch", "f"} and torch.equal(ws.names["ok"], torch.ones(2))
    assert "TORCHLAB_MAX_TENSOR_ELEMENTS" in ws.errors["big"].message
    assert "whitelist" in ws.errors["f"].message
    assert isinstance(ws.program_error, ExpressionError) and ws.program_error.rule == "syntax"


def test_compare_devices_without_gpu_says_so():
    cmp = compare_devices(64, repeats=3)
    assert cmp.cpu.median_s > 0 and cmp.cpu.repeats == 3
    if not torch.cuda.is_available():
        assert cmp.gpu is None and "No CUDA device" in cmp.gpu_note and cmp.transfers == []
    else:
        assert cmp.gpu is not None and len(cmp.transfers) == 2
