"""The state a run carries from epoch to epoch, and the checkpoint that holds it between sessions.

``RunState.save`` and ``RunState.load`` are the one place that says what ``checkpoint.pt`` holds:
the model's, optimizer's and weight average's tensors, the config, and every field below that a
resumed run needs to replay the remaining epochs exactly as an uninterrupted run would.
"""
from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from ..config import Config
from ..errors import CheckpointError
from .files import save_atomic


@dataclass
class RunState:
    """Where a run stands: epochs and steps done, the curves so far, time spent, and what the
    run has decided (diverged; the best validation epoch for early stopping)."""

    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    steps_log: list[dict[str, Any]] = field(default_factory=list)  # a row per step: steps.csv
    epochs_log: list[dict[str, Any]] = field(default_factory=list)  # a row per epoch: epochs.csv
    val_log: list[dict[str, Any]] = field(default_factory=list)  # train.val_every_steps: val_steps.csv
    train_time: float = 0.0  # seconds spent training (evaluations left out), over all sessions
    wall_before: float = 0.0  # wall-clock seconds of the earlier sessions of this run
    dist_info: dict[str, Any] = field(default_factory=dict)  # world size, backend, shard check
    diverged: Optional[dict[str, Any]] = None  # where the loss became non-finite (stop_on_nan=false)
    best: Optional[dict[str, Any]] = None  # early stopping: the best validation epoch so far
    # not in the checkpoint: this session's start and the epoch it resumed from
    started: float = field(default_factory=time.time)
    resumed_from: int = 0

    def wall_time(self) -> float:
        """Wall-clock seconds of the run so far, earlier sessions included."""
        return self.wall_before + time.time() - self.started

    def save(self, path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
             ema: Optional[Any], cfg: Config) -> None:
        """Write the checkpoint (atomically: a kill mid-write leaves the previous one)."""
        save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": self.epoch,
                     "step": self.step, "steps_log": self.steps_log, "epochs_log": self.epochs_log,
                     "val_log": self.val_log, "train_time": self.train_time, "wall_time": self.wall_time(),
                     "config": cfg.to_dict(), "distributed": self.dist_info, "diverged": self.diverged,
                     "best": self.best, "ema": None if ema is None else ema.module.state_dict()}, path)

    def load(self, path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
             ema: Optional[Any]) -> None:
        """Restore the checkpoint at ``path`` into this state, ``model``, ``opt`` and ``ema``
        (keys missing from checkpoints of earlier versions take their defaults)."""
        # read to the CPU: load_state_dict copies into the model's (and the optimizer's) device
        # tensors, and nothing of the file stays on the GPU (state.best's weights stay on the CPU)
        ckpt = read_checkpoint(path)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if ema is not None:  # (a checkpoint without one: the average starts from the weights)
            ema.module.load_state_dict(ckpt["ema"] if ckpt.get("ema") is not None else model.state_dict())
        self.epoch, self.step = ckpt["epoch"], ckpt["step"]
        self.steps_log, self.epochs_log = ckpt["steps_log"], ckpt["epochs_log"]
        self.train_time = ckpt["train_time"]
        self.val_log = ckpt.get("val_log", [])
        self.wall_before = ckpt.get("wall_time", 0.0)
        self.dist_info = ckpt.get("distributed", {})
        self.best = ckpt.get("best")
        self.diverged = ckpt.get("diverged")
        self.resumed_from = self.epoch


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, read with ``weights_only=True`` (it holds only tensors, dicts,
    lists, strings and numbers; anything else in a shared run folder could run code when
    unpickled), or :class:`CheckpointError` naming the file and the way forward when it is damaged
    or holds something else."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path} holds objects other than tensors and plain data, which are not "
                              f"loaded ({str(exc).splitlines()[0][:200]}); delete it to train the run "
                              "from its first epoch") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}): "
                              "it is damaged (a kill or a full disk while it was written by an "
                              "earlier version?); delete it to train the run from its first epoch") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a checkpoint of this project; delete it to train the run "
                              "from its first epoch")
    return ckpt
