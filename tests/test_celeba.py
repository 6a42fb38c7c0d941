"""CelebA: the attribute file, the image folder, the tasks and the 8:1:1 split, on generated files."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnvit import celeba
from cnnvit import config as config_mod
from cnnvit.data import DatasetError, dataset_from_config

NAMES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Gray_Hair", "Smiling"]


def write_celeba(root, n: int = 60, seed: int = 0, newline: str = "\n", folder: str = "img_align_celeba_17x21",
                 size=(17, 21)) -> np.ndarray:
    """The official layout with ``n`` random images: returns the 0/1 attribute matrix written."""
    rng = np.random.default_rng(seed)
    values = (rng.random((n, len(NAMES))) < 0.3).astype(np.uint8)
    (root / folder).mkdir(parents=True)
    rows = [str(n), " ".join(NAMES)]
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / folder / name)
        rows.append(name + " " + " ".join(f"{1 if v else -1:2d}" for v in values[i]))
    (root / celeba.ATTR_FILE).write_bytes(newline.join(rows).encode() + newline.encode())
    return values


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_official_attribute_file_parses(tmp_path, newline):
    values = write_celeba(tmp_path, newline=newline)
    attrs = celeba.parse_attributes(tmp_path / celeba.ATTR_FILE)
    assert attrs.names == NAMES and attrs.files[0] == "000001.jpg" and len(attrs.files) == 60
    np.testing.assert_array_equal(attrs.values, values)


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[:-1], "announces 60 images but 59"),
    (lambda lines: lines[:5] + [lines[5].replace("-1", "0", 1)] + lines[6:], ":6: expected"),
    (lambda lines: lines[:1], "count line and a header"),
])
def test_damaged_attribute_files_name_the_problem(tmp_path, edit, message):
    write_celeba(tmp_path)
    path = tmp_path / celeba.ATTR_FILE
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(DatasetError, match=message):
        celeba.parse_attributes(path)


def test_hair_colour_is_one_of_four_or_others():
    attrs = celeba.Attributes(NAMES, ["a", "b", "c", "d"], np.array([
        [1, 0, 0, 0, 0, 1],  # black only
        [0, 0, 0, 0, 1, 0],  # gray only
        [1, 1, 0, 0, 0, 0],  # two colours: others
        [0, 0, 0, 1, 0, 0],  # none: others
    ], dtype=np.uint8))
    labels, classes = celeba.task_labels(attrs, "hair5")
    assert classes == ["Black", "Blond", "Brown", "Gray", "Others"]
    assert labels.tolist() == [0, 3, 4, 4]
    binary, names = celeba.task_labels(attrs, "binary", "Eyeglasses")
    assert binary.tolist() == [0, 0, 0, 1] and names == ["no Eyeglasses", "Eyeglasses"]
    multi, cols = celeba.task_labels(attrs, "multilabel", attributes="Smiling, Gray_Hair")
    assert cols == ["Smiling", "Gray_Hair"] and multi.tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]
    with pytest.raises(DatasetError, match="did you mean 'Eyeglasses'"):
        celeba.task_labels(attrs, "binary", "Eyeglass")


def test_split_is_811_stratified_disjoint_and_reproducible():
    labels = np.repeat(np.arange(5), [400, 300, 200, 80, 20])
    train, val, test = celeba.split_811(labels, seed=3)
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    for part in (val, test):  # class shares kept to within one image
        np.testing.assert_allclose(np.bincount(labels[part], minlength=5), [40, 30, 20, 8, 2], atol=1)
    again = celeba.split_811(labels, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(celeba.split_811(labels, seed=4)[2], test)


def test_loader_finds_the_image_folder_and_keeps_the_image_size(tmp_path):
    write_celeba(tmp_path / "celeba")
    cfg = config_mod.build(overrides=["data.name=celeba", f"data.root={tmp_path}", "data.task=binary",
                                      "data.attribute=Smiling"])
    ds = dataset_from_config(cfg.data, cfg.seed)
    assert ds.image_size == (21, 17) and ds.classes == ["no Smiling", "Smiling"]
    assert (len(ds.train_labels), len(ds.val_labels), len(ds.test_labels)) == (48, 6, 6)
    assert "img_align_celeba_17x21" in ds.source


def test_missing_images_and_data_fail_naming_what_was_searched(tmp_path):
    write_celeba(tmp_path)
    (tmp_path / "img_align_celeba_17x21" / "000060.jpg").unlink()
    with pytest.raises(DatasetError, match="no folder in .* holds 000001.jpg and 000060.jpg"):
        celeba.find_image_folder(tmp_path, celeba.parse_attributes(tmp_path / celeba.ATTR_FILE).files)
    cfg = config_mod.build(overrides=["data.name=celeba", f"data.root={tmp_path / 'nowhere'}"])
    with pytest.raises(DatasetError, match="CelebA not found under"):
        dataset_from_config(cfg.data, 0)


def test_celeba_settings_that_cannot_work_are_refused():
    with pytest.raises(config_mod.ConfigError, match="multilabel is not supported"):
        config_mod.build(overrides=["data.name=celeba", "data.task=multilabel"])
    with pytest.raises(config_mod.ConfigError, match="already holds out"):
        config_mod.build(overrides=["data.name=celeba", "data.val_fraction=0.1"])
    from cnnvit.train import check_run_inputs

    with pytest.raises(config_mod.ConfigError, match="set data.image_size=32"):  # CelebA's size varies
        check_run_inputs(config_mod.build(overrides=["data.name=celeba", "model.name=test_vit_cifar"]))
    check_run_inputs(config_mod.build(overrides=["data.name=celeba", "model.name=naive_cnn"]))
