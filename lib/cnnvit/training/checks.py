"""Checks that fail a run fast, before long work: what the config alone tells, then what the data
and the device tell."""
from __future__ import annotations

import torch

from ..config import Config
from ..errors import ConfigError
from ..datasets import get_dataset
from ..models import check_model_config, is_fixed_size, native_size
from .tracking import check_tracking


def check_run_inputs(cfg: Config) -> None:
    """Everything that can be checked before data are read: fail fast, before long work."""
    native = get_dataset(cfg.data.name).image_side(cfg.data)
    size = cfg.data.image_size or native
    check_model_config(cfg.model, size)  # name, options, input size, published weights
    if size is None and is_fixed_size(cfg.model.name):  # a data set of any image size (CelebA)
        raise ConfigError(f"model {cfg.model.name} takes {native_size(cfg.model.name)} px inputs: set "
                          f"data.image_size={native_size(cfg.model.name)} for {cfg.data.name}")
    world = cfg.train.nproc * cfg.train.nnodes
    if (cfg.train.mixup or cfg.train.cutmix) and (cfg.train.batch_size // world) % 2:
        raise ConfigError("the batch of each process (train.batch_size / (train.nproc x train.nnodes)) "
                          "must be even when mixup or cutmix is on")
    check_tracking(cfg.train.tensorboard, cfg.train.wandb)


def check_sync_bn(cfg: Config, device: torch.device) -> None:
    """SyncBatchNorm exists on CUDA only."""
    if cfg.train.sync_bn and device.type != "cuda":
        raise ConfigError(f"train.sync_bn: SyncBatchNorm runs on CUDA only, and this run is on {device}")


def check_steps_happen(cfg: Config, n_train: int) -> None:
    """At least one optimizer step per epoch: one global batch of every micro-batch of a step."""
    per_step = cfg.train.batch_size * cfg.train.grad_accum
    if per_step > n_train:
        raise ConfigError(f"train.batch_size x train.grad_accum = {per_step} exceeds the {n_train} "
                          f"training images: no optimizer step would happen")
