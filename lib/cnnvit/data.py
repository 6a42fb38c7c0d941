"""Data sets as whole uint8 arrays: CIFAR-10 (torchvision pickles or an image-folder tree) and a
generated synthetic set. Everything is held in memory (N x H x W x 3 uint8) so that a loader can
put it on the GPU once and augment there."""
from __future__ import annotations

from .errors import DatasetError

import logging
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .config import CnnvitError
from .fetch import FetchSpec, Source, extract_archive

log = logging.getLogger(__name__)

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SYNTHETIC_SEED = 20241123  # fixed: the synthetic set is the same everywhere, whatever the run seed




@dataclass
class Dataset:
    """Train and test splits as uint8 N x H x W x 3 arrays with integer labels (or, for a
    multi-label task, N x K float 0/1 label matrices; ``classes`` then names the K labels)."""

    name: str
    classes: list[str]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # where the images came from, for the record
    mean: tuple[float, float, float]  # per-channel, in [0, 1], from the training split
    std: tuple[float, float, float]
    # held out from the training split (data.val_fraction); empty when none is
    val_images: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1, 3), np.uint8))
    val_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    # the image files of each split, where the data set has files (saved with every run)
    split_files: Optional[dict[str, list[str]]] = None

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[1:3])

    @property
    def multilabel(self) -> bool:
        return self.train_labels.ndim == 2

    def class_counts(self, labels: np.ndarray) -> np.ndarray:
        """Images per class (per label: images having it, for a multi-label task)."""
        if self.multilabel:
            return np.asarray(labels).sum(0).astype(np.int64) if len(labels) else np.zeros(len(self.classes), np.int64)
        return np.bincount(labels, minlength=len(self.classes))

    def describe(self) -> str:
        """A short human-readable account: splits, class counts and image size."""
        h, w = self.image_size
        kind = "labels (multi-label: images having each)" if self.multilabel else "classes"
        lines = [f"data set: {self.name}  ({self.source})",
                 f"image size: {h}x{w}x3 uint8, {len(self.classes)} {kind}",
                 f"mean: {fmt3(self.mean)}  std: {fmt3(self.std)}"]
        splits = [("train", self.train_labels), ("validation", self.val_labels), ("test", self.test_labels)]
        for split, labels in [(n, y) for n, y in splits if n != "validation" or len(y)]:
            counts = self.class_counts(labels)
            lines.append(f"{split}: {len(labels)} images")
            lines.extend(f"  {i:3d} {c:<20s} {n}" for i, (c, n) in enumerate(zip(self.classes, counts)))
        return "\n".join(lines)


def fmt3(v) -> str:
    return "(" + ", ".join(f"{x:.4f}" for x in v) + ")"


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a subset of size ``n`` with the class proportions of ``labels`` (largest remainder)."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    take = np.floor(exact).astype(int)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked))


def take_subsets(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 train_subset: Optional[int], test_subset: Optional[int], seed: int):
    """Stratified subsets of both splits (None: the whole split), chosen by ``seed``."""
    if train_subset:
        keep = stratified_indices(train_y, train_subset, seed)
        train_x, train_y = train_x[keep], train_y[keep]
    if test_subset:
        keep = stratified_indices(test_y, test_subset, seed + 1)
        test_x, test_y = test_x[keep], test_y[keep]
    return train_x, train_y, test_x, test_y


STATS_MAX_IMAGES = 20000  # more moves the statistics by less than 1e-3 and costs seconds


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] from a histogram of the uint8 values, over at most
    :data:`STATS_MAX_IMAGES` evenly spaced images (all of them for smaller sets)."""
    images = images[::-(-len(images) // STATS_MAX_IMAGES) or 1]
    hist = np.zeros((3, 256), np.int64)
    for start in range(0, len(images), 2048):
        chunk = np.asarray(images[start:start + 2048])
        for c in range(3):  # bincount of one channel's uint8 values: no widening of the batch
            hist[c] += np.bincount(chunk[..., c].ravel(), minlength=256)
    hist = hist.astype(np.float64)
    values = np.arange(256) / 255.0
    count = hist.sum(1)
    mean = (hist * values).sum(1) / count
    std = np.sqrt(np.maximum((hist * values ** 2).sum(1) / count - mean ** 2, 1e-12))
    return tuple(float(x) for x in mean), tuple(float(x) for x in std)


# --------------------------------------------------------------------------- synthetic

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
    return Dataset("synthetic", [f"class_{i}" for i in range(num_classes)], tr_x, tr_y, te_x, te_y,
                   f"generated (seed {SYNTHETIC_SEED})", mean, std)


# --------------------------------------------------------------------------- CIFAR-10

# each real data set's folder under a data directory (the layout ``cnnvit data fetch`` makes)
DATA_FOLDERS = {"cifar10": "cifar10", "tiny-imagenet": "tiny-imagenet-200", "celeba": "celeba"}


def find_marked_folder(root: Path, marker: str, subfolder: str) -> Optional[Path]:
    """``root`` or ``root/subfolder``, whichever holds the file ``marker`` (a data set's index)."""
    for folder in (root, root / subfolder):
        if (folder / marker).is_file():
            return folder
    return None


def default_data_dir() -> Path:
    """The folder holding the data sets when none is given: ``~/.cache/cnnvit-data``."""
    return Path.home() / ".cache" / "cnnvit-data"


def default_root(name: str, data_dir: Optional[str | Path] = None) -> Path:
    """Where data set ``name`` is looked for when ``data.root`` is unset: its folder under
    ``data_dir`` (default :func:`default_data_dir`)."""
    parent = Path(data_dir).expanduser() if data_dir else default_data_dir()
    return parent / DATA_FOLDERS.get(name, name)


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except FileNotFoundError as exc:
        raise DatasetError(f"CIFAR-10 batch file missing: {path}") from exc
    except Exception as exc:  # a truncated or foreign file fails in many ways inside pickle
        raise DatasetError(f"CIFAR-10 batch file unreadable (corrupt or not a CIFAR pickle): "
                           f"{path}: {exc}") from exc


def _load_cifar_pickles(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in names:
            batch = _read_pickle(folder / name)
            try:
                data = np.asarray(batch["data"], dtype=np.uint8)
                xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                ys.append(np.asarray(batch["labels"], dtype=np.int64))
            except (KeyError, ValueError) as exc:
                raise DatasetError(f"CIFAR-10 batch file has an unexpected layout: "
                                   f"{folder / name}: {exc}") from exc
        return np.concatenate(xs), np.concatenate(ys)

    train_x, train_y = read([f"data_batch_{i}" for i in range(1, 6)])
    test_x, test_y = read(["test_batch"])
    classes = CIFAR10_CLASSES
    meta = folder / "batches.meta"
    if meta.exists():
        classes = list(_read_pickle(meta).get("label_names", CIFAR10_CLASSES))
    return train_x, train_y, test_x, test_y, classes


def _list_image_folder(split_dir: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    files, labels = [], []
    for i, c in enumerate(classes):
        found = sorted(p for p in (split_dir / c).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [i] * len(found)
    if not files:
        raise DatasetError(f"no images found under {split_dir}/<class>/")
    return files, np.asarray(labels, dtype=np.int64), classes


def decode_images(files: list[Path], size: Optional[tuple[int, int]] = None, workers: int = 8) -> np.ndarray:
    """Decode image files to one uint8 N x H x W x 3 array; a bad file raises naming the file.
    Grayscale and palette images are converted to RGB. All images must share one size."""
    from PIL import Image

    def one(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as exc:
            raise DatasetError(f"unreadable image: {path}: {exc}") from exc
        return arr

    if not files:
        return np.zeros((0, *(size or (32, 32)), 3), np.uint8)
    with ThreadPoolExecutor(workers) as pool:
        arrays = list(pool.map(one, files))
    first = size or arrays[0].shape[:2]
    for path, a in zip(files, arrays):
        if a.shape[:2] != tuple(first):
            raise DatasetError(f"image {path} is {a.shape[1]}x{a.shape[0]}, expected "
                               f"{first[1]}x{first[0]} like the others")
    return np.stack(arrays)


def _find_cifar_format(root: Path) -> tuple[str, Path] | None:
    for folder in (root / "cifar-10-batches-py", root):
        if (folder / "data_batch_1").exists():
            return "pickle", folder
    for folder in (root, root / "cifar10"):
        if (folder / "train").is_dir() and (folder / "test").is_dir():
            return "folder", folder
    return None


def _cifar_not_found(root: Path) -> DatasetError:
    return DatasetError(
        f"CIFAR-10 not found under {root}: looked for {root}/cifar-10-batches-py/"
        f"data_batch_1, {root}/data_batch_1 (torchvision's format) and "
        f"{root}/train/<class>/, {root}/test/<class>/ (image folders). "
        f"Set data.root to the folder that holds it (or DATA_DIR to its parent), or fetch it: "
        f"python -m cnnvit data fetch cifar10 --to DATA_DIR (or data.download=true; needs internet).")


def inspect_cifar10(root: Path) -> Optional[str]:
    """What :func:`load_cifar10` would find in ``root`` (None: nothing), reading the pickles
    through and listing the image folders; raises :class:`DatasetError` where they are unreadable."""
    found = _find_cifar_format(root)
    if found is None:
        return None
    fmt, folder = found
    if fmt == "pickle":
        train_x, _, test_x, _, classes = _load_cifar_pickles(folder)
        return (f"torchvision's format in {folder}: {len(classes)} classes, {len(train_x):,} train "
                f"and {len(test_x):,} test images")
    train_files, train_y, classes = _list_image_folder(folder / "train")
    test_files, _, test_classes = _list_image_folder(folder / "test")
    if test_classes != classes:
        raise DatasetError(f"class folders differ between {folder / 'train'} and {folder / 'test'}")
    # one image per class decoded: a folder of broken files fails here, not an hour into a run
    decode_images([train_files[int(i)] for i in np.unique(train_y, return_index=True)[1]])
    return (f"image folders in {folder}: {len(classes)} classes, {len(train_files):,} train and "
            f"{len(test_files):,} test images")


def _unpack_cifar10(files: dict[str, Path], staging: Path, progress: bool) -> None:
    extract_archive(files["cifar-10-python.tar.gz"], staging, progress)  # cifar-10-batches-py/


CIFAR10_FETCH = FetchSpec(
    name="cifar10", title="CIFAR-10",
    sources=(Source("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz",
                    "c58f30108f718f92721af3b95e74349a"),),  # torchvision's archive and MD5
    unpack=_unpack_cifar10, inspect=inspect_cifar10,
    layout="cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (torchvision's format) "
           "or train/<class>/*, test/<class>/* (image folders, e.g. PNG or JPEG)")


def load_cifar10(root: Optional[str], download: bool, train_subset: Optional[int],
                 test_subset: Optional[int], seed: int) -> Dataset:
    """CIFAR-10 from torchvision's pickles or a ``train/<class>/*``, ``test/<class>/*`` tree."""
    root_path = Path(root).expanduser() if root else default_root("cifar10")
    found = _find_cifar_format(root_path)
    if found is None and download:
        fetch_for_loader(CIFAR10_FETCH, root_path)
        found = _find_cifar_format(root_path)
    if found is None:
        raise _cifar_not_found(root_path)
    fmt, folder = found
    if fmt == "pickle":
        train_x, train_y, test_x, test_y, classes = _load_cifar_pickles(folder)
        train_x, train_y, test_x, test_y = take_subsets(train_x, train_y, test_x, test_y,
                                                        train_subset, test_subset, seed)
        source = f"torchvision pickles in {folder}"
    else:
        train_files, train_y, classes = _list_image_folder(folder / "train")
        test_files, test_y, test_classes = _list_image_folder(folder / "test")
        if test_classes != classes:
            raise DatasetError(f"class folders differ between {folder / 'train'} and {folder / 'test'}")
        # subset before decoding: a 5,000-image run need not read all 50,000 files
        if train_subset:
            keep = stratified_indices(train_y, train_subset, seed)
            train_files, train_y = [train_files[i] for i in keep], train_y[keep]
        if test_subset:
            keep = stratified_indices(test_y, test_subset, seed + 1)
            test_files, test_y = [test_files[i] for i in keep], test_y[keep]
        train_x = decode_images(train_files)
        test_x = decode_images(test_files, size=train_x.shape[1:3])
        source = f"image folders in {folder}"
    mean, std = channel_stats(train_x)
    return Dataset("cifar10", classes, train_x, train_y, test_x, test_y, source, mean, std)


def fetch_for_loader(spec: FetchSpec, root: Path) -> None:
    """``data.download=true``: fetch a missing data set into the folder its loader reads."""
    from . import fetch

    log.info("downloading %s into %s", spec.title, root)
    try:
        fetch.fetch_into(spec, root, again="it again")
    except fetch.FetchError as exc:
        raise DatasetError(f"{spec.title} download into {root} failed: {exc}") from exc


# ----------------------------------------------------------------------- Tiny-ImageNet-200

def load_tiny_imagenet(root: Optional[str], download: bool, train_subset: Optional[int],
                       test_subset: Optional[int], seed: int, use_cache: bool = True,
                       stats: bool = True) -> Dataset:
    """Tiny-ImageNet-200 (official layout); its labelled val split is our test split. The arrays
    may be memory-mapped from the cache (``stats=False``: mean and std left to the caller)."""
    from . import tiny_imagenet as tin

    root_path = Path(root).expanduser() if root else default_root("tiny-imagenet")
    folder = tin.find_folder(root_path)
    if folder is None and download:
        fetch_for_loader(tin.FETCH, root_path)
        folder = tin.find_folder(root_path)
    if folder is None:
        raise DatasetError(tin.not_found_message(root_path))
    a = tin.load_arrays(folder, use_cache=use_cache)
    train_x, train_y, test_x, test_y = take_subsets(a["train_x"], a["train_y"], a["test_x"], a["test_y"],
                                                    train_subset, test_subset, seed)
    mean, std = channel_stats(train_x) if stats else (None, None)
    return Dataset("tiny-imagenet", a["classes"], train_x, train_y, test_x, test_y, a["source"], mean, std)


def hold_out_validation(ds: Dataset, fraction: float, seed: int) -> Dataset:
    """Move a stratified ``fraction`` of the training split into ``val_images``."""
    n_val = int(round(fraction * len(ds.train_labels)))
    if n_val == 0:
        return ds
    val = stratified_indices(ds.train_labels, n_val, seed + 2)
    keep = np.setdiff1d(np.arange(len(ds.train_labels)), val)
    ds.val_images, ds.val_labels = ds.train_images[val], ds.train_labels[val]
    ds.train_images, ds.train_labels = ds.train_images[keep], ds.train_labels[keep]
    return ds


def load_celeba(root: Optional[str], download: bool, task: str, attribute: str, attributes: str,
                train_subset: Optional[int], test_subset: Optional[int], seed: int) -> Dataset:
    """CelebA (torchvision's format) for one task, split 8:1:1 (stratified by hair colour, by
    ``seed``; the same split for every task): the validation tenth is held out here already.
    Only the images kept are decoded."""
    from . import celeba

    root_path = Path(root).expanduser() if root else default_root("celeba")
    folder = celeba.find_folder(root_path)
    if folder is None and download:
        fetch_for_loader(celeba.FETCH, root_path)
        folder = celeba.find_folder(root_path)
    if folder is None:
        raise DatasetError(celeba.not_found_message(root_path))
    attrs = celeba.parse_attributes(folder / celeba.ATTR_FILE)
    images = celeba.find_image_folder(folder, attrs.files)
    labels, classes = celeba.task_labels(attrs, task, attribute, attributes)
    train, val, test = celeba.split_811(celeba.split_key(attrs), seed)  # one split for every task
    key = celeba.stratification_key(labels)
    if train_subset:
        train = train[stratified_indices(key[train], train_subset, seed)]
    if test_subset:
        test = test[stratified_indices(key[test], test_subset, seed + 1)]
    decode = lambda idx: decode_images([images / attrs.files[i] for i in idx])  # noqa: E731
    ds = Dataset("celeba", classes, decode(train), labels[train], decode(test), labels[test],
                 f"{task} task, images in {images}", (0.5,) * 3, (0.25,) * 3,
                 val_images=decode(val), val_labels=labels[val],
                 split_files={split: [attrs.files[i] for i in idx]
                              for split, idx in (("train", train), ("val", val), ("test", test))})
    return ds


def load_dataset(name: str, root: Optional[str] = None, download: bool = False,
                 train_subset: Optional[int] = None, test_subset: Optional[int] = None,
                 seed: int = 0, synthetic_train: int = 2000, synthetic_test: int = 500,
                 val_fraction: float = 0.0, synthetic_size: int = 32,
                 synthetic_classes: int = 10, task: str = "binary", attribute: str = "Eyeglasses",
                 attributes: str = "all") -> Dataset:
    """Load a data set by name; subsets and the validation split are stratified and chosen by
    ``seed`` (the subset is taken first, the validation share from it). Mean and std are those
    of the images left to train on."""
    if name == "synthetic":
        ds = synthetic(synthetic_train, synthetic_test, synthetic_size, synthetic_classes)
        ds.train_images, ds.train_labels, ds.test_images, ds.test_labels = take_subsets(
            ds.train_images, ds.train_labels, ds.test_images, ds.test_labels, train_subset,
            test_subset, seed)
    elif name == "cifar10":
        ds = load_cifar10(root, download, train_subset, test_subset, seed)
    elif name == "tiny-imagenet":
        ds = load_tiny_imagenet(root, download, train_subset, test_subset, seed, stats=False)
    elif name == "celeba":
        ds = load_celeba(root, download, task, attribute, attributes, train_subset, test_subset, seed)
    else:
        raise DatasetError(f"unknown data set {name!r}")
    ds = hold_out_validation(ds, val_fraction, seed)
    for attr in ("train_images", "train_labels", "test_images", "test_labels", "val_images",
                 "val_labels"):  # read what is still memory-mapped (torch wants writable arrays)
        if isinstance(getattr(ds, attr), np.memmap):
            setattr(ds, attr, np.array(getattr(ds, attr)))
    ds.mean, ds.std = channel_stats(ds.train_images)
    return ds


LAYOUT_MODULES = {"celeba": "celeba", "tiny-imagenet": "tiny_imagenet"}  # find_folder, not_found_message


def locate_dataset(data_cfg) -> str:
    """Check, without reading any image, that the data set of a
    :class:`~cnnvit.config.DataConfig` can be loaded; return where it will come from, or raise
    :class:`DatasetError` naming where it looked."""
    if data_cfg.name == "synthetic":
        return "generated synthetic set"
    if data_cfg.name == "cifar10":
        root = Path(data_cfg.root).expanduser() if data_cfg.root else default_root("cifar10")
        found = _find_cifar_format(root)
        if found:
            return f"{found[0]} format in {found[1]}"
        if data_cfg.download:
            return f"to be downloaded into {root}"
        raise _cifar_not_found(root)
    if data_cfg.name in LAYOUT_MODULES:  # data sets whose module finds their folder
        import importlib

        module = importlib.import_module(f".{LAYOUT_MODULES[data_cfg.name]}", __package__)
        root = Path(data_cfg.root).expanduser() if data_cfg.root else default_root(data_cfg.name)
        folder = module.find_folder(root)
        if folder and hasattr(module, "check_config"):  # what the config asks of the files
            module.check_config(folder, data_cfg)
        if folder:
            return f"official layout in {folder}"
        if data_cfg.download:
            return f"to be downloaded into {root}"
        raise DatasetError(module.not_found_message(root))
    raise DatasetError(f"unknown data set {data_cfg.name!r}")


def prepare_dataset(data_cfg) -> None:
    """Download the data set if asked and missing, and fill its decoded cache, without loading it:
    done by one process before several start reading."""
    if data_cfg.name == "cifar10" and data_cfg.download:
        load_cifar10(data_cfg.root, True, 1, 1, 0)
    elif data_cfg.name == "tiny-imagenet":
        load_tiny_imagenet(data_cfg.root, data_cfg.download, 1, 1, 0, stats=False)


def dataset_from_config(data_cfg, seed: int) -> Dataset:
    """:func:`load_dataset` with the fields of a :class:`~cnnvit.config.DataConfig`."""
    return load_dataset(data_cfg.name, data_cfg.root, data_cfg.download, data_cfg.train_subset,
                        data_cfg.test_subset, seed, data_cfg.synthetic_train, data_cfg.synthetic_test,
                        data_cfg.val_fraction, data_cfg.synthetic_size, data_cfg.synthetic_classes,
                        data_cfg.task, data_cfg.attribute, data_cfg.attributes)
