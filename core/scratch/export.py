"""'Export as script' for a from-scratch run: one standalone Python file, plain PyTorch and transformers, that
reproduces it (same data split, tokenizer, initial weights, batches and settings: the same evaluation loss).
A validation split (architecture["validation_fraction"]) is carved as core.scratch.data carves it, and a Trainer
subclass evaluates on it while training, as core.scratch.validation's does; pretrained embeddings are copied from
the packaged model's safetensors file, its absolute path on this server written into the script.

The network is written into the script, not imported from core.scratch: the file runs from any folder with
Torch Lab's pinned packages, and a reader sees every layer, the loss and the data preparation in one place.
The TrainingArguments follow core.training.export (the fine-tuning export), with the run's own plan (optimizer,
precision, evaluation cadence: what the engine resolved when it trained) passed in: core.scratch can't import the
runner, which imports core.scratch.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

from core.scratch import export_code as C
from core.scratch import export_network as N
from core.settings import Settings
from core.training.config import TrainingConfig

KIND_TEXT = {"mlp": "A multi-layer perceptron on rows of numbers.", "cnn": "A convolutional network on images.",
             "rnn": "A recurrent text classifier over token ids.",
             "transformer": "A Transformer-encoder text classifier over token ids.",
             "seq2seq": "PyTorch's nn.Transformer encoder–decoder learning to reverse sequences.",
             "gpt": "A tiny GPT (GPT-2 blocks, sized down) learning to predict the next token."}
_LOCAL = ("PositionalEncoding", "MeanPool")  # modules the script defines itself


def export_script(config: TrainingConfig, settings: Settings, plan: Mapping, run_id: str = "new",
                  output: str = "reproduced-run", model_dir: str | None = None) -> str:
    """The script's text. `plan`: the run's stored plan (RunRecord.plan: its "optim", "precision" and
    "eval_steps"), or for a config not run yet asdict(core.training.runner.plan(config, settings));
    `model_dir`: the run's saved model folder, where a named (not trained-here) tokenizer is read from.
    Dataset paths point at this server's saved version. ConfigError / ValueError when it can't be written."""
    from core.scratch.task import prepare

    prep = prepare(config, settings)
    kind = prep.arch["kind"]
    eval_steps = plan.get("eval_steps") or config.eval_steps or 50  # the fine-tuning export's fallback too
    std = {"sys"}
    third = {"numpy": "np", "torch": None, "torch.nn": "nn", "transformers": {"Trainer", "TrainingArguments", "set_seed"}}
    data = _data(config, settings, prep, kind, std, third, model_dir)
    model, metrics = _model(config, prep, kind, std, third)
    if prep.arch.get("pretrained_embeddings"):
        model += _pretrained(prep.arch, third)
    early = config.early_stopping_patience > 0
    if early:
        third["transformers"].add("EarlyStoppingCallback")
    torch_schedule = config.scheduler in N.SCHEDULE_CODE
    trainer_class = (N.TORCH_SCHEDULE.format(name=config.scheduler, code=N.SCHEDULE_CODE[config.scheduler])
                     if torch_schedule else "")
    if prep.splits.validation is not None:  # the engine's core.scratch.validation.validation_trainer
        trainer_class = N.VALIDATION_TRAINER + (trainer_class or "\n\n")
    precision = plan.get("precision", "fp32")
    train = N.TRAIN.format(
        batch_size=config.batch_size, eval_batch_size=config.batch_size * 2, grad_accumulation=config.grad_accumulation,
        learning_rate=config.learning_rate, weight_decay=config.weight_decay, epochs=config.epochs,
        warmup=config.warmup, scheduler="linear" if torch_schedule else config.scheduler, optim=plan["optim"],
        bf16=precision == "bf16", fp16=precision == "fp16", logging_steps=config.logging_steps,
        eval_steps=eval_steps, save=N.SAVE_BEST.format(eval_steps=eval_steps) if early else N.SAVE_NONE,
        trainer_class=trainer_class,
        processing=", processing_class=tokenizer" if prep.tokenizer is not None else "",
        callbacks=(f",\n                  callbacks=[EarlyStoppingCallback({config.early_stopping_patience})]"
                   if early else ""))
    head = C.HEAD.format(run_id=run_id, name=config.display_name(), what=KIND_TEXT[kind],
                         filename=f"train_{run_id}.py", stdlib=_imports_std(std), third_party=_imports(third),
                         max_steps=config.max_steps, epochs=config.epochs, output=json.dumps(output),
                         seed=config.seed)
    return head + data + model + metrics + train


def _caps(config: TrainingConfig, names: tuple[str, str], arrays: bool = False) -> str:
    """The run's row caps (its dry-run size), on the split variables `names` (train, eval)."""
    out = ""
    for n, var in zip((config.max_train_samples, config.max_eval_samples), names, strict=True):
        if not n:
            continue
        if arrays:  # numpy arrays: x and y
            x, y = var.split("|")
            out += f"{x}, {y} = {x}[:{n}], {y}[:{n}]\n"
        elif var in ("texts", "held"):
            out += f"{var} = {var}[:{n}]\n"
        else:
            out += f"{var} = {var}.select(range(min({n}, len({var}))))\n"
    return out


def _data(config, settings, prep, kind, std, third, model_dir) -> str:
    from core.data.store import DatasetStore
    from core.scratch import data as D
    from core.scratch.images import EXTENSIONS, folder_path, is_image_folder

    def path() -> str:
        return str((DatasetStore(settings.datasets_dir).ref(config.dataset, config.dataset_version).path
                    / "data").resolve())

    if kind == "seq2seq":
        std.add("random")
        third["datasets"] = {"Dataset"}
        return C.REVERSE.format(**{k: prep.arch[k] for k in ("symbols", "min_len", "max_len", "train_size",
                                                             "eval_size")},
                                caps=_caps(config, ("train", "evaluation")))
    if kind == "gpt":
        std.add("random")
        third["datasets"] = {"Dataset", "load_from_disk"}
        out = C.LM_TEXTS.format(dataset=config.dataset, path=path(), column=config.text_column,
                                max_length=config.max_length, eval_fraction=config.eval_fraction,
                                caps=_caps(config, ("texts", "held")))
        if prep.splits.validation is not None:  # core.scratch.data.carve_texts, before the tokenizer is trained
            out += C.CARVE_TEXTS.format(fraction=prep.arch["validation_fraction"])
        out += _tokenizer(prep, "texts", third, model_dir) + C.LM_ROWS
        if prep.splits.validation is not None:
            out += "validation = lm_rows(val_texts)\n"
        return out + C.PAD_COLLATE.format(labels_doc="labels the inputs (-100 on padding)", labels=C.LM_LABELS)
    if is_image_folder(config.dataset):
        third["sklearn.model_selection"] = {"train_test_split"}
        out = _images(settings, prep, std, third) + C.IMAGE_FOLDER.format(
            root=str(folder_path(config.dataset, settings)), extensions=EXTENSIONS,
            eval_fraction=config.eval_fraction, caps=_caps(config, ("x_train|y_train", "x_eval|y_eval"), arrays=True))
        return out + C.NUMBERS.format()
    if config.dataset in D.SKLEARN:
        third["sklearn.datasets"] = None
        third["sklearn.model_selection"] = {"train_test_split"}
        out = C.SKLEARN.format(dataset=config.dataset.split(":")[1], loader=D.SKLEARN[config.dataset],
                               eval_fraction=config.eval_fraction,
                               caps=_caps(config, ("x_train|y_train", "x_eval|y_eval"), arrays=True))
        return out + C.NUMBERS.format()
    std.add("collections.Counter")
    third["datasets"] = {"ClassLabel", "load_from_disk"}
    out = C.STORE.format(dataset=config.dataset, path=path(), label=config.label_column,
                         labels=list(prep.splits.label_names), eval_fraction=config.eval_fraction,
                         caps=_caps(config, ("train", "evaluation")))
    if kind in ("mlp", "cnn") and prep.arch.get("image_column"):
        third["datasets"].add("Image as ImageFeature")
        std.add("io")
        return (out + _images(settings, prep, std, third) + C.IMAGE_COLUMN.format(column=prep.arch["image_column"],
                                                                                 caps="") + C.NUMBERS.format())
    if kind in ("mlp", "cnn"):
        return out + C.STORE_NUMBERS.format(features=list(prep.splits.features)) + C.NUMBERS.format()
    if prep.splits.validation is not None:  # core.scratch.data.carve_validation, before the tokenizer is trained
        third["sklearn.model_selection"] = {"train_test_split"}
        out += C.CARVE_ROWS.format(fraction=prep.arch["validation_fraction"])
    out += _tokenizer(prep, f"list(train[{config.text_column!r}])", third, model_dir)
    out += C.TEXT.format(column=config.text_column, max_length=config.max_length)
    if prep.splits.validation is not None:
        out += "validation = tokenize(validation)\n"
    return out + C.PAD_COLLATE.format(labels_doc="labels the class ids", labels=C.CLASS_LABELS)


def _images(settings: Settings, prep, std, third) -> str:
    """The image decoding every image run shares (core.scratch.images.decode_all's steps, same caps), with the
    folders this server reads images from."""
    from core.data.paths import allowed_dirs
    from core.scratch.images import GREY_MODES, MAX_SOURCE_PIXELS, image_size

    std.add("os")
    third["PIL"] = {"Image"}
    return C.IMAGES.format(size=image_size(prep.arch), grey=GREY_MODES, roots=[str(r) for r in allowed_dirs(settings)],
                           max_pixels=MAX_SOURCE_PIXELS)


def _pretrained(arch: dict, third) -> str:
    """The copy of a packaged model's word-embedding table into the first Embedding (core.scratch.task's
    load_embeddings), from the file core.scratch.data reads, by its absolute path on this server."""
    from core.assets import minilm_path

    name = arch["pretrained_embeddings"]
    if name != "minilm-l6":  # the one in core.scratch.data.PRETRAINED_EMBEDDINGS
        raise ValueError(f"the script can't load the pretrained embeddings {name!r}")
    third["safetensors"] = {"safe_open"}
    freeze = bool(arch.get("freeze_embeddings"))
    return N.PRETRAINED.format(path=str(minilm_path().resolve()), trainable=not freeze,
                               note="frozen: the optimizer never sees it" if freeze else "trained with the rest")


def _tokenizer(prep, texts: str, third, model_dir) -> str:
    from core.scratch import data as D

    third["transformers"].add("PreTrainedTokenizerFast")
    name, vocab = prep.arch.get("tokenizer", D.TRAIN_TOKENIZER), len(prep.tokenizer)
    if name == D.TRAIN_TOKENIZER:
        third["tokenizers"] = {"Tokenizer", "decoders", "models", "pre_tokenizers", "trainers"}
        return C.TRAIN_BPE.format(texts=texts, vocab_size=prep.arch["vocab_size"], vocab=vocab)
    if not model_dir:
        raise ValueError(f"the tokenizer {name!r} is read from the run's saved model folder, and this run has none")
    return C.SAVED_TOKENIZER.format(folder=str(model_dir), name=name, vocab=vocab)


def _model(config, prep, kind, std, third) -> tuple[str, str]:
    """The network's code and the metrics' code."""
    tf = third["transformers"]
    if kind == "gpt":
        from core.scratch.architectures import build_model

        tf.update({"GPT2Config", "GPT2LMHeadModel"})
        std.add("math")
        del third["numpy"]  # its metrics index arrays, no numpy call
        tok = prep.tokenizer
        built = build_model(prep.arch, vocab=len(tok), max_length=config.max_length, bos_token_id=tok.eos_token_id,
                            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).config
        keys = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "resid_pdrop", "embd_pdrop", "attn_pdrop",
                "use_cache", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")
        return N.GPT.format(config=_wrapped_args({k: getattr(built, k) for k in keys})), N.LM_METRICS
    tf.update({"PretrainedConfig", "PreTrainedModel"})
    if kind == "seq2seq":
        std.add("math")
        third["transformers.modeling_outputs"] = {"Seq2SeqLMOutput"}
        a = prep.arch
        cfg = {"vocab_size": 3 + a["symbols"], "max_len": a["max_len"],
               **{k: a[k] for k in ("d_model", "nhead", "num_encoder_layers", "num_decoder_layers", "dim_feedforward",
                                    "dropout", "norm_first")}}
        return N.MEAN_LOSS + N.POSITIONS + N.SEQ2SEQ.format(config=_wrapped_args(cfg) + ","), N.TOKEN_METRICS
    return _classifier(prep, kind, std, third), N.CLASS_METRICS


def _classifier(prep, kind, std, third) -> str:
    from core.scratch.layers import resolve, shape_text

    third["transformers.modeling_outputs"] = {"SequenceClassifierOutput"}
    third["sklearn.metrics"] = {"precision_recall_fscore_support"}
    text = prep.tokenizer is not None
    resolved = resolve(prep.arch["layers"], tuple(prep.shape), len(prep.splits.label_names),
                       "long" if text else "float")
    types = {r.type for r in resolved}
    lines = []
    for r in resolved:
        cls = r.type if r.type in _LOCAL else f"nn.{r.type}"
        code, note = f"{cls}({_call_args(r.kwargs)}),", f"# {r.name} -> B × {' × '.join(map(str, r.out_shape))}"
        lines.append(f"        {code}  {note}" if len(code) + len(note) < 100 else f"        {note}\n        {code}")
    out = N.MEAN_LOSS
    if "PositionalEncoding" in types:
        std.add("math")
        out += N.POSITIONS
    if text:
        out += N.MEAN_POOL  # run_layer names it even when the stack has none
        sequence = {i for i, r in enumerate(resolved) if r.extra.get("output") == "sequence"}
        out += N.RUN_LAYER.format(sequence=sequence or "set()")
    shape = tuple(prep.shape)
    forward = (N.TEXT_FORWARD if text else
               N.NUMBERS_FORWARD.format(shape=", ".join(map(str, shape)), shape_text=shape_text(shape)))
    return out + N.CLASSIFIER.format(layers="\n".join(lines), loop=N.TEXT_LOOP if text else N.NUMBERS_LOOP,
                                     main_input="input_ids" if text else "inputs",
                                     buffers="" if text else N.NUMBERS_BUFFERS, forward=forward)


def _call_args(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _wrapped_args(kwargs: dict, width: int = 110) -> str:
    """Keyword arguments over indented lines of at most `width` characters."""
    lines, line = [], "   "
    for part in (f"{k}={v!r}" for k, v in kwargs.items()):
        if len(line) + len(part) + 2 > width:
            lines.append(line.rstrip())
            line = "   "
        line += f" {part},"
    return "\n".join([*lines, line]).rstrip(",")


def _imports_std(names: set[str]) -> str:
    """Standard-library imports: argparse, json and `names`, each "module" or "module.Name" (from module import
    Name)."""
    names = names | {"argparse", "json"}
    plain = [f"import {n}" for n in sorted(names) if "." not in n]
    return "\n".join(plain + [f"from {n.rsplit('.', 1)[0]} import {n.rsplit('.', 1)[1]}"
                              for n in sorted(names) if "." in n]) + "\n"


def _imports(third: dict) -> str:
    """Third-party imports as isort orders them: {module: None} imports it, {module: "alias"} as an alias,
    {module: {names}} the names from it (classes before functions)."""
    modules = sorted(third, key=str.lower)  # isort compares module names case-blind: datasets, PIL, sklearn
    plain = [f"import {m}" if third[m] is None else f"import {m} as {third[m]}"
             for m in modules if third[m] is None or isinstance(third[m], str)]
    froms = []
    for m in modules:
        if isinstance(third[m], set):
            names = sorted((n for n in third[m] if " as " not in n), key=lambda n: (n[0].islower(), n.lower()))
            line = f"from {m} import {', '.join(names)}"
            if names:
                froms.append(line if len(line) <= 110 else
                             f"from {m} import (\n" + "".join(f"    {n},\n" for n in names) + ")")
            froms += [f"from {m} import {n}" for n in sorted(n for n in third[m] if " as " in n)]  # one line each
    return "\n".join(plain + froms) + "\n"
