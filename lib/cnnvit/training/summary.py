"""metrics.json: the summary of a finished run (what ran, how long, on what, and its test
results), the file that marks a run complete. It is a :class:`~cnnvit.records.RunResult`, whose
structured fields (``weights``, ``diverged``, ``early_stopping``, ``distributed``,
``data_placement``, ``compute``, ``test``) are written as data, for :class:`~cnnvit.training.Run`
and the studies to read without parsing sentences."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..config import TrainConfig
from ..datasets import Dataset
from ..records import DatasetCounts, Divergence, EarlyStopping, RunResult, WeightsOrigin
from .device import device_description
from .epoch import Trainer
from .metrics import majority_baseline
from .state import RunState


@dataclass(frozen=True)
class ModelFacts:
    """The run's resulting model: where its weights started (what ``prepare_model`` said, kept
    as it is), its parameters (all, trainable), FLOPs per image (None where they could not be
    counted) and the file it was saved to."""

    weights: WeightsOrigin
    parameters: int
    trainable: int
    flops: Optional[float]
    file: Path


def build_summary(t: Trainer, state: RunState, ds: Dataset, metrics: dict[str, Any], model: ModelFacts,
                  stopped_early: bool) -> RunResult:
    """The run's metrics.json record, from the run (``t``: its name, config and device; where the
    training data lived, ``t.splits.placement``; how the steps computed, ``t.compute``), its state
    after the last epoch, its data set, its test ``metrics`` and its resulting ``model``."""
    tc, rows, device = t.cfg.train, state.epochs_log, t.device
    val_acc = [r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None]
    return RunResult(
        run=t.name, model=t.cfg.model.name, parameters=model.parameters,
        trainable_parameters=model.trainable, weights=model.weights, epochs=tc.epochs,
        gflops_per_image=None if model.flops is None else model.flops / 1e9,
        checkpoint_mb=model.file.stat().st_size / 2**20,
        peak_gpu_memory_gb=torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        model_ema=tc.model_ema,
        epochs_run=len(rows), diverged=None if state.diverged is None else Divergence.from_json(state.diverged),
        early_stopping=_early_stopping(tc, state.best, len(rows), stopped_early),
        steps=state.step, resumed_from_epoch=state.resumed_from, test_accuracy=metrics["accuracy"],
        test_top5=metrics.get("top5_accuracy"),
        task="multilabel" if ds.multilabel else "single-label",
        majority_baseline=majority_baseline(ds.train_labels, ds.test_labels),
        val_accuracy=val_acc[-1] if val_acc else None,
        best_val_accuracy=max(val_acc) if val_acc else None,
        train_time_s=state.train_time, wall_time_s=state.wall_time(),
        train_images_per_s=len(rows) and float(np.mean([r["images_per_s"] for r in rows])),
        device=device_description(device) + (f" x {t.dist.world_size}" if t.dist.active else ""),
        torch=torch.__version__,
        dataset=DatasetCounts(name=ds.name, source=ds.source, n_train=int(len(ds.train_labels)),
                              n_val=int(len(ds.val_labels)), n_test=int(len(ds.test_labels))),
        distributed=state.dist_info or None,
        data_placement=t.splits.placement.record(),
        compute=t.compute.record(),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        test=metrics,
    )


def _early_stopping(tc: TrainConfig, best: Optional[dict[str, Any]], epochs_run: int,
                    stopped_early: bool) -> Optional[EarlyStopping]:
    """The early-stopping record of a run that watched its validation split (``best``: its best
    epoch so far), else None."""
    if best is None:
        return None
    return EarlyStopping(patience=tc.early_stop_patience, best_epoch=best["epoch"],
                         stopped_after_epoch=epochs_run if stopped_early else None)
