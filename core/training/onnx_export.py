"""ONNX export of a run's model and inference with onnxruntime (CPUExecutionProvider).

The exporter is torch's own `torch.onnx.export(..., dynamo=True)`: it traces the model with `torch.export`
and translates the graph with onnxscript (a required import of that exporter). Batch and sequence axes are
dynamic (`Dim.DYNAMIC`), so one file serves any batch size and any length the model's positions allow.
The legacy TorchScript exporter (`dynamo=False`) still runs in torch 2.13 but bakes the traced mask
arithmetic of transformers 5 into the graph: its logits differed from PyTorch's by 0.03 on a tiny BERT,
against ~1e-8 with the dynamo exporter, so it is not used.

`OrtModel` wraps an `onnxruntime.InferenceSession` so it is called like the PyTorch model
(`model(**batch).logits`), which lets the shrink report time and score both the same way.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

ONNX_DIR = "onnx"  # beside the run's model/ folder
ONNX_FILE = "model.onnx"  # the fp32 graph
ONNX_INT8_FILE = "model_int8.onnx"  # onnxruntime's dynamic int8 quantisation of it
EXTERNAL_DATA_BYTES = 1_500_000_000  # above this the weights go to model.onnx.data (protobuf's 2 GB limit)

# the outputs each task's model returns, named the same in the ONNX graph
OUTPUTS = {"text-classification": ["logits"], "token-classification": ["logits"],
           "question-answering": ["start_logits", "end_logits"]}


def missing() -> list[str]:
    """The packages ONNX export + inference needs that are not installed here."""
    return [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]


def file_size(path: Path) -> int:
    """Bytes on disk of an ONNX model: the graph file, plus its external weights file if it has one."""
    path = Path(path)
    data = path.with_name(path.name + ".data")
    return path.stat().st_size + (data.stat().st_size if data.is_file() else 0)


def short_error(e: BaseException, limit: int = 300) -> str:
    """'Type: first line of the message', for a table cell."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = f"{type(e).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def export(model, sample: dict, path: Path, output_names: list[str]) -> Path:
    """Export `model` (eval mode, CPU) to `path` with dynamic batch and sequence axes on every input.

    `sample` is a batch of model inputs (name -> int64 tensor [batch, seq]) with at least 2 rows and 2
    tokens: an axis of size 1 in the sample would be specialised to 1 by torch.export. The exporter's
    progress lines go to a buffer, not the app's console."""
    import torch

    sample = {k: v for k, v in sample.items() if hasattr(v, "shape")}
    if any(v.shape[0] < 2 or v.ndim < 2 or v.shape[1] < 2 for v in sample.values()):
        raise ValueError("the export sample needs at least 2 rows of at least 2 tokens")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, path.with_name(path.name + ".data")):  # a stale weights file would be counted in the size
        old.unlink(missing_ok=True)
    dims = {k: {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC} for k in sample}
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    # the exporter logs a warning per torchvision op it can't register (torchvision is not a dependency)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), torch.inference_mode(False), torch.no_grad(), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export's own deprecation notices (pytree)
        torch.onnx.export(model, (), str(path), kwargs=sample, dynamic_shapes=dims, dynamo=True,
                          input_names=list(sample), output_names=output_names,
                          external_data=size > EXTERNAL_DATA_BYTES, verbose=False)
    return path


def quantize(src: Path, dst: Path) -> Path:
    """onnxruntime's dynamic int8 quantisation of an exported graph: MatMul weights and (unlike torch's
    quantize_dynamic) the embedding Gathers become int8."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it logs a WARNING suggesting pre-processing on every call
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return Path(dst)


class OrtModel:
    """An onnxruntime session called like a transformers model: `model(**batch).logits` (torch tensors)."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)  # the same thread count torch was given
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, **batch):
        import numpy as np
        import torch

        feed = {}
        for name in self.input_names:
            v = batch[name]
            feed[name] = v.numpy() if hasattr(v, "numpy") else np.asarray(v, dtype=np.int64)
        outs = self.session.run(self.output_names, feed)
        return SimpleNamespace(**{n: torch.from_numpy(o) for n, o in zip(self.output_names, outs, strict=True)})

    def eval(self):  # so it passes where a torch module is expected
        return self
