"""CIFAR-10: torchvision's pickles (``cifar-10-batches-py/``) or an image-folder tree
(``train/<class>/*``, ``test/<class>/*``), downloadable from the authors' page."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DatasetError
from .base import (DataSource, Dataset, DatasetSpec, channel_stats, decode_images, first_classes,
                   list_image_folder, register_dataset, root_of, subset_indices, take_subsets)
from .fetch import FetchSpec, Source, extract_archive, find_or_fetch

NAME = "cifar10"
FOLDER = "cifar10"  # under a data directory
IMAGE_SIZE = 32
CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]


def read_pickle(path: Path, title: str = "CIFAR-10") -> dict:
    """One of the CIFAR archives' pickled dicts; errors name the file."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except FileNotFoundError as exc:
        raise DatasetError(f"{title} batch file missing: {path}") from exc
    except Exception as exc:  # a truncated or foreign file fails in many ways inside pickle
        raise DatasetError(f"{title} batch file unreadable (corrupt or not a CIFAR pickle): "
                           f"{path}: {exc}") from exc


def pickled_images(batch: dict, path: Path, title: str = "CIFAR-10") -> np.ndarray:
    """A CIFAR pickle's ``data`` rows (3 x 32 x 32, channel-major) as N x 32 x 32 x 3 uint8."""
    try:
        return np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    except (KeyError, ValueError) as exc:
        raise DatasetError(f"{title} batch file has an unexpected layout: {path}: {exc}") from exc


def _load_pickles(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in names:
            batch = read_pickle(folder / name)
            xs.append(pickled_images(batch, folder / name))
            try:
                ys.append(np.asarray(batch["labels"], dtype=np.int64))
            except KeyError as exc:
                raise DatasetError(f"CIFAR-10 batch file has an unexpected layout: "
                                   f"{folder / name}: {exc}") from exc
        return np.concatenate(xs), np.concatenate(ys)

    train_x, train_y = read([f"data_batch_{i}" for i in range(1, 6)])
    test_x, test_y = read(["test_batch"])
    classes = CLASSES
    meta = folder / "batches.meta"
    if meta.exists():
        classes = list(read_pickle(meta).get("label_names", CLASSES))
    return train_x, train_y, test_x, test_y, classes


def find_format(root: Path) -> tuple[str, Path] | None:
    """``("pickle", folder)`` or ``("folder", folder)``: where and in which format ``root`` holds
    CIFAR-10; None when it does not."""
    for folder in (root / "cifar-10-batches-py", root):
        if (folder / "data_batch_1").exists():
            return "pickle", folder
    for folder in (root, root / FOLDER):
        if (folder / "train").is_dir() and (folder / "test").is_dir():
            return "folder", folder
    return None


def not_found(root: Path) -> DatasetError:
    return DatasetError(
        f"CIFAR-10 not found under {root}: looked for {root}/cifar-10-batches-py/"
        f"data_batch_1, {root}/data_batch_1 (torchvision's format) and "
        f"{root}/train/<class>/, {root}/test/<class>/ (image folders). "
        f"Set data.root to the folder that holds it (or DATA_DIR to its parent), or fetch it: "
        f"python -m cnnvit data fetch cifar10 --to DATA_DIR (or data.download=true; needs internet).")


def _list_splits(folder: Path) -> tuple[list[Path], np.ndarray, list[Path], np.ndarray, list[str]]:
    train_files, train_y, classes = list_image_folder(folder / "train")
    test_files, test_y, test_classes = list_image_folder(folder / "test")
    if test_classes != classes:
        raise DatasetError(f"class folders differ between {folder / 'train'} and {folder / 'test'}")
    return train_files, train_y, test_files, test_y, classes


def inspect(root: Path) -> Optional[str]:
    """What :func:`load_cifar10` would find in ``root`` (None: nothing), reading the pickles
    through and listing the image folders; raises :class:`DatasetError` where they are unreadable."""
    found = find_format(root)
    if found is None:
        return None
    fmt, folder = found
    if fmt == "pickle":
        train_x, _, test_x, _, classes = _load_pickles(folder)
        return (f"torchvision's format in {folder}: {len(classes)} classes, {len(train_x):,} train "
                f"and {len(test_x):,} test images")
    train_files, train_y, test_files, _, classes = _list_splits(folder)
    # one image per class decoded: a folder of broken files fails here, not an hour into a run
    decode_images([train_files[int(i)] for i in np.unique(train_y, return_index=True)[1]])
    return (f"image folders in {folder}: {len(classes)} classes, {len(train_files):,} train and "
            f"{len(test_files):,} test images")


def _unpack(files: dict[str, Path], staging: Path, progress: bool) -> None:
    extract_archive(files["cifar-10-python.tar.gz"], staging, progress)  # cifar-10-batches-py/


FETCH = FetchSpec(
    name=NAME, title="CIFAR-10",
    sources=(Source("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                    "c58f30108f718f92721af3b95e74349a"),),  # torchvision's archive and MD5
    unpack=_unpack, inspect=inspect,
    layout="cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (torchvision's format) "
           "or train/<class>/*, test/<class>/* (image folders, e.g. PNG or JPEG)")


def _load_folders(folder: Path, train_subset: Optional[int], test_subset: Optional[int],
                  seed: int, classes: Optional[int] = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    train_files, train_y, test_files, test_y, names = _list_splits(folder)
    # subset before decoding: a 5,000-image run need not read all 50,000 files
    keep, keep_test = first_classes(train_y, classes, "train"), first_classes(test_y, classes, "test")
    train_files, train_y = [train_files[i] for i in keep], train_y[keep]
    test_files, test_y = [test_files[i] for i in keep_test], test_y[keep_test]
    if train_subset:
        keep = subset_indices(train_y, train_subset, seed, "train")
        train_files, train_y = [train_files[i] for i in keep], train_y[keep]
    if test_subset:
        keep = subset_indices(test_y, test_subset, seed, "test")
        test_files, test_y = [test_files[i] for i in keep], test_y[keep]
    train_x = decode_images(train_files)
    test_x = decode_images(test_files, size=train_x.shape[1:3])
    return train_x, train_y, test_x, test_y, names


def load_cifar10(root: Optional[str], download: bool, train_subset: Optional[int],
                 test_subset: Optional[int], seed: int, classes: Optional[int] = None) -> Dataset:
    """CIFAR-10 from torchvision's pickles or a ``train/<class>/*``, ``test/<class>/*`` tree."""
    root_path = root_of(NAME, root)
    fmt, folder = find_or_fetch(find_format, FETCH, root_path, download, not_found)
    if fmt == "pickle":
        train_x, train_y, test_x, test_y, names = _load_pickles(folder)
        train_x, train_y, test_x, test_y = take_subsets((train_x, train_y), (test_x, test_y), seed, train_subset=train_subset,
                                                        test_subset=test_subset, classes=classes)
        source = f"torchvision pickles in {folder}"
    else:
        train_x, train_y, test_x, test_y, names = _load_folders(folder, train_subset, test_subset, seed,
                                                                classes)
        source = f"image folders in {folder}"
    mean, std = channel_stats(train_x)
    return Dataset(NAME, names, train_x, train_y, test_x, test_y, source, mean, std)


def load(data_cfg: DataSource, seed: int) -> Dataset:
    return load_cifar10(data_cfg.root, data_cfg.download, data_cfg.train_subset, data_cfg.test_subset, seed,
                        data_cfg.classes)


def locate(data_cfg: DataSource) -> str:
    root = root_of(NAME, data_cfg.root)
    found = find_format(root)
    if found:
        return f"{found[0]} format in {found[1]}"
    if data_cfg.download:
        return f"to be downloaded into {root}"
    raise not_found(root)


def prepare(data_cfg: DataSource) -> None:
    if data_cfg.download:  # fetched by one process; nothing to cache
        find_or_fetch(find_format, FETCH, root_of(NAME, data_cfg.root), True, not_found)


SPEC = register_dataset(DatasetSpec(
    name=NAME, load=load, locate=locate, folder=FOLDER, native_size=IMAGE_SIZE, prepare=prepare,
    fetch=FETCH, num_classes=lambda data_cfg: len(CLASSES),
    train_images=50_000))
