"""Learning-rate schedules as pure functions of the optimizer step."""
from __future__ import annotations

from .errors import ConfigError

import math


def lr_at(step: int, total_steps: int, base_lr: float, name: str, *, warmup_steps: int = 0,
          min_lr_ratio: float = 0.0, step_every: int = 1, gamma: float = 0.1,
          pct_start: float = 0.25) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``.

    constant: warmup then flat. cosine: warmup then half-cosine down to ``min_lr_ratio * base_lr``.
    onecycle: linear rise from base/25 to base over ``pct_start`` of the steps, then cosine to
    base/1e4 (PyTorch's OneCycleLR shape). step: multiply by ``gamma`` every ``step_every`` steps.
    """
    if name == "onecycle":
        rise = max(1, int(pct_start * total_steps))
        start, end = base_lr / 25.0, base_lr / 1e4
        if step < rise:
            return start + (base_lr - start) * step / rise
        t = min(1.0, (step - rise) / max(1, total_steps - rise))
        return end + (base_lr - end) * 0.5 * (1 + math.cos(math.pi * t))
    if name == "step":
        return base_lr * gamma ** (step // max(1, step_every))
    if warmup_steps and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if name == "constant":
        return base_lr
    if name == "cosine":
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        floor = min_lr_ratio * base_lr
        return floor + (base_lr - floor) * 0.5 * (1 + math.cos(math.pi * t))
    raise ConfigError(f"sched.name: unknown schedule {name!r}")
