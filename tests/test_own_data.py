"""A data set of one's own (``data.name=imagefolder``), CIFAR-100, and the decoded-data cache
they share with Tiny-ImageNet and CelebA: all on files the tests write themselves."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from cnnvit import config as config_mod
from cnnvit.datasets import DatasetError, cache, celeba, cifar100, dataset_from_config, load_dataset, locate_dataset
from cnnvit.datasets.cache import CACHE_DIR
from cnnvit.errors import ConfigError

COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "fox": (40, 40, 200)}


def write_tree(folder, per_class=6, size=(20, 16), classes=COLOURS, fmt="png", start=0):
    """``folder/<class>/<i>.<fmt>``: each class a solid colour (distinct, so labels can be checked
    from the pixels), sizes given as (width, height)."""
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            Image.new("RGB", size, classes[c]).save(folder / c / f"{i:03d}.{fmt}")
    return folder


def cfg_for(root, *overrides):
    return config_mod.build(overrides=["data.name=imagefolder", f"data.root={root}", *overrides])


def labels_match_pixels(images, labels, classes):
    """Every image's colour is its class's: images and labels did not come apart."""
    for img, y in zip(images, labels):
        assert tuple(int(v) for v in img[0, 0]) == COLOURS[classes[y]]


# ------------------------------------------------------------------------------- image folders

def test_train_and_test_trees(tmp_path):
    write_tree(tmp_path / "train", per_class=6)
    write_tree(tmp_path / "test", per_class=2)
    ds = dataset_from_config(cfg_for(tmp_path).data, seed=0)
    assert ds.classes == ["cat", "dog", "fox"]
    assert ds.train_images.shape == (18, 16, 20, 3) and ds.test_images.shape == (6, 16, 20, 3)
    assert np.bincount(ds.train_labels).tolist() == [6, 6, 6] and len(ds.val_labels) == 0
    labels_match_pixels(ds.train_images, ds.train_labels, ds.classes)
    labels_match_pixels(ds.test_images, ds.test_labels, ds.classes)
    assert "image folders in" in locate_dataset(cfg_for(tmp_path).data)


def test_val_tree_is_the_validation_split_beside_test_and_the_test_split_alone(tmp_path):
    write_tree(tmp_path / "train", per_class=4)
    write_tree(tmp_path / "val", per_class=2, classes={"cat": COLOURS["cat"], "dog": COLOURS["dog"]})
    only_val = dataset_from_config(cfg_for(tmp_path).data, seed=0)
    assert len(only_val.test_labels) == 4 and len(only_val.val_labels) == 0, "val/ alone is what is tested"
    write_tree(tmp_path / "test", per_class=1)
    cfg = cfg_for(tmp_path, "train.early_stop_patience=2")  # val/ counts as a validation split
    ds = dataset_from_config(cfg.data, seed=0)
    assert (len(ds.train_labels), len(ds.val_labels), len(ds.test_labels)) == (12, 4, 3)
    labels_match_pixels(ds.val_images, ds.val_labels, ds.classes)
    with pytest.raises(ConfigError, match="val/ is the validation split already"):
        cfg_for(tmp_path, "data.val_fraction=0.2")


def test_one_tree_is_split_stratified_by_the_test_share_and_validation_share(tmp_path):
    write_tree(tmp_path, per_class=10)
    cfg = cfg_for(tmp_path, "data.test_fraction=0.3", "data.val_fraction=0.29")
    ds = dataset_from_config(cfg.data, seed=0)
    assert np.bincount(ds.test_labels).tolist() == [3, 3, 3]
    assert np.bincount(ds.val_labels).tolist() == [2, 2, 2] and np.bincount(ds.train_labels).tolist() == [5, 5, 5]
    for images, labels in ((ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)):
        labels_match_pixels(images, labels, ds.classes)
    other_seed = dataset_from_config(cfg.data, seed=1)
    assert np.array_equal(other_seed.test_images, ds.test_images), "the test split is the same for every seed"
    assert "one tree in" in locate_dataset(cfg.data)


def test_subsets_and_first_classes(tmp_path):
    write_tree(tmp_path / "train", per_class=6)
    write_tree(tmp_path / "test", per_class=4)
    cfg = cfg_for(tmp_path, "data.classes=2", "data.train_subset=6", "data.test_subset=4")
    ds = dataset_from_config(cfg.data, seed=0)
    assert ds.classes == ["cat", "dog"]
    assert np.bincount(ds.train_labels).tolist() == [3, 3] and np.bincount(ds.test_labels).tolist() == [2, 2]
    labels_match_pixels(ds.train_images, ds.train_labels, ds.classes)


def test_any_size_resized_once_at_decode(tmp_path):
    write_tree(tmp_path / "train", per_class=3, size=(40, 30))
    write_tree(tmp_path / "train", per_class=3, size=(25, 50), start=3)  # another size
    write_tree(tmp_path / "test", per_class=1, size=(31, 17), fmt="jpg")
    with pytest.raises(DatasetError, match="set data.decode_size=N"):
        locate_dataset(cfg_for(tmp_path).data)
    cfg = cfg_for(tmp_path, "data.decode_size=24")
    ds = dataset_from_config(cfg.data, seed=0)
    assert ds.train_images.shape == (18, 24, 24, 3) and ds.test_images.shape == (3, 24, 24, 3)
    assert np.abs(ds.test_images[:, 12, 12].astype(int) - [COLOURS[c] for c in ds.classes]).max() <= 8


def test_grayscale_and_palette_images_become_rgb(tmp_path):
    write_tree(tmp_path / "train", per_class=2)
    Image.new("L", (20, 16), 77).save(tmp_path / "train" / "cat" / "gray.png")
    Image.new("P", (20, 16), 3).save(tmp_path / "train" / "dog" / "palette.gif")
    write_tree(tmp_path / "test", per_class=1)
    ds = dataset_from_config(cfg_for(tmp_path).data, seed=0)
    assert ds.train_images.shape == (8, 16, 20, 3)


def test_every_corrupt_file_is_named_and_nothing_is_cached(tmp_path):
    write_tree(tmp_path / "train", per_class=3)
    write_tree(tmp_path / "test", per_class=1)
    (tmp_path / "train" / "dog" / "001.png").write_bytes(b"not a png")
    (tmp_path / "train" / "fox" / "002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DatasetError) as err:
        dataset_from_config(cfg_for(tmp_path).data, seed=0)
    assert "2 unreadable image(s)" in str(err.value)
    assert "dog/001.png" in str(err.value) and "fox/002.png" in str(err.value)
    assert not list((tmp_path / CACHE_DIR).glob("imagefolder-*")), "no cache of a failed decode"


@pytest.mark.parametrize("make, words", [
    (lambda r: None, "does not exist"),
    (lambda r: (r / "test" / "cat").mkdir(parents=True), "but no train/"),
    (lambda r: r.mkdir(), "no class folders in"),
    (lambda r: (write_tree(r / "train"), (r / "train" / "emu").mkdir()), "without images in"),
    (lambda r: (write_tree(r / "train"), write_tree(r / "test", classes={"emu": (1, 2, 3)})),
     "class folder(s) that train/ lacks: emu"),
])
def test_bad_layouts_fail_before_decoding_naming_the_problem(tmp_path, make, words):
    root = tmp_path / "mine"
    make(root)
    with pytest.raises(DatasetError, match=words.replace("(", r"\(").replace(")", r"\)")):
        locate_dataset(cfg_for(root).data)


def test_imagefolder_config_rules(tmp_path):
    with pytest.raises(ConfigError, match="nothing to download"):
        cfg_for(tmp_path, "data.download=true")
    with pytest.raises(ConfigError, match="data.test_fraction: must lie in"):
        cfg_for(tmp_path, "data.test_fraction=1.0")
    write_tree(tmp_path / "train")
    write_tree(tmp_path / "test", per_class=1)
    with pytest.raises(DatasetError, match="data.classes: 5 asked for, but .* has 3 classes"):
        locate_dataset(cfg_for(tmp_path, "data.classes=5").data)


def test_a_study_parameter_file_can_use_an_image_folder(tmp_path, train_mod):
    from cnnvit.studies.study import load_study

    write_tree(tmp_path / "mine" / "train", per_class=8)
    write_tree(tmp_path / "mine" / "test", per_class=2)
    params = tmp_path / "own.yaml"
    params.write_text(f"""study: own_data
profile: smoke
title: My own images
base:
  data: {{name: imagefolder, root: {tmp_path / 'mine'}, decode_size: 16}}
  model: {{name: test_resnet_cifar}}
  train: {{epochs: 1, batch_size: 8}}
runs:
  mine: {{}}
""")
    study = load_study(params, out_dir=tmp_path / "out")
    spec = study.runs["mine"]
    assert spec.config.data.name == "imagefolder" and spec.config.data.decode_size == 16
    assert "image folders in" in locate_dataset(spec.config.data)
    run = train_mod.train(spec.config, tmp_path / "run", progress=False)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"]["name"] == "imagefolder" and metrics["dataset"]["n_train"] == 24
    assert "image folders in" in metrics["dataset"]["source"]


# ------------------------------------------------------------------------------- CIFAR-100

def test_cifar100_fine_and_coarse_labels(tmp_path):
    cifar100.write_generated(tmp_path, 300, n_test=100)
    fine = load_dataset("cifar100", root=str(tmp_path))
    assert len(fine.classes) == 100 and fine.classes[7] == "fine_07"
    assert fine.train_images.shape == (300, 32, 32, 3) and len(fine.test_labels) == 100
    coarse = load_dataset("cifar100", root=str(tmp_path), coarse_labels=True)
    assert len(coarse.classes) == 20 and coarse.classes[3] == "coarse_03"
    assert np.array_equal(coarse.train_labels, fine.train_labels // 5), "the coarse labels of the same images"
    assert np.array_equal(coarse.train_images, fine.train_images)
    # the generated tint depends on the fine class: pixels follow their labels
    red = fine.train_images[..., 0].reshape(300, -1).mean(1)
    assert np.corrcoef(red, fine.train_labels)[0, 1] > 0.9
    assert "coarse labels" in coarse.source


def test_cifar100_subsets_and_config(tmp_path):
    cifar100.write_generated(tmp_path / "c", 400, n_test=200)
    cfg = config_mod.build(overrides=["data.name=cifar100", f"data.root={tmp_path / 'c'}", "data.classes=10",
                                      "data.train_subset=20", "data.coarse_labels=false"])
    ds = dataset_from_config(cfg.data, 0)
    assert np.bincount(ds.train_labels).tolist() == [2] * 10 and ds.classes == [f"fine_{i:02d}" for i in range(10)]
    assert "official layout in" in locate_dataset(cfg.data)
    with pytest.raises(ConfigError, match="data.coarse_labels: only CIFAR-100"):
        config_mod.build(overrides=["data.name=cifar10", "data.coarse_labels=true"])
    with pytest.raises(DatasetError, match="CIFAR-100 not found under"):
        locate_dataset(config_mod.build(overrides=["data.name=cifar100", f"data.root={tmp_path / 'none'}"]).data)


def test_cifar100_corrupt_pickle_is_named(tmp_path):
    folder = cifar100.write_generated(tmp_path, 100)
    (folder / "test").write_bytes((folder / "test").read_bytes()[:500])
    with pytest.raises(DatasetError, match="CIFAR-100 batch file unreadable .*cifar-100-python/test"):
        load_dataset("cifar100", root=str(tmp_path))


# ------------------------------------------------------------------------------- the decoded cache

def _no_decoding(*a, **k):
    raise AssertionError("decoded although the cache is valid")


def test_image_folder_cache_is_reused_then_refreshed_by_a_changed_file(tmp_path, monkeypatch):
    write_tree(tmp_path / "train", per_class=4)
    write_tree(tmp_path / "test", per_class=2)
    cfg = cfg_for(tmp_path)
    first = dataset_from_config(cfg.data, 0)
    caches = list((tmp_path / CACHE_DIR).glob("imagefolder-*"))
    assert len(caches) == 1 and (caches[0] / "complete").exists()
    assert first.source == f"image folders in {tmp_path}, decoded into cache {caches[0]}"

    monkeypatch.setattr(cache, "decode_into", _no_decoding)
    again = dataset_from_config(cfg.data, 0)
    assert np.array_equal(again.train_images, first.train_images) and again.source == f"cache {caches[0]}"
    resized = cfg_for(tmp_path, "data.decode_size=8")
    with pytest.raises(AssertionError, match="decoded although"):  # another decode size: another cache
        dataset_from_config(resized.data, 0)
    monkeypatch.undo()

    img = tmp_path / "train" / "cat" / "000.png"
    Image.new("RGB", (20, 16), (255, 255, 255)).save(img)
    os.utime(img, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = dataset_from_config(cfg.data, 0)
    assert changed.train_images[0].min() == 255, "the changed file is decoded again"
    now = list((tmp_path / CACHE_DIR).glob("imagefolder-*"))
    assert len(now) == 1 and now != caches, "the stale cache is replaced, not kept beside"


def test_read_only_data_folder_caches_under_the_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    data = tmp_path / "ro"
    write_tree(data / "train", per_class=2)
    write_tree(data / "test", per_class=1)
    (data / CACHE_DIR).write_text("a file where the cache folder would go")  # not writable as a folder
    ds = dataset_from_config(cfg_for(data).data, 0)
    assert str(tmp_path / "home") in ds.source and len(ds.train_labels) == 6
    monkeypatch.setattr(cache, "decode_into", _no_decoding)
    assert np.array_equal(dataset_from_config(cfg_for(data).data, 0).train_images, ds.train_images)


def test_truncated_cache_is_decoded_again(tmp_path):
    write_tree(tmp_path / "train", per_class=2)
    write_tree(tmp_path / "test", per_class=1)
    first = dataset_from_config(cfg_for(tmp_path).data, 0)
    npy = next((tmp_path / CACHE_DIR).glob("imagefolder-*")) / "images.npy"
    npy.write_bytes(npy.read_bytes()[:100])
    assert np.array_equal(dataset_from_config(cfg_for(tmp_path).data, 0).train_images, first.train_images)


def test_celeba_decodes_once_into_the_cache_and_honours_decode_size(tmp_path, monkeypatch):
    celeba.write_generated(tmp_path, n=40, size=(17, 21))
    first = load_dataset("celeba", root=str(tmp_path), attribute="Eyeglasses")
    assert first.train_images.shape[1:] == (21, 17, 3) and "cache" in first.source
    monkeypatch.setattr(cache, "decode_into", _no_decoding)
    hair = load_dataset("celeba", root=str(tmp_path), task="hair5")  # another task: the same cache
    assert np.array_equal(hair.test_images, first.test_images), "one split, one cache for every task"
    monkeypatch.undo()
    small = load_dataset("celeba", root=str(tmp_path), decode_size=12)
    assert small.train_images.shape[1:] == (12, 12, 3)
    assert len(list((tmp_path / CACHE_DIR).glob("celeba-*"))) == 1, "a new decode size replaces the cache"
    cfg = config_mod.build(overrides=["data.name=celeba", f"data.root={tmp_path}", "data.decode_size=12"])
    from cnnvit.datasets import get_dataset

    assert get_dataset("celeba").image_side(cfg.data) == 12


def test_cache_is_filled_by_one_process_and_renamed_into_place(tmp_path):
    """Two fills racing for one cache: each writes its own temporary folder; the second rename
    fails and that process reads the first's complete cache."""
    calls = []

    def fill(into):
        calls.append(into)
        np.save(into / "x.npy", np.arange(5))
        if len(calls) == 1:  # while the first fill runs, a second process completes the cache
            inner = cache.cached_arrays([tmp_path], "t", "k", ("x",), fill, "test")
            assert inner.arrays["x"].tolist() == [0, 1, 2, 3, 4] and inner.filled

    found = cache.cached_arrays([tmp_path], "t", "k", ("x",), fill, "test")
    assert found.arrays["x"].tolist() == [0, 1, 2, 3, 4] and found.folder == tmp_path / "t-k"
    assert len(calls) == 2 and all(c.name.startswith(".t-k.") for c in calls)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t-k"], "no temporary folder is left behind"
