"""Models that torchvision or timm build, with a new head for the task's classes.

The libraries are imported when a model is built, so that importing the registry stays cheap.
"""
from __future__ import annotations

from typing import Any, Optional

from torch import nn

from ..errors import ModelError
from .info import Hub

IMAGENET_CLASSES = 1000  # the outputs of the ImageNet models whose last layer a builder replaces


def torchvision_weights(hub: Hub, pretrained: bool) -> Optional[Any]:
    """torchvision's weights ``hub.ident`` when ``pretrained``, else None (random initialisation)."""
    if not pretrained:
        return None
    import torchvision

    return torchvision.models.get_weight(hub.ident)


def timm_model(hub: Hub, num_classes: int, pretrained: bool, drop_path: float) -> nn.Module:
    """timm's model ``hub.ident`` with a ``num_classes``-way head (timm loads all but the head)."""
    return build_timm(hub.ident, num_classes, pretrained=pretrained, drop_path=drop_path)


# --------------------------------------------------------------------------- any model, by name

def build_timm(timm_name: str, num_classes: int, hub: Optional[Hub] = None, pretrained: bool = False,
               drop_path: float = 0.0) -> nn.Module:
    """timm's model ``timm_name`` (a tag picks its weights) with a ``num_classes``-way head; timm
    loads its published weights, all but the head, when ``pretrained`` (``hub`` names them, and
    is ``timm_name`` itself). ``drop_path_rate`` is passed only when set, as some of timm's models
    take none."""
    import timm

    kwargs = {"drop_path_rate": drop_path} if drop_path else {}
    return timm.create_model(timm_name, pretrained=pretrained, num_classes=num_classes, **kwargs)


def _torchvision_kwargs(tv_name: str, size: int, pretrained: bool) -> dict[str, Any]:
    """What makes a torchvision model the same modules with and without its weights (so that a
    run trained from them reloads from scratch-built modules): no auxiliary heads, no input
    re-normalisation of GoogLeNet and Inception-v3 (the data are normalised with their own
    statistics), and a ViT's position embedding at the size its weights were trained at."""
    kwargs: dict[str, Any] = {}
    if tv_name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, transform_input=False)
        if not pretrained:
            kwargs["init_weights"] = True  # their original initialisation (and no FutureWarning)
    if tv_name.startswith("vit_"):
        kwargs["image_size"] = size
    return kwargs


def final_layer(model: nn.Module, outputs: int) -> str:
    """The name of the layer that maps features to ``outputs`` classes: the last linear layer
    with that many outputs, else the last 1x1 convolution with that many (SqueezeNet's)."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == outputs]
    convs = [n for n, m in model.named_modules()
             if isinstance(m, nn.Conv2d) and m.out_channels == outputs and m.kernel_size == (1, 1)]
    if not linears and not convs:
        raise ModelError(f"{type(model).__name__}: no final layer with {outputs} outputs to replace")
    return (linears or convs)[-1]


def replace_final_layer(model: nn.Module, outputs: int, num_classes: int) -> nn.Module:
    """``model`` with its final ``outputs``-way layer (see :func:`final_layer`) replaced by a new
    ``num_classes``-way one of the same kind."""
    name = final_layer(model, outputs)
    old = model.get_submodule(name)
    if isinstance(old, nn.Linear):
        new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1, bias=old.bias is not None)
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return model


def build_torchvision(tv_name: str, size: int, num_classes: int, hub: Optional[Hub] = None,
                      pretrained: bool = False) -> nn.Module:
    """torchvision's classification model ``tv_name`` (its input size: ``size``) with a
    ``num_classes``-way classifier: built with its weights ``hub.ident`` then the final layer
    replaced when ``pretrained``, else built with ``num_classes`` outputs."""
    import torchvision

    kwargs = _torchvision_kwargs(tv_name, size, pretrained)
    if not pretrained:
        return torchvision.models.get_model(tv_name, weights=None, num_classes=num_classes, **kwargs)
    weights = torchvision.models.get_weight(hub.ident)
    model = torchvision.models.get_model(tv_name, weights=weights, **kwargs)
    return replace_final_layer(model, len(weights.meta["categories"]), num_classes)
