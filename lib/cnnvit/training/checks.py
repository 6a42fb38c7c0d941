"""Checks that fail a run fast, before long work: what the config alone tells, then what the data
and the device tell."""
from __future__ import annotations

import logging
from typing import Optional

import torch

from ..config import Config
from ..errors import ConfigError
from ..datasets import get_dataset
from ..models import (activation_bytes, check_model_config, count_parameters, create_model, is_fixed_size,
                      native_size)
from .tracking import check_tracking

log = logging.getLogger(__name__)


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


def check_steps_happen(cfg: Config, n_train: int) -> None:
    """At least one optimizer step per epoch: one global batch of every micro-batch of a step."""
    per_step = cfg.train.batch_size * cfg.train.grad_accum
    if per_step > n_train:
        raise ConfigError(f"train.batch_size x train.grad_accum = {per_step} exceeds the {n_train} "
                          f"training images: no optimizer step would happen")


def check_memory(cfg: Config, device: torch.device, available: Optional[int] = None) -> None:
    """Refuse, before any data are read, a batch whose activations alone clearly cannot fit in
    the device's memory (e.g. data.image_size=4096 on a CNN, which would otherwise fail with an
    allocator traceback after minutes of decoding): the lower bound of :func:`activation_bytes`
    for one process's batch, plus weights, gradients and two optimizer moments, against the
    memory free now (``available``: that figure, for tests)."""
    size = cfg.data.image_size or get_dataset(cfg.data.name).image_side(cfg.data)
    if not size:
        return
    try:
        with torch.device("meta"):
            model = create_model(cfg.model.name, num_classes=10)
    except Exception as exc:  # a model that cannot be built on meta tensors has no estimate
        log.debug("no memory estimate for %s: %s", cfg.model.name, exc)
        return
    per_image = activation_bytes(model, size)
    if per_image is None:
        return
    batch = max(1, cfg.train.batch_size // (cfg.train.nproc * cfg.train.nnodes))
    need = per_image * batch + 16 * count_parameters(model)
    free = available if available is not None else free_memory(device)
    log.debug("%s at %d px, batch %d: at least %.2f GiB (%.2f GiB free)", cfg.model.name, size, batch,
              need / 2**30, (free or 0) / 2**30)
    if free is not None and need > free:
        raise ConfigError(f"{cfg.model.name} at {size} px with a batch of {batch} needs at least "
                          f"{need / 2**30:.1f} GiB of {device.type} memory for its activations and "
                          f"weights, and {free / 2**30:.1f} GiB are free: lower train.batch_size or "
                          f"data.image_size")


def free_memory(device: torch.device) -> Optional[int]:
    """Bytes of memory free on ``device`` now: the GPU's free memory, or the host's available
    memory (MemAvailable); None where it cannot be read."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, RuntimeError, ValueError):
        pass
    return None
