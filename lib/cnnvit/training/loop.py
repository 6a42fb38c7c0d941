"""One training run, readable in one sitting: data on the device, per-batch augmentation there,
a per-step learning-rate schedule, a checkpoint after every epoch, and the evaluation written
next to the config that produced it.

:func:`train` decides what to do with the run folder (train, resume, skip, refuse) and where
(this process, or torchrun's); :func:`_train` is the run itself, top to bottom: setup, the
epochs (epoch.py), the result and its summary.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import torch

from ..config import Config
from ..datasets import Dataset, dataset_from_config, prepare_dataset
from ..errors import RunConflict
from ..models import count_flops, count_parameters, model_info
from ..models.weights import check_pretrained
from ..records import WeightsOrigin
from . import distributed, evaluate, files, setup
from .augment import seed_everything
from .checks import check_memory, check_run_inputs, check_steps_happen
from .device import check_device, compute_for, configure_backends, device_description, resolve_device
from .epoch import Trainer, early_stopping, evaluate_epoch, record_epoch, train_epoch
from .identity import CHECKPOINT, RunStatus, conflict_message, run_state
from .schedules import Schedule
from .state import RunState
from .summary import ModelFacts, build_summary
from .tracking import Tracker

log = logging.getLogger(__name__)


def train(cfg: Config, out_dir: str | Path, *, name: Optional[str] = None,
          dataset: Optional[Dataset] = None, progress: bool = True) -> Path:
    """Train (or resume, or skip if complete) one run into ``out_dir``; return the folder.

    A folder holding a run with a different config raises :class:`RunConflict` and is left alone.
    """
    out = Path(out_dir)
    name = name or out.name
    dist = distributed.from_env()
    if dist.torchrun:  # started by torchrun (by hand, or by launch below): record what it started
        cfg = distributed.record_world(cfg, dist)
    check_run_inputs(cfg)
    # the workers of a launch: the launching process holds the folder; a job over several
    # machines is kept together by its rendezvous, and only rank 0's machine writes a folder
    if dist.torchrun or cfg.train.nnodes > 1:
        return _train_run(cfg, out, name, dataset, progress, dist)
    with files.run_folder_lock(out):
        return _train_run(cfg, out, name, dataset, progress, dist)


def _train_run(cfg: Config, out: Path, name: str, dataset: Optional[Dataset], progress: bool,
               dist: distributed.Dist) -> Path:
    """:func:`train` once the folder is held: what state it is in, then the work left."""
    state = run_state(cfg, out)
    if state == RunStatus.CONFLICT:
        raise RunConflict(conflict_message(cfg, out))
    launcher = not dist.torchrun and (cfg.train.nproc > 1 or cfg.train.nnodes > 1)
    # every machine of a multi-machine job launches: rank 0's folder, maybe on another machine,
    # says whether work is left (agree_on_state below), and the others must join its rendezvous
    if state == RunStatus.COMPLETE and not dist.active and not (launcher and cfg.train.nnodes > 1):
        log.info("%s: already complete in %s, nothing to do", name, out)
        return out
    check_device(cfg)
    check_pretrained(cfg)
    if launcher:  # the workers load the data themselves
        return distributed.launch(cfg, out, name, progress)

    device = resolve_device(cfg.device, dist.local_rank if dist.active else None)
    check_memory(cfg, device)  # before the data: a batch that cannot fit fails now, not after decoding
    distributed.init(dist, device)
    try:
        if dist.active:
            if distributed.agree_on_state(state, out, dist) == RunStatus.COMPLETE:
                if dist.main:
                    log.info("%s: already complete in %s, nothing to do", name,
                             out if state == RunStatus.COMPLETE else "another machine's --out")
                return out
            # one process per machine fills a data cache or downloads; the rest wait
            if dist.local_rank == 0:
                prepare_dataset(cfg.data)
            distributed.barrier(dist)
        if dataset is None:
            dataset = dataset_from_config(cfg.data, cfg.seed)
        return _train_in_folder(cfg, out, name, dataset, device, progress, dist)
    finally:
        if dist.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train_in_folder(cfg: Config, out: Path, name: str, ds: Dataset, device: torch.device,
                     progress: bool, dist: distributed.Dist) -> Path:
    """Write the run's config and data description, and its log and trackers (rank 0 only),
    around training."""
    check_steps_happen(cfg, len(ds.train_labels))
    if dist.main:
        files.write_run_description(out, cfg, ds)
    # one log, one progress bar and one tracker: rank 0's
    tensorboard, wandb = cfg.train.tensorboard and dist.main, cfg.train.wandb and dist.main
    with files.run_log(out, dist.main), \
            Tracker(out, name, tensorboard=tensorboard, wandb=wandb, config=cfg.to_dict()) as tracker:
        return _train(cfg, out, name, ds, device, progress and dist.main, dist, tracker)


def _train(cfg: Config, out: Path, name: str, ds: Dataset, device: torch.device,
           progress: bool, dist: distributed.Dist, tracker: Tracker) -> Path:
    """The run: build everything, resume from the checkpoint if there is one, train the
    remaining epochs, then test the result and write it."""
    state = RunState()  # (started now: the run's wall time counts from here)
    tc = cfg.train
    compute = compute_for(cfg, device, model_info(cfg.model.name).cpu_bf16)
    splits = setup.place_data(ds, cfg, device, dist, compute)
    log.info("%s: %s", name, splits.placement.describe())
    seed_everything(cfg.seed)  # the same initial weights on every rank
    model, weights = setup.build_model(cfg, len(ds.classes), device, dist, compute)
    opt = setup.make_optimizer(cfg, model)
    steps_per_epoch = len(ds.train_labels) // tc.batch_size // tc.grad_accum  # >= 1, checked before
    schedule = Schedule.for_run(cfg.sched, cfg.optim.lr, steps_per_epoch, tc.epochs)
    objective = setup.make_objective(cfg, ds, device, name)
    sample_weights = setup.sample_weights(cfg, ds, name)
    ema = setup.make_ema(model, tc.model_ema)
    if (out / CHECKPOINT).exists():
        state.load(out / CHECKPOINT, model, opt, ema)
        log.info("%s: resuming after epoch %d (step %d) from %s", name, state.epoch, state.step,
                 out / CHECKPOINT)
    modules = setup.wrap(model, opt, ema, cfg, device, dist, state.dist_info, sample_weights is not None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    configure_backends(device)
    t = Trainer(cfg, name, out, device, dist, compute, modules, splits, objective, schedule, sample_weights,
                aug_seed=tc.aug_seed if tc.aug_seed is not None else cfg.seed + 7919,
                tracker=tracker, progress=progress)
    sizes = count_parameters(model), sum(q.numel() for q in model.parameters() if q.requires_grad)
    _log_start(t, weights, sizes, len(ds.val_labels))

    test_logits, stopped_early = None, False  # the final epoch's test logits double as the result's
    model.train()
    for epoch in range(state.epoch, tc.epochs if state.diverged is None else state.epoch):
        stats = train_epoch(t, state, epoch)
        row, logits = evaluate_epoch(t, state, epoch, stats)
        test_logits = logits if logits is not None else test_logits
        stopped_early = early_stopping(t, state, epoch, row)
        record_epoch(t, state, epoch, row)
        if state.diverged is not None:
            break
        if stopped_early:
            log.info("%s: no better validation accuracy for %d evaluations; stopping after epoch %d "
                     "and testing epoch %d's weights", name, tc.early_stop_patience, epoch + 1,
                     state.best["epoch"])
            break

    if not dist.main:
        distributed.barrier(dist)  # wait for rank 0's final files
        return out
    _finish(t, state, ds, weights, sizes, test_logits, stopped_early)
    distributed.barrier(dist)
    return out


def _log_start(t: Trainer, weights: WeightsOrigin, sizes: tuple[int, int], n_val: int) -> None:
    """Log where the weights came from, the model's parameters (all, trainable), the device and
    the amount of work."""
    dist, (n_params, n_trainable) = t.dist, sizes
    log.info("%s: weights %s; %.2fM of %.2fM parameters train", t.name, weights.label, n_trainable / 1e6,
             n_params / 1e6)
    log.info("%s: %s (%.2fM parameters) on %s%s, %d train / %d validation / %d test images, "
             "%d epochs x %d steps", t.name, t.cfg.model.name, n_params / 1e6, device_description(t.device),
             f" x {dist.world_size} processes" if dist.active else "", len(t.splits.train), n_val,
             len(t.splits.test_y), t.cfg.train.epochs, t.schedule.steps_per_epoch)
    c = t.compute
    log.info("%s: training steps in %s (%s), %s%s%s", t.name, c.autocast, c.why,
             "channels-last" if c.channels_last else "channels-first", ", compiled" if c.compiled else "",
             f", {c.threads} CPU threads" if c.threads else "")


def _finish(t: Trainer, state: RunState, ds: Dataset, weights: WeightsOrigin, sizes: tuple[int, int],
            test_logits: Optional[torch.Tensor], stopped_early: bool) -> None:
    """Rank 0, after the last epoch: the result's weights (the best validation epoch's with
    early stopping), its test predictions and metrics, model.pt and metrics.json; the
    checkpoint goes (model.pt holds the final weights; no optimizer state is kept)."""
    result, s = t.modules.result, t.splits
    if state.best is not None:  # early stopping: the best validation epoch's weights are the result
        result.load_state_dict(state.best["state"])
        test_logits = None
    if test_logits is None:  # resumed from the last epoch's checkpoint, or the best epoch's weights
        test_logits, _, _ = evaluate.evaluate_split(t.modules.eval_model, s.test_x, s.test_y, s.prep,
                                                    t.cfg.train, t.device)
    logits = test_logits.numpy()
    metrics, predictions = evaluate.score_predictions(logits, s.test_y, ds.classes, ds.multilabel)
    files.write_predictions(t.out, logits, s.test_y, predictions)
    files.save_atomic(result.state_dict(), t.out / "model.pt")
    flops = count_flops(result, t.cfg.data.image_size or ds.image_size, t.device)  # (h, w) when not resized
    summary = build_summary(t, state, ds, metrics, ModelFacts(weights, *sizes, flops, t.out / "model.pt"),
                            stopped_early)
    # last: it marks the run complete
    files.write_text_atomic(t.out / "metrics.json", json.dumps(summary.to_json(), indent=1))
    t.checkpoint.unlink(missing_ok=True)
    log.info("%s: test %saccuracy %.4f (majority baseline %.4f) after %d epochs, %.0fs", t.name,
             "mean label " if ds.multilabel else "", metrics["accuracy"], summary.majority_baseline,
             len(state.epochs_log), summary.wall_time_s)
