"""Batch preprocessing on the device: the data set lives on the GPU as uint8, and each batch is
cropped, flipped, policy-augmented, resized and normalised there. The same code runs on the CPU.

Randomness comes from an explicit ``torch.Generator`` for crops and flips (the augmentation
stream, seeded apart from the data order); the torchvision policies and timm's random erasing
draw from the global RNGs, which the trainer reseeds at every epoch.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError


@dataclass
class Preprocess:
    """What is done to a uint8 N x H x W x 3 batch before the model sees it."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    normalize: bool = True
    image_size: Optional[int] = None
    resize_mode: str = "bilinear"
    crop_padding: int = 0
    random_resized_crop: bool = False
    rrc_min_scale: float = 0.08
    flip: bool = False
    policy: str = "none"
    policy_group: int = 16
    color_jitter: float = 0.0
    random_erasing: float = 0.0
    channels_last: bool = False
    _on_device: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_config(cls, data_cfg, mean, std, channels_last: bool = False) -> "Preprocess":
        return cls(mean=tuple(mean), std=tuple(std), normalize=data_cfg.normalize,
                   image_size=data_cfg.image_size, resize_mode=data_cfg.resize_mode,
                   crop_padding=data_cfg.crop_padding,
                   random_resized_crop=data_cfg.random_resized_crop,
                   rrc_min_scale=data_cfg.rrc_min_scale,
                   flip=data_cfg.flip, policy=data_cfg.policy, policy_group=data_cfg.policy_group,
                   color_jitter=data_cfg.color_jitter,
                   random_erasing=data_cfg.random_erasing, channels_last=channels_last)

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        """Deterministic path (test time): resize and normalise only."""
        return self._finish(images.permute(0, 3, 1, 2))

    def train(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Random path in the usual order (torchvision's and timm's): crop, flip, policy, then
        resize, normalise and random erasing."""
        x = images.permute(0, 3, 1, 2)  # N x 3 x H x W, still uint8
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, gen)
        if self.random_resized_crop:
            x = random_resized_crop(x, self.image_size or x.shape[-1], self.rrc_min_scale, gen)
        if self.flip:
            x = random_flip(x, gen)
        if self.policy != "none" or self.color_jitter:
            if x.is_floating_point():  # the policies' colour ops are defined on uint8 images
                x = x.round().clamp_(0, 255).to(torch.uint8)
        if self.color_jitter:
            x = color_jitter(x, self.color_jitter, self.policy_group)
        if self.policy != "none":
            x = apply_policy(x, self.policy, self.policy_group)
        x = self._finish(x)
        if self.random_erasing > 0:
            x = self._eraser(x.device)(x)
        return x

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().div_(255.0)
        if self.image_size and tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode=self.resize_mode,
                              align_corners=False, antialias=x.shape[-1] > self.image_size)
        if self.normalize:
            mean, std = self._stats(x.device)
            x = (x - mean) / std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as 1 x 3 x 1 x 1 tensors on ``device``, made once: a tensor built from
        Python numbers is a host-to-device copy, and one per batch would stall every step."""
        if device not in self._on_device:
            self._on_device[device] = (torch.tensor(self.mean, device=device).view(1, 3, 1, 1),
                                       torch.tensor(self.std, device=device).view(1, 3, 1, 1))
        return self._on_device[device]

    def _eraser(self, device: torch.device):
        from timm.data.random_erasing import RandomErasing

        # per-pixel normal noise in the erased box, as in DeiT; one box per image
        return RandomErasing(probability=self.random_erasing, mode="pixel", device=str(device))


def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``padding`` and cut a random H x W window per image (one gather, no loop)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen, device=gen.device).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen, device=gen.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])  # n x h
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None, :])  # n x w
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # n x h x w x c
    return out.permute(0, 3, 1, 2)


def random_resized_crop(x: torch.Tensor, size: int, min_scale: float, gen: torch.Generator,
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10) -> torch.Tensor:
    """torchvision's RandomResizedCrop for a whole batch in one call: per image, a box of
    ``min_scale``-1 of the area and aspect ratio in ``ratio`` (``tries`` draws, the first that
    fits; else the whole image), resized to ``size`` x ``size`` by bilinear ROI pooling with
    torchvision's adaptive sampling (one sample per output pixel when enlarging, more when
    shrinking, which smooths). Returns float in 0-255."""
    from torchvision.ops import roi_align

    n, _, h, w = x.shape
    dev = gen.device
    area = torch.empty(n, tries, device=dev).uniform_(min_scale, 1.0, generator=gen) * (h * w)
    log_r = torch.empty(n, tries, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    bw = torch.sqrt(area * torch.exp(log_r)).round()
    bh = torch.sqrt(area / torch.exp(log_r)).round()
    fits = (bw <= w) & (bh <= h) & (bw > 0) & (bh > 0)
    first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((n,), -1, device=dev))
    pick = first.clamp(min=0)[:, None]
    bw = torch.where(first >= 0, bw.gather(1, pick)[:, 0], torch.full((n,), float(w), device=dev))
    bh = torch.where(first >= 0, bh.gather(1, pick)[:, 0], torch.full((n,), float(h), device=dev))
    x0 = (torch.rand(n, generator=gen, device=dev) * (w - bw + 1)).floor()
    y0 = (torch.rand(n, generator=gen, device=dev) * (h - bh + 1)).floor()
    boxes = torch.stack([torch.arange(n, device=dev, dtype=torch.float32), x0, y0, x0 + bw, y0 + bh], 1)
    return roi_align(x.float(), boxes.to(x.device), output_size=(size, size), spatial_scale=1.0,
                     sampling_ratio=0, aligned=True)


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = torch.rand(x.shape[0], generator=gen, device=gen.device).to(x.device) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def apply_policy(x: torch.Tensor, policy: str, group: int) -> torch.Tensor:
    """torchvision's AutoAugment (CIFAR-10 policy) or RandAugment on uint8 images. A batched
    call draws one op for the whole call, so the batch is split into groups of ``group``
    images that each get their own draw: per-image policies at a fraction of the launches."""
    from torchvision.transforms import v2

    if policy == "autoaugment":
        op = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    elif policy == "randaugment":
        op = v2.RandAugment(num_ops=2, magnitude=9)
    else:
        raise ConfigError(f"data.policy: unknown augmentation policy {policy!r}")
    return torch.cat([op(chunk) for chunk in x.split(group)])


def color_jitter(x: torch.Tensor, strength: float, group: int) -> torch.Tensor:
    """torchvision's ColorJitter(brightness, contrast, saturation = strength, hue = strength / 2)
    on uint8 images, with fresh random factors (and order) for every ``group`` images."""
    from torchvision.transforms import v2

    op = v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength, hue=strength / 2)
    return torch.cat([op(chunk) for chunk in x.split(group)])


def seed_everything(seed: int) -> None:
    """Seed the global RNGs (Python's, NumPy's, torch's), which the policies, erasing, mixup and
    dropout draw from."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """The generator of the crops and flips (the augmentation stream), on ``device``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def batch_indices(n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool,
                  rank: int = 0, world_size: int = 1, weights: Optional[torch.Tensor] = None,
                  device: Optional[torch.device] = None) -> Iterator[torch.Tensor]:
    """Index batches of one epoch; with ``world_size > 1`` each rank takes a disjoint shard of
    every global batch (the same permutation on every rank, from ``seed``). With ``weights``
    (one per sample), the epoch's ``n`` indices are drawn with replacement in proportion to them.
    The order is drawn on the CPU (the same on every device) and moved to ``device`` once: a
    CPU index into a GPU tensor is a copy, and a sync, at every step."""
    if weights is not None:
        gen = torch.Generator().manual_seed(seed)
        order = torch.multinomial(weights.double(), n, replacement=True, generator=gen)
    elif shuffle:
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=gen)
    else:
        order = torch.arange(n)
    if device is not None:
        order = order.to(device)
    global_bs = batch_size * world_size
    stop = (n // global_bs) * global_bs if drop_last else n
    for start in range(0, stop, global_bs):
        chunk = order[start:start + global_bs]
        shard = chunk[rank::world_size]
        if len(shard):
            yield shard
