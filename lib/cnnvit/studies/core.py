"""A study as loaded from its parameter file: its runs (:class:`RunSpec`) and the groups that
say which runs each conclusion compares. :mod:`.study` loads and runs it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..config import Config
from ..errors import ConfigError
from .groups import GroupValue, flatten

RUN_REF = "run:"  # model.pretrained_path: run:NAME starts from an earlier run of the same study


def project_root() -> Path:
    """The checkout this package lives in (``lib/cnnvit/studies`` three levels down)."""
    return Path(__file__).resolve().parents[3]


@dataclass
class RunSpec:
    """One run of a study: its name, how tables name it, its role and its resolved config."""

    name: str
    label: str
    role: str
    config: Config
    reported: Optional[float] = None
    reported_note: str = ""
    starts_from: Optional[str] = None  # the run of this study whose weights it starts from
    replica_of: Optional[str] = None  # `seeds:` the run this one repeats with another seed
    seed_figures: dict[str, dict[str, float]] = field(default_factory=dict)  # {source: {figure: value}}


SEED_SUFFIX = ".seed"  # a repeat of run NAME with seed S is the run NAME.seedS

# the figures a seed may give for a run besides its headline (`reported:`), as a study file's
# `seed_figures: {SOURCE: {FIGURE: value}}` names them, and as the tables head them
SEED_FIGURES = {"acc1": "acc@1", "acc5": "acc@5", "precision": "precision", "recall": "recall", "f1": "F1",
                "auroc": "auROC", "params_m": "params (M)", "gmacs": "GMACs / image", "train_img_s": "train img/s",
                "checkpoint_mb": "checkpoint (MB)", "epoch_min": "min / epoch"}


def seed_setting_difference(spec: RunSpec, seed_spec: Optional[RunSpec]) -> Optional[str]:
    """Why ``spec``'s result cannot be set against the figure its seed reported, or None when it
    can. The figure belongs to the seed's setting, which the paper profile's run of the same name
    holds (``seed_spec``; None: there is none): another data set, task, model, number of training
    images, input size or epoch count is another experiment."""
    if spec.reported is None:
        return "the seed gives no figure for this run"
    if seed_spec is None:
        return "no run of this name in the seed's setting (the paper profile)"
    a, b = spec.config, seed_spec.config
    for what, mine, seeds in (
            ("data set", a.data.name, b.data.name), ("task", a.data.task, b.data.task),
            ("attribute", a.data.attribute, b.data.attribute), ("model", a.model.name, b.model.name),
            ("training images", a.data.train_subset or "all", b.data.train_subset or "all"),
            ("input size", a.data.image_size or "native", b.data.image_size or "native"),
            ("epochs", a.train.epochs, b.train.epochs)):
        if mine != seeds:
            return f"{what} {mine}, the seed setting's {seeds}"
    return None


@dataclass
class Study:
    """Several runs sharing a base config, with the groups its conclusions read."""

    study: str
    profile: str
    title: str
    runs: dict[str, RunSpec]
    source: str
    notes: str = ""
    out_dir: Path = field(default_factory=Path)
    # data sets generated in a real one's format (name -> images, width, height, seed)
    generated: dict[str, dict[str, int]] = field(default_factory=dict)
    # groups: name -> run name, list of run names, or part -> run name(s) (see .groups)
    groups: dict[str, GroupValue] = field(default_factory=dict)
    # what this profile does differently from the seed: {what, seed, here, why} each
    deviations: list[dict[str, str]] = field(default_factory=list)
    # set by open_study: (partial, the runs left out) of the input check already made
    inputs_checked: Optional[tuple[bool, list[str]]] = None

    @property
    def labels(self) -> dict[str, str]:
        """How tables and figures name each run: ``{run: label}``."""
        return {name: spec.label for name, spec in self.runs.items()}

    def repeats(self, name: str) -> list[str]:
        """Run ``name`` and the runs that repeat it with other seeds (``seeds:``), in order."""
        return [name] + [n for n, spec in self.runs.items() if spec.replica_of == name]

    def run_dir(self, name: str) -> Path:
        return self.out_dir / "runs" / name

    @property
    def generated_root(self) -> Path:
        """Where the generated data sets live (``<out_dir>/data/<name>/``)."""
        return self.out_dir / "data"

    def group(self, name: str) -> GroupValue:
        """The runs of group ``name`` as the parameter file gives them."""
        if name not in self.groups:
            raise ConfigError(f"{self.source}: no group {name!r} (groups: {', '.join(self.groups) or 'none'})")
        return self.groups[name]

    def members(self, name: str, *keys: str) -> list[str]:
        """The run names of group ``name`` in order (of a parts group: only the parts ``keys``,
        when given)."""
        return flatten(self.group(name), keys)

    def member(self, name: str, key: Optional[str] = None) -> str:
        """The one run of group ``name`` (of a parts group: its part ``key``)."""
        value = self.group(name)
        if key is not None:
            value = value[key] if isinstance(value, dict) and key in value else None
        if not isinstance(value, str):
            raise ConfigError(f"{self.source}: groups.{name}{'.' + key if key else ''} names no single run")
        return value

    @property
    def pretraining_sources(self) -> set[str]:
        """Runs that other runs of the study start from (``model.pretrained_path: run:NAME``):
        helpers trained on another task, not contenders in their own right."""
        return {spec.starts_from for spec in self.runs.values() if spec.starts_from}

    def contenders(self) -> list[str]:
        """The runs that compete in the study's tables and conclusions: not the repeats of a run
        with other seeds (their spread is the run's), nor the runs others start from."""
        sources = self.pretraining_sources
        return [n for n, spec in self.runs.items() if not spec.replica_of and n not in sources]

    def label(self, name: str) -> str:
        """How tables name run ``name`` (its name, if the study holds no such run)."""
        return self.runs[name].label if name in self.runs else name
