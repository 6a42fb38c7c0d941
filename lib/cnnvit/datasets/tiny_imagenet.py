"""Tiny-ImageNet-200 in its official layout, decoded once into a uint8 cache next to the data.

Layout (``root`` or ``root/tiny-imagenet-200``)::

    wnids.txt  words.txt
    train/<wnid>/images/*.JPEG      500 per class
    val/images/*.JPEG  val/val_annotations.txt   50 per class, labelled: our test split

The decoded cache (``<folder>/.cnnvit-cache/tiny-imagenet-<key>/*.npy``, 1.3 GB; see :mod:`.cache`)
is keyed by the name, size and modification time of every source file, so a changed or partial
copy is decoded again.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DatasetError
from .base import (DataSource, Dataset, DatasetSpec, channel_stats, default_data_dir, find_marked_folder,
                   locate_folder, register_dataset, root_of, take_subsets)
from .cache import CACHE_DIR, cache_roots, cached_arrays, decode_to_npy, source_key  # noqa: F401 (CACHE_DIR)
from .fetch import FetchSpec, Source, extract_archive, find_or_fetch

log = logging.getLogger(__name__)

NAME = "tiny-imagenet"
FOLDER = "tiny-imagenet-200"  # under a data directory: the archive's top folder
IMAGE_SIZE = 64
NUM_CLASSES = 200  # the official wnids.txt's
VAL_FRACTION = 0.2  # the seed's protocol: 20% of the training split held out for validation
ARRAYS = ("train_x", "train_y", "test_x", "test_y")


def find_folder(root: Path) -> Optional[Path]:
    """The folder holding ``wnids.txt``: ``root`` itself or ``root/tiny-imagenet-200``."""
    return find_marked_folder(root, "wnids.txt", FOLDER)


def not_found_message(root: Path) -> str:
    return (f"Tiny-ImageNet not found under {root}: looked for {root}/wnids.txt and "
            f"{root}/tiny-imagenet-200/wnids.txt (the official layout). Set data.root to the folder "
            f"that holds it (or DATA_DIR to its parent), or fetch it from {FETCH.sources[0].url}: "
            f"python -m cnnvit data fetch tiny-imagenet --to DATA_DIR (or data.download=true; needs "
            f"internet).")


def inspect_layout(root: Path) -> Optional[str]:
    """What the loader would find in ``root`` (None: nothing); every listed image must exist."""
    folder = find_folder(root)
    if folder is None:
        return None
    wnids, train_files, _, val_files, _ = list_files(folder)
    return (f"official layout in {folder}: {len(wnids)} classes, {len(train_files):,} train and "
            f"{len(val_files):,} labelled val images")


def _unpack(files: dict[str, Path], staging: Path, progress: bool) -> None:
    # the archive's top folder is tiny-imagenet-200/: its contents become the data set's folder
    extract_archive(files["tiny-imagenet-200.zip"], staging, progress, strip="tiny-imagenet-200")


FETCH = FetchSpec(
    name=NAME, title="Tiny-ImageNet-200",
    sources=(Source("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "tiny-imagenet-200.zip",
                    "90528d7ca1a48142e341f4ef8d21d0de"),),  # the official archive
    unpack=_unpack, inspect=inspect_layout,
    layout="wnids.txt, words.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG and "
           "val/val_annotations.txt (the official layout)")


def class_names(folder: Path, wnids: list[str]) -> list[str]:
    """Readable names from ``words.txt`` (first synonym), the wnid where it has none."""
    words = {}
    path = folder / "words.txt"
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip()
    return [words.get(w) or w for w in wnids]


def _images_in(folder: Path) -> list[str]:
    # os.scandir and string sorting: a pathlib listing of 100,000 files costs seconds
    with os.scandir(folder) as it:
        names = [e.name for e in it if e.name.lower().endswith((".jpeg", ".jpg", ".png"))]
    return [os.path.join(folder, n) for n in sorted(names)]


def list_files(folder: Path) -> tuple[list[str], list[str], np.ndarray, list[str], np.ndarray]:
    """(wnids, train files, train labels, val files, val labels); errors name what is missing."""
    wnids = [w.strip() for w in (folder / "wnids.txt").read_text().split() if w.strip()]
    if not wnids:
        raise DatasetError(f"{folder / 'wnids.txt'} lists no classes")
    index = {w: i for i, w in enumerate(wnids)}
    train_files, train_labels = [], []
    for w in wnids:
        images = folder / "train" / w / "images"
        if not images.is_dir():
            raise DatasetError(f"Tiny-ImageNet incomplete: {images} is missing (class {w} of wnids.txt)")
        found = _images_in(images)
        if not found:
            raise DatasetError(f"Tiny-ImageNet incomplete: no images in {images}")
        train_files += found
        train_labels += [index[w]] * len(found)
    annotations = folder / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise DatasetError(f"Tiny-ImageNet incomplete: {annotations} is missing")
    val_files, val_labels = [], []
    val_dir = folder / "val" / "images"
    for n, line in enumerate(annotations.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise DatasetError(f"{annotations}:{n}: expected '<file>\\t<wnid>\\t...' with a wnid of "
                               f"wnids.txt, got {line[:80]!r}")
        val_files.append(os.path.join(val_dir, parts[0]))
        val_labels.append(index[parts[1]])
    present = set(_images_in(val_dir)) if val_dir.is_dir() else set()
    missing = [p for p in val_files if p not in present]
    if missing:
        raise DatasetError(f"Tiny-ImageNet incomplete: {len(missing)} val images listed in {annotations} "
                           f"are missing, e.g. {missing[0]}")
    return (wnids, train_files, np.asarray(train_labels, np.int64), val_files,
            np.asarray(val_labels, np.int64))


def load_arrays(folder: Path) -> dict[str, np.ndarray | list[str]]:
    """All train and val images of the folder as uint8 arrays, from the decoded cache (filled
    first when it is missing or stale; see :mod:`.cache`)."""
    wnids, train_files, train_y, val_files, val_y = list_files(folder)
    size = (IMAGE_SIZE, IMAGE_SIZE)

    def fill(into: Path) -> None:
        log.info("decoding %d Tiny-ImageNet images from %s (once; cached afterwards)",
                 len(train_files) + len(val_files), folder)
        decode_to_npy(train_files, into / "train_x.npy", resize=size, desc="decoding Tiny-ImageNet train")
        decode_to_npy(val_files, into / "test_x.npy", resize=size, desc="decoding Tiny-ImageNet val")
        np.save(into / "train_y.npy", train_y)
        np.save(into / "test_y.npy", val_y)

    key = source_key([folder / "wnids.txt", folder / "val" / "val_annotations.txt", *train_files, *val_files])
    cached = cached_arrays(cache_roots(folder, default_data_dir()), "tiny-imagenet", key, ARRAYS, fill,
                           "Tiny-ImageNet")
    return {**cached.arrays, "wnids": wnids, "classes": class_names(folder, wnids),
            "source": cached.source(f"official layout in {folder}")}


def load_tiny_imagenet(root: Optional[str], download: bool, train_subset: Optional[int],
                       test_subset: Optional[int], seed: int, stats: bool = True,
                       classes: Optional[int] = None) -> Dataset:
    """Tiny-ImageNet-200 (official layout); its labelled val split is our test split. The arrays
    may be memory-mapped from the cache (``stats=False``: mean and std left to the caller)."""
    root_path = root_of(NAME, root)
    folder = find_or_fetch(find_folder, FETCH, root_path, download,
                           lambda root: DatasetError(not_found_message(root)))
    a = load_arrays(folder)
    train_x, train_y, test_x, test_y = take_subsets((a["train_x"], a["train_y"]), (a["test_x"], a["test_y"]), seed,
                                                    train_subset=train_subset, test_subset=test_subset,
                                                    classes=classes)
    mean, std = channel_stats(train_x) if stats else (None, None)
    return Dataset(NAME, a["classes"], train_x, train_y, test_x, test_y, a["source"], mean, std)


def load(data_cfg: DataSource, seed: int) -> Dataset:
    return load_tiny_imagenet(data_cfg.root, data_cfg.download, data_cfg.train_subset,
                              data_cfg.test_subset, seed, stats=False, classes=data_cfg.classes)


def locate(data_cfg: DataSource) -> str:
    return locate_folder(data_cfg, find_folder, not_found_message)


def prepare(data_cfg: DataSource) -> None:
    """Download if asked and missing, and fill the decoded cache."""
    load_tiny_imagenet(data_cfg.root, data_cfg.download, 1, 1, 0, stats=False)


SPEC = register_dataset(DatasetSpec(
    name=NAME, load=load, locate=locate, folder=FOLDER, native_size=IMAGE_SIZE,
    val_fraction=VAL_FRACTION, prepare=prepare, fetch=FETCH, num_classes=lambda data_cfg: NUM_CLASSES,
    train_images=100_000))
