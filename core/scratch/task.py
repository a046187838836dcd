"""The "scratch" training task: from a TrainingConfig (dataset, columns, sizes) and its `architecture` to the
model, datasets, collator and metrics the job engine hands to the Hugging Face Trainer."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.scratch import architectures as A
from core.scratch import data as D
from core.scratch.images import image_size, is_image_folder
from core.scratch.metrics import (
    bigram_perplexity,
    classification_metrics,
    lm_metrics,
    token_accuracy_metrics,
)
from core.scratch.validation import validation_trainer
from core.settings import Settings
from core.training.config import ConfigError, TrainingConfig
from core.training.tasks import TaskSetup


@dataclass
class Prepared:
    arch: dict
    splits: D.Splits
    shape: tuple
    tokenizer: Any = None
    rows: list = field(default_factory=list)  # the layer table


def _architecture(config: TrainingConfig) -> dict:
    return A.full_architecture(getattr(config, "architecture", None) or {"kind": "mlp"})


def _prepare(config: TrainingConfig, settings: Settings) -> Prepared:
    config.validate()
    arch = _architecture(config)
    kind, name = arch["kind"], config.dataset
    if kind == "seq2seq":
        if name not in D.TOY:
            raise ConfigError("dataset", f"the encoder–decoder trains on {', '.join(D.TOY)}, got {name!r}")
        train, ev = D.reverse_task(arch, config.seed)
        splits = D.Splits(D._cap(train, config.max_train_samples), D._cap(ev, config.max_eval_samples))
        shape = A.input_shape(arch)
        rows = A.layer_table(arch, shape)
        return Prepared(arch, splits, shape, rows=rows)
    if name in D.TOY:
        raise ConfigError("dataset", f"{name} is the sequence-to-sequence toy task: pick kind seq2seq")
    if (name in D.SKLEARN or is_image_folder(name)) and kind not in ("mlp", "cnn"):
        what = "images" if is_image_folder(name) else "numbers"
        raise ConfigError("dataset", f"{name} holds {what}, not text: a {kind} needs a text column "
                          "(drug-reviews, or a workspace dataset)")
    if arch.get("image_column") is not None and (name in D.SKLEARN or is_image_folder(name)):
        raise ConfigError("architecture.image_column", f"names a column of a workspace dataset; {name} has none: "
                          "leave it empty")
    if arch.get("image_size") is not None and not is_image_folder(name) and arch.get("image_column") is None:
        raise ConfigError("architecture.image_size", f"resizes the images of an image folder or an image column; "
                          f"{name} is not one: leave it empty")
    if kind == "gpt":
        texts, held = D.lm_texts(config, settings)
        texts, val = D.carve_texts(texts, arch.get("validation_fraction", 0.0), config.seed)
        tok = D.tokenizer_for(arch, texts, settings)  # trained on the training texts only, never on val / test
        arch = _match_vocab(arch, len(tok))
        import datasets

        splits = D.Splits(datasets.Dataset.from_dict({"text": texts}), datasets.Dataset.from_dict({"text": held}),
                          validation=datasets.Dataset.from_dict({"text": val}) if val else None)
        shape = (config.max_length,)
        return Prepared(arch, splits, shape, tok, A.layer_table(arch, shape))
    if kind in ("mlp", "cnn"):
        splits, arch = numeric_splits(config, settings, arch)
        n = len(splits.features)
        shape = A.input_shape(arch, n)
        if kind == "cnn" and n != (want := _prod(shape)):
            raise ConfigError("architecture.image_shape", f"{shape} needs {want} numbers per image, but "
                              f"{name} gives {n} feature columns")
        rows = A.layer_table(arch, shape, len(splits.label_names))
        return Prepared(arch, splits, shape, rows=rows)
    splits = D.carve_validation(D.store_splits(config, settings, False), arch.get("validation_fraction", 0.0),
                                config.seed)
    tok = D.tokenizer_for(arch, list(splits.train[config.text_column]), settings)
    arch = A.with_vocab(arch, len(tok))
    if arch.get("pretrained_embeddings"):
        _check_pretrained(arch, tok, settings)
    shape = (config.max_length,)
    return Prepared(arch, splits, shape, tok, A.layer_table(arch, shape, len(splits.label_names)))


def numeric_splits(config: TrainingConfig, settings: Settings, arch: dict) -> tuple[D.Splits, dict]:
    """An MLP's / CNN's data (a scikit-learn sample, an image folder or a workspace table) and the
    architecture with a folder's image shape filled in (its channels × image_size × image_size)."""
    if config.dataset in D.SKLEARN:
        return D.sklearn_splits(config), arch
    if is_image_folder(config.dataset):
        if arch.get("feature_columns") is not None:
            raise ConfigError("architecture.feature_columns", "an image folder's inputs are its pixels: leave it "
                              "empty")
        splits, shape = D.image_splits(config, settings, image_size(arch))
        return splits, {**arch, "image_shape": list(shape)} if arch["kind"] == "cnn" else arch
    if arch.get("image_column") is not None:
        if arch.get("feature_columns") is not None:
            raise ConfigError("architecture.feature_columns", "an image column's inputs are its pixels: leave it "
                              "empty")
        splits, shape = D.image_column_splits(config, settings, arch["image_column"], image_size(arch))
        return splits, {**arch, "image_shape": list(shape)} if arch["kind"] == "cnn" else arch
    return D.store_splits(config, settings, True, arch.get("feature_columns")), arch


def _check_pretrained(arch: dict, tok, settings: Settings) -> None:
    """A pretrained table fits when the tokenizer is the one its rows follow (same vocabulary, same order)
    and the first Embedding is as wide as the table."""
    from core.tokenizers import load

    name = arch["pretrained_embeddings"]
    want = D.PRETRAINED_EMBEDDINGS[name]
    if arch.get("tokenizer") != want and tok.get_vocab() != load(want, settings).get_vocab():
        raise ConfigError("architecture.tokenizer", f"{name}'s embedding rows follow the {want} vocabulary: set "
                          f"tokenizer to {want!r} (got {arch.get('tokenizer')!r})")
    i, layer = _first_embedding(arch)
    width = D.embedding_width(name)
    if layer.get("embedding_dim") != width:
        raise ConfigError(f"architecture.layers[{i}]", f"{name}'s embeddings are {width}-d: set the Embedding's "
                          f"embedding_dim to {width} (got {layer.get('embedding_dim')!r})")


def _first_embedding(arch: dict) -> tuple[int, dict]:
    for i, layer in enumerate(arch.get("layers", [])):
        if isinstance(layer, dict) and layer.get("type") == "Embedding":
            return i, layer
    raise ConfigError("architecture.layers", "pretrained embeddings need an Embedding layer to start from")


def _prod(shape) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _match_vocab(arch: dict, vocab: int) -> dict:
    if arch.get("tokenizer", D.TRAIN_TOKENIZER) != D.TRAIN_TOKENIZER and arch.get("vocab_size") not in (None, vocab):
        raise ConfigError("architecture.vocab_size", f"{arch['vocab_size']:,} does not match the tokenizer's "
                          f"vocabulary of {vocab:,} tokens: leave it empty or set {vocab}")
    return {**arch, "vocab_size": vocab}


def check(config: TrainingConfig, settings: Settings) -> dict:
    """Every check before launch (config, data, tokenizer, shapes, memory); ConfigError names the field.
    Returns rows, classes and parameter count."""
    return describe(prepare(config, settings))


def prepare(config: TrainingConfig, settings: Settings) -> Prepared:
    """What `check` checks, kept: the data, the tokenizer (trained for text kinds) and the layer table, so a
    run that was just checked hands them to `setup` instead of building them again."""
    return _prepare(config, settings)


def describe(p: Prepared) -> dict:
    val = p.splits.validation
    return {"kind": p.arch["kind"], "train_rows": len(p.splits.train), "eval_rows": len(p.splits.eval),
            "validation_rows": len(val) if val is not None else 0,
            "labels": list(p.splits.label_names), "classes": len(p.splits.label_names),
            "input_shape": list(p.shape), "params": sum(r["params"] for r in p.rows), "layers": p.rows,
            "architecture": p.arch, **({"skipped": dict(p.splits.skipped)} if p.splits.skipped else {})}


def setup(config: TrainingConfig, settings: Settings, out_dir: str | Path, prepared: Prepared | None = None
          ) -> TaskSetup:
    """Model, tokenized datasets, collator, metrics and baseline of one run (from `prepared`, what `prepare`
    returned for this config, when the caller has it). The saved model's config.json is all `predict` needs
    to reload it; `out_dir` is the run's folder (unused for now: everything fits in memory)."""
    import torch

    torch.manual_seed(config.seed)
    p = prepared if prepared is not None else _prepare(config, settings)
    kind = p.arch["kind"]
    info = describe(p)
    if kind == "seq2seq":
        model = A.build_model(p.arch)
        setup_ = TaskSetup(model, p.splits.train, p.splits.eval, seq2seq_collator, token_accuracy_metrics, info=info)
    elif kind == "gpt":
        model = A.build_model(p.arch, vocab=len(p.tokenizer), max_length=config.max_length,
                              bos_token_id=p.tokenizer.eos_token_id, eos_token_id=p.tokenizer.eos_token_id,
                              pad_token_id=p.tokenizer.pad_token_id)
        train, ev = (_lm_tokens(ds, p.tokenizer, config.max_length) for ds in (p.splits.train, p.splits.eval))
        # the bigram counts the GPT's own training tokens (validation rows excluded, as for the GPT)
        baseline = {"bigram_perplexity": bigram_perplexity(train["input_ids"], ev["input_ids"], len(p.tokenizer))}
        setup_ = TaskSetup(model, train, ev, PadCollator(p.tokenizer.pad_token_id, lm=True), lm_metrics,
                           p.tokenizer, info, baseline)
        if p.splits.validation is not None:
            setup_.trainer_class = validation_trainer(_lm_tokens(p.splits.validation, p.tokenizer, config.max_length))
    else:
        setup_ = _classifier(config, p, info)
    return setup_


def _classifier(config: TrainingConfig, p: Prepared, info: dict) -> TaskSetup:
    import numpy as np

    from core.scratch.models import ScratchClassifier, ScratchConfig

    names = p.splits.label_names
    common = {"num_labels": len(names), "id2label": dict(enumerate(names)),
              "label2id": {n: i for i, n in enumerate(names)}}
    baseline = {"majority_baseline": p.splits.majority_baseline}
    if p.tokenizer is None:
        train, ev = ArrayRows(p.splits.train), ArrayRows(p.splits.eval)
        x = train.inputs.numpy().astype(np.float64)
        mean, std = x.mean(0), x.std(0)
        del x
        std[std < 1e-6] = 1.0  # a constant feature (a blank pixel) stays 0 after centring
        cfg = ScratchConfig(p.arch, list(p.shape), "float", mean.tolist(), std.tolist(), **common)
        return TaskSetup(ScratchClassifier(cfg), train, ev, None, classification_metrics, info=info,
                         baseline=baseline)
    tok = p.tokenizer
    cfg = ScratchConfig(p.arch, list(p.shape), "long", pad_token_id=tok.pad_token_id, **common)
    train = D.tokenize_texts(p.splits.train, tok, config.text_column, config.max_length)
    ev = D.tokenize_texts(p.splits.eval, tok, config.text_column, config.max_length)
    model = ScratchClassifier(cfg)
    if p.arch.get("pretrained_embeddings"):
        load_embeddings(model, p.arch["pretrained_embeddings"], p.arch.get("freeze_embeddings", False))
    out = TaskSetup(model, train, ev, PadCollator(tok.pad_token_id), classification_metrics, tok, info, baseline)
    if p.splits.validation is not None:
        out.trainer_class = validation_trainer(
            D.tokenize_texts(p.splits.validation, tok, config.text_column, config.max_length))
    return out


class ArrayRows:
    """A numeric split (`inputs` + `labels`) held as two tensors; example i is a dict of their rows.

    Why not the `datasets` split with `with_format("torch")`: its formatter converts each example from Arrow on
    every access, ~1 ms per 32-row batch of digits (cProfile), a tenth of a small CNN's 10 ms step and the
    engine's main cost against its exported script, which holds the arrays as tensors the same way.
    `features` is the split's, so the class names stay at hand."""

    def __init__(self, split):
        import numpy as np
        import torch

        # a numpy view of the Arrow column (no Python float per value: an image folder holds millions)
        arrays = split.with_format("numpy")
        self.inputs = torch.from_numpy(np.asarray(arrays["inputs"]))  # the column's own dtype, as with_format gave
        self.labels = torch.from_numpy(np.asarray(arrays["labels"], dtype=np.int64))
        self.features = split.features

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int | str):
        if isinstance(i, str):  # a whole column by name, as a `datasets` split gives it
            return {"inputs": self.inputs, "labels": self.labels}[i]
        return {"inputs": self.inputs[i], "labels": self.labels[i]}


def load_embeddings(model, name: str, freeze: bool = False) -> None:
    """Copy a packaged model's word-embedding table into the classifier's first Embedding (same vocabulary,
    same width: checked by `prepare`); `freeze` stops it from training."""
    import torch

    emb = next(m for m in model.body.layers if isinstance(m, torch.nn.Embedding))
    table = D.embedding_table(name)
    with torch.no_grad():
        emb.weight.copy_(table)
    emb.weight.requires_grad_(not freeze)


def _lm_tokens(ds, tokenizer, max_length: int):
    """Each text + end-of-text, truncated to max_length (one example per text, padded per batch)."""
    eos = tokenizer.eos_token_id

    def enc(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"input_ids": [(x + [eos])[:max_length] for x in ids]}

    return ds.map(enc, batched=True, remove_columns=["text"], keep_in_memory=True)


class PadCollator:
    """Pads input_ids per batch and adds attention_mask; `lm` makes labels the inputs (padding -> -100),
    otherwise keeps the class labels."""

    def __init__(self, pad_id: int, lm: bool = False):
        self.pad_id, self.lm = pad_id, lm

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        n = max(1, max(len(r["input_ids"]) for r in rows))
        ids = torch.full((len(rows), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            x = list(r["input_ids"])
            ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[i, : len(x)] = 1
        out = {"input_ids": ids, "attention_mask": mask}
        if self.lm:
            out["labels"] = ids.masked_fill(mask == 0, -100)
        else:
            out["labels"] = torch.tensor([int(r["labels"]) for r in rows], dtype=torch.long)
        return out


def seq2seq_collator(rows: list[dict]) -> dict:
    """Source ids padded with 0 (+ attention_mask); target labels padded with -100."""
    import torch

    n = max(len(r["input_ids"]) for r in rows)
    m = max(len(r["labels"]) for r in rows)
    ids = torch.zeros((len(rows), n), dtype=torch.long)
    labels = torch.full((len(rows), m), -100, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r["input_ids"])] = torch.tensor(list(r["input_ids"]))
        labels[i, : len(r["labels"])] = torch.tensor(list(r["labels"]))
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": labels}
