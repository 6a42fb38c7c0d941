"""The run folder's files, apart from the checkpoint (state.py) and metrics.json (summary.py):
what ran (config.yaml), on which data (data.json, split.csv), the curves (steps.csv, epochs.csv,
val_steps.csv), the weights (model.pt, epochs/NNN.pt), the test predictions and the log."""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .. import config as config_mod
from ..config import Config
from ..datasets import Dataset


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, so that a kill mid-write leaves the previous file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def data_description(ds: Dataset) -> dict[str, Any]:
    """data.json: the data set's classes, normalisation, native size, source and split sizes."""
    return {
        "name": ds.name, "classes": ds.classes, "multilabel": ds.multilabel,
        "mean": ds.mean, "std": ds.std,
        "native_size": list(ds.image_size), "source": ds.source,
        "n_train": int(len(ds.train_labels)), "n_val": int(len(ds.val_labels)),
        "n_test": int(len(ds.test_labels)),
        "class_counts": {split: ds.class_counts(y).tolist() for split, y in (
            ("train", ds.train_labels), ("val", ds.val_labels), ("test", ds.test_labels))},
    }


def write_run_description(out: Path, cfg: Config, ds: Dataset) -> None:
    """Create the run folder and write what ran on what: config.yaml, data.json and (when the
    data set names its files) split.csv, which image went to which split."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config_mod.dump(cfg))
    (out / "data.json").write_text(json.dumps(data_description(ds), indent=1))
    if ds.split_files:  # the split can be checked and reused
        rows = [f"{f},{split}" for split, files in ds.split_files.items() for f in files]
        (out / "split.csv").write_text("file,split\n" + "\n".join(rows) + "\n")


@contextlib.contextmanager
def run_log(out: Path, main: bool) -> Iterator[None]:
    """The package's log goes to ``out/train.log`` too, at INFO whatever the caller configured;
    on ranks other than 0 (``main`` false) it is quiet: one log, rank 0's."""
    pkg_log = logging.getLogger("cnnvit")
    level = pkg_log.level
    if not main:
        pkg_log.setLevel(logging.WARNING)
        try:
            yield
        finally:
            pkg_log.setLevel(level)
        return
    handler = logging.FileHandler(out / "train.log")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    if pkg_log.getEffectiveLevel() > logging.INFO:
        pkg_log.setLevel(logging.INFO)  # the run's log is complete whatever the caller configured
    pkg_log.addHandler(handler)
    try:
        yield
    finally:
        pkg_log.removeHandler(handler)
        pkg_log.setLevel(level)
        handler.close()


def _fmt(v: Any) -> str:
    return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows of dicts as CSV (floats to 6 significant digits, None empty); nothing when no rows."""
    if not rows:
        return
    keys = list(rows[0])
    lines = [",".join(keys)] + [",".join(_fmt(r[k]) for k in keys) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def write_curves(out: Path, steps_log: list[dict[str, Any]], epochs_log: list[dict[str, Any]],
                 val_log: list[dict[str, Any]]) -> None:
    """steps.csv, epochs.csv and val_steps.csv (this one only with train.val_every_steps)."""
    write_csv(out / "steps.csv", steps_log)
    write_csv(out / "epochs.csv", epochs_log)
    write_csv(out / "val_steps.csv", val_log)


def save_epoch_weights(out: Path, epoch: int, module: torch.nn.Module) -> None:
    """epochs/NNN.pt: the weights that epoch's evaluation used (train.keep_epoch_weights)."""
    (out / "epochs").mkdir(exist_ok=True)
    save_atomic(module.state_dict(), out / "epochs" / f"{epoch:03d}.pt")


def write_predictions(out: Path, logits: np.ndarray, labels: np.ndarray, predictions: np.ndarray) -> None:
    """predictions.npz: the test split's logits, labels and predictions."""
    np.savez_compressed(out / "predictions.npz", logits=logits.astype(np.float32), labels=labels,
                        predictions=predictions)
