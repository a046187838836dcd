"""The TrainerCallback that streams a run into the RunStore and carries the Stop button."""
from __future__ import annotations

import math
import time
from collections.abc import Callable

from transformers import TrainerCallback

from core.training.store import RunStore


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite."""


def gpu_memory() -> dict[str, float]:
    """Allocated / reserved CUDA memory in MiB, empty on CPU."""
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"gpu_mem_allocated_mb": torch.cuda.memory_allocated() / 2**20,
            "gpu_mem_reserved_mb": torch.cuda.memory_reserved() / 2**20}


class StoreCallback(TrainerCallback):
    """Writes every logged step (loss, lr, grad norm, throughput, memory, epoch) and every evaluation.

    `should_stop()` is polled after each optimizer step: when it turns true the Trainer logs,
    saves a checkpoint and leaves its loop (TrainerControl is how a UI talks to the loop).
    """

    def __init__(self, store: RunStore, run_id: str, should_stop: Callable[[], bool], samples_per_step: int):
        self.store = store
        self.run_id = run_id
        self.should_stop = should_stop
        self.samples_per_step = samples_per_step  # batch x accumulation x processes
        self.stopped = False
        # throughput counts time inside training steps only (not evaluation or checkpoint saving)
        self._busy = 0.0
        self._step_t0 = None
        self._mark = (0, 0)  # global step, tokens seen at the last train log
        self._eval_noted = False  # the 'finishing the evaluation' message was written
        self._rows = store.writer()  # the per-step rows over one connection; close() when the run is done

    def close(self) -> None:
        self._rows.close()

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.store.update(self.run_id, total_steps=state.max_steps)
        self._mark = (state.global_step, state.num_input_tokens_seen or 0)

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_t0 is not None:
            self._busy += time.perf_counter() - self._step_t0
            self._step_t0 = None
        if not self.stopped and self.should_stop():
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True  # graceful stop: a checkpoint to resume from
            control.should_log = True
            if state.is_world_process_zero:  # what the live page shows while the run is stopping
                self.store.update(self.run_id, message=f"step {state.global_step} finished · saving "
                                                       f"checkpoint-{state.global_step}…")

    def on_prediction_step(self, args, state, control, **kwargs):
        # Stop pressed during an evaluation: the Trainer only checks between steps, so say what it waits for.
        # One process only: under torchrun should_stop() is a collective (all ranks must call it together).
        if (args.world_size == 1 and not self.stopped and not self._eval_noted and state.is_world_process_zero
                and self.should_stop()):
            self._eval_noted = True
            self.store.update(self.run_id, message=f"finishing the evaluation at step {state.global_step}, "
                                                   "then saving a checkpoint…")

    def on_evaluate(self, args, state, control, **kwargs):
        self._eval_noted = False

    def on_save(self, args, state, control, **kwargs):
        if self.stopped and state.is_world_process_zero:
            self.store.update(self.run_id, message=f"checkpoint-{state.global_step} saved · releasing memory…")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        logs = dict(logs)
        if "loss" in logs:
            loss = logs["loss"]
            if not math.isfinite(loss):
                raise NonFiniteLoss(f"training loss became {loss} at step {state.global_step} "
                                    f"(learning rate {logs.get('learning_rate', float('nan')):.3g}): "
                                    "try a lower learning rate, fp32, or gradient clipping")
            step0, tok0 = self._mark
            steps = state.global_step - step0
            if steps > 0 and self._busy > 0:
                logs["samples_per_s"] = steps * self.samples_per_step / self._busy
                tokens = (state.num_input_tokens_seen or 0) - tok0
                if tokens > 0:
                    logs["tokens_per_s"] = tokens / self._busy
            self._mark = (state.global_step, state.num_input_tokens_seen or 0)
            self._busy = 0.0
            for k in ("train_runtime", "train_tokens_per_second"):  # cumulative figures, not per step
                logs.pop(k, None)
            logs.update(gpu_memory())
            self._rows.log(self.run_id, logs, state.global_step, "train")
        elif any(k.startswith("eval_") for k in logs):
            self._rows.log(self.run_id, logs, state.global_step, "eval")
        else:
            self._rows.log(self.run_id, logs, state.global_step, "summary")
