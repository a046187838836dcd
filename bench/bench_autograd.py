"""Costs behind the autograd page, measured side by side in one run.

    .venv/bin/python -m bench.bench_autograd

1. The graph recorder (a TorchFunctionMode) against running the same program bare.
2. The finite-difference check against backprop without it.
3. One AdamW step on an MLP: for-loop vs foreach vs fused (the page uses fused wherever torch has the kernel).
"""
from __future__ import annotations

import time

import torch

from bench import timing
from core import expr
from core.tensors.autograd import EXAMPLES, backprop
from core.tensors.graph import recorder

PROGRAM = EXAMPLES["Tiny neuron: sigmoid(w @ x + b)"].program


def best(fn, repeat: int = 7, number: int = 20) -> float:
    return timing.best(fn, repeat, number)


def recorded() -> None:
    with recorder():
        expr.run(PROGRAM)


def adamw_steps(width: int, device: str, rounds: int = 15, number: int = 5) -> dict[str, float]:
    """Seconds per AdamW step for each implementation, timed in interleaved rounds (best round wins)."""
    kinds = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    opts = {}
    for impl, kwargs in kinds.items():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                                    torch.nn.ReLU(), torch.nn.Linear(width, 1)).to(device)
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        opts[impl] = torch.optim.AdamW(model.parameters(), lr=1e-3, **kwargs)
        opts[impl].step()  # state allocation outside the timing
    out = dict.fromkeys(kinds, float("inf"))
    for _ in range(rounds):
        for impl, opt in opts.items():
            t = time.perf_counter()
            for _ in range(number):
                opt.step()
            out[impl] = min(out[impl], (time.perf_counter() - t) / number)
    return out


def main() -> None:
    torch.set_num_threads(2)
    expr.run(PROGRAM)  # warm: lazy imports
    bare, rec = best(lambda: expr.run(PROGRAM)), best(recorded)
    print(f"program run: bare {bare * 1e3:.2f} ms, recorded {rec * 1e3:.2f} ms -> recorder x{rec / bare:.2f}")
    plain = best(lambda: backprop(PROGRAM, "loss", check=False), repeat=3, number=5)
    checked = best(lambda: backprop(PROGRAM, "loss"), repeat=3, number=5)
    print(f"backprop: {plain * 1e3:.1f} ms, with finite-difference check {checked * 1e3:.1f} ms "
          f"-> check x{checked / plain:.1f} (4 leaf elements, 8 extra program runs)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for width in (64, 512):
        t = adamw_steps(width, device)
        print(f"AdamW step, MLP width {width} on {device}: " + ", ".join(f"{k} {v * 1e6:.0f} us" for k, v in t.items())
              + f" -> foreach x{t['for-loop'] / t['foreach']:.2f}, fused x{t['for-loop'] / t['fused']:.2f} vs for-loop")


if __name__ == "__main__":
    main()
