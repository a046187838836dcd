"""Transformer anatomy (#15): page-ready data for 512 tokens vs a plain forward and vs bertviz, and the slider redraw.

    .venv/bin/python -m bench.bench_anatomy [--rounds 7] [--threads N] [--bertviz-rounds 3]

1. MiniLM-L6, 512 tokens, all 6 layers × 12 heads, every side once per round in a rotating order (so a
   busy spell on the shared machine hits every side alike), best and median of each, and the median of the
   per-round ratios to the floor:
   - the floor, a plain `model(ids, output_attentions=True)` forward;
   - **page-ready**, what the page needs before it can draw: `run_anatomy` (forward with hidden states and
     hooks) + `head_summaries` (entropy, distance, top links of 72 heads) + `pooled` (the model view) +
     `walk_head(verify=False)` (the open head recomputed from the weights);
   - page-ready + the figures the browser gets (model view, head view, every-head summary) as plotly JSON;
   - page-ready + `verify_walk` (the open head's whole layer recomputed, nine checks), which the page runs
     after everything else is drawn;
   - each part of page-ready alone (on one held forward's results), to see where the time over the floor goes;
   - bertviz, when installed (`.venv/bin/pip install bertviz`; bench only, not a requirement): the same
     forward + `head_view(attentions, tokens, html_action="return")`, which turns the 6×12×512×512 weights
     into Python lists and JSON inside one HTML string; its `head_view` part is also timed alone, and once
     more with `include_layers=[layer]` (one layer: what bertviz suggests for long inputs). Far slower, so
     only in the first --bertviz-rounds rounds.
2. The next-token panel's redraw when a slider moves: `next_token_probs` + `top_tokens` + the bar figure
   serialised to JSON, on cached logits of a 50,257-token vocabulary (GPT-2's size). No model call.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import time

import numpy as np

LAYER, HEAD = 2, 5  # the head the page has open


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _bertviz():
    """bertviz's head_view, or None with the reason."""
    try:
        from bertviz import head_view
    except ImportError as e:
        return None, f"bertviz not installed ({e}); `.venv/bin/pip install bertviz` to compare"
    return head_view, ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--bertviz-rounds", type=int, default=3)
    a = ap.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from components import anatomy_views as V
    from core.models import (
        encode,
        head_summaries,
        load_model,
        next_token_probs,
        pooled,
        run_anatomy,
        top_tokens,
        verify_walk,
        walk_head,
    )

    lm = load_model("minilm-l6")
    ids, _ = encode(lm, " ".join(f"word{i}" for i in range(600)))
    x = torch.tensor([ids])
    tokens = lm.tokenizer.convert_ids_to_tokens(ids)
    print(f"threads {torch.get_num_threads()}; {len(ids)} tokens, {len(lm.layers)} layers × {lm.num_heads} heads; "
          f"load average {os.getloadavg()[0]:.1f}")

    def plain():
        with torch.inference_mode():
            return lm.model(input_ids=x, output_attentions=True)

    def page_ready(verify: bool = False, figures: bool = False):
        anatomy = run_anatomy(lm, ids)
        heads = head_summaries(anatomy.layer_attentions)
        maps = pooled(anatomy.layer_attentions)
        w = walk_head(lm, anatomy, LAYER, HEAD, verify=False)
        if verify:
            assert all(c.matched for c in verify_walk(lm, anatomy, w))
        if figures:
            return sum(len(f.to_json()) for f in (V.model_view(maps, LAYER, HEAD),
                                                  V.head_view(anatomy, w.weights, LAYER, HEAD),
                                                  V.summaries(heads, anatomy.num_layers, anatomy.num_heads)))
        return 0

    held = run_anatomy(lm, ids)  # the parts of page-ready, each timed alone on one forward's results
    sides = {"floor: plain forward (output_attentions=True)": plain, "page-ready data": page_ready,
             "page-ready + figures as JSON": lambda: page_ready(figures=True),
             "page-ready + verification": lambda: page_ready(verify=True),
             "  part: run_anatomy (forward + hooks)": lambda: run_anatomy(lm, ids),
             "  part: head_summaries (72 heads)": lambda: head_summaries(held.layer_attentions),
             "  part: pooled (model view)": lambda: pooled(held.layer_attentions),
             "  part: walk_head(verify=False)": lambda: walk_head(lm, held, LAYER, HEAD, verify=False)}
    head_view, why = _bertviz() if a.bertviz_rounds > 0 else (None, "bertviz: not asked for (--bertviz-rounds 0)")
    extra: dict[str, list[float]] = {}
    html_mb: dict[str, float] = {}
    if head_view is not None:
        def bertviz(include_layers=None):
            out = plain()
            t = time.perf_counter()
            html = head_view(out.attentions, tokens, include_layers=include_layers, html_action="return")
            name = "bertviz head_view alone" + ("" if include_layers is None else ", one layer")
            extra.setdefault(name, []).append(time.perf_counter() - t)
            html_mb[name] = len(html.data) / 1e6
            del html, out
            gc.collect()

        sides["bertviz: forward + head_view (HTML)"] = bertviz
        sides["bertviz: forward + head_view, one layer"] = lambda: bertviz([LAYER])
    else:
        print(why)

    payload = page_ready(figures=True) / 1e6
    for name, fn in sides.items():  # warm-up; bertviz's whole-model call (20+ s) is warmed by its one-layer call
        if name != "bertviz: forward + head_view (HTML)":
            fn()
    extra.clear()
    times: dict[str, list[float]] = {name: [] for name in sides}
    floors: list[float] = []
    names = list(sides)
    for r in range(a.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            if name.startswith("bertviz") and r >= a.bertviz_rounds:
                continue
            times[name].append(_timed(sides[name]))
        floors.append(times[names[0]][-1])
    times.update(extra)
    floor = times[names[0]]
    print(f"load average after: {os.getloadavg()[0]:.1f}; rounds {a.rounds} (bertviz {min(a.rounds, a.bertviz_rounds)})")
    for name, ts in times.items():
        if not ts:
            continue
        paired = sorted(t / f for t, f in zip(ts, floors, strict=False))
        print(f"{name:44s} best {min(ts):7.3f} s, median {statistics.median(ts):7.3f} s; × floor: best/best "
              f"{min(ts) / min(floor):6.2f}, per round {paired[0]:.2f}–{paired[-1]:.2f} "
              f"(median {statistics.median(paired):.2f})")
    print(f"to the browser: Torch Lab's three figures {payload:.2f} MB of JSON; "
          + "; ".join(f"{k}: {v:.1f} MB of HTML" for k, v in html_mb.items()))

    logits = np.random.default_rng(0).normal(size=50_257).astype(np.float32)

    def redraw(t=0.8, k=40, p=0.9):
        probs = next_token_probs(logits, t, k, p)
        top = top_tokens(probs, 15)
        V.next_token_bars([(str(i), q) for i, q in top], "next token").to_json()

    redraw()
    times_ms = [_timed(lambda i=i: redraw(0.5 + 0.1 * (i % 10), i % 50, 0.5 + 0.05 * (i % 10))) * 1e3
                for i in range(50)]
    print(f"slider redraw (probs + top 15 + figure JSON, 50,257 logits): median {statistics.median(times_ms):.1f} ms,"
          f" max {max(times_ms):.1f} ms")


if __name__ == "__main__":
    main()
