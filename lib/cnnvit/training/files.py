"""The run folder's files, apart from the checkpoint (state.py) and metrics.json (summary.py):
what ran (config.yaml), on which data (data.json, split.csv), the curves (steps.csv, epochs.csv,
val_steps.csv), the weights (model.pt, epochs/NNN.pt), the test predictions and the log."""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from .. import config as config_mod
from ..config import Config
from ..datasets import Dataset
from ..errors import RunInUse

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, run folders are not guarded
    fcntl = None

LOCK = ".lock"  # in the run folder: held by the process training into it


LOW_DISK = 64 * 2**20  # bytes free under which a failed write is taken for a full disk


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, so that a kill mid-write leaves the previous file.
    A write that fails on a full disk (torch reports it as a RuntimeError) is an OSError ENOSPC
    naming ``path``, which the command line shows as one line."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        torch.save(obj, tmp)
    except RuntimeError as exc:
        tmp.unlink(missing_ok=True)
        if "write" in str(exc) and shutil.disk_usage(path.parent).free < LOW_DISK:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        raise
    os.replace(tmp, path)


@contextlib.contextmanager
def run_folder_lock(out: Path) -> Iterator[None]:
    """Hold the run folder ``out`` (created if need be) for this process, from the first read of
    its state to the last write: a second process asking for it is refused at once with
    :class:`RunInUse` instead of training beside it and mixing two runs' files. An advisory lock
    (flock on ``out/.lock``, which stays empty: taking it changes no file) that the system
    releases when the holder dies, so a killed run never wedges its folder."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunInUse(f"{out} is in use: another process is training into it; wait for it to "
                               "finish (then run this again: a complete run is loaded, not retrained) "
                               "or choose another --out") from None
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, flush it to disk, then rename it into
    place: a kill or a full disk mid-write leaves the previous file (or none), never a torn one.
    The files that mark a run (config.yaml, metrics.json) are written this way."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # a failed write names no file: name the one meant
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    write_text_atomic(out / "config.yaml", config_mod.dump(cfg))
    write_text_atomic(out / "data.json", json.dumps(data_description(ds), indent=1))
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
