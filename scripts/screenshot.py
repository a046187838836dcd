"""Serve the app on a free localhost port and screenshot one page with headless Debian chromium.

    .venv/bin/python scripts/screenshot.py tensor_playground out.png [--wait 8] [--width 1400]

The page argument is the URL path of a page (the file name under pages/, '' for home).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """streamlit run app.py on 127.0.0.1:port, started as `make run` starts it (scripts/serve.py); returns once
    /_stcore/health answers."""
    logs = ROOT / "test-artifacts"
    logs.mkdir(exist_ok=True)
    log = open(logs / f"server-{port}.log", "wb")  # noqa: SIM115 - the server keeps writing after we return
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()  # the child holds its own copy
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start within 60 s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("out")
    ap.add_argument("--wait", type=float, default=8.0, help="seconds to let the page render")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1800)
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = start_server(port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": a.width, "height": a.height})
            page.goto(f"http://127.0.0.1:{port}/{a.page}")
            page.wait_for_selector("[data-testid=stApp]", timeout=60_000)
            time.sleep(a.wait)
            page.screenshot(path=a.out, full_page=True)
            browser.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    print(a.out)


if __name__ == "__main__":
    main()
