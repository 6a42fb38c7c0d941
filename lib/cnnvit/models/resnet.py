"""ResNets: torchvision's ImageNet ResNets, and ResNets/ResNeXt with the small-image stem (with
and without skip connections) for 32 and 64 px inputs."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .libraries import IMAGENET_CLASSES, replace_final_layer, torchvision_weights
from .registry import Hub, register_model

# what a torchvision ResNet takes: its stages count for model.freeze=last_k
TORCHVISION_RESNET = dict(native_size=224, freeze_last_k=True)
# the small-stem ResNets of this module: no published weights, no stochastic depth
SMALL_STEM = dict(native_size=32, freeze_last_k=True)


# --------------------------------------------------------------------------- torchvision

@register_model(hub=Hub("torchvision", "ResNet18_Weights.IMAGENET1K_V1"), **TORCHVISION_RESNET)
def resnet18(num_classes: int, hub: Hub, pretrained: bool = False) -> nn.Module:
    """torchvision ResNet-18 with its ImageNet stem (7x7/2 conv, max-pool), as in the seed."""
    import torchvision

    model = torchvision.models.resnet18(weights=torchvision_weights(hub, pretrained))
    return replace_final_layer(model, IMAGENET_CLASSES, num_classes)


@register_model(hub=Hub("torchvision", "ResNet101_Weights.IMAGENET1K_V1"), **TORCHVISION_RESNET)
def resnet101(num_classes: int, hub: Hub, pretrained: bool = False) -> nn.Module:
    """torchvision ResNet-101 (bottleneck blocks 3-4-23-3; 44.55M parameters with 1000 classes)."""
    import torchvision

    model = torchvision.models.resnet101(weights=torchvision_weights(hub, pretrained))
    return replace_final_layer(model, IMAGENET_CLASSES, num_classes)


@register_model(hub=Hub("torchvision", "ResNet152_Weights.IMAGENET1K_V1"), **TORCHVISION_RESNET)
def resnet152(num_classes: int, hub: Hub, pretrained: bool = False) -> nn.Module:
    """torchvision ResNet-152 (bottleneck blocks 3-8-36-3; 60.19M parameters with 1000 classes)."""
    import torchvision

    model = torchvision.models.resnet152(weights=torchvision_weights(hub, pretrained))
    return replace_final_layer(model, IMAGENET_CLASSES, num_classes)


# --------------------------------------------------------------------------- small-image stem

class _NoSkip(nn.Module):
    """A torchvision residual block with its shortcut removed (the seed's skip ablation); its
    projection shortcut goes too, as in the seed (ResNet-50: 23.91M -> 21.13M parameters)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        block.downsample = None
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        out = b.relu(b.bn1(b.conv1(x)))
        out = b.bn2(b.conv2(out))
        if hasattr(b, "conv3"):  # bottleneck
            out = b.bn3(b.conv3(b.relu(out)))
        return b.relu(out)


class SmallStemResNet(nn.Module):
    """ResNet/ResNeXt with the small-image stem: a 3x3 stride-1 conv and no max-pool, so 32 or
    64 px inputs keep their resolution in the first stage (the seed's change for Tiny-ImageNet).
    torchvision's blocks and initialisation; stage widths, depth, cardinality and the shortcuts
    are parameters, so the tiny test variants share the code of the real ones."""

    def __init__(self, block: str, layers: Sequence[int], num_classes: int,
                 widths: Sequence[int] = (64, 128, 256, 512), groups: int = 1,
                 width_per_group: int = 64, skip: bool = True):
        super().__init__()
        from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        inplanes, stages = widths[0], []
        for i, (width, n) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                out = width * block_cls.expansion
                down = None
                if j == 0 and (stride != 1 or inplanes != out):
                    down = nn.Sequential(conv1x1(inplanes, out, stride), nn.BatchNorm2d(out))
                kwargs = {"groups": groups, "base_width": width_per_group} if block == "bottleneck" else {}
                b = block_cls(inplanes, width, stride if j == 0 else 1, down, **kwargs)
                blocks.append(b if skip else _NoSkip(b))
                inplanes = out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register_model(**SMALL_STEM)
def resnet10_mini_cifar(num_classes: int) -> nn.Module:
    """A ResNet a laptop CPU trains on CIFAR-10 in minutes: the small-image stem, one basic block
    per stage, widths 16-128 (0.31M parameters), about a 35th of ResNet-18's."""
    return SmallStemResNet("basic", [1, 1, 1, 1], num_classes=num_classes, widths=(16, 32, 64, 128))


@register_model(**SMALL_STEM)
def resnet18_cifar(num_classes: int) -> nn.Module:
    """ResNet-18 with the small-image stem (3x3 stride 1, no max-pool): the usual CIFAR variant,
    and the seed's for 64 px Tiny-ImageNet (11.27M parameters with 200 classes)."""
    return SmallStemResNet("basic", [2, 2, 2, 2], num_classes=num_classes)


@register_model(**SMALL_STEM)
def resnet34_cifar(num_classes: int) -> nn.Module:
    """ResNet-34 with the small-image stem (21.38M parameters with 200 classes)."""
    return SmallStemResNet("basic", [3, 4, 6, 3], num_classes=num_classes)


@register_model(**SMALL_STEM)
def resnet50_cifar(num_classes: int) -> nn.Module:
    """ResNet-50 with the small-image stem (23.91M parameters with 200 classes)."""
    return SmallStemResNet("bottleneck", [3, 4, 6, 3], num_classes=num_classes)


@register_model(**SMALL_STEM)
def resnet50_noskip_cifar(num_classes: int) -> nn.Module:
    """ResNet-50 with the small-image stem and no skip connections at all (21.13M parameters)."""
    return SmallStemResNet("bottleneck", [3, 4, 6, 3], num_classes=num_classes, skip=False)


@register_model(**SMALL_STEM)
def resnext50_32x4d_cifar(num_classes: int) -> nn.Module:
    """ResNeXt-50 32x4d (cardinality 32, 4 channels per group) with the small-image stem
    (23.38M parameters with 200 classes)."""
    return SmallStemResNet("bottleneck", [3, 4, 6, 3], num_classes=num_classes, groups=32,
                           width_per_group=4)


# the laptop profile's ResNets: the seed's depths and blocks at an eighth of the width
MINI_WIDTHS = (8, 16, 32, 64)


@register_model(**SMALL_STEM)
def resnet18_mini_cifar(num_classes: int) -> nn.Module:
    """``resnet18_cifar`` at an eighth of its width (8-64 channels; 0.19M parameters with 200
    classes), for 32 px on a laptop CPU."""
    return SmallStemResNet("basic", [2, 2, 2, 2], num_classes=num_classes, widths=MINI_WIDTHS)


@register_model(**SMALL_STEM)
def resnet34_mini_cifar(num_classes: int) -> nn.Module:
    """``resnet34_cifar`` at an eighth of its width (0.35M parameters with 200 classes)."""
    return SmallStemResNet("basic", [3, 4, 6, 3], num_classes=num_classes, widths=MINI_WIDTHS)


@register_model(**SMALL_STEM)
def resnet50_mini_cifar(num_classes: int) -> nn.Module:
    """``resnet50_cifar`` at an eighth of its width (bottleneck blocks 3-4-6-3, inner widths 8-64;
    0.43M parameters with 200 classes)."""
    return SmallStemResNet("bottleneck", [3, 4, 6, 3], num_classes=num_classes, widths=MINI_WIDTHS)


@register_model(**SMALL_STEM)
def resnet50_noskip_mini_cifar(num_classes: int) -> nn.Module:
    """``resnet50_mini_cifar`` without skip connections (as ``resnet50_noskip_cifar``)."""
    return SmallStemResNet("bottleneck", [3, 4, 6, 3], num_classes=num_classes, widths=MINI_WIDTHS,
                           skip=False)


@register_model(**SMALL_STEM)
def resnext50_mini_cifar(num_classes: int) -> nn.Module:
    """ResNeXt-50's rule at an eighth of ResNet-50's width: twice the inner width of
    ``resnet50_mini_cifar`` in 16 groups (16x1d; 0.44M parameters with 200 classes, within 4% of
    it). 32x4d's 32 groups do not divide an eighth of its width."""
    return SmallStemResNet("bottleneck", [3, 4, 6, 3], num_classes=num_classes, widths=MINI_WIDTHS,
                           groups=16, width_per_group=8)
