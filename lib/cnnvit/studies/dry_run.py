"""A dry run of a study file (``cnnvit study PARAMS --dry-run``): every run of the file (a run
repeated over seeds: its first seed) built at its real size and real input resolution, fed by its
real data pipeline and trained by the real training loop (:func:`cnnvit.training.train`) for two
optimizer steps on the CPU (whatever ``device`` says), in a temporary folder that is removed
afterwards: nothing is marked complete anywhere, and the study's own folder is never touched. It
finds in minutes, before any GPU time is spent, what would stop a run an hour into a job: a model
that does not build or does not take its input size, a config a loader or an augmentation
refuses, a shape error in the loss, a run that cannot be evaluated or saved.

What is shrunk (the run's config as the study builds it, then only these keys):

* ``train.epochs`` 1 and ``train.batch_size`` 2 (at most), and exactly
  ``2 x train.grad_accum`` training batches: two optimizer steps, then the epoch's evaluation,
  early stopping's best-weights path, the final test, metrics.json and model.pt, as in a real run;
* ``train.val_every_steps`` at most 2, so that the validation within an epoch runs once;
* the data: a few images through the data set's own loader (:func:`cnnvit.datasets.take_few`:
  stratified subsets, CelebA's first listed images), then cut to the batches above and at most
  4 validation and 4 test images.

What is replaced, and said in the run's notes:

* hub weights (``model.pretrained: true``; no network is assumed) and weights of an earlier run of
  the study (``model.pretrained_path: run:NAME``, which the dry run does not train for long):
  random initialisation of the same architecture;
* several processes or machines (``train.nproc``, ``train.nnodes``) and SyncBatchNorm: one process;
* a data set absent from the data directory: a stand-in of its shape, in its own format where it
  can be generated (CelebA's attribute file and JPEGs at the official 178 x 218, so that every
  task, multi-label included, runs through its loader), else the synthetic set at its native size
  with its number of classes.

Everything else stays as the study file gives it: augmentation, Mixup/CutMix, EMA, freezing,
layer-wise lr decay, early stopping, image size and resize mode, precision, memory format.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import config as config_mod
from ..config import Config, DataConfig
from ..datasets import (Dataset, dataset_from_config, default_root, get_dataset, locate_dataset, reset_options,
                        stratified_indices, take_few)
from ..errors import CnnvitError, ConfigError, DatasetError
from ..training import read_result, train
from .core import RunSpec, Study
from .study import GENERATED_DEFAULTS, config_layers, load_study, prepare_generated_data

log = logging.getLogger(__name__)

STEPS = 2  # optimizer steps per run
BATCH = 2  # the largest batch of a step (even: Mixup and CutMix pair the images of a batch)
HELD_OUT = 4  # the most validation and test images evaluated
# times the images asked of a loader may double when a split comes out short (fewer images than
# classes in a stratified subset, a class ratio that empties a rare class, a validation share that
# rounds to no image): 4 images become at most 256
GROW = 6


@dataclass
class DryRun:
    """What the dry run of one run found."""

    run: str
    model: str
    seconds: float = 0.0
    parameters: Optional[int] = None
    input_size: Optional[tuple[int, int]] = None  # (height, width) of the images the model takes
    steps: Optional[int] = None  # optimizer steps taken, as the run's metrics.json counts them
    notes: list[str] = field(default_factory=list)
    error: Optional[str] = None  # "ExceptionType: message" when the run failed

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """The run's line: name, model, parameters (M), input size, seconds and notes; or an
        ``error:`` line naming the run and the exception."""
        if not self.ok:
            return f"error: {self.run} ({self.model}): {self.error}"
        size = "x".join(map(str, self.input_size)) if self.input_size else "?"
        params = f"{self.parameters / 1e6:.2f}M" if self.parameters is not None else "?"
        return (f"{self.run:32s} {self.model:32s} {params:>8s} {size:>9s} px {self.seconds:6.1f}s  "
                + "; ".join(self.notes))


@dataclass
class DryRunReport:
    """The dry runs of a study file, in its order, and the time they took in all."""

    source: str
    results: list[DryRun]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def summary(self) -> str:
        """One line: how many runs passed, of how many, in how long, and which failed."""
        failed = [r.run for r in self.results if not r.ok]
        return (f"dry run of {self.source}: {len(self.results) - len(failed)} of {len(self.results)} runs "
                f"passed in {self.seconds:.0f}s" + (f"; failed: {', '.join(failed)}" if failed else ""))


def dry_run_study(path: str | Path, overrides: list[str] = (), only: Optional[list[str]] = None,
                  data_dir: Optional[str | Path] = None,
                  report: Optional[Callable[[DryRun], None]] = None) -> DryRunReport:
    """Dry-run every run of the study file ``path`` (``only``: those runs), each in turn, going
    on after a run fails; ``report`` is called with each run's result as it comes. Raises
    :class:`~cnnvit.errors.ConfigError` only for a file that cannot be read as a study at all, or
    an override that names no config key; a run whose config fails its checks is a failed run."""
    t0 = time.time()
    for text in overrides:  # a misspelt --set key is the caller's error, not every run's failure
        config_mod.apply(Config(), config_mod.parse_override(text), "--set")
    errors: dict[str, CnnvitError] = {}
    results = []
    with tempfile.TemporaryDirectory(prefix="cnnvit-dry-run-") as tmp:
        # the study's folder is a temporary one: its real folder is never read or written
        study = load_study(path, overrides, out_dir=Path(tmp) / "study", only=only, data_dir=data_dir,
                           run_errors=errors)
        prepare_generated_data(study)  # a smoke profile's generated sets, into the temporary folder
        for name in _run_order(path, only):
            if name in errors:
                result = DryRun(name, _model_named(path, name), error=_describe(name, errors[name]))
            else:
                result = dry_run(study, study.runs[name], Path(tmp))
            results.append(result)
            if report is not None:
                report(result)
    return DryRunReport(str(path), results, time.time() - t0)


def _run_order(path: str | Path, only: Optional[list[str]]) -> list[str]:
    """The runs to dry-run, in the file's order (``only``'s, when given); the repeats of a run
    over seeds are not among them (they differ from it by the seed alone)."""
    return list(only) if only else list(config_mod.load_yaml(path)["runs"])


def _model_named(path: str | Path, name: str) -> str:
    """The model a run's own config, those it inherits (``from:``) or the base config names (for
    the line of a run whose config could not be built)."""
    raw = config_mod.load_yaml(path)
    try:
        layers = [layer for layer, _ in reversed(config_layers(raw["runs"], name, path))]
    except ConfigError:  # a broken from: chain: the run's own config only
        layers = [(raw["runs"].get(name) or {}).get("config")]
    for layer in (*layers, raw.get("base")):
        model = (layer or {}).get("model") if isinstance(layer, dict) else None
        if isinstance(model, dict) and model.get("name"):
            return str(model["name"])
    return config_mod.ModelConfig().name


def dry_run(study: Study, spec: RunSpec, tmp: Path) -> DryRun:
    """Two optimizer steps of run ``spec`` through :func:`cnnvit.training.train`, in a run folder
    under ``tmp`` that is removed afterwards (a large model's checkpoint takes gigabytes)."""
    result = DryRun(spec.name, spec.config.model.name)
    out = tmp / "runs" / spec.name
    t0 = time.time()
    try:
        cfg, result.notes = dry_config(spec)
        ds, data_note = few_images(cfg, tmp / "stand-ins")
        result.notes.append(data_note)
        config_mod.validate(cfg)  # the config as shrunk, and with a stand-in's data keys
        log.info("%s: dry run (%s)", spec.name, "; ".join(result.notes))
        train(cfg, out, name=spec.name, dataset=ds, progress=False)
        record = read_result(out)
        result.parameters, result.steps = (record.parameters, record.steps) if record else (None, None)
        result.input_size = (cfg.data.image_size,) * 2 if cfg.data.image_size else ds.image_size
        if result.steps != STEPS:
            raise RuntimeError(f"the run took {result.steps} optimizer steps, not {STEPS}")
    except Exception as exc:  # the next run goes on; Ctrl-C still stops them all
        result.error = _describe(spec.name, exc)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        result.seconds = time.time() - t0
    return result


def _describe(name: str, exc: BaseException) -> str:
    """``ExceptionType: message``; anything but a user error (a bug) also logs its traceback."""
    if not isinstance(exc, CnnvitError):
        log.error("%s: the dry run failed", name, exc_info=exc)
    return f"{type(exc).__name__}: {exc}"


def dry_config(spec: RunSpec) -> tuple[Config, list[str]]:
    """Run ``spec``'s config for its dry run (a copy: the study's is left alone), and notes on what
    was replaced (see the module's docstring)."""
    cfg = config_mod.from_dict(spec.config.to_dict())
    notes = _random_init(cfg, spec) + _one_process(cfg)
    tc = cfg.train
    cfg.device = "cpu"
    tc.epochs = 1  # one epoch of STEPS steps: its evaluation, early stopping and the final test run once
    tc.batch_size = min(tc.batch_size, BATCH)
    if tc.val_every_steps:  # the validation within the epoch runs (once) within the two steps
        tc.val_every_steps = min(tc.val_every_steps, STEPS)
    config_mod.validate(cfg)
    return cfg, notes


def _random_init(cfg: Config, spec: RunSpec) -> list[str]:
    """Hub weights, and an earlier run's weights, replaced by the architecture's random init."""
    m = cfg.model
    if spec.starts_from:  # (its pretrained_path is that run's folder, which holds nothing here)
        m.pretrained_path, m.pretrained = None, False
        return [f"weights of run {spec.starts_from} -> random init"]
    if m.pretrained and not m.pretrained_path:
        m.pretrained = False
        return ["hub weights -> random init"]
    return []


def _one_process(cfg: Config) -> list[str]:
    """Several processes or machines, and SyncBatchNorm across them, replaced by one process."""
    tc, notes = cfg.train, []
    if tc.nproc > 1 or tc.nnodes > 1:
        notes.append(f"train.nproc={tc.nproc}" + (f" x train.nnodes={tc.nnodes}" if tc.nnodes > 1 else "")
                     + " -> one process")
        tc.nproc = tc.nnodes = 1
    if tc.sync_bn:
        tc.sync_bn = False
        notes.append("sync_bn -> off (one process)")
    return notes


def few_images(cfg: Config, stand_ins: Path) -> tuple[Dataset, str]:
    """The run's data set with few images, through its own loader: the data set itself where the
    data directory holds it, else a stand-in (written under ``stand_ins``); and a note saying
    which, with the images of each split. Never downloads."""
    data = cfg.data
    present = _present(data)
    data.download = False
    origin = f"data: {data.name}" if present else _stand_in(data, stand_ins)
    # a first try may come out with an empty split: its statistics are NaN, and the try is not kept
    with np.errstate(invalid="ignore", divide="ignore"):
        ds = _load_few(cfg)
    if present:
        origin += f", {ds.source}"
    counts = f"{len(ds.train_labels)} train / {len(ds.val_labels)} val / {len(ds.test_labels)} test images"
    return ds, f"{origin} ({counts})"


def _present(data: DataConfig) -> bool:
    """Whether the data set is where the config says (a download is not counted on)."""
    download, data.download = data.download, False
    try:
        locate_dataset(data)
        return True
    except DatasetError as exc:
        log.debug("%s: %s", data.name, exc)
        return False
    finally:
        data.download = download


def _stand_in(data: DataConfig, folder: Path) -> str:
    """Point ``data`` at a stand-in for its absent data set; returns the note that says so. A data
    set that can be generated in its own format is (once per dry run, under ``folder``), at its
    official image size, so that its own loader and tasks run; any other becomes the synthetic set
    at its native size with its number of classes."""
    spec, where = get_dataset(data.name), data.root or default_root(data.name)
    if spec.generate is not None:
        w, h = spec.stand_in_size or (GENERATED_DEFAULTS["width"], GENERATED_DEFAULTS["height"])
        n, target = GENERATED_DEFAULTS["images"], folder / data.name
        if not target.exists():
            spec.generate(target, n, GENERATED_DEFAULTS["seed"], (w, h))
        data.root = str(target)
        return f"data: no {data.name} under {where} -> {n} generated {w}x{h} images in its format"
    side = spec.image_side(data)
    if spec.num_classes is None or side is None:
        raise DatasetError(f"{data.name} not found under {where}, and no stand-in can be made for it "
                           f"(its classes or image size are unknown without it); set data.root or DATA_DIR")
    name, classes = data.name, spec.num_classes(data)
    data.name, data.root, data.decode_size = "synthetic", None, None
    reset_options(data)  # the absent set's own options, which the synthetic set refuses
    data.synthetic_size, data.synthetic_classes = side, classes
    return f"data: no {name} under {where} -> synthetic {side} px stand-in, {classes} classes"


def _load_few(cfg: Config) -> Dataset:
    """The data set with enough training images for STEPS optimizer steps of train.grad_accum
    micro-batches, at least one validation image where the run holds a validation split out (an
    early-stopping run needs one) and one test image, cut to exactly those steps' images and at
    most HELD_OUT held-out images. The images asked of the loader double while a split comes out
    short (see GROW)."""
    data, tc = cfg.data, cfg.train
    need = STEPS * tc.grad_accum * tc.batch_size
    n_train, n_test = _train_size(need, data.val_fraction), HELD_OUT
    for _ in range(GROW + 1):
        take_few(data, n_train, n_test)
        ds = dataset_from_config(data, cfg.seed)
        if _enough(ds, data, need):
            return _cut(ds, {"train": need, "val": HELD_OUT, "test": HELD_OUT}, cfg.seed)
        n_train, n_test = 2 * n_train, 2 * n_test
    raise DatasetError(f"{data.name}: even {n_train // 2} training and {n_test // 2} test images asked of its "
                       f"loader leave fewer than {need} to train on or an empty validation or test split")


def _train_size(need: int, val_fraction: float) -> int:
    """The fewest training images from which a validation share of ``val_fraction`` (rounded as
    :func:`cnnvit.datasets.hold_out_validation` rounds it) leaves ``need`` and holds out at least
    one."""
    n = need
    while n - round(val_fraction * n) < need or (val_fraction and round(val_fraction * n) < 1):
        n += 1
    return n


def _enough(ds: Dataset, data: DataConfig, need: int) -> bool:
    spec = get_dataset(data.name)
    wants_val = bool(data.val_fraction) or spec.has_own_validation(data)
    return len(ds.train_labels) >= need and len(ds.test_labels) >= 1 and (len(ds.val_labels) >= 1 or not wants_val)


def _cut(ds: Dataset, sizes: dict[str, int], seed: int) -> Dataset:
    """Each split of ``ds`` cut to at most ``sizes[split]`` images (stratified where the labels
    are classes), with its recorded files."""
    for split, k in sizes.items():
        labels = getattr(ds, f"{split}_labels")
        if len(labels) <= k:
            continue
        keep = stratified_indices(labels, k, seed) if labels.ndim == 1 else np.arange(k)
        setattr(ds, f"{split}_images", getattr(ds, f"{split}_images")[keep])
        setattr(ds, f"{split}_labels", labels[keep])
        if ds.split_files and split in ds.split_files:
            ds.split_files[split] = [ds.split_files[split][i] for i in keep]
    return ds
