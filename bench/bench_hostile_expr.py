"""Hostile formulas and autograd inputs (issue 13, round 2), run one by one with their time and peak memory.

    .venv/bin/python -m bench.bench_hostile_expr            # the table for bench/RESULTS.md
    .venv/bin/python -m bench.bench_hostile_expr -v         # plus one line per input

A worker process (torch imported and warmed once) runs each input with the default caps; the parent kills
it past `--kill-s` seconds or `--kill-gb` GB of RSS and starts a fresh one. Per input: the outcome (ran,
refused with ExpressionError / AutogradError, another exception, or a leak of a secret value), wall
time, and peak RSS growth (VmHWM reset through /proc/self/clear_refs before each input). Over budget:
more than the formula budget (+1 s grace for the one op running when it passes) or more memory than
max_total_bytes (+128 MB for the interpreter, the meta dry run and allocator slack).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import time
from dataclasses import dataclass

SECRET = 4242.0
BITS = struct.unpack("<i", struct.pack("<f", SECRET))[0]
BIG = "a = torch.zeros(10**7, dtype=torch.float64)\n"  # 80 MB


@dataclass(frozen=True)
class Case:
    cls: str
    label: str
    kind: str  # run | uninit | backprop | accumulation | page_literal | page_formula | page_program
    source: str
    output: str = ""
    gradient: str = ""


UNINIT = [("run", s) for s in [
    "b = torch.empty(65536)", "b = torch.empty_like(torch.ones(65536))", "b = torch.ones(3).new_empty(65536)",
    "b = torch.empty(256, 256, dtype=torch.float64)", "b = torch.empty(65536, dtype=torch.int32)",
    "b = torch.empty(65536, requires_grad=True)", "b = torch.ones(2, 2).new_empty((256, 256))",
    "b = torch.empty_like(torch.ones(256, 256), dtype=torch.float64)", "b = torch.empty_strided((256, 256), (256, 1))",
    "b = torch.zeros(10).resize_(65536)", "b = torch.zeros(1).expand(65536).contiguous()",
    "b = torch.cat([torch.empty(30000), torch.empty(40000)])", "b = (torch.empty(65536) * 1).sort().values",
]] + [("page_formula", "torch.empty(65536)"), ("page_literal", "torch.empty(65536)"),
      ("page_program", "b = torch.empty(256, 256)")]
CASES = [Case("uninitialised memory", s, k, s) for k, s in UNINIT] + [
    Case("uninitialised memory", "gradient=torch.empty(65536)", "uninit_grad",
         "x = torch.ones(65536, requires_grad=True)\ny = x * 2", "y", "torch.empty(65536)"),
]
CONTAINERS = [
    "b = [[0] * 10**7] * 10**7 == 0", "b = str([[0] * 10**7] * 10**7)", "b = max([[0] * 10**7] * 10**7)",
    "a = [0]\n" + "a = [a, a]\n" * 45 + "b = a == a", "a = [0]\n" + "a = [a, a]\n" * 45 + "b = str(a)",
    "b = sum([[0] * 10**7] * 8, [])", "b = len(str([[[0] * 1000] * 1000] * 1000))", "b = [1, 2] * 10**8",
    "b = ((0,) * 10**6) * 10**6", "b = sum([[0] * 1000] * 999, [])", "b = 'ab' in [['ab'] * 1000] * 1000",
    "s = 'ab' * 100000\nt = [s, s + 'c'] * 500000\nm = max(t)", "a = 'x' * 200000\nb = [a] * 10**6\nc = str(b)",
    "x = torch.ones(3)\nL = [x] * 100000\nm = max(L)", "x = torch.ones(3)\nL = [x] * 100000\nm = sum(L)",
    "L = [torch.ones(10**7, 1)] * 3\nM = [torch.ones(1, 10**7)] * 3\nb = L == M",
    "b = torch.ones(10**7, 1) in torch.ones(10**7)", "b = [0] * 10**6 == [0] * 10**6",
    "a = [0]\n" + "a = (a, a, a)\n" * 30 + "b = max(a)", "b = torch.zeros([1] * 100000)",
    "b = range(10**7)\nc = [b] * 10**6\nd = str(c)", "b = (2 ** 90000,) * 10**6\nc = max(b)",
]
CASES += [Case("containers", s.splitlines()[-1][:60], "run", s) for s in CONTAINERS]
MEMORY = [
    BIG + "\n".join("b = a.clone()" for _ in range(25)),
    BIG + "t = (" + ", ".join(f"a + {i}" for i in range(25)) + ")",
    "a = torch.zeros(10**7, dtype=torch.float64, requires_grad=True)\nb = a" + ".exp()" * 12,
    "a = torch.zeros(10**7)\nb = a.split(1)", "b = torch.ones(10**6).split(100)",
    BIG + "b = [" + ", ".join(f"a * {i}" for i in range(10)) + "]", "a = torch.zeros(10**7)\nb = a.chunk(10**7)",
    "a = torch.zeros(10**7)\nb = a.unbind()", BIG + "b = sum([a] * 1000)",
    "a = torch.ones(10**7, requires_grad=True)\nb = a * a * a * a * a * a * a * a * a * a * a * a * a * a",
    BIG + "b = a.sigmoid().tanh().exp().sin().cos().sqrt().log1p().relu().abs().neg()",
    "a = torch.ones(10**7, dtype=torch.float64, requires_grad=True)\n" + "a = a * 2\n" * 20,
    "a = torch.zeros(10**6).split(1000)\nb = torch.stack(a)\nc = [b + 1, b + 2, b + 3]",
]
CASES += [Case("memory accounting", s.splitlines()[-1][:60], "run", s) for s in MEMORY]
WORK = [
    ("run", "b = torch.tensor([[0] * 10**4] * 3000)"), ("page_literal", "[[0] * 10**4] * 3000"),
    ("page_literal", "[[[0] * 1000] * 1000] * 300"), ("run", "b = torch.as_tensor([[0.5] * 10**4] * 3000)"),
    ("run", "b = torch.tensor([[[0] * 100] * 100] * 100)"), ("page_literal", "[[0.5] * 3000] * 3000"),
    ("run", "b = torch.stack([torch.ones(10)] * 10**6)"), ("run", "b = torch.tensor(list(range(10**7)))"),
]
CASES += [Case("work before the check", s[:60], k, s) for k, s in WORK]
INDEX = "a = torch.zeros(1000, 1000)\ni = torch.zeros(10**5, 1, dtype=torch.long)\nj = torch.zeros(1, 10**5, dtype=torch.long)\n"
INDEXING = [INDEX + "a[i, j] = 1.0", INDEX + "a[i, j] = torch.ones(1)", INDEX + "b = a[i, j]",
            INDEX + "a[j, i] = a[0, 0]", "a = torch.zeros(100, 100, 100)\ni = torch.zeros(1000, 1, 1, dtype=torch.long)\n"
            "j = torch.zeros(1, 1000, 1, dtype=torch.long)\nk = torch.zeros(1, 1, 1000, dtype=torch.long)\na[i, j, k] = 2.0",
            "a = torch.zeros(10**7)\na[a > -1] = 3.0", INDEX + "a[i] = 1.0"]
CASES += [Case("advanced indexing", s.splitlines()[-1], "run", s) for s in INDEXING]
SLOW = "w = torch.ones(48, requires_grad=True)\nx = torch.rand(1600, 1600)\ny = (x @ x @ x).sum() * w.sum()"
AUTOGRAD = [
    ("backprop", SLOW, "y"), ("backprop", "a = torch.rand(1500, 1500, requires_grad=True)\nn = torch.linalg.norm(a, 'nuc')", "n"),
    ("run", "a = torch.rand(1500, 1500)\nn = torch.norm(a, p='nuc')", ""),
    ("run", "a = torch.rand(1500, 1500)\nn = a.norm('nuc')", ""),
    ("run", "a = torch.rand(2000, 2000)\nn = torch.linalg.matrix_norm(a, ord=2)", ""),
    ("run", "a = torch.rand(2000, 2000)\nn = torch.linalg.matrix_rank(a)", ""),
    ("run", "a = torch.rand(3000, 3000)\nn = torch.linalg.norm(a, 2, dim=1).sum()", ""),
    ("run", "a = torch.rand(2500, 2500)\nn = torch.linalg.solve(a, a)", ""),
    ("backprop", "w = torch.rand(40, 3000, requires_grad=True)\nx = torch.rand(3000, 3000)\ny = (w @ x @ x).sum()", "y"),
    ("accumulation", SLOW, "y"),
]
CASES += [Case("autograd budget", s.splitlines()[-1][:60], k, s, o) for k, s, o in AUTOGRAD]
FIRST = "x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)\ny = x * 2"
ERRORS = [
    ("run", "a = 2 ** 99999\nb = a ** 2", "", ""), ("run", "a = 2 ** 99999\nb = a * a * a", "", ""),
    ("run", "a = 2 ** 99999\nb = str(a)", "", ""), ("run", "a = 2 ** 99999\nb = torch.tensor(a)", "", ""),
    ("run", "a = torch.ones(3).to('meta')", "", ""), ("run", "a = torch.zeros(3, device='meta')", "", ""),
    ("page_program", "a = torch.ones(3).to('meta')", "", ""),
    ("backprop", "a = torch.ones(3, requires_grad=True).to('meta')\nb = a.sum()", "b", ""),
    ("accumulation", "a = torch.ones(3, requires_grad=True)\nb = a * 2\nc = b.sigmoid()\nc[0] = 5.0\nd = c.sum()",
     "d", ""),
    ("accumulation", "a = torch.ones(3, requires_grad=True)\nb = a.exp()\nb[1] = 0.0\nd = b.sum()", "d", ""),
] + [("backprop", FIRST, "y", g) for g in [
    "'abc'", "torch.float", "torch.finfo(torch.float32)", "torch.ones(3).to('meta')", "torch.ones(3, device='meta')",
    "[1, 2]", "(1, 2, 3)", "torch.ones(3, dtype=torch.complex64)", "torch.ones(3) > 0", "x.shape", "2 ** 99999",
    "torch.ones(4)", "range(3)", "None", "torch.ones(3, 1)", "torch.nan"]] + [
    ("accumulation", FIRST, "y", g) for g in ["'abc'", "torch.ones(3).to('meta')", "torch.finfo(torch.float32)"]]
CASES += [Case("clear errors", (g or s.splitlines()[-1])[:60], k, s, o, g) for k, s, o, g in ERRORS]


def _leaked(t) -> bool:
    import torch

    st = t.untyped_storage()
    raw = torch.empty(0, dtype=torch.uint8).set_(st)[: st.nbytes() // 4 * 4]
    return bool((raw.view(torch.int32) == BITS).any())


def _dirty() -> None:
    from core import expr

    for n in (65536, 262144, 1 << 20):
        expr.run(f"secret = torch.full(({n},), {SECRET})")


def execute(case: Case) -> str:
    """'ran', 'refused', 'leak' or 'wrong: <exception>' for one input."""
    import torch

    from core import expr
    from core.tensors import AutogradError, Definition, accumulation, backprop, build

    try:
        if case.kind in ("run", "uninit"):
            if case.cls == "uninitialised memory":
                _dirty()
            out = expr.run(case.source)
            if case.cls == "uninitialised memory" and any(_leaked(v) for v in out.values() if torch.is_tensor(v)):
                return "leak"
        elif case.kind == "uninit_grad":
            _dirty()
            r = backprop(case.source, case.output, gradient=case.gradient, check=False)
            if any(_leaked(g) for g in r.grads.values() if g is not None):
                return "leak"
        elif case.kind == "backprop":
            backprop(case.source, case.output, gradient=case.gradient or None)
        elif case.kind == "accumulation":
            accumulation(case.source, case.output, gradient=case.gradient or None)
        elif case.kind.startswith("page_"):
            _dirty()
            kind = case.kind.removeprefix("page_")
            defs = [Definition("b", kind, case.source)] if kind != "program" else []
            ws = build(defs, case.source if kind == "program" else "")
            errors = [*ws.errors.values(), *([ws.program_error] if ws.program_error else [])]
            if errors:
                raise errors[0]
            if any(_leaked(v) for v in ws.names.values() if torch.is_tensor(v)):
                return "leak"
    except (expr.ExpressionError, AutogradError) as e:
        str(e)  # the message itself must not raise
        return "refused"
    except Exception as e:  # the bug this bench counts
        return f"wrong: {type(e).__name__}: {str(e)[:80]}"
    return "ran"


def _status(key: str) -> int:
    text = open("/proc/self/status").read()
    return int(re.search(rf"{key}:\s+(\d+)", text).group(1)) * 1024


def worker() -> None:
    from core.tensors.autograd import _warm_up_expr

    _warm_up_expr()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        case = CASES[int(line)]
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        base, t0 = _status("VmRSS"), time.perf_counter()
        outcome = execute(case)
        seconds = time.perf_counter() - t0
        print(json.dumps({"outcome": outcome, "s": seconds, "mb": (_status("VmHWM") - base) / 2**20}), flush=True)


class Worker:
    def __init__(self) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "bench.bench_hostile_expr", "--worker"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert json.loads(self.p.stdout.readline())["ready"]

    def rss(self) -> int:
        try:
            text = open(f"/proc/{self.p.pid}/status").read()
            return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) * 1024
        except (OSError, AttributeError):
            return 0

    def run(self, index: int, kill_s: float, kill_bytes: int) -> dict:
        import select

        self.p.stdin.write(f"{index}\n")
        self.p.stdin.flush()
        t0, peak = time.perf_counter(), 0
        while True:
            ready, _, _ = select.select([self.p.stdout], [], [], 0.05)
            if ready:
                line = self.p.stdout.readline()
                if line:
                    return json.loads(line)
                return {"outcome": "crashed", "s": time.perf_counter() - t0, "mb": peak / 2**20}
            peak = max(peak, self.rss())
            elapsed = time.perf_counter() - t0
            if elapsed > kill_s or peak > kill_bytes:
                self.p.kill()
                self.p.wait()
                why = f"killed at {elapsed:.0f} s" if elapsed > kill_s else f"killed at {peak / 2**30:.1f} GB"
                return {"outcome": why, "s": elapsed, "mb": peak / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--kill-s", type=float, default=30.0)
    ap.add_argument("--kill-gb", type=float, default=4.0)
    ap.add_argument("--only", default="", help="run only the classes whose name contains this")
    args = ap.parse_args()
    if args.worker:
        return worker()
    from core.settings import get_settings

    s = get_settings()
    budget_s, budget_mb = s.expr_timeout_s + 1.0, s.max_total_bytes / 2**20 + 128
    rows: dict[str, dict] = {}
    w = Worker()
    for i, case in enumerate(CASES):
        if args.only not in case.cls:
            continue
        r = w.run(i, args.kill_s, int(args.kill_gb * 2**30))
        if r["outcome"].startswith(("killed", "crashed")):
            w = Worker()
        row = rows.setdefault(case.cls, {"tried": 0, "ran": 0, "refused": 0, "wrong": 0, "leak": 0, "over": 0,
                                         "killed": 0, "s": 0.0, "mb": 0.0, "worst_s": "", "worst_mb": ""})
        row["killed"] += r["outcome"].startswith(("killed", "crashed"))
        row["tried"] += 1
        killed = r["outcome"].startswith(("killed", "crashed"))  # never finished: over budget, no verdict
        kind = r["outcome"] if r["outcome"] in ("ran", "refused", "leak") else "killed" if killed else "wrong"
        if kind != "killed":
            row[kind] += 1
        over = killed or r["s"] > budget_s or r["mb"] > budget_mb
        row["over"] += over
        if r["s"] > row["s"]:
            row["s"], row["worst_s"] = r["s"], case.label
        if r["mb"] > row["mb"]:
            row["mb"], row["worst_mb"] = r["mb"], case.label
        if args.verbose or over or kind in ("wrong", "leak", "killed"):
            print(f"  [{case.cls}] {case.kind:12} {r['outcome'][:70]:70} {r['s']:6.2f} s {r['mb']:7.1f} MB  "
                  f"{case.label!r}", flush=True)
    w.p.kill()
    print("\n| class | inputs tried | ran | refused cleanly | wrong exception | leaked a secret "
          "| over budget (killed) | worst time (input) | worst peak memory (input) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cls, r in rows.items():
        print(f"| {cls} | {r['tried']} | {r['ran']} | {r['refused']} | {r['wrong']} | {r['leak']} "
              f"| {r['over']} ({r['killed']}) "
              f"| {r['s']:.2f} s (`{r['worst_s']}`) | {r['mb']:.0f} MB (`{r['worst_mb']}`) |")


if __name__ == "__main__":
    main()
