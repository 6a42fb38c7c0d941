"""Data: CIFAR-10 pickles and image folders (fake ones made here), errors, subsets, synthetic set."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from cnnvit import config
from cnnvit.datasets import DatasetError, decode_images, load_dataset, stratified_indices
from cnnvit.datasets.cifar10 import CLASSES as CIFAR10_CLASSES
from cnnvit.datasets.synthetic import synthetic

NAMES = [f"kind_{i}" for i in range(10)]


# --------------------------------------------------------------------------- (a) pickles

def test_cifar_pickles_load(tmp_path, cifar_pickles):
    root = tmp_path / "c10"
    want = cifar_pickles(root / "cifar-10-batches-py", per_batch=20, n_test=30, label_names=NAMES)
    ds = load_dataset("cifar10", root=str(root))
    assert ds.name == "cifar10"
    assert ds.train_images.shape == (100, 32, 32, 3) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (30, 32, 32, 3) and ds.test_images.dtype == np.uint8
    assert ds.image_size == (32, 32)
    np.testing.assert_array_equal(ds.train_images, want["train_x"])
    np.testing.assert_array_equal(ds.test_images, want["test_x"])
    np.testing.assert_array_equal(ds.train_labels, want["train_y"])
    np.testing.assert_array_equal(ds.test_labels, want["test_y"])
    assert ds.train_labels.dtype == np.int64
    assert ds.classes == NAMES  # from batches.meta
    assert "pickle" in ds.source
    # per-channel stats of the training split, in [0, 1]
    np.testing.assert_allclose(ds.mean, want["train_x"].reshape(-1, 3).mean(0) / 255, atol=1e-6)
    np.testing.assert_allclose(ds.std, want["train_x"].reshape(-1, 3).std(0) / 255, atol=1e-6)


def test_cifar_pickle_pixel_order_is_hwc(tmp_path):
    """A CIFAR row is 1024 R values, then G, then B, each plane row-major: check one pixel."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        data = np.zeros((2, 3072), np.uint8)
        if i == 1:
            # image 1, row 2, column 5: R=11, G=22, B=33
            data[1, 0 * 1024 + 2 * 32 + 5] = 11
            data[1, 1 * 1024 + 2 * 32 + 5] = 22
            data[1, 2 * 1024 + 2 * 32 + 5] = 33
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps({"data": data, "labels": [3, 7]}))
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8),
                                                      "labels": [0]}))
    ds = load_dataset("cifar10", root=str(tmp_path))
    assert list(ds.train_images[1, 2, 5]) == [11, 22, 33]
    assert ds.train_images[1].sum() == 11 + 22 + 33  # nothing else lit
    assert ds.train_labels.tolist() == [3, 7] * 5
    assert ds.classes == CIFAR10_CLASSES  # no batches.meta: the standard names


# --------------------------------------------------------------------------- (b) image folders

def test_image_folder_loads(tmp_path, image_folder):
    want = image_folder(tmp_path, classes=("dog", "cat", "emu"), n_train=4, n_test=2)
    ds = load_dataset("cifar10", root=str(tmp_path))
    assert ds.classes == ["cat", "dog", "emu"]  # sorted folder names
    assert ds.train_images.shape == (12, 32, 32, 3) and ds.train_images.dtype == np.uint8
    assert ds.test_images.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(ds.train_images, want["train_x"])
    np.testing.assert_array_equal(ds.test_images, want["test_x"])
    assert ds.train_labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert ds.test_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert "image folder" in ds.source


def test_image_folder_known_pixel_and_grayscale(tmp_path, image_folder):
    from PIL import Image

    image_folder(tmp_path, classes=("a", "b"), n_train=2, n_test=1)
    img = np.zeros((32, 32, 3), np.uint8)
    img[3, 5] = (10, 20, 30)  # row 3, column 5
    Image.fromarray(img).save(tmp_path / "train" / "b" / "img_000.png")
    gray = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) % 256
    Image.fromarray(gray.astype(np.uint8), mode="L").save(tmp_path / "train" / "a" / "img_001.png")
    ds = load_dataset("cifar10", root=str(tmp_path))
    # order: a/img_000, a/img_001, b/img_000, b/img_001
    assert list(ds.train_images[2, 3, 5]) == [10, 20, 30]
    assert ds.train_images[2].sum() == 60
    g = ds.train_images[1]
    assert g.shape == (32, 32, 3)
    for c in range(3):
        np.testing.assert_array_equal(g[..., c], gray.astype(np.uint8))


def test_image_folder_under_cifar10_subfolder(tmp_path, image_folder):
    image_folder(tmp_path / "cifar10", classes=("x", "y"), n_train=2, n_test=1)
    ds = load_dataset("cifar10", root=str(tmp_path))
    assert len(ds.train_labels) == 4 and ds.classes == ["x", "y"]


def test_image_folder_size_mismatch_names_file(tmp_path, image_folder):
    from PIL import Image

    image_folder(tmp_path, classes=("a", "b"), n_train=2, n_test=1)
    odd = tmp_path / "test" / "b" / "img_000.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(odd)
    with pytest.raises(DatasetError, match="img_000.png"):
        load_dataset("cifar10", root=str(tmp_path))


# --------------------------------------------------------------------------- (c) detection

@pytest.mark.parametrize("layout", ["pickles_sub", "pickles_flat", "folders", "folders_sub"])
def test_format_detected_from_root(tmp_path, cifar_pickles, image_folder, layout):
    root = tmp_path / "data"
    if layout == "pickles_sub":
        cifar_pickles(root / "cifar-10-batches-py", per_batch=10, n_test=10)
    elif layout == "pickles_flat":
        cifar_pickles(root, per_batch=10, n_test=10)
    elif layout == "folders":
        image_folder(root, classes=("a", "b"), n_train=3, n_test=2)
    else:
        image_folder(root / "cifar10", classes=("a", "b"), n_train=3, n_test=2)
    ds = load_dataset("cifar10", root=str(root))
    if layout.startswith("pickles"):
        assert len(ds.train_labels) == 50 and len(ds.test_labels) == 10
        assert "pickle" in ds.source
    else:
        assert len(ds.train_labels) == 6 and len(ds.test_labels) == 4
        assert "image folder" in ds.source


def test_root_with_tilde_and_config_route(tmp_path, monkeypatch, cifar_pickles):
    monkeypatch.setenv("HOME", str(tmp_path))
    cifar_pickles(tmp_path / "stuff" / "cifar-10-batches-py", per_batch=10, n_test=10)
    cfg = config.build(overrides=["data.name=cifar10", "data.root=~/stuff", "device=cpu"])
    from cnnvit.datasets import dataset_from_config

    ds = dataset_from_config(cfg.data, cfg.seed)
    assert len(ds.train_labels) == 50


# --------------------------------------------------------------------------- (d, e) errors

def test_missing_dataset_message(tmp_path):
    where = tmp_path / "no_data_here"
    with pytest.raises(DatasetError) as exc:
        load_dataset("cifar10", root=str(where))
    msg = str(exc.value)
    assert str(where) in msg
    assert "data.download" in msg
    assert "data.root" in msg


def test_missing_dataset_default_root(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DatasetError) as exc:
        load_dataset("cifar10", root=None)
    assert str(tmp_path / ".cache" / "cnnvit-data" / "cifar10") in str(exc.value)


def test_download_path_fetches_then_loads(tmp_path, monkeypatch, cifar_pickles):
    """data.download=true fetches into root through cnnvit.datasets.fetch (faked here: no network; the
    download itself is tested against a local server in test_fetch.py)."""
    from cnnvit.datasets import fetch

    calls = []

    def fake_fetch_into(spec, folder, **kw):
        calls.append((spec.name, folder))
        cifar_pickles(folder / "cifar-10-batches-py", per_batch=10, n_test=10)

    monkeypatch.setattr(fetch, "fetch_into", fake_fetch_into)
    ds = load_dataset("cifar10", root=str(tmp_path / "dl"), download=True)
    assert calls == [("cifar10", tmp_path / "dl")]
    assert len(ds.train_labels) == 50
    ds = load_dataset("cifar10", root=str(tmp_path / "dl"), download=True)  # present: no fetch
    assert len(calls) == 1


def test_failed_download_names_root(tmp_path, monkeypatch):
    from cnnvit.datasets import fetch

    def offline(spec, folder, **kw):
        raise fetch.FetchError("could not reach https://example.org/x: network unreachable")

    monkeypatch.setattr(fetch, "fetch_into", offline)
    with pytest.raises(DatasetError) as exc:
        load_dataset("cifar10", root=str(tmp_path / "dl"), download=True)
    assert str(tmp_path / "dl") in str(exc.value) and "network unreachable" in str(exc.value)


def test_unknown_dataset_name():
    with pytest.raises(DatasetError, match="imagenet"):
        load_dataset("imagenet")


def test_corrupt_image_names_file(tmp_path, image_folder):
    image_folder(tmp_path, classes=("a", "b"), n_train=3, n_test=1)
    bad = tmp_path / "train" / "b" / "broken.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(DatasetError) as exc:
        load_dataset("cifar10", root=str(tmp_path))
    assert str(bad) in str(exc.value)


def test_decode_images_corrupt_file_direct(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match="x.png"):
        decode_images([bad])


def test_truncated_pickle_names_file(tmp_path, cifar_pickles):
    folder = tmp_path / "cifar-10-batches-py"
    cifar_pickles(folder, per_batch=10, n_test=10)
    victim = folder / "data_batch_3"
    blob = victim.read_bytes()
    victim.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DatasetError) as exc:
        load_dataset("cifar10", root=str(tmp_path))
    assert str(victim) in str(exc.value)


def test_missing_batch_names_file(tmp_path, cifar_pickles):
    folder = tmp_path / "cifar-10-batches-py"
    cifar_pickles(folder, per_batch=10, n_test=10)
    (folder / "data_batch_4").unlink()
    with pytest.raises(DatasetError) as exc:
        load_dataset("cifar10", root=str(tmp_path))
    assert str(folder / "data_batch_4") in str(exc.value)


def test_foreign_pickle_names_file(tmp_path, cifar_pickles):
    folder = tmp_path / "cifar-10-batches-py"
    cifar_pickles(folder, per_batch=10, n_test=10)
    (folder / "test_batch").write_bytes(pickle.dumps({"pixels": [1, 2, 3]}))
    with pytest.raises(DatasetError) as exc:
        load_dataset("cifar10", root=str(tmp_path))
    assert str(folder / "test_batch") in str(exc.value)


# --------------------------------------------------------------------------- (f) subsets

def test_stratified_exact_for_balanced_classes():
    labels = np.repeat(np.arange(10), 100)
    rng = np.random.default_rng(1)
    rng.shuffle(labels)
    idx = stratified_indices(labels, 250, seed=0)
    assert len(idx) == 250 and len(np.unique(idx)) == 250
    assert np.all(np.diff(idx) > 0)  # sorted, unique
    assert np.bincount(labels[idx], minlength=10).tolist() == [25] * 10


def test_stratified_keeps_proportions_unbalanced():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    idx = stratified_indices(labels, 50, seed=3)
    assert np.bincount(labels[idx]).tolist() == [30, 15, 5]
    # a size that does not divide: largest remainder, total exact, each within one of exact
    idx = stratified_indices(labels, 33, seed=3)
    counts = np.bincount(labels[idx], minlength=3)
    assert counts.sum() == 33
    exact = np.array([60, 30, 10]) * 33 / 100
    assert np.all(np.abs(counts - exact) < 1)


def test_stratified_reproducible_and_seeded():
    labels = np.repeat(np.arange(5), 40)
    a = stratified_indices(labels, 50, seed=7)
    b = stratified_indices(labels, 50, seed=7)
    c = stratified_indices(labels, 50, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.bincount(labels[c]).tolist() == [10] * 5


def test_stratified_full_size_returns_all():
    labels = np.arange(20) % 4
    np.testing.assert_array_equal(stratified_indices(labels, 20, 0), np.arange(20))
    np.testing.assert_array_equal(stratified_indices(labels, 50, 0), np.arange(20))


def test_synthetic_subsets_through_load_dataset():
    full = load_dataset("synthetic", synthetic_train=400, synthetic_test=200)
    ds = load_dataset("synthetic", synthetic_train=400, synthetic_test=200, train_subset=100,
                      test_subset=50, seed=4)
    assert np.bincount(ds.train_labels, minlength=10).tolist() == [10] * 10
    assert np.bincount(ds.test_labels, minlength=10).tolist() == [5] * 10
    # the subset is made of images of the full set, with their own labels
    keep = stratified_indices(full.train_labels, 100, 4)
    np.testing.assert_array_equal(ds.train_images, full.train_images[keep])
    np.testing.assert_array_equal(ds.train_labels, full.train_labels[keep])
    other = load_dataset("synthetic", synthetic_train=400, synthetic_test=200, train_subset=100,
                         seed=5)
    assert not np.array_equal(other.train_images, ds.train_images)


def test_cifar_subsets_are_stratified(tmp_path, cifar_pickles):
    want = cifar_pickles(tmp_path / "cifar-10-batches-py", per_batch=40, n_test=60)
    ds = load_dataset("cifar10", root=str(tmp_path), train_subset=50, test_subset=30, seed=2)
    assert np.bincount(ds.train_labels, minlength=10).tolist() == [5] * 10
    assert np.bincount(ds.test_labels, minlength=10).tolist() == [3] * 10
    keep = stratified_indices(want["train_y"], 50, 2)
    np.testing.assert_array_equal(ds.train_images, want["train_x"][keep])


def test_image_folder_subsets_are_stratified(tmp_path, image_folder):
    want = image_folder(tmp_path, classes=("a", "b", "c"), n_train=6, n_test=4)
    ds = load_dataset("cifar10", root=str(tmp_path), train_subset=9, test_subset=6, seed=1)
    assert np.bincount(ds.train_labels).tolist() == [3, 3, 3]
    assert np.bincount(ds.test_labels).tolist() == [2, 2, 2]
    keep = stratified_indices(want["train_y"], 9, 1)
    np.testing.assert_array_equal(ds.train_images, want["train_x"][keep])


# --------------------------------------------------------------------------- (g) synthetic

def test_synthetic_is_deterministic():
    a = synthetic(200, 50)
    b = synthetic(200, 50)
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.mean == b.mean and a.std == b.std
    assert a.train_images.shape == (200, 32, 32, 3) and a.train_images.dtype == np.uint8
    assert np.bincount(a.train_labels).tolist() == [20] * 10
    assert len(a.classes) == 10
    # the run seed does not change the generated set
    c = load_dataset("synthetic", synthetic_train=200, synthetic_test=50, seed=99)
    np.testing.assert_array_equal(a.train_images, c.train_images)
    # train and test are different draws
    assert not np.array_equal(a.train_images[:50], a.test_images)


def test_describe_lists_counts_and_size():
    text = synthetic(200, 50).describe()
    assert "32x32x3" in text
    assert "train: 200 images" in text and "test: 50 images" in text
    assert "class_3" in text


def test_synthetic_is_learnable(tmp_path, train_mod):
    """The library's own loop gets a tiny CNN far above chance (10%) in a few epochs."""
    cfg = config.build({"data": {"name": "synthetic", "synthetic_train": 500, "synthetic_test": 200},
                        "model": {"name": "test_resnet_cifar"},
                        "train": {"epochs": 3, "batch_size": 32},
                        "optim": {"name": "adam", "lr": 3e-3}, "sched": {"name": "constant"},
                        "device": "cpu"})
    out = train_mod.train(cfg, tmp_path / "run", progress=False)
    acc = json.loads((out / "metrics.json").read_text())["test_accuracy"]
    assert acc > 0.5, acc  # ~0.8-0.9 observed


def test_locate_dataset_checks_without_reading(tmp_path, cifar_pickles, image_folder):
    from cnnvit.datasets import default_root, locate_dataset

    cfg = config.build(overrides=["data.name=cifar10", f"data.root={tmp_path / 'none'}"])
    with pytest.raises(DatasetError, match=f"CIFAR-10 not found under {tmp_path / 'none'}: looked for"):
        locate_dataset(cfg.data)
    cfg.data.download = True
    assert locate_dataset(cfg.data) == f"to be downloaded into {tmp_path / 'none'}"
    image_folder(tmp_path / "folder")
    cfg.data.root, cfg.data.download = str(tmp_path / "folder"), False
    assert locate_dataset(cfg.data) == f"folder format in {tmp_path / 'folder'}"
    assert locate_dataset(config.build().data) == "generated synthetic set"
    assert default_root("cifar10", tmp_path) == tmp_path / "cifar10"
