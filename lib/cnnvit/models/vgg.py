"""VGG: torchvision's VGG16, and VGG19 with and without BatchNorm in the seed's form for 64 px."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .libraries import IMAGENET_CLASSES, replace_final_layer, torchvision_weights
from .registry import Hub, register_model

VGG19_CONVS = (2, 2, 4, 4, 4)  # 16 conv layers in five blocks, then 3 fully connected layers


@register_model(native_size=224, hub=Hub("torchvision", "VGG16_Weights.IMAGENET1K_V1"))
def vgg16(num_classes: int, hub: Hub, pretrained: bool = False) -> nn.Module:
    """torchvision VGG16 without BatchNorm (13 convs, 25088-4096-4096 head; 138.36M parameters
    with 1000 classes); any size through its adaptive pool to 7 x 7."""
    import torchvision

    model = torchvision.models.vgg16(weights=torchvision_weights(hub, pretrained))
    return replace_final_layer(model, IMAGENET_CLASSES, num_classes)


class VGG(nn.Module):
    """VGG in the seed's form for 64 px: blocks of 3x3 convs (optionally with BatchNorm) and a
    2x2 max-pool, then two hidden fully connected layers with dropout. PyTorch's default
    initialisation (the seed shows none of its own): without BatchNorm this deep plain network
    stalls, which is the point of its ablation."""

    def __init__(self, convs: Sequence[int], widths: Sequence[int], num_classes: int,
                 batch_norm: bool, hidden: int = 4096, dropout: float = 0.5):
        super().__init__()
        layers, cin = [], 3
        for n, width in zip(convs, widths):
            for _ in range(n):
                layers.append(nn.Conv2d(cin, width, kernel_size=3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU(inplace=True))
                cin = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(2)  # 64 px: already 2x2 after five pools
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * 4, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


@register_model(native_size=64)
def vgg19_bn(num_classes: int) -> nn.Module:
    """VGG19 with BatchNorm for 64 px inputs (16 convs, 2048-4096-4096 head; 46M parameters)."""
    return VGG(VGG19_CONVS, (64, 128, 256, 512, 512), num_classes, batch_norm=True)


@register_model(native_size=64)
def vgg19(num_classes: int) -> nn.Module:
    """VGG19 without BatchNorm, otherwise as ``vgg19_bn`` (the seed's ablation)."""
    return VGG(VGG19_CONVS, (64, 128, 256, 512, 512), num_classes, batch_norm=False)


# the laptop profile's VGG19: its 16 convs and 3 fully connected layers at an eighth of the width
MINI_WIDTHS = (8, 16, 32, 64, 64)


@register_model(native_size=32)
def vgg19_mini_bn(num_classes: int) -> nn.Module:
    """VGG19's layout (16 convs in five blocks, two hidden fully connected layers) with
    BatchNorm at an eighth of its width (8-64 channels, hidden 256; 0.50M parameters with 200
    classes), for 32 px on a laptop CPU."""
    return VGG(VGG19_CONVS, MINI_WIDTHS, num_classes, batch_norm=True, hidden=256)


@register_model(native_size=32)
def vgg19_mini(num_classes: int) -> nn.Module:
    """``vgg19_mini_bn`` without BatchNorm (the seed's ablation at laptop scale)."""
    return VGG(VGG19_CONVS, MINI_WIDTHS, num_classes, batch_norm=False, hidden=256)
