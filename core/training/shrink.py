"""After training: int8 dynamic quantisation measured side by side, and the run as a `pipeline()`.

`quantize(run, settings)` loads a completed sequence-classification run, quantises its nn.Linear
layers to int8 (`torch.ao.quantization.quantize_dynamic`), saves the quantised state_dict under
<run folder>/quantized/, and measures both models on the run's own eval split: size on disk,
latency per example at batch 1 and 32, accuracy, macro F1 and how often their argmax agrees.
"""
from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from core.training.config import TrainingConfig
from core.training.store import RunRecord

QUANTIZED_DIR = "quantized"  # beside the run's model/ folder
QUANTIZED_FILE = "model_int8.pt"  # torch.save of the quantised state_dict


@dataclass
class ShrinkOptions:
    """How much to measure: small enough that a click answers in well under a minute on CPU."""

    max_rows: int = 200  # eval rows scored for accuracy / F1 / agreement
    latency_rows: int = 16  # rows timed one by one at batch 1
    batch_size: int = 32  # the "batched" latency
    repeats: int = 5  # timed repeats per measurement, after one warm-up; the median is kept


@dataclass
class Variant:
    """One model's figures."""

    name: str  # "fp32" | "int8 (dynamic)"
    size_bytes: int  # the weights file on disk
    ms_batch1: float  # median milliseconds per example, one example at a time
    ms_batched: float  # median milliseconds per example in batches of `batch_size`
    accuracy: float
    macro_f1: float


@dataclass
class ShrinkReport:
    """fp32 vs int8 on the run's eval split, plus where the quantised weights were saved."""

    run_id: str
    variants: list[Variant]
    agreement: float  # share of eval rows where fp32 and int8 predict the same class
    eval_rows: int
    batch_size: int
    threads: int  # torch intra-op threads during the timings
    quantized_path: str
    fp32_path: str
    onnx: str  # what happened to ONNX export ("onnxruntime not installed" offline here)
    notes: list[str] = field(default_factory=list)

    def table(self) -> list[dict]:
        """One row per model, for a dataframe or a markdown table."""
        base = self.variants[0]
        return [{"model": v.name, "size (MB)": round(v.size_bytes / 1e6, 2),
                 "size vs fp32": f"{v.size_bytes / base.size_bytes:.0%}",
                 "ms / example, batch 1": round(v.ms_batch1, 2),
                 f"ms / example, batch {self.batch_size}": round(v.ms_batched, 2),
                 "accuracy": round(v.accuracy, 4), "macro F1": round(v.macro_f1, 4)} for v in self.variants]


def _check(run: RunRecord) -> Path:
    if run.config.get("task", "text-classification") != "text-classification":
        raise ValueError(f"run {run.id} is a {run.config.get('task')!r} run: only text-classification "
                         "fine-tunes can be quantised here")
    if not run.model_dir or not Path(run.model_dir, "config.json").is_file():
        raise ValueError(f"run {run.id} has no saved model ({run.status}): finish or resume it first")
    return Path(run.model_dir)


def _weights_file(model_dir: Path) -> Path:
    """The fp32 weights save_pretrained wrote (safetensors, or the older .bin)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise ValueError(f"no weights file in {model_dir}")


def eval_rows(run: RunRecord, settings: Settings, max_rows: int = 200) -> tuple[list, list[int]]:
    """(texts or (text, pair) tuples, class ids) of the run's eval split, at most `max_rows`."""
    from core.training.data import load_splits

    config = TrainingConfig.from_dict(run.config)
    ev = load_splits(config, settings).eval
    ev = ev.select(range(min(max_rows, len(ev))))
    texts = [str(t) if t is not None else "" for t in ev[config.text_column]]
    if config.text_pair_column:
        texts = list(zip(texts, [str(t) if t is not None else "" for t in ev[config.text_pair_column]],
                         strict=True))
    return texts, list(ev["labels"])


def _encode(tokenizer, texts: list, max_length: int):
    if texts and isinstance(texts[0], tuple):
        a, b = zip(*texts, strict=True)
        return tokenizer(list(a), list(b), padding=True, truncation=True, max_length=max_length,
                         return_tensors="pt")
    return tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")


def _predict(model, tokenizer, texts: list, max_length: int, batch_size: int = 32) -> list[int]:
    import torch

    preds: list[int] = []
    with torch.inference_mode():
        for b in range(0, len(texts), batch_size):
            enc = _encode(tokenizer, texts[b:b + batch_size], max_length)
            preds.extend(model(**enc).logits.argmax(-1).tolist())
    return preds


def _ms_per_example(model, batches: list, repeats: int) -> float:
    """Median over `repeats` of the time to run every batch once, per example (after a warm-up)."""
    import torch

    n = sum(int(b["input_ids"].shape[0]) for b in batches)
    with torch.inference_mode():
        for b in batches[:2]:  # warm-up: first calls allocate and pick kernels
            model(**b)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            for b in batches:
                model(**b)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000 / n


def scores(labels: list[int], preds: list[int], k: int) -> tuple[float, float]:
    """(accuracy, macro F1 over the k classes), as the training metrics define them.

    >>> scores([0, 0, 1, 1], [0, 1, 1, 1], 2)
    (0.75, 0.7333333333333334)
    """
    from sklearn.metrics import accuracy_score, f1_score

    acc = float(accuracy_score(labels, preds))
    f1 = float(f1_score(labels, preds, average="macro", labels=list(range(k)), zero_division=0))
    return acc, f1


def quantize_model(model):
    """A dynamic int8 copy of `model`: nn.Linear weights int8, activations quantised per batch."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch says eager quantisation moves to torchao; it still runs here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def onnx_status() -> str:
    """Whether ONNX export + onnxruntime can run here (both packages must import)."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        return f"ONNX: {' and '.join(missing)} not installed (export and onnxruntime latency skipped)"
    return "ONNX: available but not measured by this version"


def quantize(run: RunRecord, settings: Settings, options: ShrinkOptions | None = None) -> ShrinkReport:
    """Quantise the run's model to int8, save it, and measure fp32 vs int8 on the run's eval split."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    opt = options or ShrinkOptions()
    model_dir = _check(run)
    config = TrainingConfig.from_dict(run.config)
    texts, labels = eval_rows(run, settings, opt.max_rows)
    if not texts:
        raise ValueError(f"run {run.id}'s eval split is empty")
    k = len(run.plan.get("labels") or []) or (max(labels) + 1)

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    fp32 = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    int8 = quantize_model(AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval())

    out_dir = model_dir.parent / QUANTIZED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    q_path = out_dir / QUANTIZED_FILE
    torch.save(int8.state_dict(), q_path)
    fp32_path = _weights_file(model_dir)

    max_len = config.max_length
    single = [_encode(tokenizer, [t], max_len) for t in texts[:opt.latency_rows]]
    batched = [_encode(tokenizer, texts[b:b + opt.batch_size], max_len)
               for b in range(0, min(len(texts), opt.batch_size * 2), opt.batch_size)]
    variants, all_preds = [], []
    for name, model, path in (("fp32", fp32, fp32_path), ("int8 (dynamic)", int8, q_path)):
        preds = _predict(model, tokenizer, texts, max_len, opt.batch_size)
        acc, f1 = scores(labels, preds, k)
        variants.append(Variant(name, path.stat().st_size, _ms_per_example(model, single, opt.repeats),
                                _ms_per_example(model, batched, opt.repeats), acc, f1))
        all_preds.append(preds)
    agree = sum(a == b for a, b in zip(*all_preds, strict=True)) / len(texts)
    notes = [f"latency is the model's forward pass on CPU with {torch.get_num_threads()} thread(s); "
             "tokenising is done beforehand and not timed",
             "dynamic quantisation converts nn.Linear layers only: the embedding tables stay fp32"]
    return ShrinkReport(run.id, variants, agree, len(texts), opt.batch_size, torch.get_num_threads(),
                        str(q_path), str(fp32_path), onnx_status(), notes)


def load_quantized(run: RunRecord):
    """The saved int8 model back: rebuild the architecture, quantise it, load the saved state_dict."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model_dir = _check(run)
    model = quantize_model(AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval())
    state = torch.load(model_dir.parent / QUANTIZED_DIR / QUANTIZED_FILE, weights_only=False)
    model.load_state_dict(state)
    return model


# --- the run as a transformers pipeline -----------------------------------------------------------

def pipeline_code(run: RunRecord) -> str:
    """The exact code that loads this run as a `transformers.pipeline` and classifies two texts."""
    model_dir = _check(run)
    return (
        "from transformers import pipeline\n\n"
        f"classifier = pipeline(\"text-classification\", model={str(model_dir.resolve())!r})\n"
        "print(classifier([\"This medicine worked well for me.\", \"It made my headaches worse.\"],\n"
        "                 truncation=True))\n"
    )


def load_pipeline(run: RunRecord):
    """`transformers.pipeline("text-classification", model=<the run's model folder>)` on CPU."""
    from transformers import pipeline

    return pipeline("text-classification", model=str(_check(run).resolve()), device="cpu")


def batch_predict(run: RunRecord, texts: list, batch_size: int = 32, classifier=None
                  ) -> tuple[list[dict], float]:
    """(pipeline predictions {label, score} per text, examples per second) through `pipeline()` itself.

    A (text, pair) tuple goes to the pipeline as {"text": ..., "text_pair": ...}."""
    clf = classifier or load_pipeline(run)
    texts = [{"text": str(t[0]), "text_pair": str(t[1])} if isinstance(t, tuple) else str(t) for t in texts]
    if not texts:
        return [], 0.0
    t = time.perf_counter()
    preds = clf(texts, batch_size=batch_size, truncation=True)
    seconds = time.perf_counter() - t
    return list(preds), len(texts) / seconds if seconds > 0 else float("inf")
