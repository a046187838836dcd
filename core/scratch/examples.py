"""An example from a from-scratch run's own evaluation split: what "try the model" starts from."""
from __future__ import annotations

from core.settings import Settings
from core.training.config import TrainingConfig


def example_row(config: TrainingConfig, settings: Settings, index: int = 0) -> tuple[list[float], str]:
    """(the numbers one example feeds the model, its true class) for an MLP / CNN run; ValueError when the
    run's data is gone or holds text (text models are tried with typed text)."""
    from core.scratch.architectures import full_architecture
    from core.scratch.task import numeric_splits

    kind = (config.architecture or {}).get("kind")
    if kind not in ("mlp", "cnn"):
        raise ValueError(f"a {kind} reads text, not a row of numbers")
    splits, _ = numeric_splits(config, settings, full_architecture(config.architecture))
    ev = splits.eval
    if not len(ev):
        raise ValueError("the evaluation split is empty")
    row = ev[min(index, len(ev) - 1)]
    return [float(v) for v in row["inputs"]], splits.label_names[int(row["labels"])]
