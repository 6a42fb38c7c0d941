"""How training batches reach the device (data.on_device).

Two feeds, chosen per run by :func:`decide_placement`:

* :class:`DeviceFeed`: the training split lies whole on the device as uint8 and a batch is one
  gather there (no copy per step; the split must fit next to the model).
* :class:`HostFeed`: the split stays in host memory (the loader's array, not copied); each
  batch is gathered on the CPU into a pinned staging buffer and copied to the device on a side
  CUDA stream one batch ahead, so the copy overlaps the previous step's compute.

Both yield the same uint8 images and labels for the same indices, so a run gives the same
result either way (bit for bit on the CPU).
"""
from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, Union

import numpy as np
import torch

from ..errors import ConfigError
from .distributed import Dist

log = logging.getLogger(__name__)

# data.on_device=auto on CUDA: the data may take at most this share of the free GPU memory; the
# rest is left to the model, its optimizer state and the activations (a ViT-B at batch 128 takes
# several GB of its own)
MAX_DATA_SHARE = 0.5

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (indices, uint8 images, labels)


# --------------------------------------------------------------------------- the choice

@dataclass(frozen=True)
class Placement:
    """Where a run's data lives, and why (logged once and recorded in metrics.json)."""

    on_device: bool
    requested: Union[bool, str]  # data.on_device as configured
    reason: str
    data_bytes: int  # what would go to the device: the training split and, on rank 0, held-out images
    free_bytes: Optional[int]  # free GPU memory when decided (None on the CPU)

    def record(self) -> dict[str, Any]:
        """The ``data_placement`` entry of metrics.json."""
        return dataclasses.asdict(self)

    def describe(self) -> str:
        where = "on the device" if self.on_device else "in host memory (batches copied ahead of compute)"
        return f"training data {where}: {self.reason}"


def fmt_bytes(n: int) -> str:
    """Bytes for a log line."""
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


def fits_on_device(data_bytes: int, free_bytes: int) -> bool:
    """The rule of data.on_device=auto: the data takes at most MAX_DATA_SHARE of the free memory."""
    return data_bytes <= MAX_DATA_SHARE * free_bytes


def decide_placement(requested: Union[bool, str], device_type: str, data_bytes: int,
                     free_bytes: Optional[int]) -> Placement:
    """Where the data goes for data.on_device=``requested`` (True, False or "auto") on a device
    of ``device_type`` with ``free_bytes`` of free memory (needed for "auto" on CUDA only)."""
    if requested is True or requested is False:
        return Placement(requested, requested, f"data.on_device={str(requested).lower()} (forced), "
                                               f"{fmt_bytes(data_bytes)} of data", data_bytes, free_bytes)
    if requested != "auto":
        raise ConfigError(f"data.on_device: expected true, false or auto, got {requested!r}")
    if device_type != "cuda":
        return Placement(True, requested, f"{device_type}: host memory is the device", data_bytes, None)
    if free_bytes is None:
        raise ValueError("data.on_device=auto on CUDA needs the free device memory")
    fits = fits_on_device(data_bytes, free_bytes)
    rule = (f"{fmt_bytes(data_bytes)} of data {'<=' if fits else '>'} {MAX_DATA_SHARE:g} x "
            f"{fmt_bytes(free_bytes)} free")
    return Placement(fits, requested, f"auto: {rule}", data_bytes, free_bytes)


def placement_for(requested: Union[bool, str], device: torch.device, data_bytes: int, dist: Dist) -> Placement:
    """:func:`decide_placement` with this device's free memory; under DDP with "auto" the data
    goes to the devices only if it fits on every rank's (one feed for the whole run)."""
    free = None
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    placement = decide_placement(requested, device.type, data_bytes, free)
    if requested == "auto" and dist.active and device.type == "cuda":
        flag = torch.tensor([int(placement.on_device)], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        if placement.on_device and not flag.item():
            placement = Placement(False, requested, placement.reason + "; another rank's GPU has less room",
                                  data_bytes, free)
    if placement.on_device and free is not None and not fits_on_device(data_bytes, free):
        log.warning("data.on_device=true: %s of data against %s of free GPU memory; the run may run out "
                    "of memory (data.on_device=false keeps the data in host memory)", fmt_bytes(data_bytes),
                    fmt_bytes(free))
    return placement


# --------------------------------------------------------------------------- the feeds

def host_tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor over ``array``'s memory (no copy; a read-only memory map included)."""
    with warnings.catch_warnings():  # a read-only array: torch warns that writes are undefined; none happen
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


class DeviceFeed:
    """The training split whole on ``device`` (uint8); a batch is one gather there, with
    indices made on the device (see :func:`~cnnvit.training.augment.batch_indices`)."""

    on_device = True

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device):
        self.device = device
        self.images = host_tensor(images).to(device)
        self.labels = host_tensor(labels).to(device)

    @property
    def index_device(self) -> torch.device:
        """Where the batch indices should lie (a CPU index into a GPU tensor syncs every step)."""
        return self.device

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, order: Iterable[torch.Tensor]) -> Iterator[Batch]:
        """(indices, images, labels) of each index batch of ``order``."""
        for idx in order:
            yield idx, self.images[idx], self.labels[idx]


@dataclass
class _Slot:
    """One pinned staging buffer and the event of the copy last made from it."""

    images: Optional[torch.Tensor] = None
    labels: Optional[torch.Tensor] = None
    copied: Optional[torch.cuda.Event] = None


class HostFeed:
    """The training split in host memory (no copy of the loader's array). On CUDA each batch is
    gathered into one of two pinned buffers and copied asynchronously on a side stream while
    the previous batch computes; the compute stream waits for the copy's event only. Elsewhere
    (the CPU) a batch is a gather into a fresh tensor."""

    on_device = False

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device):
        self.device = device
        self.images = host_tensor(images)
        self.labels = host_tensor(labels)
        self._cuda = device.type == "cuda"
        self._stream = torch.cuda.Stream(device) if self._cuda else None
        self._slots = [_Slot(), _Slot()]  # batch k+1 is staged while batch k computes
        self._turn = 0

    @property
    def index_device(self) -> torch.device:
        """Batch indices stay on the CPU, where the images are gathered."""
        return torch.device("cpu")

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, order: Iterable[torch.Tensor]) -> Iterator[Batch]:
        """(indices, images on the device, labels on the device) of each index batch of
        ``order``, the next batch's copy started before this one is handed out."""
        staged = None
        for idx in order:
            ahead = self._stage(idx)
            if staged is not None:
                yield self._ready(staged)
            staged = ahead
        if staged is not None:
            yield self._ready(staged)

    def _stage(self, idx: torch.Tensor) -> tuple:
        """Gather batch ``idx`` on the CPU and (CUDA) start its copy to the device."""
        if not self._cuda:  # (a no-op move on the CPU)
            return (idx, self.images.index_select(0, idx).to(self.device),
                    self.labels.index_select(0, idx).to(self.device), None)
        slot = self._slots[self._turn]
        self._turn ^= 1
        if slot.copied is not None:
            slot.copied.synchronize()  # the buffer's previous copy (two batches back) has left it
        n = len(idx)
        if slot.images is None or len(slot.images) < n:
            slot.images = torch.empty((n, *self.images.shape[1:]), dtype=self.images.dtype, pin_memory=True)
            slot.labels = torch.empty((n, *self.labels.shape[1:]), dtype=self.labels.dtype, pin_memory=True)
        images, labels = slot.images[:n], slot.labels[:n]
        torch.index_select(self.images, 0, idx, out=images)
        torch.index_select(self.labels, 0, idx, out=labels)
        with torch.cuda.stream(self._stream):
            x = images.to(self.device, non_blocking=True)
            y = labels.to(self.device, non_blocking=True)
            slot.copied = torch.cuda.Event()
            slot.copied.record(self._stream)
        return idx, x, y, slot.copied

    def _ready(self, staged: tuple) -> Batch:
        """A staged batch, safe to use on the current stream."""
        idx, x, y, copied = staged
        if copied is not None:
            compute = torch.cuda.current_stream(self.device)
            compute.wait_event(copied)  # the GPU waits, not the host
            # memory made on the side stream is not reused before the compute stream is done with it
            x.record_stream(compute)
            y.record_stream(compute)
        return idx, x, y


Feed = Union[DeviceFeed, HostFeed]


def make_feed(images: np.ndarray, labels: np.ndarray, device: torch.device, on_device: bool) -> Feed:
    """The feed of a training split: :class:`DeviceFeed` or :class:`HostFeed`."""
    return (DeviceFeed if on_device else HostFeed)(images, labels, device)
