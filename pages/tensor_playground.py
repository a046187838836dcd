"""Tensor playground: named tensors and a short program in the safe expression language, laid bare."""
import streamlit as st

from components import tensor_views as tv
from core.expr import short_repr
from core.tensors import (
    DTYPES,
    FACTORIES,
    Definition,
    broadcast,
    build,
    contiguous_plan,
    inspect,
    relations,
    storage_map,
    summary,
)

DEFAULTS = [Definition("x", "literal", "[[1, 2], [3, 4]]"),
            Definition("r", "factory", factory="arange", shape=(3, 4)),
            Definition("w", "factory", factory="randn", shape=(2, 3), seed=0)]
PROGRAM = "y = x + 2\nz = torch.matmul(x, y.T)\nflat = x.view(-1)\nt = r.T\ns = r[:, 1::2]\nc = t.contiguous()"

st.title("Tensor playground")
st.caption("Real torch tensors, a safe formula language (no imports, no files, no Python escapes), and the "
           "storage underneath every view.")
st.session_state.setdefault("tp_defs", list(DEFAULTS))
st.session_state.setdefault("tp_program", PROGRAM)


def definition_form() -> Definition | None:
    """The 'add a tensor' form; returns the new definition when submitted and valid."""
    with st.form("tp_define", clear_on_submit=False):
        st.markdown("**Add or replace a tensor**")
        c = st.columns([1, 2])
        name = c[0].text_input("name", "a")
        kind = c[1].segmented_control("made by", ["factory", "literal", "formula"], default="factory")
        text = st.text_input("literal or formula", "[[1.0, 2.0], [3.0, 4.0]]",
                             help="literal: nested lists, e.g. [[1, 2], [3, 4]]; formula: e.g. x @ x.T")
        c = st.columns(4)
        factory = c[0].selectbox("factory", FACTORIES, index=FACTORIES.index("randn"))
        shape = c[1].text_input("shape", "2, 3")
        dtype = c[2].selectbox("dtype", DTYPES)
        seed = c[3].number_input("seed", 0, 2**31 - 1, 0)
        grad = st.checkbox("requires_grad")
        if not st.form_submit_button("Define tensor"):
            return None
    try:
        dims = tuple(int(p) for p in shape.replace("(", "").replace(")", "").split(",") if p.strip())
    except ValueError:
        st.error(f"shape must be whole numbers separated by commas, e.g. 2, 3 — got {shape!r}")
        return None
    return Definition(name.strip(), kind or "factory", text, factory, dims or (1,), dtype, int(seed), requires_grad=grad)


def workspace(defs: list[Definition], program: str):
    """Build once per (definitions, program): random tensors and timings stay put across reruns."""
    key = (repr(defs), program)
    if st.session_state.get("tp_ws_key") != key:
        st.session_state.tp_ws = build(defs, program)
        st.session_state.tp_ws_key = key
    return st.session_state.tp_ws


# built before drawing, so each error shows beside the definition or the program that caused it
ws = workspace(st.session_state.tp_defs, st.session_state.tp_program)
left, right = st.columns(2, gap="large")
with left:
    st.subheader("Named tensors")
    for i, d in enumerate(st.session_state.tp_defs):
        a, b = st.columns([6, 1])
        a.code(d.code(), language="python", wrap_lines=True)
        if b.button("✕", key=f"tp_del_{i}_{d.name}", help=f"remove {d.name}"):
            st.session_state.tp_defs.pop(i)
            st.rerun()
        if d.name in ws.errors:
            tv.show_error(ws.errors[d.name], f"tensor {d.name}")
    new = definition_form()
    if new is not None:
        st.session_state.tp_defs = [d for d in st.session_state.tp_defs if d.name != new.name] + [new]
        st.rerun()
with right:
    st.subheader("Program")
    program = st.text_area("one `name = expression` per line (also `with torch.no_grad():`)", key="tp_program",
                           height=190)
    names = dict(ws.names)
    if ws.program_error:
        tv.show_error(ws.program_error, "program")
        kept = st.session_state.get("tp_last_good", {})
        names = {**names, **kept}  # the last good set wins: its views still share storage with their bases
        if kept:
            st.caption("Showing the tensors from the last program that ran, with the definitions on the left.")
    else:
        st.session_state.tp_last_good = ws.names

import torch  # noqa: E402 — after the widgets: the page draws before torch is needed

tensors = {k: v for k, v in names.items() if isinstance(v, torch.Tensor)}
others = {k: v for k, v in names.items() if k not in tensors}
if not tensors:
    st.stop()
st.dataframe(summary(tensors), hide_index=True)

st.subheader("Inspect")
pick = st.selectbox("tensor", list(tensors), index=len(tensors) - 1, key="tp_pick")
t = tensors[pick]
info = inspect(t)
tv.properties(info)
tab_values, tab_storage, tab_code = st.tabs(["Values", "Storage and views", "Show code"])
with tab_values:
    tv.tensor_values(t, f"tp_val_{pick}")
with tab_storage:
    shares = relations(tensors)[pick]
    if shares:
        st.success(f"`{pick}` shares its storage with {', '.join(f'`{s}`' for s in shares)}: it is a view "
                   "(or they are views of it); writing into one changes the others.", icon=":material/link:")
    else:
        st.info(f"`{pick}` owns its storage: no other tensor here reads it (a copy, or a fresh tensor).",
                icon=":material/content_copy:")
    tv.storage_strip(storage_map(t), pick)
    st.markdown(contiguous_plan(t))
with tab_code:
    st.code(ws.code_for(pick) if pick in ws.names else ws.code, language="python")
if others:
    st.caption("Other values: " + ", ".join(f"`{k}` = {short_repr(v, 60)}" for k, v in others.items()))

with st.expander("Broadcasting: how two shapes line up"):
    c = st.columns(3)
    a_name = c[0].selectbox("left", list(tensors), key="tp_bl")
    op = c[1].selectbox("op", ["+", "-", "*", "/", "=="], key="tp_bop")
    b_name = c[2].selectbox("right", list(tensors), index=min(1, len(tensors) - 1), key="tp_br")
    tv.broadcast_table(broadcast(tensors[a_name].shape, tensors[b_name].shape), f"{a_name} {op} {b_name}")

with st.expander("CPU and GPU"):
    if torch.cuda.is_available():
        def _move() -> None:
            st.session_state.tp_program += f"\n{pick}_gpu = {pick}.to('cuda')"

        st.button(f"Move `{pick}` to CUDA", on_click=_move)
    else:
        st.info("No CUDA device here (torch.cuda.is_available() is False): tensors stay on the CPU, and the "
                "GPU timings need a machine with one.", icon=":material/memory:")
    n = st.select_slider("matrix size n (n × n float32 matmul)", [128, 256, 512, 1024, 2048], value=512)
    if st.button("Time matmul (and transfers)", key="tp_time"):
        from core.tensors import compare_devices

        with st.spinner("timing…"):
            st.session_state.tp_timing = compare_devices(n, transfer_mb=64)
    if "tp_timing" in st.session_state:
        tv.device_timings(st.session_state.tp_timing)
