"""Where a run computes: the torch device of a ``device`` config value, the checks made before any
work, and the mixed-precision context of the forward passes."""
from __future__ import annotations

import contextlib
import os
import platform
from typing import Optional

import torch

from ..config import Config
from ..errors import ConfigError


def resolve_device(name: str, local_rank: Optional[int] = None) -> torch.device:
    """The torch device for a ``device`` config value; under torchrun (``local_rank`` given) a
    CUDA run takes the GPU of its local rank."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available on this machine")
    if name.startswith("cuda") and local_rank is not None:
        return torch.device("cuda", local_rank)
    return torch.device(name)


def check_device(cfg: Config) -> torch.device:
    """The device of a run, checked before any work: CUDA present if asked for, and as many GPUs
    as ``train.nproc`` processes on CUDA."""
    device = resolve_device(cfg.device)
    if cfg.train.nproc > 1 and device.type == "cuda" and torch.cuda.device_count() < cfg.train.nproc:
        raise ConfigError(f"train.nproc={cfg.train.nproc} needs {cfg.train.nproc} GPUs; this machine "
                          f"has {torch.cuda.device_count()}")
    return device


def device_description(device: torch.device) -> str:
    """The GPU's name, or the CPU's kind and core count (recorded in metrics.json)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def configure_backends(device: torch.device) -> None:
    """On CUDA: cuDNN picks the fastest convolution for each input shape (the shapes of a run are
    fixed), and float32 matmuls and convolutions use TF32 (with train.amp=false, and in
    evaluation, which runs in float32). Nothing changes on the CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")  # TF32
        torch.backends.cudnn.allow_tf32 = True


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on CUDA when ``enabled`` (train.amp); a no-op context otherwise."""
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
