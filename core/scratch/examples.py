"""An example from a from-scratch run's own evaluation split: what "try the model" starts from."""
from __future__ import annotations

from core.settings import Settings
from core.training.config import TrainingConfig


def example_row(config: TrainingConfig, settings: Settings, index: int = 0) -> tuple[list[float], str]:
    """(the numbers one example feeds the model, its true class) for an MLP / CNN run; ValueError when the
    run's data is gone or holds text (text models are tried with typed text)."""
    from core.scratch import data as D

    kind = (config.architecture or {}).get("kind")
    if kind not in ("mlp", "cnn"):
        raise ValueError(f"a {kind} reads text, not a row of numbers")
    splits = (D.sklearn_splits(config) if config.dataset in D.SKLEARN
              else D.store_splits(config, settings, True, config.architecture.get("feature_columns")))
    ev = splits.eval
    if not len(ev):
        raise ValueError("the evaluation split is empty")
    row = ev[min(index, len(ev) - 1)]
    return [float(v) for v in row["inputs"]], splits.label_names[int(row["labels"])]
