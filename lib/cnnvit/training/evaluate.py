"""Evaluation: logits of a split in eval mode, its loss and accuracy, and the test metrics and
predictions of the run's result."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from .augment import Preprocess
from .losses import task_accuracy, task_loss
from .metrics import classification_metrics, multilabel_metrics


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, prep: Preprocess,
                   batch_size: int, device: torch.device, *, flip: bool = False) -> torch.Tensor:
    """Logits (float32, on the CPU) for uint8 N x H x W x 3 images, in eval mode. Without bf16
    autocast even where training used it: bf16 keeps 8 bits of mantissa, so logits that differ
    in the third digit tie, and ties move argmax, top-5 and auROC (TF32 matmuls keep it fast).
    ``flip``: the mean of the logits of each image and its mirror image (test-time augmentation
    with the flip the model was trained with; twice the cost)."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = prep.eval(images[start:start + batch_size].to(device, non_blocking=True))
        logits = model(x).float()
        if flip:  # dim -1 is the width whatever the memory format
            logits = (logits + model(x.flip(-1)).float()) / 2
        out.append(logits)
    model.train(was_training)
    return torch.cat(out).cpu() if out else torch.zeros(0)  # one copy back: one sync per split


def evaluate_split(model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray, prep: Preprocess,
                   tc: TrainConfig, device: torch.device) -> tuple[torch.Tensor, float, float]:
    """(logits, loss, accuracy) of a split (``tc``: the run's train section)."""
    logits = predict_logits(model, images, prep, tc.eval_batch_size, device, flip=tc.eval_flip)
    y = torch.from_numpy(labels)
    return logits, float(task_loss(logits, y)), task_accuracy(logits, y)


def score_predictions(logits: np.ndarray, labels: np.ndarray, classes: list[str],
                 multilabel: bool) -> tuple[dict[str, Any], np.ndarray]:
    """The test metrics of a run's logits, and its predictions (class ids, or 0/1 per label)."""
    if multilabel:
        return multilabel_metrics(logits, labels, classes), (logits >= 0).astype(np.uint8)  # p >= 0.5
    return classification_metrics(logits, labels, classes), logits.argmax(1)
