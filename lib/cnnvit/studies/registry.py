"""The studies by name (the ``study:`` key of their parameter files), found by themselves.

A study is one module of this package that assigns ``STUDY`` at its top level and follows
:class:`StudyModule`; nothing lists the studies by hand. A study of one's own outside the package
(a test's, a user's) is made known with :func:`register_study`.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Optional, Protocol

from .groups import Group

HERE = Path(__file__).resolve().parent


class StudyModule(Protocol):
    """What a study module exposes. Its tables and figures are its own public functions, which
    its notebook calls; ``SEED_METRIC`` (optional) names the metric its seed reports and how to
    read it from a finished run (default: the last epoch's test accuracy)."""

    STUDY: str  # the `study:` key of its parameter files, and its notebook's name
    GROUPS: Mapping[str, Group]  # the groups its conclusions read (declared in the parameter files)

    def conclusions(self, study: Any, results: Mapping[str, Any]) -> str:
        """Markdown bullets computed from the runs."""


_REGISTERED: dict[str, ModuleType] = {}
_FOUND: dict[str, ModuleType] = {}


def _declares_study(path: Path) -> bool:
    """Whether ``path`` assigns ``STUDY`` at its top level (read without importing it, so that
    finding the studies imports neither the plotting nor the training modules)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id == "STUDY" for t in targets):
            return True
    return False


def _discover() -> dict[str, ModuleType]:
    if not _FOUND:
        modules = [importlib.import_module(f"{__package__}.{path.stem}") for path in sorted(HERE.glob("*.py"))
                   if path.stem != "__init__" and _declares_study(path)]
        _FOUND.update({m.STUDY: m for m in sorted(modules, key=lambda m: m.STUDY)})
    return _FOUND


def register_study(module: Any) -> Any:
    """Make a study module (or any object with its attributes) known under ``module.STUDY``;
    returns it. Refuses a name taken already."""
    name = module.STUDY
    if name in _discover() or name in _REGISTERED:
        raise ValueError(f"study {name!r} is registered already")
    for attr in ("GROUPS", "conclusions"):
        if not hasattr(module, attr):
            raise ValueError(f"study {name!r} has no {attr} (see cnnvit.studies.registry.StudyModule)")
    _REGISTERED[name] = module
    return module


def unregister_study(name: str) -> None:
    """Forget a study made known with :func:`register_study` (tests register their own)."""
    _REGISTERED.pop(name, None)


def study_modules() -> dict[str, ModuleType]:
    """Every study by name: the package's, in order of name (01_..., 02_...), then those registered."""
    return {**_discover(), **_REGISTERED}


def study_module(study: str) -> Optional[ModuleType]:
    """Study ``study``'s module, or None for a study of one's own without one."""
    return study_modules().get(study)


def group_schema(study: str) -> Mapping[str, Group]:
    """The groups study ``study`` reads (none for a study of one's own)."""
    module = study_module(study)
    return module.GROUPS if module is not None else {}


def seed_metric(study: str) -> tuple[str, Optional[Callable[[Any], float]]]:
    """The metric study ``study``'s seed reports, by name, and how to read it from a finished
    :class:`~cnnvit.training.Run` (None: its final test accuracy, the default)."""
    return getattr(study_module(study), "SEED_METRIC", ("last epoch", None))
