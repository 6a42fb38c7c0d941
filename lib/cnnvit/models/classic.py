"""The simplest CNNs: torchvision's AlexNet and a NaiveCNN for the seed's unnamed one."""
from __future__ import annotations

from torch import nn

from .libraries import IMAGENET_CLASSES, replace_final_layer, torchvision_weights
from .registry import Hub, register_model


@register_model(native_size=224, hub=Hub("torchvision", "AlexNet_Weights.IMAGENET1K_V1"))
def alexnet(num_classes: int, hub: Hub, pretrained: bool = False) -> nn.Module:
    """torchvision AlexNet (61.10M parameters with 1000 classes); its adaptive pool to 6 x 6 lets
    it take other sizes (at 64 px the last feature map is 1 x 1, repeated 36 times)."""
    import torchvision

    model = torchvision.models.alexnet(weights=torchvision_weights(hub, pretrained))
    return replace_final_layer(model, IMAGENET_CLASSES, num_classes)


@register_model(native_size=64)
def naive_cnn(num_classes: int) -> nn.Module:
    """A "NaiveCNN" for study 5's (the seed names one but does not describe it; this design is the
    project's): three conv-BN-ReLU-max-pool stages (32, 64, 128 channels), global average pooling
    and a linear classifier; any input size (0.1M parameters)."""
    layers, cin = [], 3
    for width in (32, 64, 128):
        layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))
