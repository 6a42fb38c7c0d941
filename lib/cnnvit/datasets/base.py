"""What every data set shares: the :class:`Dataset` arrays, the primitives the loaders are built
from (stratified subsets, the validation share, channel statistics, image decoding, where a data
set's folder lies), and the registry of data sets.

A data set is described once, by a :class:`DatasetSpec` registered from its own module
(``synthetic``, ``cifar10``, ``tiny_imagenet``, ``celeba``): its name, folder, image size,
default validation share, how to locate, load, prepare, fetch and generate it, and the config
rules it adds. The functions at the end (:func:`dataset_from_config`, :func:`locate_dataset`,
...) dispatch through the registry; nothing outside a data set's module names it.

Everything is held in memory (N x H x W x 3 uint8) so that a loader can put it on the GPU once
and augment there. No torch here: a config is built and validated without it.
"""
from __future__ import annotations

import functools
import logging
import os
import typing
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..errors import ConfigError, DatasetError
from ..rules import Rule, scalar
from .cache import cache_roots, cached_arrays, decode_images, decode_to_npy, source_key  # noqa: F401
# (decode_images re-exported: the loaders decode through it)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
STATS_MAX_IMAGES = 20000  # more moves the statistics by less than 1e-3 and costs seconds


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


# --------------------------------------------------------------------------- subsets and splits

# the seed a run's seed becomes for each random choice of its images (so that the choices differ
# from one another, and each stays the same when another changes): the stratified subsets of
# the train and test splits, the validation share, and the subsampling of each split to a class
# ratio (train, val, test: +3, +4, +5)
SUBSET_SEED_OFFSET = {"train": 0, "test": 1, "val": 2, "ratio": 3}


def subset_indices(labels: np.ndarray, n: int, seed: int, split: str) -> np.ndarray:
    """Indices of a stratified subset of ``n`` of ``labels``, a ``split`` of the data set (train,
    test, val), drawn by the run's ``seed`` (offset per split, :data:`SUBSET_SEED_OFFSET`).
    Loaders that decode files take their subsets with it before decoding, so that a subset
    decodes only its own images."""
    return stratified_indices(labels, n, seed + SUBSET_SEED_OFFSET[split])


def stratified_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a subset of size ``n`` with the class proportions of ``labels`` (largest remainder)."""
    labels = np.asarray(labels)
    if n > len(labels):  # said, not clamped silently: the run trains on fewer images than asked
        log.warning("a subset of %d images was asked of a split of %d (data.train_subset or "
                    "data.test_subset): all %d are used", n, len(labels), len(labels))
    if n >= len(labels):
        return np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    take = np.floor(exact).astype(int)
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n - take.sum()]] += 1
    return _draw(labels, classes, take, seed)


def _draw(labels: np.ndarray, classes: np.ndarray, take: np.ndarray, seed: int) -> np.ndarray:
    """Sorted indices of ``take[i]`` images of each class ``classes[i]``, drawn at random by ``seed``."""
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picked))


def first_classes(labels: np.ndarray, classes: Optional[int], split: str) -> np.ndarray:
    """Indices of the images of ``labels`` whose class is among the first ``classes`` (all when
    None); :class:`DatasetError` when the split has fewer classes than asked for."""
    labels = np.asarray(labels)
    if not classes:
        return np.arange(len(labels))
    have = int(labels.max()) + 1 if len(labels) else 0
    if classes > have:
        raise DatasetError(f"data.classes: {classes} asked for, but the {split} split has {have} classes")
    return np.flatnonzero(labels < classes)


def take_subsets(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], seed: int, *,
                 train_subset: Optional[int] = None, test_subset: Optional[int] = None,
                 classes: Optional[int] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The first ``classes`` classes (None: all) of the ``(images, labels)`` splits, then
    stratified subsets of both (None: the whole split), chosen by ``seed``: train images, train
    labels, test images, test labels."""
    (train_x, train_y), (test_x, test_y) = train, test
    if classes:
        keep, keep_test = first_classes(train_y, classes, "train"), first_classes(test_y, classes, "test")
        train_x, train_y, test_x, test_y = train_x[keep], train_y[keep], test_x[keep_test], test_y[keep_test]
    if train_subset:
        keep = subset_indices(train_y, train_subset, seed, "train")
        train_x, train_y = train_x[keep], train_y[keep]
    if test_subset:
        keep = subset_indices(test_y, test_subset, seed, "test")
        test_x, test_y = test_x[keep], test_y[keep]
    return train_x, train_y, test_x, test_y


def ratio_indices(labels: np.ndarray, ratio: list[float], seed: int, split: str) -> np.ndarray:
    """Indices of the largest subset of ``labels`` whose class counts stand in ``ratio`` (one
    weight per class, in class order), each class's images drawn at random by ``seed``."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=len(ratio))
    if len(counts) != len(ratio):
        raise DatasetError(f"data.class_ratio: {len(ratio)} weights for the {len(counts)} classes of the "
                           f"{split} split")
    r = np.asarray(ratio, dtype=float)
    scale = float(np.min(counts / r))
    return _draw(labels, np.arange(len(r)), np.floor(r * scale + 1e-9).astype(int), seed)


def subsample_to_ratio(ds: Dataset, ratio: list[float], seed: int) -> Dataset:
    """Every split of ``ds`` (and its recorded files) subsampled to the class proportions ``ratio``."""
    for k, split in enumerate(("train", "val", "test")):
        labels = getattr(ds, f"{split}_labels")
        if not len(labels):
            continue
        keep = ratio_indices(labels, ratio, seed + SUBSET_SEED_OFFSET["ratio"] + k, split)
        setattr(ds, f"{split}_images", getattr(ds, f"{split}_images")[keep])
        setattr(ds, f"{split}_labels", labels[keep])
        if ds.split_files and split in ds.split_files:
            ds.split_files[split] = [ds.split_files[split][i] for i in keep]
    return ds


def hold_out_validation(ds: Dataset, fraction: float, seed: int) -> Dataset:
    """Move a stratified ``fraction`` of the training split into ``val_images``."""
    n_val = int(round(fraction * len(ds.train_labels)))
    if n_val == 0:
        return ds
    val = subset_indices(ds.train_labels, n_val, seed, "val")
    keep = np.setdiff1d(np.arange(len(ds.train_labels)), val)
    ds.val_images, ds.val_labels = ds.train_images[val], ds.train_labels[val]
    ds.train_images, ds.train_labels = ds.train_images[keep], ds.train_labels[keep]
    return ds


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


# --------------------------------------------------------------------------- image files

def class_tree(folder: Path) -> dict[str, list[str]]:
    """``{class: sorted image files}`` of a ``<folder>/<class>/*`` tree, classes sorted (hidden
    folders are no classes; a class folder without images is kept, so that it can be reported)."""
    tree, broken = {}, []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            _check_name(entry.path)
            with os.scandir(entry.path) as it:
                images = [e for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES]
            for e in images:
                _check_name(e.path)
            # a link to nothing (or to itself) is no image: skipped, and said
            readable = {e.name for e in images if _is_file(e)}
            broken += [e.path for e in images if e.name not in readable]
            names = sorted(readable)
            tree[entry.name] = [os.path.join(entry.path, n) for n in names]
    if broken:
        log.warning("%d image link(s) under %s lead nowhere (dangling, or a loop) and are left out: %s",
                    len(broken), folder, ", ".join(sorted(broken)[:3]) + (" ..." if len(broken) > 3 else ""))
    return tree


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:  # a link that loops (ELOOP): no file behind it
        return False


def _check_name(path: str) -> None:
    """A file name that is not valid UTF-8 (os.scandir keeps its bytes as surrogates) cannot be
    written to split.csv or shown: refused, naming it, before any decoding."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", errors="backslashreplace")
        raise DatasetError(f"file name is not valid UTF-8: {shown}; rename it (e.g. with convmv) and "
                           "run again") from None


def list_image_folder(split_dir: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """The images of a ``<split_dir>/<class>/*`` tree: files (classes sorted, then files
    sorted), their labels, and the class names."""
    tree = class_tree(split_dir)
    files = [f for found in tree.values() for f in found]
    if not files:
        raise DatasetError(f"no images found under {split_dir}/<class>/")
    labels = [i for i, found in enumerate(tree.values()) for _ in found]
    return files, np.asarray(labels, dtype=np.int64), list(tree)


def decode_cached(data_folder: Path, prefix: str, files: list[str], decode_size: Optional[int], title: str,
                  decoded_from: str, key_files: tuple[Path, ...] = (), key_extra: str = "") -> tuple[np.ndarray, str]:
    """Every image of ``files``, in order, as one uint8 array memory-mapped from the decoded cache
    ``<prefix>-<key>`` of ``data_folder`` (filled first when missing or stale; see :mod:`.cache`),
    resized to ``decode_size`` x ``decode_size`` when given; and where it came from
    (``decoded_from``: the files, in words). The cache's key covers ``files``, ``key_files`` (an
    index the files are read by) and the decode size (and ``key_extra``)."""
    resize = (decode_size, decode_size) if decode_size else None

    def fill(into: Path) -> None:
        log.info("decoding %d %s images from %s (once; cached afterwards)", len(files), title, data_folder)
        decode_to_npy(files, into / "images.npy", resize=resize, desc=f"decoding {title}")

    key = source_key([*key_files, *files], extra=f"decode_size={decode_size}{key_extra}")
    cached = cached_arrays(cache_roots(data_folder, default_data_dir()), prefix, key, ("images",), fill, title)
    return cached.arrays["images"], cached.source(decoded_from)


# --------------------------------------------------------------------------- where data sets lie

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
    spec = _REGISTRY.get(name)
    return parent / (spec.folder if spec and spec.folder else name)


def root_of(name: str, root: Optional[str | Path]) -> Path:
    """``data.root`` as a path (``~`` expanded), or the data set's :func:`default_root`."""
    return Path(root).expanduser() if root else default_root(name)


def locate_folder(data_cfg: DataSource, find_folder: Callable[[Path], Optional[Path]],
                  not_found: Callable[[Path], str],
                  check: Optional[Callable[[Path, Any], None]] = None) -> str:
    """:attr:`DatasetSpec.locate` for a data set found by its folder's index file: where it will
    come from, after ``check(folder, data_cfg)`` of what the config asks of the files."""
    root = root_of(data_cfg.name, data_cfg.root)
    folder = find_folder(root)
    if folder and check:
        check(folder, data_cfg)
    if folder:
        return f"official layout in {folder}"
    if data_cfg.download:
        return f"to be downloaded into {root}"
    raise DatasetError(not_found(root))


# --------------------------------------------------------------------------- what to load

def option(default: Any, help: str, *, refused_elsewhere: bool | str = False, **rule: Any) -> Any:
    """A data set's own config key ``data.<name>``, as a field of its options class (see
    :attr:`DatasetSpec.options`): its default, its help text and the values it allows
    (:class:`~cnnvit.rules.Rule` keywords: ``choices``, ``low``, ``high``, ...). Another data
    set ignores it (a study's ``base:`` may set it for some runs only), unless
    ``refused_elsewhere`` (True, or the hint the error gives): then a changed value with another
    data set is an error, for a key whose silent neglect would change what a run means."""
    return field(default=default, metadata={"help": help, "rule": Rule(**rule),
                                            "refused_elsewhere": refused_elsewhere})


@dataclass(frozen=True)
class NoOptions:
    """The options of a data set that has none of its own."""


@dataclass(eq=False, repr=False)
class DataSource:
    """What a loader is asked for: the ``data.*`` keys every data set reads (which images, from
    where) and, as attributes too, the registered data sets' own options (:func:`option`), kept
    flat so that parameter files and saved configs name them ``data.<option>``. The config's
    ``DataConfig`` extends it with what happens to the images afterwards."""

    name: str = "synthetic"  # a registered data set: synthetic | cifar10 | cifar100 | tiny-imagenet |
    # celeba | imagefolder (a train/<class>/* tree of one's own)
    root: Optional[str] = None  # folder holding the data set; None: ~/.cache/cnnvit-data/<name>
    download: bool = False  # fetch from the official source when missing (needs internet)
    train_subset: Optional[int] = None  # stratified subset of the training split
    test_subset: Optional[int] = None  # stratified subset of the test split
    classes: Optional[int] = None  # keep only the first N classes (data set's order), both splits
    decode_size: Optional[int] = None  # resize every image to N x N once, when decoding (imagefolder,
    # celeba); None: keep the files' size (an image folder's images must then share one size)
    class_ratio: Optional[list[float]] = None  # subsample every split to these class proportions
    # stratified share of the training split held out as validation; None: the data set's own
    # protocol (its DatasetSpec.val_fraction), resolved when the config is built
    val_fraction: Optional[float] = None
    mean: Optional[list[float]] = None  # per-channel constants to normalise with; None: the training split's
    std: Optional[list[float]] = None  # (e.g. a seed's published constants, or ImageNet's for hub weights)

    def __getattr__(self, name: str) -> Any:
        # only reached for a name that is no field and was not set: an option's default
        found = _OPTIONS.get(name)
        if found is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__} has no key {name!r}")
        return found[1].default

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _source_fields(type(self)) and name not in _OPTIONS:
            raise AttributeError(f"data.{name} is no config key (nor a registered data set's option)")
        object.__setattr__(self, name, value)

    @classmethod
    def of(cls, name: str, **keys: Any) -> DataSource:
        """A source for data set ``name`` with any of its keys or options set by name (an unknown
        one: AttributeError naming it)."""
        source = cls(name=name)
        for key, value in keys.items():
            setattr(source, key, value)
        return source

    def option_values(self) -> dict[str, Any]:
        """``{option: value}`` of every registered data set's own options, in registration order."""
        return {name: getattr(self, name) for name in _OPTIONS}

    def own_option_values(self) -> dict[str, Any]:
        """``{option: value}`` of the options of this source's data set (``name``): the ones its
        loader reads, and so the ones a run's saved config and identity hold."""
        return {key: getattr(self, key) for key, (owner, _) in _OPTIONS.items() if owner == self.name}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _source_fields(type(self))) \
            and self.option_values() == other.option_values()

    __hash__ = None  # mutable, like any dataclass compared by value

    def __repr__(self) -> str:
        # every key, options included: equal reprs mean equal sources (a study shares one loaded
        # data set between runs whose data configs print alike)
        keys = {**{f: getattr(self, f) for f in sorted(_source_fields(type(self)))}, **self.option_values()}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in keys.items())})"


@functools.cache  # a class's fields do not change; asked on every key a config sets
def _source_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


# --------------------------------------------------------------------------- the registry

@dataclass(frozen=True)
class Source:
    """One file to download: its URL, its name on disk, its MD5, and (if the URL is not one a
    person would open) the page to get it from by hand."""

    url: str
    filename: str
    md5: Optional[str]
    page: Optional[str] = None


@dataclass(frozen=True)
class FetchSpec:
    """What a data set says about itself to be fetched and checked (by :mod:`.fetch`).

    ``unpack(files, staging, progress)`` turns the downloaded files (by file name) into the
    contents of the data set's folder, written into ``staging``. ``inspect(folder)`` looks at a
    data set's folder the way its loader does: None when the data set is not there, a short
    description when it is, :class:`~cnnvit.errors.DatasetError` when it is there but unreadable.
    """

    name: str  # data.name
    title: str
    sources: tuple[Source, ...]
    unpack: Callable[[dict[str, Path], Path, bool], None]
    inspect: Callable[[Path], Optional[str]]
    layout: str  # what the folder holds, for messages
    note: str = ""  # anything else a person placing the files by hand should know


def _no_rules(data_cfg: DataSource) -> None:
    return None


def _single_label(data_cfg: DataSource) -> bool:
    return False


@dataclass(frozen=True)
class DatasetSpec:
    """One data set, described once. ``data_cfg`` is a :class:`~cnnvit.config.DataConfig` (or
    any object with its fields)."""

    name: str  # data.name
    # (data_cfg, seed) -> Dataset with data.train_subset / test_subset taken (stratified, by the
    # seed); the validation share, the statistics and the copy out of a memory map follow
    load: Callable[[DataSource, int], Dataset]
    # (data_cfg) -> where it will come from, without reading an image; DatasetError if it cannot
    locate: Callable[[DataSource], str]
    folder: Optional[str] = None  # its folder under a data directory; None: none on disk
    native_size: Optional[int] = None  # image side in pixels; None: any size (or see size_of)
    size_of: Optional[Callable[[DataSource], int]] = None  # image side set by the config (generated sets)
    val_fraction: float = 0.0  # default data.val_fraction (the study protocol's share)
    own_validation: bool = False  # its loader holds out a validation split of its own
    # (data_cfg) -> whether the files give a validation split (a cheap look, without decoding)
    given_validation: Optional[Callable[[DataSource], bool]] = None
    # (data_cfg) -> None: download if asked and missing, fill a cache; once per machine
    prepare: Optional[Callable[[DataSource], None]] = None
    fetch: Optional[FetchSpec] = None  # sources, unpacking and the check of `cnnvit data check`
    # (folder, images, seed, (width, height)) -> writes a small generated copy in its format
    generate: Optional[Callable[..., Any]] = None
    validate: Callable[[DataSource], None] = _no_rules  # its own config rules; raises ConfigError
    multilabel: Callable[[DataSource], bool] = _single_label  # whether data_cfg asks for a multi-label task
    decodes: bool = False  # decodes image files of any size: data.decode_size applies
    # a dry run (``cnnvit study --dry-run``): (data_cfg, n_train, n_test) -> data_cfg set to load
    # about that many training and test images, decoding no more than it needs; None: stratified
    # data.train_subset and data.test_subset (see :func:`take_few`)
    few: Optional[Callable[[DataSource, int, int], None]] = None
    # (data_cfg) -> how many classes (labels) it has, without reading it: what a synthetic
    # stand-in needs where the data set is absent; None: unknown
    num_classes: Optional[Callable[[DataSource], int]] = None
    # (width, height) of a generated stand-in's images (``generate``): the official files' size
    stand_in_size: Optional[tuple[int, int]] = None
    # its own data.* keys: a frozen dataclass whose fields are made with :func:`option`; the
    # loader reads them typed, through :meth:`options_of`
    options: type = NoOptions
    # images in its full training split (before a validation share is held out): cost projections
    train_images: Optional[int] = None

    @property
    def title(self) -> str:
        """Its name in prose (its fetch spec's title, else its data.name)."""
        return self.fetch.title if self.fetch else self.name

    def options_of(self, source: DataSource) -> Any:
        """Its own options as given by ``source``: an instance of :attr:`options`."""
        return self.options(**{f.name: getattr(source, f.name) for f in fields(self.options)})

    def has_own_validation(self, data_cfg: DataSource) -> bool:
        """Whether ``data_cfg``'s data come with a validation split (``data.val_fraction`` then stays 0)."""
        return self.own_validation or bool(self.given_validation and self.given_validation(data_cfg))

    def image_side(self, data_cfg: DataSource) -> Optional[int]:
        """The side in pixels of the images ``data_cfg`` loads (None: they keep their own sizes)."""
        return self.size_of(data_cfg) if self.size_of else self.native_size


_REGISTRY: dict[str, DatasetSpec] = {}
_OPTIONS: dict[str, tuple[str, Field]] = {}  # option name: (the data set declaring it, its field)
_OPTION_TYPES: dict[str, Any] = {}  # option name: its type hint, resolved once, at registration


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Make ``spec`` known under ``spec.name`` (as a ``data.name`` choice, to the loaders, the
    CLI and the studies) and its options as ``data.*`` keys; returns it, so a module can keep it
    as ``SPEC = register_dataset(...)``."""
    if spec.name in _REGISTRY:
        raise ValueError(f"data set {spec.name!r} is registered already")
    if spec.fetch is not None and spec.fetch.name != spec.name:
        raise ValueError(f"data set {spec.name!r}: its fetch spec is named {spec.fetch.name!r}")
    for f in fields(spec.options):
        taken = _OPTIONS.get(f.name, (None,))[0] or ("every data set" if f.name in _source_fields(DataSource) else None)
        if taken:
            raise ValueError(f"data set {spec.name!r}: its option {f.name!r} is a key of {taken} already")
    _REGISTRY[spec.name] = spec
    _OPTIONS.update({f.name: (spec.name, f) for f in fields(spec.options)})
    hints = typing.get_type_hints(spec.options)
    _OPTION_TYPES.update({f.name: hints[f.name] for f in fields(spec.options)})
    return spec


def unregister_dataset(name: str) -> None:
    """Forget a registered data set and its options (tests register their own for a while)."""
    if _REGISTRY.pop(name, None) is not None:
        for key in [k for k, (owner, _) in _OPTIONS.items() if owner == name]:
            del _OPTIONS[key], _OPTION_TYPES[key]


def options() -> dict[str, tuple[str, Field]]:
    """``{option: (data set, field)}`` of every registered data set's own ``data.*`` keys; a
    field's ``metadata`` holds its ``help`` and its :class:`~cnnvit.rules.Rule`."""
    return dict(_OPTIONS)


def option_types() -> dict[str, Any]:
    """``{option: type}`` of every registered option (the type hints of their options classes)."""
    return dict(_OPTION_TYPES)


def check_options(source: DataSource) -> None:
    """Every option's own rule, and no option another data set refuses elsewhere changed from
    its default: one :class:`ConfigError` naming the key."""
    for key, (owner, f) in _OPTIONS.items():
        value = getattr(source, key)
        refused = f.metadata["refused_elsewhere"]
        if owner != source.name and refused and value != f.default:
            hint = refused if isinstance(refused, str) else f"leave it at {scalar(f.default)}"
            raise ConfigError(f"data.{key}: only {get_dataset(owner).title} has this option (data.name={owner}), "
                              f"not {source.name}; {hint}")
        problem = f.metadata["rule"].problem(value)
        if problem:
            raise ConfigError(f"data.{key}: {problem}")


def reset_options(source: DataSource) -> None:
    """Every option of a data set other than ``source.name``'s back to its default (a config
    pointed at another data set, e.g. a dry run's stand-in)."""
    for key, (owner, f) in _OPTIONS.items():
        if owner != source.name:
            setattr(source, key, f.default)


def names() -> list[str]:
    """Every registered ``data.name``, in the order registered."""
    return list(_REGISTRY)


def registered() -> list[DatasetSpec]:
    """Every registered data set's spec, in the order registered."""
    return list(_REGISTRY.values())


def get_dataset(name: str) -> DatasetSpec:
    """The spec of data set ``name``; :class:`DatasetError` for an unknown name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DatasetError(f"unknown data set {name!r} (known: {', '.join(_REGISTRY)})") from None


def default_val_fraction(name: str) -> float:
    """The data set's default ``data.val_fraction`` (0 for an unknown name: refused later)."""
    spec = _REGISTRY.get(name)
    return spec.val_fraction if spec else 0.0


def generators() -> dict[str, Callable[..., Any]]:
    """``{name: generate}`` of the data sets that can be generated in their own format."""
    return {s.name: s.generate for s in _REGISTRY.values() if s.generate is not None}


# --------------------------------------------------------------------------- loading by name

def dataset_from_config(data_cfg: DataSource, seed: int) -> Dataset:
    """The data set of a :class:`~cnnvit.config.DataConfig`. Subsets and the validation split
    are stratified and chosen by ``seed`` (the subset is taken first, the validation share from
    it). Mean and std are those of the images left to train on, unless ``data.mean`` and
    ``data.std`` give constants."""
    ds = get_dataset(data_cfg.name).load(data_cfg, seed)
    if data_cfg.classes:  # the loader kept only their images
        ds.classes = ds.classes[:data_cfg.classes]
    ds = hold_out_validation(ds, data_cfg.val_fraction, seed)
    if data_cfg.class_ratio:
        ds = subsample_to_ratio(ds, data_cfg.class_ratio, seed)
    for attr in ("train_images", "train_labels", "test_images", "test_labels", "val_images",
                 "val_labels"):  # read what is still memory-mapped (torch wants writable arrays)
        if isinstance(getattr(ds, attr), np.memmap):
            setattr(ds, attr, np.array(getattr(ds, attr)))
    ds.mean, ds.std = channel_stats(ds.train_images)
    if data_cfg.mean:  # published constants instead of the split's own
        ds.mean = tuple(float(v) for v in data_cfg.mean)
    if data_cfg.std:
        ds.std = tuple(float(v) for v in data_cfg.std)
    return ds


def load_dataset(name: str, root: Optional[str] = None, *, seed: int = 0, **keys: Any) -> Dataset:
    """:func:`dataset_from_config` with the data keys as arguments (for scripts and tests): any
    :class:`DataSource` key or registered option, by name; ``val_fraction`` defaults to 0 here
    (no validation share), not to the data set's protocol."""
    return dataset_from_config(DataSource.of(name, **{"root": root, "val_fraction": 0.0, **keys}), seed)


def locate_dataset(data_cfg: DataSource) -> str:
    """Check, without reading any image, that the data set of a
    :class:`~cnnvit.config.DataConfig` can be loaded; return where it will come from, or raise
    :class:`DatasetError` naming where it looked."""
    return get_dataset(data_cfg.name).locate(data_cfg)


def take_few(data_cfg: DataSource, n_train: int, n_test: int) -> None:
    """Set ``data_cfg`` to load about ``n_train`` training and ``n_test`` test images (a dry
    run): the data set's own :attr:`DatasetSpec.few`, else stratified subsets of both splits
    (taken before any decoding by the loaders that decode files)."""
    spec = get_dataset(data_cfg.name)
    if spec.few is not None:
        spec.few(data_cfg, n_train, n_test)
    else:
        data_cfg.train_subset, data_cfg.test_subset = n_train, n_test


def prepare_dataset(data_cfg: DataSource) -> None:
    """Download the data set if asked and missing, and fill its decoded cache, without loading it:
    done by one process before several start reading."""
    spec = get_dataset(data_cfg.name)
    if spec.prepare is not None:
        spec.prepare(data_cfg)
