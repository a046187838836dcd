"""The one place where heavy objects are cached for the whole server (st.cache_resource).

Everything returned here is shared by every browser session: treat it as read-only.
Fine-tuning and anything that mutates works on a fresh copy.
"""
from __future__ import annotations

import threading

import streamlit as st

from core.settings import Settings, get_settings


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner=False)
def run_store():
    """The run store, for pages that only show runs (the sidebar): no JobManager, so no torch import."""
    from core.training.jobs import recover_dead_runs
    from core.training.store import RunStore

    store = RunStore(settings().runs_db)
    recover_dead_runs(store)  # after a restart, runs of the dead server show as interrupted at once
    return store


_STARTED = threading.Event()  # per server process: the background probes have been started


_PROBES = {  # each prints one JSON line; run in a child process, see _warm_up
    "device": "import dataclasses, json, sys; from core.system import device_report; "
              "print(json.dumps(dataclasses.asdict(device_report(sys.argv[1]))))",
    "assets": "import json; from core.assets import check_assets; print(json.dumps(check_assets()))",
}


def _probe(name: str, arg: str = ""):
    """Run one probe in a child Python and decode its JSON line."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    # at low priority: they start while the first visitor's page is still being drawn (and on a CI machine,
    # while the browser itself renders it), and nothing waits for them
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []
    out = subprocess.run([*nice, sys.executable, "-c", _PROBES[name], arg], capture_output=True, text=True,
                         timeout=600, cwd=Path(__file__).resolve().parents[1])
    if out.returncode != 0:
        raise RuntimeError(f"the {name} probe failed: {out.stderr.strip().splitlines()[-1:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    if name == "device":
        from core.system import DeviceReport, GpuInfo

        return DeviceReport(**{**data, "gpus": [GpuInfo(**g) for g in data["gpus"]]})
    return {k: (bool(v[0]), str(v[1])) for k, v in data.items()}


@st.cache_resource(show_spinner=False)
def _warm_up() -> dict:
    """Slow facts started once per server, in child processes, so no page waits for them.

    The device probe imports torch (~3 s) and the asset check loads every packaged tokenizer and
    model (~20 s on a 2-core CPU): done inline they made the first page load take ~22 s. Child
    processes, not threads: a thread importing transformers while a page imports it too can see
    a half-initialised module ("cannot import name AutoModel"), and the GIL would slow the pages.
    """
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="torchlab-warmup")
    return {"device": pool.submit(_probe, "device", settings().device), "assets": pool.submit(_probe, "assets")}


def start_warm_up() -> None:
    """Start the background probes (app.py calls this after the first page has drawn: torch's import
    would otherwise compete with that page's own imports)."""
    _STARTED.set()
    _warm_up()


def _future(name: str, wait: bool):
    if not wait and not _STARTED.is_set():
        return None
    _STARTED.set()
    return _warm_up()[name]


def device_report(wait: bool = True):
    """The machine's device report; with wait=False, None until the background probe has finished."""
    future = _future("device", wait)
    return future.result() if future is not None and (wait or future.done()) else None


@st.cache_resource(show_spinner="Loading tokenizer…", max_entries=16)
def packaged_tokenizer(name: str):
    from core.assets import load_tokenizer

    return load_tokenizer(name, settings())


def asset_check(wait: bool = True) -> dict[str, tuple[bool, str]] | None:
    """Each registry asset -> (loads, detail), checked once per server in the background."""
    future = _future("assets", wait)
    return future.result() if future is not None and (wait or future.done()) else None
