"""The five studies by name (the ``study:`` key of their parameter files), each with the groups
its conclusions read."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Mapping, Optional

from . import (celeba_simple_classifier, cifar10_finetune, cifar10_vit_vs_resnet, tiny_imagenet_cnn_ablations,
               tiny_imagenet_transformers)
from .groups import Group

STUDIES: dict[str, ModuleType] = {m.STUDY: m for m in (
    cifar10_vit_vs_resnet, tiny_imagenet_cnn_ablations, tiny_imagenet_transformers, cifar10_finetune,
    celeba_simple_classifier)}


def group_schema(study: str) -> Mapping[str, Group]:
    """The groups study ``study`` reads (none for a study of one's own)."""
    return STUDIES[study].GROUPS if study in STUDIES else {}


def seed_metric(study: str) -> tuple[str, Optional[Callable[[Any], float]]]:
    """The metric study ``study``'s seed reports, by name, and how to read it from a finished
    :class:`~cnnvit.training.Run` (None: its final test accuracy, the default)."""
    return getattr(STUDIES.get(study), "SEED_METRIC", ("last epoch", None))
