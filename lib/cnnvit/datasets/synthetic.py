"""A generated set: deterministic, learnable, no files (``data.name=synthetic``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import DataSource, Dataset, DatasetSpec, channel_stats, option, register_dataset, take_subsets

NAME = "synthetic"
SYNTHETIC_SEED = 20241123  # fixed: the synthetic set is the same everywhere, whatever the run seed


def synthetic(n_train: int = 2000, n_test: int = 500, size: int = 32, num_classes: int = 10) -> Dataset:
    """A deterministic, learnable 10-class set: each class is an oriented stripe pattern with its
    own frequency and tint, at a random phase and position, under noise. A small CNN learns it
    far above chance within an epoch or two; colour alone does not separate it."""
    def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % num_classes
        rng.shuffle(labels)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        angle = labels * np.pi / num_classes
        freq = 2.0 + (labels % 3) * 1.5
        phase = rng.uniform(0, 2 * np.pi, n)
        u = np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy
        wave = np.sin(2 * np.pi * freq[:, None, None] * u + phase[:, None, None])
        tint = np.stack([np.cos(labels * 0.7), np.sin(labels * 1.3), np.cos(labels * 2.1)], 1)
        base = 0.5 + 0.25 * wave[..., None] * (0.6 + 0.4 * tint[:, None, None, :])
        base += 0.1 * rng.uniform(-1, 1, (n, 1, 1, 3))  # brightness/colour jitter shared by classes
        noise = rng.normal(0, 0.08, base.shape)
        img = np.clip((base + noise) * 255, 0, 255).astype(np.uint8)
        return img, labels.astype(np.int64)

    rng = np.random.default_rng(SYNTHETIC_SEED)
    tr_x, tr_y = make(n_train, rng)
    te_x, te_y = make(n_test, rng)
    mean, std = channel_stats(tr_x)
    return Dataset(NAME, [f"class_{i}" for i in range(num_classes)], tr_x, tr_y, te_x, te_y,
                   f"generated (seed {SYNTHETIC_SEED})", mean, std)


@dataclass(frozen=True)
class SyntheticOptions:
    """The generated set's own keys (data.synthetic_*)."""

    synthetic_train: int = option(2000, "size of the generated training split", low=0, low_open=True)
    synthetic_test: int = option(500, "size of the generated test split", low=0, low_open=True)
    synthetic_size: int = option(32, "image side of the generated set, in pixels", low=0, low_open=True)
    synthetic_classes: int = option(10, "classes of the generated set", low=2)


def load(data_cfg: DataSource, seed: int) -> Dataset:
    opts = SPEC.options_of(data_cfg)
    ds = synthetic(opts.synthetic_train, opts.synthetic_test, opts.synthetic_size, opts.synthetic_classes)
    ds.train_images, ds.train_labels, ds.test_images, ds.test_labels = take_subsets(
        (ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels), seed,
        train_subset=data_cfg.train_subset, test_subset=data_cfg.test_subset, classes=data_cfg.classes)
    return ds


def locate(data_cfg: DataSource) -> str:
    return "generated synthetic set"


def image_side(data_cfg: DataSource) -> int:
    return SPEC.options_of(data_cfg).synthetic_size


def few(data_cfg: DataSource, n_train: int, n_test: int) -> None:
    """A dry run's few images: stratified subsets of a generated set that holds every class
    (data.classes keeps the first classes of both splits, and refuses a split that lacks them)."""
    classes = SPEC.options_of(data_cfg).synthetic_classes
    data_cfg.synthetic_train, data_cfg.synthetic_test = max(n_train, classes), max(n_test, classes)
    data_cfg.train_subset, data_cfg.test_subset = n_train, n_test


def num_classes(data_cfg: DataSource) -> int:
    return SPEC.options_of(data_cfg).synthetic_classes


SPEC = register_dataset(DatasetSpec(name=NAME, load=load, locate=locate, folder=None, size_of=image_side,
                                    few=few, num_classes=num_classes, options=SyntheticOptions))
