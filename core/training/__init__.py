"""Fine-tuning engine: config, background job manager, run store. No Streamlit here.

    from core.training import JobManager, TrainingConfig
    jobs = JobManager("workspace")
    run_id = jobs.submit(TrainingConfig(dataset="drug-reviews", max_steps=20))
    jobs.wait(run_id, timeout=600)
    jobs.store.metrics(run_id)
"""
from core.training.config import ConfigError, TrainingConfig
from core.training.jobs import JobManager
from core.training.store import RunRecord, RunStore

__all__ = ["ConfigError", "JobManager", "RunRecord", "RunStore", "TrainingConfig"]
