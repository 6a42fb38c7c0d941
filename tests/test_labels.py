"""Label meaning, checked image by image.

Every image written here carries its own identity in its pixels, so after loading, splitting and
subsetting each image's label can be compared with what the files say about that very image. A
swapped class, labels shuffled apart from their images, a wrong attribute column or a split.csv
naming the wrong files then fails here, naming the image, instead of only lowering an accuracy.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pytest
from PIL import Image

from cnnvit import config as config_mod
from cnnvit.datasets import Dataset, DatasetError, dataset_from_config

# torchvision's CIFAR-10 order (written out, not imported: a changed library list must fail here)
TORCHVISION_CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load(name: str, root: Path, *overrides: str, seed: Optional[int] = None) -> Dataset:
    """The data set as a run loads it: config overrides, then ``dataset_from_config``."""
    cfg = config_mod.build(overrides=[f"data.name={name}", f"data.root={root}", *overrides])
    return dataset_from_config(cfg.data, cfg.seed if seed is None else seed)


def labelled(ds: Dataset) -> Iterator[tuple[str, int, np.ndarray, object]]:
    """(split, position, image, label) for every image of the train, val and test splits."""
    for split, x, y in (("train", ds.train_images, ds.train_labels), ("val", ds.val_images, ds.val_labels),
                        ("test", ds.test_images, ds.test_labels)):
        assert len(x) == len(y), f"{split}: {len(x)} images but {len(y)} labels"
        for j in range(len(y)):
            yield split, j, x[j], y[j]


def report(wrong: list[str]) -> str:
    return f"{len(wrong)} images carry a label that is not theirs, e.g.:\n  " + "\n  ".join(wrong[:6])


# --------------------------------------------------------------------------- exact identity stamp
# PNG and CIFAR pickles are lossless: pixel (0, 0) holds the identity, a marker in blue says
# that it is one (a pixel-order bug then fails loudly instead of decoding a wrong identity)

MARK = 0xA5


def stamp(img: np.ndarray, ident: int) -> np.ndarray:
    """Write ``ident`` (< 65536) into pixel (0, 0): red, green = high, low byte; blue = marker."""
    img[0, 0] = (ident >> 8, ident & 0xFF, MARK)
    return img


def ident_of(img: np.ndarray) -> int:
    r, g, b = (int(v) for v in img[0, 0])
    assert b == MARK, f"pixel (0, 0) is {(r, g, b)}: not an identity stamp (pixels moved or mixed)"
    return r << 8 | g


# --------------------------------------------------------------------------- CelebA

# not the official column order: a label read from a column by position, not by name, fails
CELEBA_NAMES = ["Smiling", "Gray_Hair", "Eyeglasses", "Brown_Hair", "Black_Hair", "Male", "Blond_Hair"]
HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]
CELEBA_N = 60  # split 48 / 6 / 6


def write_celeba(root: Path, n: int = CELEBA_N, size: tuple[int, int] = (16, 20)) -> tuple[list[str], list[dict]]:
    """torchvision's layout (attribute file, PNG folder) where image ``i`` is stamped ``i``;
    returns the file names and each image's attribute row (name -> 0/1)."""
    rng = np.random.default_rng(7)
    images = root / "img_align_celeba"
    images.mkdir(parents=True)
    # hair: one colour (each of the four), none, or two, in a shuffled order
    pattern = rng.permutation(np.arange(n) % 6)
    files, rows, lines = [], [], [str(n), " ".join(CELEBA_NAMES)]
    for i in range(n):
        row = {a: int(rng.random() < 0.4) for a in CELEBA_NAMES if a not in HAIR}
        row.update({a: 0 for a in HAIR})
        if pattern[i] < 4:
            row[HAIR[pattern[i]]] = 1
        elif pattern[i] == 5:
            for a in rng.choice(HAIR, 2, replace=False):
                row[a] = 1
        name = f"{i + 1:06d}.png"
        w, h = size
        Image.fromarray(stamp(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), i)).save(images / name)
        files.append(name)
        rows.append(row)
        lines.append(name + " " + " ".join(f"{1 if row[a] else -1:2d}" for a in CELEBA_NAMES))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return files, rows


def hair_class(row: dict) -> str:
    """The hair5 class a row means: the one hair colour set, else Others."""
    on = [a for a in HAIR if row[a]]
    return on[0].removesuffix("_Hair") if len(on) == 1 else "Others"


@pytest.fixture
def celeba_files(tmp_path) -> tuple[Path, list[str], list[dict]]:
    root = tmp_path / "celeba"
    files, rows = write_celeba(root)
    return root, files, rows


SUBSETS = [pytest.param((), id="whole"), pytest.param(("data.train_subset=24", "data.test_subset=4"), id="subsets")]


@pytest.mark.parametrize("subsets", SUBSETS)
def test_celeba_hair5_label_is_the_hair_colour_of_that_image(celeba_files, subsets: tuple[str, ...]) -> None:
    """Black_Hair alone is class "Black" (and so on); none or several is "Others"."""
    root, files, rows = celeba_files
    ds = load("celeba", root, "data.task=hair5", *subsets)
    assert ds.classes == ["Black", "Blond", "Brown", "Gray", "Others"]
    wrong = []
    for split, j, img, y in labelled(ds):
        i = ident_of(img)
        if ds.classes[y] != hair_class(rows[i]):
            on = [a for a in HAIR if rows[i][a]]
            wrong.append(f"{split}[{j}] {files[i]} (hair attributes set: {on or 'none'}): "
                         f"label {y} = {ds.classes[y]!r}, expected {hair_class(rows[i])!r}")
    assert not wrong, report(wrong)
    assert set(ds.train_labels.tolist()) == set(range(5)), "the fixture should exercise every class"


@pytest.mark.parametrize("attribute", ["Eyeglasses", "Gray_Hair"])
@pytest.mark.parametrize("subsets", SUBSETS)
def test_celeba_binary_label_is_that_images_attribute(celeba_files, attribute: str,
                                                      subsets: tuple[str, ...]) -> None:
    """Class 1 ("<attribute>") exactly for the images whose row has the attribute set."""
    root, files, rows = celeba_files
    ds = load("celeba", root, "data.task=binary", f"data.attribute={attribute}", *subsets)
    assert ds.classes == [f"no {attribute}", attribute], "class 1 must mean: the attribute is set"
    wrong = [f"{split}[{j}] {files[i]}: label {y}, but its {attribute} is {rows[i][attribute]}"
             for split, j, img, y in labelled(ds) if y != rows[i := ident_of(img)][attribute]]
    assert not wrong, report(wrong)


@pytest.mark.parametrize("attributes, classes", [
    ("all", CELEBA_NAMES),  # the attribute file's column order
    ("Blond_Hair,Smiling,Eyeglasses", ["Blond_Hair", "Smiling", "Eyeglasses"]),  # the order asked for
])
def test_celeba_multilabel_columns_are_the_named_attributes(celeba_files, attributes: str,
                                                             classes: list[str]) -> None:
    """Label column k is the attribute ``classes[k]`` names, for every image."""
    root, files, rows = celeba_files
    ds = load("celeba", root, "data.task=multilabel", f"data.attributes={attributes}")
    assert ds.classes == classes
    wrong = []
    for split, j, img, y in labelled(ds):
        i = ident_of(img)
        want = [rows[i][a] for a in ds.classes]
        if y.tolist() != want:
            wrong.append(f"{split}[{j}] {files[i]}: labels {dict(zip(ds.classes, y.astype(int).tolist()))}, "
                         f"its attribute row {dict(zip(ds.classes, want))}")
    assert not wrong, report(wrong)


def split_ids(ds: Dataset) -> dict[str, list[int]]:
    """The decoded identities of each split's images, in order."""
    return {split: [ident_of(img) for img in x] for split, x in
            (("train", ds.train_images), ("val", ds.val_images), ("test", ds.test_images))}


def test_celeba_split_partitions_the_images_and_names_their_files(celeba_files) -> None:
    """8:1:1, disjoint, complete; subsets stay inside their split; split_files names the images held."""
    root, files, _ = celeba_files
    whole = split_ids(load("celeba", root, "data.task=hair5"))
    assert {s: len(v) for s, v in whole.items()} == {"train": 48, "val": 6, "test": 6}, "not 8:1:1"
    assert sorted(sum(whole.values(), [])) == list(range(CELEBA_N)), "the splits leave images out"
    # subsets are drawn from their own split only: no val or test image slips into training
    sub_ds = load("celeba", root, "data.task=hair5", "data.train_subset=24", "data.test_subset=4")
    sub = split_ids(sub_ds)
    for split in whole:
        strays = sorted(set(sub[split]) - set(whole[split]))
        assert not strays, f"the {split} subset holds images of other splits: {[files[i] for i in strays]}"
    assert sub["val"] == whole["val"] and (len(sub["train"]), len(sub["test"])) == (24, 4)
    for ids in (whole, sub):
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            both = sorted(set(ids[a]) & set(ids[b]))
            assert not both, f"images in both {a} and {b}: {[files[i] for i in both]}"
    ds = load("celeba", root, "data.task=binary")  # another task: the same images in each split
    assert split_ids(ds) == whole, "the binary task splits the images differently from hair5"
    for split, decoded in whole.items():  # split_files: the files of the images held, in order
        assert ds.split_files[split] == [files[i] for i in decoded], \
            f"split_files[{split!r}] does not name the images of the {split} split"
    for split, decoded in sub.items():
        assert sub_ds.split_files[split] == [files[i] for i in decoded], \
            f"split_files[{split!r}] of a subset run does not name the images of its {split} split"


def test_celeba_run_records_where_each_image_went(celeba_files, tmp_path: Path) -> None:
    """A real (tiny) training run: split.csv, data.json's class counts and the test labels of
    predictions.npz all agree with the images that ended up in each split."""
    from cnnvit.training import train

    root, files, rows = celeba_files
    overrides = ["data.name=celeba", f"data.root={root}", "data.task=hair5", "model.name=naive_cnn",
                 "train.epochs=1", "train.batch_size=16", "train.eval_batch_size=64", "device=cpu",
                 "train.tensorboard=false"]
    cfg = config_mod.build(overrides=overrides)
    out = train(cfg, tmp_path / "run", progress=False)

    lines = (out / "split.csv").read_text().splitlines()
    assert lines[0] == "file,split"
    recorded = [tuple(ln.split(",")) for ln in lines[1:]]
    where = dict(recorded)
    assert len(where) == len(recorded), "a file is listed twice in split.csv"
    assert sorted(where) == sorted(files), "split.csv does not list exactly the data set's files"
    ds = dataset_from_config(cfg.data, cfg.seed)  # the run's data set, decoded again
    wrong = [f"{files[i]} is in {split}, but split.csv says {where[files[i]]}"
             for split, _, img, _ in labelled(ds) if where[files[i := ident_of(img)]] != split]
    assert not wrong, f"{len(wrong)} files recorded in the wrong split, e.g.:\n  " + "\n  ".join(wrong[:6])

    data = json.loads((out / "data.json").read_text())
    assert data["classes"] == ["Black", "Blond", "Brown", "Gray", "Others"]
    for split, x in (("train", ds.train_images), ("val", ds.val_images), ("test", ds.test_images)):
        names = [hair_class(rows[ident_of(img)]) for img in x]
        assert data["class_counts"][split] == [names.count(c) for c in data["classes"]], \
            f"data.json's {split} class counts are not those of the {split} images"
    tested = [data["classes"].index(hair_class(rows[ident_of(img)])) for img in ds.test_images]
    assert np.load(out / "predictions.npz")["labels"].tolist() == tested, \
        "predictions.npz's labels are not the test images' hair colours, in order"


# --------------------------------------------------------------------------- CIFAR-10

TRAIN_COUNTS = [20, 16, 14, 12, 12, 10, 10, 10, 8, 8]  # 120, imbalanced: stratification matters
TEST_COUNTS = [7, 5, 5, 4, 4, 4, 3, 3, 3, 2]  # 40
TEST_ID0 = 1000  # test identities start here: a test image among training ones shows


def cifar_labels(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled labels with the counts above, for the training and test images."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(np.repeat(np.arange(10), TRAIN_COUNTS)),
            rng.permutation(np.repeat(np.arange(10), TEST_COUNTS)))


def write_cifar_pickles(folder: Path, label_names: Optional[list[str]] = None) -> dict[int, int]:
    """torchvision's pickles (5 batches of 24, a test batch of 40) of stamped images; returns
    identity -> label."""
    rng = np.random.default_rng(4)
    folder.mkdir(parents=True, exist_ok=True)
    train_y, test_y = cifar_labels()
    label_of = {}

    def write(name: str, ids: range, labels: np.ndarray) -> None:
        imgs = np.stack([stamp(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), i) for i in ids])
        label_of.update(zip(ids, labels.tolist()))
        flat = imgs.transpose(0, 3, 1, 2).reshape(len(ids), 3072)  # R plane, G plane, B plane
        (folder / name).write_bytes(pickle.dumps({"data": flat, "labels": labels.tolist(), "batch_label": name}))

    for b in range(5):
        write(f"data_batch_{b + 1}", range(24 * b, 24 * b + 24), train_y[24 * b: 24 * b + 24])
    write("test_batch", range(TEST_ID0, TEST_ID0 + 40), test_y)
    if label_names is not None:
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": label_names, "num_vis": 3072}))
    return label_of


def write_cifar_folders(root: Path) -> dict[int, str]:
    """``train/<class>/*.png`` and ``test/<class>/*.png`` with CIFAR-10's class names, stamped;
    returns identity -> class folder. File names sort in another order than the identities."""
    rng = np.random.default_rng(5)
    class_of = {}
    for split, counts, start in (("train", [8, 7, 6, 6, 5, 5, 4, 4, 3, 2], 0),
                                 ("test", [3, 3, 2, 2, 2, 2, 2, 1, 1, 2], TEST_ID0)):
        ident = start
        for c in rng.permutation(10):  # classes written in a scrambled order
            d = root / split / TORCHVISION_CIFAR10[c]
            d.mkdir(parents=True)
            for _ in range(counts[c]):
                img = stamp(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), ident)
                Image.fromarray(img).save(d / f"{rng.integers(10**6):06d}_{ident}.png")
                class_of[ident] = TORCHVISION_CIFAR10[c]
                ident += 1
    return class_of


def cifar_splits(train_subset: int, test_subset: int) -> list:
    """Whole splits; a validation share; stratified subsets (smaller than the splits) and a share."""
    return [pytest.param((), id="whole"),
            pytest.param(("data.val_fraction=0.25",), id="val"),
            pytest.param((f"data.train_subset={train_subset}", f"data.test_subset={test_subset}",
                          "data.val_fraction=0.2"), id="subsets+val")]


def check_cifar_splits(ds: Dataset, overrides: tuple[str, ...]) -> None:
    """Train and val hold training images only, test the test images; no image twice; the
    sizes asked for."""
    ids = {s: [ident_of(img) for img in x] for s, x in
           (("train", ds.train_images), ("val", ds.val_images), ("test", ds.test_images))}
    assert all(i < TEST_ID0 for i in ids["train"] + ids["val"]), "a test image is in train or val"
    assert all(i >= TEST_ID0 for i in ids["test"]), "a training image is in the test split"
    assert not set(ids["train"]) & set(ids["val"]), "images in both train and val"
    for s in ids:
        assert len(set(ids[s])) == len(ids[s]), f"an image appears twice in {s}"
    asked = dict(o.removeprefix("data.").split("=") for o in overrides)
    if "train_subset" in asked:
        assert len(ids["train"]) + len(ids["val"]) == int(asked["train_subset"])
        assert len(ids["test"]) == int(asked["test_subset"])
    assert (len(ids["val"]) > 0) == ("val_fraction" in asked)


@pytest.mark.parametrize("overrides", cifar_splits(60, 20))  # of 120 and 40
def test_cifar_pickle_labels_stay_with_their_images(tmp_path: Path, overrides: tuple[str, ...]) -> None:
    """Each image keeps the label written with it through subsets and the validation split."""
    label_of = write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    ds = load("cifar10", tmp_path, *overrides)
    assert ds.classes == TORCHVISION_CIFAR10, "without batches.meta: torchvision's names and order"
    wrong = [f"{split}[{j}] image {i}: label {y} ({ds.classes[y]}), written with {label_of[i]} "
             f"({ds.classes[label_of[i]]})" for split, j, img, y in labelled(ds)
             if y != label_of[i := ident_of(img)]]
    assert not wrong, report(wrong)
    check_cifar_splits(ds, overrides)


def test_cifar_pickle_class_names_come_from_batches_meta(tmp_path: Path) -> None:
    """Label k is named by batches.meta's k-th name when the file is there."""
    names = [f"kind_{c}" for c in reversed(range(10))]  # label k means names[k], whatever its text
    write_cifar_pickles(tmp_path, label_names=names)
    assert load("cifar10", tmp_path).classes == names


@pytest.mark.parametrize("overrides", cifar_splits(30, 12))  # of 50 and 20
def test_cifar_folder_label_names_the_folder_of_that_image(tmp_path: Path, overrides: tuple[str, ...]) -> None:
    """``classes[label]`` is the folder the image was read from, through subsets and val split."""
    class_of = write_cifar_folders(tmp_path)
    ds = load("cifar10", tmp_path, *overrides)
    assert ds.classes == TORCHVISION_CIFAR10, "folder classes: sorted names, torchvision's order"
    wrong = [f"{split}[{j}] image {i} from {class_of[i]}/: label {y} = {ds.classes[y]!r}"
             for split, j, img, y in labelled(ds) if ds.classes[y] != class_of[i := ident_of(img)]]
    assert not wrong, report(wrong)
    check_cifar_splits(ds, overrides)


# --------------------------------------------------------------------------- Tiny-ImageNet
# JPEG is lossy: the identity is a 4 x 4 grid of black or white 16-pixel cells, 8 bits of
# identity and their complement (a decoding error fails the check instead of giving another id)

WNIDS = ["n09999999", "n01443537", "n05555555"]  # wnids.txt order, not sorted: label = this index
WORDS = {"n09999999": "zebra fish, Danio", "n01443537": "goldfish, Carassius auratus",
         "n05555555": "bullfrog", "n00000001": "not a class"}
TIN_VAL_ID0 = 100


def grid(ident: int) -> np.ndarray:
    """A 64 x 64 grey image of 16 cells: bit b of ``ident | ~ident << 8`` white in cell b."""
    bits = ident | (255 - ident) << 8
    cells = np.array([255 if bits >> b & 1 else 0 for b in range(16)], np.uint8).reshape(4, 4)
    return np.kron(cells, np.ones((16, 16), np.uint8))


def grid_ident(img: np.ndarray) -> int:
    cells = img[..., :3].astype(float).mean(2).reshape(4, 16, 4, 16)[:, 4:12, :, 4:12].mean((1, 3)).ravel()
    assert ((cells < 64) | (cells > 192)).all(), f"not an identity grid: cell means {cells.round()}"
    bits = sum(1 << b for b, v in enumerate(cells) if v > 128)
    ident, check = bits & 255, bits >> 8
    assert check == 255 - ident, f"identity grid fails its check: {ident} / {check}"
    return ident


def write_tiny_imagenet(root: Path, n_train: int = 10, n_val: int = 4) -> dict[int, str]:
    """The official layout, every image a grid of its identity (every 7th grayscale); the val
    annotations list the files in a shuffled order with labels unrelated to the file names.
    Returns identity -> wnid."""
    rng = np.random.default_rng(6)
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (root / "words.txt").write_text("".join(f"{w}\t{t}\n" for w, t in WORDS.items()))
    wnid_of = {}

    def save(ident: int, path: Path) -> None:
        img = grid(ident)
        Image.fromarray(img if ident % 7 == 0 else np.stack([img] * 3, 2)).save(path, quality=90)

    ident = 0
    for wnid in WNIDS:
        images = root / "train" / wnid / "images"
        images.mkdir(parents=True)
        for k in range(n_train):
            save(ident, images / f"{wnid}_{k}.JPEG")
            wnid_of[ident] = wnid
            ident += 1
    val_wnids = rng.permutation(np.repeat(np.arange(len(WNIDS)), n_val))
    lines = []
    for k, c in enumerate(val_wnids):  # val_10 sorts before val_2: file order is not line order
        save(TIN_VAL_ID0 + k, root / "val" / "images" / f"val_{k}.JPEG")
        wnid_of[TIN_VAL_ID0 + k] = WNIDS[c]
        lines.append(f"val_{k}.JPEG\t{WNIDS[c]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(rng.permutation(lines)) + "\n")
    return wnid_of


def check_tiny_imagenet(ds: Dataset, wnid_of: dict[int, str]) -> None:
    """Each label is the wnids.txt index of the image's class, and its name that of words.txt;
    train and val hold training images, test the annotated val images, none twice."""
    assert ds.classes == ["zebra fish", "goldfish", "bullfrog"], "class k: words.txt name of wnids.txt's k-th"
    wrong, seen = [], {}
    for split, j, img, y in labelled(ds):
        i = grid_ident(img)
        assert (i >= TIN_VAL_ID0) == (split == "test"), f"{split}[{j}] is image {i}: from the wrong split"
        assert i not in seen, f"image {i} is in {seen[i]} and {split}"
        seen[i] = split
        if y != WNIDS.index(wnid_of[i]):
            wrong.append(f"{split}[{j}] image {i} of {wnid_of[i]} ({WNIDS.index(wnid_of[i])}): label {y} "
                         f"({ds.classes[y]!r})")
    assert not wrong, report(wrong)


def test_tiny_imagenet_labels_follow_wnids_and_val_annotations(tmp_path: Path) -> None:
    """Decoded, then from the cache, then subset: labels are wnids.txt indices, val ones from the
    annotations (not from file order)."""
    root = tmp_path / "tiny-imagenet-200"
    wnid_of = write_tiny_imagenet(root)
    decoded = load("tiny-imagenet", tmp_path)  # its protocol: a stratified 20% validation split
    assert "official layout" in decoded.source
    assert (len(decoded.train_labels), len(decoded.val_labels), len(decoded.test_labels)) == (24, 6, 12)
    check_tiny_imagenet(decoded, wnid_of)
    # a val image annotated with the 2nd wnid is class 1, wherever its file sorts
    second = [i for i, w in wnid_of.items() if i >= TIN_VAL_ID0 and w == WNIDS[1]]
    got = {grid_ident(img): int(y) for img, y in zip(decoded.test_images, decoded.test_labels)}
    assert [got[i] for i in second] == [1] * len(second)

    cached = load("tiny-imagenet", tmp_path)
    assert cached.source.startswith("cache "), "the second load should come from the cache"
    check_tiny_imagenet(cached, wnid_of)
    sub = load("tiny-imagenet", tmp_path, "data.train_subset=15", "data.test_subset=6", seed=1)
    assert (len(sub.train_labels), len(sub.val_labels), len(sub.test_labels)) == (12, 3, 6)
    check_tiny_imagenet(sub, wnid_of)


def test_tiny_imagenet_cache_follows_a_corrected_val_annotation(tmp_path: Path) -> None:
    """A val image relabelled in val_annotations.txt gets its new label, not the cached one."""
    import os

    root = tmp_path / "tiny-imagenet-200"
    wnid_of = write_tiny_imagenet(root)
    load("tiny-imagenet", tmp_path)  # fills the cache
    path = root / "val" / "val_annotations.txt"
    lines = path.read_text().splitlines()
    name, wnid, *rest = lines[0].split("\t")
    moved = WNIDS[(WNIDS.index(wnid) + 1) % len(WNIDS)]
    path.write_text("\n".join(["\t".join([name, moved, *rest])] + lines[1:]) + "\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    wnid_of[TIN_VAL_ID0 + int(name.removeprefix("val_").removesuffix(".JPEG"))] = moved
    check_tiny_imagenet(load("tiny-imagenet", tmp_path), wnid_of)


# --------------------------------------------------------------------------- data.classes

@pytest.mark.parametrize("fmt", ["pickles", "folders", "tiny-imagenet"])
def test_first_classes_keep_every_image_of_those_classes_with_its_label(tmp_path: Path, fmt: str) -> None:
    """``data.classes=k``: exactly the images of the first k classes, in both splits, each with
    its own label, the names of those classes, then subsets and the validation split as usual."""
    if fmt == "tiny-imagenet":
        wnid_of = write_tiny_imagenet(tmp_path / "tiny-imagenet-200")
        truth = {i: WNIDS.index(w) for i, w in wnid_of.items()}
        k, name, ident, all_names = 2, "tiny-imagenet", grid_ident, ["zebra fish", "goldfish", "bullfrog"]
    else:
        if fmt == "pickles":
            truth = write_cifar_pickles(tmp_path / "cifar-10-batches-py")
        else:
            truth = {i: TORCHVISION_CIFAR10.index(c) for i, c in write_cifar_folders(tmp_path).items()}
        k, name, ident, all_names = 4, "cifar10", ident_of, TORCHVISION_CIFAR10
    ds = load(name, tmp_path, f"data.classes={k}", "data.val_fraction=0.25")
    assert ds.classes == all_names[:k]
    seen = {}
    for split, j, img, y in labelled(ds):
        seen[i := ident(img)] = split
        assert y == truth[i] < k, f"{split}[{j}] image {i}: label {y}, written with {truth[i]}"
    assert sorted(seen) == sorted(i for i, c in truth.items() if c < k), "not every image of the classes kept"
    assert len(ds.val_labels) and set(np.unique(ds.test_labels)) == set(range(k))
    sub = load(name, tmp_path, f"data.classes={k}", f"data.train_subset={2 * k}", "data.val_fraction=0")
    assert len(sub.train_labels) == 2 * k and all(y == truth[ident(img)] < k for _, _, img, y in labelled(sub))


def test_more_classes_than_the_data_set_has_is_refused_by_name(tmp_path: Path) -> None:
    write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    with pytest.raises(DatasetError, match="data.classes: 11 asked for, but the train split has 10"):
        load("cifar10", tmp_path, "data.classes=11")
    with pytest.raises(config_mod.ConfigError, match="data.classes: must be at least 2"):
        config_mod.build(overrides=["data.classes=1"])
    with pytest.raises(config_mod.ConfigError, match="data.classes: CelebA"):
        config_mod.build(overrides=["data.name=celeba", "data.classes=3"])


# --------------------------------------------------------------------------- data.mean / data.std

def test_normalisation_constants_replace_the_splits_own_statistics(tmp_path: Path) -> None:
    """data.mean and data.std (e.g. a seed's published constants) are what the run normalises
    with and records; without them, the training split's own statistics."""
    write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    own = load("cifar10", tmp_path)
    fixed = load("cifar10", tmp_path, "data.mean=[0.4914,0.4822,0.4465]", "data.std=[0.2023,0.1994,0.201]")
    assert fixed.mean == (0.4914, 0.4822, 0.4465) and fixed.std == (0.2023, 0.1994, 0.201)
    assert own.mean != fixed.mean and own.std != fixed.std
    from cnnvit.training.augment import Preprocess
    import torch
    cfg = config_mod.build(overrides=["data.mean=[0.5,0.5,0.5]", "data.std=[0.25,0.25,0.25]"])
    prep = Preprocess.from_config(cfg.data, (0.5,) * 3, (0.25,) * 3)
    white = torch.full((1, 4, 4, 3), 255, dtype=torch.uint8)
    assert torch.allclose(prep.eval(white), torch.full((1, 3, 4, 4), 2.0))  # (1 - 0.5) / 0.25


@pytest.mark.parametrize("override, message", [
    ("data.mean=[0.5,0.5]", "data.mean: expected 3 values"),
    ("data.std=[0.2,0.0,0.2]", "data.std: every value must be positive"),
    ("data.std=[0.2,a,0.2]", r"data.std\[1\]: expected float"),
    ("data.mean=0.5", "data.mean: expected list")])
def test_normalisation_constants_are_checked_by_name(override: str, message: str) -> None:
    with pytest.raises(config_mod.ConfigError, match=message):
        config_mod.build(overrides=[override])


# --------------------------------------------------------------------------- data.class_ratio

def test_class_ratio_subsamples_every_split_to_the_seeds_balance(celeba_files) -> None:
    """data.class_ratio (study 5's seed: Black:Blond:Brown:Gray:Others = 2:1:1:1:0.5): each split
    keeps the largest subset in that ratio, every image with its own label and its own file in
    the split record."""
    root, files, rows = celeba_files
    natural = load("celeba", root, "data.task=hair5")
    ds = load("celeba", root, "data.task=hair5", "data.class_ratio=[2,1,1,1,0.5]")
    for split in ("train", "val", "test"):
        counts = np.bincount(getattr(ds, f"{split}_labels"), minlength=5)
        have = np.bincount(getattr(natural, f"{split}_labels"), minlength=5)
        scale = min(have / np.array([2, 1, 1, 1, 0.5]))
        assert counts.tolist() == np.floor(np.array([2, 1, 1, 1, 0.5]) * scale + 1e-9).astype(int).tolist(), split
        assert len(ds.split_files[split]) == len(getattr(ds, f"{split}_labels"))
    for split, j, img, y in labelled(ds):
        i = ident_of(img)
        assert ds.classes[y] == hair_class(rows[i]), f"{split}[{j}]"
        assert ds.split_files[split][j] == files[i], f"{split}[{j}]: its file record is another image's"


def test_class_ratio_needs_one_weight_per_class(tmp_path: Path) -> None:
    write_cifar_pickles(tmp_path / "cifar-10-batches-py")
    with pytest.raises(DatasetError, match="data.class_ratio: 3 weights for the 10 classes of the train split"):
        load("cifar10", tmp_path, "data.class_ratio=[1,1,1]")
    with pytest.raises(config_mod.ConfigError, match="data.class_ratio: one positive weight per class"):
        config_mod.build(overrides=["data.class_ratio=[1,0,1]"])
    with pytest.raises(config_mod.ConfigError, match="data.class_ratio: not with data.task=multilabel"):
        config_mod.build(overrides=["data.name=celeba", "data.task=multilabel", "data.class_ratio=[1,1]"])
