"""Training vs inference memory of a from-scratch network, measured on one real batch of its own data.

A training step (forward, backward, optimizer step) holds what inference never does: the activations kept for
backward, a gradient per parameter and the optimizer's state (two moments per parameter for Adam). Both are
measured, not estimated: on CUDA with torch.cuda.max_memory_allocated, on CPU from the torch profiler's
allocation records (profile_memory=True: every allocation and free by torch's CPU allocator, in order; their
running sum's highest point is the peak). tracemalloc would see none of it: torch allocates outside Python.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

from core.settings import Settings
from core.training.config import Plan, TrainingConfig

_PROFILER = threading.Lock()  # one profiler session at a time in this process


@dataclass
class StepMemory:
    """Bytes in use at the highest point of each phase, counting the weights and the batch (resident throughout)."""

    device: str
    method: str  # how the peaks were measured
    optimizer: str
    batch_size: int  # rows in the measured batch (the run's batch size, or all training rows if fewer)
    grad_accumulation: int
    parameters: int
    weights_bytes: int  # parameters + buffers
    batch_bytes: int  # the batch's tensors
    inference_peak_bytes: int  # a forward under torch.no_grad, in eval mode
    train_peak_bytes: int  # the first training step: forward + backward + optimizer step
    after_step_bytes: int  # what stays after it: weights, gradients, optimizer state (and the batch)
    full_batch_peak_bytes: int | None = None  # one step on batch × accumulation at once (accumulation > 1 only)

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accumulation

    @property
    def parameter_bytes(self) -> int:
        return self.parameters * 4


def measure(config: TrainingConfig, settings: Settings, plan: Plan, prepared=None, device: str | None = None
            ) -> StepMemory:
    """Measure one training step and one inference forward of the config's network on a real batch (the run's
    batch size, its collate function, its optimizer). `plan`: what core.training.runner.plan resolves for the
    config (device, precision, optimizer; passed in: the runner imports core.scratch, so core.scratch does not
    import it); `prepared`: core.scratch.prepare's result, if at hand; `device`: where to measure (default: the
    plan's). ConfigError / RuntimeError when it can't."""
    import tempfile

    import torch
    from transformers import default_data_collator

    from core.scratch.task import prepare, setup

    device = device or plan.device
    prepared = prepared if prepared is not None else prepare(config, settings)
    with tempfile.TemporaryDirectory() as tmp:
        task = setup(config, settings, tmp, prepared)
        opt_cls, opt_kwargs = _optimizer(config, plan.optim, tmp, device)
    collate = task.data_collator or default_data_collator
    rows = len(task.train_dataset)

    def batch_of(n: int) -> dict:
        b = collate([task.train_dataset[i] for i in range(min(n, rows))])
        return {k: v.to(device) for k, v in b.items() if isinstance(v, torch.Tensor)}

    pristine = task.model.to(device)
    batch = batch_of(config.batch_size)
    # inference reads no labels, except the encoder–decoder: its decoder is fed the shifted targets
    infer_inputs = batch if prepared.arch["kind"] == "seq2seq" else {k: v for k, v in batch.items() if k != "labels"}
    autocast = _autocast(plan.precision, device)
    weights = sum(t.numel() * t.element_size() for t in (*pristine.parameters(), *pristine.buffers()))
    batch_bytes = _bytes(batch)
    method, peak = _meter(device)

    def forward_only(model):
        model.eval()

        def forward():
            with torch.no_grad(), autocast():
                model(**infer_inputs)
        return forward

    def train_step(model, inputs):
        model.train()
        optimizer = opt_cls(model.parameters(), **opt_kwargs)

        def step():
            with autocast():
                loss = model(**inputs).loss
            loss.backward()
            optimizer.step()
        return step

    # each phase on a fresh copy, made before its measurement starts: the copy's weights are part of the base
    inference, _ = peak(forward_only(copy.deepcopy(pristine)))
    train, after = peak(train_step(copy.deepcopy(pristine), batch))
    full = None
    if config.grad_accumulation > 1 and rows > config.batch_size:
        big = batch_of(config.batch_size * config.grad_accumulation)
        full = weights + _bytes(big) + peak(train_step(copy.deepcopy(pristine), big))[0]
    base = weights + batch_bytes
    return StepMemory(device, method, plan.optim, min(config.batch_size, rows), config.grad_accumulation,
                      sum(t.numel() for t in pristine.parameters()), weights, batch_bytes, base + inference,
                      base + train, base + after, full)


def _bytes(tensors: dict) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _optimizer(config: TrainingConfig, optim: str, tmp: str, device: str):
    """The optimizer class and arguments the Trainer would build for this run (fused AdamW where it can)."""
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=tmp, optim=optim, learning_rate=config.learning_rate,
                             weight_decay=config.weight_decay, use_cpu=device == "cpu", report_to="none")
    return Trainer.get_optimizer_cls_and_kwargs(args)


def _autocast(precision: str, device: str):
    import contextlib

    import torch

    if device.startswith("cuda") and precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return lambda: torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext


def _meter(device: str):
    """("how", peak(fn) -> (highest, final) bytes allocated beyond what was in use before fn ran)."""
    if device.startswith("cuda"):
        return "torch.cuda.max_memory_allocated", lambda fn: cuda_peak(fn, device)
    return "torch.profiler allocation records (profile_memory=True)", profiled_peak


def cuda_peak(fn, device: str) -> tuple[int, int]:
    """Peak and final bytes allocated on a CUDA device while `fn` runs, above what was allocated before (the
    counter is the device's: another run training on it at the same time would show in it)."""
    import torch

    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before, torch.cuda.memory_allocated(device) - before


def profiled_peak(fn, device_type: str = "CPU") -> tuple[int, int]:
    """Peak and final bytes allocated while `fn` runs, from the profiler's allocation records in time order.
    The records are this thread's (a training job in another thread does not show in them), read from the
    profiler's raw results: its event tables fold most allocations into the operator that made them."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device_type == "CUDA" else [])
    with _PROFILER, profile(activities=activities, profile_memory=True) as prof:
        fn()
    records = sorted((e for e in prof.profiler.kineto_results.events()
                      if e.name() == "[memory]" and str(e.device_type()).endswith(device_type)),
                     key=lambda e: e.start_ns())
    now = high = 0
    for e in records:
        now += e.nbytes()  # negative for a free
        high = max(high, now)
    return high, now
