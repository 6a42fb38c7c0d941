"""Everything a run builds before its first step: the data where data.on_device puts it, the
model (weights, freeze policy, memory format, SyncBatchNorm), the optimizer, the loss, the
weight average, and the DistributedDataParallel and torch.compile wrappers."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch

from ..config import Config
from ..datasets import Dataset
from ..errors import ConfigError
from ..models import create_model, set_memory_format, use_explicit_attention
from ..models.weights import layer_decay_groups, prepare_model
from ..records import WeightsOrigin
from .augment import Preprocess
from .device import Compute
from .distributed import Dist
from .feed import Feed, Placement, host_tensor, make_feed, placement_for
from .losses import Objective, class_weights

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Splits:
    """The data set's splits where they are used (see :mod:`.feed`): the training split behind
    its feed (whole on the device, or in host memory with batches copied ahead of compute), the
    held-out images on rank 0's device when the data goes to the device (else in host memory:
    evaluation copies each batch), labels of the held-out splits as NumPy arrays; the
    preprocessing of every batch, and where the data went and why."""

    train: Feed
    test_x: torch.Tensor
    test_y: np.ndarray
    val_x: torch.Tensor
    val_y: np.ndarray
    prep: Preprocess
    placement: Placement

    @property
    def has_val(self) -> bool:
        return len(self.val_y) > 0


def data_bytes(ds: Dataset, main: bool) -> int:
    """Bytes that go to the device with the data on it: the training split on every rank, the
    held-out images on rank 0 (only rank 0 evaluates)."""
    n = ds.train_images.nbytes + ds.train_labels.nbytes
    return int(n + (ds.test_images.nbytes + ds.val_images.nbytes if main else 0))


def place_data(ds: Dataset, cfg: Config, device: torch.device, dist: Dist, compute: Compute) -> Splits:
    """Put the splits where data.on_device says (see :class:`Splits`)."""
    placement = placement_for(cfg.data.on_device, device, data_bytes(ds, dist.main), dist)
    held_out = device if dist.main and placement.on_device else "cpu"
    train = make_feed(ds.train_images, ds.train_labels, device, placement.on_device)
    test_x = host_tensor(ds.test_images).to(held_out)
    val_x = host_tensor(ds.val_images).to(held_out)
    prep = Preprocess.from_config(cfg.data, ds.mean, ds.std, compute.channels_last)
    return Splits(train, test_x, ds.test_labels, val_x, ds.val_labels, prep, placement)


def build_model(cfg: Config, num_classes: int, device: torch.device, dist: Dist,
                compute: Compute) -> tuple[torch.nn.Module, WeightsOrigin]:
    """The model on ``device``, and where its weights came from (what ``prepare_model`` says):
    created (pretrained from the hub when asked), then a checkpoint and the freeze policy applied,
    in the memory format and with the attention kernel ``compute`` calls for."""
    model = create_model(cfg.model.name, num_classes, drop_path=cfg.model.drop_path,
                         pretrained=cfg.model.pretrained and not cfg.model.pretrained_path)
    model, weights = prepare_model(model, cfg.model)  # a checkpoint, then the freeze policy
    model = set_memory_format(model.to(device), compute.channels_last)
    if compute.bf16 and device.type == "cpu":
        use_explicit_attention(model)
    if dist.active and cfg.train.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, weights


def make_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimizer of ``cfg.optim`` over the model's trainable parameters."""
    # weight decay on weights only: decaying norms and biases hurts and is not what recipes mean;
    # a model's own no_weight_decay() (timm's convention: cls token, position table) is honoured
    # (frozen parameters are left out; each group's lr_scale multiplies the scheduled rate)
    if cfg.model.layer_decay:
        groups = layer_decay_groups(model, cfg.optim.weight_decay, cfg.model.layer_decay)
    else:
        skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        decay = [p for n, p in params if p.ndim > 1 and n not in skip]
        no_decay = [p for n, p in params if p.ndim <= 1 or n in skip]
        groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
    o = cfg.optim
    # one fused kernel over all parameters instead of a Python loop over them (torch's default on
    # the CPU): measured 2-4x faster steps, 1-3 ms per step for the laptop models
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, fused=fused)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused)
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused)
    raise ConfigError(f"optim.name: unknown optimizer {o.name!r}")


def make_objective(cfg: Config, ds: Dataset, device: torch.device, name: str) -> Objective:
    """The training loss: class weights (train.class_weights), label smoothing, mixup/cutmix."""
    tc = cfg.train
    objective = Objective(label_smoothing=tc.label_smoothing)
    if tc.class_weights:
        objective.weight = torch.tensor(class_weights(ds.train_labels, len(ds.classes)), dtype=torch.float32,
                                        device=device)
        log.info("%s: %s weights %s", name, "positive" if ds.multilabel else "class",
                 ", ".join(f"{w:.2f}" for w in objective.weight.tolist()))
    if tc.mixup or tc.cutmix:
        from timm.data import Mixup
        from timm.loss import SoftTargetCrossEntropy

        objective.soft_ce = SoftTargetCrossEntropy()
        objective.mixer = Mixup(mixup_alpha=tc.mixup, cutmix_alpha=tc.cutmix,
                                label_smoothing=tc.label_smoothing, num_classes=len(ds.classes))
    return objective


def sample_weights(cfg: Config, ds: Dataset, name: str) -> Optional[torch.Tensor]:
    """train.balanced_sampling: each image's draw probability, 1 / (C x its class's count)."""
    if not cfg.train.balanced_sampling:
        return None
    counts = np.bincount(ds.train_labels, minlength=len(ds.classes))
    log.info("%s: balanced sampling over class counts %s", name, counts.tolist())
    return torch.from_numpy(1.0 / counts[ds.train_labels])


def make_ema(model: torch.nn.Module, decay: Optional[float]) -> Optional[Any]:
    """timm's weight average of the model (train.model_ema), or None; it is what gets evaluated
    and saved."""
    if not decay:
        return None
    from timm.utils import ModelEmaV3

    return ModelEmaV3(model, decay=decay)


@dataclass(frozen=True)
class Modules:
    """What trains and what is evaluated: ``forward`` is the model as the training step calls it
    (wrapped by DDP and torch.compile as configured), ``eval_model`` what evaluations call."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    ema: Optional[Any]
    ddp: Optional[torch.nn.parallel.DistributedDataParallel]
    forward: Callable
    eval_model: torch.nn.Module

    @property
    def result(self) -> torch.nn.Module:
        """The module whose weights are the run's result (the average, with train.model_ema)."""
        return self.ema.module if self.ema is not None else self.model


def wrap(model: torch.nn.Module, opt: torch.optim.Optimizer, ema: Optional[Any], cfg: Config,
         device: torch.device, dist: Dist, dist_info: dict[str, Any], balanced: bool) -> Modules:
    """DDP (several processes) and torch.compile (train.compile) around the model, after any
    checkpoint is loaded (DDP broadcasts rank 0's weights to the others); ``dist_info`` records
    the distributed setting."""
    ddp = None
    if dist.active:
        on_cuda = device.type == "cuda"
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)
        dist_info.setdefault("world_size", dist.world_size)
        dist_info.setdefault("backend", torch.distributed.get_backend())
        dist_info.setdefault("sync_bn", cfg.train.sync_bn)
        if balanced:
            dist_info.setdefault("sampling", "class-balanced, with replacement (no shard check)")
    forward = torch.compile(ddp or model) if cfg.train.compile else (ddp or model)
    eval_model = forward if ddp is None else model  # rank 0 alone evaluates: no collective inside
    if ema is not None:
        eval_model = ema.module
    return Modules(model, opt, ema, ddp, forward, eval_model)
