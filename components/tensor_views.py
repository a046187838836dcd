"""Drawing pieces for the tensor playground: values, properties, the storage strip, broadcasting, timings."""
from __future__ import annotations

import html
from typing import Any

import streamlit as st

from core.expr import ExpressionError
from core.system import human_bytes
from core.tensors import Broadcast, DeviceComparison, StorageMap, TensorInfo

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def show_error(e: ExpressionError, label: str = "") -> None:
    """The message, then the source line with a caret under the position."""
    st.error(f"{label + ': ' if label else ''}{e}", icon=":material/error:")
    if e.caret():
        st.code(e.caret(), language=None)


def slice_2d(t: Any, key: str) -> tuple[Any, str]:
    """For a tensor of 3+ dims, pick indices of the leading dims; returns (2-D slice, its index text)."""
    if t.ndim <= 2:
        return t, ""
    picks = []
    cols = st.columns(min(t.ndim - 2, 4))
    for d in range(t.ndim - 2):
        with cols[d % len(cols)]:
            picks.append(st.number_input(f"index on dim {d}", 0, t.shape[d] - 1, 0, key=f"{key}-dim{d}"))
    text = "[" + ", ".join(map(str, picks)) + ", :, :]"
    return t[tuple(picks)], text


def tensor_values(t: Any, key: str) -> None:
    """A table (or heatmap) of a ≤2-D tensor; a slice picker first for higher dims."""
    import pandas as pd

    if t.numel() == 0:  # no element to show (and no index range to pick one from)
        st.caption(f"empty tensor of shape {tuple(t.shape)}: nothing to show")
        return
    view, index = slice_2d(t.detach().cpu(), key)
    if index:
        st.caption(f"showing slice `{index}` of shape {tuple(view.shape)}")
    if view.ndim == 0:
        st.metric("value", f"{view.item():.6g}" if view.is_floating_point() else str(view.item()))
        return
    rows = view.reshape(1, -1) if view.ndim == 1 else view
    if rows.numel() > 20_000:
        rows = rows[:200, :100]
        st.caption("large tensor: showing the first 200 rows and 100 columns")
    mode = st.segmented_control("show as", ["table", "heatmap"], default="table", key=f"{key}-mode")
    if mode == "heatmap" and not rows.is_complex():
        import plotly.express as px

        fig = px.imshow(rows.float().numpy(), text_auto=rows.numel() <= 100, color_continuous_scale="RdBu_r",
                        aspect="auto", labels={"x": "column", "y": "row"})
        fig.update_layout(height=min(120 + 40 * rows.shape[0], 500), margin={"l": 10, "r": 10, "t": 10, "b": 10})
        st.plotly_chart(fig, key=f"{key}-heat")
    else:
        values = rows.tolist() if not rows.is_complex() else [[str(v) for v in r] for r in rows.tolist()]
        st.dataframe(pd.DataFrame(values), key=f"{key}-table")


def properties(info: TensorInfo) -> None:
    """The numbers `x.shape`, `x.stride()`, … give, side by side."""
    c = st.columns(4)
    c[0].metric("shape", str(info.shape))
    c[1].metric("dtype", info.dtype)
    c[2].metric("device", info.device)
    c[3].metric("requires_grad", str(info.requires_grad))
    c = st.columns(4)
    c[0].metric("stride()", str(info.stride))
    c[1].metric("storage_offset()", info.storage_offset)
    c[2].metric("is_contiguous()", str(info.is_contiguous))
    c[3].metric("numel", f"{info.numel:,}")
    c = st.columns(4)
    c[0].metric("element_size()", f"{info.element_size} B")
    c[1].metric("bytes (numel × size)", human_bytes(info.nbytes))
    c[2].metric("storage elements", f"{info.storage_elements:,}")
    c[3].metric("storage bytes", human_bytes(info.storage_bytes))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def storage_strip(smap: StorageMap, name: str) -> None:
    """The storage as a row of cells: touched cells are coloured and numbered in the order `name` reads them."""
    first: dict[int, int] = {}
    for pos, cell in enumerate(smap.order):
        first.setdefault(cell, pos)
    cells = []
    for i, v in enumerate(smap.values):
        touched = i in first
        bg = _PALETTE[0] if touched else "#eeeeee"
        fg = "white" if touched else "#777777"
        order = f"<div style='font-size:10px'>#{first[i]}</div>" if touched else "<div style='font-size:10px'>&nbsp;</div>"
        cells.append(
            f"<div title='storage[{i}]' style='display:inline-block;min-width:44px;margin:1px;padding:3px 2px;"
            f"text-align:center;background:{bg};color:{fg};border-radius:3px;font-family:monospace'>"
            f"<div style='font-size:10px;opacity:.8'>[{i}]</div><div>{html.escape(_fmt(v))}</div>{order}</div>"
        )
    more = (f"<span style='color:#777'> … {smap.storage_elements - len(smap.values):,} more cells</span>"
            if smap.truncated else "")
    st.html(f"<div style='line-height:1.1'>{''.join(cells)}{more}</div>")
    legend = (f"Blue cells are the storage elements `{html.escape(name)}` reads; #k is the k-th element in "
              "row-major order over its shape. Grey cells belong to the storage but not to this tensor.")
    if smap.repeats:
        legend += " Some cells are read more than once: a stride of 0 (expand / broadcast) repeats them."
    st.caption(legend)
    shown = ", ".join(map(str, smap.order[:48])) + (" …" if len(smap.order) > 48 else "")
    st.caption(f"reading order (storage indices): {shown}")


def broadcast_table(b: Broadcast, op: str) -> None:
    """Shapes right-aligned, axis by axis, with the result or the reason it fails."""
    import pandas as pd

    rows = [{"axis": str(i - len(b.rows)), "left": "—" if x is None else str(x), "right": "—" if y is None else str(y),
             "result": "✗" if r is None else str(r), "rule": note} for i, (x, y, r, note) in enumerate(b.rows)]
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    if b.result is None:
        st.error(f"`left {op} right` fails: {b.reason}", icon=":material/block:")
    else:
        st.success(f"`left {op} right` has shape {b.result}", icon=":material/check:")


def device_timings(cmp: DeviceComparison) -> None:
    """Median timings; a clear note instead of GPU numbers when there is no GPU."""
    c = st.columns(3)
    c[0].metric(cmp.cpu.label, f"{cmp.cpu.median_s * 1e3:.2f} ms")
    if cmp.gpu is None:
        st.info(cmp.gpu_note, icon=":material/memory:")
        return
    c[1].metric(cmp.gpu.label, f"{cmp.gpu.median_s * 1e3:.3f} ms",
                delta=f"{cmp.cpu.median_s / max(cmp.gpu.median_s, 1e-12):.1f}× faster", delta_color="off")
    for t in cmp.transfers:
        st.metric(t.label, f"{t.median_s * 1e3:.2f} ms")
    st.caption(f"median of {cmp.cpu.repeats} runs after warm-up; CUDA timings call torch.cuda.synchronize().")
