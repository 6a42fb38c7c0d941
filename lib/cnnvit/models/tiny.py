"""Tiny stand-ins: every real model has a ``test_*`` sibling of its architecture (often its own
class at small widths), so that the tests and the smoke profile run each architecture's forward
and backward on the CPU in milliseconds. None has published weights."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .registry import register_model
from .resnet import SMALL_STEM, SmallStemResNet
from .vgg import VGG
from .vit import T2T, TIMM_TRANSFORMER, vit

TINY_WIDTHS = (8, 16, 32, 64)


# --------------------------------------------------------------------------- ResNets

@register_model(native_size=64, layer_decay=True, freeze_last_k=True)  # timm's ResNet: group_matcher
def test_resnet(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``resnet18`` (ImageNet stem, widths 8-64, one block per stage)."""
    from timm.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, channels=(8, 16, 32, 64))


@register_model(native_size=64, freeze_last_k=True)
def test_resnet_bottleneck(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``resnet101``/``resnet152``: torchvision's own ResNet class and bottleneck
    block, so that, like the real ones and unlike timm's ResNet of ``test_resnet``, it has no
    ``get_classifier`` or ``group_matcher``; one block per stage, inner widths 4-32 (0.23M parameters)."""
    from torchvision.models.resnet import Bottleneck, ResNet

    class TinyBottleneck(Bottleneck):
        # torchvision fixes the stage widths at 64-512 and multiplies the blocks' outputs by this:
        # 1 instead of 4 makes a training step about 3x cheaper (the smoke study trains this model)
        expansion = 1

    return ResNet(TinyBottleneck, [1, 1, 1, 1], num_classes=num_classes, width_per_group=4)


@register_model(**SMALL_STEM)
def test_resnet_cifar(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``resnet18_cifar`` (widths 8-64, one basic block per stage)."""
    return SmallStemResNet("basic", [1, 1, 1, 1], num_classes=num_classes, widths=TINY_WIDTHS)


@register_model(**SMALL_STEM)
def test_resnet_deeper_cifar(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``resnet34_cifar`` (two basic blocks per stage)."""
    return SmallStemResNet("basic", [2, 2, 2, 2], num_classes=num_classes, widths=TINY_WIDTHS)


@register_model(**SMALL_STEM)
def test_resnet_bottleneck_cifar(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``resnet50_cifar`` (one bottleneck block per stage, widths 4-32)."""
    return SmallStemResNet("bottleneck", [1, 1, 1, 1], num_classes=num_classes, widths=(4, 8, 16, 32))


@register_model(**SMALL_STEM)
def test_resnet_noskip_cifar(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``resnet50_noskip_cifar``."""
    return SmallStemResNet("bottleneck", [1, 1, 1, 1], num_classes=num_classes, widths=(4, 8, 16, 32),
                           skip=False)


@register_model(**SMALL_STEM)
def test_resnext_cifar(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``resnext50_32x4d_cifar`` (cardinality 4; torchvision's group width
    is ``width x width_per_group / 64``, so 4 channels per group in the first stage)."""
    return SmallStemResNet("bottleneck", [1, 1, 1, 1], num_classes=num_classes, widths=(8, 16, 32, 64),
                           groups=4, width_per_group=32)


# --------------------------------------------------------------------------- AlexNet, VGG

class TinyAlexNet(nn.Module):
    """AlexNet's layout at small widths: torchvision's module names and indices (``features``,
    ``avgpool``, ``classifier`` with the head at ``classifier.6``, as in torchvision's VGG too),
    so that what finds or freezes parts of the real one is tested on this."""

    def __init__(self, num_classes: int, widths: Sequence[int] = (8, 16, 32, 16, 16), hidden: int = 64,
                 dropout: float = 0.5):
        super().__init__()
        w1, w2, w3, w4, w5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(3, w1, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(w1, w2, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(w2, w3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w3, w4, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w4, w5, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(w5 * 36, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model(native_size=64)
def test_alexnet(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``alexnet`` and ``vgg16`` (their module layout, widths 8-32, hidden 64)."""
    return TinyAlexNet(num_classes)


@register_model(native_size=32)
def test_vgg_bn(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``vgg19_bn`` (one conv per block, widths 8-32, hidden width 64)."""
    return VGG((1, 1, 1, 1, 1), (8, 16, 32, 32, 32), num_classes, batch_norm=True, hidden=64)


@register_model(native_size=32)
def test_vgg(num_classes: int) -> nn.Module:
    """Tiny stand-in for ``vgg19`` (no BatchNorm)."""
    return VGG((1, 1, 1, 1, 1), (8, 16, 32, 32, 32), num_classes, batch_norm=False, hidden=64)


# --------------------------------------------------------------------------- transformers

@register_model(native_size=64, **TIMM_TRANSFORMER)
def test_vit(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``vit_base_patch16_224`` (64 px, 16x16 patches, width 32, depth 2)."""
    return vit(64, 16, 32, 2, 2, 2.0, num_classes, drop_path)


@register_model(native_size=32, **TIMM_TRANSFORMER)
def test_vit_cifar(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``vit_small_cifar`` (32 px, 4x4 patches, width 32, depth 2)."""
    return vit(32, 4, 32, 2, 2, 2.0, num_classes, drop_path)


@register_model(native_size=32, **TIMM_TRANSFORMER)
def test_cait(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``cait_s36_384`` (32 px, 4 x 4 patches, width 32, 2 + 1 class-attention blocks)."""
    from timm.models.cait import Cait

    return Cait(img_size=32, patch_size=4, num_classes=num_classes, embed_dim=32, depth=2, num_heads=2,
                depth_token_only=1, drop_path_rate=drop_path)


@register_model(native_size=32, **TIMM_TRANSFORMER)
def test_deit_distilled(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``deit_base_distilled_patch16_384`` (class and distillation tokens)."""
    from timm.models.deit import VisionTransformerDistilled

    return VisionTransformerDistilled(img_size=32, patch_size=4, num_classes=num_classes, embed_dim=32,
                                      depth=2, num_heads=2, drop_path_rate=drop_path)


@register_model(native_size=32, **dict(TIMM_TRANSFORMER, freeze_last_k=False))  # as Swin: no blocks
def test_swin(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``swin_large_patch4_window12_384`` (32 px, 4 x 4 windows, two stages)."""
    from timm.models.swin_transformer import SwinTransformer

    return SwinTransformer(img_size=32, patch_size=4, window_size=4, embed_dim=16, depths=(1, 1),
                           num_heads=(1, 2), num_classes=num_classes, drop_path_rate=drop_path)


@register_model(native_size=32, **T2T)
def test_t2t_vit(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``t2t_vit_t_14`` (32 px, width 32, depth 2, token width 8)."""
    from .t2t_vit import T2TViT

    return T2TViT(img_size=32, num_classes=num_classes, embed_dim=32, depth=2, num_heads=2,
                  mlp_ratio=2.0, token_dim=8, drop_path_rate=drop_path)
