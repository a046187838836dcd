"""Drawing the autograd graph: DOT for st.graphviz_chart (rendered in the browser), node inspector, tables."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.system import human_bytes
from core.tensors import GraphEdge, GraphNode

# fill, border: leaves green, named non-leaf tensors blue, grad_fns amber, folded groups violet
COLORS = {
    "leaf": ("#dcfce7", "#15803d"),
    "tensor": ("#dbeafe", "#1d4ed8"),
    "grad_fn": ("#fef3c7", "#b45309"),
    "group": ("#ede9fe", "#6d28d9"),
    "pending": ("#f3f4f6", "#9ca3af"),
}
EDGE_STYLES = {
    "next": 'color="#6b7280"',
    "output": 'color="#1d4ed8"',
    "input": 'color="#1d4ed8"',
    "leaf": 'color="#15803d", style=dotted',
    "cut": 'color="#dc2626", style=dashed, fontcolor="#dc2626", fontsize=9',
}
LEGEND = (":green-background[leaf tensor (requires_grad=True)] :blue-background[named non-leaf tensor] "
          ":orange-background[grad_fn] :violet-background[folded module / statement] · arrows show the forward "
          "data flow; backward runs them in reverse · :red[dashed red]: used without gradient (detach / no_grad)")


def short(t: Any) -> str:
    """A tensor as a few characters: '2', '[1, 0.5]', or its shape when larger."""
    if t is None:
        return "None"
    if t.numel() == 1:
        return f"{t.item():.4g}"
    if t.numel() <= 4 and t.dim() == 1:
        return "[" + ", ".join(f"{v:.3g}" for v in t.tolist()) + "]"
    return f"tensor {tuple(t.shape)}"


def _number(v: Any) -> str:
    return f"{v:.4g}"


def _nested(x: Any) -> str:
    return "[" + ", ".join(_nested(v) for v in x) + "]" if isinstance(x, list) else _number(x)


def values_text(t: Any, limit: int = 24, few: int = 6) -> str:
    """A gradient's values as text: every value of a small tensor (one row a line), or, for a large one,
    its shape, its first few values and min / mean / max."""
    if t is None:
        return "None"
    t = t.detach().cpu()
    if t.numel() <= limit:
        if t.dim() == 0:
            return _number(t.item())
        rows = t.tolist()
        return _nested(rows) if t.dim() == 1 else "[" + ",\n ".join(_nested(r) for r in rows) + "]"
    flat = t.reshape(-1)
    head = ", ".join(_number(v) for v in flat[:few].tolist())
    text = f"shape {tuple(t.shape)}, {t.numel():,} values\nfirst: {head}, …"
    if not t.is_complex():
        f = flat.double()
        text += f"\nmin {_number(f.min().item())} · mean {_number(f.mean().item())} · max {_number(f.max().item())}"
    return text


def grad_headline(call: str, grads: dict[str, Any], per_row: int = 4, limit: int = 24) -> None:
    """What backward gave: each leaf's (and retained tensor's) .grad with its values, not just its shape."""
    st.markdown(f"After `{call}`, the gradients:" if grads else f"After `{call}`: no leaf requires grad.")
    items = list(grads.items())
    for start in range(0, len(items), per_row):
        row = items[start:start + per_row]
        for col, (name, g) in zip(st.columns(per_row if len(items) > per_row else len(row)), row, strict=False):
            if g is None or g.numel() == 1 or (g.dim() == 1 and g.numel() <= 4):
                col.metric(f"{name}.grad", short(g))
            else:
                small = g.numel() <= limit  # a large one's summary starts with its shape
                col.markdown(f"**{name}.grad**" + (f" · shape `{tuple(g.shape)}`" if small else ""))
                col.code(values_text(g, limit), language=None)


def _quote(text: str) -> str:
    """A DOT double-quoted string; user text (variable names) cannot break out of it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def node_label(n: GraphNode, show_grad: bool = True) -> str:
    """The lines drawn in a node's box."""
    if n.kind == "group":
        return f"{n.label}\n{len(n.aliases)} node{'s' if len(n.aliases) != 1 else ''} folded"
    shape = "" if not n.shape else f" {tuple(n.shape)}"
    if n.kind == "grad_fn":
        lines = [n.label]
        if n.step is not None:
            lines[0] = f"{n.step}. {n.label}"
        if show_grad and n.grad is not None:
            lines.append(f"grad in: {short(n.grad)}")
        if n.saved_bytes:
            lines.append(f"saves {human_bytes(n.saved_bytes)}")
        return "\n".join(lines)
    lines = [n.label + shape]
    if n.aliases:
        lines[0] += f" (= {', '.join(n.aliases)})"
    lines.append(f"value: {short(n.value)}")
    if show_grad:
        lines.append(f"grad: {short(n.grad)}")
    return "\n".join(lines)


def to_dot(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], selected: str | None = None,
           upto_step: int | None = None) -> str:
    """DOT source: nodes coloured by kind; with `upto_step`, nodes backward has not reached yet are grey."""
    out = ["digraph autograd {", 'rankdir=TB; bgcolor="transparent";',
           'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
           'edge [fontname="Helvetica", arrowsize=0.7];']
    for n in nodes:
        reached = upto_step is None or (n.step is not None and n.step <= upto_step) or (
            n.kind != "grad_fn" and n.kind != "group")
        fill, border = COLORS["pending" if not reached else n.kind]
        shape = "ellipse" if n.kind == "grad_fn" else "box3d" if n.kind == "group" else "box"
        width = 3 if n.id == selected or (upto_step is not None and n.step == upto_step) else 1
        show_grad = upto_step is None or reached and n.kind == "grad_fn"
        out.append(f"{_quote(n.id)} [label={_quote(node_label(n, show_grad))}, shape={shape}, "
                   f'fillcolor="{fill}", color="{"#dc2626" if width == 3 else border}", penwidth={width}];')
    for e in edges:
        label = f", label={_quote(e.label)}" if e.label else ""
        out.append(f"{_quote(e.src)} -> {_quote(e.dst)} [{EDGE_STYLES.get(e.kind, '')}{label}];")
    out.append("}")
    return "\n".join(out)


def graph_chart(nodes: Sequence[GraphNode], edges: Sequence[GraphEdge], selected: str | None = None,
                upto_step: int | None = None) -> None:
    """Draw the graph in the browser (Graphviz compiled to WASM: no system graphviz needed)."""
    # small graphs at their natural size (stretching blows them up); big ones fit the column
    st.graphviz_chart(to_dot(nodes, edges, selected, upto_step), width="stretch" if len(nodes) > 14 else "content")
    st.caption(LEGEND)


def node_picker(nodes: Sequence[GraphNode], key: str) -> GraphNode | None:
    """A select box over the nodes, keyed by stable node id so the choice survives reruns."""
    rank = {"leaf": 0, "tensor": 1, "grad_fn": 2}
    by_id = {n.id: n for n in sorted(nodes, key=lambda n: rank.get(n.kind, 3)) if n.kind != "group"}
    if not by_id:
        return None
    if st.session_state.get(key) not in by_id:
        st.session_state.pop(key, None)
    nid = st.selectbox("Inspect a node", list(by_id), key=key,
                       format_func=lambda i: f"{by_id[i].label} ({by_id[i].kind}, {i})")
    return by_id[nid]


def _frame(t: Any) -> Any:
    if t.dim() == 0:
        return pd.DataFrame({"value": [t.item()]})
    if t.dim() == 1:
        return pd.DataFrame({"value": t.tolist()})
    return pd.DataFrame(t.reshape(t.shape[0], -1).tolist())


def tensor_panel(node: GraphNode) -> None:
    """A node's full value and gradient, and what it saves for backward."""
    meta = f"**{node.label}** · {node.kind}"
    if node.shape is not None:
        meta += f" · shape {tuple(node.shape)} · {node.dtype}"
    st.markdown(meta)
    left, right = st.columns(2)
    for col, title, t in ((left, "forward value", node.value), (right, "gradient", node.grad)):
        with col:
            st.caption(title if node.kind != "grad_fn" or title != "gradient" else "gradient arriving at its output")
            if t is None:
                st.write("None" + (" (a non-leaf: call retain_grad() to keep it)"
                                   if node.kind == "tensor" and title == "gradient" else ""))
            else:
                st.dataframe(_frame(t), height=min(38 + 35 * max(1, t.shape[0] if t.dim() else 1), 300))
    if node.saved:
        st.caption(f"saved for backward: {human_bytes(node.saved_bytes)}")
        st.table(pd.DataFrame([{"saved": s.attr, "shape": str(s.shape), "dtype": s.dtype,
                                "bytes": s.nbytes} for s in node.saved]))


def grads_table(columns: dict[str, dict[str, Any]]) -> None:
    """Rows: tensors; columns: named snapshots of their .grad."""
    names = list(dict.fromkeys(k for col in columns.values() for k in col))
    st.table(pd.DataFrame({title: [short(col.get(k)) for k in names] for title, col in columns.items()},
                          index=pd.Index(names, name="tensor")))


def show_error(e: Exception, reason: str | None = None) -> None:
    """The error, where it happened, and torch's reason in plain words."""
    st.error(str(e), icon=":material/error:")
    caret = getattr(e, "caret", None)
    if callable(caret) and caret():
        st.code(caret(), language=None)
    if reason and reason not in str(e):
        st.info(reason, icon=":material/lightbulb:")


def check_line(check: Any) -> None:
    """The finite-difference verdict in one line."""
    if check is None:
        return
    note = getattr(check, "note", "")
    if getattr(check, "skipped", False):
        st.info(note or "The finite-difference check was skipped.", icon=":material/timer:")
        return
    text = (f"largest relative error {check.max_rel_error:.1e} against central finite differences in float64 "
            f"({check.checked} of {check.total} leaf elements checked; tolerance {check.tolerance:.0e})")
    if note:
        st.caption(note)
    if check.ok:
        st.success(f"Gradients verified: {text}", icon=":material/verified:")
    else:
        st.warning(f"Gradients disagree with finite differences: {text}. Usually a kink (relu, abs at 0) "
                   "or float32 rounding.", icon=":material/warning:")


def steps_table(steps: Sequence[Any], upto: int) -> None:
    """The engine's order: which grad_fn ran, the gradient it received and what it passed on."""
    rows = [{"step": s.index, "node": s.label, "gradient arriving": ", ".join(short(g) for g in s.grad_outputs),
             "gradients sent on": ", ".join(short(g) for g in s.grad_inputs) or "→ .grad of the leaf"}
            for s in steps[:upto]]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
