"""The grad_fn graph as data: a recorder noting every grad_fn while a program runs, and nodes and edges built from it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

NODE_CAP = 300  # past this many nodes the page collapses the graph and says so


_CLIP = 2048  # forward values / gradients kept for display are cut to this many elements


@dataclass
class SavedTensor:
    """One tensor a grad_fn keeps alive for backward."""

    attr: str  # the grad_fn attribute without `_saved_`, e.g. "self", "other", "mat1"
    shape: tuple[int, ...]
    dtype: str
    nbytes: int


@dataclass
class GraphNode:
    """A tensor or a grad_fn of the autograd graph."""

    id: str  # stable across reruns of the same program (derived from program order)
    kind: str  # "leaf", "tensor" (named non-leaf) or "grad_fn"
    label: str  # the variable name, or the grad_fn's torch class name (MulBackward0, AccumulateGrad…)
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    value: Any = None  # forward value (detached CPU tensor) where known
    grad: Any = None  # tensors: .grad; grad_fn: the gradient that arrived at its output in backward
    saved: list[SavedTensor] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # other variable names bound to the same tensor
    group: str = ""  # the statement (programs) or module path (nn.Module) that made it
    step: int | None = None  # position in the engine's backward order, 1-based

    @property
    def saved_bytes(self) -> int:
        return sum(s.nbytes for s in self.saved)


@dataclass
class GraphEdge:
    """Forward direction: src feeds dst; backward sends gradients from dst to src."""

    src: str
    dst: str
    kind: str  # "next" (grad_fn->grad_fn), "output" (grad_fn->its tensor), "input", "leaf", "cut"
    label: str = ""


def _tensors(obj: Any) -> list:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def recorder(scope: Callable[[], str] | None = None):
    """A TorchFunctionMode noting every grad_fn in creation order, its forward value, leaves and cuts."""
    from torch.overrides import TorchFunctionMode

    class Recorder(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.fns: dict[Any, int] = {}  # grad_fn -> creation index (program order)
            self.groups: dict[Any, str] = {}  # grad_fn -> scope (module path) it was made in
            self.outputs: dict[tuple[Any, int], Any] = {}  # (grad_fn, output_nr) -> (shape, dtype, clipped value)
            self.leaves: list = []  # tensors requiring grad with no grad_fn, in creation order
            self.cuts: dict[int, tuple[str, list, Any]] = {}  # id(tensor) -> (why, sources, tensor)
            self.cut_uses: list[tuple[Any, str, list]] = []  # (consumer grad_fn, why, sources)

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            inputs = _tensors(args) + _tensors(kwargs or {})
            for r in _tensors(out):
                if not r.is_meta:  # core.expr dry-runs each op on the meta device first
                    self._note(getattr(func, "__name__", ""), r, inputs)
            return out

        def _note(self, name: str, r, inputs: list) -> None:
            fn = r.grad_fn
            if fn is not None:
                if fn not in self.fns:
                    self.fns[fn] = len(self.fns)
                    self.groups[fn] = scope() if scope else ""
                    for x in inputs:
                        if id(x) in self.cuts:
                            why, sources, _ = self.cuts[id(x)]
                            self.cut_uses.append((fn, why, sources))
                # shape, dtype and a clipped copy: holding the value itself would keep every temporary alive
                self.outputs[(fn, r.output_nr)] = (tuple(r.shape), str(r.dtype)[6:], _clip(r))
            elif r.requires_grad:
                if not any(r is t for t in self.leaves):
                    self.leaves.append(r)
            else:
                why = _cut_reason(name, inputs)
                if why:
                    self.cuts[id(r)] = (why, [x for x in inputs if x.requires_grad], r)

    return Recorder()


def _cut_reason(func_name: str, inputs: list) -> str | None:
    """Why an op's result without grad_fn left the graph although an input requires grad."""
    import torch

    if not any(x.requires_grad for x in inputs):
        return None
    if func_name in ("detach", "__get__"):  # __get__: the .data property
        return "detach()"
    return None if torch.is_grad_enabled() else "torch.no_grad()"


def _clip(t: Any) -> Any:
    """A small copy for display: a view would keep the whole (possibly huge) storage alive."""
    if t is None:
        return None
    t = t.detach()
    return (t if t.numel() <= _CLIP else t.flatten()[:_CLIP]).to("cpu", copy=True)


def _saved(fn: Any) -> tuple[list[SavedTensor], list[tuple[int, int]]]:
    """Saved tensors of a grad_fn, and (storage pointer, bytes) to count each storage once."""
    import torch

    saved, storages = [], []
    for attr in dir(fn):
        if not attr.startswith("_saved_"):
            continue
        try:
            v = getattr(fn, attr)
        except RuntimeError:  # already freed by a backward without retain_graph
            continue
        items = [(attr[7:], v)] if isinstance(v, torch.Tensor) else (
            [(f"{attr[7:]}[{i}]", x) for i, x in enumerate(v) if isinstance(x, torch.Tensor)]
            if isinstance(v, (list, tuple)) else [])
        for name, t in items:
            saved.append(SavedTensor(name, tuple(t.shape), str(t.dtype).replace("torch.", ""),
                                     t.numel() * t.element_size()))
            st = t.untyped_storage()
            storages.append((st.data_ptr(), st.nbytes()))
    return saved, storages


def build_graph(output: Any, names: dict[str, Any], rec: Any = None) -> tuple[list[GraphNode], list[GraphEdge], int]:
    """Nodes and edges of everything `output` was computed from; returns (nodes, edges, saved bytes)."""
    nodes, edges, saved_bytes, _, _ = _build(output, names, rec)
    return nodes, edges, saved_bytes


def _build(output: Any, names: dict[str, Any], rec: Any) -> tuple:
    """build_graph plus grad_fn -> node id and node id -> tensor (for hooks and .grad)."""
    import torch

    tensors = [(k, v) for k, v in names.items() if isinstance(v, torch.Tensor)]
    fns, stack, seen = [], [output.grad_fn] if output.grad_fn is not None else [], set()
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        fns.append(fn)
        stack.extend(nxt for nxt, _ in reversed(fn.next_functions) if nxt is not None)
    order = rec.fns if rec is not None else {}
    found = {f: i for i, f in enumerate(fns)}
    fns.sort(key=lambda f: order.get(f, len(order) + found[f]))

    nodes: dict[str, GraphNode] = {}
    leaf_ids: list[tuple[Any, str]] = []  # (leaf tensor, node id)
    produced: dict[tuple[Any, int], str] = {}  # (grad_fn, output_nr) -> named tensor node id

    def tensor_node(t: Any, kind: str, default_id: str) -> str:
        named = [k for k, v in tensors if v is t]
        nid = f"t:{named[0]}" if named else default_id
        if nid not in nodes:
            nodes[nid] = GraphNode(nid, kind, named[0] if named else "(unnamed leaf)", tuple(t.shape),
                                   str(t.dtype).replace("torch.", ""), _clip(t), aliases=named[1:])
        return nid

    def leaf_node(t: Any) -> str:
        for leaf, nid in leaf_ids:
            if leaf is t:
                return nid
        k = next((i for i, x in enumerate(rec.leaves) if x is t), len(leaf_ids)) if rec else len(leaf_ids)
        nid = tensor_node(t, "leaf", f"leaf{k}")
        leaf_ids.append((t, nid))
        return nid

    # grad_fns made inside C++ ops (e.g. the TBackward0 inside F.linear) were never seen by the recorder:
    # they take their id and group from the node that consumes them
    consumer = {nxt: (fn, j) for fn in reversed(fns) for j, (nxt, _) in enumerate(fn.next_functions) if nxt}
    groups = rec.groups if rec is not None else {}
    fn_ids: dict[Any, str] = {}

    def ident(fn: Any) -> tuple[str, str]:
        if fn in order:
            return f"fn{order[fn]}", groups.get(fn, "")
        if fn not in consumer:
            return "root", ""
        parent, j = consumer[fn]
        pid, group = ident(parent)
        return f"{pid}.{j}", group

    for fn in fns:
        label = type(fn).__name__
        nid, group = ident(fn)
        fn_ids[fn] = f"acc:{leaf_node(fn.variable)}" if label == "AccumulateGrad" else nid
        node = GraphNode(fn_ids[fn], "grad_fn", label, group=group if label != "AccumulateGrad" else "")
        seen = rec.outputs.get((fn, 0)) if rec else None
        if seen is not None:
            node.shape, node.dtype, node.value = seen
        nodes[node.id] = node
    for k, t in tensors:  # named non-leaf tensors, in program order
        if t.grad_fn in fn_ids and (t.grad_fn, t.output_nr) not in produced:
            produced[(t.grad_fn, t.output_nr)] = tensor_node(t, "tensor", f"t:{k}")

    edges: list[GraphEdge] = []
    storages: dict[int, int] = {}
    for fn in fns:
        node = nodes[fn_ids[fn]]
        node.saved, st = _saved(fn)
        storages.update(st)
        if node.label == "AccumulateGrad":
            edges.append(GraphEdge(leaf_node(fn.variable), node.id, "leaf"))
        for nxt, nr in fn.next_functions:
            if nxt is None:
                continue
            if (nxt, nr) in produced:
                edges.append(GraphEdge(produced[(nxt, nr)], node.id, "input"))
            else:
                edges.append(GraphEdge(fn_ids[nxt], node.id, "next"))
    for (fn, _), tid in produced.items():
        edges.append(GraphEdge(fn_ids[fn], tid, "output"))
    if output.grad_fn is None and output.requires_grad:  # backward from a leaf itself
        leaf_node(output)
    if rec is not None:
        edges.extend(_cut_edges(rec, fn_ids, produced, leaf_ids))
    _assign_statements(nodes, fns, fn_ids, produced, order)
    tensor_of = {nid: t for t, nid in leaf_ids}
    tensor_of.update({tid: next(t for k, t in tensors if f"t:{k}" == tid) for tid in produced.values()})
    return list(nodes.values()), edges, sum(storages.values()), fn_ids, tensor_of


def _cut_edges(rec: Any, fn_ids: dict, produced: dict, leaf_ids: list) -> list[GraphEdge]:
    """Dashed edges where a value was used without its gradient (detach / no_grad)."""
    out = []
    for consumer, why, sources in rec.cut_uses:
        if consumer not in fn_ids:
            continue
        for s in sources:
            src = next((nid for leaf, nid in leaf_ids if leaf is s), None)
            if src is None and s.grad_fn is not None:
                src = produced.get((s.grad_fn, s.output_nr)) or fn_ids.get(s.grad_fn)
            if src is not None:
                out.append(GraphEdge(src, fn_ids[consumer], "cut", why))
    return out


def _assign_statements(nodes: dict, fns: list, fn_ids: dict, produced: dict, order: dict) -> None:
    """Group each unnamed grad_fn with the first named tensor made after it (its statement)."""
    marks = sorted((order.get(fn, -1), nodes[tid].label) for (fn, _), tid in produced.items())
    for fn in fns:
        node = nodes[fn_ids[fn]]
        if node.group or node.label == "AccumulateGrad":
            continue
        node.group = next((name for idx, name in marks if idx >= order.get(fn, -1)), "")
