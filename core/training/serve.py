"""Serve it: a stand-alone script (standard library `http.server` + the run's model).

The browser app never opens a port itself; it hands this script over as a download. Run it with
`python serve_<run>.py --port 8000`, then POST /predict {"texts": [...]}. Two backends:
    "pipeline"  transformers.pipeline("text-classification") on the saved model folder (needs torch)
    "onnx"      onnxruntime on the run's exported model.onnx, the tokenizer from the model folder
                (needs onnxruntime, transformers and numpy; not torch)
A run trained on text pairs (a second text column) takes {"texts": [...], "text_pairs": [...]}.
"""
from __future__ import annotations

from pathlib import Path

from core.training.store import RunRecord

BACKENDS = ("pipeline", "onnx")

_TEMPLATE = '''"""Serve Torch Lab run {run_id} ({name}) on http://{host}:<port> ({backend_line}).

    python {filename} --port 8000
    curl -s -X POST http://{host}:8000/predict -d '{example}'

POST /predict  {request}  ->  {{"predictions": [{{"label": ..., "score": ...}}, ...]}}
GET  /health   ->  {{"status": "ok", "model": ...}}
Needs only Python and {needs}; the model folder must stay where it was saved.
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

MODEL_DIR = {model_dir!r}
ONNX_FILE = {onnx_file!r}  # used by the "onnx" backend only
BACKEND = {backend!r}
PAIRS = {pairs!r}  # the run was trained on text pairs: each text comes with a "text_pairs" entry
MAX_TEXTS = 256  # texts per request
MAX_BODY = 4_000_000  # bytes per request

predict = None  # texts, pairs -> [{{"label", "score"}}]; loaded once, in main()


def load_pipeline():
    """transformers.pipeline on the saved model folder."""
    from transformers import pipeline

    classifier = pipeline("text-classification", model=MODEL_DIR, device="cpu")

    def run(texts, pairs):
        inputs = texts if pairs is None else [{{"text": t, "text_pair": p}} for t, p in zip(texts, pairs)]
        return [{{"label": p["label"], "score": float(p["score"])}} for p in classifier(inputs, truncation=True)]

    return run


def load_onnx():
    """onnxruntime on the exported graph; the same tokenizer, truncation and softmax as the pipeline."""
    import os

    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    session = ort.InferenceSession(ONNX_FILE, providers=["CPUExecutionProvider"])
    names = {{i.name for i in session.get_inputs()}}
    with open(os.path.join(MODEL_DIR, "config.json"), encoding="utf-8") as f:
        id2label = {{int(k): v for k, v in json.load(f)["id2label"].items()}}

    def run(texts, pairs):
        enc = tokenizer(texts, pairs, padding=True, truncation=True, return_tensors="np")
        logits = session.run(["logits"], {{k: v.astype(np.int64) for k, v in enc.items() if k in names}})[0]
        e = np.exp(logits - logits.max(-1, keepdims=True))
        probs = e / e.sum(-1, keepdims=True)
        return [{{"label": id2label[int(p.argmax())], "score": float(p.max())}} for p in probs]

    return run


def _strings(v):
    return isinstance(v, list) and bool(v) and all(isinstance(t, str) for t in v)


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, payload):
        body = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, {{"status": "ok", "model": ONNX_FILE if BACKEND == "onnx" else MODEL_DIR,
                              "backend": BACKEND, "pairs": PAIRS}})
        else:
            self._send(404, {{"error": "try POST /predict or GET /health"}})

    def do_POST(self):
        if self.path != "/predict":
            self._send(404, {{"error": "try POST /predict"}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {{"error": f"body over {{MAX_BODY}} bytes"}})
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{{}}")
            texts, pairs = body.get("texts"), body.get("text_pairs")
        except (ValueError, AttributeError):
            self._send(400, {{"error": "body must be a JSON object like {{\\"texts\\": [\\"...\\"]}}"}})
            return
        if not _strings(texts):
            self._send(400, {{"error": "\\"texts\\" must be a non-empty list of strings"}})
            return
        if PAIRS and not (_strings(pairs) and len(pairs) == len(texts)):
            self._send(400, {{"error": "this model reads text pairs: \\"text_pairs\\" must be a list of strings, "
                                      "one per text"}})
            return
        if not PAIRS and pairs is not None:
            self._send(400, {{"error": "this model reads single texts: drop \\"text_pairs\\""}})
            return
        if len(texts) > MAX_TEXTS:
            self._send(413, {{"error": f"at most {{MAX_TEXTS}} texts per request"}})
            return
        self._send(200, {{"predictions": predict(texts, pairs if PAIRS else None)}})

    def log_message(self, fmt, *args):  # one short line per request
        print(f"{{self.address_string()}} {{fmt % args}}", flush=True)


def main():
    global predict
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default={host!r})
    parser.add_argument("--port", type=int, default={port})
    args = parser.parse_args()
    predict = load_onnx() if BACKEND == "onnx" else load_pipeline()
    server = HTTPServer((args.host, args.port), Handler)
    print(f"serving {{MODEL_DIR}} ({{BACKEND}}) on http://{{args.host}}:{{server.server_port}}/predict", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
'''


def script_name(run: RunRecord, backend: str = "pipeline") -> str:
    return f"serve_{run.id}.py" if backend == "pipeline" else f"serve_{run.id}_{backend}.py"


def _onnx_file(run: RunRecord) -> Path:
    from core.training.onnx_export import ONNX_DIR, ONNX_FILE

    return Path(run.model_dir).parent / ONNX_DIR / ONNX_FILE


def serve_script(run: RunRecord, port: int = 8000, host: str = "127.0.0.1", backend: str = "pipeline") -> str:
    """A stand-alone serving script for a completed text-classification run: its model folder through
    `transformers.pipeline`, or (backend "onnx") the ONNX graph the shrink panel exported, with onnxruntime."""
    if run.config.get("task", "text-classification") != "text-classification":
        raise ValueError(f"run {run.id} is a {run.config.get('task')!r} run: only text-classification "
                         "fine-tunes can be served by this script")
    if not run.model_dir or not Path(run.model_dir, "config.json").is_file():
        raise ValueError(f"run {run.id} has no saved model ({run.status}): finish or resume it first")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    onnx_file = _onnx_file(run).resolve()
    if backend == "onnx" and not onnx_file.is_file():
        raise ValueError(f"run {run.id} has no ONNX export yet: measure it in 'Make it smaller and faster' first")
    pairs = bool(run.config.get("text_pair_column"))
    if pairs:
        example, request = ('{"texts": ["is it good?"], "text_pairs": ["great product"]}',
                            '{"texts": ["...", ...], "text_pairs": ["...", ...]}')
    else:
        example, request = '{"texts": ["great product", "awful"]}', '{"texts": ["...", ...]}'
    return _TEMPLATE.format(
        run_id=run.id, name=run.name, host=host, port=int(port), filename=script_name(run, backend),
        model_dir=str(Path(run.model_dir).resolve()), onnx_file=str(onnx_file), backend=backend, pairs=pairs,
        example=example, request=request,
        backend_line="onnxruntime on the exported ONNX graph" if backend == "onnx" else "transformers.pipeline",
        needs="`onnxruntime`, `transformers` and `numpy`" if backend == "onnx" else "`transformers` + `torch`")
