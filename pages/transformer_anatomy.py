"""Transformer anatomy: open a real Transformer and watch attention work, token by token."""
import streamlit as st

from components import anatomy_views as V
from core.models import (
    ATOL,
    CAUSAL_HINT,
    AnatomyError,
    choose_token,
    compare_masks,
    encode,
    next_token_probs,
    position_tables,
    reproduce_code,
    top_tokens,
    walk_head,
)

SAMPLE = "The cat sat on the mat because it was tired."
SECOND = "A dog barked."
ROWS = ["the first text", "the second text"]
STEPS = ["1 · Q, K, V", "2 · scores", "3 · mask", "4 · softmax", "5 · weights·V", "6 · concat & project"]
EXPLAIN = [
    "Each token's vector **X** is projected three ways with the layer's own weights: a query (what it looks for), "
    "a key (what it offers) and a value (what it passes on). One head uses its own d_k columns of each matrix.",
    "Every query is compared with every key: the dot product, scaled by 1/√d_k so the softmax stays soft.",
    "Blocked pairs get −∞ before the softmax: padding keys always; for a decoder also every later token.",
    "Softmax turns each row into weights that sum to 1: where this token looks.",
    "Each token's output is the weighted average of the values it looks at.",
    "All heads' outputs are laid side by side and projected by W_O; BERT adds the input back and normalises.",
]

st.title("Transformer anatomy")
st.caption("Every number here is recomputed from the model's weights and checked against the model's own output "
           f"(`torch.allclose`, atol {ATOL:g}, float32).")


def _probs(logits):
    """The distribution the sliders describe, read from their keys (a callback sees the newest values)."""
    ss = st.session_state
    return next_token_probs(logits, ss.get("anat_temp", 1.0), int(ss.get("anat_topk", 0)), ss.get("anat_topp", 1.0))


def _add_token(logits, greedy: bool) -> None:
    """Button callback: append the chosen next token (it runs before the rerun, so the click is never lost)."""
    gen = st.session_state.setdefault("anat_gen", [])
    probs = _probs(logits)
    choice = choose_token(probs, greedy=greedy, seed=len(gen))
    gen.append((choice.token_id, choice.probability, greedy))


def _open_clicked() -> None:
    """Model-view click callback: open the clicked head in the Layer / Head pickers, which keep it across reruns."""
    picked = V.clicked_head(st.session_state.get("anat_model_view"))
    if picked is not None:
        st.session_state.update(anat_layer=picked[0], anat_head=picked[1])


def next_token_panel(lm, anatomy, layer: int, head: int) -> None:
    if lm.kind != "decoder" or anatomy.next_token_logits is None:
        st.info(f"{lm.name} is an encoder: it sees the whole sentence at once and does not predict a next token. "
                + (V.SEQ2SEQ_NOTE + " " if lm.family == "bart" else "") + CAUSAL_HINT, icon=":material/info:")
        return
    c = st.columns(3)
    c[0].slider("Temperature (0 = greedy)", 0.0, 2.0, 1.0, 0.05, key="anat_temp")
    c[1].number_input("Top-k (0 = off)", 0, 1000, 0, key="anat_topk")
    c[2].slider("Top-p", 0.05, 1.0, 1.0, 0.05, key="anat_topp")
    logits = anatomy.next_token_logits
    last = anatomy.real_len - 1  # the last real token: [PAD]s may follow it
    probs = _probs(logits)  # cached logits: a slider reruns only this, no model call
    top = top_tokens(probs, 15)
    names = lm.tokenizer.convert_ids_to_tokens([i for i, _ in top])
    st.plotly_chart(V.next_token_bars(list(zip(names, [p for _, p in top], strict=True)),
                                      f"Next token after '{anatomy.tokens[last]}' · {int((probs > 0).sum()):,} "
                                      "tokens can be drawn"), key="anat_bars")
    b = st.columns(3)
    b[0].button("Greedy next token", on_click=_add_token, args=(logits, True), key="anat_greedy")
    b[1].button("Sample next token", on_click=_add_token, args=(logits, False), key="anat_sample")
    b[2].button("Reset", on_click=lambda: st.session_state.update(anat_gen=[]), key="anat_reset")
    gen = st.session_state.get("anat_gen", [])
    if gen:
        toks = lm.tokenizer.convert_ids_to_tokens([g[0] for g in gen])
        st.markdown("Generated: " + " ".join(f"`{t}` ({p:.3f}, {'greedy' if g else 'sampled'})"
                                             for t, (_, p, g) in zip(toks, gen, strict=True)))
        st.plotly_chart(V.row_bars(anatomy.tokens, anatomy.layer_attentions[layer][head, last],
                                   f"Where the new token '{anatomy.tokens[last]}' looks (layer {layer}, head {head})"),
                        key="anat_newrow")


def main() -> None:
    options = V.model_options()
    left, right = st.columns([1, 2])
    pick = left.selectbox("Model", list(options), key="anat_model")
    if note := V.unopened_seq2seq():
        left.caption(note)
    spec = options[pick] or left.text_input("Folder on the server, or a hub id", key="anat_spec")
    text = right.text_area("Text", SAMPLE, height=100, key="anat_text")
    shown, other = text, None
    if right.toggle("Batch it with a second text (shows padding)", key="anat_pad"):
        t2, r2 = right.columns([3, 2])
        second = t2.text_input("Second text", SECOND, key="anat_text2")
        # the page shows one row of the batch; the shorter one is the one padded
        look = r2.radio("Look at", ROWS, index=1, key="anat_row")
        shown, other = (second, text) if look == ROWS[1] else (text, second)
    if not spec.strip():
        st.info("Give the folder of a model saved with `save_pretrained` (BERT-family, GPT-2-style or a BART, whose "
                "encoder opens), or a hub id where the network allows.", icon=":material/info:")
        return
    try:
        lm = V.model(spec)
        ids, truncated = encode(lm, shown)
        other_ids = None if other is None else encode(lm, other)[0]
    except (AnatomyError, OSError) as e:
        st.error(str(e), icon=":material/error:")
        return
    if st.session_state.get("anat_gen_for") != (spec, shown, other):  # new model or text: generate afresh
        st.session_state.update(anat_gen_for=(spec, shown, other), anat_gen=[])
    ids = ids + [g[0] for g in st.session_state["anat_gen"]]
    anatomy, heads, pooled_maps = V.forward(spec, ids, truncated, other_ids)
    L, nH, T = anatomy.num_layers, anatomy.num_heads, anatomy.seq_len
    st.caption(f"{lm.family} {anatomy.kind} · {L} layers × {nH} heads · d_k = {anatomy.head_dim} · {T} tokens"
               + (f" (cut to the model's {lm.max_tokens})" if truncated else "")
               + (" · " + V.SEQ2SEQ_NOTE if lm.family == "bart" else "")
               + ("" if other is None else f" · batched with the other text, padded to the longer: "
                  f"{anatomy.real_len} tokens of this text, {T - anatomy.real_len} padding"))
    c = st.columns(2)
    layer = c[0].selectbox("Layer", range(L), key="anat_layer")
    head = c[1].selectbox("Head", range(nH), key="anat_head")
    walk = walk_head(lm, anatomy, layer, head, verify=False)  # one head: drawn at once, verified below

    views, steps, embed, masks, nxt, every = st.tabs(
        ["Model & head view", "Step by step", "Embeddings & positions", "Encoder vs decoder", "Next token",
         "Every head"])
    with views:
        a, b = st.columns([3, 2])
        a.caption("Click a head in the grid to open it here, in the step-by-step walk and the other tabs.")
        a.plotly_chart(V.model_view(pooled_maps, layer, head), key="anat_model_view", on_select=_open_clicked,
                       selection_mode="points")
        b.plotly_chart(V.head_view(anatomy, walk.weights, layer, head), key="anat_head_view")
        st.plotly_chart(V.residual(anatomy), key="anat_residual")
    with steps:
        step = STEPS.index(st.radio("Step", STEPS, horizontal=True, key="anat_step"))
        st.markdown(EXPLAIN[step])
        if step in (2, 3) and other is not None:
            st.markdown(V.padding_note(walk, anatomy.tokens) or "This text is the longer of the two, so it has no "
                        "padding: look at the other to see the [PAD] columns blocked.")
        for i, fig in enumerate(V.step_figures(walk, anatomy.tokens, step)):
            st.plotly_chart(fig, key=f"anat_step_fig{i}")
        verdict = st.empty()  # filled last: the whole page is drawn before the layer is recomputed
        verdict.info(f"Verifying: recomputing layer {layer} (all {nH} heads and the feed-forward block) from its "
                     "weights to check every step against the model's own…", icon=":material/pending:")
    with embed:
        st.markdown("Layer 0's input is the sum of a token's row, its position's row"
                    + (" and its segment's row, then LayerNorm." if anatomy.token_type_embeddings is not None
                       else "."))
        st.plotly_chart(V.positions(position_tables(lm, max(T, 64)), T), key="anat_positions")
    with masks:
        st.caption(f"Layer {layer}, head {head}: the same scores Q·Kᵀ/√d_k under each mask.")
        st.plotly_chart(V.masks(*compare_masks(walk), anatomy.tokens), key="anat_masks")
    with nxt:
        next_token_panel(lm, anatomy, layer, head)
    with every:
        st.plotly_chart(V.summaries(heads, L, nH), key="anat_summary")
        st.dataframe(V.links_table(heads, anatomy.tokens), hide_index=True, key="anat_links")
    with st.expander("Show code"):
        st.code(reproduce_code(lm, shown, layer, head, st.session_state.get("anat_temp", 1.0), other),
                language="python")
    checks = anatomy.checks + V.verification(spec, ids, truncated, layer, head, other_ids)
    ok = sum(ch.matched for ch in checks)
    with verdict.container():
        (st.success if ok == len(checks) else st.error)(
            f"{ok} of {len(checks)} recomputed tensors match the model's own (atol {ATOL:g})")
        st.dataframe(V.checks_table(checks), hide_index=True, key="anat_checks")


main()
