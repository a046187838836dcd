"""After training: int8 dynamic quantisation and ONNX export, measured side by side; the run as a `pipeline()`.

`quantize(run, settings)` loads a completed run's model (text classification, token classification or
extractive QA), quantises its nn.Linear layers to int8 (`torch.ao.quantization.quantize_dynamic`) and saves
the quantised state_dict under <run folder>/quantized/, exports the fp32 model to ONNX under <run folder>/onnx/
(`core.training.onnx_export`: torch's dynamo exporter, dynamic batch and sequence axes) and quantises that
graph with onnxruntime; then it measures every variant on the run's own eval split, the same way: size on
disk, latency per example at batch 1 and 32 (forward pass only, tokenised beforehand), the task's metric and
how often its predictions agree with fp32's. A variant that can't be built (export fails, onnxruntime
missing) stays in the table with the reason in its note.

What a "prediction" and the metric are, by task:
    text-classification   the argmax class; accuracy and macro F1
    token-classification  the argmax tag of each word's first sub-token; entity F1 (seqeval's) and token accuracy
    question-answering    the best answer span (start, end); SQuAD v1.1 exact match and F1, per question;
                          latency is per window (question + context, padded to max_length as the run evaluated)
    causal-lm             the argmax next token at each predicted position; perplexity (the run's) and next-token
                          accuracy; latency is one forward pass per block (core.training.shrink_generation)
    seq2seq               the greedy generated text; ROUGE-L / ROUGE-1; latency is generate() per example; no ONNX
"""
from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from core.training import onnx_export, shrink_generation
from core.training.shrink_data import BENCHES as _BENCHES
from core.training.shrink_data import Bench, eval_rows, scores
from core.training.store import RunRecord

BENCHES = {**_BENCHES, "causal-lm": shrink_generation.bench, "seq2seq": shrink_generation.bench}

__all__ = ["FP32", "INT8", "ONNX", "ONNX_INT8", "ShrinkOptions", "ShrinkReport", "Variant", "batch_predict",
           "eval_rows", "load_pipeline", "load_quantized", "onnx_path", "onnx_status", "pipeline_code", "quantize",
           "quantize_model", "scores"]  # eval_rows and scores live in core.training.shrink_data

QUANTIZED_DIR = "quantized"  # beside the run's model/ folder
QUANTIZED_FILE = "model_int8.pt"  # torch.save of the quantised state_dict
TASKS = ("text-classification", "token-classification", "question-answering", "causal-lm", "seq2seq")  # `quantize`'s
AUTO_CLASS = {"text-classification": "AutoModelForSequenceClassification",
              "token-classification": "AutoModelForTokenClassification",
              "question-answering": "AutoModelForQuestionAnswering",
              "causal-lm": "AutoModelForCausalLM", "seq2seq": "AutoModelForSeq2SeqLM"}

FP32, INT8, ONNX, ONNX_INT8 = "fp32", "int8 (dynamic)", "ONNX (onnxruntime)", "ONNX int8 (onnxruntime)"


@dataclass
class ShrinkOptions:
    """How much to measure: small enough that a click answers in well under a minute on CPU."""

    max_rows: int = 200  # eval rows scored for the metric / agreement
    latency_rows: int = 16  # rows (QA: windows) timed one by one at batch 1
    batch_size: int = 32  # the "batched" latency
    repeats: int = 5  # timed repeats per measurement, after one warm-up; the median is kept
    onnx: bool = True  # export to ONNX and time it with onnxruntime
    onnx_int8: bool = True  # also onnxruntime's dynamic int8 quantisation of the exported graph


@dataclass
class Variant:
    """One model's figures; a variant that could not be built has None figures and says why in `note`."""

    name: str  # FP32 | INT8 | ONNX | ONNX_INT8
    size_bytes: int | None  # the weights file(s) on disk
    ms_batch1: float | None  # median milliseconds per example, one example at a time
    ms_batched: float | None  # median milliseconds per example in batches of `batch_size`
    metrics: dict[str, float] = field(default_factory=dict)  # the task's metric(s), by display name
    agreement: float | None = None  # share of predictions equal to fp32's (fp32 itself: 1.0)
    max_abs_diff: float | None = None  # largest |output - fp32 output| over the scored batches
    path: str = ""  # the file measured
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.size_bytes is not None

    @property
    def accuracy(self) -> float | None:
        return self.metrics.get("accuracy")

    @property
    def macro_f1(self) -> float | None:
        return self.metrics.get("macro F1")


@dataclass
class ShrinkReport:
    """fp32 vs int8 vs ONNX on the run's eval split, plus where the files were saved."""

    run_id: str
    task: str
    variants: list[Variant]
    agreement: float  # share of eval predictions where fp32 and torch int8 agree
    eval_rows: int
    batch_size: int
    threads: int  # torch intra-op threads (and onnxruntime's) during the timings
    quantized_path: str
    fp32_path: str
    onnx: str  # what happened to the ONNX export, in a sentence starting "ONNX"
    onnx_path: str = ""  # the exported fp32 graph, "" when it was not exported
    unit: str = "example"  # what latency is per: "example", or "window" for QA
    notes: list[str] = field(default_factory=list)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def table(self) -> list[dict]:
        """One row per model, for a dataframe or a markdown table (None where a variant failed)."""
        base = self.variants[0]
        rows = []
        for v in self.variants:
            row = {"model": v.name,
                   "size (MB)": round(v.size_bytes / 1e6, 2) if v.ok else None,
                   "size vs fp32": f"{v.size_bytes / base.size_bytes:.0%}" if v.ok else "",
                   f"ms / {self.unit}, batch 1": _round(v.ms_batch1, 2),
                   f"ms / {self.unit}, batch {self.batch_size}": _round(v.ms_batched, 2)}
            row |= {k: _round(v.metrics.get(k), 4) for k in base.metrics}
            row["agrees with fp32"] = "" if v.agreement is None else f"{v.agreement:.1%}"
            row["max output diff vs fp32"] = "" if v.max_abs_diff is None else f"{v.max_abs_diff:.2g}"
            row["note"] = v.note
            rows.append(row)
        return rows


def _round(x: float | None, n: int) -> float | None:
    return None if x is None else round(x, n)


def task_of(run: RunRecord) -> str:
    return run.config.get("task", "text-classification")


def _check(run: RunRecord, tasks: tuple[str, ...] = ("text-classification",)) -> Path:
    task = task_of(run)
    if task not in tasks:
        raise ValueError(f"run {run.id} is a {task!r} run: only {' / '.join(tasks)} runs can be "
                         "measured here")
    if not run.model_dir or not Path(run.model_dir, "config.json").is_file():
        raise ValueError(f"run {run.id} has no saved model ({run.status}): finish or resume it first")
    return Path(run.model_dir)


def _weights_file(model_dir: Path) -> Path:
    """The fp32 weights save_pretrained wrote (safetensors, or the older .bin)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise ValueError(f"no weights file in {model_dir}")


def _auto(task: str):
    import transformers

    return getattr(transformers, AUTO_CLASS[task])


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


def linear_layers(model):
    """`model` with GPT-2's Conv1D layers (x @ W + b, W stored [in, out]) replaced by the equivalent nn.Linear
    (W transposed): the same outputs, and layers torch's dynamic quantisation recognises (it converts nn.Linear
    only, so a GPT-2 would otherwise keep every attention and MLP weight in fp32)."""
    import torch
    from transformers.pytorch_utils import Conv1D

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv1D):
                lin = torch.nn.Linear(child.weight.shape[0], child.weight.shape[1], bias=child.bias is not None)
                with torch.no_grad():
                    lin.weight.copy_(child.weight.t())
                    if child.bias is not None:
                        lin.bias.copy_(child.bias)
                setattr(module, name, lin)
    return model


def quantize_model(model):
    """A dynamic int8 copy of `model`: nn.Linear weights int8 (GPT-2's Conv1D layers first made nn.Linear),
    activations quantised per batch."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    model = linear_layers(model)
    with warnings.catch_warnings():  # torch says eager quantisation moves to torchao; it still runs here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def onnx_status() -> str:
    """Whether ONNX export + onnxruntime can run here (the packages must import)."""
    if missing := onnx_export.missing():
        return f"ONNX: {' and '.join(missing)} not installed (export and onnxruntime latency skipped)"
    import onnxruntime

    return (f"ONNX: torch.onnx.export (dynamo exporter, dynamic batch and sequence axes), run with "
            f"onnxruntime {onnxruntime.__version__} on the CPUExecutionProvider")


# --- measuring ------------------------------------------------------------------------------------------

def _outputs(model, batches: list[dict], names: list[str], reduce=None) -> list[tuple]:
    import torch

    out = []
    with torch.inference_mode():
        for i, b in enumerate(batches):
            o = tuple(getattr(model(**b), n).float().numpy() for n in names)
            out.append(reduce(i, o) if reduce is not None else o)
    return out


def _load(auto, model_dir: Path, task: str):
    """The saved fp32 model in eval mode; a causal LM without its key/value cache (its forward pass then returns
    only the logits, as scored, timed and exported here; a seq2seq model keeps it: generate() uses it)."""
    model = auto.from_pretrained(str(model_dir)).eval()
    if task == "causal-lm":
        model.config.use_cache = False
    return model


def _measure(name: str, model, path: Path, size: int, bench: Bench, opt: ShrinkOptions,
             ref: tuple[list, list] | None) -> tuple[Variant, list, list]:
    """The variant's figures; `ref` is fp32's (outputs, predictions) to compare with (None for fp32 itself)."""
    import numpy as np

    if bench.wrap is not None:
        model = bench.wrap(model)
    outs = _outputs(model, bench.scoring, bench.outputs, bench.reduce)
    metrics, preds = bench.score(outs)
    agree = diff = None
    if ref is not None:
        agree = sum(a == b for a, b in zip(preds, ref[1], strict=True)) / max(1, len(preds))
        k = bench.compared
        if k != 0:
            diff = max(float(np.abs(a - b).max()) for o, r in zip(outs, ref[0], strict=True)
                       for a, b in zip(o[:k], r[:k], strict=True))
    v = Variant(name, size, _ms_per_example(model, bench.single, opt.repeats),
                _ms_per_example(model, bench.batched, opt.repeats), metrics,
                1.0 if ref is None else agree, None if ref is None else diff, str(path))
    return v, outs, preds


def _export_sample(batch: dict) -> dict:
    """Two rows of a batch for the exporter (a batch of one is doubled: a size-1 axis would be fixed at 1)."""
    import torch

    return {k: (v[:2] if v.shape[0] >= 2 else torch.cat([v, v])) for k, v in batch.items()}


def _failed(name: str, note: str, metrics: dict) -> Variant:
    return Variant(name, None, None, None, dict.fromkeys(metrics), note=note)


def quantize(run: RunRecord, settings: Settings, options: ShrinkOptions | None = None) -> ShrinkReport:
    """Quantise the run's model to int8 and export it to ONNX, save both, and measure every variant
    against fp32 on the run's eval split (`ShrinkReport.table()`)."""
    import torch
    from transformers import AutoTokenizer

    opt = options or ShrinkOptions()
    model_dir = _check(run, TASKS)
    task = task_of(run)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    bench = BENCHES[task](run, settings, tokenizer, opt.max_rows, opt.latency_rows, opt.batch_size)
    auto = _auto(task)
    threads = torch.get_num_threads()
    fp32 = _load(auto, model_dir, task)
    int8 = quantize_model(_load(auto, model_dir, task))

    out_dir = model_dir.parent / QUANTIZED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    q_path = out_dir / QUANTIZED_FILE
    torch.save(int8.state_dict(), q_path)
    fp32_path = _weights_file(model_dir)

    base, ref_outs, ref_preds = _measure(FP32, fp32, fp32_path, fp32_path.stat().st_size, bench, opt, None)
    ref = (ref_outs, ref_preds)
    q, _, _ = _measure(INT8, int8, q_path, q_path.stat().st_size, bench, opt, ref)
    variants = [base, q]
    status, graph = onnx_status(), ""
    if opt.onnx and bench.no_onnx:
        variants.append(_failed(ONNX, bench.no_onnx, base.metrics))
        status = f"ONNX: {bench.no_onnx}"
    elif opt.onnx:
        onnx_rows, graph, status = _onnx_variants(fp32, bench, opt, model_dir.parent, threads, ref,
                                                      base.metrics, status)
        variants += onnx_rows
    what = "generate()" if bench.wrap is not None else "the model's forward pass"
    notes = [f"latency is {what} on CPU with {threads} thread(s) (onnxruntime given the same); "
             "tokenising is done beforehand and not timed",
             "torch's dynamic quantisation converts nn.Linear layers only (GPT-2's Conv1D layers are made nn.Linear "
             "first): the embedding tables stay fp32",
             *bench.notes]
    if opt.onnx and opt.onnx_int8 and any(v.name == ONNX_INT8 and v.ok for v in variants):
        notes.append("onnxruntime's dynamic quantisation also stores the embedding tables (Gather) as int8")
    return ShrinkReport(run.id, task, variants, q.agreement, bench.rows, opt.batch_size, threads, str(q_path),
                        str(fp32_path), status, graph, bench.unit, notes)


def _onnx_variants(fp32, bench: Bench, opt: ShrinkOptions, run_dir: Path, threads: int, ref,
                   metrics: dict, status: str) -> tuple[list[Variant], str, str]:
    """The ONNX rows (exported fp32, then onnxruntime int8), each a failed row with the reason if it fails."""
    if missing := onnx_export.missing():
        why = f"not measured: {' and '.join(missing)} not installed"
        return ([_failed(ONNX, why, metrics)] + ([_failed(ONNX_INT8, why, metrics)] if opt.onnx_int8 else []),
                "", status)
    path = run_dir / onnx_export.ONNX_DIR / onnx_export.ONNX_FILE
    try:
        onnx_export.export(fp32, _export_sample(bench.scoring[0]), path, bench.outputs)
    except Exception as e:  # noqa: BLE001 - any exporter failure becomes the row's note, never a crash
        why = f"export failed: {onnx_export.short_error(e)}"
        rows = [_failed(ONNX, why, metrics)]
        if opt.onnx_int8:
            rows.append(_failed(ONNX_INT8, "not measured: the fp32 export failed", metrics))
        return rows, "", f"ONNX: {why}"
    rows = [_run_onnx(ONNX, path, bench, opt, threads, ref, metrics)]
    if opt.onnx_int8:
        q_path = path.with_name(onnx_export.ONNX_INT8_FILE)
        try:
            onnx_export.quantize(path, q_path)
        except Exception as e:  # noqa: BLE001
            rows.append(_failed(ONNX_INT8, f"quantisation failed: {onnx_export.short_error(e)}", metrics))
        else:
            rows.append(_run_onnx(ONNX_INT8, q_path, bench, opt, threads, ref, metrics))
    return rows, str(path), status


def _run_onnx(name: str, path: Path, bench: Bench, opt: ShrinkOptions, threads: int, ref,
              metrics: dict) -> Variant:
    try:
        model = onnx_export.OrtModel(path, threads)
        return _measure(name, model, path, onnx_export.file_size(path), bench, opt, ref)[0]
    except Exception as e:  # noqa: BLE001 - an onnxruntime failure becomes the row's note
        return _failed(name, f"onnxruntime failed: {onnx_export.short_error(e)}", metrics)


def load_quantized(run: RunRecord):
    """The saved int8 model back: rebuild the architecture, quantise it, load the saved state_dict."""
    import torch

    model_dir = _check(run, TASKS)
    model = quantize_model(_load(_auto(task_of(run)), model_dir, task_of(run)))
    state = torch.load(model_dir.parent / QUANTIZED_DIR / QUANTIZED_FILE, weights_only=False)
    model.load_state_dict(state)
    return model


def onnx_path(run: RunRecord) -> Path | None:
    """The run's exported fp32 ONNX graph, if `quantize` has exported one."""
    if not run.model_dir:
        return None
    p = Path(run.model_dir).parent / onnx_export.ONNX_DIR / onnx_export.ONNX_FILE
    return p if p.is_file() else None


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
