"""JobManager: a queue of training runs executed by background worker threads.

One manager per server process. Worker threads never touch the UI: they write to the
RunStore, and the page polls it. Runners are replaceable: `ThreadRunner` trains in this
process; `core.training.distributed.TorchrunRunner` launches the same run under torchrun.
"""
from __future__ import annotations

import gc
import os
import queue
import shutil
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from core.settings import Settings, get_settings
from core.training.config import TrainingConfig
from core.training.store import ACTIVE, RunStore

TERMINAL = ("stopped", "completed", "failed", "interrupted")
# Training threads share the interpreter (and its GIL) with whatever hosts them: the web server's page scripts.
# A training step releases the GIL around each torch op and must win it back each time; while another thread
# runs Python, every win waits up to the switch interval (5 ms by default): the "convoy effect". Measured on
# the 2-core build machine with one busy Python thread beside the run: MiniLM 6 steps 84 s (6.9 s alone), a tiny
# BERT 12 steps 59 s (3.2 s alone); at 0.5 ms: 15.9 s and 9.2 s; alone, 0.5 ms changes nothing (5.1 s, 3.1 s).
# bench/RESULTS.md (#14, "the GIL convoy"). Lowered only, never raised over a host's own choice.
SWITCH_INTERVAL_S = 0.0005


def owner_token(pid: int | None = None) -> str:
    """host:pid:start-time of a process, so a reused pid is not mistaken for the old owner."""
    import psutil

    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{int(psutil.Process(pid).create_time())}"


def owner_alive(token: str | None) -> bool:
    import psutil

    if not token:
        return False
    try:
        host, pid, started = token.rsplit(":", 2)
        if host != socket.gethostname():
            return True  # another machine's process: not ours to judge
        return int(psutil.Process(int(pid)).create_time()) == int(started)
    except (ValueError, psutil.Error):
        return False


def recover_dead_runs(store: RunStore) -> None:
    """Runs left active by a process that has died are marked interrupted (resumable). No torch needed."""
    for r in store.runs():
        if r.status in ACTIVE and not owner_alive(r.owner):
            store.set_status(r.id, "interrupted",
                             "the server stopped while this run was " + r.status + "; resume it to continue")


class ThreadRunner:
    """Runs training in the calling worker thread of this process."""

    name = "thread"

    def __init__(self, extra_callbacks: Callable[[str], Sequence] | None = None):
        self.extra_callbacks = extra_callbacks  # tests inject faults through this

    def run(self, run_id: str, store: RunStore, settings: Settings, should_stop: Callable[[], bool],
            resume: bool) -> str:
        from core.training.runner import run_training

        extra = self.extra_callbacks(run_id) if self.extra_callbacks else ()
        return run_training(run_id, store, settings, should_stop, extra, resume=resume)


class JobManager:
    """Queue + workers + states (queued / running / stopping / stopped / completed / failed / interrupted)."""

    def __init__(self, workspace: str | Path | None = None, settings: Settings | None = None,
                 concurrency: int | None = None, runner=None):
        settings = settings or get_settings()
        if workspace is not None:
            settings = replace(settings, workspace=Path(workspace))
        self.settings = settings
        self.store = RunStore(settings.runs_db)
        self.runner = runner or ThreadRunner()
        self.owner = owner_token()
        self._queue: queue.Queue[tuple[str, bool] | None] = queue.Queue()
        self._stop_flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._recover()
        self.concurrency = concurrency or self._default_concurrency()
        if isinstance(self.runner, ThreadRunner) and sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._workers = [threading.Thread(target=self._work, name=f"torchlab-train-{i}", daemon=True)
                         for i in range(self.concurrency)]
        for w in self._workers:
            w.start()

    def _default_concurrency(self) -> int:
        from core.settings import resolve_device

        # one job per GPU: two on one device would only race for its memory
        return 1 if resolve_device(self.settings.device) != "cpu" else self.settings.cpu_concurrency

    def _recover(self) -> None:
        recover_dead_runs(self.store)

    # --- public API ---
    def submit(self, config: TrainingConfig) -> str:
        """Validate everything that can be checked before launch, then queue. Raises ConfigError."""
        from core.training.runner import prepare

        p, splits = prepare(config, self.settings)
        name = config.name.strip() or default_run_name(config, {r.name for r in self.store.runs()})
        run_id = self.store.create(name, _config_dict(config), runner=self.runner.name)
        self.store.update(run_id, owner=self.owner, device=p.device)
        self._enqueue(run_id, resume=False)
        return run_id

    def stop(self, run_id: str) -> None:
        """Graceful: a running job saves a checkpoint and ends `stopped`; a queued one never starts."""
        status = self.store.get(run_id).status
        if status == "queued":
            self.store.set_status(run_id, "stopped", "stopped before it started")
        elif status == "running":
            self.store.set_status(run_id, "stopping")
            flag = self._stop_flags.get(run_id)
            if flag:
                flag.set()

    def resume(self, run_id: str) -> None:
        """Continue a stopped / interrupted / failed run from its last checkpoint (same step count and curve)."""
        rec = self.store.get(run_id)
        if rec.status not in ("stopped", "interrupted", "failed"):
            raise ValueError(f"run {run_id} is {rec.status}; only stopped, interrupted or failed runs resume")
        self.store.update(run_id, owner=self.owner, message=None, finished=None)
        self._enqueue(run_id, resume=True)

    def delete(self, run_id: str, timeout: float = 120) -> None:
        """Remove a run, its metrics and its files (stopping it first if it is active)."""
        if self.status(run_id) in ACTIVE:
            self.stop(run_id)
            self.wait(run_id, timeout)
        self.store.delete(run_id)
        shutil.rmtree(self.settings.checkpoints_dir / run_id, ignore_errors=True)

    def status(self, run_id: str) -> str:
        return self.store.get(run_id).status

    def wait(self, run_id: str, timeout: float = 600, poll: float = 0.2) -> str:
        """Block until the run is stopped / completed / failed / interrupted; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.status(run_id)
            if s in TERMINAL:
                return s
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {s} after {timeout:.0f} s")
            time.sleep(poll)

    def shutdown(self, timeout: float = 60) -> None:
        """Stop running jobs gracefully and end the workers (tests and server exit)."""
        for flag in list(self._stop_flags.values()):
            flag.set()
        for _ in self._workers:
            self._queue.put(None)
        for w in self._workers:
            w.join(timeout)

    # --- workers ---
    def _enqueue(self, run_id: str, resume: bool) -> None:
        self.store.set_status(run_id, "queued", None, finished=None)
        self._queue.put((run_id, resume))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            run_id, resume = item
            try:
                if self.store.get(run_id).status != "queued":
                    continue  # stopped or deleted while waiting
            except KeyError:
                continue
            flag = threading.Event()
            with self._lock:
                self._stop_flags[run_id] = flag
            self.store.set_status(run_id, "running", None, started=time.time(), finished=None)
            try:
                final = self.runner.run(run_id, self.store, self.settings, flag.is_set, resume)
                self.store.set_status(run_id, final, "stopped by the user; resume continues from the checkpoint"
                                      if final == "stopped" else None)
            except Exception as e:  # any failure ends this job, never the server
                self.store.set_status(run_id, "failed", _failure_message(e))
                self._log_traceback(run_id)
            finally:
                with self._lock:
                    self._stop_flags.pop(run_id, None)
                _release_memory()

    def _log_traceback(self, run_id: str) -> None:
        folder = self.settings.checkpoints_dir / run_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.log").write_text(traceback.format_exc(), encoding="utf-8")


# what tells runs of one model on one dataset apart, in the order a person compares them
_NAME_FIELDS = (("learning_rate", "lr {:g}"), ("epochs", "{:g} epochs"), ("max_steps", "{} steps"),
                ("batch_size", "batch {}"), ("max_length", "len {}"), ("scheduler", "{} schedule"),
                ("optimizer", "{}"), ("weight_decay", "wd {:g}"), ("grad_accumulation", "accum {}"),
                ("precision", "{}"), ("seed", "seed {}"), ("max_train_samples", "{} rows"))


def default_run_name(config: TrainingConfig, taken: set[str]) -> str:
    """'minilm-l6 on drug-reviews · lr 0.0005, 1 epochs': the settings that differ from the defaults,
    and '#2', '#3'… when that name is taken already."""
    d = TrainingConfig()
    diffs = []
    for field, fmt in _NAME_FIELDS:
        v = getattr(config, field)
        if v == getattr(d, field) or v is None or (field == "max_steps" and v <= 0):
            continue
        if field == "epochs" and config.max_steps > 0:
            continue  # max steps wins over epochs
        diffs.append(fmt.format(v))
    name = config.display_name() + (" · " + ", ".join(diffs) if diffs else "")
    if name in taken:
        n = 2
        while f"{name} #{n}" in taken:
            n += 1
        name = f"{name} #{n}"
    return name


def _config_dict(config: TrainingConfig) -> dict:
    from dataclasses import asdict

    return asdict(config)


def _failure_message(e: BaseException) -> str:
    """Plain words for the run list; the traceback goes to the run's error.log."""
    from core.training.callbacks import NonFiniteLoss
    from core.training.config import ConfigError

    name = type(e).__name__
    if name == "OutOfMemoryError" or "out of memory" in str(e).lower():
        return ("out of memory: " + str(e).splitlines()[0][:300] +
                " — lower batch size or max length, or use bf16 / gradient accumulation")
    if isinstance(e, (NonFiniteLoss, ConfigError)):
        return str(e)
    return f"{name}: {e}"[:1000]


def _release_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
