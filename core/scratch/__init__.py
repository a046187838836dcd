"""Build your own networks: MLP, CNN, RNN/LSTM/GRU, Transformer encoder, nn.Transformer seq2seq and a tiny GPT,
each a transformers PreTrainedModel the job engine's Trainer runs like any fine-tune (task "scratch").

    from core.scratch import check, default_architecture, layer_table, setup
    arch = default_architecture("cnn")               # {"kind": "cnn", "image_shape": [1, 8, 8], "layers": [...]}
    layer_table(arch, (1, 8, 8), num_classes=10)     # shapes, params, bytes: propagated on `meta`
    config = TrainingConfig(task="scratch", dataset="sklearn:digits", architecture=arch)
    check(config, settings)                          # ConfigError("architecture.layers[3]", ...) before launch
    # or your own images: dataset="folder:shapes" (<workspace>/imports/shapes/<class>/<image>), arch["image_size"]
    task = setup(config, settings, out_dir)          # model, datasets, collator, metrics, baseline
    export_script(config, settings, run_id)          # a standalone PyTorch + transformers script of the run
    measure(config, settings)                        # training vs inference peak memory, one real batch
    time_loaders(config, settings)                   # one epoch per DataLoader batch size / shuffle / workers
"""
from core.scratch.architectures import (
    KINDS,
    MAX_PARAM_BYTES,
    MAX_VALIDATION_FRACTION,
    default_architecture,
    layer_table,
)
from core.scratch.data import BUILTIN, SKLEARN, TOY
from core.scratch.examples import example_row
from core.scratch.export import export_script
from core.scratch.images import DEFAULT_SIZE as DEFAULT_IMAGE_SIZE
from core.scratch.images import LAYOUT_HELP as IMAGE_FOLDER_LAYOUT
from core.scratch.images import SIZE_RANGE as IMAGE_SIZE_RANGE
from core.scratch.images import samples as image_samples
from core.scratch.images import skipped_note
from core.scratch.inference import model_kind, predict
from core.scratch.layers import LAYER_PARAMS, LAYER_TYPES
from core.scratch.loading import time_loaders
from core.scratch.memory import StepMemory, measure
from core.scratch.task import TaskSetup, check, describe, prepare, setup

__all__ = [
    "BUILTIN", "DEFAULT_IMAGE_SIZE", "IMAGE_FOLDER_LAYOUT", "IMAGE_SIZE_RANGE", "KINDS", "LAYER_PARAMS",
    "LAYER_TYPES", "MAX_PARAM_BYTES", "MAX_VALIDATION_FRACTION", "SKLEARN", "TOY", "StepMemory", "TaskSetup",
    "check", "default_architecture", "describe", "example_row", "export_script", "image_samples", "layer_table",
    "measure", "model_kind", "predict", "prepare", "setup", "skipped_note", "time_loaders",
]
