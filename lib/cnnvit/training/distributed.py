"""Multi-GPU training through torchrun: the same ``python -m cnnvit train`` runs in every process.

``train.nproc: N`` in a config makes :func:`cnnvit.training.train` start
``torchrun --standalone --nproc_per_node N -m cnnvit train ...`` as a subprocess (so a notebook
cell or ``cnnvit study`` can ask for several GPUs). With ``train.nnodes: M > 1`` the same command,
run on each of the M machines, starts ``torchrun --nnodes M --nproc_per_node N --rdzv_backend c10d
--rdzv_endpoint HOST:PORT --rdzv_id ID ...`` instead: the machines meet at ``train.rdzv_endpoint``
and form one job of M x N processes. Started by hand under torchrun, the trainer reads its rank
from the environment instead. Every rank holds the data set and takes its own shard of each
global batch (``train.batch_size`` is the global batch); DistributedDataParallel averages the
gradients; only rank 0 writes the run folder.
"""
from __future__ import annotations

import hashlib
import json
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
from ..errors import ConfigError, DistributedRunError
from .identity import RunStatus, identity_of

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
    local_world_size: int = 1  # the processes on this machine
    torchrun: bool = False  # started by torchrun (even as a job of one process)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def nnodes(self) -> int:
        """The machines in the job (torchrun starts the same number of processes on each)."""
        return max(1, self.world_size // max(1, self.local_world_size))


def from_env() -> Dist:
    """The process's place from torchrun's environment variables."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    return Dist(int(os.environ.get("RANK", 0)), world, int(os.environ.get("LOCAL_RANK", 0)),
                int(os.environ.get("LOCAL_WORLD_SIZE", world)), "LOCAL_WORLD_SIZE" in os.environ)


def record_world(cfg: Config, dist: Dist) -> Config:
    """``cfg`` with the ``train.nproc`` and ``train.nnodes`` torchrun really started (a process
    started by hand under torchrun, by a config that leaves them at 1), so that the saved config
    says what ran. A config naming other values than torchrun's raises :class:`ConfigError`."""
    tc = cfg.train
    if (tc.nproc, tc.nnodes) == (dist.local_world_size, dist.nnodes):
        return cfg
    for key, said, real in (("nproc", tc.nproc, dist.local_world_size), ("nnodes", tc.nnodes, dist.nnodes)):
        if said not in (1, real):
            raise ConfigError(f"train.nproc={tc.nproc} and train.nnodes={tc.nnodes}, but torchrun started "
                              f"{dist.local_world_size} processes on each of {dist.nnodes} machines "
                              f"(--nproc_per_node {dist.local_world_size} --nnodes {dist.nnodes}); "
                              f"train.{key} differs: {said} against {real}")
    cfg = config_mod.from_dict(cfg.to_dict())
    cfg.train.nproc, cfg.train.nnodes = dist.local_world_size, dist.nnodes
    if cfg.train.nnodes > 1 and cfg.train.rdzv_endpoint is None:
        # torchrun does not tell its workers the rendezvous endpoint; the address of the store the
        # job met at stands in for it, so that the saved config stays valid (the key is exempt
        # from the run's identity)
        host, port = os.environ.get("MASTER_ADDR", "localhost"), os.environ.get("MASTER_PORT", "29400")
        cfg.train.rdzv_endpoint = f"{host}:{port}"
    return cfg


def default_rdzv_id(cfg: Config) -> str:
    """The rendezvous id when ``train.rdzv_id`` is unset: a short hash of the config keys that
    make the run what it is (:func:`~.identity.identity_of`: not ``data.root`` and the like), so
    that every machine derives the same id from its own copy of the config, without the run
    folder's name (which may differ between machines)."""
    digest = hashlib.sha256(json.dumps(identity_of(cfg.to_dict()), sort_keys=True, default=str).encode())
    return f"cnnvit-{digest.hexdigest()[:12]}"


def rdzv_id(cfg: Config) -> str:
    """The job's name at the rendezvous: ``train.rdzv_id``, else :func:`default_rdzv_id`."""
    return cfg.train.rdzv_id or default_rdzv_id(cfg)


def torchrun_args(cfg: Config, config_file: str | Path, out: Path, progress: bool) -> list[str]:
    """The torchrun command line (after ``python``) that runs ``config_file`` into ``out``: one
    machine's ``--standalone`` job, or, with ``train.nnodes > 1``, this machine's share of a job
    whose machines meet at ``train.rdzv_endpoint`` (c10d rendezvous)."""
    tc = cfg.train
    if tc.nnodes > 1:
        where = [f"--nnodes={tc.nnodes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={tc.rdzv_endpoint}",
                 f"--rdzv_id={rdzv_id(cfg)}"]
    else:
        where = ["--standalone"]
    return ["-m", "torch.distributed.run", *where, f"--nproc_per_node={tc.nproc}", "-m", "cnnvit",
            *([] if progress else ["-q"]), "train", str(config_file), "--out", str(out)]


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


def agreed_state(states: list[str], out: Path) -> RunStatus:
    """The run state every rank acts on, from what each found in its own ``--out`` (``states[r]``:
    'new', 'partial' or 'complete'). Ranks that share rank 0's folder find what it finds; on
    other machines with folders of their own, which rank 0 never writes to, they find nothing
    ('new'), or the run itself where an earlier job had rank 0 there. A run complete in any
    folder is complete (each rank checked that its folder's run has this config); else rank 0's
    state holds, but a resume needs the checkpoint on every rank, since each loads it itself.
    Raises :class:`DistributedRunError` when the ranks cannot start from one state."""
    if RunStatus.COMPLETE in states:
        return RunStatus.COMPLETE
    lead = RunStatus(states[0])
    for rank, state in enumerate(states):
        if (state == RunStatus.PARTIAL) != (lead == RunStatus.PARTIAL):
            resuming, lacking = (0, rank) if lead == RunStatus.PARTIAL else (rank, 0)
            raise DistributedRunError(
                f"rank {resuming} would resume from the checkpoint in its {out}, but rank {lacking} "
                f"finds none in its own {out}: resuming a run on several machines needs the run "
                f"folder shared between them (or a copy of the folder holding the checkpoint at "
                f"the same --out on every machine)")
    return lead


def agree_on_state(state: RunStatus, out: Path, dist: Dist) -> RunStatus:
    """:func:`agreed_state` of every rank's ``state``, on every rank."""
    if not dist.active:
        return state
    states: list[Any] = [None] * dist.world_size
    torch.distributed.all_gather_object(states, state)
    return agreed_state(states, out)


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


LAUNCHED = "CNNVIT_LAUNCHED"  # set in the environment of workers that launch() started


def _child_env(nproc: int) -> dict[str, str]:
    # LAUNCHED: the launching process prints the run's result line; its workers do not repeat it
    env = {**os.environ, "PYTHONUNBUFFERED": "1", LAUNCHED: "1"}
    # share the cores out (torchrun would otherwise set 1 thread each and print a banner)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def launch(cfg: Config, out: Path, name: str, progress: bool) -> Path:
    """Run one training run in ``cfg.train.nproc`` processes through torchrun (this machine's
    share of ``cfg.train.nnodes`` machines); stream its output (rank 0's log and progress, when
    rank 0 runs here) and return ``out``. Raises :class:`DistributedRunError`."""
    out.parent.mkdir(parents=True, exist_ok=True)  # (the launch file's folder; rank 0 makes out)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{name}-", dir=out.parent,
                                     delete=False) as f:
        f.write(config_mod.dump(cfg))
    cmd = [sys.executable, *torchrun_args(cfg, f.name, out, progress)]
    tc = cfg.train
    log.info("%s: launching %d processes%s: %s", name, tc.nproc,
             f" on this machine, one of {tc.nnodes} meeting at {tc.rdzv_endpoint}" if tc.nnodes > 1 else "",
             " ".join(cmd))
    tail: deque[str] = deque(maxlen=20)
    errors: list[str] = []  # the workers' own error lines: torchrun's summary hides them
    unmet = False  # torchrun gave up waiting for the other machines
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=_child_env(cfg.train.nproc)) as proc:
            try:
                for line in proc.stdout:
                    tail.append(line.rstrip())
                    if ERROR_LINE.match(line) and line.rstrip() not in errors:
                        errors.append(line.rstrip())
                    unmet = unmet or "RendezvousTimeoutError" in line
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
    if rc != 0 and unmet:
        raise DistributedRunError(
            f"{name}: the {tc.nnodes} machines did not all meet at {tc.rdzv_endpoint} (rendezvous id "
            f"{rdzv_id(cfg)}) before torchrun's timeout: start the same command, "
            f"with the same config, on every machine (the default id is a hash of the config), and "
            f"check that they all reach that host and port")
    if rc != 0:
        shown = errors[:10] or list(tail)
        where = f" (on this machine, of {tc.nnodes})" if tc.nnodes > 1 else ""
        raise DistributedRunError(f"{name}: torchrun with {tc.nproc} processes{where} exited with "
                                  f"status {rc}; " + ("the workers reported:\n" if errors else
                                                      "its last lines:\n") + "\n".join(shown))
    if not (out / "metrics.json").exists():
        if tc.nnodes > 1:  # rank 0 ran on another machine, into its own --out unless shared
            log.info("%s: finished; rank 0 ran on another machine (or another machine held the "
                     "complete run): the run lies in that machine's --out, not in %s here", name, out)
            return out
        raise DistributedRunError(f"{name}: torchrun finished but wrote no {out / 'metrics.json'}")
    return out
