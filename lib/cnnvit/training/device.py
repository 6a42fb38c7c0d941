"""Where a run computes: the torch device of a ``device`` config value, the checks made before any
work, and how the training steps compute (:class:`Compute`: bf16 autocast or fp32, memory
format, torch.compile), chosen once per run and recorded in its metrics.json."""
from __future__ import annotations

import contextlib
import functools
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..config import SYNC_BN_NEEDS_CUDA, Config
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
    """The device of a run, checked before any work: CUDA present if asked for, as many GPUs
    as ``train.nproc`` processes on CUDA, and CUDA for ``train.sync_bn`` (the config's own rule,
    applied to the device that device=auto resolves to here)."""
    device = resolve_device(cfg.device)
    if cfg.train.sync_bn and device.type != "cuda":
        raise ConfigError(f"{SYNC_BN_NEEDS_CUDA} (this run is on {device})")
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


# CPU flags (Linux /proc/cpuinfo) of native bf16 arithmetic: x86's AVX-512 BF16 and AMX, Arm's BF16
CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


@functools.lru_cache(maxsize=None)
def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bf16 natively (its flags name AVX-512 BF16, AMX or Arm's BF16).
    Without native support bf16 is emulated and slower than fp32; where the flags cannot be
    read (not Linux), False."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and CPU_BF16_FLAGS & set(value.split()):
            return True
    return False


@dataclass(frozen=True)
class Compute:
    """How a run's training steps compute (evaluation runs in fp32 whatever this says):
    ``autocast`` "bf16" or "fp32", the memory format, torch.compile, the CPU threads, and why
    the precision is what it is. Recorded as ``compute`` in metrics.json."""

    autocast: str
    channels_last: bool
    compiled: bool
    threads: int
    why: str

    @property
    def bf16(self) -> bool:
        return self.autocast == "bf16"

    def record(self) -> dict[str, Any]:
        return asdict(self)


def choose_precision(amp: Union[bool, str], device: torch.device, model_gains: bool) -> tuple[str, str]:
    """The autocast of train.amp on ``device`` and why: "auto" takes bf16 on CUDA, and on a CPU
    with native bf16 for a model that trains faster in it (``model_gains``: the registry's
    ``cpu_bf16``, measured); true takes bf16 wherever the device computes it natively; false fp32."""
    if amp is False:
        return "fp32", "train.amp=false"
    if device.type == "cuda":
        return "bf16", f"train.amp={amp} on CUDA"
    if device.type != "cpu":
        return "fp32", f"no bf16 autocast on {device.type}"
    if not cpu_has_bf16():
        return "fp32", "this CPU has no native bf16 (AVX-512 BF16, AMX or Arm BF16): emulated bf16 is slower"
    if amp == "auto" and not model_gains:
        return "fp32", "train.amp=auto: this model trains slower in bf16 on the CPU (measured; cpu_bf16=False)"
    return "bf16", f"train.amp={amp}: the CPU has native bf16"


def compute_for(cfg: Config, device: torch.device, model_gains: bool) -> Compute:
    """The :class:`Compute` of a run on ``device`` (train.amp, train.channels_last, train.compile)."""
    autocast_, why = choose_precision(cfg.train.amp, device, model_gains)
    threads = torch.get_num_threads() if device.type == "cpu" else 0
    return Compute(autocast_, cfg.train.channels_last, cfg.train.compile, threads, why)


def autocast(device: torch.device, bf16: bool):
    """bfloat16 autocast on ``device`` when ``bf16`` (see :func:`choose_precision`); a no-op
    context otherwise."""
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
