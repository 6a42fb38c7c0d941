"""Multi-GPU training through torchrun: the same ``python -m cnnvit train`` runs in every process.

``train.nproc: N`` in a config makes :func:`cnnvit.training.train` start
``torchrun --standalone --nproc_per_node N -m cnnvit train ...`` as a subprocess (so a notebook
cell or ``cnnvit study`` can ask for several GPUs); started by hand under torchrun, the trainer
reads its rank from the environment instead. Every rank holds the data set and takes its own
shard of each global batch (``train.batch_size`` is the global batch); DistributedDataParallel
averages the gradients; only rank 0 writes the run folder.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import config as config_mod
from ..config import Config
from ..errors import DistributedRunError

log = logging.getLogger(__name__)


# what a worker prints when it fails: our CLI's "error: ..." line, or a traceback's last line
# (torchrun may prefix a worker's lines with its rank; its own ChildFailedError summary is left out)
ERROR_LINE = re.compile(r"^(\[rank\d+\]:\s*)?(error: |(?![\w.]*ChildFailedError)"
                        r"[\w.]*(Error|Exception|Diverged|Conflict)\b[:(])")


@dataclass(frozen=True)
class Dist:
    """Where this process sits in a torchrun job (rank 0 of 1 outside one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def from_env() -> Dist:
    """The process's place from torchrun's environment variables."""
    return Dist(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                int(os.environ.get("LOCAL_RANK", 0)))


def init(dist: Dist, device: torch.device) -> None:
    """Join the process group (NCCL on GPUs, gloo on the CPU); idempotent."""
    if dist.active and not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")


def barrier(dist: Dist) -> None:
    if dist.active:
        torch.distributed.barrier()


def mean_across_ranks(values: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Average a tensor over all ranks (every rank gets the result)."""
    if dist.active:
        values = values.clone()
        torch.distributed.all_reduce(values)
        values /= dist.world_size
    return values


def agree(flag: bool, dist: Dist) -> bool:
    """Rank 0's value of ``flag`` on every rank (a decision only rank 0 can make)."""
    if not dist.active:
        return flag
    t = torch.tensor([int(flag)], device="cuda" if torch.distributed.get_backend() == "nccl" else "cpu")
    torch.distributed.broadcast(t, src=0)
    return bool(t.item())


def shard_check(local_indices: list[torch.Tensor], expected: int, dist: Dist) -> dict[str, Any]:
    """Gather the sample indices every rank trained on in one epoch and check that the shards
    are disjoint and cover what the epoch should cover (``expected`` samples)."""
    mine = torch.cat(local_indices).cpu() if local_indices else torch.zeros(0, dtype=torch.long)
    gathered: list[Any] = [None] * dist.world_size
    torch.distributed.all_gather_object(gathered, mine.tolist())
    counts = [len(g) for g in gathered]
    distinct = len(set().union(*map(set, gathered)))
    return {"per_rank": counts, "distinct": distinct, "expected": expected,
            "disjoint": distinct == sum(counts), "complete": distinct == expected}


def _child_env(nproc: int) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # share the cores out (torchrun would otherwise set 1 thread each and print a banner)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def launch(cfg: Config, out: Path, name: str, progress: bool) -> Path:
    """Run one training run in ``cfg.train.nproc`` processes through torchrun; stream its output
    (rank 0's log and progress) and return ``out``. Raises :class:`DistributedRunError`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{name}-", dir=out.parent,
                                     delete=False) as f:
        f.write(config_mod.dump(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={cfg.train.nproc}", "-m", "cnnvit", *([] if progress else ["-q"]),
           "train", f.name, "--out", str(out)]
    log.info("%s: launching %d processes: %s", name, cfg.train.nproc, " ".join(cmd))
    tail: deque[str] = deque(maxlen=20)
    errors: list[str] = []  # the workers' own error lines: torchrun's summary hides them
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=_child_env(cfg.train.nproc)) as proc:
            try:
                for line in proc.stdout:
                    tail.append(line.rstrip())
                    if ERROR_LINE.match(line) and line.rstrip() not in errors:
                        errors.append(line.rstrip())
                    sys.stderr.write(line)
                rc = proc.wait()
            except BaseException:  # an interrupted notebook cell or Ctrl-C: stop the workers too
                proc.terminate()  # torchrun passes SIGTERM on to its workers
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise
    finally:
        os.unlink(f.name)
    if rc != 0:
        shown = errors[:10] or list(tail)
        raise DistributedRunError(f"{name}: torchrun with {cfg.train.nproc} processes exited with "
                                  f"status {rc}; " + ("the workers reported:\n" if errors else
                                                      "its last lines:\n") + "\n".join(shown))
    if not (out / "metrics.json").exists():
        raise DistributedRunError(f"{name}: torchrun finished but wrote no {out / 'metrics.json'}")
    return out
