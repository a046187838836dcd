"""After training: int8 quantisation and ONNX export vs fp32 on the run's eval split (text classification, token
classification, extractive QA), the pipeline, the serving scripts (pipeline and onnxruntime, single texts and pairs)."""
import ast
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.settings import Settings
from core.training import JobManager, TrainingConfig, onnx_export
from core.training.serve import serve_script
from core.training.shrink import (
    FP32,
    INT8,
    ONNX,
    ONNX_INT8,
    ShrinkOptions,
    batch_predict,
    eval_rows,
    load_pipeline,
    load_quantized,
    onnx_path,
    pipeline_code,
    quantize,
    quantize_model,
)
from tests.core.training.qa_fixtures import QA_COLUMNS, qa_dataset
from tests.core.training.test_token_classification import cfg as ner_cfg
from tests.core.training.test_token_classification import ner_rows
from tests.core.training.test_token_classification import save as save_ner
from tests.core.training.training_fixtures import tiny_dataset, tiny_model

AGREEMENT_TOLERANCE = 0.9  # int8 may flip a near-tie; at least 90 % of eval rows keep fp32's argmax
TOKEN_AGREEMENT_TOLERANCE = 0.95  # token classification: at least 95 % of the scored words keep fp32's tag
ONNX_ATOL = 1e-4  # onnxruntime's fp32 outputs equal PyTorch's within this (seen: ~1e-8 on the tiny BERT)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    s = Settings(workspace=tmp_path_factory.mktemp("shrink") / "ws")
    tiny_dataset(s, rows=200)  # 20 eval rows
    return s


@pytest.fixture(scope="module")
def run(settings, tmp_path_factory):
    """A completed tiny text-classification run, trained through the job manager."""
    model_dir = tiny_model(tmp_path_factory.mktemp("tiny-model"))
    jobs = JobManager(settings=settings)
    cfg = TrainingConfig(model=str(model_dir), dataset="tiny", max_length=32, batch_size=16, learning_rate=5e-3,
                         max_steps=6, warmup=0, logging_steps=3)
    run_id = jobs.submit(cfg)
    assert jobs.wait(run_id, 300) == "completed", jobs.store.get(run_id).message
    rec = jobs.store.get(run_id)
    jobs.shutdown()
    return rec


@pytest.fixture(scope="module")
def report(run, settings):
    return quantize(run, settings, ShrinkOptions(max_rows=200, latency_rows=4, repeats=2))


def test_int8_agrees_with_fp32_on_the_eval_split(report, run):
    fp32, int8 = report.variants[:2]
    assert report.eval_rows == 20
    assert report.agreement == int8.agreement >= AGREEMENT_TOLERANCE
    assert abs(fp32.accuracy - int8.accuracy) <= 1 - AGREEMENT_TOLERANCE
    assert fp32.accuracy == pytest.approx(run.final_metrics["accuracy"])  # same rows the run evaluated on
    for v in report.variants:
        assert v.ok and 0 <= v.macro_f1 <= 1 and v.ms_batch1 > 0 and v.ms_batched > 0 and not v.note
    assert [r["model"] for r in report.table()] == [FP32, INT8, ONNX, ONNX_INT8]
    assert report.onnx.startswith("ONNX: torch.onnx.export")


def test_onnx_row_is_the_exported_file_and_scores_like_fp32(report, run):
    fp32, onnx, onnx8 = report.variant(FP32), report.variant(ONNX), report.variant(ONNX_INT8)
    path = Path(run.model_dir).parent / "onnx" / "model.onnx"
    assert report.onnx_path == onnx.path == str(path) and onnx_path(run) == path
    assert not path.with_name("model.onnx.data").exists()  # a small model is one self-contained file
    assert onnx.size_bytes == path.stat().st_size == onnx_export.file_size(path) > 0
    row = next(r for r in report.table() if r["model"] == ONNX)
    assert row["size (MB)"] == round(path.stat().st_size / 1e6, 2) and row["note"] == ""
    assert onnx.agreement == 1.0 and onnx.max_abs_diff < ONNX_ATOL
    assert onnx.accuracy == fp32.accuracy and onnx.macro_f1 == fp32.macro_f1
    # onnxruntime's int8 also quantises the embeddings: much smaller than the fp32 graph
    assert onnx8.size_bytes == Path(onnx8.path).stat().st_size < onnx.size_bytes / 2
    assert onnx8.agreement >= AGREEMENT_TOLERANCE


def test_onnx_logits_equal_pytorch_at_any_batch_size_and_length(report, run, settings):
    """Dynamic batch and sequence axes: batches of 1, 3 and 20 rows, each padded to its own longest text."""
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts, _ = eval_rows(run, settings, 20)
    tok = AutoTokenizer.from_pretrained(run.model_dir)
    fp32 = AutoModelForSequenceClassification.from_pretrained(run.model_dir).eval()
    ort_model = onnx_export.OrtModel(report.onnx_path)
    assert ort_model.input_names == list(tok.model_input_names) and ort_model.output_names == ["logits"]
    lengths = set()
    for batch in ([texts[0]], texts[3:6], texts):
        enc = tok(batch, padding=True, truncation=True, max_length=32, return_tensors="pt")
        lengths.add(enc["input_ids"].shape)
        with torch.inference_mode():
            want = fp32(**enc).logits.numpy()
        got = ort_model(**enc).logits.numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=ONNX_ATOL, rtol=0)
    assert len(lengths) == 3


@pytest.mark.parametrize("broken", ["export", "missing"])
def test_an_onnx_failure_is_a_row_that_says_why(run, settings, monkeypatch, broken):
    if broken == "export":
        def fail(*args, **kwargs):
            raise RuntimeError("Unsupported op: aten::boom\nmore detail")

        monkeypatch.setattr(onnx_export, "export", fail)
        why = "export failed: RuntimeError: Unsupported op: aten::boom"
    else:
        monkeypatch.setattr(onnx_export, "missing", lambda: ["onnxruntime"])
        why = "not measured: onnxruntime not installed"
    r = quantize(run, settings, ShrinkOptions(max_rows=8, latency_rows=1, repeats=1))
    rows = {row["model"]: row for row in r.table()}
    assert list(rows) == [FP32, INT8, ONNX, ONNX_INT8]
    assert rows[ONNX]["note"] == why and rows[ONNX]["size (MB)"] is None and rows[ONNX]["accuracy"] is None
    assert rows[ONNX_INT8]["note"] and not r.variant(ONNX_INT8).ok
    assert rows[INT8]["note"] == "" and r.variant(INT8).ok  # the rest of the table still measured
    assert r.onnx.startswith("ONNX") and ("boom" in r.onnx or "not installed" in r.onnx)


def test_sizes_are_the_files_on_disk(report, run):
    fp32, int8 = report.variants[:2]
    q = Path(report.quantized_path)
    assert q.parent == Path(run.model_dir).parent / "quantized"
    assert int8.size_bytes == q.stat().st_size > 0
    assert fp32.size_bytes == Path(report.fp32_path).stat().st_size
    assert Path(report.fp32_path).parent == Path(run.model_dir)


def test_saved_int8_file_holds_the_quantised_weights(report, run, settings):
    """Loaded into a freshly initialised, quantised model, the saved file gives the quantised run's logits."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    texts, _ = eval_rows(run, settings, 8)
    tok = AutoTokenizer.from_pretrained(run.model_dir)
    enc = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    fp32 = AutoModelForSequenceClassification.from_pretrained(run.model_dir).eval()
    blank = quantize_model(AutoModelForSequenceClassification.from_config(
        AutoConfig.from_pretrained(run.model_dir)).eval())
    blank.load_state_dict(torch.load(report.quantized_path, weights_only=False))
    with torch.inference_mode():
        want, got = quantize_model(fp32)(**enc).logits, blank(**enc).logits
        assert torch.equal(got, want)
        assert torch.equal(load_quantized(run)(**enc).logits, want)
        assert (got - fp32(**enc).logits).abs().max() < 0.1  # int8 stays close to fp32


def test_pipeline_code_runs_and_matches_batch_predict(run, settings):
    code = pipeline_code(run)
    ast.parse(code)
    assert f'pipeline("text-classification", model={str(Path(run.model_dir).resolve())!r})' in code
    texts, _ = eval_rows(run, settings, 10)
    clf = load_pipeline(run)
    preds, per_s = batch_predict(run, texts, classifier=clf)
    assert len(preds) == 10 and per_s > 0
    assert {p["label"] for p in preds} <= set(run.plan["labels"])
    from core.training.predict import predict_after

    after = predict_after(run, texts)  # the app's own classifier says the same
    assert [p["label"] for p in preds] == [max(a, key=a.get) for a in after]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, payload: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@contextlib.contextmanager
def serving(script: str, folder: Path):
    """The serving script started on a free port; yields its base URL once /health answers."""
    path = folder / "serve.py"
    path.write_text(script)
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, str(path), "--port", str(port)], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:  # up once /health answers; the process must not have died meanwhile
            assert proc.poll() is None, proc.stdout.read()
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.time() < deadline, "the serving script did not answer within 90 s"
            time.sleep(0.2)
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_served_script_answers_like_the_pipeline(run, settings, tmp_path):
    with serving(serve_script(run), tmp_path) as base:
        texts, _ = eval_rows(run, settings, 5)
        status, body = _post(base + "/predict", {"texts": texts})
        assert status == 200, body
        direct, _ = batch_predict(run, texts)
        assert [p["label"] for p in body["predictions"]] == [p["label"] for p in direct]
        for served, ref in zip(body["predictions"], direct, strict=True):
            assert served["score"] == pytest.approx(ref["score"], abs=1e-5)
        status, body = _post(base + "/predict", {"texts": "not a list"})
        assert status == 400 and "texts" in body["error"]
        status, body = _post(base + "/predict", {"texts": texts, "text_pairs": texts})
        assert status == 400 and "single texts" in body["error"]


def test_onnx_serving_script_answers_text_pairs_like_the_pipeline(report, run, tmp_path):
    """The onnxruntime backend, for a run trained on (text, pair) rows: same labels and scores as
    transformers.pipeline given {"text", "text_pair"}."""
    paired = dataclasses.replace(run, config={**run.config, "text_pair_column": "text"})
    script = serve_script(paired, backend="onnx")
    assert "PAIRS = True" in script and f"ONNX_FILE = {report.onnx_path!r}" in script
    ast.parse(script)
    firsts = ["is it good?", "was it fun?", "any good?", "worth it?"]
    seconds = ["great film", "awful film", "loved it", "really tedious"]
    with serving(script, tmp_path) as base:
        with urllib.request.urlopen(base + "/health", timeout=5) as r:
            assert json.loads(r.read())["backend"] == "onnx"
        status, body = _post(base + "/predict", {"texts": firsts, "text_pairs": seconds})
        assert status == 200, body
        direct, _ = batch_predict(run, list(zip(firsts, seconds, strict=True)))
        assert [p["label"] for p in body["predictions"]] == [p["label"] for p in direct]
        for served, ref in zip(body["predictions"], direct, strict=True):
            assert served["score"] == pytest.approx(ref["score"], abs=ONNX_ATOL)
        status, body = _post(base + "/predict", {"texts": firsts})
        assert status == 400 and "text_pairs" in body["error"]
    # the pipeline backend of the same paired run, loaded in this process: the pipeline's own answers
    namespace = {"__name__": "serve_pipeline"}
    exec(compile(serve_script(paired), "serve_pipeline.py", "exec"), namespace)  # noqa: S102 - our own script
    served = namespace["load_pipeline"]()(firsts, seconds)
    assert [p["label"] for p in served] == [p["label"] for p in direct]
    assert [p["score"] for p in served] == pytest.approx([p["score"] for p in direct], abs=1e-6)


def test_onnx_serving_script_needs_an_export(run, tmp_path):
    bare = tmp_path / "run" / "model"
    bare.mkdir(parents=True)
    (bare / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no ONNX export yet"):
        serve_script(dataclasses.replace(run, model_dir=str(bare)), backend="onnx")


# --- token classification and extractive QA --------------------------------------------------------------

@pytest.fixture(scope="module")
def task_runs(tmp_path_factory):
    """A completed tiny token-classification run and a tiny extractive-QA run, through the job manager."""
    import torch

    s = Settings(workspace=tmp_path_factory.mktemp("shrink-tasks") / "ws")
    torch.manual_seed(0)  # the same random tiny BERT every time: what it learns in 20 steps does not vary
    model_dir = tiny_model(tmp_path_factory.mktemp("tiny-task-model"))
    save_ner(s, ner_rows(80))
    qa_dataset(s)
    jobs = JobManager(settings=s)
    cfgs = {"token-classification": ner_cfg(str(model_dir), eval_fraction=0.25),
            "question-answering": TrainingConfig(task="question-answering", columns=QA_COLUMNS, model=str(model_dir),
                                                 dataset="tiny-qa", max_length=64, batch_size=8, learning_rate=5e-3,
                                                 max_steps=6, warmup=0, eval_steps=3)}
    runs = {}
    try:
        for task, c in cfgs.items():
            rid = jobs.submit(c)
            assert jobs.wait(rid, 300) == "completed", jobs.store.get(rid).message
            runs[task] = jobs.store.get(rid)
    finally:
        jobs.shutdown()
    return s, runs


def test_token_classification_int8_and_onnx_keep_fp32s_tags(task_runs):
    s, runs = task_runs
    run = runs["token-classification"]
    r = quantize(run, s, ShrinkOptions(max_rows=200, latency_rows=4, repeats=2))
    assert r.task == "token-classification" and r.eval_rows == 20
    fp32, int8, onnx = r.variant(FP32), r.variant(INT8), r.variant(ONNX)
    # the same rows, tags and scoring as the run's own evaluation
    assert fp32.metrics["entity F1"] == pytest.approx(run.final_metrics["f1"])
    assert fp32.metrics["token accuracy"] == pytest.approx(run.final_metrics["accuracy"])
    assert int8.agreement >= TOKEN_AGREEMENT_TOLERANCE
    assert abs(int8.metrics["entity F1"] - fp32.metrics["entity F1"]) <= 1 - TOKEN_AGREEMENT_TOLERANCE
    assert onnx.ok and onnx.agreement == 1.0 and onnx.max_abs_diff < ONNX_ATOL
    assert onnx.metrics == fp32.metrics
    assert r.variant(ONNX_INT8).agreement >= TOKEN_AGREEMENT_TOLERANCE
    assert {"entity F1", "token accuracy", "agrees with fp32"} <= set(r.table()[0])
    assert Path(r.quantized_path).stat().st_size == int8.size_bytes
    assert type(load_quantized(run)).__name__ == "BertForTokenClassification"


def test_question_answering_int8_and_onnx_find_fp32s_spans(task_runs):
    s, runs = task_runs
    run = runs["question-answering"]
    r = quantize(run, s, ShrinkOptions(max_rows=200, latency_rows=4, repeats=2))
    assert r.task == "question-answering" and r.unit == "window" and r.eval_rows == 4
    fp32, onnx = r.variant(FP32), r.variant(ONNX)
    assert fp32.metrics["exact match"] == pytest.approx(run.final_metrics["exact_match"])
    assert fp32.metrics["F1"] == pytest.approx(run.final_metrics["f1"])
    assert onnx.ok and onnx.agreement == 1.0 and onnx.max_abs_diff < ONNX_ATOL and onnx.metrics == fp32.metrics
    assert r.variant(INT8).agreement >= AGREEMENT_TOLERANCE
    assert onnx_export.OrtModel(onnx.path).output_names == ["start_logits", "end_logits"]
    assert "ms / window, batch 1" in r.table()[0]
