"""Models that torchvision or timm build, with a new head for the task's classes.

The libraries are imported when a model is built, so that importing the registry stays cheap.
"""
from __future__ import annotations

from typing import Any, Optional

from torch import nn

from .registry import Hub


def torchvision_weights(hub: Hub, pretrained: bool) -> Optional[Any]:
    """torchvision's weights ``hub.ident`` when ``pretrained``, else None (random initialisation)."""
    if not pretrained:
        return None
    import torchvision

    return torchvision.models.get_weight(hub.ident)


def with_new_fc(model: nn.Module, num_classes: int) -> nn.Module:
    """A torchvision ResNet with a new ``num_classes``-way ``fc``."""
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def with_new_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """torchvision's AlexNet or VGG with a new ``num_classes``-way last layer ``classifier.6``."""
    model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


def timm_model(hub: Hub, num_classes: int, pretrained: bool, drop_path: float) -> nn.Module:
    """timm's model ``hub.ident`` with a ``num_classes``-way head (timm loads all but the head)."""
    import timm

    return timm.create_model(hub.ident, pretrained=pretrained, num_classes=num_classes,
                             drop_path_rate=drop_path)
