"""Experiment tracking beside the run's own CSV files: TensorBoard event files in
``<run>/tensorboard`` and, when asked and installed, Weights & Biases in offline mode (synced
later with ``wandb sync <run>/wandb/offline-run-*``). The CSV files stay the record the report
reads; trackers are for watching a run and comparing runs interactively.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any, Optional

from ..errors import ConfigError

log = logging.getLogger(__name__)


def check_tracking(tensorboard: bool, wandb: bool) -> None:
    """Raise :class:`ConfigError` before any work when a requested tracker is not installed."""
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("train.tensorboard: the tensorboard package is not installed (pip install "
                          "tensorboard, or set train.tensorboard=false)")
    if wandb and importlib.util.find_spec("wandb") is None:
        raise ConfigError("train.wandb: the wandb package is not installed (pip install -e '.[wandb]', or "
                          "set train.wandb=false)")


class Tracker:
    """Scalars to every enabled tracker; does nothing when none is. Tracking is an aid: a failing
    tracker logs a warning and is dropped, it never costs a run."""

    def __init__(self, run_dir: Path, name: str, *, tensorboard: bool, wandb: bool,
                 config: Optional[dict[str, Any]] = None):
        self._tb = None
        self._wandb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        if wandb:
            import wandb as wb

            # offline: no account or network needed; the run folder keeps everything
            self._wandb = wb.init(project="cnnvit", name=name, dir=str(run_dir), mode="offline",
                                  config=config, resume="allow", id=_wandb_id(run_dir))

    def log(self, step: int, values: dict[str, Optional[float]]) -> None:
        """Record ``values`` (``None`` entries skipped) at optimizer step ``step``."""
        values = {k: float(v) for k, v in values.items() if v is not None}
        if not values:
            return
        if self._tb is not None:
            try:
                for key, v in values.items():
                    self._tb.add_scalar(key, v, step)
            except Exception as exc:  # noqa: BLE001 - see the class docstring
                log.warning("TensorBoard logging failed and is turned off for this run: %s", exc)
                self._tb = None
        if self._wandb is not None:
            try:
                self._wandb.log(values, step=step)
            except Exception as exc:  # noqa: BLE001
                log.warning("W&B logging failed and is turned off for this run: %s", exc)
                self._wandb = None

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _wandb_id(run_dir: Path) -> str:
    # stable per run folder, so that a resumed run continues the same W&B run
    import hashlib

    return hashlib.sha1(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
