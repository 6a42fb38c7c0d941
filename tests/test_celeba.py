"""CelebA: the attribute file, the image folder, the tasks and the 8:1:1 split, on generated files."""
from __future__ import annotations

import numpy as np
import pytest

from cnnvit.datasets import celeba
from cnnvit import config as config_mod
from cnnvit.datasets import DatasetError, dataset_from_config

from helpers import NAMES, write_celeba

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
    for key in ("train.mixup=0.2", "train.label_smoothing=0.1", "train.balanced_sampling=true"):
        with pytest.raises(config_mod.ConfigError, match="not with data.task=multilabel"):
            config_mod.build(overrides=["data.name=celeba", "data.task=multilabel", key])
    with pytest.raises(config_mod.ConfigError, match="choose one"):
        config_mod.build(overrides=["train.balanced_sampling=true", "train.class_weights=true"])
    with pytest.raises(config_mod.ConfigError, match="val_every_steps: needs"):
        config_mod.build(overrides=["train.val_every_steps=10"])  # synthetic: no validation split
    config_mod.build(overrides=["data.name=celeba", "train.val_every_steps=10"])
    with pytest.raises(config_mod.ConfigError, match="already holds out"):
        config_mod.build(overrides=["data.name=celeba", "data.val_fraction=0.1"])
    from cnnvit.training import check_run_inputs

    with pytest.raises(config_mod.ConfigError, match="set data.image_size=32"):  # CelebA's size varies
        check_run_inputs(config_mod.build(overrides=["data.name=celeba", "model.name=test_vit_cifar"]))
    check_run_inputs(config_mod.build(overrides=["data.name=celeba", "model.name=naive_cnn"]))


def test_generated_set_has_the_official_names_and_celeba_like_hair_shares(tmp_path):
    values = celeba.write_generated(tmp_path, 400, seed=2)
    attrs = celeba.parse_attributes(tmp_path / celeba.ATTR_FILE)
    assert attrs.names == list(celeba.ATTRIBUTE_NAMES) and len(celeba.ATTRIBUTE_NAMES) == 40
    np.testing.assert_array_equal(attrs.values, values)
    hair, _ = celeba.task_labels(attrs, "hair5")
    counts = np.bincount(hair, minlength=5)
    assert counts[0] > counts[3] and counts.min() > 0  # black commoner than gray; every class present


def _celeba_run(tmp_path, task, *extra):
    from cnnvit.training import train

    celeba.write_generated(tmp_path / "celeba", 300, seed=1, size=(24, 28))
    cfg = config_mod.build(overrides=["data.name=celeba", f"data.root={tmp_path}", f"data.task={task}",
                                      "model.name=naive_cnn", "train.epochs=3", "train.batch_size=30",
                                      "optim.lr=3e-3", "device=cpu", "train.eval_batch_size=100", *extra])
    return train(cfg, tmp_path / "run", progress=False)


def test_multilabel_run_trains_one_sigmoid_per_attribute(tmp_path):
    import json

    out = _celeba_run(tmp_path, "multilabel", "data.attributes=Eyeglasses,Smiling,Black_Hair,Male",
                      "train.val_every_steps=4", "train.class_weights=true", "train.epochs=6")
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "multilabel" and m["test_top5"] is None
    assert set(m["test"]["per_label"]) == {"Eyeglasses", "Smiling", "Black_Hair", "Male"}
    assert m["test"]["accuracy"] == pytest.approx(m["test"]["mean_accuracy"])
    assert m["test"]["accuracy"] > m["majority_baseline"] + 0.04  # the cues are learnt in six epochs
    pred = np.load(out / "predictions.npz")
    assert pred["logits"].shape == (30, 4) and set(np.unique(pred["predictions"])) <= {0, 1}
    val_steps = (out / "val_steps.csv").read_text().splitlines()
    assert val_steps[0] == "step,epoch,val_loss,val_accuracy" and len(val_steps) == 1 + 12  # 8 steps x 6 / 4
    split = (out / "split.csv").read_text().splitlines()
    assert split[0] == "file,split" and len(split) == 301
    assert {ln.split(",")[1] for ln in split[1:]} == {"train", "val", "test"}
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_hair5_run_with_balanced_sampling_records_class_counts(tmp_path):
    import json

    out = _celeba_run(tmp_path, "hair5", "train.balanced_sampling=true", "train.keep_epoch_weights=true")
    assert sorted(p.name for p in (out / "epochs").iterdir()) == ["001.pt", "002.pt", "003.pt"]
    data = json.loads((out / "data.json").read_text())
    assert sum(data["class_counts"]["train"]) == 240 and len(data["class_counts"]["test"]) == 5
    m = json.loads((out / "metrics.json").read_text())
    assert m["task"] == "single-label" and 0 < m["majority_baseline"] < 1
    assert len(m["test"]["confusion_matrix"]) == 5


def test_each_task_has_its_head_and_loss():
    import math

    import torch

    from cnnvit.training.losses import class_weights, task_accuracy, task_loss

    # single-label (binary, hair5): softmax cross-entropy over C logits
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0])
    expected = (-math.log(math.e ** 2 / (math.e ** 2 + 1)) - math.log(1 / (1 + math.e))) / 2
    assert task_loss(logits, y).item() == pytest.approx(expected)
    assert task_accuracy(logits, y) == pytest.approx(0.5)
    # multi-label: one sigmoid per label, binary cross-entropy averaged over images and labels
    labels = torch.tensor([[1.0, 0.0]])
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = 0.5 and 0.75
    assert task_loss(logits, labels).item() == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert task_accuracy(logits, labels) == pytest.approx(0.5)  # label 1 predicted present: wrong
    # pos_weight: negatives / positives per label, multiplying the positive term
    matrix = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], dtype=np.float32)
    np.testing.assert_allclose(class_weights(matrix, 2), [3.0, 3.0])
    weighted = task_loss(logits, labels, torch.tensor([3.0, 3.0])).item()
    assert weighted == pytest.approx((3 * math.log(2) + math.log(4)) / 2)
    # the head has one output per class, or per attribute
    from cnnvit.models import create_model

    assert create_model("naive_cnn", 40)(torch.zeros(2, 3, 64, 64)).shape == (2, 40)


def test_every_task_uses_the_same_split(tmp_path):
    write_celeba(tmp_path, n=80)
    splits = {}
    for task in ("binary", "hair5", "multilabel"):
        cfg = config_mod.build(overrides=["data.name=celeba", f"data.root={tmp_path}", f"data.task={task}",
                                          "data.attribute=Smiling"])
        splits[task] = dataset_from_config(cfg.data, cfg.seed).split_files
    assert splits["binary"] == splits["hair5"] == splits["multilabel"]


def test_unknown_attribute_is_refused_before_images_are_read(tmp_path):
    from cnnvit.datasets import locate_dataset

    write_celeba(tmp_path)
    for key in ("data.attribute=Blonde_Hair", "data.attributes=Smiling,Blonde_Hair"):
        task = "binary" if "attribute=" in key else "multilabel"
        cfg = config_mod.build(overrides=["data.name=celeba", f"data.root={tmp_path}", f"data.task={task}", key])
        with pytest.raises(DatasetError, match="no attribute 'Blonde_Hair'; did you mean 'Blond_Hair'"):
            locate_dataset(cfg.data)


def test_preprocessing_preview_of_a_multilabel_task(tmp_path):
    from cnnvit.studies import preview_preprocessing

    write_celeba(tmp_path / "celeba", n=80)
    cfg = config_mod.build(overrides=["data.name=celeba", f"data.root={tmp_path}", "data.task=multilabel",
                                      "data.image_size=32", "data.flip=true"])
    before, after, names = preview_preprocessing(cfg, n=4)
    assert before.shape[0] == after.shape[0] == len(names) == 4 and after.shape[1:] == (32, 32, 3)
