"""A study: several runs that share a base config, described by one parameter file per profile.

Parameter file (``params/<profile>/<study>.yaml``)::

    study: 01_cifar10_vit_vs_resnet
    profile: smoke
    title: ...
    base: {data: {...}, train: {...}}          # config shared by every run
    runs:
      seed_resnet18:
        label: ResNet-18, seed setting          # how tables and plots name it
        role: seed                              # seed | ablation | strong
        reported: 0.88                          # the seed's number, if it has one
        config: {model: {name: resnet18}, ...}  # this run's config on top of base
      seed_resnet18_erasing:
        from: seed_resnet18                     # start from that run's config (its config:
        config: {data: {random_erasing: 0.25}}  # over base), then this run's config over it
    groups:                                     # which runs each conclusion compares (the
      seed_settings: {cnn: seed_resnet18, ...}  # study module's GROUPS say which groups)
    generated: {celeba: {images: 600, width: 36, height: 44}}  # optional: a generated set in a
                                                # real data set's format (smoke profiles)

Runs go to ``outputs/<profile>/<study>/runs/<name>/``. A run that is complete with the same
config is loaded, not retrained; a partial one resumes; one made with another config is moved
aside (never deleted) and trained again.

``from: RUN`` (any run of the file, listed before or after; chains allowed) inherits RUN's
``config:`` only, itself resolved with its own ``from:``: the layers are base, then the chain's
``config:`` mappings from the farthest source in, then the run's own ``config:``, each merged key
by key (a list such as ``data.mean`` is replaced whole). Label, role, ``reported``,
``seed_figures`` and ``seeds:`` (with the seed it sets) stay the run's own: they describe the run,
not its recipe. A run's config, and so its identity, is the same whether its settings are
inherited or written out. An unknown run, the run itself or a cycle is a :class:`ConfigError`
when the file is loaded.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from .. import config as config_mod
from ..config import Config, config_layers  # noqa: F401 (config_layers re-exported)
from ..datasets import dataset_from_config, default_root, generators, get_dataset, locate_dataset
from ..errors import CnnvitError, ConfigError, DatasetError, StudyInputError, WeightsError
from ..models import check_pretrained
from ..records import RunResult
from ..training import Run, RunStatus, check_device, check_run_inputs, load_run, read_result, run_state, train
from .core import RUN_REF, SEED_FIGURES, SEED_SUFFIX, RunSpec, Study, project_root
from .groups import check_groups
from .registry import group_schema

log = logging.getLogger(__name__)

RUN_KEYS = {"label", "role", "reported", "reported_note", "seed_figures", "config", "seeds", "from"}
STUDY_KEYS = {"study", "profile", "title", "base", "runs", "groups", "notes", "generated", "deviations"}
# deviations: what the profile does differently from the seed; each entry names these
DEVIATION_KEYS = ("what", "seed", "here", "why")
# generated.<data set>: what may be set, and its default
GENERATED_DEFAULTS = {"images": 600, "width": 36, "height": 44, "seed": 0}
ROLES = ("seed", "ablation", "strong")


def load_study(path: str | Path, overrides: list[str] = (), out_dir: Optional[str | Path] = None,
               only: Optional[list[str]] = None, data_dir: Optional[str | Path] = None,
               expect: Optional[str] = None, run_errors: Optional[dict[str, CnnvitError]] = None) -> Study:
    """Read and validate a study parameter file; every run's config is built (and checked) now,
    so a bad key in any run fails before the first run starts. ``data_dir`` is the folder that
    holds the real data sets (``cifar10/``, ...): it sets ``data.root`` of every run that leaves
    it unset. ``only`` keeps those runs (the groups are checked against all of them). ``expect``:
    the study the caller (a notebook) shows; another study's file is refused before any training,
    since its groups are not the ones the caller reads. ``run_errors`` (a dry run, which reports
    every run): a run whose config fails its checks is left out of the study and its error kept
    there under its name, instead of failing the whole file."""
    path = Path(path)
    raw = config_mod.load_yaml(path)
    unknown = set(raw) - STUDY_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown study key(s) {sorted(unknown)}; known: {sorted(STUDY_KEYS)}")
    for key in ("study", "profile", "runs"):
        if key not in raw:
            raise ConfigError(f"{path}: missing required key {key!r}")
    if expect is not None and raw["study"] != expect:
        raise ConfigError(f"{path} is a parameter file of study {raw['study']!r}, not of {expect!r} that "
                          f"this notebook shows; pass one of params/<profile>/{expect}.yaml")
    runs_raw = raw["runs"]
    if not isinstance(runs_raw, dict) or not runs_raw:
        raise ConfigError(f"{path}: 'runs' must be a non-empty mapping of run name to run")
    groups = check_groups(raw.get("groups"), list(runs_raw), group_schema(raw["study"]), str(path))
    if only:
        missing = [n for n in only if n not in runs_raw]
        if missing:
            raise ConfigError(f"{path}: no run named {missing}; runs: {', '.join(runs_raw)}")
        runs_raw = {n: runs_raw[n] for n in only}
    all_runs = raw["runs"]  # what ``from:`` may name, whatever ``only`` keeps
    generated = _generated_spec(raw.get("generated") or {}, path)
    runs: dict[str, RunSpec] = {}
    file = _StudyFile(path, raw.get("base") or {}, list(overrides), data_dir, generated)
    for name, spec in runs_raw.items():
        try:
            run = _run_spec(name, spec, file, runs, config_layers(all_runs, name, path))
            repeats = _repeats(run, spec.get("seeds"), f"{path}: runs.{name}.seeds")
        except CnnvitError as exc:
            if run_errors is None:
                raise
            run_errors[name] = exc
            continue
        runs[name] = run
        runs.update(repeats)
    study = Study(raw["study"], raw["profile"], raw.get("title", raw["study"]), runs, str(path),
                  raw.get("notes", ""), generated=generated, groups=groups,
                  deviations=_deviations(raw.get("deviations") or [], path))
    study.out_dir = Path(out_dir) if out_dir else project_root() / "outputs" / study.profile / study.study
    for spec in runs.values():  # a generated set replaces the real one wherever none is named
        if spec.config.data.name in generated and not spec.config.data.root:
            spec.config.data.root = str(study.generated_root)
    for spec in runs.values():  # weights trained by an earlier run of this study
        if spec.starts_from:
            spec.config.model.pretrained_path = str(study.run_dir(spec.starts_from))
    return study


def _deviations(raw: Any, path: Path) -> list[dict[str, str]]:
    """The ``deviations:`` list: each entry a mapping of exactly ``DEVIATION_KEYS`` to text."""
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: deviations: expected a list of {{{', '.join(DEVIATION_KEYS)}}} entries")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != set(DEVIATION_KEYS):
            got = sorted(item) if isinstance(item, dict) else type(item).__name__
            raise ConfigError(f"{path}: deviations[{i}]: expected the keys {', '.join(DEVIATION_KEYS)}, got {got}")
        out.append({k: str(item[k]).strip() for k in DEVIATION_KEYS})
    return out


@dataclass(frozen=True)
class _StudyFile:
    """What every run of a study file is built from, besides its own entry."""

    path: Path
    base: dict[str, Any]  # its base: config
    overrides: list[str]  # key=value, over every run
    data_dir: Optional[str | Path]  # where the real data sets lie
    generated: dict[str, dict[str, int]]  # its generated: data sets


def _run_spec(name: str, spec: Any, file: _StudyFile, earlier: dict[str, RunSpec],
              layers: list[tuple[dict[str, Any], str]]) -> RunSpec:
    """One run of a study file, its config built on the file's ``base:`` and ``layers`` (the
    ``config:`` of its ``from:`` chain, then its own; :func:`config_layers`) and checked
    (``earlier``: the runs listed before it, which ``run:NAME`` may name)."""
    path, data_dir, generated = file.path, file.data_dir, file.generated
    where = f"{path}: runs.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping")
    bad = set(spec) - RUN_KEYS
    if bad:
        raise ConfigError(f"{where}: unknown key(s) {sorted(bad)}; known: {sorted(RUN_KEYS)}")
    role = spec.get("role", "seed")
    if role not in ROLES:
        raise ConfigError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
    cfg = config_mod.build((file.base, f"{path}: base"), *layers, overrides=file.overrides)
    if data_dir and get_dataset(cfg.data.name).folder and cfg.data.name not in generated \
            and not cfg.data.root:
        cfg.data.root = str(default_root(cfg.data.name, data_dir))
    try:
        check_run_inputs(cfg)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    source = cfg.model.pretrained_path
    starts_from = source[len(RUN_REF):] if source and source.startswith(RUN_REF) else None
    if starts_from is not None and starts_from not in earlier:
        raise ConfigError(f"{where}: model.pretrained_path {source!r} must name a run listed "
                          f"before it (runs so far: {', '.join(earlier) or 'none'})")
    if source and starts_from is None and not Path(source).expanduser().is_absolute():
        cfg.model.pretrained_path = str(project_root() / source)
    return RunSpec(name, spec.get("label", name), role, cfg, spec.get("reported"),
                   spec.get("reported_note", ""), starts_from,
                   seed_figures=_seed_figures(spec.get("seed_figures"), f"{where}.seed_figures"))


def _seed_figures(raw: Any, where: str) -> dict[str, dict[str, float]]:
    """``seed_figures: {SOURCE: {FIGURE: value}}``: the seeds' own figures for a run, shown
    beside ours in the tables (FIGURE one of :data:`~.core.SEED_FIGURES`)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"{where}: expected {{source: {{figure: value}}}}, got {raw!r}")
    out: dict[str, dict[str, float]] = {}
    for source, figures in raw.items():
        bad = set(figures) - set(SEED_FIGURES)
        if bad:
            raise ConfigError(f"{where}.{source}: unknown figure(s) {sorted(bad)}; known: {sorted(SEED_FIGURES)}")
        wrong = [k for k, v in figures.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
        if wrong:
            raise ConfigError(f"{where}.{source}: {', '.join(wrong)} must be numbers")
        out[str(source)] = {k: float(v) for k, v in figures.items()}
    return out


def _repeats(run: RunSpec, seeds: Any, where: str) -> dict[str, RunSpec]:
    """``seeds: [s0, s1, ...]``: the run itself takes seed s0 and a copy ``NAME.seedS`` runs with
    each other seed (data order, augmentation and initial weights all follow ``seed``), so that
    tables and conclusions can give the mean and spread over seeds."""
    if seeds is None:
        return {}
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise ConfigError(f"{where}: expected a list of distinct non-negative integer seeds, got {seeds!r}")
    run.config.seed = seeds[0]
    out = {}
    for s in seeds[1:]:
        cfg = config_mod.from_dict(run.config.to_dict())
        cfg.seed = s
        name = f"{run.name}{SEED_SUFFIX}{s}"
        out[name] = replace(run, name=name, label=f"{run.label} (seed {s})", config=cfg, replica_of=run.name)
    return out


def study_config_for_run(path: str | Path, run: str, overrides: list[str] = ()) -> Config:
    """The resolved config of one run of a study file (what ``cnnvit train FILE --run NAME`` uses)."""
    return load_study(path, overrides, only=[run]).runs[run].config


def _generated_spec(raw: Any, path: Path) -> dict[str, dict[str, int]]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: generated: expected a mapping of data set name to its size")
    out = {}
    for name, spec in raw.items():
        if name not in generators():  # data sets that can be generated in their format
            raise ConfigError(f"{path}: generated.{name}: only {', '.join(generators())} can be generated")
        spec = spec or {}
        bad = set(spec) - set(GENERATED_DEFAULTS)
        if bad or not all(isinstance(v, int) and not isinstance(v, bool) and v >= (0 if k == "seed" else 1)
                          for k, v in spec.items()):
            raise ConfigError(f"{path}: generated.{name}: expects positive integers for images, width "
                              f"and height, and a seed >= 0 (keys: {', '.join(GENERATED_DEFAULTS)}); "
                              f"got {spec}")
        out[name] = {**GENERATED_DEFAULTS, **spec}
    return out


def prepare_generated_data(study: Study) -> None:
    """Write the study's generated data sets once (they are reused while their size is unchanged)."""
    for name, spec in study.generated.items():
        folder = study.generated_root / name
        stamp = folder / "generated.json"
        if stamp.exists() and json.loads(stamp.read_text()) == spec:
            continue
        log.info("generating %d %s-format images in %s", spec["images"], name, folder)
        generators()[name](folder, spec["images"], spec["seed"], (spec["width"], spec["height"]))
        stamp.write_text(json.dumps(spec))


def input_problems(study: Study) -> dict[str, list[str]]:
    """Each problem that stops a run which still has to train (its data set or device missing,
    its pretrained weights absent) -> the runs it stops; runs already complete need neither.
    Generated data sets are written first."""
    prepare_generated_data(study)
    problems: dict[str, list[str]] = {}
    for name, spec in study.runs.items():
        if run_state(spec.config, study.run_dir(name)) == RunStatus.COMPLETE:
            continue
        checks = [(locate_dataset, spec.config.data), (check_device, spec.config)]
        if not spec.starts_from:  # an earlier run of the study will provide the weights
            checks.append((check_pretrained, spec.config))
        for check, arg in checks:
            try:
                check(arg)
            except (DatasetError, ConfigError, WeightsError) as exc:
                problems.setdefault(str(exc), []).append(name)
    return problems


def _input_error(study: Study, problems: dict[str, list[str]]) -> StudyInputError:
    lines = [f"- {msg} (runs: {', '.join(runs)})" for msg, runs in problems.items()]
    return StudyInputError(f"study {study.study} (profile {study.profile}, {study.source}) cannot "
                           f"start:\n" + "\n".join(lines))


def check_study_inputs(study: Study, partial: bool = False) -> list[str]:
    """Before any training: every run that still has to train finds its data set and its device.
    Raises :class:`StudyInputError` listing all problems; with ``partial``, only when no run is
    complete or can train. Returns the runs that cannot train (``partial``), in study order."""
    problems = input_problems(study)
    skipped = runs_that_cannot_train(study, problems) if partial else []
    if problems and (not partial or len(skipped) == len(study.runs)):
        raise _input_error(study, problems)
    for msg, names in problems.items():
        log.warning("partial study: left out (cannot train here): %s: %s", ", ".join(names), msg)
    return skipped


def runs_that_cannot_train(study: Study, problems: dict[str, list[str]]) -> list[str]:
    """The runs ``problems`` stop, and the runs that start from their weights, in study order."""
    stopped = {name for runs in problems.values() for name in runs}
    # a complete run needs neither its data nor its source's weights any more
    complete = {n for n, spec in study.runs.items()
                if run_state(spec.config, study.run_dir(n)) == RunStatus.COMPLETE}
    changed = True
    while changed:  # a run whose source cannot train cannot train either
        follow = {n for n, spec in study.runs.items() if spec.starts_from in stopped} - stopped - complete
        stopped |= follow
        changed = bool(follow)
    return [n for n in study.runs if n in stopped]


def run_study(study: Study, progress: bool = True, partial: bool = False) -> dict[str, Run]:
    """Train every run of the study that is not complete yet; return them all, loaded.
    Runs that share a data config share one loaded data set.

    ``partial``: where some runs cannot train on this machine (no GPU, a data set or weights
    missing), train the others and return every complete run, leaving those out (logged);
    without a single complete run the study still fails. Without it, any problem fails the
    study before any training."""
    # open_study's check, made just before, stands for this first run only: a later call (the
    # cell run again, after fetching the data) checks afresh
    checked, study.inputs_checked = study.inputs_checked, None
    skipped = checked[1] if checked and checked[0] == partial else check_study_inputs(study, partial)
    results: dict[str, Run] = {}
    cache: dict[str, Any] = {}
    for name, spec in study.runs.items():
        if name in skipped:
            continue
        run_dir = study.run_dir(name)
        state = run_state(spec.config, run_dir)
        if state == RunStatus.CONFLICT:
            stamp, n = time.strftime("%Y%m%d-%H%M%S"), 1
            aside = run_dir.with_name(f"{name}.replaced-{stamp}")
            while aside.exists():
                n += 1
                aside = run_dir.with_name(f"{name}.replaced-{stamp}-{n}")
            log.warning("%s: %s was made with another config; moved to %s", name, run_dir, aside)
            run_dir.rename(aside)
            state = RunStatus.NEW
        if state != RunStatus.COMPLETE:
            key = repr(spec.config.data) + str(spec.config.seed)
            if key not in cache:
                cache.clear()  # keep one data set in memory at a time
                cache[key] = dataset_from_config(spec.config.data, spec.config.seed)
            log.info("%s: %s", name, "resuming" if state == RunStatus.PARTIAL else "training")
            train(spec.config, run_dir, name=name, dataset=cache[key], progress=progress)
        else:
            log.info("%s: complete, loaded from %s", name, run_dir)
        results[name] = load_run(run_dir, device="cpu")
    return results


def completed_metrics(study: Study) -> dict[str, Optional[RunResult]]:
    """Each run's ``metrics.json`` record if the run is complete with the study's current config,
    else None; reads no model or data."""
    out: dict[str, Optional[RunResult]] = {}
    for name, spec in study.runs.items():
        run_dir = study.run_dir(name)
        out[name] = read_result(run_dir) if run_state(spec.config, run_dir) == RunStatus.COMPLETE else None
    return out
