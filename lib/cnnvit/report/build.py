"""``make report``: execute every study notebook headless with papermill, then assemble one HTML
and PDF report (:mod:`.render`).

A study whose notebook, parameter file, library code, pinned requirements and report parameters
are all unchanged since its last successful execution (and whose runs are all still on disk) is
not executed again. A study that fails keeps its section, showing the error and the notebook up
to the failing cell; the other studies still run, and the build exits non-zero at the end.

Each study's parameter file is read once per build, into a :class:`StudyPlan` (the study, its
title, what will stop it, the runs that cannot train here, the seed's setting, its papermill
parameters and fingerprint); what its execution changes, the state of its runs, is read from the
run folders where it is used.

Files under ``outputs/<profile>/``: ``<study>.ipynb`` (executed), ``<study>.html`` (with code),
``<study>.record.json`` (status, time, fingerprint), ``<study>/runs/...``, ``report.html``,
``report.pdf``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from ..errors import ConfigError, DatasetError, ReportError, StudyInputError
from ..studies import Study, check_study_inputs, completed_metrics, load_study
from ..studies.core import seed_setting_difference
from ..studies.registry import seed_metric
from ..training import load_run
from . import render
from .cost import Projector, read_throughput
from .render import ReportStatus, StudyOutcome

log = logging.getLogger(__name__)


@dataclass
class StudyEntry:
    """One study: its notebook and the parameter file of the chosen profile."""

    name: str  # notebook stem, e.g. 01_cifar10_vit_vs_resnet
    notebook: Path
    params: Path  # absolute
    params_rel: str  # as the notebook's params_file parameter (relative to the project root)


def discover_studies(root: Path, profile: str, only: Optional[Sequence[str]] = None) -> list[StudyEntry]:
    """The study notebooks (``notebooks/NN_*.ipynb``) and their ``params/<profile>/`` files.
    ``only`` picks studies by number (``01``) or full name; anything unknown is an error."""
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    profiles = sorted(p.name for p in (root / "params").iterdir() if p.is_dir()) if (root / "params").is_dir() else []
    if profile not in profiles:
        raise ReportError(f"unknown profile {profile!r}: params/ has {', '.join(profiles) or 'no profiles'}")
    if only:
        chosen = []
        for token in only:
            hits = [nb for nb in notebooks if nb.stem == token or nb.stem.split("_", 1)[0] == token.zfill(2)]
            if not hits:
                raise ReportError(f"no study {token!r}; studies: {', '.join(nb.stem for nb in notebooks)}")
            chosen += [h for h in hits if h not in chosen]
        notebooks = chosen
    entries = []
    for nb in notebooks:
        rel = f"params/{profile}/{nb.stem}.yaml"
        if not (root / rel).exists():
            raise ReportError(f"study {nb.stem} has no parameter file {rel} for profile {profile!r}")
        entries.append(StudyEntry(nb.stem, nb, root / rel, rel))
    if not entries:
        raise ReportError(f"no study notebooks in {root / 'notebooks'}")
    return entries


# the code that builds the report around the notebooks (paths under lib/cnnvit/; a folder stands
# for everything in it): no notebook imports it, so changing it re-renders the report without
# executing any study again
REPORT_ONLY = ("report/", "render.py", "__main__.py")


def library_files(root: Path) -> list[Path]:
    """The library's Python files that a study notebook's output can depend on: all of
    ``lib/cnnvit`` apart from the report's own modules (:data:`REPORT_ONLY`)."""
    lib = root / "lib" / "cnnvit"

    def report_only(f: Path) -> bool:
        rel = f.relative_to(lib).as_posix()
        return any(rel.startswith(p) if p.endswith("/") else rel == p for p in REPORT_ONLY)
    return sorted(f for f in lib.rglob("*.py") if not report_only(f))


def fingerprint(root: Path, entry: StudyEntry, parameters: dict[str, Any]) -> str:
    """Hash of everything that decides a study's executed notebook: the notebook, its parameter
    file, the library code it uses, the pinned requirements and ``parameters`` (pass them
    without machine-specific paths, so that a moved checkout still matches)."""
    h = hashlib.sha256()
    files = [entry.notebook, entry.params, root / "requirements.txt", *library_files(root)]
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(f.read_bytes() if f.exists() else b"<missing>")
    h.update(json.dumps(parameters, sort_keys=True).encode())
    return h.hexdigest()


def _record_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.record.json"


def _read_record(path: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def study_title(entry: StudyEntry) -> str:
    """The study's title from its parameter file, or its notebook name if that cannot be read."""
    try:
        return load_study(entry.params).title
    except Exception:  # a broken parameter file still gets a section, named after its notebook
        return entry.name


@dataclass(frozen=True)
class StudyPlan:
    """What the build knows of one study before executing it, from one load of its parameter
    file (:func:`plan_study`); every later step reads it from here. Not in it: the state of the
    study's runs on disk, which its execution changes, so that it is read afresh from ``study``
    where it is needed (:func:`complete_runs`, :func:`missing_runs`, :func:`summary_frame`)."""

    entry: StudyEntry
    profile: str  # the parameter files' profile (params/<profile>/)
    study: Optional[Study]  # the loaded study; None when its parameter file could not be loaded,
    error: Optional[str]  # and then why not
    title: str  # the study's title; its notebook name when the file cannot be read
    # what will stop the study (bad parameters, missing data or device, and no run complete to
    # show instead); None if it can start, if only partly
    problem: Optional[str]
    cannot_train: tuple[str, ...]  # runs that cannot train here (no GPU, data or weights)
    seeds: Optional[Study]  # the seed's setting: the paper profile's file of the study, if any
    parameters: dict[str, Any]  # the notebook's papermill parameters
    fingerprint: str  # of everything that decides its executed notebook (:func:`fingerprint`)


def plan_study(root: Path, entry: StudyEntry, profile: str, out_dir: Path,
               data_dir: Optional[str] = None) -> StudyPlan:
    """Load the study's parameter file (once) and check its inputs, in seconds: its data sets and
    device, for the runs that still have to train (the runs left out are logged)."""
    study = seeds = None
    error = problem = None
    cannot_train: tuple[str, ...] = ()
    try:
        study = load_study(entry.params, out_dir=out_dir / entry.name, data_dir=data_dir)
    except Exception as exc:  # a broken parameter file fails its study; it still gets a section
        error = problem = str(exc)
    if study is not None:
        try:
            cannot_train = tuple(check_study_inputs(study, partial=True))
        except StudyInputError as exc:  # no run complete, and none can train here
            problem, cannot_train = str(exc), tuple(study.runs)
        except (ConfigError, DatasetError) as exc:
            problem = str(exc)
        seeds = study if profile == "paper" else _seed_setting(entry, out_dir)
    study_out = out_dir / entry.name
    parameters = {"params_file": entry.params_rel, "data_dir": data_dir, "out_dir": str(study_out), "partial": True}
    fp = fingerprint(root, entry, {"params_file": entry.params_rel, "out_dir": _relative(study_out, root)})
    return StudyPlan(entry, profile, study, error, study.title if study else entry.name, problem, cannot_train, seeds,
                     parameters, fp)


def missing_runs(plan: StudyPlan, projector: Projector) -> list[dict[str, Any]]:
    """The runs of a study that cannot train here (no GPU, data or weights) and have no complete
    result on disk (read now, after any execution), each with its projected GPU time."""
    if plan.study is None:  # a broken parameter file fails its study; nothing to list
        return []
    study, out = plan.study, []
    for name, metrics in completed_metrics(study).items():
        if metrics is None and name in plan.cannot_train:
            minutes, how = projector.minutes(study.runs[name].config)
            out.append({"run": name, "label": study.runs[name].label, "model": study.runs[name].config.model.name,
                        "minutes": minutes, "how": how})
    return out


def execute_study(root: Path, plan: StudyPlan, out_dir: Path) -> StudyOutcome:
    """Run one notebook with papermill (cell output streamed to the log) and render it with code."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    entry = plan.entry
    out_nb = out_dir / f"{entry.name}.ipynb"
    # written under another name and moved into place only when papermill is done, so that an
    # interrupted execution never stands in for a finished one
    partial = out_dir / f"{entry.name}.partial.ipynb"
    partial.unlink(missing_ok=True)
    outcome = StudyOutcome(entry.name, plan.title, ReportStatus.OK, params_file=entry.params_rel,
                           started=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"))
    t0 = time.time()
    try:
        papermill.execute_notebook(str(entry.notebook), str(partial), parameters=plan.parameters,
                                   cwd=str(root), log_output=True, progress_bar=False)
    except PapermillExecutionError as exc:
        outcome.status, outcome.error = ReportStatus.FAILED, f"{exc.ename}: {render.strip_ansi(str(exc.evalue))}"
    except Exception as exc:  # the kernel could not start or died: keep going with the others
        outcome.status, outcome.error = ReportStatus.FAILED, f"{type(exc).__name__}: {exc}"
        outcome.traceback = traceback.format_exc()
    outcome.wall_s = time.time() - t0
    if partial.exists():
        os.replace(partial, out_nb)
    else:
        out_nb.unlink(missing_ok=True)  # not an older execution's notebook under this outcome
    if out_nb.exists():
        outcome.notebook = out_nb
        outcome.notebook_html = _export_with_code(out_nb)
    return outcome


def _export_with_code(nb_path: Path) -> Optional[str]:
    """The executed notebook as a full HTML page with code and logs, beside it."""
    import nbformat
    from nbconvert import HTMLExporter

    try:
        body, _ = HTMLExporter(log=render.quiet_log()).from_notebook_node(nbformat.read(nb_path, as_version=4))
    except Exception as exc:  # the report itself does not need this page
        log.warning("could not render %s with code: %s", nb_path, exc)
        return None
    page = nb_path.with_suffix(".html")
    page.write_text(body, encoding="utf-8")
    return page.name


def summary_frame(plans: Sequence[StudyPlan], outcomes: Sequence[StudyOutcome], profile: str) -> pd.DataFrame:
    """One row per run of every study: its test accuracy (read from the run folders now, after
    any execution), and beside it the seed's reported figure, set against ours only where the
    run is in the seed's setting (the paper profile's run of that name) and on the seed's
    metric; other rows say why they are not compared."""
    rows = []
    for plan, outcome in zip(plans, outcomes):
        study = plan.study
        if study is None:
            rows.append({"study": plan.entry.name, "run": f"parameters invalid: {plan.error}"})  # shown, not hidden
            continue
        metric_name, metric = seed_metric(study.study)
        for name, metrics in completed_metrics(study).items():
            spec = study.runs[name]
            why_not = seed_setting_difference(spec, plan.seeds.runs.get(spec.replica_of or name) if plan.seeds else None)
            row = {"study": plan.entry.name, "run": spec.label, "role": spec.role, "model": spec.config.model.name,
                   "epochs": None, "test accuracy": None, "seed reported": spec.reported,
                   "vs seed, same metric (points)": None,
                   "compared on": f"{metric_name} (the seed's metric)" if why_not is None
                   else ("" if spec.reported is None else f"not comparable: {why_not}"),
                   "profile": profile, "wall time": None, "device": ""}
            if metrics:
                ours = metrics.test_accuracy if metric is None or why_not else metric(
                    load_run(study.run_dir(name), device="cpu"))
                row.update({"epochs": metrics.epochs, "test accuracy": metrics.test_accuracy,
                            "wall time": metrics.wall_time_s, "device": metrics.device,
                            "vs seed, same metric (points)": None if why_not else ours - spec.reported})
            elif outcome.status == ReportStatus.FAILED:
                row["device"] = "study failed"
            else:  # a partial study's run that could not train here
                row["device"] = next((f"not run here (projected {render.minutes_text(m['minutes'])} on a GPU, "
                                      f"{m['how']})" for m in outcome.missing if m["run"] == name), "")
            rows.append(row)
    return pd.DataFrame(rows)


def _seed_setting(entry: StudyEntry, out_dir: Path) -> Optional[Study]:
    """The paper profile's file of the same study (the seed's setting), or None without one."""
    paper = entry.params.parent.parent / "paper" / entry.params.name
    if not paper.is_file():
        return None
    try:
        return load_study(paper, out_dir=out_dir.parent / "paper" / entry.name)
    except Exception as exc:  # the summary then compares nothing with the seed; it still renders
        log.warning("%s: the seed's setting could not be read (%s); no run is set against the seed", paper, exc)
        return None


def build_report(root: Path, profile: str = "smoke", only: Optional[Sequence[str]] = None,
                 data_dir: Optional[str] = None, force: bool = False,
                 out_dir: Optional[Path] = None, pdf: bool = True) -> tuple[Path, list[StudyOutcome]]:
    """Run (or reuse) every chosen study, then write ``report.html`` (and ``report.pdf``).
    Returns the report path and each study's outcome; raises :class:`ReportError` before any
    work if the profile or a study is unknown."""
    t_start = time.time()
    root = Path(root).resolve()
    entries = discover_studies(root, profile, only)
    git = render.git_state(root)  # before this build writes anything
    out_dir = Path(out_dir).expanduser().resolve() if out_dir else root / "outputs" / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    if data_dir:
        data_dir = str(Path(data_dir).expanduser().resolve())

    # every study planned, its inputs checked, first: a missing data set is known in seconds, not hours
    plans = [plan_study(root, entry, profile, out_dir, data_dir) for entry in entries]
    for plan in plans:
        if plan.problem:
            log.warning("study %s will fail: %s", plan.entry.name, plan.problem)

    projector = Projector(read_throughput(root / "outputs" / "gpu-check" / "throughput.csv"))
    outcomes = [study_outcome(root, plan, out_dir, projector, force, f"[{i}/{len(plans)}]")
                for i, plan in enumerate(plans, 1)]

    sections = [(outcome, *render.study_section(outcome, profile)) for outcome in outcomes]
    summary = summary_frame(plans, outcomes, profile)
    facts = render.title_facts(git, profile, outcomes, time.time() - t_start,
                               left_out=left_out_studies(root, profile, entries))
    report = out_dir / "report.html"
    references = render.references_html(root / "docs" / "references.md")
    report.write_text(render.assemble_html(facts, sections, summary, references=references),
                      encoding="utf-8")
    log.info("wrote %s", report)
    if pdf:
        render.write_pdf(report, out_dir / "report.pdf")
        log.info("wrote %s", out_dir / "report.pdf")
    return report, outcomes


def study_outcome(root: Path, plan: StudyPlan, out_dir: Path, projector: Projector, force: bool = False,
                  step: str = "") -> StudyOutcome:
    """Execute one study's notebook (``step``, e.g. ``[1/5]``, leads its log lines), or reuse its
    last execution when nothing it depends on changed; then mark it partial if runs are left
    that cannot train here."""
    entry = plan.entry
    record = _read_record(_record_path(out_dir, entry.name))
    executed_nb = out_dir / f"{entry.name}.ipynb"
    if not force and _reusable(record, plan, executed_nb):
        log.info("%s %s: unchanged since %s, reused", step, entry.name, record["started"])
        outcome = StudyOutcome(entry.name, plan.title, ReportStatus.OK, cached=True, wall_s=record["wall_s"],
                               started=record["started"], params_file=entry.params_rel,
                               notebook=executed_nb, notebook_html=record.get("notebook_html"))
    else:
        log.info("%s %s (profile %s): executing %s", step, entry.name, plan.profile,
                 entry.notebook.relative_to(root))
        _record_path(out_dir, entry.name).unlink(missing_ok=True)  # reuse nothing if interrupted
        outcome = execute_study(root, plan, out_dir)
        log.info("%s %s: %s in %.0fs%s", step, entry.name, outcome.status, outcome.wall_s,
                 f" ({outcome.error})" if outcome.error else "")
        _record_path(out_dir, entry.name).write_text(json.dumps({
            "fingerprint": plan.fingerprint, "status": outcome.status, "started": outcome.started,
            "wall_s": outcome.wall_s, "error": outcome.error, "notebook_html": outcome.notebook_html,
            "parameters": plan.parameters, "runs": complete_runs(plan.study)}, indent=1))
    if outcome.status == ReportStatus.OK:  # runs that could not train here: a partial study
        outcome.missing = missing_runs(plan, projector)
        if outcome.missing:
            outcome.status = ReportStatus.PARTIAL
            log.warning("%s: partial, %d runs not run: %s", entry.name, len(outcome.missing),
                        ", ".join(m["run"] for m in outcome.missing))
    return outcome


def left_out_studies(root: Path, profile: str, chosen: Sequence[StudyEntry]) -> list[str]:
    """The titles of the study notebooks a build over some studies (``STUDIES=``) did not include."""
    names = {e.name for e in chosen}
    out = []
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if nb.stem in names:
            continue
        params = root / "params" / profile / f"{nb.stem}.yaml"
        out.append(study_title(StudyEntry(nb.stem, nb, params, "")) if params.exists() else nb.stem)
    return out


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def complete_runs(study: Optional[Study]) -> dict[str, str]:
    """Each complete run of the study (as its folders are now) with a hash of its metrics, to
    notice a run retrained or deleted after the notebook showed it."""
    if study is None:  # a broken parameter file: nothing is complete
        return {}
    try:
        metrics = completed_metrics(study)
    except Exception as exc:
        log.debug("%s: no complete runs: %s", study.study, exc)
        return {}
    return {name: hashlib.sha256((study.run_dir(name) / "metrics.json").read_bytes()).hexdigest()
            for name, m in metrics.items() if m is not None}


def _reusable(record: Optional[dict[str, Any]], plan: StudyPlan, executed_nb: Path) -> bool:
    if not record or record.get("status") != ReportStatus.OK or record.get("fingerprint") != plan.fingerprint \
            or not executed_nb.exists():
        return False
    # the same complete runs as the notebook showed: none retrained, none gone, none new (a
    # partial study's missing runs may have been completed since)
    return complete_runs(plan.study) == record.get("runs", {})
