"""Autograd graph: a program's real grad_fn graph with values and gradients, backward step by step, nn.Module."""
import pandas as pd
import streamlit as st

from components import graph_view as gv
from core.expr import Budget, ExpressionError
from core.tensors import (
    ACTIVATIONS,
    DEFAULT_EXAMPLE,
    EXAMPLES,
    LOSSES,
    OPTIMIZERS,
    OUTPUT_FIELD,
    AutogradError,
    ModelSpec,
    accumulation,
    backprop,
    build_model,
    cap_graph,
    collapse,
    fit_fields,
    forward_graph,
    module_tree,
    parse_sizes,
    plain_reason,
    split_backward,
    train_step,
)

st.title("Autograd graph")
st.caption("What `backward()` really does: the real `grad_fn` graph of your program, with the value and the "
           "gradient on every tensor, checked against finite differences.")


def load_example() -> None:
    ex = EXAMPLES[st.session_state.ag_example]
    st.session_state.update(ag_program=ex.program, ag_output=ex.output, ag_retain=", ".join(ex.retain),
                            ag_gradient=ex.gradient or "")


def names_list(text: str) -> list[str]:
    return [r.strip() for r in text.split(",") if r.strip()]


if "ag_program" not in st.session_state:
    st.session_state.ag_example = DEFAULT_EXAMPLE
    load_example()

# the fields follow the program, before their widgets are drawn: its own last line `X.backward(g)` sets the
# output and gradient; when it changes, fields naming variables it no longer has are reset (and said so)
ss = st.session_state
try:
    line = split_backward(ss.ag_program)
except ExpressionError:  # shown with a caret beside the program when it runs
    line = None
if line is not None:
    ss.ag_output, ss.ag_gradient = line.target, line.gradient or ""
picked: list[str] = []
if ss.get("ag_ran") != ss.ag_program:
    fit = fit_fields(ss.ag_program, None if line else ss.ag_output.strip(), names_list(ss.ag_retain),
                     ss.ag_gradient)
    if line is None:
        ss.ag_output, ss.ag_gradient = fit.output, fit.gradient
    if fit.retain != names_list(ss.ag_retain):
        ss.ag_retain = ", ".join(fit.retain)
    picked, ss.ag_ran = fit.notes, ss.ag_program

code_col, opts_col = st.columns([3, 2])
with opts_col:
    st.selectbox("Example", list(EXAMPLES), key="ag_example", on_change=load_example)
    by_line = f"Set by the program's last line `{line.source}`: edit the program to change it." if line else None
    output = st.text_input(OUTPUT_FIELD, key="ag_output", disabled=line is not None, help=by_line)
    retain = names_list(st.text_input("`retain_grad()` on (comma-separated)", key="ag_retain"))
    gradient = st.text_input("`gradient=` (only for a non-scalar output)", key="ag_gradient",
                             placeholder="torch.ones(3)", disabled=line is not None, help=by_line).strip() or None
    if by_line:
        st.caption(by_line)
    for note in picked:
        st.info(note, icon=":material/auto_fix_high:")
with code_col:
    program = st.text_area("Program: one `name = expression` per line; `with torch.no_grad():` allowed; it may "
                           "end with `loss.backward()`",
                           key="ag_program", height=190)

# one budget for this action: the run, the gradient= field, the finite-difference check and the
# accumulation tab share its time and memory
budget = Budget()
result = None
try:
    result = backprop(program, output.strip(), retain, gradient, budget=budget)
except (ExpressionError, AutogradError) as e:  # shown beside the field that caused it
    with opts_col if getattr(e, "field", "program") in ("output", "retain", "gradient") else code_col:
        gv.show_error(e, plain_reason(str(e)))

graph_tab, steps_tab, acc_tab, nn_tab = st.tabs(["Graph", "Backward step by step", "Accumulation & zero_grad",
                                                 "nn.Module & one training step"])
with graph_tab:
    if result is None:
        st.info("Fix the program above to see its graph.")
    else:
        gv.grad_headline(result.call, result.grads)
        gv.check_line(result.check)
        fold = st.toggle("Fold each statement's operations into one box", key="ag_fold")
        nodes, edges, note = (collapse(result.nodes, result.edges, keep_tensors=True) if fold
                              else (result.nodes, result.edges, ""))
        nodes, edges, cap_note = cap_graph(nodes, edges)
        draw_col, inspect_col = st.columns([3, 2])
        with inspect_col:
            node = gv.node_picker(result.nodes, "ag_node")
            if node is not None:
                gv.tensor_panel(node)
        with draw_col:
            gv.graph_chart(nodes, edges, selected=node.id if node else None)
            for text in (note, cap_note):
                if text:
                    st.caption(text)
        st.caption(f"The grad_fns keep {result.saved_bytes:,} bytes of distinct storage alive until backward.")
        for name, why in result.outside.items():
            st.markdown(f"- `{name}` is not in the graph: {why}.")
        with st.expander("Show code"):
            st.code(result.code, language="python")

with steps_tab:
    if result is None or not result.steps:
        st.info("Nothing to step through: fix the program above (a leaf as output has no grad_fn to run).")
    else:
        n = len(result.steps)
        k = st.slider("Backward step", 1, n, n, key="ag_step") if n > 1 else 1
        st.markdown(f"Step {k} of {n}: the engine runs **{result.steps[k - 1].label}**. It starts at the output "
                    "and runs a node once every gradient for its output has arrived; grey nodes are still waiting.")
        gv.graph_chart(result.nodes, result.edges, upto_step=k)
        gv.steps_table(result.steps, k)

with acc_tab:
    if result is not None:
        keep = st.checkbox("`retain_graph=True` on the first `backward()`", value=True, key="ag_retain_graph")
        try:
            acc = accumulation(program, output.strip(), gradient, keep, budget=budget)
        except (ExpressionError, AutogradError) as e:  # beside the checkbox: this tab's own backward calls
            gv.show_error(e, plain_reason(str(e)))
            acc = None
        if acc is not None:
            gv.grads_table({"after 1st backward()": acc.after_first, "after 2nd backward()": acc.after_second or {},
                            "after optimizer.zero_grad()": acc.after_zero})
            if acc.error:
                st.warning(f"The second `backward()` failed: {acc.error}", icon=":material/warning:")
        st.markdown("`.grad` **adds up** over `backward()` calls: that is why a training loop calls "
                    "`optimizer.zero_grad()` (which sets every `.grad` to `None`) before each backward.")
        if acc is not None:
            with st.expander("Show code"):
                st.code(acc.code, language="python")

with nn_tab:
    kind = st.radio("Network", ["SimpleNN: Linear(10,5) → ReLU → Linear(5,1)", "MLP you shape"],
                    horizontal=True, key="nn_kind")
    spec = ModelSpec()
    if kind.startswith("MLP"):
        a, b = st.columns(2)
        sizes_text = a.text_input("Layer sizes (input, hidden…, output)", "10, 16, 8, 2", key="nn_sizes")
        activation = b.selectbox("Activation", ACTIVATIONS, key="nn_act")
        try:
            spec = ModelSpec("mlp", parse_sizes(sizes_text), activation)
        except ValueError as e:
            st.error(str(e), icon=":material/error:")
    model = build_model(spec)
    tree_col, graph_col = st.columns([2, 3])
    with tree_col:
        rows = module_tree(model)
        st.metric("Parameters", f"{rows[0].total_params:,}")
        st.dataframe(pd.DataFrame([{"module": "  " * r.depth + (r.path or "(root)"), "class": r.cls,
                                    "params": r.own_params, "detail": r.detail} for r in rows]), hide_index=True)
    with graph_col:
        paths = [r.path for r in rows if r.path]
        expand = st.multiselect("Expand modules", paths, key=f"nn_expand_{hash(spec)}")
        fg = forward_graph(model, expand=expand)
        gv.graph_chart(fg.nodes, fg.edges)
        st.caption(f"Forward graph of one batch of 4: {fg.full_nodes} nodes in full. {fg.note}")
    st.subheader("One optimization step")
    l_col, o_col, lr_col = st.columns(3)
    loss = l_col.selectbox("Loss", LOSSES, key="nn_loss")
    opt = o_col.selectbox("Optimizer", OPTIMIZERS, index=2, key="nn_opt")
    lr = lr_col.number_input("Learning rate", 1e-5, 10.0, 0.01, format="%.4f", key="nn_lr")
    step = train_step(spec, loss, opt, lr)
    m1, m2, m3 = st.columns(3)
    m1.metric("Loss before", f"{step.loss_before:.4f}")
    m2.metric("Loss after", f"{step.loss_after:.4f}", f"{step.loss_after - step.loss_before:+.4f}",
              delta_color="inverse")
    m3.metric(f"{opt} implementation", step.implementation, step.device, delta_color="off")
    st.caption(f"Loss: {step.loss_name}, random batch of 16.")
    st.dataframe(pd.DataFrame([{"parameter": c.name, "shape": str(c.shape), "‖grad‖": c.grad_norm,
                                "‖Δ param‖": c.update_norm, "‖Δ‖ / ‖param‖": c.relative_update}
                               for c in step.layers]), hide_index=True, width="stretch")
    with st.expander("Show code"):
        st.code(step.code, language="python")
