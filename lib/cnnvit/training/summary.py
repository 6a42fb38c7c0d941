"""metrics.json: the summary of a finished run (what ran, how long, on what, and its test
results), the file that marks a run complete. Structured fields (``weights``, ``diverged``,
``early_stopping``, ``distributed``, ``data_placement``, ``compute``, ``test``) are written as data, for
:class:`~cnnvit.training.Run` and the studies to read without parsing sentences."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..config import Config
from ..datasets import Dataset
from .device import Compute, device_description
from .distributed import Dist
from .feed import Placement
from .metrics import majority_baseline
from .state import RunState


def build_summary(*, name: str, cfg: Config, ds: Dataset, state: RunState, metrics: dict[str, Any],
                  weights: Any, n_params: int, n_trainable: int, flops: Optional[float], model_file: Path,
                  stopped_early: bool, device: torch.device, dist: Dist,
                  placement: Placement, compute: Compute) -> dict[str, Any]:
    """The metrics.json dict. ``weights`` is what ``prepare_model`` said about where the
    weights came from, kept as it is; ``placement`` where the training data lived (data.on_device);
    ``compute`` how the training steps computed (precision, memory format, compiled)."""
    tc, rows, best, on_cuda = cfg.train, state.epochs_log, state.best, device.type == "cuda"
    val_acc = [r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None]
    return {
        "run": name, "model": cfg.model.name, "parameters": n_params,
        "trainable_parameters": n_trainable, "weights": weights, "epochs": tc.epochs,
        "gflops_per_image": None if flops is None else flops / 1e9,
        "checkpoint_mb": model_file.stat().st_size / 2**20,
        "peak_gpu_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if on_cuda else None,
        "model_ema": tc.model_ema,
        "epochs_run": len(rows), "diverged": state.diverged,
        "early_stopping": None if best is None else {
            "patience": tc.early_stop_patience, "best_epoch": best["epoch"],
            "stopped_after_epoch": len(rows) if stopped_early else None},
        "steps": state.step, "resumed_from_epoch": state.resumed_from, "test_accuracy": metrics["accuracy"],
        "test_top5": metrics.get("top5_accuracy"),
        "task": "multilabel" if ds.multilabel else "single-label",
        "majority_baseline": majority_baseline(ds.train_labels, ds.test_labels),
        "val_accuracy": val_acc[-1] if val_acc else None,
        "best_val_accuracy": max(val_acc) if val_acc else None,
        "train_time_s": state.train_time, "wall_time_s": state.wall_time(),
        "train_images_per_s": len(rows) and float(np.mean([r["images_per_s"] for r in rows])),
        "device": device_description(device) + (f" x {dist.world_size}" if dist.active else ""),
        "torch": torch.__version__,
        "dataset": {"name": ds.name, "source": ds.source, "n_train": int(len(ds.train_labels)),
                    "n_val": int(len(ds.val_labels)), "n_test": int(len(ds.test_labels))},
        "distributed": state.dist_info or None,
        "data_placement": placement.record(),
        "compute": compute.record(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "test": metrics,
    }
