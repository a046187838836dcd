"""Learning-rate schedules from torch.optim.lr_scheduler, beside the Hugging Face ones the Trainer builds.

"step" (StepLR: ×0.1 at each third of the run), "exponential" (ExponentialLR: down to 1 % of the peak at
the last step) and "one_cycle" (OneCycleLR: up from peak/25 over the first 30 %, then down to
peak/250,000) are torch's own classes in training (`make`). `multiplier` gives the same factor at any
step in closed form, so the preview before launch never steps through ten million steps; a test checks
the closed forms against the stepped torch schedulers. These three ignore `warmup` (one_cycle has its
own rise) and one_cycle leaves the optimizer's momentum alone (`cycle_momentum=False`, so AdamW's betas
are the run's own).
"""
from __future__ import annotations

import math
from collections.abc import Callable

TORCH_SCHEDULES = ("step", "exponential", "one_cycle")
_STEP_GAMMA, _EXP_FLOOR, _PCT, _DIV, _FINAL_DIV = 0.1, 0.01, 0.3, 25.0, 1e4


def _step_size(total: int) -> int:
    return max(1, total // 3)


def _exp_gamma(total: int) -> float:
    return _EXP_FLOOR ** (1 / max(1, total - 1))


def make(name: str, optimizer, total: int):
    """The torch scheduler for `name`, stepped once per optimizer step by the Trainer."""
    from torch.optim import lr_scheduler as S

    if name == "step":
        return S.StepLR(optimizer, step_size=_step_size(total), gamma=_STEP_GAMMA)
    if name == "exponential":
        return S.ExponentialLR(optimizer, gamma=_exp_gamma(total))
    if name == "one_cycle":
        peak = [g["lr"] for g in optimizer.param_groups]
        return S.OneCycleLR(optimizer, max_lr=peak, total_steps=max(2, total), pct_start=_PCT, div_factor=_DIV,
                            final_div_factor=_FINAL_DIV, cycle_momentum=False)
    raise ValueError(f"not a torch schedule: {name!r}")


def multiplier(name: str, total: int) -> Callable[[int], float]:
    """lr(step) / learning_rate for step 0 … total-1, as the scheduler from `make` sets it."""
    if name == "step":
        size = _step_size(total)
        return lambda s: _STEP_GAMMA ** (s // size)
    if name == "exponential":
        gamma = _exp_gamma(total)
        return lambda s: gamma ** s
    if name == "one_cycle":
        total = max(2, total)
        up_end, down_end = float(_PCT * total) - 1, float(total - 1)
        start, low = 1 / _DIV, 1 / _DIV / _FINAL_DIV

        def cos(a: float, b: float, pct: float) -> float:  # torch's _annealing_cos
            return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)

        def f(s: int) -> float:
            if s <= up_end:
                return cos(start, 1.0, s / up_end) if up_end > 0 else 1.0
            return cos(1.0, low, (s - up_end) / (down_end - up_end))
        return f
    raise ValueError(f"not a torch schedule: {name!r}")
