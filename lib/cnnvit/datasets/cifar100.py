"""CIFAR-100 in torchvision's format (``cifar-100-python/{train,test,meta}``), downloadable from
the authors' page: 100 fine classes, or with ``data.coarse_labels`` their 20 superclasses."""
from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import DatasetError
from .base import (DataSource, Dataset, DatasetSpec, channel_stats, locate_folder, option, register_dataset,
                   root_of, take_subsets)
from .cifar10 import pickled_images, read_pickle
from .fetch import FetchSpec, Source, extract_archive, find_or_fetch

NAME = "cifar100"
FOLDER = "cifar100"  # under a data directory
TITLE = "CIFAR-100"
IMAGE_SIZE = 32
ARCHIVE_FOLDER = "cifar-100-python"


def find_folder(root: Path) -> Optional[Path]:
    """The folder holding the ``train``, ``test`` and ``meta`` pickles: ``root/cifar-100-python``
    or ``root`` itself."""
    for folder in (root / ARCHIVE_FOLDER, root):
        if (folder / "train").is_file() and (folder / "meta").is_file():
            return folder
    return None


def not_found_message(root: Path) -> str:
    return (f"{TITLE} not found under {root}: looked for {root}/{ARCHIVE_FOLDER}/train and {root}/train "
            f"(torchvision's format: the pickles train, test and meta). Set data.root to the folder that "
            f"holds it (or DATA_DIR to its parent), or fetch it: python -m cnnvit data fetch cifar100 --to "
            f"DATA_DIR (or data.download=true; needs internet).")


def not_found(root: Path) -> DatasetError:
    return DatasetError(not_found_message(root))


def _split(folder: Path, name: str, coarse: bool) -> tuple[np.ndarray, np.ndarray]:
    batch = read_pickle(folder / name, TITLE)
    key = "coarse_labels" if coarse else "fine_labels"
    if key not in batch:
        raise DatasetError(f"{TITLE} batch file has an unexpected layout: {folder / name}: no {key!r}")
    return pickled_images(batch, folder / name, TITLE), np.asarray(batch[key], dtype=np.int64)


def class_names(folder: Path, coarse: bool = False) -> list[str]:
    """The fine (or coarse) class names of the ``meta`` pickle."""
    meta = read_pickle(folder / "meta", TITLE)
    key = "coarse_label_names" if coarse else "fine_label_names"
    if key not in meta:
        raise DatasetError(f"{TITLE} meta file has an unexpected layout: {folder / 'meta'}: no {key!r}")
    return list(meta[key])


def read_folder(folder: Path, coarse: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                               list[str]]:
    """(train images, train labels, test images, test labels, class names) of the pickles."""
    train_x, train_y = _split(folder, "train", coarse)
    test_x, test_y = _split(folder, "test", coarse)
    classes = class_names(folder, coarse)
    top = int(max(train_y.max(initial=0), test_y.max(initial=0)))
    if top >= len(classes):
        raise DatasetError(f"{TITLE}: label {top} in {folder} but {folder / 'meta'} names {len(classes)} classes")
    return train_x, train_y, test_x, test_y, classes


def inspect(root: Path) -> Optional[str]:
    """What the loader would find in ``root`` (None: nothing); the pickles are read through."""
    folder = find_folder(root)
    if folder is None:
        return None
    train_x, _, test_x, _, classes = read_folder(folder)
    coarse = class_names(folder, coarse=True)
    return (f"torchvision's format in {folder}: {len(classes)} classes ({len(coarse)} superclasses), "
            f"{len(train_x):,} train and {len(test_x):,} test images")


def _unpack(files: dict[str, Path], staging: Path, progress: bool) -> None:
    extract_archive(files["cifar-100-python.tar.gz"], staging, progress)  # cifar-100-python/


FETCH = FetchSpec(
    name=NAME, title=TITLE,
    sources=(Source("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python.tar.gz",
                    "eb9058c3a382ffc7106e4002c42a8d85"),),  # torchvision's archive and MD5
    unpack=_unpack, inspect=inspect,
    layout=f"{ARCHIVE_FOLDER}/{{train,test,meta}} (torchvision's format)")


@dataclass(frozen=True)
class Cifar100Options:
    """CIFAR-100's own key."""

    coarse_labels: bool = option(False, "its 20 superclasses instead of the 100 fine classes",
                                 refused_elsewhere=True)


def load(data_cfg: DataSource, seed: int) -> Dataset:
    """CIFAR-100 with fine (or, ``data.coarse_labels``, coarse) labels, the first
    ``data.classes`` classes, and stratified subsets chosen by ``seed``."""
    coarse = SPEC.options_of(data_cfg).coarse_labels
    folder = find_or_fetch(find_folder, FETCH, root_of(NAME, data_cfg.root), data_cfg.download, not_found)
    train_x, train_y, test_x, test_y, classes = read_folder(folder, coarse)
    train_x, train_y, test_x, test_y = take_subsets((train_x, train_y), (test_x, test_y), seed,
                                                    train_subset=data_cfg.train_subset,
                                                    test_subset=data_cfg.test_subset, classes=data_cfg.classes)
    mean, std = channel_stats(train_x)
    labels = "coarse labels (20 superclasses)" if coarse else "fine labels"
    return Dataset(NAME, classes, train_x, train_y, test_x, test_y,
                   f"torchvision pickles in {folder}, {labels}", mean, std)


def locate(data_cfg: DataSource) -> str:
    return locate_folder(data_cfg, find_folder, not_found_message)


def prepare(data_cfg: DataSource) -> None:
    if data_cfg.download:  # fetched by one process; nothing to cache
        find_or_fetch(find_folder, FETCH, root_of(NAME, data_cfg.root), True, not_found)


def write_generated(folder: str | Path, n: int, seed: int = 0, n_test: Optional[int] = None) -> Path:
    """Write a small generated copy in torchvision's format (``cifar-100-python/``; for tests and
    trying the pipeline without the real set): ``n`` train
    and ``n_test`` (default n / 5) test images of noise with a class-dependent tint, fine labels
    cycling through the 100 classes and coarse labels = fine // 5. Returns the pickles' folder."""
    import pickle

    out = Path(folder) / ARCHIVE_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("test", n_test if n_test is not None else max(1, n // 5))):
        fine = np.arange(count) % 100
        tint = np.stack([fine * 2.5, 250 - fine * 2.5, (fine * 37) % 250], 1)[:, :, None]
        data = np.clip(rng.normal(tint, 20, (count, 3, 1024)), 0, 255).astype(np.uint8).reshape(count, -1)
        batch = {"data": data, "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist(),
                 "filenames": [f"{split}_{i}.png" for i in range(count)]}
        (out / split).write_bytes(pickle.dumps(batch))
    meta = {"fine_label_names": [f"fine_{i:02d}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i:02d}" for i in range(20)]}
    (out / "meta").write_bytes(pickle.dumps(meta))
    return out


SPEC = register_dataset(DatasetSpec(
    name=NAME, load=load, locate=locate, folder=FOLDER, native_size=IMAGE_SIZE, prepare=prepare,
    fetch=FETCH, num_classes=lambda data_cfg: 20 if SPEC.options_of(data_cfg).coarse_labels else 100,
    options=Cifar100Options, train_images=50_000))
