"""Training vs inference memory, measured: the meter against allocations of known size, then a real network's
training step against what it must hold (weights, gradients, the optimizer's state)."""
import pytest
import torch

from core.scratch.memory import measure, profiled_peak
from core.settings import Settings
from core.training.runner import plan
from tests.core.scratch.scratch_fixtures import config


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return Settings(workspace=tmp_path_factory.mktemp("memory-ws"), device="cpu")


def test_the_profiler_meter_sees_each_allocation_and_free():
    def work():
        a = torch.empty(1000)  # 4,000 bytes
        b = torch.empty(2000, dtype=torch.float64)  # 16,000
        del a
        c = torch.empty(500)  # 2,000: the peak was 20,000 with a and b
        return b, c

    kept = []
    high, final = profiled_peak(lambda: kept.append(work()))
    assert high == 20_000 and final == 18_000  # b and c are still held (by `kept`)


@pytest.mark.parametrize("optimizer, state_per_weight", [("adamw", 2), ("sgd", 0)])
def test_a_training_step_holds_gradients_and_optimizer_state_that_inference_never_does(settings, optimizer,
                                                                                          state_per_weight):
    cfg = config("mlp", "sklearn:iris", batch_size=16, grad_accumulation=3, optimizer=optimizer)
    m = measure(cfg, settings, plan(cfg, settings))
    params = m.parameter_bytes
    assert m.parameters == 4 * 128 + 128 + 128 * 64 + 64 + 64 * 3 + 3  # the default MLP on iris's 4 numbers
    assert m.train_peak_bytes > m.inference_peak_bytes > params
    assert m.inference_peak_bytes > m.weights_bytes + m.batch_bytes  # activations exist, briefly
    # what stays after the step: one gradient per weight, and Adam's two moments (SGD without momentum: none)
    kept = m.after_step_bytes - m.weights_bytes - m.batch_bytes
    assert kept == pytest.approx((1 + state_per_weight) * params, rel=0.01)
    assert m.effective_batch == 48 and m.batch_size == 16
    # one batch of 48 at once needs more than three accumulated batches of 16 (activations scale with the batch)
    assert m.full_batch_peak_bytes > m.train_peak_bytes
    assert m.device == "cpu" and "profiler" in m.method


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_allocator_counter_and_the_profiler_agree(settings):
    from core.scratch.memory import cuda_peak

    cfg = config("cnn", "sklearn:digits", batch_size=64)
    m = measure(cfg, settings, plan(cfg, settings), device="cuda")
    assert m.train_peak_bytes > m.inference_peak_bytes > m.parameter_bytes and "cuda" in m.method
    x = torch.empty(0, device="cuda")

    def work():
        nonlocal x
        x = torch.empty(1 << 20, device="cuda")  # 4 MiB

    assert cuda_peak(work, "cuda")[0] == profiled_peak(work, "CUDA")[0] == 4 << 20
