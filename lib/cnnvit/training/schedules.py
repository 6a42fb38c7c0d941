"""Learning-rate schedules as pure functions of the optimizer step."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


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


@dataclass(frozen=True)
class Schedule:
    """The learning rate of every optimizer step of one run (steps, not micro-batches, count)."""

    name: str
    base_lr: float
    steps_per_epoch: int
    total_steps: int
    options: dict[str, Any]  # lr_at's keyword arguments

    @classmethod
    def for_run(cls, sched: Any, base_lr: float, steps_per_epoch: int, epochs: int) -> "Schedule":
        """The schedule of a run's ``sched`` config section, in optimizer steps."""
        return cls(sched.name, base_lr, steps_per_epoch, steps_per_epoch * epochs, dict(
            warmup_steps=int(sched.warmup_epochs * steps_per_epoch), min_lr_ratio=sched.min_lr_ratio,
            step_every=sched.step_epochs * steps_per_epoch, gamma=sched.gamma, pct_start=sched.pct_start))

    def lr(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based)."""
        return lr_at(step, self.total_steps, self.base_lr, self.name, **self.options)
