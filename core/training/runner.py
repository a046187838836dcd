"""One fine-tuning run with the Hugging Face Trainer: plan, train, evaluate, save.

`run_training` knows nothing of threads or processes: the JobManager calls it in a worker
thread, `core.training.worker` calls it under torchrun. It talks back only through the
RunStore and the `should_stop` callable.
"""
from __future__ import annotations

import gc
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from core.assets import AssetError, resolve_model
from core.settings import Settings, resolve_device
from core.training.config import ConfigError, Plan, TrainingConfig
from core.training.schedules import TORCH_SCHEDULES
from core.training.store import RunStore


def run_dir(settings: Settings, run_id: str) -> Path:
    return settings.checkpoints_dir / run_id


def plan(config: TrainingConfig, settings: Settings, train_rows: int = 0, eval_rows: int = 0,
         labels: Sequence[str] = ()) -> Plan:
    """Resolve model, device, precision and optimizer; ConfigError names the field that can't work."""
    import torch

    config.validate()
    if config.task == "scratch":
        model_path = ""  # nothing to resolve: plan() below names it scratch:<kind>
    else:
        try:
            model_path = resolve_model(_model_spec(config.model, settings), settings)
        except AssetError as e:
            raise ConfigError("model", str(e)) from None
    device = resolve_device(settings.device)
    on_gpu = device.startswith("cuda")
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if on_gpu and torch.cuda.is_bf16_supported() else "fp32"
    elif precision in ("bf16", "fp16") and not on_gpu:
        raise ConfigError("precision", f"{precision} needs a CUDA GPU; this server trains on {device}: use fp32")
    elif precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision", "this GPU has no bf16: use fp16 or fp32")
    optim = {"adamw": "adamw_torch_fused", "adamw_torch": "adamw_torch", "sgd": "sgd",
             "adafactor": "adafactor"}[config.optimizer]
    if config.task == "scratch":  # no pretrained model: the network is built from config.architecture
        return Plan(f"scratch:{config.architecture.get('kind')}", device, precision, optim, list(labels), train_rows,
                    eval_rows, config.max_length)
    from transformers import AutoConfig

    try:
        mcfg = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError) as e:
        raise ConfigError("model", f"can't read the model config at {model_path}: {e}") from None
    limit = getattr(mcfg, "max_position_embeddings", None) or 512
    if config.max_length > limit:
        raise ConfigError("max_length", f"{config.max_length} is above this model's limit of {limit} positions")
    return Plan(model_path, device, precision, optim, list(labels), train_rows, eval_rows, limit)


def _model_spec(model: str, settings: Settings) -> str:
    """`run:<id>` means the model saved by an earlier run."""
    if model.startswith("run:"):
        path = run_dir(settings, model[4:]) / "model"
        if not (path / "config.json").is_file():
            raise ConfigError("model", f"run {model[4:]} has no saved model (it did not complete)")
        return str(path)
    return model


def prepare(config: TrainingConfig, settings: Settings):
    """Every check that can fail before launch: config, data, model. Returns (plan, splits), or for a
    from-scratch run (plan, core.scratch's Prepared: data, tokenizer and layer table, reused by setup)."""
    from core.training.data import load_splits

    config.validate()
    if config.task == "scratch":
        from core import scratch

        prepared = scratch.prepare(config, settings)
        info = scratch.describe(prepared)
        p = plan(config, settings, int(info.get("train_rows", 0)), int(info.get("eval_rows", 0)),
                 info.get("labels") or ())
        return p, prepared
    if config.task != "text-classification":  # a pretrained task with its own module (core.training.tasks)
        from core.training.tasks import task_module

        p = plan(config, settings)
        prepared = task_module(config.task).prepare(config, settings, p.model_path)
        p.train_rows, p.eval_rows, p.labels = prepared.train_rows, prepared.eval_rows, list(prepared.labels)
        return p, prepared
    splits = load_splits(config, settings)
    p = plan(config, settings, len(splits.train), len(splits.eval), splits.label_names)
    return p, splits


def steps_per_epoch(config: TrainingConfig, train_rows: int, processes: int = 1) -> int:
    return max(1, math.ceil(train_rows / (config.batch_size * processes)) // config.grad_accumulation)


def total_steps(config: TrainingConfig, train_rows: int, processes: int = 1) -> int:
    if config.max_steps > 0:
        return config.max_steps
    return max(1, math.ceil(config.epochs * steps_per_epoch(config, train_rows, processes)))


def latest_checkpoint(folder: Path) -> Path | None:
    """The complete checkpoint-N folder with the largest N, if any.

    The Trainer writes trainer_state.json last: a folder without it was cut off mid-save
    (the server was killed) and can't be resumed from.
    """
    if not folder.is_dir():
        return None
    cps = [p for p in folder.glob("checkpoint-*")
           if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return max(cps, key=lambda p: int(p.name.split("-")[-1]), default=None)


# what the Trainer restores from a checkpoint folder when it resumes, by the file that holds it
_RESTORED = (("weights", ("model.safetensors", "pytorch_model.bin")), ("optimizer", ("optimizer.pt",)),
             ("scheduler", ("scheduler.pt",)), ("grad scaler", ("scaler.pt",)),
             ("RNG", ("rng_state.pth", "rng_state_0.pth")), ("data position", ("trainer_state.json",)))


def restored_state(ckpt: Path | None) -> list[str]:
    """Which training state a resume from `ckpt` brings back (none: it starts over from step 0)."""
    if ckpt is None:
        return []
    return [what for what, files in _RESTORED if any((ckpt / f).is_file() for f in files)]


def run_training(run_id: str, store: RunStore, settings: Settings, should_stop: Callable[[], bool],
                 extra_callbacks: Sequence = (), resume: bool = False) -> str:
    """Train the run's config; returns the final status (completed / stopped). Raises on failure."""
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback, TrainingArguments, set_seed

    from core.training.callbacks import StoreCallback

    rec = store.get(run_id)
    config = TrainingConfig.from_dict(rec.config)
    p, prepared = prepare(config, settings)
    out = run_dir(settings, run_id)
    ckpt_dir = out / "checkpoints"
    ckpt = latest_checkpoint(ckpt_dir) if resume else None
    if resume:
        # one clean curve: forget what was logged after the checkpoint we continue from
        from_step = int(ckpt.name.split("-")[-1]) if ckpt else 0
        store.truncate_metrics(run_id, from_step)
        store.log(run_id, {"from_step": from_step, "restored": restored_state(ckpt)}, from_step, "resume")
    elif ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    out.mkdir(parents=True, exist_ok=True)

    set_seed(config.seed)
    task = _task_setup(config, settings, p.model_path, prepared, out)
    model, train_ds = task.model, task.train_dataset

    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun; the process group starts later
    steps = total_steps(config, len(train_ds), world)
    eval_steps = config.eval_steps or max(1, steps // 5)  # about five evaluation points on the curve
    save_steps = config.save_steps or eval_steps
    early = config.early_stopping_patience > 0
    args = (task.args_class or TrainingArguments)(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,
        gradient_accumulation_steps=config.grad_accumulation,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup,
        lr_scheduler_type="linear" if config.scheduler in TORCH_SCHEDULES else config.scheduler,
        optim=p.optim,
        bf16=p.precision == "bf16",
        fp16=p.precision == "fp16",
        use_cpu=p.device == "cpu",
        seed=config.seed,
        logging_steps=config.logging_steps,
        logging_nan_inf_filter=False,  # a NaN must show, not be averaged away
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=save_steps if not early else eval_steps,
        save_total_limit=2,
        load_best_model_at_end=early,
        metric_for_best_model="eval_loss" if early else None,
        train_sampling_strategy="group_by_length" if config.group_by_length and _has_lengths(train_ds) else "random",
        include_num_input_tokens_seen="non_padding" if _has_tokens(train_ds) else "no",
        report_to="none",  # TensorBoard, when asked for, is added below with this run's own folder
        disable_tqdm=True,
        dataloader_num_workers=0,
        **task.args,
    )
    callback = StoreCallback(store, run_id, should_stop, config.batch_size * config.grad_accumulation * world)
    callbacks = [callback, *extra_callbacks]
    if early:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    tools, logged_to = report_tools(config), {}
    if "tensorboard" in tools:
        callbacks.append(tensorboard_callback(out))
    if "trackio" in tools:
        from core.training.trackio_log import trackio_callback

        cb, logged_to["trackio"] = trackio_callback(settings, run_id, config.name or run_id)
        callbacks.append(cb)
    store.update(run_id, plan=asdict(p) | {"task": config.task, "total_steps": steps, "eval_steps": eval_steps,
                                           "processes": world} | task.baseline | task.info | logged_to,
                 total_steps=steps, device=p.device)
    trainer = _trainer_class(config.scheduler, task.trainer_class)(
        model=model, args=args, train_dataset=train_ds, eval_dataset=task.eval_dataset,
        processing_class=task.processing_class, data_collator=task.data_collator,
        compute_metrics=task.compute_metrics, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # the store is the log; keep the server's stdout quiet
    threads_before = torch.get_num_threads()
    if config.task == "scratch" and p.device == "cpu":
        # a small from-scratch net gains 0-35 % from a second intra-op thread on a quiet CPU and runs 10-43x
        # slower with it on a shared one (the two threads wait on each other's time slices): bench/RESULTS.md #16
        torch.set_num_threads(1)
    try:
        trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
        if callback.stopped:
            last = latest_checkpoint(ckpt_dir)
            store.update(run_id, checkpoint=str(last) if last else None)
            return "stopped"
        evals = [h for h in trainer.state.log_history if "eval_loss" in h]
        if early or not evals or evals[-1].get("step") != trainer.state.global_step:
            final = trainer.evaluate()  # the best model (early stopping) or the last step, once
        else:
            final = evals[-1]
        final = {k.removeprefix("eval_"): v for k, v in final.items() if k != "step"}
        final |= task.baseline
        final["global_step"] = trainer.state.global_step
        if trainer.args.should_save:
            trainer.save_model(str(out / "model"))  # model + tokenizer, a save_pretrained folder
        last = latest_checkpoint(ckpt_dir)
        store.update(run_id, final_metrics=final, model_dir=str(out / "model"),
                     checkpoint=str(last) if last else None)
        return "completed"
    finally:
        callback.close()
        torch.set_num_threads(threads_before)
        # release the model and optimizer state now, not when the thread object dies
        del trainer, model, task
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _task_setup(config: TrainingConfig, settings: Settings, model_path: str, prepared, out: Path):
    """The task's model, data, collator and metrics (core.training.tasks explains the split)."""
    if config.task == "scratch":
        from core import scratch

        return scratch.setup(config, settings, out, prepared)
    from core.training.tasks import task_module, text_classification

    if config.task != "text-classification":
        return task_module(config.task).setup(config, model_path, prepared, out)
    return text_classification(config, model_path, prepared, out)


def report_tools(config) -> set[str]:
    """The integrations a run also logs to: {"tensorboard", "trackio"} or fewer."""
    v = config.get("report_to", "none") if isinstance(config, dict) else config.report_to
    return set(v.split(",")) - {"none", ""} if isinstance(v, str) else set()


def tensorboard_dir(out: Path) -> Path:
    """Where a run's TensorBoard events go: `tensorboard --logdir <this>` opens them."""
    return out / "tensorboard"


def tensorboard_callback(out: Path):
    """The Trainer's TensorBoard logger writing to this run's folder. The folder is set on the callback, not
    through TENSORBOARD_LOGGING_DIR: that variable is process-wide and runs train side by side in threads."""
    from transformers.integrations import TensorBoardCallback

    cb = TensorBoardCallback()
    cb.logging_dir = str(tensorboard_dir(out))
    return cb


def _has_lengths(ds) -> bool:
    """Length grouping needs a `length` column (tokenized text); images and tables have none."""
    return "length" in (getattr(ds, "column_names", None) or ())


def _has_tokens(ds) -> bool:
    return "input_ids" in (getattr(ds, "column_names", None) or ())


def _trainer_class(scheduler: str, base=None):
    """The task's Trainer (`base`, default Trainer), or for torch's own schedules (step, exponential,
    one_cycle) a subclass whose `create_scheduler` builds that scheduler (Trainer's documented extension point)."""
    from transformers import Trainer

    base = base or Trainer
    if scheduler not in TORCH_SCHEDULES:
        return base
    from core.training import schedules

    class TorchScheduleTrainer(base):
        def create_scheduler(self, num_training_steps: int, optimizer=None):
            if self.lr_scheduler is None:
                self.lr_scheduler = schedules.make(scheduler, optimizer or self.optimizer, num_training_steps)
                self._created_lr_scheduler = True
            return self.lr_scheduler

    return TorchScheduleTrainer
