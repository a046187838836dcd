"""What batch size, shuffle and num_workers do to a DataLoader over a run's prepared training data, measured:
the time to iterate one epoch (every row fetched and collated by the run's own collate function), nothing else."""
from __future__ import annotations

import itertools
import math
import statistics
import time
from dataclasses import asdict, dataclass

from core.settings import Settings
from core.training.config import TrainingConfig

MAX_ROWS = 2000  # rows iterated per epoch: a big dataset is measured on its first rows
WORKER_TIMEOUT_S = 60  # a worker that delivers no batch in this long fails the measurement


@dataclass
class LoaderTiming:
    batch_size: int
    shuffle: bool
    num_workers: int
    batches: int
    first_epoch_s: float  # a fresh DataLoader's first epoch: with workers, their start-up is in it
    next_epoch_s: float  # the median of the next epochs of the same DataLoader (workers kept alive)


def time_loaders(config: TrainingConfig, settings: Settings, prepared=None, batch_sizes: tuple[int, ...] | None = None,
                 workers: tuple[int, ...] = (0, 2), shuffles: tuple[bool, ...] = (False, True),
                 max_rows: int = MAX_ROWS, repeats: int = 3, budget_s: float = 120.0) -> dict:
    """Time one epoch for each batch size × shuffle × num_workers over the run's training rows (the first
    `max_rows`): a fresh DataLoader's first epoch, then the median of `repeats` more. Default batch sizes: 8, the
    run's and 128. Starts no new setting once `budget_s` is spent.
    Returns {"rows", "collate", "start_method", "timings": [LoaderTiming as dicts, + rows_per_s]}."""
    import multiprocessing
    import tempfile

    import torch
    from torch.utils.data import DataLoader, Subset
    from transformers import default_data_collator

    from core.scratch.task import setup

    with tempfile.TemporaryDirectory() as tmp:
        task = setup(config, settings, tmp, prepared)
    data = task.train_dataset
    if len(data) > max_rows:
        data = Subset(data, range(max_rows))
    collate = task.data_collator or default_data_collator
    rows = len(data)
    sizes = batch_sizes or tuple(sorted({8, config.batch_size, 128}))
    out, started = [], time.perf_counter()
    for size, shuffle, n in itertools.product(sizes, shuffles, workers):
        loader = DataLoader(data, batch_size=size, shuffle=shuffle, num_workers=n, collate_fn=collate,
                            persistent_workers=n > 0, timeout=WORKER_TIMEOUT_S if n else 0,
                            generator=torch.Generator().manual_seed(config.seed))
        first, batches = _epoch(loader)
        again = statistics.median(_epoch(loader)[0] for _ in range(max(1, repeats)))
        del loader  # stops its workers
        out.append(LoaderTiming(size, shuffle, n, batches, first, again))
        if time.perf_counter() - started > budget_s:
            break
    timings = [asdict(t) | {"rows_per_s": _rate(rows, t.next_epoch_s)} for t in out]
    return {"rows": rows, "collate": getattr(collate, "__name__", type(collate).__name__),
            "start_method": multiprocessing.get_start_method(), "timings": timings}


def _epoch(loader) -> tuple[float, int]:
    """Seconds to draw every batch of one epoch, and how many there were."""
    start = time.perf_counter()
    batches = sum(1 for _ in loader)
    return time.perf_counter() - start, batches


def _rate(rows: int, seconds: float) -> float:
    return math.inf if seconds <= 0 else rows / seconds
