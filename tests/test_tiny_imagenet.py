"""Tiny-ImageNet-200: a tiny generated tree in the official layout; loading, the validation
split, grayscale conversion, the decoded cache and the errors."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from PIL import Image

from cnnvit import config
from cnnvit.datasets import tiny_imagenet as tin
from cnnvit.datasets import DatasetError, dataset_from_config, load_dataset, locate_dataset

from helpers import WNIDS, write_tiny_imagenet

def test_official_layout_loads_with_names_and_grayscale_as_rgb(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    ds = load_dataset("tiny-imagenet", root=str(tmp_path))
    assert ds.classes == ["goldfish", "European fire salamander", "bullfrog"]
    assert ds.train_images.shape == (30, 64, 64, 3) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (12, 64, 64, 3)
    assert np.bincount(ds.train_labels).tolist() == [10, 10, 10]
    assert np.bincount(ds.test_labels).tolist() == [4, 4, 4]
    # every image (grayscale ones included) decodes to its label's grey level in all 3 channels
    for x, y in ((ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)):
        assert np.abs(x.reshape(len(x), -1).mean(1) - (40 * y + 20)).max() < 3
    assert load_dataset("tiny-imagenet", root=str(folder)).train_images.shape[0] == 30, \
        "the folder itself works as the root too"


def test_validation_split_is_stratified_and_disjoint(tmp_path):
    write_tiny_imagenet(tmp_path)
    cfg = config.build(overrides=["data.name=tiny-imagenet", f"data.root={tmp_path}", "data.val_fraction=0.2"])
    ds = dataset_from_config(cfg.data, seed=0)
    assert np.bincount(ds.train_labels).tolist() == [8, 8, 8]
    assert np.bincount(ds.val_labels).tolist() == [2, 2, 2]
    assert len(ds.test_labels) == 12
    text = ds.describe()
    assert "train: 24 images" in text and "validation: 6 images" in text and "test: 12 images" in text
    again = dataset_from_config(cfg.data, seed=0)
    assert np.array_equal(again.val_images, ds.val_images), "the split is chosen by the seed"


def test_cache_is_used_then_invalidated_by_a_changed_source(tmp_path, monkeypatch):
    folder = write_tiny_imagenet(tmp_path)
    first = load_dataset("tiny-imagenet", root=str(tmp_path))
    caches = list((folder / tin.CACHE_DIR).glob("tiny-imagenet-*"))
    assert len(caches) == 1 and (caches[0] / "complete").exists()

    def no_decoding(*a, **k):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(tin, "decode_to_npy", no_decoding)
    cached = load_dataset("tiny-imagenet", root=str(tmp_path))
    assert np.array_equal(cached.train_images, first.train_images)
    assert cached.source.startswith("cache ")
    monkeypatch.undo()

    # a replaced image: decoded again, and the old cache removed
    img = folder / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_0.JPEG"
    Image.new("RGB", (64, 64), (250, 250, 250)).save(img)
    os.utime(img, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = load_dataset("tiny-imagenet", root=str(tmp_path))
    assert changed.train_images[0].mean() > 240
    assert list((folder / tin.CACHE_DIR).glob("tiny-imagenet-*")) not in ([], caches)


def test_truncated_cache_is_decoded_again(tmp_path):
    folder = write_tiny_imagenet(tmp_path)
    load_dataset("tiny-imagenet", root=str(tmp_path))
    cache = next((folder / tin.CACHE_DIR).glob("tiny-imagenet-*")) / "train_x.npy"
    cache.write_bytes(cache.read_bytes()[:100])
    assert load_dataset("tiny-imagenet", root=str(tmp_path)).train_images.shape == (30, 64, 64, 3)


@pytest.mark.parametrize("damage, words", [
    (lambda f: (f / "wnids.txt").unlink(), "Tiny-ImageNet not found under"),
    (lambda f: (f / "val" / "val_annotations.txt").unlink(), "val_annotations.txt is missing"),
    (lambda f: (f / "val" / "images" / "val_3.JPEG").unlink(), "val images listed in"),
    (lambda f: __import__("shutil").rmtree(f / "train" / WNIDS[1]), f"{WNIDS[1]}/images is missing"),
    (lambda f: (f / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn000\n"), "with a wnid of wnids.txt"),
    (lambda f: (f / "train" / WNIDS[2] / "images" / f"{WNIDS[2]}_3.JPEG").write_bytes(b"not a jpeg"),
     f"{WNIDS[2]}_3.JPEG"),
])
def test_damaged_copies_fail_naming_the_problem(tmp_path, damage, words):
    folder = write_tiny_imagenet(tmp_path)
    damage(folder)
    with pytest.raises(DatasetError) as err:
        load_dataset("tiny-imagenet", root=str(tmp_path))
    assert words in str(err.value)


def test_locate_and_default_folder(tmp_path):
    cfg = config.build(overrides=["data.name=tiny-imagenet", f"data.root={tmp_path}"])
    with pytest.raises(DatasetError, match="tiny-imagenet-200/wnids.txt"):
        locate_dataset(cfg.data)
    write_tiny_imagenet(tmp_path)
    assert locate_dataset(cfg.data).startswith("official layout in")
    from cnnvit.datasets import default_root

    assert default_root("tiny-imagenet", tmp_path) == tmp_path / "tiny-imagenet-200"
