"""From a TrainingConfig to tokenized train / eval splits, with every data check before launch."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from core.settings import Settings
from core.training.config import ConfigError, TrainingConfig


@dataclass
class Splits:
    """Raw train / eval splits with the label column encoded as class ids 0..k-1 in `labels`."""

    train: object  # datasets.Dataset
    eval: object
    label_names: list[str]
    majority_baseline: float  # accuracy of always answering the most frequent training class, on eval


def open_dataset(config: TrainingConfig, settings: Settings):
    """(DatasetDict, train split name, eval split name or None) of the saved dataset the config names, for
    every task: the built-in samples are registered on first use, and each mapped column (`config.columns`)
    must exist in the train split. ConfigError names the field."""
    import datasets

    from core.data.store import DatasetStore

    datasets.disable_progress_bars()  # server logs, not progress bars
    store = DatasetStore(settings.datasets_dir)
    if config.dataset == "drug-reviews":
        store.ensure_sample()  # the built-in samples are always there
    elif config.dataset == "ner-sample":
        from core.data.conll import ensure_ner_sample

        ensure_ner_sample(store)
    try:
        dd = store.load(config.dataset, config.dataset_version)
    except Exception as e:  # a missing or unreadable dataset is a config problem, not a crash
        names = ", ".join(sorted({r.name for r in store.list()})) or "none yet"
        raise ConfigError("dataset", f"can't open {config.dataset!r}: {e}. Saved datasets: {names}") from None
    train_name = "train" if "train" in dd else next(iter(dd))
    eval_name = next((s for s in ("validation", "test", "eval") if s in dd and s != train_name), None)
    cols = dd[train_name].column_names
    for role, col in config.columns.items():
        if col not in cols:
            raise ConfigError(f"columns.{role}", f"no column {col!r} in {config.dataset}; columns: {', '.join(cols)}")
    return dd, train_name, eval_name


def hold_out(train, config: TrainingConfig, stratify: str | None = None):
    """(train, eval): `eval_fraction` of the rows held out (seeded), for a dataset with no evaluation split."""
    n_eval = max(1, round(len(train) * config.eval_fraction))
    if len(train) - n_eval < 1:
        raise ConfigError("eval_fraction", f"{len(train)} rows leave nothing to train on")
    parts = train.train_test_split(test_size=n_eval, seed=config.seed, stratify_by_column=stratify)
    return parts["train"], parts["test"]


def cap(train, ev, config: TrainingConfig):
    """(train, eval) cut to max_train_samples / max_eval_samples (the dry-run size)."""
    if config.max_train_samples:
        train = train.select(range(min(config.max_train_samples, len(train))))
    if config.max_eval_samples:
        ev = ev.select(range(min(config.max_eval_samples, len(ev))))
    return train, ev


def load_splits(config: TrainingConfig, settings: Settings) -> Splits:
    """Load the dataset from the store and check columns, labels and sizes; ConfigError names the field."""
    dd, train_name, eval_name = open_dataset(config, settings)
    train = dd[train_name]
    for col, fld in ((config.text_column, "text_column"), (config.text_pair_column, "text_pair_column"),
                     (config.label_column, "label_column")):
        if col and col not in train.column_names:
            raise ConfigError(fld, f"no column {col!r} in {config.dataset}; columns: {', '.join(train.column_names)}")
    if len(train) == 0:
        raise ConfigError("dataset", f"the {train_name!r} split of {config.dataset} is empty")

    label_names = _label_names(train, config.label_column, dd[eval_name] if eval_name else None)
    train = _encode_labels(train, config.label_column, label_names)
    if eval_name:
        ev = _encode_labels(dd[eval_name], config.label_column, label_names)
        if len(ev) == 0:
            raise ConfigError("dataset", f"the {eval_name!r} split of {config.dataset} is empty")
    else:
        counts = Counter(train["labels"])
        n_eval = max(1, round(len(train) * config.eval_fraction))
        stratify = "labels" if min(counts.values()) >= 2 and n_eval >= len(counts) else None
        train, ev = hold_out(train, config, stratify)
    train, ev = cap(train, ev, config)
    if len(set(train["labels"])) < 2:
        raise ConfigError("label_column", f"the training rows have a single class "
                          f"({label_names[train['labels'][0]]!r}): a classifier needs at least two")
    top = Counter(train["labels"]).most_common(1)[0][0]
    baseline = sum(1 for y in ev["labels"] if y == top) / len(ev)
    return Splits(train, ev, label_names, baseline)


def _label_names(train, column: str, ev=None) -> list[str]:
    """Class names: a ClassLabel's own, else the sorted distinct values (strings or whole numbers)."""
    from datasets import ClassLabel

    feature = train.features[column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = list(train[column]) + (list(ev[column]) if ev is not None else [])
    missing = [i for i, v in enumerate(values) if v is None or (isinstance(v, float) and math.isnan(v))]
    if missing:
        rows = ", ".join(str(i) for i in missing[:5])
        raise ConfigError("label_column", f"{len(missing)} rows have no label in {column!r} (rows {rows}"
                          f"{', …' if len(missing) > 5 else ''}); drop them on the Datasets page first")
    if all(isinstance(v, str) for v in values):
        if any(not v.strip() for v in values):
            raise ConfigError("label_column", f"{column!r} has empty labels; drop those rows first")
        return sorted(set(values))
    if all(isinstance(v, (bool, int)) or (isinstance(v, float) and v.is_integer()) for v in values):
        distinct = sorted({int(v) for v in values})
        if len(distinct) > 1000:
            raise ConfigError("label_column", f"{column!r} has {len(distinct)} distinct values: it looks like "
                              "a number to predict, not a class (regression is not supported)")
        return [str(v) for v in distinct]
    raise ConfigError("label_column", f"{column!r} holds fractional numbers: regression is not supported; "
                      "bin it into classes on the Datasets page")


def _encode_labels(ds, column: str, names: list[str]):
    """Add `labels` (class ids) as the Trainer expects."""
    from datasets import ClassLabel

    if isinstance(ds.features[column], ClassLabel) and list(ds.features[column].names) == names:
        out = ds.map(lambda b: {"labels": b[column]}, batched=True, keep_in_memory=True)
        return out.cast_column("labels", ClassLabel(names=names))
    index = {n: i for i, n in enumerate(names)}

    def encode(batch):
        out = []
        for v in batch[column]:
            key = v if isinstance(v, str) else str(int(v))
            if key not in index:
                raise ConfigError("label_column", f"label {v!r} in evaluation is not among training classes")
            out.append(index[key])
        return {"labels": out}

    # a ClassLabel column so train_test_split can stratify by it
    return ds.map(encode, batched=True, keep_in_memory=True).cast_column("labels", ClassLabel(names=names))


def tokenize(ds, tokenizer, config: TrainingConfig, cache_file: str | None = None):
    """Truncate to max_length, no padding (the collator pads per batch); keep only model inputs."""
    cols = [config.text_column] + ([config.text_pair_column] if config.text_pair_column else [])

    def enc(batch):
        texts = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in batch[cols[0]]]
        pairs = None
        if len(cols) == 2:
            pairs = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in batch[cols[1]]]
        out = tokenizer(texts, pairs, truncation=True, max_length=config.max_length)
        out["length"] = [len(x) for x in out["input_ids"]]
        return out

    keep = {"labels"}
    drop = [c for c in ds.column_names if c not in keep]
    kwargs = {"cache_file_name": cache_file} if cache_file else {"keep_in_memory": True}
    return ds.map(enc, batched=True, remove_columns=drop, **kwargs)
