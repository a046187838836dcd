"""Search over many slices (run in parallel) gives the rows a plain Python scan finds, in row order."""
from __future__ import annotations

import random

import datasets
import pytest

from core.data import stats as S


def _reference(texts: list, query: str, limit: int) -> tuple[list[int], int]:
    found = [i for i, t in enumerate(texts) if t is not None and query.lower() in str(t).lower()]
    return found[:limit], len(found)


@pytest.mark.parametrize("view", ["whole", "shuffled", "selected"])
def test_search_in_slices_equals_a_python_scan(monkeypatch, view):
    monkeypatch.setattr(S, "SCAN_BATCH", 37)  # ~60 slices, more than two per thread in flight
    rng = random.Random(7)
    words = ["relief", "RELIEF", "Relief!", "rel ief", "pain", "Éclair", "éclair", None]
    texts = [" ".join(str(rng.choice(words)) for _ in range(rng.randint(0, 3))) if rng.random() > 0.05 else None
             for _ in range(2_222)]
    ds = datasets.Dataset.from_dict({"text": texts, "n": list(range(2_222))})
    if view == "shuffled":
        ds = ds.shuffle(seed=3)
    elif view == "selected":
        ds = ds.select(range(5, 2_000, 3))
    shown = ds["text"]
    for query, limit in (("relief", 100), ("ÉCLAIR", 7), ("zzz", 100), ("rel", 10_000)):
        assert S.search(ds, "text", query, limit=limit) == _reference(shown, query, limit)
    assert S.search(ds, "n", "11", limit=50) == _reference(ds["n"], "11", 50)  # numbers as they are shown
