"""Tensor introspection for the playground: properties, storage layout, views vs copies, broadcasting.

Everything returns plain data (numbers, lists, strings) that a component can draw; torch is imported
inside functions so `import core.tensors` stays cheap.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.expr import Budget, ExpressionError, Step, cap_message, evaluate, trace
from core.expr.budget import OverBudget
from core.settings import Settings, get_settings

FACTORIES = ("zeros", "ones", "full", "arange", "linspace", "eye", "rand", "randn", "randint")
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
          "complex64")
MAX_STRIP_CELLS = 256  # a storage strip wider than this is drawn for its first cells only


@dataclass
class TensorInfo:
    """What `x.shape`, `x.stride()`, … say about one tensor, as plain values."""

    shape: tuple[int, ...]
    dtype: str
    device: str
    requires_grad: bool
    stride: tuple[int, ...]
    storage_offset: int
    is_contiguous: bool
    numel: int
    element_size: int
    nbytes: int
    storage_elements: int  # elements in the underlying storage (more than numel for a slice)
    storage_bytes: int
    storage_id: int  # equal ids = the same storage (a view relation)


def inspect(t: Any) -> TensorInfo:
    """The properties the playground shows for every tensor."""
    storage = t.untyped_storage()
    size = max(t.element_size(), 1)
    return TensorInfo(
        shape=tuple(t.shape), dtype=str(t.dtype).removeprefix("torch."), device=str(t.device),
        requires_grad=t.requires_grad, stride=tuple(t.stride()), storage_offset=t.storage_offset(),
        is_contiguous=t.is_contiguous(), numel=t.numel(), element_size=t.element_size(),
        nbytes=t.numel() * t.element_size(), storage_elements=storage.nbytes() // size,
        storage_bytes=storage.nbytes(), storage_id=storage.data_ptr(),
    )


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major strides for `shape`: what `.contiguous()` produces."""
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= max(n, 1)
    return tuple(reversed(out))


@dataclass
class StorageMap:
    """The storage as a strip of cells, and which cells the tensor reads in its logical order."""

    values: list[Any]  # storage contents (first MAX_STRIP_CELLS)
    order: list[int]  # storage index of the tensor's 0th, 1st, … element (row-major over its shape)
    storage_elements: int
    truncated: bool
    repeats: bool  # some cell is read more than once (stride 0: expand / broadcast views)


def storage_map(t: Any, limit: int = MAX_STRIP_CELLS) -> StorageMap:
    """Map each logical element of `t` to the storage cell it reads (via `as_strided` on the cell indices)."""
    import torch

    info = inspect(t)
    n = info.storage_elements
    shown = min(n, limit)
    flat = t.detach().new_empty(0).set_(t.untyped_storage(), 0, (n,), (1,)) if n else t.detach().reshape(-1)
    values = flat[:shown].cpu().tolist() if t.dtype != torch.bfloat16 else flat[:shown].float().cpu().tolist()
    k = min(t.numel(), limit * 4) if n else 0  # the first k logical elements only: O(k), not O(storage)
    coords = torch.unravel_index(torch.arange(k), tuple(t.shape)) if t.ndim else ()
    offsets = t.storage_offset() + sum((c * s for c, s in zip(coords, t.stride(), strict=True)),
                                       torch.zeros(k, dtype=torch.long))
    order = offsets.tolist() if t.ndim else [t.storage_offset()][:k]
    return StorageMap(values, order, n, n > limit, len(set(order)) < len(order))


def shares_storage(a: Any, b: Any) -> bool:
    """True if the two tensors read the same memory (one is a view of the other, or both of a third)."""
    return a.device == b.device and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def relations(names: Mapping[str, Any]) -> dict[str, list[str]]:
    """For each tensor, the other names it shares storage with."""
    tensors = {k: v for k, v in names.items() if _is_tensor(v)}
    return {k: [o for o, w in tensors.items() if o != k and shares_storage(v, w)] for k, v in tensors.items()}


def summary(names: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per tensor: the properties table of the playground, plus what shares its storage."""
    rel = relations(names)
    rows = []
    for k, t in names.items():
        if not _is_tensor(t):
            continue
        i = inspect(t)
        rows.append({"name": k, "shape": str(i.shape), "dtype": i.dtype, "device": i.device,
                     "requires_grad": i.requires_grad, "stride()": str(i.stride), "storage_offset()": i.storage_offset,
                     "is_contiguous()": i.is_contiguous, "numel": i.numel, "element_size": i.element_size,
                     "bytes": i.nbytes, "shares storage with": ", ".join(rel[k]) or "—"})
    return rows


def contiguous_plan(t: Any) -> str:
    """What `.contiguous()` would do to this tensor, in words."""
    info = inspect(t)
    if info.is_contiguous:
        return "already contiguous: .contiguous() returns this same tensor, nothing is copied"
    return (f".contiguous() would copy {info.numel} elements ({info.nbytes} bytes) into a new storage, in the "
            f"order marked on the strip, giving strides {contiguous_strides(info.shape)} instead of {info.stride}")


@dataclass
class Broadcast:
    """How two shapes align for an elementwise op (right-aligned), and the result or why not."""

    a: tuple[int, ...]
    b: tuple[int, ...]
    rows: list[tuple[int | None, int | None, int | None, str]]  # (a dim, b dim, result dim, note) per axis
    result: tuple[int, ...] | None
    reason: str


def broadcast(a: Sequence[int], b: Sequence[int]) -> Broadcast:
    """Broadcasting rules of `a + b`, axis by axis from the right."""
    a, b = tuple(a), tuple(b)
    n = max(len(a), len(b))
    pa, pb = (None,) * (n - len(a)) + a, (None,) * (n - len(b)) + b
    rows, bad = [], []
    for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
        if x is None or y is None:
            size, note = (y if x is None else x), "missing on one side: treated as 1 and stretched"
        elif x == y:
            size, note = x, "equal"
        elif 1 in (x, y):
            size, note = (y if x == 1 else x), "size 1 is stretched (stride 0, no copy)"
        else:
            size, note = None, "mismatch: neither is 1"
            bad.append(f"axis {i - n}: {x} vs {y}")
        rows.append((x, y, size, note))
    if bad:
        return Broadcast(a, b, rows, None, f"shapes {a} and {b} do not broadcast ({'; '.join(bad)})")
    return Broadcast(a, b, rows, tuple(r[2] for r in rows), "")


# ---------------------------------------------------------------- named tensors and programs


@dataclass
class Definition:
    """One named tensor of the session: by `literal` text, a `factory` call, or a `formula`."""

    name: str
    kind: str  # "literal" | "factory" | "formula"
    text: str = ""  # the literal or formula
    factory: str = "randn"
    shape: tuple[int, ...] = (2, 3)
    dtype: str = "float32"
    seed: int = 0
    fill: float = 0.0  # full's value; arange/linspace/randint use low/high
    low: float = 0.0
    high: float = 10.0
    requires_grad: bool = False

    def code(self) -> str:
        """The plain PyTorch line(s) that make this tensor."""
        grad_ok = self.requires_grad and self.dtype.startswith(("float", "bfloat", "complex"))
        rg = ", requires_grad=True" if grad_ok else ""
        rg_after = ".requires_grad_()" if grad_ok else ""
        dt = f"dtype=torch.{self.dtype}"
        if self.kind == "literal":
            return f"{self.name} = torch.tensor({self.text.strip()}, {dt}{rg})"
        if self.kind == "formula":
            return f"{self.name} = {self.text.strip()}"
        shape = ", ".join(map(str, self.shape)) + ("," if len(self.shape) == 1 else "")
        numel = _prod(self.shape)
        seeded = self.factory in {"rand", "randn", "randint"}
        gen = f"g = torch.Generator().manual_seed({self.seed})\n" if seeded else ""
        gk = ", generator=g" if seeded else ""
        call = {
            "zeros": f"torch.zeros({shape}, {dt}{rg})", "ones": f"torch.ones({shape}, {dt}{rg})",
            "full": f"torch.full(({shape}), {self.fill!r}, {dt}{rg})",
            "arange": f"torch.arange({self.low!r}, {self.low + numel!r}, {dt}).reshape({shape}){rg_after}",
            "linspace": f"torch.linspace({self.low!r}, {self.high!r}, {numel}, {dt}).reshape({shape}){rg_after}",
            "eye": f"torch.eye({self.shape[0]}, {self.shape[-1]}, {dt}{rg})",
            "rand": f"torch.rand({shape}{gk}, {dt}{rg})", "randn": f"torch.randn({shape}{gk}, {dt}{rg})",
            "randint": f"torch.randint({int(self.low)}, {int(self.high)}, ({shape}){gk}, {dt})",
        }[self.factory]
        return f"{gen}{self.name} = {call}"


@dataclass
class Workspace:
    """The session's tensors after defining and running: values, errors per definition, program steps."""

    names: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, ExpressionError] = field(default_factory=dict)  # definition name -> why it failed
    program_error: ExpressionError | None = None
    steps: list[Step] = field(default_factory=list)
    code: str = ""
    definition_code: list[str] = field(default_factory=list)  # the definitions that built, in order

    def code_for(self, name: str) -> str:
        """A plain PyTorch script that reproduces `name`: definitions, program lines up to it, a print."""
        lines = ["import torch", "import torch.nn.functional as F", "", *self.definition_code]
        last = max((i for i, s in enumerate(self.steps) if s.target == name), default=-1)
        if last >= 0:
            lines.append("")
            lines += [("with torch.no_grad():\n    " if s.no_grad else "") + s.source for s in self.steps[: last + 1]]
        return "\n".join([*lines, f"print({name})", ""])


def build(definitions: Sequence[Definition], program: str, settings: Settings | None = None,
          budget: Budget | None = None) -> Workspace:
    """Make every definition (each through the safe language), then run the program on top of them.

    All of it shares one `budget`: one wall-clock deadline and one memory ledger for the page's action.
    """
    settings = settings or get_settings()
    budget = budget or Budget(settings)
    ws = Workspace()
    lines = ["import torch", ""]
    for d in definitions:
        try:
            ws.names[d.name] = make(d, ws.names, settings, budget)
            lines.append(d.code())
            ws.definition_code.append(d.code())
        except ExpressionError as e:
            ws.errors[d.name] = e
    if program.strip():
        import torch

        try:  # F is bound as in most tutorials: `import torch.nn.functional as F`
            ws.names, ws.steps = trace(program, {**ws.names, "F": torch.nn.functional}, settings=settings,
                                       budget=budget)
            lines += ["", program.strip()]
        except ExpressionError as e:
            ws.program_error = e
    ws.names.pop("F", None)
    if any(s.source and "F." in s.source for s in ws.steps):
        lines.insert(1, "import torch.nn.functional as F")
    ws.code = "\n".join(lines) + "\n"
    return ws


def make(d: Definition, names: Mapping[str, Any], settings: Settings, budget: Budget | None = None) -> Any:
    """One definition's tensor; literals and formulas go through the expression language and its caps.

    A literal's conversion to a tensor is a call of the language too (`torch.tensor(data, …)`), so its size
    is checked before converting and the result counts in the budget's memory ledger.
    """
    import torch

    budget = budget or Budget(settings)

    if not d.name.isidentifier() or d.name.startswith("_") or d.name in {"torch", "F"}:
        raise ExpressionError(f"{d.name!r} is not a usable name (letters, digits, _; not torch or F)",
                              rule="names")
    if d.kind == "formula":
        value = evaluate(d.text, dict(names), settings=settings, budget=budget)
        if not _is_tensor(value):
            raise ExpressionError(f"{d.name} = {type(value).__name__}, not a tensor", rule="runtime")
        return value
    dtype = getattr(torch, d.dtype)
    if d.kind == "literal":
        data = evaluate(d.text, dict(names), settings=settings, budget=budget)
        convert = "data.detach().to(dtype=dtype, copy=True).requires_grad_(grad)" if _is_tensor(data) else \
            "torch.tensor(data, dtype=dtype, requires_grad=grad)"  # a tensor is copied, as torch.tensor(t) would
        try:
            return evaluate(convert, {"data": data, "dtype": dtype, "grad": d.requires_grad}, settings=settings,
                            budget=budget)
        except ExpressionError as e:
            raise ExpressionError(f"{d.name}: cannot make a {d.dtype} tensor from this literal: "
                                  f"{e.message.split(' failed: ')[-1]}", rule=e.rule) from None
    numel = _prod(d.shape)
    if numel > settings.max_tensor_elements or min(d.shape, default=1) < 0:
        raise ExpressionError(cap_message(settings, "max_tensor_elements", f"shape {d.shape} has {numel:,} "
                                                                           "elements"), rule="cap")
    itemsize = torch.empty(0, dtype=dtype).element_size()
    try:
        budget.check_bytes(numel * itemsize)
    except OverBudget as e:
        raise ExpressionError(cap_message(settings, e.field, f"{d.name}: {e.detail}"), rule="cap") from None
    try:
        t = _factory(d, dtype, numel)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ExpressionError(f"{d.name}: torch.{d.factory} failed: {e}", rule="runtime") from None
    budget.track(t)
    return t


def _factory(d: Definition, dtype: Any, numel: int) -> Any:
    import torch

    g = torch.Generator().manual_seed(d.seed)
    rg = d.requires_grad and (dtype.is_floating_point or dtype.is_complex)
    if d.factory in {"zeros", "ones", "rand", "randn"}:
        kw = {"generator": g} if d.factory in {"rand", "randn"} else {}
        return getattr(torch, d.factory)(d.shape, dtype=dtype, requires_grad=rg, **kw)
    if d.factory == "full":
        return torch.full(d.shape, d.fill, dtype=dtype, requires_grad=rg)
    if d.factory == "randint":
        return torch.randint(int(d.low), int(d.high), d.shape, generator=g, dtype=dtype)
    if d.factory == "eye":
        return torch.eye(d.shape[0], d.shape[-1], dtype=dtype, requires_grad=rg)
    flat = (torch.arange(d.low, d.low + numel, dtype=dtype) if d.factory == "arange"
            else torch.linspace(d.low, d.high, numel, dtype=dtype))
    return flat.reshape(d.shape).requires_grad_(rg)


def _is_tensor(v: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(v, torch.Tensor)


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


# ---------------------------------------------------------------- CPU vs GPU timings


@dataclass
class Timing:
    """Median seconds over repeats (after warm-up) of one measured operation."""

    label: str
    median_s: float
    repeats: int


def _median_time(fn: Any, repeats: int, warmup: int, sync: Any = None) -> float:
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if sync:
            sync()  # CUDA kernels are asynchronous: without this we would time the launch only
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_matmul(n: int, device: str = "cpu", repeats: int = 5, warmup: int = 2) -> Timing:
    """An n x n float32 matmul on `device`."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    return Timing(f"{n}x{n} matmul on {device}", _median_time(lambda: a @ b, repeats, warmup, sync), repeats)


def time_transfer(n_bytes: int, pinned: bool, repeats: int = 5, warmup: int = 2) -> Timing:
    """Host -> device copy of `n_bytes` from pinned or pageable memory (needs CUDA)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device on this machine: nothing to transfer to")
    host = torch.empty(n_bytes // 4, dtype=torch.float32)
    if pinned:
        host = host.pin_memory()
    kind = "pinned" if pinned else "pageable"
    seconds = _median_time(lambda: host.to("cuda", non_blocking=pinned), repeats, warmup, torch.cuda.synchronize)
    return Timing(f"host→device {kind}", seconds, repeats)


@dataclass
class DeviceComparison:
    """CPU vs GPU matmul and transfer timings; `gpu_note` explains a missing GPU."""

    cpu: Timing
    gpu: Timing | None = None
    transfers: list[Timing] = field(default_factory=list)
    gpu_note: str = ""


def compare_devices(n: int = 1024, transfer_mb: int = 64, repeats: int = 5) -> DeviceComparison:
    """Time a matmul on CPU and (when available) on CUDA, and host→device copies pinned vs pageable."""
    import torch

    out = DeviceComparison(cpu=time_matmul(n, "cpu", repeats))
    if not torch.cuda.is_available():
        out.gpu_note = "No CUDA device on this machine: GPU timings need one (torch.cuda.is_available() is False)."
        return out
    out.gpu = time_matmul(n, "cuda", repeats)
    out.transfers = [time_transfer(transfer_mb << 20, pinned, repeats) for pinned in (False, True)]
    return out
