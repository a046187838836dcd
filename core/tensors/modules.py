"""nn.Module views for the autograd page: module tree, forward graph collapsed by module, one training step.

Also the graph collapsing both views use: group nodes (by module, or by program statement) into one box,
and keep big graphs under a node cap while saying what was folded.
"""
from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.tensors.graph import NODE_CAP, GraphEdge, GraphNode, build_graph, recorder

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu")
LOSSES = ("mse", "cross_entropy")
OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class ModelSpec:
    """Which network to build: the first-lesson SimpleNN, or an MLP of the given layer sizes."""

    kind: str = "simple"  # "simple" (Linear(10,5) -> ReLU -> Linear(5,1)) or "mlp"
    sizes: tuple[int, ...] = (10, 5, 1)  # mlp: input, hidden…, output
    activation: str = "relu"  # mlp: between linear layers


@dataclass
class ModuleRow:
    """One line of the module tree."""

    path: str  # "" for the root, "fc1", "layers.0"…
    depth: int
    cls: str
    detail: str  # the module's extra_repr, e.g. "in_features=10, out_features=5, bias=True"
    own_params: int  # parameters registered directly on this module
    total_params: int  # including submodules


@dataclass
class ModuleGraph:
    """The forward graph of one batch, collapsed by module unless expanded."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]
    full_nodes: int  # before collapsing
    note: str  # what was collapsed, in words
    code: str


@dataclass
class LayerChange:
    """What one optimizer step did to one parameter."""

    name: str
    shape: tuple[int, ...]
    grad_norm: float
    update_norm: float  # ||p_after - p_before||
    param_norm: float  # ||p_before||

    @property
    def relative_update(self) -> float:
        return self.update_norm / self.param_norm if self.param_norm else float("inf")


@dataclass
class StepResult:
    """Loss before and after one optimization step, and per-parameter changes."""

    loss_name: str  # what was actually used (cross-entropy on one output becomes BCE-with-logits)
    optimizer: str
    implementation: str  # "fused", "foreach" or "for-loop"
    device: str
    loss_before: float
    loss_after: float
    layers: list[LayerChange]
    before: dict[str, Any] = field(default_factory=dict)  # name -> CPU tensor
    after: dict[str, Any] = field(default_factory=dict)
    grads: dict[str, Any] = field(default_factory=dict)
    code: str = ""


@functools.cache
def _simple_nn_class() -> type:
    import torch.nn as nn

    class SimpleNN(nn.Module):
        """The classic first network: Linear(10,5) -> ReLU -> Linear(5,1)."""

        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(10, 5)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(5, 1)

        def forward(self, x):
            return self.fc2(self.relu(self.fc1(x)))

    return SimpleNN


def build_model(spec: ModelSpec, seed: int = 0) -> Any:
    """A fresh, seeded network for `spec`."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    if spec.kind == "simple":
        return _simple_nn_class()()
    if len(spec.sizes) < 2 or any(s < 1 for s in spec.sizes):
        raise ValueError(f"an MLP needs at least an input and an output size, all positive; got {spec.sizes}")
    if spec.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {spec.activation!r}")
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU}
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(spec.sizes, spec.sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(spec.sizes) - 2:
            layers.append(act[spec.activation]())
    return nn.Sequential(*layers)


def in_out(model: Any) -> tuple[int, int]:
    """Input and output width of a stack of Linear layers."""
    import torch.nn as nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[0].in_features, linears[-1].out_features


def module_tree(model: Any) -> list[ModuleRow]:
    """Every module with its parameter counts, root first."""
    rows = []
    for path, m in model.named_modules():
        own = sum(p.numel() for p in m.parameters(recurse=False))
        rows.append(ModuleRow(path, path.count(".") + 1 if path else 0, type(m).__name__, m.extra_repr(),
                              own, sum(p.numel() for p in m.parameters())))
    return rows


def forward_graph(model: Any, batch: int = 4, expand: Collection[str] = (), seed: int = 0,
                  cap: int = NODE_CAP) -> ModuleGraph:
    """The grad_fn graph of model(x) for one random batch, each top-level module folded into one box."""
    import torch

    stack: list[str] = []
    names_of = {m: n for n, m in model.named_modules()}

    def enter(mod: Any, _args: Any) -> None:  # hooks must return None, or they replace inputs/outputs
        stack.append(names_of[mod])

    def leave(_mod: Any, _args: Any, _out: Any) -> None:
        stack.pop()

    hooks = [h for m in model.modules() for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    torch.manual_seed(seed)
    x = torch.randn(batch, in_out(model)[0])
    rec = recorder(scope=lambda: stack[-1] if stack else "")
    try:
        with rec:
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    params = dict(model.named_parameters())
    nodes, edges, _ = build_graph(y, {"x": x, **params, "y": y}, rec)
    owner = {n.id: n.label.rsplit(".", 1)[0] for n in nodes if n.label in params}
    for n in nodes:
        if n.id in owner:
            n.group = owner[n.id]
        elif n.id.startswith("acc:") and n.id[4:] in owner:
            n.group = owner[n.id[4:]]
    labels = {p: f"{p} ({type(m).__name__})" for p, m in model.named_modules() if p}
    small, small_edges, note = collapse(nodes, edges, expand=expand, labels=labels)
    small, small_edges, cap_note = cap_graph(small, small_edges, cap)
    code = (f"import torch\n\nmodel = {model!r}\nx = torch.randn({batch}, {in_out(model)[0]})\ny = model(x)\n"
            "print(y.grad_fn, y.grad_fn.next_functions)\n")
    return ModuleGraph(small, small_edges, len(nodes), " ".join(filter(None, [note, cap_note])), code)


def _top(group: str, expand: Collection[str]) -> str:
    """The group a node folds into: its path cut below the deepest expanded ancestor."""
    parts = group.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) not in expand:
            return ".".join(parts[:i])
    return group


def collapse(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], expand: Collection[str] = (),
             labels: dict[str, str] | None = None, keep_tensors: bool = False) -> tuple[list, list, str]:
    """Fold every node with a group into one box per group (unless expanded); returns (nodes, edges, note)."""
    labels = labels or {}
    where: dict[str, str] = {}
    boxes: dict[str, GraphNode] = {}
    for n in nodes:
        if not n.group or (keep_tensors and n.kind != "grad_fn"):
            where[n.id] = n.id
            continue
        g = _top(n.group, expand)
        if g == n.group and g in expand:
            where[n.id] = n.id
            continue
        gid = f"group:{g}"
        where[n.id] = gid
        box = boxes.setdefault(gid, GraphNode(gid, "group", labels.get(g, g), group=g))
        box.aliases.append(n.label)
        box.saved.extend(n.saved)
    out_nodes, seen = [], set()
    for n in nodes:
        nid = where[n.id]
        if nid not in seen:
            seen.add(nid)
            out_nodes.append(boxes.get(nid, n))
    out_edges, pairs = [], set()
    for e in edges:
        s, d = where[e.src], where[e.dst]
        if s != d and (s, d, e.kind) not in pairs:
            pairs.add((s, d, e.kind))
            out_edges.append(GraphEdge(s, d, e.kind, e.label))
    note = (f"{len(boxes)} group(s) folded ({', '.join(b.group for b in boxes.values())}): "
            f"{sum(len(b.aliases) for b in boxes.values())} nodes drawn as {len(boxes)}.") if boxes else ""
    return out_nodes, out_edges, note


def cap_graph(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], cap: int = NODE_CAP) -> tuple[list, list, str]:
    """Keep at most `cap` nodes (fold groups first, then drop the rest) and say what went."""
    nodes, edges = list(nodes), list(edges)
    if len(nodes) <= cap:
        return nodes, edges, ""
    folded, folded_edges, note = collapse(nodes, edges)
    if len(folded) <= cap:
        return folded, folded_edges, f"Over {cap} nodes, so every group was folded. {note}"
    keep = {n.id for n in folded[:cap]}
    return ([n for n in folded if n.id in keep], [e for e in folded_edges if e.src in keep and e.dst in keep],
            f"Over {cap} nodes even with groups folded: {len(folded) - cap} of {len(folded)} not drawn.")


def make_optimizer(name: str, params: Any, lr: float, device: str) -> tuple[Any, str]:
    """SGD, Adam or AdamW; Adam/AdamW fused where torch has the kernels, else foreach. Returns (opt, impl)."""
    import torch

    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, foreach=True), "foreach"
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    if fused_supported(device):  # one kernel for all parameters: the fastest path where it exists
        return cls(params, lr=lr, fused=True), "fused"
    return cls(params, lr=lr, foreach=True), "foreach"


def fused_supported(device: str) -> bool:
    """Whether this torch has fused Adam/AdamW kernels for the device type (CUDA; CPU since torch 2.4)."""
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        kinds = set(_get_fused_kernels_supported_devices())
    except ImportError:  # private helper moved: fall back to the device every release supports
        kinds = {"cuda"}
    return device.split(":")[0] in kinds


def _loss(name: str, out_features: int, batch: int, device: str) -> tuple[Any, Any, str]:
    """The loss function, random targets for it, and its name as used."""
    import torch

    if name == "mse":
        return torch.nn.MSELoss(), torch.randn(batch, out_features, device=device), "MSE"
    if name != "cross_entropy":
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {name!r}")
    if out_features == 1:  # one logit: the two-class form of cross-entropy
        target = torch.randint(0, 2, (batch, 1), device=device).float()
        return torch.nn.BCEWithLogitsLoss(), target, "binary cross-entropy with logits (one output)"
    return torch.nn.CrossEntropyLoss(), torch.randint(0, out_features, (batch,), device=device), "cross-entropy"


def train_step(spec: ModelSpec, loss: str = "mse", optimizer: str = "adamw", lr: float = 1e-2,
               batch: int = 16, seed: int = 0, device: str | None = None) -> StepResult:
    """One optimization step on a random batch: loss before/after, gradients and change per parameter."""
    import torch

    from core.settings import get_settings, resolve_device

    device = device or resolve_device(get_settings().device)
    model = build_model(spec, seed).to(device)
    n_in, n_out = in_out(model)
    torch.manual_seed(seed + 1)
    x = torch.randn(batch, n_in, device=device)
    loss_fn, target, loss_name = _loss(loss, n_out, batch, device)
    opt, impl = make_optimizer(optimizer, model.parameters(), lr, device)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.zero_grad()
    value = loss_fn(model(x), target)
    value.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    with torch.no_grad():
        after_value = float(loss_fn(model(x), target))
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    layers = [LayerChange(n, tuple(p.shape), float(grads[n].norm()), float((after[n] - p).norm()), float(p.norm()))
              for n, p in before.items()]
    cpu = lambda d: {k: v.cpu() for k, v in d.items()}  # noqa: E731
    return StepResult(loss_name, optimizer, impl, device, float(value.detach()), after_value, layers,
                      cpu(before), cpu(after), cpu(grads), _step_code(spec, loss_name, optimizer, impl, lr, batch))


def _step_code(spec: ModelSpec, loss_name: str, optimizer: str, impl: str, lr: float, batch: int) -> str:
    if spec.kind == "simple":
        model = ("class SimpleNN(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                 "        self.fc1 = nn.Linear(10, 5)\n        self.relu = nn.ReLU()\n        self.fc2 = nn.Linear(5, 1)\n\n"
                 "    def forward(self, x):\n        return self.fc2(self.relu(self.fc1(x)))\n\nmodel = SimpleNN()")
        n_in, n_out = 10, 1
    else:
        act = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU", "leaky_relu": "LeakyReLU"}
        layers = []
        for i, (a, b) in enumerate(zip(spec.sizes, spec.sizes[1:], strict=False)):
            layers.append(f"    nn.Linear({a}, {b}),")
            if i < len(spec.sizes) - 2:
                layers.append(f"    nn.{act[spec.activation]}(),")
        model = "model = nn.Sequential(\n" + "\n".join(layers) + "\n)"
        n_in, n_out = spec.sizes[0], spec.sizes[-1]
    if loss_name == "MSE":
        loss, target = "nn.MSELoss()", f"torch.randn({batch}, {n_out})"
    elif loss_name == "cross-entropy":
        loss, target = "nn.CrossEntropyLoss()", f"torch.randint(0, {n_out}, ({batch},))"
    else:
        loss, target = "nn.BCEWithLogitsLoss()", f"torch.randint(0, 2, ({batch}, 1)).float()"
    cls = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}[optimizer]
    return (f"import torch\nimport torch.nn as nn\n\n{model}\nx = torch.randn({batch}, {n_in})\ny = {target}\n"
            f"loss_fn = {loss}\noptimizer = torch.optim.{cls}(model.parameters(), lr={lr}, {impl}=True)\n\n"
            "optimizer.zero_grad()\nloss = loss_fn(model(x), y)\nloss.backward()\noptimizer.step()\n"
            "print(loss.item(), loss_fn(model(x), y).item())\n")


MAX_WIDTH = 1024  # widest layer the page builds (the graph and the step stay instant on a CPU)
MAX_LAYERS = 8


def parse_sizes(text: str) -> tuple[int, ...]:
    """'10, 16, 1' -> (10, 16, 1), with a plain message for anything else."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"layer sizes must be whole numbers separated by commas, e.g. 10, 16, 1; got {text!r}") from None
    if len(sizes) < 2:
        raise ValueError("give at least two sizes: the input width and the output width, e.g. 10, 1")
    if len(sizes) > MAX_LAYERS + 1:
        raise ValueError(f"at most {MAX_LAYERS} layers ({MAX_LAYERS + 1} sizes) here; got {len(sizes)} sizes")
    if any(s < 1 or s > MAX_WIDTH for s in sizes):
        raise ValueError(f"every size must be between 1 and {MAX_WIDTH}; got {sizes}")
    return sizes
