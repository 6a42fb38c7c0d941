"""A run folder's identity: the config saved in it, and whether a config asks for the same run
('new', 'partial', 'complete') or for another one ('conflict'). Cheap: no torch."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from .. import config as config_mod
from ..config import Config
from ..errors import ConfigError

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


def run_state(cfg: Config, run_dir: Path) -> str:
    """'new', 'complete', 'partial' (a checkpoint to resume), or 'conflict' (other config)."""
    run_dir = Path(run_dir)
    saved = saved_config(run_dir)
    if saved is None:
        return "new"
    if config_differences(saved, cfg.to_dict()):
        return "conflict"
    if (run_dir / "metrics.json").exists():
        return "complete"
    return "partial" if (run_dir / CHECKPOINT).exists() else "new"


def conflict_message(cfg: Config, run_dir: Path) -> str:
    """What differs between the run in ``run_dir`` and ``cfg`` (the first five keys), and what to do."""
    diff = config_differences(saved_config(run_dir), cfg.to_dict())
    shown = "; ".join(f"{k}: {a!r} on disk, {b!r} now" for k, (a, b) in list(diff.items())[:5])
    return (f"{run_dir} holds a run with another config ({shown}); choose another --out or move that "
            f"folder away")
