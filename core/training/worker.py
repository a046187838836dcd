"""Entry point for one torchrun process: `python -m core.training.worker RUN_ID --workspace W [--resume]`."""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from core.settings import get_settings
from core.training.distributed import RESULT_FILE, STOP_FILE
from core.training.runner import run_dir, run_training
from core.training.store import RunStore


def main() -> None:
    import torch
    import torch.distributed as dist

    ap = argparse.ArgumentParser()
    ap.add_argument("run_id")
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--resume", action="store_true")
    a = ap.parse_args()
    settings = replace(get_settings(), workspace=Path(a.workspace))
    store = RunStore(settings.runs_db)
    stop_file = run_dir(settings, a.run_id) / STOP_FILE

    def should_stop() -> bool:
        # all ranks must leave at the same step, or the next all-reduce waits forever
        flag = torch.tensor([1 if stop_file.exists() else 0])
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    status = run_training(a.run_id, store, settings, should_stop, resume=a.resume)
    if not dist.is_initialized() or dist.get_rank() == 0:
        (run_dir(settings, a.run_id) / RESULT_FILE).write_text(status)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
