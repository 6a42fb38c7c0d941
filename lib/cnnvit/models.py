"""Model registry: ``create_model(name, num_classes, ...)`` over torchvision and timm models.

Register a builder with ``@register_model``; its function name is the model name. Every model
has a tiny ``test_*`` sibling so that the test suite can run each architecture's forward and
backward on the CPU in milliseconds.
"""
from __future__ import annotations

from .errors import ModelError

import logging
from typing import Callable, Optional, Sequence

import torch
from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_NATIVE_SIZE: dict[str, int] = {}
_FIXED_SIZE: set[str] = set()


def register_model(native_size: int, fixed_size: bool = False) -> Callable:
    """Decorator: register a builder ``fn(num_classes, pretrained, drop_path)`` under its name.
    ``native_size`` is the input resolution the architecture is built for; ``fixed_size`` marks
    models that accept no other (a transformer's position embedding fixes it)."""
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[fn.__name__] = fn
        _NATIVE_SIZE[fn.__name__] = native_size
        if fixed_size:
            _FIXED_SIZE.add(fn.__name__)
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
        raise ModelError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _REGISTRY[name](num_classes=num_classes, pretrained=pretrained, drop_path=drop_path)


# registered models with published weights: which library serves them, under which name
TIMM_HUB = {"vit_base_patch16_224": "vit_base_patch16_224", "deit_base_patch16_224": "deit_base_patch16_224",
            "deit_small_patch16_224": "deit_small_patch16_224",
            "deit_tiny_patch16_224": "deit_tiny_patch16_224",
            # study 3 ("Vision Transformers in 2022: An Update on Tiny ImageNet"), at 384 px
            "vit_large_patch16_384": "vit_large_patch16_384", "cait_s36_384": "cait_s36_384",
            "deit_base_distilled_patch16_384": "deit_base_distilled_patch16_384",
            "swin_large_patch4_window12_384": "swin_large_patch4_window12_384",
            # study 5 (CelebA)
            "vit_base_patch32_224": "vit_base_patch32_224"}
# torchvision's ImageNet weights by registered name (which is also torchvision's builder name);
# strings, so that importing this module does not import torchvision
TORCHVISION_HUB = {"resnet18": "ResNet18_Weights.IMAGENET1K_V1",
                   # study 5 (CelebA)
                   "alexnet": "AlexNet_Weights.IMAGENET1K_V1", "vgg16": "VGG16_Weights.IMAGENET1K_V1",
                   "resnet101": "ResNet101_Weights.IMAGENET1K_V1",
                   "resnet152": "ResNet152_Weights.IMAGENET1K_V1"}


def hub_weights(name: str) -> Optional[tuple[str, str]]:
    """("timm", Hugging Face repo) or ("torchvision", URL) of a model's published weights."""
    if name in TIMM_HUB:
        from timm.models import get_pretrained_cfg

        return "timm", get_pretrained_cfg(TIMM_HUB[name]).hf_hub_id
    if name in TORCHVISION_HUB:
        import torchvision

        return "torchvision", torchvision.models.get_weight(TORCHVISION_HUB[name]).url
    return None


def count_flops(model: nn.Module, image_size: int | tuple[int, int],
                device: torch.device | str = "cpu") -> Optional[float]:
    """Floating-point operations of one forward pass on one image (torch's FLOP counter: a
    multiply-add counts 2); None, with a warning, where the counter fails on a model."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    try:
        for p in model.parameters():  # the counter's module tracker hooks tensors that need grad
            p.requires_grad_(False)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
            model(torch.zeros(1, 3, h, w, device=device))
        return float(counter.get_total_flops())
    except Exception as exc:  # an efficiency figure must never cost a finished run
        logging.getLogger(__name__).warning("could not count FLOPs of %s: %s", type(model).__name__, exc)
        return None
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _no_pretrained(name: str, pretrained: bool) -> None:
    if pretrained:
        raise ModelError(f"{name} has no published pretrained weights; set model.pretrained=false")


def _torchvision(name: str, pretrained: bool) -> nn.Module:
    """torchvision's ``name`` with its 1000-class ImageNet head, and the weights of
    ``TORCHVISION_HUB`` when ``pretrained``; the caller replaces the head."""
    import torchvision

    weights = torchvision.models.get_weight(TORCHVISION_HUB[name]) if pretrained else None
    return torchvision.models.get_model(name, weights=weights)


# --------------------------------------------------------------------------- ResNets

def _torchvision_resnet(name: str, num_classes: int, pretrained: bool) -> nn.Module:
    """A torchvision ResNet with a new ``num_classes``-way ``fc``."""
    model = _torchvision(name, pretrained)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@register_model(native_size=224)
def resnet18(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """torchvision ResNet-18 with its ImageNet stem (7x7/2 conv, max-pool), as in the seed."""
    return _torchvision_resnet("resnet18", num_classes, pretrained)


@register_model(native_size=224)
def resnet101(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """torchvision ResNet-101 (bottleneck blocks 3-4-23-3; 44.55M parameters with 1000 classes)."""
    return _torchvision_resnet("resnet101", num_classes, pretrained)


@register_model(native_size=224)
def resnet152(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """torchvision ResNet-152 (bottleneck blocks 3-8-36-3; 60.19M parameters with 1000 classes)."""
    return _torchvision_resnet("resnet152", num_classes, pretrained)


def _tiny_resnet(num_classes: int) -> nn.Module:
    from timm.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes, channels=(8, 16, 32, 64))


@register_model(native_size=64)
def test_resnet(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnet18`` (ImageNet stem, widths 8-64, one block per stage)."""
    _no_pretrained("test_resnet", pretrained)
    return _tiny_resnet(num_classes)


@register_model(native_size=64)
def test_resnet_bottleneck(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnet101``/``resnet152``: torchvision's own ResNet class and bottleneck
    block, so that, like the real ones and unlike timm's ResNet of ``test_resnet``, it has no
    ``get_classifier`` or ``group_matcher``; one block per stage, inner widths 4-32 (0.23M parameters)."""
    from torchvision.models.resnet import Bottleneck, ResNet

    class TinyBottleneck(Bottleneck):
        # torchvision fixes the stage widths at 64-512 and multiplies the blocks' outputs by this:
        # 1 instead of 4 makes a training step about 3x cheaper (the smoke study trains this model)
        expansion = 1

    _no_pretrained("test_resnet_bottleneck", pretrained)
    return ResNet(TinyBottleneck, [1, 1, 1, 1], num_classes=num_classes, width_per_group=4)


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


def _small_resnet(name: str, pretrained: bool, num_classes: int, *args, **kwargs) -> nn.Module:
    _no_pretrained(name, pretrained)
    return SmallStemResNet(*args, num_classes=num_classes, **kwargs)


@register_model(native_size=32)
def resnet18_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """ResNet-18 with the small-image stem (3x3 stride 1, no max-pool): the usual CIFAR variant,
    and the seed's for 64 px Tiny-ImageNet (11.27M parameters with 200 classes)."""
    return _small_resnet("resnet18_cifar", pretrained, num_classes, "basic", [2, 2, 2, 2])


@register_model(native_size=32)
def resnet34_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """ResNet-34 with the small-image stem (21.38M parameters with 200 classes)."""
    return _small_resnet("resnet34_cifar", pretrained, num_classes, "basic", [3, 4, 6, 3])


@register_model(native_size=32)
def resnet50_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """ResNet-50 with the small-image stem (23.91M parameters with 200 classes)."""
    return _small_resnet("resnet50_cifar", pretrained, num_classes, "bottleneck", [3, 4, 6, 3])


@register_model(native_size=32)
def resnet50_noskip_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """ResNet-50 with the small-image stem and no skip connections at all (21.13M parameters)."""
    return _small_resnet("resnet50_noskip_cifar", pretrained, num_classes, "bottleneck", [3, 4, 6, 3],
                         skip=False)


@register_model(native_size=32)
def resnext50_32x4d_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """ResNeXt-50 32x4d (cardinality 32, 4 channels per group) with the small-image stem
    (23.38M parameters with 200 classes)."""
    return _small_resnet("resnext50_32x4d_cifar", pretrained, num_classes, "bottleneck", [3, 4, 6, 3],
                         groups=32, width_per_group=4)


TINY_WIDTHS = (8, 16, 32, 64)


@register_model(native_size=32)
def test_resnet_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnet18_cifar`` (widths 8-64, one basic block per stage)."""
    return _small_resnet("test_resnet_cifar", pretrained, num_classes, "basic", [1, 1, 1, 1],
                         widths=TINY_WIDTHS)


@register_model(native_size=32)
def test_resnet_deeper_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnet34_cifar`` (two basic blocks per stage)."""
    return _small_resnet("test_resnet_deeper_cifar", pretrained, num_classes, "basic", [2, 2, 2, 2],
                         widths=TINY_WIDTHS)


@register_model(native_size=32)
def test_resnet_bottleneck_cifar(num_classes: int, pretrained: bool = False,
                                 drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnet50_cifar`` (one bottleneck block per stage, widths 4-32)."""
    return _small_resnet("test_resnet_bottleneck_cifar", pretrained, num_classes, "bottleneck",
                         [1, 1, 1, 1], widths=(4, 8, 16, 32))


@register_model(native_size=32)
def test_resnet_noskip_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnet50_noskip_cifar``."""
    return _small_resnet("test_resnet_noskip_cifar", pretrained, num_classes, "bottleneck",
                         [1, 1, 1, 1], widths=(4, 8, 16, 32), skip=False)


@register_model(native_size=32)
def test_resnext_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``resnext50_32x4d_cifar`` (cardinality 4; torchvision's group width
    is ``width x width_per_group / 64``, so 4 channels per group in the first stage)."""
    return _small_resnet("test_resnext_cifar", pretrained, num_classes, "bottleneck", [1, 1, 1, 1],
                         widths=(8, 16, 32, 64), groups=4, width_per_group=32)


# --------------------------------------------------------------------------- a simple CNN

@register_model(native_size=64)
def naive_cnn(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """The seed's "NaiveCNN" (study 5): three conv-BN-ReLU-max-pool stages (32, 64, 128 channels),
    global average pooling and a linear classifier; any input size (0.1M parameters)."""
    _no_pretrained("naive_cnn", pretrained)
    layers, cin = [], 3
    for width in (32, 64, 128):
        layers += [nn.Conv2d(cin, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))


# --------------------------------------------------------------------------- AlexNet

def _torchvision_classifier(name: str, num_classes: int, pretrained: bool) -> nn.Module:
    """torchvision's AlexNet or VGG with a new ``num_classes``-way last layer ``classifier.6``."""
    model = _torchvision(name, pretrained)
    model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


@register_model(native_size=224)
def alexnet(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """torchvision AlexNet (61.10M parameters with 1000 classes); its adaptive pool to 6 x 6 lets
    it take other sizes (at 64 px the last feature map is 1 x 1, repeated 36 times)."""
    return _torchvision_classifier("alexnet", num_classes, pretrained)


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
def test_alexnet(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``alexnet`` and ``vgg16`` (their module layout, widths 8-32, hidden 64)."""
    _no_pretrained("test_alexnet", pretrained)
    return TinyAlexNet(num_classes)


# --------------------------------------------------------------------------- VGG

@register_model(native_size=224)
def vgg16(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """torchvision VGG16 without BatchNorm (13 convs, 25088-4096-4096 head; 138.36M parameters
    with 1000 classes); any size through its adaptive pool to 7 x 7."""
    return _torchvision_classifier("vgg16", num_classes, pretrained)


VGG19_CONVS = (2, 2, 4, 4, 4)  # 16 conv layers in five blocks, then 3 fully connected layers


class VGG(nn.Module):
    """VGG in the seed's form for 64 px: blocks of 3x3 convs (optionally with BatchNorm) and a
    2x2 max-pool, then two hidden fully connected layers with dropout. PyTorch's default
    initialisation, as in the seed: without BatchNorm this deep plain network stalls, which is
    the point of its ablation."""

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
def vgg19_bn(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """VGG19 with BatchNorm for 64 px inputs (16 convs, 2048-4096-4096 head; 46M parameters)."""
    _no_pretrained("vgg19_bn", pretrained)
    return VGG(VGG19_CONVS, (64, 128, 256, 512, 512), num_classes, batch_norm=True)


@register_model(native_size=64)
def vgg19(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """VGG19 without BatchNorm, otherwise as ``vgg19_bn`` (the seed's ablation)."""
    _no_pretrained("vgg19", pretrained)
    return VGG(VGG19_CONVS, (64, 128, 256, 512, 512), num_classes, batch_norm=False)


@register_model(native_size=32)
def test_vgg_bn(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``vgg19_bn`` (one conv per block, widths 8-32, hidden width 64)."""
    _no_pretrained("test_vgg_bn", pretrained)
    return VGG((1, 1, 1, 1, 1), (8, 16, 32, 32, 32), num_classes, batch_norm=True, hidden=64)


@register_model(native_size=32)
def test_vgg(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``vgg19`` (no BatchNorm)."""
    _no_pretrained("test_vgg", pretrained)
    return VGG((1, 1, 1, 1, 1), (8, 16, 32, 32, 32), num_classes, batch_norm=False, hidden=64)


# --------------------------------------------------------------------------- T2T-ViT

@register_model(native_size=224, fixed_size=True)
def t2t_vit_t_14(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """T2T-ViT-t-14 (Yuan et al. 2021) at its paper's 224 px: 196 tokens of width 384, depth 14
    (21.47M parameters with 1000 classes, 21.16M with 200; the official code also counts its
    fixed 197 x 384 position table, hence the seed's 21.23M, which dates its model to 224 px)."""
    from .t2t_vit import t2t_vit_t_14 as build

    _no_pretrained("t2t_vit_t_14", pretrained)
    return build(num_classes, img_size=224, drop_path_rate=drop_path)


@register_model(native_size=64, fixed_size=True)
def t2t_vit_t_14_64(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """T2T-ViT-t-14 built for 64 px inputs: 16 tokens (4 x 4), same weights' shapes otherwise."""
    from .t2t_vit import t2t_vit_t_14 as build

    _no_pretrained("t2t_vit_t_14_64", pretrained)
    return build(num_classes, img_size=64, drop_path_rate=drop_path)


@register_model(native_size=32, fixed_size=True)
def test_t2t_vit(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``t2t_vit_t_14`` (32 px, width 32, depth 2, token width 8)."""
    from .t2t_vit import T2TViT

    _no_pretrained("test_t2t_vit", pretrained)
    return T2TViT(img_size=32, num_classes=num_classes, embed_dim=32, depth=2, num_heads=2,
                  mlp_ratio=2.0, token_dim=8, drop_path_rate=drop_path)


# --------------------------------------------------------------------------- ViTs

@register_model(native_size=224, fixed_size=True)
def vit_base_patch16_224(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm ViT-B/16 at 224 px (86M parameters), as in the seed."""
    import timm

    return timm.create_model("vit_base_patch16_224", pretrained=pretrained, num_classes=num_classes,
                             drop_path_rate=drop_path)


def _timm(name: str, num_classes: int, pretrained: bool, drop_path: float) -> nn.Module:
    import timm

    return timm.create_model(TIMM_HUB[name], pretrained=pretrained, num_classes=num_classes,
                             drop_path_rate=drop_path)


@register_model(native_size=224, fixed_size=True)
def vit_base_patch32_224(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm ViT-B/32 at 224 px (49 tokens; 88.22M parameters with 1000 classes; timm's default
    weights: ImageNet-21k, fine-tuned on 1k)."""
    return _timm("vit_base_patch32_224", num_classes, pretrained, drop_path)


@register_model(native_size=224, fixed_size=True)
def deit_base_patch16_224(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm DeiT-B/16 at 224 px (86M parameters; the seed of study 4 fine-tunes it)."""
    return _timm("deit_base_patch16_224", num_classes, pretrained, drop_path)


@register_model(native_size=224, fixed_size=True)
def deit_small_patch16_224(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm DeiT-S/16 at 224 px (22M parameters)."""
    return _timm("deit_small_patch16_224", num_classes, pretrained, drop_path)


@register_model(native_size=224, fixed_size=True)
def deit_tiny_patch16_224(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm DeiT-Ti/16 at 224 px (5.7M parameters)."""
    return _timm("deit_tiny_patch16_224", num_classes, pretrained, drop_path)


@register_model(native_size=384, fixed_size=True)
def vit_large_patch16_384(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm ViT-L/16 at 384 px (304M parameters; ImageNet-21k, fine-tuned on 1k)."""
    return _timm("vit_large_patch16_384", num_classes, pretrained, drop_path)


@register_model(native_size=384, fixed_size=True)
def cait_s36_384(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm CaiT-S/36 at 384 px (68M parameters; ImageNet-1k with distillation)."""
    return _timm("cait_s36_384", num_classes, pretrained, drop_path)


@register_model(native_size=384, fixed_size=True)
def deit_base_distilled_patch16_384(num_classes: int, pretrained: bool = False,
                                    drop_path: float = 0.0) -> nn.Module:
    """timm DeiT-B/16 distilled at 384 px (88M parameters; its two heads are averaged)."""
    return _timm("deit_base_distilled_patch16_384", num_classes, pretrained, drop_path)


@register_model(native_size=384, fixed_size=True)
def swin_large_patch4_window12_384(num_classes: int, pretrained: bool = False,
                                   drop_path: float = 0.0) -> nn.Module:
    """timm Swin-L/4 with 12 x 12 windows at 384 px (197M parameters; ImageNet-22k)."""
    return _timm("swin_large_patch4_window12_384", num_classes, pretrained, drop_path)


@register_model(native_size=32, fixed_size=True)
def test_cait(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``cait_s36_384`` (32 px, 4 x 4 patches, width 32, 2 + 1 class-attention blocks)."""
    from timm.models.cait import Cait

    _no_pretrained("test_cait", pretrained)
    return Cait(img_size=32, patch_size=4, num_classes=num_classes, embed_dim=32, depth=2, num_heads=2,
                depth_token_only=1, drop_path_rate=drop_path)


@register_model(native_size=32, fixed_size=True)
def test_deit_distilled(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``deit_base_distilled_patch16_384`` (class and distillation tokens)."""
    from timm.models.deit import VisionTransformerDistilled

    _no_pretrained("test_deit_distilled", pretrained)
    return VisionTransformerDistilled(img_size=32, patch_size=4, num_classes=num_classes, embed_dim=32,
                                      depth=2, num_heads=2, drop_path_rate=drop_path)


@register_model(native_size=32, fixed_size=True)
def test_swin(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``swin_large_patch4_window12_384`` (32 px, 4 x 4 windows, two stages)."""
    from timm.models.swin_transformer import SwinTransformer

    _no_pretrained("test_swin", pretrained)
    return SwinTransformer(img_size=32, patch_size=4, window_size=4, embed_dim=16, depths=(1, 1),
                           num_heads=(1, 2), num_classes=num_classes, drop_path_rate=drop_path)


def _vit(img_size: int, patch: int, dim: int, depth: int, heads: int, mlp_ratio: float,
         num_classes: int, drop_path: float) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=img_size, patch_size=patch, embed_dim=dim, depth=depth,
                             num_heads=heads, mlp_ratio=mlp_ratio, num_classes=num_classes,
                             drop_path_rate=drop_path)


@register_model(native_size=32, fixed_size=True)
def vit_small_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """A ViT sized for 32 px from scratch: 4x4 patches (64 tokens), width 192, depth 9, 12 heads,
    MLP ratio 2 (2.7M parameters), the baseline ViT of Lee et al. 2021 for small data sets."""
    _no_pretrained("vit_small_cifar", pretrained)
    return _vit(32, 4, 192, 9, 12, 2.0, num_classes, drop_path)


@register_model(native_size=64, fixed_size=True)
def test_vit(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``vit_base_patch16_224`` (64 px, 16x16 patches, width 32, depth 2)."""
    _no_pretrained("test_vit", pretrained)
    return _vit(64, 16, 32, 2, 2, 2.0, num_classes, drop_path)


@register_model(native_size=32, fixed_size=True)
def test_vit_cifar(num_classes: int, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """Tiny stand-in for ``vit_small_cifar`` (32 px, 4x4 patches, width 32, depth 2)."""
    _no_pretrained("test_vit_cifar", pretrained)
    return _vit(32, 4, 32, 2, 2, 2.0, num_classes, drop_path)


def is_fixed_size(name: str) -> bool:
    """Whether the model accepts only its native input size."""
    return name in _FIXED_SIZE


def check_input_size(name: str, image_size: int) -> None:
    """ViTs fix their input size through the position embedding: fail before training starts."""
    if name in _FIXED_SIZE and image_size != native_size(name):
        raise ModelError(f"model {name} takes {native_size(name)} px inputs but the data arrive at "
                         f"{image_size} px; set data.image_size={native_size(name)}")


def set_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    return model.to(memory_format=torch.channels_last) if channels_last else model
