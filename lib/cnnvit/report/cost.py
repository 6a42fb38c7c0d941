"""What a run costs: how long one that has not run yet would take on a GPU, at the speed
`make gpu-check` measured for its model (``outputs/gpu-check/throughput.csv``), else from its
FLOPs at an assumed rate. Used by the partial paper report and by the GPU check's projection."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Optional

import pandas as pd

from ..config import Config
from ..datasets import get_dataset

log = logging.getLogger(__name__)

# FLOPs per second a training step sustains (forward and backward, about 3 forwards) where
# nothing was measured: 100 TFLOP/s, about a tenth of an H100's dense bf16 peak (small models
# reach less of it, large ones more)
ASSUMED_FLOPS = 1.0e14


def input_px(cfg: Config) -> int:
    """The side of the images a run's model sees: its resize, else its data set's own size
    (CelebA's 178 x 218 counted as 218)."""
    return cfg.data.image_size or get_dataset(cfg.data.name).native_size or 218


def train_images(cfg: Config) -> int:
    """Images a run trains on in all (every epoch, its validation share held out); a data set
    whose spec gives no full training split (``DatasetSpec.train_images``) counts 0 unless the
    run takes a subset."""
    n = cfg.data.train_subset or get_dataset(cfg.data.name).train_images or 0
    return int(n * (1 - (cfg.data.val_fraction or 0)) * cfg.train.epochs)


def read_throughput(path: Path) -> Optional[pd.DataFrame]:
    """The GPU check's table, or None when there is none (or it holds no measured speed)."""
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if "ours img/s" not in table:
        return None
    return table.dropna(subset=["ours img/s"])


def training_passes(freeze: str) -> int:
    """A training step's cost in forward passes: 3 (forward and backward), 1 for a frozen
    backbone (run forward only; its head's backward is negligible)."""
    return 1 if freeze == "head" else 3


class Projector:
    """Projected minutes of runs; FLOPs are counted once per model and input size."""

    def __init__(self, throughput: Optional[pd.DataFrame] = None, flops_per_s: float = ASSUMED_FLOPS):
        self.throughput = throughput
        self.flops_per_s = flops_per_s  # training FLOPs per second, for models not measured
        self._flops: dict[tuple[str, int], Optional[float]] = {}

    def flops(self, model: str, px: int) -> Optional[float]:
        if (model, px) not in self._flops:
            from ..models import count_flops, create_model  # (builds the model: torch, timm)

            try:
                self._flops[model, px] = count_flops(create_model(model, num_classes=10), px)
            except Exception as exc:  # a model the counter cannot trace has no estimate
                log.warning("no FLOPs for %s at %d px: %s", model, px, exc)
                self._flops[model, px] = None
        return self._flops[model, px]

    def minutes(self, cfg: Config) -> tuple[float, str]:
        """(projected minutes, how: 'measured by make gpu-check' or 'from FLOPs'); NaN when
        neither is known."""
        px, images = input_px(cfg), train_images(cfg)
        if self.throughput is not None:
            t = self.throughput
            hit = t[(t["model"] == cfg.model.name) & (t["px"] == px) & (t["freeze"] == cfg.model.freeze)]
            if len(hit):
                return images / float(hit["ours img/s"].iloc[0]) / 60, "measured by make gpu-check"
        f = self.flops(cfg.model.name, px)
        if not f:
            return math.nan, "unknown"
        passes = training_passes(cfg.model.freeze)
        return images * f * passes / self.flops_per_s / 60, "from FLOPs"
