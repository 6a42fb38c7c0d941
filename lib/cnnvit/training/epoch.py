"""One epoch of a run: its step loop (micro-batches, gradient accumulation, optimizer steps,
validation within the epoch, the loss check), then the epoch's evaluation, early stopping and
checkpoint.

Randomness is reseeded at every epoch from (seed, epoch), so a run resumed from the checkpoint of
epoch k replays epochs k+1.. exactly as the uninterrupted run would (bit for bit on the CPU).
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm import tqdm

from ..config import Config
from ..errors import TrainingDiverged
from . import distributed, evaluate, files
from .augment import batch_indices, make_generator, seed_everything
from .device import Compute, autocast
from .distributed import Dist
from .identity import CHECKPOINT
from .losses import Objective
from .schedules import Schedule
from .setup import Modules, Splits
from .state import RunState
from .tracking import Tracker

log = logging.getLogger(__name__)

NAN_CHECK_EVERY = 50  # optimizer steps between loss checks (each check syncs the GPU)


@dataclass(frozen=True)
class Trainer:
    """What the epochs of one run read and never change."""

    cfg: Config
    name: str
    out: Path
    device: torch.device
    dist: Dist
    compute: Compute  # bf16 or fp32, memory format, compiled
    modules: Modules
    splits: Splits
    objective: Objective
    schedule: Schedule
    sample_weights: Optional[torch.Tensor]  # train.balanced_sampling: each image's draw weight
    aug_seed: int
    tracker: Tracker
    progress: bool

    @property
    def checkpoint(self) -> Path:
        return self.out / CHECKPOINT


@dataclass
class EpochStats:
    """What the step loop of one epoch measured."""

    losses: list[float]  # per optimizer step, averaged over the ranks
    images: int  # training images seen by each rank's share of the global batches
    seconds: float  # training time, validations within the epoch left out
    lr: float  # the last step's learning rate


@dataclass
class _Pending:
    """Results of steps not yet fetched from the device (each fetch syncs the GPU)."""

    losses: list[torch.Tensor] = field(default_factory=list)  # one per micro-batch
    norms: list[torch.Tensor] = field(default_factory=list)  # gradient norm per optimizer step
    lrs: list[float] = field(default_factory=list)  # learning rate per optimizer step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # queued GPU work counts where it was queued
        torch.cuda.synchronize(device)


def train_epoch(t: Trainer, state: RunState, epoch: int) -> EpochStats:
    """Train epoch ``epoch`` (0-based): its reseeded data order and augmentation, the
    optimizer steps, the steps' logs in ``state``; with train.stop_on_nan=false a non-finite
    loss ends the epoch and is recorded in ``state.diverged``."""
    tc, dist = t.cfg.train, t.dist
    # each rank its own augmentation stream; with one process the same seeds as ever
    stream = (t.aug_seed * 1000 + epoch) * dist.world_size + dist.rank
    seed_everything(stream)  # policies, erasing, mixup, dropout
    gen = make_generator(stream, t.device)
    local_batch = tc.batch_size // dist.world_size  # train.batch_size is the global batch
    feed = t.splits.train  # on the device, or from host memory one batch ahead (data.on_device)
    order = batch_indices(len(feed), local_batch, True, t.cfg.seed * 1000 + epoch, True,
                          dist.rank, dist.world_size, weights=t.sample_weights, device=feed.index_device)
    n_micro = t.schedule.steps_per_epoch * tc.grad_accum  # drop_last: equal batches
    # this rank's samples, for the shard check (weighted draws repeat images by design: no check)
    check_shards = dist.active and not state.dist_info.get("shard_check") and t.sample_weights is None
    seen: list[torch.Tensor] = []
    pending, losses, done, val_time, lr = _Pending(), [], 0, 0.0, math.nan
    _sync(t.device)
    t_epoch = time.time()
    interactive = sys.stderr.isatty()
    with tqdm(total=t.schedule.steps_per_epoch, desc=f"{t.name} {epoch + 1}/{tc.epochs}", file=sys.stderr,
              disable=not t.progress, mininterval=0.5 if interactive else 15, ncols=100,
              ascii=not interactive) as bar:
        for micro, (idx, images, labels) in enumerate(feed.batches(itertools.islice(order, n_micro))):
            done = micro + 1
            if check_shards:
                seen.append(idx)
            x = t.splits.prep.train(images, gen)
            accumulate = (micro + 1) % tc.grad_accum != 0
            pending.losses.append(_forward_backward(t, x, labels, accumulate))
            if accumulate:
                continue
            lr, norm = _optimizer_step(t, state.step)
            pending.norms.append(norm)
            pending.lrs.append(lr)
            state.step += 1
            bar.update(1)
            if tc.val_every_steps and state.step % tc.val_every_steps == 0 and dist.main:
                val_time += _validate(t, state, epoch)
            if state.step % NAN_CHECK_EVERY == 0 or micro + 1 == n_micro:
                values = _log_steps(t, state, epoch, pending)
                losses += values
                check_losses(values, t, state, epoch)
                if state.diverged is not None:
                    break
                bar.set_postfix(loss=f"{values[-1]:.3f}", lr=f"{lr:.2e}", refresh=False)
    _sync(t.device)
    seconds = time.time() - t_epoch - val_time
    state.train_time += seconds
    if seen:
        state.dist_info["shard_check"] = {"epoch": epoch + 1, **distributed.shard_check(
            seen, n_micro * tc.batch_size, dist)}
    return EpochStats(losses, done * tc.batch_size, seconds, lr)


def _forward_backward(t: Trainer, x: torch.Tensor, y: torch.Tensor, accumulate: bool) -> torch.Tensor:
    """Loss and gradients of one micro-batch (the loss scaled by 1 / train.grad_accum, so that
    the accumulated gradient is the mean's); returns the unscaled loss, still on the device."""
    ddp = t.modules.ddp
    # gradients of a step's earlier micro-batches stay local: one all-reduce per step
    with (ddp.no_sync() if ddp is not None and accumulate else contextlib.nullcontext()):
        with autocast(t.device, t.compute.bf16):
            loss = t.objective(t.modules.forward, x, y)
        (loss / t.cfg.train.grad_accum).backward()
    return loss.detach()


def _optimizer_step(t: Trainer, step: int) -> tuple[float, torch.Tensor]:
    """Optimizer step ``step`` at its scheduled rate (times each group's lr_scale), with
    gradient clipping, then the weight average's update; returns the rate and the gradient's
    norm before clipping."""
    tc, m = t.cfg.train, t.modules
    lr = t.schedule.lr(step)
    for g in m.opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
    grads = [q.grad for q in m.model.parameters() if q.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)  # before clipping
    if tc.grad_clip:
        torch.nn.utils.clip_grads_with_norm_(m.model.parameters(), tc.grad_clip, norm)
    m.opt.step()
    m.opt.zero_grad(set_to_none=True)
    if m.ema is not None:
        # timm counts updates from 1 (as its train.py does): only the first update copies
        m.ema.update(m.model, step=step + 1)
    return lr, norm


def _validate(t: Trainer, state: RunState, epoch: int) -> float:
    """train.val_every_steps: validate the current weights (rank 0) into ``state.val_log``;
    returns the seconds it took (not training time)."""
    _sync(t.device)  # the steps queued so far count as training, not validation
    t_val = time.time()
    _, v_loss, v_acc = evaluate.evaluate_split(t.modules.eval_model, t.splits.val_x, t.splits.val_y,
                                               t.splits.prep, t.cfg.train, t.device)
    seconds = time.time() - t_val
    state.val_log.append({"step": state.step, "epoch": epoch + 1, "val_loss": v_loss, "val_accuracy": v_acc})
    t.tracker.log(state.step, {"val/loss": v_loss, "val/accuracy": v_acc})
    return seconds


def _log_steps(t: Trainer, state: RunState, epoch: int, pending: _Pending) -> list[float]:
    """Fetch the pending steps' losses (each the mean of its micro-batches, averaged over the
    ranks: the same on every rank), gradient norms and rates into ``state.steps_log`` and the
    tracker; returns the losses."""
    losses = torch.stack(pending.losses).view(-1, t.cfg.train.grad_accum).mean(1)
    values = distributed.mean_across_ranks(losses, t.dist).tolist()
    norms = torch.stack(pending.norms).tolist()
    first = state.step - len(values)
    for i, (v, gn, step_lr) in enumerate(zip(values, norms, pending.lrs)):
        state.steps_log.append({"step": first + i + 1, "epoch": epoch + 1, "loss": v,
                                "lr": step_lr, "grad_norm": gn})
        t.tracker.log(first + i + 1, {"train/loss": v, "train/lr": step_lr, "train/grad_norm": gn})
    pending.losses, pending.norms, pending.lrs = [], [], []
    return values


def check_losses(values: list[float], t: Trainer, state: RunState, epoch: int) -> None:
    """The loss check over the losses of the steps just logged (the last of them is step
    ``state.step``): a non-finite one raises :class:`TrainingDiverged`, or with
    train.stop_on_nan=false becomes the run's result, recorded in ``state.diverged``."""
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if not bad:
        return
    first = state.step - len(values)
    if not t.cfg.train.stop_on_nan:  # the divergence is the result: record, evaluate
        state.diverged = {"epoch": epoch + 1, "step": first + bad[0] + 1, "loss": str(values[bad[0]])}
        log.warning("%s: loss became %s at step %d (epoch %d); the run ends here as diverged "
                    "(train.stop_on_nan=false)", t.name, state.diverged["loss"], state.diverged["step"],
                    epoch + 1)
        return
    kept = (f"The last good checkpoint (epoch {len(state.epochs_log)}) is kept in {t.checkpoint}."
            if t.checkpoint.exists() else "No epoch had finished, so there is no checkpoint.")
    raise TrainingDiverged(f"{t.name}: loss became {values[bad[0]]} in epoch {epoch + 1} (by step "
                           f"{state.step}); stopped. {kept} Lower optim.lr or set train.grad_clip.")


def evaluate_epoch(t: Trainer, state: RunState, epoch: int,
                   stats: EpochStats) -> tuple[dict[str, Any], Optional[torch.Tensor]]:
    """The epoch's row of epochs.csv, evaluated (rank 0) every train.eval_every epochs and at
    the last: validation when there is a validation split, the test split at the last epoch
    (or every time without validation), unless early stopping tests the best epoch afterwards.
    Returns the row and the test logits when the test split was evaluated."""
    tc = t.cfg.train
    row = {"epoch": epoch + 1, "train_loss": float(np.mean(stats.losses)), "val_loss": None,
           "val_accuracy": None, "test_loss": None, "test_accuracy": None, "lr": stats.lr,
           "epoch_time_s": stats.seconds, "images_per_s": stats.images / stats.seconds}
    last = epoch + 1 == tc.epochs or state.diverged is not None
    test_logits = None
    s = t.splits
    if t.dist.main and ((epoch + 1) % tc.eval_every == 0 or last):
        if s.has_val:  # with a validation split the test split is read once, at the end
            _, row["val_loss"], row["val_accuracy"] = evaluate.evaluate_split(
                t.modules.eval_model, s.val_x, s.val_y, s.prep, tc, t.device)
        if (last or not s.has_val) and not tc.early_stop_patience:  # (else: the best epoch's, after)
            test_logits, row["test_loss"], row["test_accuracy"] = evaluate.evaluate_split(
                t.modules.eval_model, s.test_x, s.test_y, s.prep, tc, t.device)
    return row, test_logits


def early_stopping(t: Trainer, state: RunState, epoch: int, row: dict[str, Any]) -> bool:
    """train.early_stop_patience: keep the best validation epoch's weights in ``state.best``
    (rank 0); whether the run stops after this epoch (rank 0's decision, on every rank)."""
    tc = t.cfg.train
    best = state.best
    if t.dist.main and tc.early_stop_patience and row["val_accuracy"] is not None:
        if best is None or row["val_accuracy"] > best["val_accuracy"]:  # a tie is no improvement
            # from the bare module: torch.compile's wrapper prefixes every key with _orig_mod.
            weights = {k: v.detach().cpu().clone() for k, v in t.modules.result.state_dict().items()}
            state.best = best = {"epoch": epoch + 1, "val_accuracy": row["val_accuracy"],
                                 "evaluations_since": 0, "state": weights}
        else:
            best["evaluations_since"] += 1
    stop = bool(best and best["evaluations_since"] >= (tc.early_stop_patience or 0))
    return distributed.agree(stop, t.dist) and epoch + 1 < tc.epochs


def record_epoch(t: Trainer, state: RunState, epoch: int, row: dict[str, Any]) -> None:
    """Log the epoch's row, mark the epoch done, and (rank 0) write the checkpoint, the epoch's
    weights (train.keep_epoch_weights) and the CSVs; no rank runs ahead of rank 0's checkpoint."""
    tc = t.cfg.train
    state.epochs_log.append(row)
    t.tracker.log(state.step, {f"epoch/{k}": v for k, v in row.items() if k not in ("epoch", "lr")})
    shown = "val" if t.splits.has_val else "test"
    acc = row[f"{shown}_accuracy"]
    log.info("%s epoch %d/%d: train loss %.4f, %s acc %s, %.1fs, %.0f img/s", t.name, epoch + 1,
             tc.epochs, row["train_loss"], shown, "-" if acc is None else f"{acc:.4f}",
             row["epoch_time_s"], row["images_per_s"])
    state.epoch = epoch + 1
    if t.dist.main:
        m = t.modules
        state.save(t.checkpoint, m.model, m.opt, m.ema, t.cfg)
        if tc.keep_epoch_weights:  # the weights that epoch's evaluation used, for later study
            files.save_epoch_weights(t.out, epoch + 1, m.result)
        files.write_curves(t.out, state.steps_log, state.epochs_log, state.val_log)
    distributed.barrier(t.dist)
