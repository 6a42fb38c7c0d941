"""What is known of a model without building it: its published weights (:class:`Hub`) and its
metadata (:class:`ModelInfo`), for the curated registry (:mod:`.registry`) and for timm's and
torchvision's models (:mod:`.external`) alike. Imports no torch and no model library."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Hub:
    """Published weights: the library that serves them (``timm`` or ``torchvision``) and its
    identifier (timm's model name; torchvision's weights, e.g. ``ResNet18_Weights.IMAGENET1K_V1``).
    Left out, the identifier is the registered model's name (timm names models as we do)."""

    library: str
    ident: Optional[str] = None

    def location(self) -> str:
        """The Hugging Face repository (timm) or the URL (torchvision) of the weights."""
        if self.library == "timm":
            from timm.models import get_pretrained_cfg

            cfg = get_pretrained_cfg(self.ident)
            return cfg.hf_hub_id or cfg.url  # a few of timm's weights are still served by URL
        import torchvision

        return torchvision.models.get_weight(self.ident).url


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of a model, without building it."""

    name: str
    builder: Callable[..., Any]
    family: str  # the module that registers it (resnet, vgg, classic, vit, tiny), or timm/torchvision
    native_size: int  # the input resolution it is built for
    fixed_size: bool  # takes no other size (a transformer's position embedding fixes it)
    hub: Optional[Hub]  # published weights (model.pretrained), if any
    drop_path: bool  # has stochastic depth (model.drop_path)
    layer_decay: bool  # says how its layers group, timm's group_matcher (model.layer_decay)
    freeze_last_k: bool  # has transformer blocks or ResNet stages to count (model.freeze=last_k)
    description: str  # the builder's docstring, first paragraph
    freeze_head: bool = True  # has a linear classifier to train alone (model.freeze=head)
    cpu_bf16: bool = True  # trains faster in bf16 than in fp32 on a CPU with native bf16 (train.amp=auto)

    @property
    def pretrained(self) -> bool:
        return self.hub is not None

    @property
    def kind(self) -> str:
        """``real`` (an architecture the studies name), or a stand-in for one: ``laptop`` (a
        ``*_mini*`` model, scaled down for the laptop profile's CPU) or ``test`` (a tiny model of
        :mod:`.tiny` for the smoke profile and the tests). The naming rule is the registry's
        convention (``models/tiny.py``; ``_mini`` in the laptop models' names)."""
        if self.family == "tiny":
            return "test"
        return "laptop" if "_mini" in self.name else "real"
