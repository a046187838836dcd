"""After training: int8 quantisation vs fp32 on the run's eval split, the pipeline, the serving script."""
import ast
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
from core.training import JobManager, TrainingConfig
from core.training.serve import serve_script
from core.training.shrink import (
    ShrinkOptions,
    batch_predict,
    eval_rows,
    load_pipeline,
    load_quantized,
    pipeline_code,
    quantize,
    quantize_model,
)
from tests.core.training.training_fixtures import tiny_dataset, tiny_model

AGREEMENT_TOLERANCE = 0.9  # int8 may flip a near-tie; at least 90 % of eval rows keep fp32's argmax


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
    fp32, int8 = report.variants
    assert report.eval_rows == 20
    assert report.agreement >= AGREEMENT_TOLERANCE
    assert abs(fp32.accuracy - int8.accuracy) <= 1 - AGREEMENT_TOLERANCE
    assert fp32.accuracy == pytest.approx(run.final_metrics["accuracy"])  # same rows the run evaluated on
    for v in report.variants:
        assert 0 <= v.macro_f1 <= 1 and v.ms_batch1 > 0 and v.ms_batched > 0
    assert [r["model"] for r in report.table()] == ["fp32", "int8 (dynamic)"]
    assert report.onnx.startswith("ONNX")


def test_sizes_are_the_files_on_disk(report, run):
    fp32, int8 = report.variants
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


def test_served_script_answers_like_the_pipeline(run, settings, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(serve_script(run))
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port)], cwd=tmp_path, env=env,
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
        texts, _ = eval_rows(run, settings, 5)
        status, body = _post(base + "/predict", {"texts": texts})
        assert status == 200, body
        direct, _ = batch_predict(run, texts)
        assert [p["label"] for p in body["predictions"]] == [p["label"] for p in direct]
        for served, ref in zip(body["predictions"], direct, strict=True):
            assert served["score"] == pytest.approx(ref["score"], abs=1e-5)
        status, body = _post(base + "/predict", {"texts": "not a list"})
        assert status == 400 and "texts" in body["error"]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
