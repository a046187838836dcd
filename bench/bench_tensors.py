"""Costs of the safe expression language and the CPU/GPU panel, measured side by side in one run.

    .venv/bin/python -m bench.bench_tensors

1. A first-lesson program through `core.expr.run` against the same lines as plain Python/torch.
2. One large op (512x512 matmul) through the language (meta-device size check first) against plain torch.
3. A dataset-style filter compiled once and called per row, against a Python lambda.
4. The playground's own CPU vs GPU matmul and host->device transfers (GPU parts only where CUDA exists).
"""
from __future__ import annotations

import torch

from bench import timing
from core.expr import compile_expression, evaluate, run
from core.tensors.introspect import compare_devices

PROGRAM = "x = torch.tensor([[1, 2], [3, 4]], dtype=torch.float32)\ny = x + 2\nz = torch.matmul(x, y.T)\nv = x.view(-1)"


def best(fn, repeat: int = 5, number: int = 50) -> float:
    return timing.best(fn, repeat, number)


def plain_program() -> dict:
    x = torch.tensor([[1, 2], [3, 4]], dtype=torch.float32)
    y = x + 2
    z = torch.matmul(x, y.T)
    return {"x": x, "y": y, "z": z, "v": x.view(-1)}


def main() -> None:
    run(PROGRAM)  # warm-up: loads torch's meta registrations once
    lang, plain = best(lambda: run(PROGRAM)), best(plain_program)
    print(f"1. first-lesson program: language {lang * 1e6:8.1f} µs, plain {plain * 1e6:8.1f} µs, "
          f"ratio {lang / plain:5.1f}x")

    a = torch.randn(512, 512)
    lang = best(lambda: evaluate("a @ a", {"a": a}), number=10)
    plain = best(lambda: a @ a, number=10)
    print(f"2. 512x512 matmul:       language {lang * 1e3:8.2f} ms, plain {plain * 1e3:8.2f} ms, "
          f"ratio {lang / plain:5.2f}x")

    rows = [{"text": f"review {i} asks for a REFUND" if i % 3 else f"review {i}", "label": "positive",
             "rating": None if i % 7 == 0 else i % 10} for i in range(20_000)]
    f = compile_expression('len(text) > 10 and "refund" in text.lower() and (rating >= 7 or rating is None)')

    def py(r: dict) -> bool:
        rating = r["rating"]
        return len(r["text"]) > 10 and "refund" in r["text"].lower() and (rating is None or rating >= 7)

    assert [f(r) for r in rows] == [py(r) for r in rows]
    lang = best(lambda: [f(r) for r in rows], repeat=3, number=1) / len(rows)
    plain = best(lambda: [py(r) for r in rows], repeat=3, number=1) / len(rows)
    print(f"3. filter per row:       compiled {lang * 1e6:8.2f} µs, lambda {plain * 1e6:8.2f} µs, "
          f"ratio {lang / plain:5.1f}x")

    for n in (256, 1024):
        cmp = compare_devices(n, transfer_mb=64)
        gpu = f"{cmp.gpu.median_s * 1e3:.3f} ms, speed-up {cmp.cpu.median_s / cmp.gpu.median_s:.1f}x" if cmp.gpu \
            else "no GPU"
        print(f"4. {n}x{n} matmul: CPU {cmp.cpu.median_s * 1e3:.2f} ms; GPU {gpu}")
        for t in cmp.transfers:
            print(f"   {t.label}: {t.median_s * 1e3:.2f} ms for 64 MiB ({64 / 1024 / t.median_s:.1f} GiB/s)")


if __name__ == "__main__":
    main()
