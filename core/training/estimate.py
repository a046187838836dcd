"""Before launch: parameters, memory for weights + gradients + optimizer state + activations, time per epoch."""
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

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.grads_bytes + self.optimizer_bytes + self.activations_bytes

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds_per_step * self.steps_per_epoch


# fields that change what one training step costs; the rest (epochs, max steps, rows used, names,
# evaluation settings) only change how many steps there are, so their estimate reuses the probe
_STEP_FIELDS = ("model", "dataset", "dataset_version", "text_column", "text_pair_column", "label_column",
                "max_length", "batch_size", "precision", "optimizer")
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
    if config.task != "text-classification":
        raise ConfigError("task", f"the estimate probes text-classification runs only so far; a {config.task} "
                          "run shows its speed on the Runs tab from its first steps")
    say(0.02, "checking the data, the columns and the model…")
    p, splits = prepare(config, settings)
    key = (p.model_path, p.device, len(splits.label_names), *(getattr(config, f) for f in _STEP_FIELDS))
    with _PROBES_LOCK:
        probe = _PROBES.get(key)
    if probe is None:
        probe = _probe(config, p, splits, probe_steps, say)
        with _PROBES_LOCK:
            if len(_PROBES) >= 16:
                _PROBES.pop(next(iter(_PROBES)))
            _PROBES[key] = probe
        reused = False
    else:
        reused = True
    say(1.0, "done")
    return replace(probe, seconds_per_step=probe.seconds_per_step * config.grad_accumulation,
                   steps_per_epoch=steps_per_epoch(config, len(splits.train)), reused=reused)


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
        t = time.perf_counter()
        with torch.autocast(p.device.split(":")[0], dtype=amp, enabled=amp is not None):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if p.device.startswith("cuda"):
            torch.cuda.synchronize()
        if i > 0:  # the first step pays for lazy initialisation
            times.append(time.perf_counter() - t)
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
    """Per transformer layer about s·b·h·(34 + 5·a·s/h) bytes at 2 bytes/value (Korthikanti et al., 2022)."""
    h = getattr(cfg, "hidden_size", 768)
    a = getattr(cfg, "num_attention_heads", 12)
    layers = getattr(cfg, "num_hidden_layers", 12)
    per_layer = seq * batch * h * (34 + 5 * a * seq / h)
    return int(per_layer * layers * bytes_per / 2)
