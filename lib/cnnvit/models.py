"""Model registry: ``create_model(name, num_classes, ...)`` over torchvision and timm models.

Register a builder with ``@register_model``; its function name is the model name. Every model
has a tiny ``test_*`` sibling so that the test suite can run each architecture's forward and
backward on the CPU in milliseconds.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_NATIVE_SIZE: dict[str, int] = {}


def register_model(native_size: int) -> Callable:
    """Decorator: register a builder ``fn(num_classes, pretrained, drop_path)`` under its name.
    ``native_size`` is the input resolution the architecture is built for."""
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[fn.__name__] = fn
        _NATIVE_SIZE[fn.__name__] = native_size
        return fn
    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def native_size(name: str) -> int:
    """Input resolution a model is built for (a ViT's position embedding fixes it)."""
    return _NATIVE_SIZE[name]


def create_model(name: str, num_classes: int, *, pretrained: bool = False,
                 drop_path: float = 0.0) -> nn.Module:
    """Build a registered model with a ``num_classes``-way head."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _REGISTRY[name](num_classes=num_classes, pretrained=pretrained, drop_path=drop_path)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _no_pretrained(name: str, pretrained: bool) -> None:
    if pretrained:
        raise ValueError(f"{name} has no published pretrained weights; set model.pretrained=false")


def _cifar_stem(model: nn.Module) -> nn.Module:
    """3x3 stride-1 first conv and no max-pool: keeps 32 px images at 32x32 in the first stage."""
    model.conv1 = nn.Conv2d(3, model.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


# --------------------------------------------------------------------------- ResNets

@register_model(native_size=224)
def resnet18(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """torchvision ResNet-18 with its ImageNet stem (7x7/2 conv, max-pool), as in the seed."""
    import torchvision

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1 if pretrained else None
    model = torchvision.models.resnet18(weights=weights)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@register_model(native_size=32)
def resnet18_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """ResNet-18 for 32 px inputs: 3x3 stem, no max-pool (the usual CIFAR variant)."""
    import torchvision

    _no_pretrained("resnet18_cifar", pretrained)
    return _cifar_stem(torchvision.models.resnet18(num_classes=num_classes))


def _tiny_resnet(num_classes: int) -> nn.Module:
    from timm.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, channels=(8, 16, 32, 64))


@register_model(native_size=64)
def test_resnet(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnet18`` (ImageNet stem, widths 8-64, one block per stage)."""
    _no_pretrained("test_resnet", pretrained)
    return _tiny_resnet(num_classes)


@register_model(native_size=32)
def test_resnet_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnet18_cifar``."""
    _no_pretrained("test_resnet_cifar", pretrained)
    return _cifar_stem(_tiny_resnet(num_classes))


# --------------------------------------------------------------------------- ViTs

@register_model(native_size=224)
def vit_base_patch16_224(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm ViT-B/16 at 224 px (86M parameters), as in the seed."""
    import timm

    return timm.create_model("vit_base_patch16_224", pretrained=pretrained, num_classes=num_classes,
                             drop_path_rate=drop_path)


def _vit(img_size: int, patch: int, dim: int, depth: int, heads: int, mlp_ratio: float,
         num_classes: int, drop_path: float) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=img_size, patch_size=patch, embed_dim=dim, depth=depth,
                             num_heads=heads, mlp_ratio=mlp_ratio, num_classes=num_classes,
                             drop_path_rate=drop_path)


@register_model(native_size=32)
def vit_small_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """A ViT sized for 32 px from scratch: 4x4 patches (64 tokens), width 192, depth 9, 12 heads,
    MLP ratio 2 (2.7M parameters), the baseline ViT of Lee et al. 2021 for small data sets."""
    _no_pretrained("vit_small_cifar", pretrained)
    return _vit(32, 4, 192, 9, 12, 2.0, num_classes, drop_path)


@register_model(native_size=64)
def test_vit(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``vit_base_patch16_224`` (64 px, 16x16 patches, width 32, depth 2)."""
    _no_pretrained("test_vit", pretrained)
    return _vit(64, 16, 32, 2, 2, 2.0, num_classes, drop_path)


@register_model(native_size=32)
def test_vit_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``vit_small_cifar`` (32 px, 4x4 patches, width 32, depth 2)."""
    _no_pretrained("test_vit_cifar", pretrained)
    return _vit(32, 4, 32, 2, 2, 2.0, num_classes, drop_path)


def check_input_size(name: str, image_size: int) -> None:
    """ViTs fix their input size through the position embedding: fail before training starts."""
    if name.startswith(("vit", "test_vit")) and image_size != native_size(name):
        raise ValueError(f"model {name} takes {native_size(name)} px inputs but the data arrive at "
                         f"{image_size} px; set data.image_size={native_size(name)}")


def set_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    return model.to(memory_format=torch.channels_last) if channels_last else model
