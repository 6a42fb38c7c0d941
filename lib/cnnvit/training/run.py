"""Reading a finished run back: its config, curves, metrics (a typed
:class:`~cnnvit.records.RunResult`), and a predictor that applies the run's own preprocessing, so
that anyone can check its numbers independently."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from ..config import Config, from_dict
from ..models import create_model
from ..models.weights import prepare_model
from ..records import RunResult, WeightsOrigin
from .augment import Preprocess
from .device import resolve_device
from .evaluate import predict_logits
from .identity import RunStatus, read_metrics, saved_config


class Run:
    """A run folder written by :func:`cnnvit.training.train`."""

    def __init__(self, run_dir: str | Path, device: str = "auto"):
        self.dir = Path(run_dir)
        raw = saved_config(self.dir)
        if raw is None:
            raise FileNotFoundError(f"{self.dir} holds no run (config.yaml missing)")
        self.config: Config = from_dict(raw)
        self.data_info: dict[str, Any] = json.loads((self.dir / "data.json").read_text())
        self.device = resolve_device(device)
        self._model: Optional[torch.nn.Module] = None
        # metrics.json read once per version of the file: (its stat signature, its record)
        self._result: Optional[tuple[tuple[int, int, int], RunResult]] = None

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def complete(self) -> bool:
        return read_metrics(self.dir) is not None

    @property
    def metrics(self) -> RunResult:
        """The run's metrics.json as a typed record. Read once and kept while the file stays the
        same: a run trained again into this folder (even by this process) replaces the file
        (a new inode, size or time), which is then read anew."""
        path = self.dir / "metrics.json"
        st = path.stat()
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._result is None or self._result[0] != signature:
            self._result = signature, RunResult.from_json(json.loads(path.read_text()))
        return self._result[1]

    @property
    def weights(self) -> WeightsOrigin:
        """Where the run's starting weights came from, as training recorded it in metrics.json."""
        return self.metrics.weights

    @property
    def epochs(self) -> pd.DataFrame:
        """Per-epoch train loss, test loss and accuracy, time and throughput."""
        return pd.read_csv(self.dir / "epochs.csv")

    @property
    def steps(self) -> pd.DataFrame:
        """Per-step training loss and learning rate."""
        return pd.read_csv(self.dir / "steps.csv")

    @property
    def val_steps(self) -> pd.DataFrame:
        """Validation loss and accuracy every ``train.val_every_steps`` steps (empty when off)."""
        path = self.dir / "val_steps.csv"
        if not path.exists():
            return pd.DataFrame(columns=["step", "epoch", "val_loss", "val_accuracy"])
        return pd.read_csv(path)

    @property
    def classes(self) -> list[str]:
        return self.data_info["classes"]

    def predictions(self) -> dict[str, np.ndarray]:
        with np.load(self.dir / "predictions.npz") as f:
            return {k: f[k] for k in f.files}

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            model = create_model(self.config.model.name, len(self.classes))
            model, _ = prepare_model(model, self.config.model, load_weights=False)  # same modules
            state = torch.load(self.dir / "model.pt", map_location="cpu", weights_only=True)
            model.load_state_dict(state)
            self._model = model.to(self.device).eval()
        return self._model

    def preprocess(self) -> Preprocess:
        return Preprocess.from_config(self.config.data, self.data_info["mean"], self.data_info["std"])

    def predict(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """N x C logits for uint8 N x H x W x 3 images at the data set's native size (with the
        run's own test-time flip when it was trained with train.eval_flip)."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 images of shape N x H x W x 3, got {images.dtype} "
                             f"{images.shape}")
        native = tuple(self.data_info["native_size"])
        if images.shape[1:3] != native:
            raise ValueError(f"images are {images.shape[1]}x{images.shape[2]}, the run was trained "
                             f"on {native[0]}x{native[1]}")
        x = torch.from_numpy(images)
        return predict_logits(self.model, x, self.preprocess(), batch_size, self.device,
                              flip=self.config.train.eval_flip).numpy()

    def __repr__(self) -> str:
        state = RunStatus.COMPLETE if self.complete else RunStatus.INCOMPLETE
        return f"Run({str(self.dir)!r}, {self.config.model.name}, {state})"


def load_run(run_dir: str | Path, device: str = "auto") -> Run:
    """Open a run folder; ``.predict(images)`` re-runs its model with its own preprocessing."""
    return Run(run_dir, device)
