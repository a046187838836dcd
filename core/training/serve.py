"""Serve it: a stand-alone script (standard library `http.server` + a transformers pipeline).

The browser app never opens a port itself; it hands this script over as a download. Run it with
`python serve_<run>.py --port 8000`, then POST /predict {"texts": [...]}.
"""
from __future__ import annotations

from pathlib import Path

from core.training.store import RunRecord

_TEMPLATE = '''"""Serve Torch Lab run {run_id} ({name}) on http://{host}:<port>.

    python {filename} --port 8000
    curl -s -X POST http://{host}:8000/predict -d '{{"texts": ["great product", "awful"]}}'

POST /predict  {{"texts": ["...", ...]}}  ->  {{"predictions": [{{"label": ..., "score": ...}}, ...]}}
GET  /health   ->  {{"status": "ok", "model": ...}}
Needs only Python and `transformers` + `torch`; the model folder must stay where it was saved.
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

from transformers import pipeline

MODEL_DIR = {model_dir!r}
MAX_TEXTS = 256  # texts per request
MAX_BODY = 4_000_000  # bytes per request

classifier = None  # loaded once, in main()


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
            self._send(200, {{"status": "ok", "model": MODEL_DIR}})
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
            texts = json.loads(self.rfile.read(length) or b"{{}}").get("texts")
        except (ValueError, AttributeError):
            self._send(400, {{"error": "body must be a JSON object like {{\\"texts\\": [\\"...\\"]}}"}})
            return
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            self._send(400, {{"error": "\\"texts\\" must be a non-empty list of strings"}})
            return
        if len(texts) > MAX_TEXTS:
            self._send(413, {{"error": f"at most {{MAX_TEXTS}} texts per request"}})
            return
        preds = classifier(texts, truncation=True)
        self._send(200, {{"predictions": [{{"label": p["label"], "score": float(p["score"])}} for p in preds]}})

    def log_message(self, fmt, *args):  # one short line per request
        print(f"{{self.address_string()}} {{fmt % args}}", flush=True)


def main():
    global classifier
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default={host!r})
    parser.add_argument("--port", type=int, default={port})
    args = parser.parse_args()
    classifier = pipeline("text-classification", model=MODEL_DIR, device="cpu")
    server = HTTPServer((args.host, args.port), Handler)
    print(f"serving {{MODEL_DIR}} on http://{{args.host}}:{{server.server_port}}/predict", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
'''


def script_name(run: RunRecord) -> str:
    return f"serve_{run.id}.py"


def serve_script(run: RunRecord, port: int = 8000, host: str = "127.0.0.1") -> str:
    """A stand-alone serving script for a completed text-classification run's model folder."""
    if run.config.get("task", "text-classification") != "text-classification":
        raise ValueError(f"run {run.id} is a {run.config.get('task')!r} run: only text-classification "
                         "fine-tunes can be served by this script")
    if not run.model_dir or not Path(run.model_dir, "config.json").is_file():
        raise ValueError(f"run {run.id} has no saved model ({run.status}): finish or resume it first")
    return _TEMPLATE.format(run_id=run.id, name=run.name, host=host, port=int(port),
                            filename=script_name(run), model_dir=str(Path(run.model_dir).resolve()))
