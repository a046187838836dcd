"""One wall-clock deadline and one memory ledger, shared by every evaluation that is handed the same Budget.

The ledger counts what is really alive, not what a name points at:

- tensor storages, each once however many views share it, for as long as anything keeps the storage alive
  (a name, the step history, a tuple being built, a grad_fn's saved tensors): a weak reference per storage
  says when it is freed;
- the tensor objects themselves (`TENSOR_OBJECT_BYTES` each: `a.split(1)` on 10**7 elements is 10**7 of them);
- the Python values a program makes (lists, tuples, strings, big ints), counted when made and never
  subtracted: a program has no loops, so the sum stays bounded by its length and the caps.

Containers get their own size accounting: `items()` is the number of slots a full walk over a value visits,
counting a shared sublist every time it appears (`a = [a, a]` doubles it), so any walk over a value that
passed the cap (`str`, `==`, `max`, converting to a tensor) is bounded.
"""
from __future__ import annotations

import itertools
import sys
import time
import weakref
from typing import Any

from core.settings import Settings, get_settings

TENSOR_OBJECT_BYTES = 640  # a tensor object (Python wrapper + TensorImpl): 10**6 views of one storage use 631 MB
_CONTAINERS = (list, tuple, range, dict)
_TOKENS = itertools.count()


class OverBudget(Exception):
    """A cap was reached inside the ledger; the interpreter turns it into an ExpressionError at its node."""

    def __init__(self, field: str, detail: str):
        super().__init__(detail)
        self.field, self.detail = field, detail


def _leaf_items(value: Any) -> int:
    """What a leaf adds to a walk beyond its slot: long strings and big ints cost more to compare or print."""
    kind = type(value)
    if kind is str:
        return len(value) >> 8
    if kind is int:
        return value.bit_length() >> 12
    return 0


def _children(value: Any) -> Any:
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    return () if isinstance(value, range) else value


class Budget:
    """`deadline` (perf_counter seconds) and the memory ledger of one user action; pass it to several calls to
    make them share one budget (a program, its gradient field and its gradient check)."""

    def __init__(self, settings: Settings | None = None, seconds: float | None = None):
        self.settings = settings or get_settings()
        self.deadline = time.perf_counter() + (self.settings.expr_timeout_s if seconds is None else seconds)
        self.python_bytes = 0  # Python values made (cumulative; see the module docstring)
        self.op_s = 0.0  # seconds spent inside real tensor ops (what a backward pass will roughly repeat)
        self.peak_bytes = 0
        self._storages: dict[int, tuple[Any, int]] = {}  # storage pointer -> (StorageWeakRef, nbytes)
        self._objects: dict[int, Any] = {}  # id -> weak reference of each tensor object seen (drops itself)
        self._token = ""  # marks the grad_fns walked (in their metadata dict); made when first needed
        self._saved_attrs: dict[type, list[str]] = {}
        self._memo: dict[int, tuple[Any, int, bool]] = {}  # id -> (container, items, holds tensors)

    # ------------------------------------------------------------------ time
    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def extend(self, seconds: float) -> None:
        """Give back time spent on something that is not the user's (a one-off library load)."""
        self.deadline += seconds

    def check_time(self) -> None:
        if time.perf_counter() > self.deadline:
            raise OverBudget("expr_timeout_s", "the formula ran past its wall-clock budget")

    # ------------------------------------------------------------------ containers
    def items(self, value: Any) -> int:
        """Slots a full walk over `value` visits (0 for a non-container); refuses past max_container_items."""
        if not isinstance(value, _CONTAINERS):
            return 0
        hit = self._memo.get(id(value))
        if hit is not None:
            return hit[1]
        self._weigh(value)
        return self._memo[id(value)][1]

    def weight(self, value: Any) -> int:
        """What `value` adds to a walk over a container holding it, beyond its slot."""
        return self.items(value) if isinstance(value, _CONTAINERS) else _leaf_items(value)

    def holds_tensors(self, value: Any) -> bool:
        if not isinstance(value, _CONTAINERS):
            return _is_tensor(value)
        self.items(value)
        return self._memo[id(value)][2]

    def note(self, value: Any, items: int, tensors: bool, nbytes: int | None = None) -> None:
        """Record a container the interpreter built from parts it knows (no walk); refuses past the cap.

        `nbytes`: what it holds in new Python objects, when more than its own slots (x.tolist()'s floats)."""
        self._limit(items)
        self._memo[id(value)] = (value, items, tensors)
        self.python_bytes += sys.getsizeof(value) if nbytes is None else nbytes

    def _limit(self, items: int) -> None:
        cap = self.settings.max_container_items
        if items > cap:
            raise OverBudget("max_container_items", f"lists and tuples here would hold {items:,} items "
                                                    "(a shared sublist counts each time it appears)")

    def _weigh(self, root: Any) -> None:
        """Post-order walk over containers not seen before (each distinct object once), with the deadline."""
        memo, stack, steps = self._memo, [(root, False)], 0
        while stack:
            node, done = stack.pop()
            if id(node) in memo:
                continue
            kids = _children(node)
            steps += len(kids)
            if steps > 1 << 14:
                steps = 0
                self.check_time()
            if not done:
                stack.append((node, True))
                stack.extend((k, False) for k in kids if isinstance(k, _CONTAINERS) and id(k) not in memo)
                continue
            total, tensors, extra = len(node), False, 0
            for k in kids:
                if isinstance(k, _CONTAINERS):
                    _, n, t = memo[id(k)]
                    total += n
                    tensors = tensors or t
                elif _is_tensor(k):
                    tensors = True
                else:
                    total += _leaf_items(k)
                    extra += sys.getsizeof(k) if type(k) in (str, int, float, complex) else 0
                if total > self.settings.max_container_items:
                    self._limit(total)
            memo[id(node)] = (node, total, tensors)
            self.python_bytes += sys.getsizeof(node) + extra

    def tensors_in(self, value: Any) -> list:
        """The distinct tensors in a value or a (nested, shared) container, each container visited once."""
        if _is_tensor(value):
            return [value]
        if not isinstance(value, _CONTAINERS) or not self.holds_tensors(value):
            return []
        out, seen, stack = [], set(), [value]
        while stack:
            node = stack.pop()
            for k in _children(node):
                if _is_tensor(k):
                    if id(k) not in seen:
                        seen.add(id(k))
                        out.append(k)
                elif isinstance(k, _CONTAINERS) and id(k) not in seen and self._memo[id(k)][2]:
                    seen.add(id(k))
                    stack.append(k)
        return out

    # ------------------------------------------------------------------ memory
    def track(self, value: Any) -> None:
        """Note the tensors in `value`: their storages, the objects, and what their grad_fns saved."""
        self.track_tensors(self.tensors_in(value))

    def track_tensors(self, tensors: list) -> None:
        for t in tensors:
            if t.device.type == "meta":
                continue
            if id(t) not in self._objects:  # (a WeakSet would compare tensors with ==)
                self._objects[id(t)] = weakref.ref(t, lambda _, k=id(t), d=self._objects: d.pop(k, None))
            self._storage(t)
            if t.grad_fn is not None:
                self._token = self._token or f"torchlab-budget-{next(_TOKENS)}"
                if self._token not in t.grad_fn.metadata:
                    self._graph(t.grad_fn)

    def _storage(self, t: Any) -> None:
        from torch.multiprocessing.reductions import StorageWeakRef

        st = t.untyped_storage()
        ref = StorageWeakRef(st)
        if ref.cdata not in self._storages:
            self._storages[ref.cdata] = (ref, st.nbytes())

    def _graph(self, root: Any) -> None:
        """Walk grad_fns not walked before; count the storages of the tensors they saved for backward."""
        import torch

        stack = [root]
        while stack:
            fn = stack.pop()
            if fn is None or self._token in fn.metadata:
                continue
            fn.metadata[self._token] = True  # a node cannot be weakly referenced, and a strong one keeps it alive
            kind = type(fn)
            if kind not in self._saved_attrs:
                self._saved_attrs[kind] = [a for a in dir(fn) if a.startswith("_saved_")]
            for attr in self._saved_attrs[kind]:
                try:
                    saved = getattr(fn, attr)
                except RuntimeError:  # freed by a backward pass
                    continue
                for s in saved if isinstance(saved, (list, tuple)) else (saved,):
                    if isinstance(s, torch.Tensor) and s.device.type != "meta":
                        self._storage(s)
            stack.extend(nxt for nxt, _ in fn.next_functions)

    def held_bytes(self) -> int:
        """Bytes alive now: live storages once each, tensor objects, and the Python values made."""
        dead = [k for k, (ref, _) in self._storages.items() if ref.expired()]
        for k in dead:
            del self._storages[k]
        objects = len(self._objects) * TENSOR_OBJECT_BYTES
        total = sum(n for _, n in self._storages.values()) + objects + self.python_bytes
        self.peak_bytes = max(self.peak_bytes, total)
        return total

    def check_bytes(self, extra: int = 0) -> None:
        """Refuse when what is held (plus `extra` about to be made) passes max_total_bytes."""
        total = self.held_bytes() + extra
        if total > self.settings.max_total_bytes:
            raise OverBudget("max_total_bytes", f"the program would hold {total:,} bytes")


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)
