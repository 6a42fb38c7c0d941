"""CelebA face attributes in torchvision's format: ``list_attr_celeba.txt`` and an image folder.

The attribute file (official format): a count line, a line of attribute names, then one row per
image, ``<file> v1 ... v40`` with values 1 / -1, columns separated by any run of spaces (CRLF
line ends are accepted too). The image folder is found, not assumed: the official
``img_align_celeba/`` or any folder beside the attribute file that holds the listed images (for
example a downscaled subset's ``img_align_celeba_89x109/``); images keep their size unless
``data.decode_size`` resizes them. Every listed image is decoded once into the decoded-data cache
(:mod:`.cache`; full CelebA at 178 x 218 is about 24 GB on disk), and runs read it memory-mapped;
``data.first_images=N`` keeps only the first N listed images (the same images in every copy of
CelebA that lists them: the official set, or a subset such as 000001-008000), and decodes only those.

Tasks built from the attributes:
* ``binary``: one attribute (e.g. ``Eyeglasses``), classes "no X" / "X";
* ``hair5``: hair colour, Black / Blond / Brown / Gray when exactly one of those attributes is
  set, and Others for none or several (the seed's 5-class task);
* ``multilabel``: several attributes at once (all 40 by default), one sigmoid per attribute.
"""
from __future__ import annotations

import difflib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ConfigError, DatasetError
from .base import (DataSource, Dataset, DatasetSpec, decode_cached, find_marked_folder, locate_folder, option,
                   register_dataset, root_of, stratified_indices, subset_indices)
from .fetch import FetchSpec, Source, extract_archive, find_or_fetch, google_drive_url

log = logging.getLogger(__name__)

NAME = "celeba"
FOLDER = "celeba"  # under a data directory
ATTR_FILE = "list_attr_celeba.txt"
# the official 40 attributes, in the official file's order
ATTRIBUTE_NAMES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
HAIR_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
HAIR_CLASSES = ["Black", "Blond", "Brown", "Gray", "Others"]
OFFICIAL_SIZE = (178, 218)  # (width, height) of the official img_align_celeba/ images
# a dry run reads at most the first 1,000 listed images (116 MB decoded at 178 x 218): enough that
# every hair class of the 8:1:1 split's tenths survives data.class_ratio, few enough to decode in seconds
FEW_IMAGES = 1000
TASKS = ("binary", "hair5", "multilabel")


@dataclass
class Attributes:
    """The parsed attribute file: names (40), image files (N), and an N x 40 array of 0/1."""

    names: list[str]
    files: list[str]
    values: np.ndarray

    def column(self, name: str) -> np.ndarray:
        require_attributes(self.names, [name])
        return self.values[:, self.names.index(name)]


def require_attributes(names: list[str], wanted: list[str]) -> None:
    """Raise a DatasetError naming the first of ``wanted`` that is not among ``names``."""
    for name in wanted:
        if name not in names:
            hint = difflib.get_close_matches(name, names, n=1)
            raise DatasetError(f"CelebA has no attribute {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                               + f" (attributes: {', '.join(names)})")


def parse_attributes(path: str | Path) -> Attributes:
    """Read an attribute file in the official format; errors name the file and the line."""
    path = Path(path)
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError as exc:
        raise DatasetError(f"CelebA attribute file unreadable: {path}: {exc}") from exc
    if len(lines) < 2:
        raise DatasetError(f"{path}: expected a count line and a header line of attribute names")
    start, count = 0, None
    if lines[0].strip().isdigit():
        count, start = int(lines[0]), 1
    names = lines[start].split()
    files, rows, seen = [], [], {}
    for n, line in enumerate(lines[start + 1:], start + 2):
        parts = line.split()
        if len(parts) != len(names) + 1 or any(v not in ("1", "-1") for v in parts[1:]):
            raise DatasetError(f"{path}:{n}: expected '<file>' and {len(names)} values of 1 or -1, "
                               f"got {line[:80]!r}")
        if parts[0] in seen:  # one image in two splits would put training images in the test
            raise DatasetError(f"{path}:{n}: {parts[0]} is listed twice (first on line {seen[parts[0]]}); "
                               "keep one row per image")
        seen[parts[0]] = n
        files.append(parts[0])
        rows.append([v == "1" for v in parts[1:]])
    if count is not None and count != len(files):
        raise DatasetError(f"{path}: its first line announces {count} images but {len(files)} rows follow "
                           f"(a truncated file?)")
    return Attributes(names, files, np.asarray(rows, dtype=np.uint8).reshape(len(files), len(names)))


def find_folder(root: Path) -> Optional[Path]:
    """The folder holding the attribute file: ``root`` or ``root/celeba``."""
    return find_marked_folder(root, ATTR_FILE, FOLDER)


def read_names(path: Path) -> list[str]:
    """The attribute names of an attribute file (its header), without reading the rows."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
            header = f.readline() if first.strip().isdigit() else first
    except OSError as exc:
        raise DatasetError(f"CelebA attribute file unreadable: {path}: {exc}") from exc
    return header.split()


def check_config(folder: Path, data_cfg: DataSource) -> None:
    """Before any image is read: the attributes a task names exist in the attribute file."""
    names, opts = read_names(folder / ATTR_FILE), SPEC.options_of(data_cfg)
    require_attributes(names, task_attributes(names, opts.task, opts.attribute, opts.attributes))


def not_found_message(root: Path) -> str:
    return (f"CelebA not found under {root}: looked for {root}/{ATTR_FILE} and {root}/celeba/{ATTR_FILE} "
            f"(torchvision's format, with an image folder such as img_align_celeba/ beside it). Set "
            f"data.root to the folder that holds it (or DATA_DIR to its parent), or fetch it: python -m "
            f"cnnvit data fetch celeba --to DATA_DIR (or data.download=true; needs internet).")


def inspect_layout(root: Path) -> Optional[str]:
    """What the loader would find in ``root`` (None: nothing): the attribute file read through
    and the image folder that holds its first and last images."""
    folder = find_folder(root)
    if folder is None:
        return None
    attrs = parse_attributes(folder / ATTR_FILE)
    if not attrs.files:
        raise DatasetError(f"{folder / ATTR_FILE} lists no images")
    images = find_image_folder(folder, attrs.files)
    return f"{len(attrs.files):,} images with {len(attrs.names)} attributes, images in {images}"


def _unpack(files: dict[str, Path], staging: Path, progress: bool) -> None:
    shutil.copyfile(files[ATTR_FILE], staging / ATTR_FILE)
    extract_archive(files["img_align_celeba.zip"], staging, progress)  # img_align_celeba/*.jpg


# torchvision's CelebA.file_list (Google Drive ids and MD5s): the aligned images and attributes
FETCH = FetchSpec(
    name=NAME, title="CelebA",
    sources=(Source(google_drive_url("0B7EVK8r0v71pZjFTYXZWM3FlRnM"), "img_align_celeba.zip",
                    "00d2c5bc6d35e252742224ab0c1e8fcb",
                    page="https://drive.google.com/file/d/0B7EVK8r0v71pZjFTYXZWM3FlRnM"),
             Source(google_drive_url("0B7EVK8r0v71pblRyaVFSWGxPY0U"), ATTR_FILE,
                    "75e246fa4810816ffd6ee81facbd244c",
                    page="https://drive.google.com/file/d/0B7EVK8r0v71pblRyaVFSWGxPY0U")),
    unpack=_unpack, inspect=inspect_layout,
    layout=f"{ATTR_FILE} and beside it an image folder holding the images it lists "
           f"(img_align_celeba/*.jpg, or any folder name and image size)",
    note="CelebA is served from Google Drive, which often refuses automated downloads (a daily "
         "quota per file); the project page https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html links "
         "the same files (Align&Cropped Images: img_align_celeba.zip; Anno: list_attr_celeba.txt).")


def find_image_folder(folder: Path, files: list[str]) -> Path:
    """The folder beside the attribute file that holds the listed images (first and last)."""
    candidates = sorted((p for p in folder.iterdir() if p.is_dir()),
                        key=lambda p: (p.name != "img_align_celeba", p.name))
    for c in candidates:
        if (c / files[0]).is_file() and (c / files[-1]).is_file():
            return c
    raise DatasetError(f"CelebA images not found: no folder in {folder} holds {files[0]} and {files[-1]} "
                       f"(looked in: {', '.join(p.name for p in candidates) or 'no folders'})")


def task_attributes(names: list[str], task: str, attribute: str, attributes: str) -> list[str]:
    """The attribute columns a task reads (``attributes``: comma-separated names, or ``all``)."""
    if task == "binary":
        return [attribute]
    if task == "hair5":
        return list(HAIR_ATTRIBUTES)
    if task == "multilabel":
        return list(names) if attributes == "all" else [a.strip() for a in attributes.split(",") if a.strip()]
    raise DatasetError(f"data.task: {task!r} is not one of {', '.join(TASKS)}")


def task_labels(attrs: Attributes, task: str, attribute: str = "Eyeglasses",
                attributes: str = "all") -> tuple[np.ndarray, list[str]]:
    """Labels and class names for a task: int labels for ``binary`` and ``hair5``, an N x K 0/1
    matrix for ``multilabel`` (``attributes``: comma-separated names, or ``all``)."""
    wanted = task_attributes(attrs.names, task, attribute, attributes)
    columns = np.stack([attrs.column(a) for a in wanted], 1)
    if task == "binary":
        return columns[:, 0].astype(np.int64), [f"no {attribute}", attribute]
    if task == "hair5":
        labels = np.where(columns.sum(1) == 1, columns.argmax(1), len(HAIR_ATTRIBUTES))
        return labels.astype(np.int64), list(HAIR_CLASSES)
    return columns.astype(np.float32), wanted


def stratification_key(labels: np.ndarray) -> np.ndarray:
    """The class to stratify on: the label itself, or the first label of a multi-label matrix
    (its combinations are too many to stratify on)."""
    return labels if labels.ndim == 1 else labels[:, 0].astype(np.int64)


def split_key(attrs: Attributes) -> np.ndarray:
    """What the 8:1:1 split is stratified on: the hair colour class (``hair5``) whatever the task,
    so that every task of a seed uses the same images for training, validation and test (a
    model pretrained on one task has never seen another task's test images), and hair colour,
    the study's subject, keeps its shares in each split. Attribute files without the hair
    columns are split on their first attribute."""
    if all(a in attrs.names for a in HAIR_ATTRIBUTES):
        return task_labels(attrs, "hair5")[0]
    return attrs.values[:, 0].astype(np.int64)


def split_811(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reproducible 8:1:1 train/val/test split, stratified by ``labels`` (class labels, or
    the first column of a label matrix; see :func:`stratification_key`)."""
    key = stratification_key(labels)
    n = len(key)
    test = stratified_indices(key, int(round(0.1 * n)), seed + 11)
    rest = np.setdiff1d(np.arange(n), test)
    val = rest[stratified_indices(key[rest], int(round(0.1 * n)), seed + 12)]
    train = np.setdiff1d(rest, val)
    return train, val, test


# colours of the generated set's hair band (RGB), one per hair attribute
_HAIR_RGB = {"Black_Hair": (20, 20, 20), "Blond_Hair": (230, 200, 90), "Brown_Hair": (120, 70, 30),
             "Gray_Hair": (160, 160, 160)}


def write_generated(folder: str | Path, n: int, seed: int = 0, size: tuple[int, int] = (36, 44),
                    names: tuple[str, ...] | list[str] = ATTRIBUTE_NAMES,
                    image_folder: str = "img_align_celeba", newline: str = "\n") -> np.ndarray:
    """Write a small generated data set in CelebA's format (attribute file and JPEG folder) and
    return its N x K 0/1 attribute matrix. Images are noise with learnable cues: a band at the
    top in the colour of the hair attribute, and a small dark patch per other attribute that is
    set (its place fixed by the attribute), so that every task can be learnt a little in smoke
    runs. Attribute rates vary (5-50%) and hair colours are imbalanced, as in CelebA."""
    from PIL import Image

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    w, h = size
    names = list(names)
    rates = rng.uniform(0.05, 0.5, len(names))
    values = (rng.random((n, len(names))) < rates).astype(np.uint8)
    hair = [names.index(a) for a in HAIR_ATTRIBUTES if a in names]
    if hair:  # one colour mostly (black commonest), sometimes none or two: CelebA's Others
        values[:, hair] = 0
        pick = rng.choice(len(hair) + 1, n, p=_hair_rates(len(hair)))
        for i, k in enumerate(pick):
            if k < len(hair):
                values[i, hair[k]] = 1
        two = rng.random(n) < 0.05
        values[two, hair[0]] = 1
    # the drawn cues disagree with the labels for 5% of the images: no task is learnt perfectly
    shown = values ^ (rng.random(values.shape) < 0.05).astype(np.uint8)
    others = [j for j in range(len(names)) if j not in hair]
    cols = max(1, int(np.ceil(np.sqrt(len(others)))))
    cell_w, cell_h = max(1, w // cols), max(1, (h - h // 5) // cols)
    (folder / image_folder).mkdir(parents=True, exist_ok=True)
    rows = [str(n), " ".join(names)]
    for i in range(n):
        img = rng.integers(90, 170, (h, w, 3), dtype=np.uint8)
        set_hair = [names[j] for j in hair if shown[i, j]]
        if set_hair:
            img[: h // 5] = np.mean([_HAIR_RGB[a] for a in set_hair], 0).astype(np.uint8)
        for slot, j in enumerate(others):
            if shown[i, j]:
                r, c = divmod(slot, cols)
                y0, x0 = h // 5 + r * cell_h, c * cell_w
                img[y0:y0 + max(1, cell_h - 1), x0:x0 + max(1, cell_w - 1)] = 30
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(img).save(folder / image_folder / name, quality=95)
        rows.append(name + " " + " ".join(f"{1 if v else -1:2d}" for v in values[i]))
    (folder / ATTR_FILE).write_bytes((newline.join(rows) + newline).encode())
    return values


def _hair_rates(k: int) -> np.ndarray:
    # black, blond, brown, gray, none: roughly CelebA's shares
    base = np.array([0.30, 0.18, 0.24, 0.06][:k] + [0.22])
    return base / base.sum()


def first_images(attrs: Attributes, n: Optional[int]) -> Attributes:
    """The first ``n`` images the attribute file lists (all when ``n`` is None); more than it
    lists is refused by name."""
    if n is None:
        return attrs
    if n > len(attrs.files):
        raise ConfigError(f"data.first_images={n}: the attribute file lists only {len(attrs.files)} images "
                          f"({attrs.files[0]} to {attrs.files[-1]})")
    return Attributes(attrs.names, attrs.files[:n], attrs.values[:n])


def decoded_images(folder: Path, attrs: Attributes, images: Path, decode_size: Optional[int]) -> tuple[np.ndarray, str]:
    """Every image the attribute file lists, in its order, as one uint8 array (memory-mapped
    from the decoded cache, filled first when missing or stale), resized to ``decode_size`` x
    ``decode_size`` when given; and where it came from."""
    return decode_cached(folder, f"celeba-{images.name}", [str(images / f) for f in attrs.files], decode_size,
                         "CelebA", f"images in {images}", key_files=(folder / ATTR_FILE,))


@dataclass(frozen=True)
class CelebAOptions:
    """CelebA's own keys: which task, and how many of its images."""

    task: str = option("binary", "binary | hair5 (5 hair colours) | multilabel", choices=TASKS)
    attribute: str = option("Eyeglasses", "task=binary: the attribute to predict")
    attributes: str = option("all", "task=multilabel: comma-separated attributes, or all")
    first_images: Optional[int] = option(None, "only the first N images the attribute file lists (000001.jpg "
                                         "...), before the 8:1:1 split; only those are decoded. None: all",
                                         refused_elsewhere="use data.train_subset / data.test_subset")


def load_celeba(source: DataSource, seed: int) -> Dataset:
    """CelebA (torchvision's format) for one task, split 8:1:1 (stratified by hair colour, by
    ``seed``; the same split for every task): the validation tenth is held out here already.
    Images come from the decoded cache (all of them, or the first listed, once per machine),
    resized to ``data.decode_size`` when given."""
    opts: CelebAOptions = SPEC.options_of(source)
    folder = find_or_fetch(find_folder, FETCH, root_of(NAME, source.root), source.download,
                           lambda root: DatasetError(not_found_message(root)))
    attrs = first_images(parse_attributes(folder / ATTR_FILE), opts.first_images)
    images = find_image_folder(folder, attrs.files)
    labels, classes = task_labels(attrs, opts.task, opts.attribute, opts.attributes)
    train, val, test = split_811(split_key(attrs), seed)  # one split for every task
    key = stratification_key(labels)
    if source.train_subset:
        train = train[subset_indices(key[train], source.train_subset, seed, "train")]
    if source.test_subset:
        test = test[subset_indices(key[test], source.test_subset, seed, "test")]
    pixels, where = decoded_images(folder, attrs, images, source.decode_size)
    ds = Dataset(NAME, classes, pixels[train], labels[train], pixels[test], labels[test],
                 f"{opts.task} task, {where}", (0.5,) * 3, (0.25,) * 3,
                 val_images=pixels[val], val_labels=labels[val],
                 split_files={split: [attrs.files[i] for i in idx]
                              for split, idx in (("train", train), ("val", val), ("test", test))})
    return ds


def prepare(data_cfg: DataSource) -> None:
    """Download if asked and missing, and fill the decoded cache (one process per machine)."""
    folder = find_or_fetch(find_folder, FETCH, root_of(NAME, data_cfg.root), data_cfg.download,
                           lambda root: DatasetError(not_found_message(root)))
    attrs = first_images(parse_attributes(folder / ATTR_FILE), SPEC.options_of(data_cfg).first_images)
    decoded_images(folder, attrs, find_image_folder(folder, attrs.files), data_cfg.decode_size)


def image_side(data_cfg: DataSource) -> Optional[int]:
    return data_cfg.decode_size


def locate(data_cfg: DataSource) -> str:
    return locate_folder(data_cfg, find_folder, not_found_message, check=check_config)


def validate(data_cfg: DataSource) -> None:
    """CelebA's own rules for a config, before any file is read."""
    if data_cfg.classes:
        raise ConfigError("data.classes: CelebA's tasks fix their own labels; leave data.classes unset")
    if data_cfg.val_fraction:
        raise ConfigError("data.val_fraction: CelebA's 8:1:1 split already holds out its validation tenth; "
                          "leave data.val_fraction at 0")
    first = SPEC.options_of(data_cfg).first_images
    if first is not None and first < 10:
        raise ConfigError(f"data.first_images: {first} images cannot be split 8:1:1; give "
                          f"at least 10, or leave it unset for all of them")


def listed_count(path: Path) -> int:
    """How many images an attribute file lists: its count line, else its rows counted."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
            if first.strip().isdigit():
                return int(first)
            return sum(1 for line in f if line.strip())  # the first line was the header
    except OSError as exc:
        raise DatasetError(f"CelebA attribute file unreadable: {path}: {exc}") from exc


def few(data_cfg: DataSource, n_train: int, n_test: int) -> None:
    """A dry run's few images: only the first listed ones are decoded (at most
    :data:`FEW_IMAGES`, or what a smaller copy lists), then stratified subsets of the train and
    test parts of their 8:1:1 split."""
    folder = find_folder(root_of(NAME, data_cfg.root))
    listed = listed_count(folder / ATTR_FILE) if folder else FEW_IMAGES
    data_cfg.first_images = min(data_cfg.first_images or listed, listed, FEW_IMAGES)
    data_cfg.train_subset, data_cfg.test_subset = n_train, n_test


def is_multilabel(data_cfg: DataSource) -> bool:
    return SPEC.options_of(data_cfg).task == "multilabel"


SPEC = register_dataset(DatasetSpec(
    name=NAME, load=load_celeba, locate=locate, folder=FOLDER, native_size=None, size_of=image_side,
    own_validation=True, prepare=prepare, fetch=FETCH, generate=write_generated, validate=validate,
    multilabel=is_multilabel, decodes=True, few=few, stand_in_size=OFFICIAL_SIZE, options=CelebAOptions,
    train_images=162_079))  # the 8:1:1 split of its 202,599 images
