"""The task's loss and accuracy (one class per image, or one 0/1 label per attribute), class
weights for imbalanced labels, and the training objective built from them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights, n / (C x count), so that every class weighs the same in the loss;
    for an N x K multi-label matrix, each label's positive weight negatives / positives (the
    ``pos_weight`` of binary cross-entropy), so that its positives weigh as much as its negatives."""
    if labels.ndim == 2:
        pos = labels.sum(0)
        return (len(labels) - pos) / np.maximum(pos, 1)
    counts = np.bincount(labels, minlength=num_classes)
    return len(labels) / (num_classes * np.maximum(counts, 1))


def task_loss(logits: torch.Tensor, y: torch.Tensor, weight: Optional[torch.Tensor] = None,
              label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy for class labels; for 0/1 label matrices, binary cross-entropy of one sigmoid
    per label (``weight`` then is each label's positive weight)."""
    if y.ndim == 2:
        return F.binary_cross_entropy_with_logits(logits.float(), y.float(), pos_weight=weight)
    return F.cross_entropy(logits.float(), y, weight=weight, label_smoothing=label_smoothing)


def task_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy; for label matrices, the mean over labels of the accuracy at p >= 0.5."""
    if y.ndim == 2:
        return float(((logits >= 0) == (y >= 0.5)).float().mean())
    return float((logits.argmax(1) == y).float().mean())


@dataclass
class Objective:
    """The training loss of one batch: the task's loss (class-weighted and label-smoothed as
    configured) or, with mixup/cutmix (``mixer``, timm's Mixup), the soft-target cross-entropy of
    the mixed batch."""

    weight: Optional[torch.Tensor] = None
    label_smoothing: float = 0.0
    mixer: Optional[Callable] = None
    soft_ce: Optional[Callable] = None

    def __call__(self, forward: Callable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of ``forward`` (the model) on images ``x`` with labels ``y``."""
        if self.mixer is not None:
            x, soft = self.mixer(x, y)
            logits = forward(x)
            return self.soft_ce(logits.float(), soft)
        logits = forward(x)
        return task_loss(logits, y, self.weight, self.label_smoothing)
