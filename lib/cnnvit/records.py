"""Typed records of a finished run: :class:`RunResult` (its ``metrics.json``) and
:class:`WeightsOrigin` (where its starting weights came from), each read from JSON and written
back to it here, in one place. No torch and no other cnnvit module: training writes these
records, the studies and the report read them.

Run folders written by older versions stay readable, and read back unchanged
(``to_json(from_json(d)) == d``): a key that an older file lacks is remembered as absent and
left out again when the record is written; keys this version does not know are kept in
``extra``; and the fixed sentences that stood for the weights' origin before it was data are
parsed into a :class:`WeightsOrigin` that keeps the sentence as it was written.
"""
from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Optional, TypeVar

R = TypeVar("R", bound="JsonRecord")
_NOT_A_KEY = {"json": False}  # field metadata: book-keeping of a record, not one of its JSON keys


@dataclass(frozen=True, kw_only=True)
class JsonRecord:
    """A frozen record whose fields are the keys of one JSON object, in the order written.
    Subclasses say which keys a file may lack (``OPTIONAL``) and how to read nested values
    (``READERS``); everything else is copied as it is."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset()  # keys older files lack; absent -> the default
    READERS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}  # key -> reader of its JSON value

    # the optional keys the file lacked, and the keys this version does not know
    absent: frozenset[str] = field(default=frozenset(), repr=False, metadata=_NOT_A_KEY)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, metadata=_NOT_A_KEY)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The JSON keys of this record, in the order they are written."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("json", True))

    @classmethod
    def from_json(cls: type[R], d: Mapping[str, Any]) -> R:
        """The record of JSON object ``d``; raises ValueError when ``d`` lacks a required key."""
        if not isinstance(d, Mapping):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
        keys = cls.keys()
        missing = [k for k in keys if k not in d and k not in cls.OPTIONAL]
        if missing:
            raise ValueError(f"{cls.__name__}: missing key(s) {', '.join(missing)}")
        values = {k: cls.READERS[k](d[k]) if k in cls.READERS else d[k] for k in keys if k in d}
        return cls(**values, absent=frozenset(k for k in keys if k not in d),
                   extra={k: v for k, v in d.items() if k not in keys})

    def to_json(self) -> dict[str, Any]:
        """The JSON object this record reads from: the keys it holds, in order, then ``extra``."""
        out = {k: _written(getattr(self, k)) for k in self.keys() if k not in self.absent}
        return {**out, **self.extra}

    def as_written(self) -> Any:
        """What a file holding this record as a value writes (its JSON object, unless a
        subclass read it from an older form)."""
        return self.to_json()


def _written(value: Any) -> Any:
    # nested records as JSON, enum members as their plain values
    if isinstance(value, JsonRecord):
        return value.as_written()
    return value.value if isinstance(value, enum.Enum) else value


def _nullable(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A reader that passes JSON null through (an entry written as None when it does not apply)."""
    return lambda v: None if v is None else read(v)


# ----------------------------------------------------------------------- where weights came from

class WeightsKind(enum.StrEnum):
    """Where a run's starting weights came from (equal to the strings metrics.json holds)."""

    SCRATCH = "scratch"  # the model's random initialisation
    HUB = "hub"  # published weights (timm, torchvision)
    FILE = "file"  # a checkpoint file
    RUN = "run"  # a run of this project (its folder)


# the four fixed sentences cnnvit wrote as ``weights`` before the origin was recorded as data
_LEGACY_RUN = re.compile(r"pretrained on (?P<data>.*?) by this project \((?P<model>.*?), run (?P<run>[^)]*)\)")


@dataclass(frozen=True, kw_only=True)
class WeightsOrigin(JsonRecord):
    """Where a run's starting weights came from (``weights`` in metrics.json): ``kind``;
    ``source`` the hub weights, file or run folder; ``data``, ``model`` and ``run`` what a run of
    this project was (None otherwise); ``label`` says it in words, for display only."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"source", "data", "model", "run"})
    READERS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"kind": WeightsKind}

    kind: WeightsKind
    source: Optional[str] = None
    data: Optional[str] = None
    model: Optional[str] = None
    run: Optional[str] = None
    label: str
    # the sentence an older metrics.json held in place of this record, written back as it was
    legacy: Optional[str] = field(default=None, compare=False, repr=False, metadata=_NOT_A_KEY)

    @classmethod
    def from_json(cls, d: Any) -> WeightsOrigin:
        """The origin as metrics.json holds it: a JSON object, or (run folders written before
        it was data) one of the fixed sentences of that time, whose text stays the label."""
        if isinstance(d, Mapping):
            return super().from_json(d)
        return cls._from_sentence("" if d is None else str(d))

    @classmethod
    def _from_sentence(cls, sentence: str) -> WeightsOrigin:
        label = sentence or cls.scratch().label
        found = _LEGACY_RUN.match(sentence)
        if found:
            return cls(kind=WeightsKind.RUN, label=label, legacy=sentence, **found.groupdict())
        if sentence.startswith("pretrained: "):
            return cls(kind=WeightsKind.HUB, source=sentence.rsplit(" ", 1)[-1], label=label, legacy=sentence)
        if sentence.startswith("pretrained weights from "):
            path = sentence.removeprefix("pretrained weights from ").split(": ", 1)[0]  # less what loaded
            return cls(kind=WeightsKind.FILE, source=path, label=label, legacy=sentence)
        return cls(kind=WeightsKind.SCRATCH, label=label, legacy=sentence)

    @classmethod
    def scratch(cls) -> WeightsOrigin:
        """The origin of a model trained from its random initialisation."""
        return cls(kind=WeightsKind.SCRATCH, label="trained from scratch")

    def as_written(self) -> Any:
        return self.legacy if self.legacy is not None else self.to_json()


# ---------------------------------------------------------------------------------- metrics.json

@dataclass(frozen=True, kw_only=True)
class DatasetCounts(JsonRecord):
    """The data set a run read and its split sizes (``dataset`` in metrics.json)."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"n_val"})

    name: str
    source: str
    n_train: int
    n_val: Optional[int] = None  # (recorded since validation splits exist)
    n_test: int


@dataclass(frozen=True, kw_only=True)
class EarlyStopping(JsonRecord):
    """``early_stopping`` of a run that watched its validation split: the patience, the best
    epoch (whose weights are the result), and the epoch it stopped after (None: it ran out)."""

    patience: int
    best_epoch: int
    stopped_after_epoch: Optional[int] = None


@dataclass(frozen=True, kw_only=True)
class Divergence(JsonRecord):
    """``diverged``: where the loss of a run with ``train.stop_on_nan=false`` stopped being finite."""

    epoch: int
    step: int
    loss: str  # as printed ('nan', 'inf')


@dataclass(frozen=True, kw_only=True)
class RunResult(JsonRecord):
    """A finished run's ``metrics.json``: what ran, how long, on what, and its test results.

    ``test`` is the test split's metrics as scikit-learn computed them (their keys differ by task:
    see :mod:`cnnvit.training.metrics`); ``distributed``, ``data_placement`` and ``compute`` are
    the records of the training classes that wrote them, kept as mappings. Keys recorded since
    the first version are optional, and read as None (``weights``: from scratch; ``task``:
    single-label) in files written before them."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset({
        "trainable_parameters", "weights", "gflops_per_image", "checkpoint_mb", "peak_gpu_memory_gb",
        "model_ema", "epochs_run", "diverged", "early_stopping", "resumed_from_epoch", "task",
        "majority_baseline", "val_accuracy", "best_val_accuracy", "distributed", "data_placement", "compute"})
    READERS: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "weights": WeightsOrigin.from_json, "diverged": _nullable(Divergence.from_json),
        "early_stopping": _nullable(EarlyStopping.from_json), "dataset": DatasetCounts.from_json}

    run: str
    model: str
    parameters: int
    trainable_parameters: Optional[int] = None
    weights: WeightsOrigin = field(default_factory=WeightsOrigin.scratch)
    epochs: int  # as configured
    gflops_per_image: Optional[float] = None
    checkpoint_mb: Optional[float] = None
    peak_gpu_memory_gb: Optional[float] = None  # None off CUDA
    model_ema: Optional[float] = None  # the weight average's decay, when evaluated on it
    epochs_run: Optional[int] = None  # fewer than ``epochs`` when stopped early or diverged
    diverged: Optional[Divergence] = None
    early_stopping: Optional[EarlyStopping] = None
    steps: int
    resumed_from_epoch: Optional[int] = None
    test_accuracy: float  # of a multi-label run: the mean over labels
    test_top5: Optional[float]
    task: str = "single-label"  # or "multilabel"
    majority_baseline: Optional[float] = None
    val_accuracy: Optional[float] = None  # the last evaluated epoch's
    best_val_accuracy: Optional[float] = None
    train_time_s: float
    wall_time_s: float
    train_images_per_s: float
    device: str
    torch: str  # its version
    dataset: DatasetCounts
    distributed: Optional[Mapping[str, Any]] = None
    data_placement: Optional[Mapping[str, Any]] = None
    compute: Optional[Mapping[str, Any]] = None
    finished: str  # ISO time
    test: Mapping[str, Any]

    @property
    def epochs_trained(self) -> int:
        """The epochs the run trained: ``epochs_run``, or (files written before it) ``epochs``."""
        return self.epochs if self.epochs_run is None else self.epochs_run
