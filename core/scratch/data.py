"""Data for from-scratch runs: scikit-learn's bundled tables and digits, workspace datasets (numbers or text),
the toy reverse task, and tokenizers (an offline one by name, or a byte-level BPE trained on the training text)."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace

from core.settings import Settings
from core.training.config import ConfigError, TrainingConfig

SKLEARN = {"sklearn:digits": "load_digits", "sklearn:iris": "load_iris", "sklearn:wine": "load_wine",
           "sklearn:breast_cancer": "load_breast_cancer"}
TOY = ("toy:reverse",)
BUILTIN = (*SKLEARN, *TOY)
TRAIN_TOKENIZER = "train"  # architecture["tokenizer"]: train a byte-level BPE on the training text
EOS = "<|endoftext|>"


@dataclass
class Splits:
    train: object  # datasets.Dataset
    eval: object
    label_names: list[str] = field(default_factory=list)
    majority_baseline: float = 0.0
    features: list[str] = field(default_factory=list)  # the numeric columns (MLP / CNN)
    validation: object = None  # rows carved from the training split to choose the epoch (None = none carved)
    skipped: dict = field(default_factory=dict)  # an image folder's files left out: reason -> count


def _cap(ds, n):
    return ds.select(range(min(n, len(ds)))) if n else ds


def _majority(train_labels, eval_labels) -> float:
    top = Counter(train_labels).most_common(1)[0][0]
    return sum(1 for y in eval_labels if y == top) / max(1, len(eval_labels))


def _finish(config: TrainingConfig, train, ev, names: list[str], features: list[str]) -> Splits:
    train, ev = _cap(train, config.max_train_samples), _cap(ev, config.max_eval_samples)
    if len(set(train["labels"])) < 2:
        raise ConfigError("label_column", f"the training rows have a single class ({names[train['labels'][0]]!r}): "
                          "a classifier needs at least two")
    return Splits(train, ev, names, _majority(train["labels"], ev["labels"]), features)


def sklearn_splits(config: TrainingConfig) -> Splits:
    """A scikit-learn bundled dataset (no download) as `inputs` (numbers) + `labels`, split stratified."""
    import datasets
    import numpy as np
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    bunch = getattr(sklearn.datasets, SKLEARN[config.dataset])()
    x, y = np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target)
    names = [str(n) for n in bunch.target_names]
    xt, xe, yt, ye = train_test_split(x, y, test_size=config.eval_fraction, random_state=config.seed, stratify=y)
    label = datasets.ClassLabel(names=names)
    feats = datasets.Features({"inputs": datasets.Sequence(datasets.Value("float32")), "labels": label})

    def ds(a, b):
        return datasets.Dataset.from_dict({"inputs": a.tolist(), "labels": b.tolist()}, features=feats)

    return _finish(config, ds(xt, yt), ds(xe, ye), names, [str(f) for f in bunch.feature_names])


def image_splits(config: TrainingConfig, settings: Settings, size: int) -> tuple[Splits, tuple]:
    """A folder of images (core.scratch.images) as `inputs` (channels × size × size pixels in [0, 1], flattened)
    + `labels`, split stratified. Returns (splits, one image's shape); splits.skipped counts the files left out."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from core.scratch.images import load_folder

    data = load_folder(config.dataset, settings, size)
    x, y = data.pixels.reshape(len(data.pixels), -1), data.labels
    counts = np.bincount(y)
    n_eval = round(len(y) * config.eval_fraction)
    if n_eval < 1 or len(y) - n_eval < 2:
        raise ConfigError("eval_fraction", f"{config.eval_fraction:g} of {len(y):,} images leaves no image to "
                          "evaluate on or too few to train on")
    stratify = y if counts.min() >= 2 and n_eval >= len(counts) else None
    idx_t, idx_e = train_test_split(np.arange(len(y)), test_size=n_eval, random_state=config.seed, stratify=stratify)
    splits = _finish(config, _pixel_rows(x[np.sort(idx_t)], y[np.sort(idx_t)], data.classes),
                     _pixel_rows(x[np.sort(idx_e)], y[np.sort(idx_e)], data.classes), data.classes,
                     _pixel_names(data.shape))
    return replace(splits, skipped=data.skipped), data.shape


def _pixel_rows(x, y, classes: list[str]):
    """`inputs` (flattened pixels) + `labels` as a Dataset, Arrow straight from the arrays (no list per pixel)."""
    import datasets
    import pyarrow as pa

    feats = datasets.Features({"inputs": datasets.Sequence(datasets.Value("float32"), length=x.shape[1]),
                               "labels": datasets.ClassLabel(names=classes)})
    flat = pa.array(x.reshape(-1), type=pa.float32())
    table = pa.table({"inputs": pa.FixedSizeListArray.from_arrays(flat, x.shape[1]),
                      "labels": pa.array(y, type=pa.int64())})
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=feats))


def _pixel_names(shape) -> list[str]:
    c, h, w = shape
    return [f"pixel_{k}_{r}_{q}" for k in range(c) for r in range(h) for q in range(w)]


def image_column_splits(config: TrainingConfig, settings: Settings, column: str, size: int) -> tuple[Splits, tuple]:
    """A workspace dataset whose `column` holds images (paths to image files, encoded bytes or a `datasets` Image
    column) and whose label column holds the classes, through the fine-tuning loader (label checks, split,
    caps): the same `inputs` + `labels` as an image folder. Rows whose image can't be used are left out and
    counted in splits.skipped."""
    import datasets
    import numpy as np

    from core.scratch.images import COLUMN_FIELD, MAX_IMAGES, decode_cells
    from core.training.data import load_splits

    if not isinstance(column, str) or not column:
        raise ConfigError(COLUMN_FIELD, "the name of the column that holds the images")
    if column == config.label_column:
        raise ConfigError(COLUMN_FIELD, f"{column!r} is the label column: pick the column holding the images")
    s = load_splits(replace(config, text_pair_column=None, text_column=config.label_column), settings)
    if column not in s.train.column_names:
        cols = [c for c in s.train.column_names if c not in (config.label_column, "labels")]
        raise ConfigError(COLUMN_FIELD, f"no column {column!r} in {config.dataset}; columns: {', '.join(cols)}")
    if (rows := len(s.train) + len(s.eval)) > MAX_IMAGES:
        raise ConfigError(COLUMN_FIELD, f"{rows:,} rows of images, over the cap of {MAX_IMAGES:,}: lower Max "
                          "training / evaluation samples")

    def cells(ds):
        if isinstance(ds.features[column], datasets.Image):  # its encoded bytes and path, not PIL images
            ds = ds.cast_column(column, datasets.Image(decode=False))
        return list(ds[column])

    pixels, kept, skipped = decode_cells(cells(s.train) + cells(s.eval), settings, size)
    if not kept:
        said = ", ".join(f"{v:,} {k}" for k, v in skipped.items())
        raise ConfigError(COLUMN_FIELD, f"no cell of {column!r} is a readable image ({said}): the column should hold paths to image files inside the folders the "
                          "server may read, or the images' bytes")
    kept = np.asarray(kept)
    labels = np.asarray(list(s.train["labels"]) + list(s.eval["labels"]), dtype=np.int64)[kept]
    x, in_train = pixels.reshape(len(pixels), -1), kept < len(s.train)
    shape = tuple(pixels.shape[1:])
    splits = _finish(config, _pixel_rows(x[in_train], labels[in_train], s.label_names),
                     _pixel_rows(x[~in_train], labels[~in_train], s.label_names), s.label_names, _pixel_names(shape))
    return replace(splits, skipped=skipped), shape


def store_splits(config: TrainingConfig, settings: Settings, numeric: bool, feature_columns=None) -> Splits:
    """A workspace dataset through the fine-tuning loader (label checks, split, caps); numeric models get
    `inputs` built from the feature columns."""
    from core.training.data import load_splits

    cfg = replace(config, text_pair_column=None)
    if numeric:
        cfg = replace(cfg, text_column=config.label_column)  # the loader checks that column exists
    s = load_splits(cfg, settings)
    if not numeric:
        return Splits(s.train, s.eval, s.label_names, s.majority_baseline)
    cols = [c for c in s.train.column_names if c not in (config.label_column, "labels")]
    fld = "architecture.feature_columns"
    if feature_columns is None:
        feature_columns = [c for c in cols if _is_number(s.train.features[c])]
        if not feature_columns:
            raise ConfigError(fld, f"{config.dataset} has no numeric column (columns: {', '.join(cols)}); "
                              "text goes to an RNN, Transformer or GPT, not an MLP / CNN")
    if not isinstance(feature_columns, list) or not all(isinstance(c, str) for c in feature_columns):
        raise ConfigError(fld, "must be a list of column names")
    for c in feature_columns:
        if c not in s.train.column_names:
            raise ConfigError(fld, f"no column {c!r} in {config.dataset}; columns: {', '.join(cols)}")
        if not _is_number(s.train.features[c]):
            raise ConfigError(fld, f"column {c!r} holds {s.train.features[c]}, not numbers: a text column goes to "
                              "an RNN, Transformer or GPT, not an MLP / CNN")

    def to_inputs(batch):
        rows = zip(*(batch[c] for c in feature_columns), strict=True)
        return {"inputs": [[float("nan") if v is None else float(v) for v in r] for r in rows]}

    keep = ["inputs", "labels"]
    train = s.train.map(to_inputs, batched=True, keep_in_memory=True)
    ev = s.eval.map(to_inputs, batched=True, keep_in_memory=True)
    train = train.remove_columns([c for c in train.column_names if c not in keep])
    ev = ev.remove_columns([c for c in ev.column_names if c not in keep])
    import numpy as np

    if np.isnan(np.asarray(train["inputs"], dtype=np.float64)).any():
        raise ConfigError(fld, "some feature cells are empty; fill or drop them on the Datasets page first")
    return Splits(train, ev, s.label_names, s.majority_baseline, list(feature_columns))


def _is_number(feature) -> bool:
    dtype = getattr(feature, "dtype", "")
    return isinstance(dtype, str) and dtype.startswith(("int", "uint", "float", "bool"))


def lm_texts(config: TrainingConfig, settings: Settings) -> tuple[list[str], list[str]]:
    """Training / held-out texts of one column for a causal LM (no labels needed)."""
    from core.data.store import DatasetStore

    store = DatasetStore(settings.datasets_dir)
    if config.dataset == "drug-reviews":
        store.ensure_sample()
    try:
        dd = store.load(config.dataset, config.dataset_version)
    except Exception as e:
        raise ConfigError("dataset", f"can't open {config.dataset!r}: {e}") from None
    train_name = "train" if "train" in dd else next(iter(dd))
    train = dd[train_name]
    if config.text_column not in train.column_names:
        raise ConfigError("text_column", f"no column {config.text_column!r} in {config.dataset}; "
                          f"columns: {', '.join(train.column_names)}")
    texts = [t for t in train[config.text_column] if isinstance(t, str) and t.strip()]
    eval_name = next((s for s in ("validation", "test", "eval") if s in dd and s != train_name), None)
    if eval_name:
        held = [t for t in dd[eval_name][config.text_column] if isinstance(t, str) and t.strip()]
    else:
        rng = random.Random(config.seed)
        rng.shuffle(texts)
        n = max(1, round(len(texts) * config.eval_fraction))
        texts, held = texts[n:], texts[:n]
    if not texts or not held:
        raise ConfigError("text_column", f"{config.text_column!r} has too little text to train and evaluate on")
    if config.max_train_samples:
        texts = texts[: config.max_train_samples]
    if config.max_eval_samples:
        held = held[: config.max_eval_samples]
    return texts, held


def reverse_task(arch: dict, seed: int) -> tuple[object, object]:
    """The toy reverse task (PyTorch-tutorial style): a random symbol sequence -> the same reversed, then eos.
    Ids: 0 pad, 1 bos, 2 eos, 3.. the symbols."""
    import datasets

    rng = random.Random(seed)
    symbols, lo, hi = arch["symbols"], arch["min_len"], arch["max_len"]

    def rows(n):
        src = [[rng.randrange(3, 3 + symbols) for _ in range(rng.randint(lo, hi))] for _ in range(n)]
        return datasets.Dataset.from_dict({"input_ids": src, "labels": [s[::-1] + [2] for s in src]})

    return rows(arch["train_size"]), rows(arch["eval_size"])


def train_bpe(texts: list[str], vocab_size: int):
    """A byte-level BPE (GPT-2 style) trained with the `tokenizers` library on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=EOS)


def tokenizer_for(arch: dict, texts: list[str], settings: Settings):
    """architecture["tokenizer"]: "train" (a BPE of architecture["vocab_size"] on the training text) or any
    name core.tokenizers loads (packaged, trained:NAME from the Tokenizers page, a folder)."""
    from core.assets import AssetError

    name = arch.get("tokenizer", TRAIN_TOKENIZER)
    if name == TRAIN_TOKENIZER:
        v = arch.get("vocab_size", 2000)
        if isinstance(v, bool) or not isinstance(v, int) or not 300 <= v <= 100_000:
            raise ConfigError("architecture.vocab_size", f"a trained BPE needs 300 to 100,000 tokens, got {v!r}")
        return train_bpe(texts, v)
    from core.tokenizers import load

    try:
        tok = load(name, settings)
    except AssetError as e:
        raise ConfigError("architecture.tokenizer", str(e)) from None
    if tok.pad_token_id is None:
        raise ConfigError("architecture.tokenizer", f"{name!r} has no padding or end-of-text token")
    return tok


def tokenize_texts(ds, tokenizer, column: str, max_length: int):
    """input_ids (truncated, unpadded) + labels: the collator pads per batch."""
    def enc(batch):
        texts = [t if isinstance(t, str) else "" for t in batch[column]]
        return {"input_ids": tokenizer(texts, truncation=True, max_length=max_length,
                                       add_special_tokens=True)["input_ids"]}

    out = ds.map(enc, batched=True, keep_in_memory=True)
    return out.remove_columns([c for c in out.column_names if c not in ("input_ids", "labels")])


def carve_validation(splits: Splits, fraction: float, seed: int) -> Splits:
    """`fraction` of the training rows moved to a validation split (stratified by class when every class has
    two rows or more): the engine evaluates on it while training (early stopping, best checkpoint) and on the
    evaluation (test) split once at the end, so the test split never chooses the epoch."""
    if not fraction:
        return splits
    from sklearn.model_selection import train_test_split

    labels = list(splits.train["labels"])
    n_val = round(len(labels) * fraction)
    if n_val < 1 or len(labels) - n_val < 2:
        raise ConfigError("architecture.validation_fraction", f"{fraction:g} of {len(labels):,} training rows leaves "
                          "no validation row or too few to train on")
    counts = Counter(labels)
    stratify = labels if min(counts.values()) >= 2 and n_val >= len(counts) else None
    keep, val = train_test_split(list(range(len(labels))), test_size=n_val, random_state=seed, stratify=stratify)
    train = splits.train.select(sorted(keep))
    if len(set(train["labels"])) < 2:
        raise ConfigError("architecture.validation_fraction", "carving the validation rows leaves a single class "
                          "to train on: lower it")
    return replace(splits, train=train, validation=splits.train.select(sorted(val)),
                   majority_baseline=_majority(train["labels"], splits.eval["labels"]))


def carve_texts(texts: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(training texts, validation texts): `fraction` of the training texts, picked by a seeded shuffle."""
    if not fraction:
        return texts, []
    n_val = round(len(texts) * fraction)
    if n_val < 1 or len(texts) - n_val < 1:
        raise ConfigError("architecture.validation_fraction", f"{fraction:g} of {len(texts):,} training texts leaves "
                          "no validation text or none to train on")
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    val = set(order[:n_val])
    return [t for i, t in enumerate(texts) if i not in val], [t for i, t in enumerate(texts) if i in val]


# architecture["pretrained_embeddings"]: packaged model -> (the tokenizer whose vocabulary its table rows follow)
PRETRAINED_EMBEDDINGS = {"minilm-l6": "bert-wordpiece-uncased"}


def embedding_table(name: str):
    """The word-embedding table (vocabulary × width, float32) of a packaged model, read from its safetensors
    file without building the model: MiniLM-L6's is 30,522 × 384, rows in BERT's uncased WordPiece order."""
    return _embedding(name, lambda f, key: f.get_tensor(key).float())


def embedding_width(name: str) -> int:
    """The width of a packaged model's word-embedding table (384 for MiniLM-L6), read from the file's header."""
    return int(_embedding(name, lambda f, key: f.get_slice(key).get_shape())[1])


def _embedding(name: str, read):
    from safetensors import safe_open

    from core.assets import AssetError, minilm_path

    if name not in PRETRAINED_EMBEDDINGS:
        raise ConfigError("architecture.pretrained_embeddings", f"one of {', '.join(PRETRAINED_EMBEDDINGS)} or "
                          f"empty; got {name!r}")
    try:
        with safe_open(str(minilm_path() / "model.safetensors"), "pt") as f:
            return read(f, "embeddings.word_embeddings.weight")
    except (AssetError, OSError, Exception) as e:  # noqa: BLE001 - a missing package, file or tensor
        raise ConfigError("architecture.pretrained_embeddings", f"can't read {name}'s embeddings: {e}") from None
