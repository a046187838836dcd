"""Benchmarks: each module measures Torch Lab against a plain baseline side by side in one run.

    python -m bench.bench_training      # training overhead, tutorial recipe, live latency
"""
