"""Scale-out runner: the same run launched under torchrun as N processes, writing to the same store.

On CPU the processes talk over gloo; on a multi-GPU machine each gets one GPU (NCCL). The
JobManager treats this runner like the thread runner: the page shows the run the same way.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.settings import Settings
from core.training.store import RunStore

STOP_FILE = "STOP"
RESULT_FILE = "result"


class TorchrunRunner:
    """Launch `python -m torch.distributed.run --nproc_per_node N -m core.training.worker RUN_ID`."""

    name = "torchrun"

    def __init__(self, nproc: int = 2, poll_s: float = 0.5):
        self.nproc = nproc
        self.poll_s = poll_s

    def run(self, run_id: str, store: RunStore, settings: Settings, should_stop: Callable[[], bool],
            resume: bool) -> str:
        from core.training.runner import run_dir

        folder = run_dir(settings, run_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name in (STOP_FILE, RESULT_FILE):
            (folder / name).unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.nproc}",
               "-m", "core.training.worker", run_id, "--workspace", str(settings.workspace)]
        if resume:
            cmd.append("--resume")
        env = {**os.environ, "TORCHLAB_DEVICE": settings.device, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        with open(folder / "torchrun.log", "w", encoding="utf-8") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            while proc.poll() is None:
                if should_stop() and not (folder / STOP_FILE).exists():
                    (folder / STOP_FILE).touch()  # every rank reads it at the same step (see worker)
                time.sleep(self.poll_s)
        result = folder / RESULT_FILE
        if proc.returncode != 0 or not result.exists():
            tail = (folder / "torchrun.log").read_text(encoding="utf-8", errors="replace")[-1500:]
            raise RuntimeError(f"torchrun exited with {proc.returncode}: {tail}")
        return result.read_text().strip()
