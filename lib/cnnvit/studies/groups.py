"""Which runs play which part in a study's conclusions: the ``groups:`` of its parameter file.

Each study module declares the groups its conclusions and notebook read (a :class:`Group` per
name, in ``GROUPS``); the parameter file says which of its runs fill them::

    groups:
      seed_settings: {cnn: seed_resnet18, vit: seed_vit_b16}   # parts, one run each
      models: [swin, vit_l, cait, deit]                        # a list of runs
      preview: seed_vit_b16                                    # one run
      stronger_recipes: {strong_resnet50: resnet50}            # pairs: a run -> the run it is set against

So no run name is spelled in Python or in a notebook: renaming a run means renaming its key
under ``runs:`` and where ``groups:`` names it. Groups are not part of any run's config, so
they never change a run's identity.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

from ..errors import ConfigError

GroupValue = Union[str, list, dict]  # a run name; a list of them (or of pairs); part -> run name(s)


class GroupKind(enum.StrEnum):
    """The shape of a group's entry under ``groups:`` (equal to the strings used before)."""

    RUN = "run"  # one run name
    RUNS = "runs"  # a list of run names
    PARTS = "parts"  # a mapping of named parts to a run (or a list of runs)
    PAIRS = "pairs"  # a mapping of runs to the runs they are compared with


@dataclass(frozen=True)
class Group:
    """What one entry of ``groups:`` holds. ``kind``: ``run`` (one run name), ``runs`` (a list,
    ``count`` long when set, at least ``minimum``), ``parts`` (a mapping: each of ``parts`` names one run, each of
    ``lists`` a list of runs; ``optional`` ones may be left out) or ``pairs`` (run -> run)."""

    about: str
    kind: GroupKind = GroupKind.RUN
    parts: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    count: Optional[int] = None
    minimum: int = 1

    @property
    def keys(self) -> tuple[str, ...]:
        return self.parts + self.lists


def one(about: str) -> Group:
    """A group that names one run."""
    return Group(about)


def runs(about: str, count: Optional[int] = None, minimum: int = 1) -> Group:
    """A group that lists runs (exactly ``count`` of them when given, else at least ``minimum``)."""
    return Group(about, GroupKind.RUNS, count=count, minimum=minimum)


def parts(about: str, *names: str, lists: Sequence[str] = (), optional: Sequence[str] = ()) -> Group:
    """A group of named parts: each of ``names`` one run, each of ``lists`` a list of runs."""
    return Group(about, GroupKind.PARTS, tuple(names), tuple(lists), tuple(optional))


def pairs(about: str) -> Group:
    """A group mapping runs to the runs they are compared with."""
    return Group(about, GroupKind.PAIRS)


def check_groups(raw: Any, run_names: Sequence[str], schema: Mapping[str, Group],
                 where: str) -> dict[str, GroupValue]:
    """The ``groups:`` mapping of a parameter file, checked against the study's ``schema``:
    every group declared, none unknown, each of the right shape and naming runs of the file.
    Raises :class:`ConfigError` naming ``where`` (the file) and the group."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: groups: expected a mapping of group name to runs")
    unknown = [g for g in raw if g not in schema]
    if unknown:
        known = ", ".join(schema) if schema else "none (this study reads no groups)"
        raise ConfigError(f"{where}: groups: unknown group(s) {unknown}; known: {known}")
    missing = [g for g in schema if g not in raw]
    if missing:
        raise ConfigError(f"{where}: groups: missing {', '.join(missing)} ("
                          + "; ".join(f"{g}: {schema[g].about}" for g in missing) + ")")
    return {name: _check_group(raw[name], run_names, schema[name], f"{where}: groups.{name}")
            for name in schema}


def _check_group(value: Any, run_names: Sequence[str], group: Group, where: str) -> GroupValue:
    if group.kind == GroupKind.RUN:
        return _run(value, run_names, where)
    if group.kind == GroupKind.RUNS:
        names = _run_list(value, run_names, where)
        if group.count is not None and len(names) != group.count:
            raise ConfigError(f"{where}: expected {group.count} runs ({group.about}), got {len(names)}")
        if len(names) < group.minimum:
            raise ConfigError(f"{where}: expected at least {group.minimum} runs ({group.about}), got {len(names)}")
        return names
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping ({group.about}); got {value!r}")
    if group.kind == GroupKind.PAIRS:  # kept as [run, counterpart] pairs, in the file's order
        return [[_run(k, run_names, where), _run(v, run_names, f"{where}.{k}")] for k, v in value.items()]
    bad = [k for k in value if k not in group.keys]
    absent = [k for k in group.keys if k not in value and k not in group.optional]
    if bad or absent:
        raise ConfigError(f"{where}: expects the parts {', '.join(group.keys)} ({group.about})"
                          + (f"; unknown: {bad}" if bad else "") + (f"; missing: {absent}" if absent else ""))
    return {k: (_run_list if k in group.lists else _run)(value[k], run_names, f"{where}.{k}")
            for k in group.keys if k in value}


def _run(value: Any, run_names: Sequence[str], where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a run name; got {value!r}")
    if value not in run_names:
        raise ConfigError(f"{where}: no run named {value!r}; runs: {', '.join(run_names)}")
    return value


def _run_list(value: Any, run_names: Sequence[str], where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a non-empty list of run names; got {value!r}")
    return [_run(v, run_names, f"{where}[{i}]") for i, v in enumerate(value)]


def flatten(value: GroupValue, keys: Sequence[str] = ()) -> list[str]:
    """The run names in a group's value, in order (of a parts group: those of ``keys``, in that
    order, when given); a pairs group gives each run, then its counterpart."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [n for k in (keys or value) if k in value for n in flatten(value[k])]
    return [n for v in value for n in flatten(v)]
