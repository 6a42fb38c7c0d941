"""A data set of one's own: image files sorted into one folder per class (``data.name=imagefolder``).

Layouts (under ``data.root``, or ``DATA_DIR/imagefolder``)::

    train/<class>/*  test/<class>/*   [val/<class>/*]   the splits as given
    train/<class>/*  val/<class>/*                       val/ is the test split (as ImageNet's)
    <class>/*                                           one tree: a stratified data.test_fraction
                                                        is held out as the test split

A ``val/`` tree beside ``test/`` is the validation split (``data.val_fraction`` must then stay
0); otherwise ``data.val_fraction`` holds a stratified share of the training split out, as for
every data set. Classes are the training tree's folder names, sorted; a held-out tree may lack a
class but not add one. Images of any size and format PIL reads (grayscale and palette images
become RGB) are decoded once into the decoded-data cache (:mod:`.cache`), resized to
``data.decode_size`` x ``data.decode_size`` when given; without it every image must share one
size. Unreadable files are all named in one error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ConfigError, DatasetError
from .base import (IMAGE_SUFFIXES, DataSource, Dataset, DatasetSpec, class_tree, decode_cached, first_classes,
                   option, register_dataset, root_of, stratified_indices, subset_indices)
from .cache import image_size

log = logging.getLogger(__name__)

NAME = "imagefolder"
FOLDER = "imagefolder"  # under a data directory, when data.root is unset
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Layout:
    """The image files found under a root: per split (train, val, test) the files and their
    labels; ``single`` when the root is one tree to be split."""

    folder: Path
    classes: list[str]
    files: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    single: bool

    @property
    def all_files(self) -> list[str]:
        return [f for split in SPLITS for f in self.files.get(split, [])]

    def describe(self) -> str:
        if self.single:
            return (f"one tree in {self.folder}: {len(self.classes)} classes, "
                    f"{len(self.files['train']):,} images (test split held out by data.test_fraction)")
        counts = ", ".join(f"{len(self.files[s]):,} {s}" for s in SPLITS if s in self.files)
        return f"image folders in {self.folder}: {len(self.classes)} classes, {counts} images"


def find_layout(root: Path) -> Optional[Layout]:
    """The layout under ``root`` (see the module's docstring); None when ``root`` does not exist.
    Raises :class:`DatasetError` naming what is wrong with a tree that is there."""
    if not root.is_dir():
        return None
    trees = {s: root / s for s in SPLITS if (root / s).is_dir()}
    single = "train" not in trees
    if single and trees:
        raise DatasetError(f"{root} holds {'/ and '.join(trees)}/ but no train/: put the training images "
                           f"in {root}/train/<class>/, or all images in {root}/<class>/ to have them split")
    listed = {"train": class_tree(root)} if single else {s: class_tree(p) for s, p in trees.items()}
    classes = list(listed["train"])
    if not classes:
        raise DatasetError(f"no class folders in {root / ('' if single else 'train')}: expected "
                           f"<class>/ folders of images (PNG, JPEG, ...)")
    empty = [c for c, files in listed["train"].items() if not files]
    if empty:
        raise DatasetError(f"class folder(s) without images in {root / ('' if single else 'train')}: "
                           f"{', '.join(empty[:10])} (image suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})")
    index = {c: i for i, c in enumerate(classes)}
    files, labels = {}, {}
    for split, tree in listed.items():
        extra = [c for c in tree if c not in index]
        if extra:
            raise DatasetError(f"{root / split} has class folder(s) that train/ lacks: {', '.join(extra[:10])}")
        files[split] = [f for c in tree for f in tree[c]]
        labels[split] = np.asarray([index[c] for c in tree for _ in tree[c]], np.int64)
        if not files[split]:
            raise DatasetError(f"no images under {root / split}/<class>/")
    if not single and "test" not in files:  # train/ and val/ only: val/ is what the model is tested on
        files["test"], labels["test"] = files.pop("val"), labels.pop("val")
    return Layout(root, classes, files, labels, single)


def not_found_message(root: Path) -> str:
    return (f"image folder data set not found: {root} does not exist. Set data.root to a folder holding "
            f"train/<class>/* and test/<class>/* (and/or val/<class>/*), or <class>/* to be split by "
            f"data.test_fraction")


def val_tree_conflict(root: Path) -> str:
    return (f"data.val_fraction: {root}/val/ is the validation split already; leave data.val_fraction at 0 "
            f"(or remove val/ to hold a share of train/ out)")


def layout_of(data_cfg: DataSource) -> Layout:
    """The layout under the config's root, checked against the config's split keys."""
    root = root_of(NAME, data_cfg.root)
    layout = find_layout(root)
    if layout is None:
        raise DatasetError(not_found_message(root))
    if "val" in layout.files and data_cfg.val_fraction:
        raise DatasetError(val_tree_conflict(root))
    if data_cfg.classes and data_cfg.classes > len(layout.classes):
        raise DatasetError(f"data.classes: {data_cfg.classes} asked for, but {root} has "
                           f"{len(layout.classes)} classes")
    if not data_cfg.decode_size:  # one size for all, else a clear error now rather than mid-decode
        sizes = {image_size(layout.files["train"][0]), image_size(layout.files["test" if "test" in layout.files
                                                                                 else "train"][-1])}
        if len(sizes) > 1:
            raise DatasetError(f"images in {root} differ in size ({' and '.join(f'{w}x{h}' for h, w in sorted(sizes))}); "
                               f"set data.decode_size=N to resize every image to N x N when decoding")
    return layout


def decoded(layout: Layout, decode_size: Optional[int]) -> tuple[np.ndarray, str]:
    """Every image of the layout (train, val, test, in that order) as one uint8 array, from the
    decoded cache; and where it came from."""
    where = f"image folders in {layout.folder}"
    return decode_cached(layout.folder, "imagefolder", layout.all_files, decode_size, "image-folder", where,
                         key_extra=f";single={layout.single}")


@dataclass(frozen=True)
class ImageFolderOptions:
    """An image folder's own key."""

    test_fraction: float = option(0.2, "without a test/ tree: the stratified share held out as test",
                                  low=0.0, high=1.0, low_open=True, high_open=True)


def load_imagefolder(data_cfg: DataSource, seed: int) -> Dataset:
    """The image folder data set of ``data_cfg`` (a :class:`~cnnvit.config.DataConfig`): its
    splits, the first ``data.classes`` classes, stratified subsets by ``seed``."""
    layout = layout_of(data_cfg)
    pixels, source = decoded(layout, data_cfg.decode_size)
    starts = np.cumsum([0] + [len(layout.files.get(s, [])) for s in SPLITS])
    idx = {s: np.arange(starts[i], starts[i + 1]) for i, s in enumerate(SPLITS)}
    labels = dict(layout.labels)
    if layout.single:  # a stratified test share, the same for every seed (a fixed test set)
        share = SPEC.options_of(data_cfg).test_fraction
        test = stratified_indices(labels["train"], int(round(share * len(labels["train"]))), 0)
        rest = np.setdiff1d(np.arange(len(labels["train"])), test)
        idx["test"], idx["train"] = idx["train"][test], idx["train"][rest]
        labels["test"], labels["train"] = labels["train"][test], labels["train"][rest]
    for split in [s for s in SPLITS if s in labels]:
        keep = first_classes(labels[split], data_cfg.classes, split)
        subset = {"train": data_cfg.train_subset, "test": data_cfg.test_subset}.get(split)
        if subset:
            keep = keep[subset_indices(labels[split][keep], subset, seed, split)]
        idx[split], labels[split] = idx[split][keep], labels[split][keep]
    val = {"val_images": pixels[idx["val"]], "val_labels": labels["val"]} if "val" in labels else {}
    return Dataset(NAME, list(layout.classes), pixels[idx["train"]], labels["train"], pixels[idx["test"]],
                   labels["test"], source, (0.5,) * 3, (0.25,) * 3, **val)


def locate(data_cfg: DataSource) -> str:
    return layout_of(data_cfg).describe()


def prepare(data_cfg: DataSource) -> None:
    """Fill the decoded cache (one process per machine)."""
    decoded(layout_of(data_cfg), data_cfg.decode_size)


def validate(data_cfg: DataSource) -> None:
    if has_val_tree(data_cfg) and data_cfg.val_fraction:
        raise ConfigError(val_tree_conflict(root_of(NAME, data_cfg.root)))
    if data_cfg.download:
        raise ConfigError("data.download: an image folder data set is one's own; there is nothing to download")


def has_val_tree(data_cfg: DataSource) -> bool:
    root = root_of(NAME, data_cfg.root)
    return (root / "train").is_dir() and (root / "val").is_dir() and (root / "test").is_dir()


def image_side(data_cfg: DataSource) -> Optional[int]:
    return data_cfg.decode_size


SPEC = register_dataset(DatasetSpec(
    name=NAME, load=load_imagefolder, locate=locate, folder=FOLDER, size_of=image_side, prepare=prepare,
    given_validation=has_val_tree, validate=validate, decodes=True, options=ImageFolderOptions))
