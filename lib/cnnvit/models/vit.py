"""Vision transformers: timm's ViTs, DeiTs, CaiT and Swin (with published weights), a ViT sized
for 32 px from scratch, and T2T-ViT (architecture in :mod:`.t2t_vit`)."""
from __future__ import annotations

from torch import nn

from .libraries import timm_model
from .registry import Hub, register_model

# what a transformer of timm takes: one input size, stochastic depth, layer-wise lr decay
# (timm's group_matcher), and its blocks count for model.freeze=last_k
TIMM_TRANSFORMER = dict(fixed_size=True, drop_path=True, layer_decay=True, freeze_last_k=True)
# T2T-ViT: blocks and stochastic depth, but no group_matcher
T2T = dict(fixed_size=True, drop_path=True, freeze_last_k=True)
TIMM = Hub("timm")  # published weights under the model's own name


def vit(img_size: int, patch: int, dim: int, depth: int, heads: int, mlp_ratio: float,
        num_classes: int, drop_path: float) -> nn.Module:
    """timm's VisionTransformer at a size of our own (small inputs, trained from scratch)."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=img_size, patch_size=patch, embed_dim=dim, depth=depth,
                             num_heads=heads, mlp_ratio=mlp_ratio, num_classes=num_classes,
                             drop_path_rate=drop_path)


# --------------------------------------------------------------------------- timm, 224 px

@register_model(native_size=224, hub=TIMM, **TIMM_TRANSFORMER)
def vit_base_patch16_224(num_classes: int, hub: Hub, pretrained: bool = False,
                         drop_path: float = 0.0) -> nn.Module:
    """timm ViT-B/16 at 224 px (86M parameters), as in the seed."""
    return timm_model(hub, num_classes, pretrained, drop_path)


@register_model(native_size=224, hub=TIMM, **TIMM_TRANSFORMER)
def vit_base_patch32_224(num_classes: int, hub: Hub, pretrained: bool = False,
                         drop_path: float = 0.0) -> nn.Module:
    """timm ViT-B/32 at 224 px (49 tokens; 88.22M parameters with 1000 classes; timm's default
    weights: ImageNet-21k, fine-tuned on 1k)."""
    return timm_model(hub, num_classes, pretrained, drop_path)


@register_model(native_size=224, hub=TIMM, **TIMM_TRANSFORMER)
def deit_base_patch16_224(num_classes: int, hub: Hub, pretrained: bool = False,
                          drop_path: float = 0.0) -> nn.Module:
    """timm DeiT-B/16 at 224 px (86M parameters; the seed of study 4 fine-tunes it)."""
    return timm_model(hub, num_classes, pretrained, drop_path)


@register_model(native_size=224, hub=TIMM, **TIMM_TRANSFORMER)
def deit_small_patch16_224(num_classes: int, hub: Hub, pretrained: bool = False,
                           drop_path: float = 0.0) -> nn.Module:
    """timm DeiT-S/16 at 224 px (22M parameters)."""
    return timm_model(hub, num_classes, pretrained, drop_path)


@register_model(native_size=224, hub=TIMM, **TIMM_TRANSFORMER)
def deit_tiny_patch16_224(num_classes: int, hub: Hub, pretrained: bool = False,
                          drop_path: float = 0.0) -> nn.Module:
    """timm DeiT-Ti/16 at 224 px (5.7M parameters)."""
    return timm_model(hub, num_classes, pretrained, drop_path)


# --------------------------------------------------------------------------- timm, 384 px (study 3)

@register_model(native_size=384, hub=TIMM, **TIMM_TRANSFORMER)
def vit_large_patch16_384(num_classes: int, hub: Hub, pretrained: bool = False,
                          drop_path: float = 0.0) -> nn.Module:
    """timm ViT-L/16 at 384 px (304M parameters; ImageNet-21k, fine-tuned on 1k)."""
    return timm_model(hub, num_classes, pretrained, drop_path)


@register_model(native_size=384, hub=TIMM, **TIMM_TRANSFORMER)
def cait_s36_384(num_classes: int, hub: Hub, pretrained: bool = False, drop_path: float = 0.0) -> nn.Module:
    """timm CaiT-S/36 at 384 px (68M parameters; ImageNet-1k with distillation)."""
    return timm_model(hub, num_classes, pretrained, drop_path)


@register_model(native_size=384, hub=TIMM, **TIMM_TRANSFORMER)
def deit_base_distilled_patch16_384(num_classes: int, hub: Hub, pretrained: bool = False,
                                    drop_path: float = 0.0) -> nn.Module:
    """timm DeiT-B/16 distilled at 384 px (88M parameters; its two heads are averaged)."""
    return timm_model(hub, num_classes, pretrained, drop_path)


# Swin's stages are ``layers`` of windowed blocks, not a ``blocks`` sequence: no last_k
@register_model(native_size=384, hub=TIMM,
                **dict(TIMM_TRANSFORMER, freeze_last_k=False))
def swin_large_patch4_window12_384(num_classes: int, hub: Hub, pretrained: bool = False,
                                   drop_path: float = 0.0) -> nn.Module:
    """timm Swin-L/4 with 12 x 12 windows at 384 px (197M parameters; ImageNet-22k)."""
    return timm_model(hub, num_classes, pretrained, drop_path)


# --------------------------------------------------------------------------- from scratch

@register_model(native_size=32, **TIMM_TRANSFORMER)
def vit_mini_cifar(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """A ViT a laptop CPU trains on CIFAR-10 in minutes: 32 px, 4x4 patches (64 tokens), width 64,
    depth 4, 2 heads, MLP ratio 2 (0.14M parameters); ``vit_small_cifar`` at a twentieth of its size."""
    return vit(32, 4, 64, 4, 2, 2.0, num_classes, drop_path)


@register_model(native_size=32, **TIMM_TRANSFORMER)
def vit_small_cifar(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """A ViT sized for 32 px from scratch: 4x4 patches (64 tokens), width 192, depth 9, 12 heads,
    MLP ratio 2 (2.7M parameters), the baseline ViT of Lee et al. 2021 for small data sets."""
    return vit(32, 4, 192, 9, 12, 2.0, num_classes, drop_path)


@register_model(native_size=224, **T2T)
def t2t_vit_t_14(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """T2T-ViT-t-14 (Yuan et al. 2021) at its paper's 224 px: 196 tokens of width 384, depth 14
    (21.47M parameters with 1000 classes, 21.16M with 200; the official code also counts its
    fixed 197 x 384 position table, hence the seed's 21.23M, which dates its model to 224 px)."""
    from .t2t_vit import t2t_vit_t_14 as build

    return build(num_classes, img_size=224, drop_path_rate=drop_path)


@register_model(native_size=64, **T2T)
def t2t_vit_t_14_64(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """T2T-ViT-t-14 built for 64 px inputs: 16 tokens (4 x 4), same weights' shapes otherwise."""
    from .t2t_vit import t2t_vit_t_14 as build

    return build(num_classes, img_size=64, drop_path_rate=drop_path)


# --------------------------------------------------------------------------- laptop scale
# The transformers of study 3 at the size of ``vit_mini_cifar`` (32 px, width 64, depth 4), so a
# laptop CPU pretrains each on Tiny-ImageNet and fine-tunes it on CIFAR-10 in minutes.

# cpu_bf16=False: measured 0.81x in bf16 against fp32 on a 2-core AVX-512 BF16 CPU (its talking-heads
# attention mixes 2 heads with a 2 x 2 linear map, which bf16 cannot speed up)
@register_model(native_size=32, cpu_bf16=False, **TIMM_TRANSFORMER)
def cait_mini_cifar(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """timm's CaiT at 32 px: 4x4 patches, width 64, 4 self-attention and 1 class-attention
    blocks, 2 heads, MLP ratio 2 (0.21M parameters with 200 classes)."""
    from timm.models.cait import Cait

    return Cait(img_size=32, patch_size=4, num_classes=num_classes, embed_dim=64, depth=4, num_heads=2,
                mlp_ratio=2.0, depth_token_only=1, drop_path_rate=drop_path)


@register_model(native_size=32, **TIMM_TRANSFORMER)
def deit_distilled_mini_cifar(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """timm's distilled DeiT (class and distillation tokens, two heads averaged) at the size of
    ``vit_mini_cifar`` (0.17M parameters with 200 classes)."""
    from timm.models.deit import VisionTransformerDistilled

    return VisionTransformerDistilled(img_size=32, patch_size=4, num_classes=num_classes, embed_dim=64,
                                      depth=4, num_heads=2, mlp_ratio=2.0, drop_path_rate=drop_path)


@register_model(native_size=32, **dict(TIMM_TRANSFORMER, freeze_last_k=False))  # as Swin-L
def swin_mini_cifar(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """timm's Swin at 32 px: 2x2 patches, 4x4 windows, three stages of 2 blocks, widths 32-128,
    MLP ratio 2 (0.42M parameters with 200 classes; like Swin-L, the largest of the four)."""
    from timm.models.swin_transformer import SwinTransformer

    return SwinTransformer(img_size=32, patch_size=2, window_size=4, embed_dim=32, depths=(2, 2, 2),
                           num_heads=(1, 2, 4), mlp_ratio=2.0, num_classes=num_classes,
                           drop_path_rate=drop_path)


@register_model(native_size=64, **T2T)
def t2t_vit_mini_64(num_classes: int, drop_path: float = 0.0) -> nn.Module:
    """T2T-ViT-t at 64 px (16 tokens, as ``t2t_vit_t_14_64``) at laptop scale: width 64, depth 4,
    2 heads, MLP ratio 2, token width 16 (0.17M parameters with 200 classes)."""
    from .t2t_vit import T2TViT

    return T2TViT(img_size=64, num_classes=num_classes, embed_dim=64, depth=4, num_heads=2,
                  mlp_ratio=2.0, token_dim=16, drop_path_rate=drop_path)
