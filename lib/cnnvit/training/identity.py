"""A run folder's identity: the config saved in it, and whether a config asks for the same run
('new', 'partial', 'complete') or for another one ('conflict'). Cheap: no torch."""
from __future__ import annotations

import enum
import json
import logging
from pathlib import Path
from typing import Any, Optional

import yaml

from .. import config as config_mod
from ..config import Config
from ..errors import ConfigError
from ..records import RunResult

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"  # a partial run: the state to resume from (see .state)

# keys that may differ between the run on disk and the config asking for it: where the data and
# a starting checkpoint lie (their folders move with the project), how the work is executed, and
# what is recorded beside the results
IDENTITY_EXEMPT = {"data.root", "data.download", "device", "train.compile", "train.eval_batch_size",
                   "model.pretrained_path", "train.tensorboard", "train.wandb", "train.keep_epoch_weights",
                   "data.on_device", "train.rdzv_endpoint", "train.rdzv_id"}


def _with_defaults(d: dict[str, Any]) -> dict[str, Any]:
    # a run saved before a key existed holds that key's default
    try:
        return config_mod.from_dict(d).to_dict()
    except ConfigError:  # a key since removed or renamed: compare as saved
        return d


def identity_of(d: dict[str, Any]) -> dict[str, Any]:
    """The flat keys of a config dict that make the run what it is (missing keys read as their
    defaults; :data:`IDENTITY_EXEMPT` left out)."""
    return {k: v for k, v in config_mod.flatten(_with_defaults(d)).items() if k not in IDENTITY_EXEMPT}


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two config dicts (missing keys read as their defaults),
    apart from :data:`IDENTITY_EXEMPT`."""
    fa, fb = identity_of(a), identity_of(b)
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)}


def saved_config(run_dir: Path) -> Optional[dict[str, Any]]:
    """The config dict of the run in ``run_dir`` (its config.yaml), or None when there is none."""
    path = Path(run_dir) / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else None


class RunStatus(enum.StrEnum):
    """What a run folder holds for a config (:func:`run_state`); equal to the strings used before."""

    NEW = "new"  # nothing of this run: train it
    PARTIAL = "partial"  # a checkpoint to resume from
    COMPLETE = "complete"  # finished: its metrics.json reads back
    CONFLICT = "conflict"  # a run of another config, which holds work
    INCOMPLETE = "incomplete"  # (how a Run folder without a readable metrics.json shows itself)


_warned: set[Path] = set()  # unreadable metrics.json files already reported


def read_metrics(run_dir: Path) -> Optional[dict[str, Any]]:
    """The run's metrics.json, or None when the run is not complete (see :func:`_read`)."""
    read = _read(run_dir)
    return None if read is None else read[0]


def read_result(run_dir: Path) -> Optional[RunResult]:
    """The run's metrics.json as a typed record, or None when the run is not complete (see
    :func:`_read`)."""
    read = _read(run_dir)
    return None if read is None else read[1]


def _read(run_dir: Path) -> Optional[tuple[dict[str, Any], RunResult]]:
    """The run's metrics.json and its record, or None when the run is not complete: no file, or
    one that cannot be read back (torn by a full disk or a kill before it was written
    atomically, or not a :class:`RunResult`: a key missing), which is reported once, naming it,
    and means the run trains again."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        return None
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError("not a JSON object")
        return metrics, RunResult.from_json(metrics)  # the record: what every reader will ask of it
    except (ValueError, TypeError, KeyError, OSError) as exc:
        if path not in _warned:
            _warned.add(path)
            log.warning("%s cannot be read (%s): the run counts as not complete and trains again", path, exc)
        return None


def run_state(cfg: Config, run_dir: Path) -> RunStatus:
    """NEW, COMPLETE, PARTIAL (a checkpoint to resume), or CONFLICT (another config)."""
    run_dir = Path(run_dir)
    saved = saved_config(run_dir)
    if saved is None:
        return RunStatus.NEW
    diff = config_differences(saved, cfg.to_dict())
    if diff:
        if holds_work(run_dir):
            return RunStatus.CONFLICT
        log.info("%s held a run with another config that finished no epoch (%s); the new config takes "
                 "it over", run_dir, _shown(diff))
        return RunStatus.NEW
    if read_metrics(run_dir) is not None:
        return RunStatus.COMPLETE
    return RunStatus.PARTIAL if (run_dir / CHECKPOINT).exists() else RunStatus.NEW


def holds_work(run_dir: Path) -> bool:
    """Whether the folder holds anything a run computed: a finished epoch's checkpoint, the
    result's weights or its metrics (a run that died while loading its data holds none, and its
    folder may be taken over by a corrected config)."""
    return any((Path(run_dir) / f).exists() for f in (CHECKPOINT, "model.pt", "metrics.json", "epochs"))


def _shown(diff: dict[str, tuple[Any, Any]]) -> str:
    return "; ".join(f"{k}: {a!r} on disk, {b!r} now" for k, (a, b) in list(diff.items())[:5])


def conflict_message(cfg: Config, run_dir: Path) -> str:
    """What differs between the run in ``run_dir`` and ``cfg`` (the first five keys), and what to do."""
    shown = _shown(config_differences(saved_config(run_dir), cfg.to_dict()))
    return (f"{run_dir} holds a run with another config ({shown}); choose another --out or move that "
            f"folder away")
