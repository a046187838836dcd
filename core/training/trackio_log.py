"""Also log a run to Trackio (Hugging Face's local-first experiment tracker), through transformers' own
`TrackioCallback`. Torch Lab's run store stays the source of truth; this is for people who already keep their
runs in Trackio.

Trackio keeps one SQLite file per project under `TRACKIO_DIR`, which it reads once, when it is imported (a
module constant in several of its modules), so the folder is process-wide rather than per run as TensorBoard's
is. Torch Lab points it into the workspace (`<workspace>/trackio`) unless the person running the server set
`TRACKIO_DIR` already; the folder and project a run actually logged to are kept in its plan, so the page shows
the exact command that opens them.
"""
from __future__ import annotations

import os
from pathlib import Path

from core.settings import Settings

PROJECT = "torch-lab"  # one Trackio project per workspace; each run is a Trackio run named after its id


def trackio_dir(settings: Settings) -> Path:
    return Path(settings.workspace).resolve() / "trackio"


def trackio_callback(settings: Settings, run_id: str, name: str):
    """(callback, where it logs: {"dir", "project", "run"}) for one run. Local only: no Space, no bucket, no
    server unless the environment names one (Trackio's own TRACKIO_SPACE_ID / TRACKIO_SERVER_URL)."""
    os.environ.setdefault("TRACKIO_DIR", str(trackio_dir(settings)))  # read by trackio's first import
    import trackio.utils
    from transformers.integrations import TrackioCallback

    run = f"{run_id} · {name}" if name and name != run_id else run_id

    class LocalTrackio(TrackioCallback):
        """TrackioCallback names its project and run from TrainingArguments (`project`, `run_name`) and, with a
        Space, freezes it after training; here both names come from Torch Lab and nothing is published."""

        def setup(self, args, state, model, **kwargs):
            if state.is_world_process_zero:
                self._trackio.init(project=PROJECT, name=run, resume="allow")
                self._trackio.config.update({"torch_lab_run": run_id, **args.to_dict()}, allow_val_change=True)
                try:
                    self._trackio.config["model/num_parameters"] = model.num_parameters()
                except AttributeError:
                    pass
            self._initialized = True

        def on_push_begin(self, *args, **kwargs):  # never sync a Space from here
            return

    return LocalTrackio(), {"dir": str(trackio.utils.TRACKIO_DIR), "project": PROJECT, "run": run}


def open_command(where: dict) -> str:
    """The shell command that opens the run's project in Trackio's dashboard."""
    return f"TRACKIO_DIR={where['dir']} trackio show --project {where['project']}"


def logged_losses(where: dict) -> dict[int, float]:
    """step -> training loss as Trackio stored it (for tests and the run page's check)."""
    from trackio.sqlite_storage import SQLiteStorage

    logs = SQLiteStorage.get_logs(where["project"], where["run"])
    # the callback logs the Trainer's global step beside Trackio's own running count of log calls
    return {int(r.get("train/global_step", r["step"])): float(r["train/loss"]) for r in logs
            if r.get("train/loss") is not None}
