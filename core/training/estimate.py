"""Before launch: parameters, memory for weights + gradients + optimizer state + activations, time per epoch.

Text classification is probed here directly; the other pretrained tasks (token classification, extractive QA, causal
LM, seq2seq) through their own module's `setup` (core.training.tasks) on a sample of the checked data: the same model,
head, tokenization and collator the run will use, timed for a few real steps."""
from __future__ import annotations

import copy
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from core.settings import Settings
from core.training.config import ConfigError, TrainingConfig
from core.training.runner import prepare, steps_per_epoch


@dataclass
class Estimate:
    parameters: int
    weights_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    activations_bytes: int  # measured peak on CUDA, else the analytic estimate
    activations_measured: bool
    typical_length: int  # 90th percentile of tokenized training lengths (dynamic padding pads to about this)
    seconds_per_step: float
    steps_per_epoch: int
    device: str
    reused: bool = False  # the timing probe of an earlier estimate with the same per-step settings
    examples_per_row: float = 1.0  # training examples per dataset row (QA: windows per row; packing: 1, blocks)
    notes: tuple[str, ...] = ()  # what the figures mean for this task (windows per row, logits in the activations…)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.grads_bytes + self.optimizer_bytes + self.activations_bytes

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds_per_step * self.steps_per_epoch


# fields that change what one training step costs; the rest (epochs, max steps, rows used, names,
# evaluation settings) only change how many steps there are, so their estimate reuses the probe
_STEP_FIELDS = ("task", "model", "dataset", "dataset_version", "text_column", "text_pair_column", "label_column",
                "columns", "max_length", "max_target_length", "packing", "batch_size", "precision", "optimizer")
PROBE_ROWS = 512  # training rows (QA: rows, then their windows) a task's probe tokenizes: the typical length's sample
_PROBES: dict[tuple, Estimate] = {}
_PROBES_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _pristine(model_path: str, num_labels: int):
    """The model as loaded from disk, kept once: each probe trains a deep copy of it."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=num_labels,
                                                              ignore_mismatched_sizes=True)


def estimate(config: TrainingConfig, settings: Settings, probe_steps: int = 2,
             progress: Callable[[float, str], None] | None = None) -> Estimate:
    """Time `probe_steps` real training steps (after one warm-up) on real batches of a fresh model copy.

    `progress(fraction, what)` is told each phase. A second estimate that differs only in the number of
    steps (epochs, max steps, rows used) reuses the first one's probe and returns at once.
    """
    say = progress or (lambda fraction, what: None)
    from core.training.tasks import MODULES

    if config.task != "text-classification" and config.task not in MODULES:
        raise ConfigError("task", f"the estimate probes the pretrained tasks; a {config.task} network shows its size "
                          "and speed on the Build a network page and the Runs tab")
    if isinstance(probe_steps, bool) or not isinstance(probe_steps, int) or not 1 <= probe_steps <= 50:
        raise ConfigError("probe_steps", f"must be a whole number from 1 to 50, got {probe_steps!r}")
    say(0.02, "checking the data, the columns and the model…")
    p, splits = prepare(config, settings)
    labels = splits.label_names if config.task == "text-classification" else splits.labels
    key = (p.model_path, p.device, len(labels), *(_hashable(getattr(config, f)) for f in _STEP_FIELDS))
    with _PROBES_LOCK:
        probe = _PROBES.get(key)
    if probe is None:
        probe = (_probe(config, p, splits, probe_steps, say) if config.task == "text-classification" else
                 _probe_task(config, p, splits, probe_steps, say))
        with _PROBES_LOCK:
            if len(_PROBES) >= 16:
                _PROBES.pop(next(iter(_PROBES)))
            _PROBES[key] = probe
        reused = False
    else:
        reused = True
    say(1.0, "done")
    # a task's examples per epoch: its rows times the examples each made in the probe (QA: windows per row)
    examples = len(splits.train) if config.task == "text-classification" else round(
        splits.train_rows * probe.examples_per_row)
    return replace(probe, seconds_per_step=probe.seconds_per_step * config.grad_accumulation,
                   steps_per_epoch=steps_per_epoch(config, examples), reused=reused)


def _hashable(v):
    import json

    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v


def _probe(config: TrainingConfig, p, splits, probe_steps: int, say: Callable[[float, str], None]) -> Estimate:
    import torch
    from transformers import AutoTokenizer, DataCollatorWithPadding

    say(0.15, "loading the tokenizer and the model…")
    tok = AutoTokenizer.from_pretrained(p.model_path)
    model = copy.deepcopy(_pristine(p.model_path, len(splits.label_names))).to(p.device)
    n_params = sum(q.numel() for q in model.parameters())
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    bytes_per = 4  # master weights stay fp32 under autocast
    opt_states = {"sgd": 0, "adafactor": 1}.get(config.optimizer, 2)  # AdamW keeps exp_avg and exp_avg_sq

    say(0.3, "tokenizing a sample of the training split…")
    sample = splits.train.select(range(min(len(splits.train), 512)))
    texts = [str(t) for t in sample[config.text_column]]
    lengths = sorted(len(x) for x in tok(texts, truncation=True, max_length=config.max_length)["input_ids"])
    typical = lengths[int(0.9 * (len(lengths) - 1))]

    collate = DataCollatorWithPadding(tok)
    b = config.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p.precision)
    times = []
    if p.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    base_mem = torch.cuda.memory_allocated() if p.device.startswith("cuda") else 0
    model.train()
    for i in range(probe_steps + 1):
        say(0.4 + 0.6 * i / (probe_steps + 1), "warm-up step (lazy initialisation)…" if i == 0 else
            f"timing training step {i} of {probe_steps} (batch {b})…")
        idx = [(i * b + j) % len(texts) for j in range(b)]
        enc = tok([texts[j] for j in idx], truncation=True, max_length=config.max_length)
        batch = collate([{k: v[j] for k, v in enc.items()} for j in range(b)])
        batch = {k: v.to(p.device) for k, v in batch.items()}
        batch["labels"] = torch.zeros(b, dtype=torch.long, device=p.device)
        seconds = _timed_step(model, batch, opt, p.device, amp)
        if i > 0:  # the first step pays for lazy initialisation
            times.append(seconds)
    if p.device.startswith("cuda"):
        activations = max(0, torch.cuda.max_memory_allocated() - base_mem)
        measured = True
    else:
        activations = _activation_bytes(model.config, b, typical, 2 if amp else 4)
        measured = False
    del model, opt
    return Estimate(
        parameters=n_params, weights_bytes=n_params * bytes_per, grads_bytes=trainable * bytes_per,
        optimizer_bytes=trainable * bytes_per * opt_states, activations_bytes=int(activations),
        activations_measured=measured, typical_length=typical, seconds_per_step=statistics.median(times),
        steps_per_epoch=0, device=p.device)


def _activation_bytes(cfg, batch: int, seq: int, bytes_per: int) -> int:
    """Per transformer layer about s·b·h·(34 + 5·a·s/h) bytes at 2 bytes/value (Korthikanti et al., 2022).
    An encoder-decoder's decoder layers are counted too, at the same length (an upper bound for short targets)."""
    h = getattr(cfg, "hidden_size", 768)
    a = getattr(cfg, "num_attention_heads", 12)
    layers = getattr(cfg, "num_hidden_layers", 12)
    if getattr(cfg, "is_encoder_decoder", False):
        layers += getattr(cfg, "decoder_layers", 0) or 0
    per_layer = seq * batch * h * (34 + 5 * a * seq / h)
    return int(per_layer * layers * bytes_per / 2)


def _probe_task(config: TrainingConfig, p, prepared, probe_steps: int, say: Callable[[float, str], None]) -> Estimate:
    """A pretrained task's probe: its module's `setup` on a sample of the checked rows (the model with the run's
    head, the run's tokenization and collator), then `probe_steps` timed training steps after a warm-up."""
    import dataclasses
    import inspect
    import tempfile
    from pathlib import Path

    import torch
    from transformers import default_data_collator

    from core.training.tasks import task_module

    b = config.batch_size
    rows = min(prepared.train_rows, max(PROBE_ROWS, b * (probe_steps + 1)))
    sample = dataclasses.replace(prepared, train=prepared.train.select(range(rows)),
                                 eval=prepared.eval.select(range(min(prepared.eval_rows, 2))))
    say(0.15, f"building the {config.task} model and tokenizing {rows} training rows as the run will…")
    with tempfile.TemporaryDirectory(prefix="estimate-") as tmp:
        setup = task_module(config.task).setup(config, p.model_path, sample, Path(tmp))
        model, train = setup.model.to(p.device), setup.train_dataset
        if len(train) == 0:
            raise ConfigError("max_length", f"the first {rows} training rows make no training example")
        accepted = set(inspect.signature(model.forward).parameters)
        cols = [c for c in train.column_names if c in accepted]  # what the Trainer keeps (remove_unused_columns)
        collate = setup.data_collator or default_data_collator
        lengths = sorted(len(x) for x in train["input_ids"])
        typical = lengths[int(0.9 * (len(lengths) - 1))]
        target = 0
        if "labels" in cols and config.task == "seq2seq":
            targets = sorted(len(x) for x in train["labels"])
            target = targets[int(0.9 * (len(targets) - 1))]
        n_params = sum(q.numel() for q in model.parameters())
        trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
        opt_states = {"sgd": 0, "adafactor": 1}.get(config.optimizer, 2)
        opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=config.learning_rate)
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p.precision)
        cuda = p.device.startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        base_mem = torch.cuda.memory_allocated() if cuda else 0
        times = []
        model.train()
        for i in range(probe_steps + 1):
            say(0.4 + 0.6 * i / (probe_steps + 1), "warm-up step (lazy initialisation)…" if i == 0 else
                f"timing training step {i} of {probe_steps} (batch {b})…")
            feats = [{c: train[(i * b + j) % len(train)][c] for c in cols} for j in range(b)]
            batch = {k: v.to(p.device) for k, v in collate(feats).items() if hasattr(v, "to")}
            seconds = _timed_step(model, batch, opt, p.device, amp)
            if i > 0:
                times.append(seconds)
        notes = []
        if cuda:
            activations, measured = max(0, torch.cuda.max_memory_allocated() - base_mem), True
        else:
            measured = False
            activations = _activation_bytes(model.config, b, typical, 2 if amp else 4)
            vocab = getattr(model.config, "vocab_size", 0) or 0
            if config.task in ("causal-lm", "seq2seq") and vocab:
                # the LM head's logits and their gradient, fp32: rows × tokens × vocabulary, often the largest part
                activations += 2 * 4 * b * (target or typical) * vocab
                notes.append(f"activations include the logits and their gradient ({b} × {target or typical} tokens × "
                             f"{vocab:,} vocabulary, fp32)")
        per_row = len(train) / rows
        if config.task == "question-answering":
            notes.append(f"{per_row:.2f} windows per question in the sampled rows: an epoch is about "
                         f"{round(prepared.train_rows * per_row):,} windows")
        if config.task == "causal-lm" and getattr(prepared, "packing", False):
            notes.append(f"packed: {prepared.train_rows:,} training blocks of {config.max_length} tokens")
        del model, opt, setup
    return Estimate(
        parameters=n_params, weights_bytes=n_params * 4, grads_bytes=trainable * 4,
        optimizer_bytes=trainable * 4 * opt_states, activations_bytes=int(activations), activations_measured=measured,
        typical_length=typical, seconds_per_step=statistics.median(times), steps_per_epoch=0, device=p.device,
        examples_per_row=per_row, notes=tuple(notes))


def _timed_step(model, batch: dict, opt, device: str, amp) -> float:
    """Seconds of one training step (forward under autocast, backward, optimizer step), synchronised on CUDA."""
    import torch

    t = time.perf_counter()
    with torch.autocast(device.split(":")[0], dtype=amp, enabled=amp is not None):
        loss = model(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t
