"""core.tensors.modules: module tree, forward graph collapsed by module, one optimizer step."""
import pytest
import torch

from core.tensors.graph import GraphEdge, GraphNode
from core.tensors.modules import (
    ModelSpec,
    build_model,
    cap_graph,
    collapse,
    forward_graph,
    fused_supported,
    make_optimizer,
    module_tree,
    train_step,
)


def test_simple_nn_tree_and_counts():
    rows = {r.path: r for r in module_tree(build_model(ModelSpec()))}
    assert rows[""].cls == "SimpleNN" and rows[""].total_params == 10 * 5 + 5 + 5 * 1 + 1
    assert rows["fc1"].own_params == 55 and rows["fc2"].own_params == 6 and rows["relu"].own_params == 0
    assert "in_features=10" in rows["fc1"].detail


def test_mlp_shape_and_activation():
    model = build_model(ModelSpec("mlp", (4, 8, 8, 3), "tanh"))
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert module_tree(model)[0].total_params == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3
    with pytest.raises(ValueError, match="activation"):
        build_model(ModelSpec("mlp", (4, 3), "swish"))


def test_forward_graph_collapsed_and_expanded():
    model = build_model(ModelSpec())
    g = forward_graph(model)
    assert [n.label for n in g.nodes if n.kind == "group"] == ["fc1 (Linear)", "relu (ReLU)", "fc2 (Linear)"]
    ids = {n.id: n.label for n in g.nodes}
    assert {(ids[e.src], ids[e.dst]) for e in g.edges} >= {("fc1 (Linear)", "relu (ReLU)"), ("fc2 (Linear)", "y")}
    assert "3 group(s) folded" in g.note
    # expanded: the real grad_fns of nn.Linear (addmm, the weight's transpose) and the parameters appear
    torch.manual_seed(0)
    y = model(torch.randn(4, 10))
    names, stack, seen = [], [y.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            names.append(type(fn).__name__)
            stack.extend(f for f, _ in fn.next_functions)
    full = forward_graph(model, expand={"fc1", "relu", "fc2"})
    assert sorted(n.label for n in full.nodes if n.kind == "grad_fn") == sorted(names)
    assert {"fc1.weight", "fc1.bias", "fc2.weight"} <= {n.label for n in full.nodes if n.kind == "leaf"}
    assert full.note == "" and full.full_nodes == len(full.nodes)


def test_sgd_step_is_minus_lr_times_grad():
    r = train_step(ModelSpec(), "mse", "sgd", lr=0.1, batch=8)
    for layer in r.layers:
        assert torch.allclose(r.after[layer.name], r.before[layer.name] - 0.1 * r.grads[layer.name], atol=1e-7)
        assert layer.update_norm == pytest.approx(0.1 * layer.grad_norm, rel=1e-4)
    assert r.loss_after < r.loss_before and r.implementation == "foreach"


def test_adam_first_step_moves_each_weight_by_about_lr():
    r = train_step(ModelSpec("mlp", (4, 8, 3)), "cross_entropy", "adam", lr=0.01, batch=8)
    w = r.layers[0]
    assert r.loss_name == "cross-entropy"
    # the first Adam step is lr * g / (|g| + eps): every element moves by ~lr
    delta = (r.after[w.name] - r.before[w.name]).abs()
    assert torch.allclose(delta, torch.full_like(delta, 0.01), rtol=1e-2)
    assert r.loss_after < r.loss_before


def test_adamw_decays_weights_and_cross_entropy_on_one_output():
    r = train_step(ModelSpec(), "cross_entropy", "adamw", lr=0.01)
    assert "binary cross-entropy" in r.loss_name
    assert "AdamW" in r.code and "BCEWithLogitsLoss" in r.code
    assert r.implementation == ("fused" if fused_supported(r.device) else "foreach")
    # the fused kernel and the plain loop take the same step
    ref = build_model(ModelSpec())
    torch.manual_seed(1)
    x = torch.randn(16, 10)
    y = torch.randint(0, 2, (16, 1)).float()
    opt = torch.optim.AdamW(ref.parameters(), lr=0.01, foreach=False)
    torch.nn.BCEWithLogitsLoss()(ref(x), y).backward()
    opt.step()
    for name, p in ref.named_parameters():
        assert torch.allclose(r.after[name], p.detach(), atol=1e-6)


def test_make_optimizer_implementation():
    p = [torch.nn.Parameter(torch.ones(2))]
    opt, impl = make_optimizer("adamw", p, 0.1, "cpu")
    assert impl == ("fused" if fused_supported("cpu") else "foreach") and opt.defaults[impl] is True
    assert make_optimizer("sgd", p, 0.1, "cpu")[1] == "foreach"
    assert not fused_supported("meta")
    if torch.cuda.is_available():
        opt, impl = make_optimizer("adamw", [torch.nn.Parameter(torch.ones(2, device="cuda"))], 0.1, "cuda")
        assert impl == "fused" and opt.defaults["fused"] is True


def test_collapse_and_cap():
    nodes = [GraphNode(f"n{i}", "grad_fn", "AddBackward0", group=f"blk{i // 10}") for i in range(50)]
    edges = [GraphEdge(f"n{i}", f"n{i + 1}", "next") for i in range(49)]
    small, small_edges, note = cap_graph(nodes, edges, cap=20)
    assert len(small) == 5 and len(small_edges) == 4 and "every group was folded" in note
    n2, e2, _ = collapse(nodes, edges, expand={"blk0"})
    assert len(n2) == 10 + 4
    flat = [GraphNode(f"n{i}", "grad_fn", "X") for i in range(30)]
    kept, _, note = cap_graph(flat, [], cap=20)
    assert len(kept) == 20 and "10 of 30 not drawn" in note
