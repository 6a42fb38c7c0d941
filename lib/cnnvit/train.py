"""One training run, readable in one sitting: data on the device, per-batch augmentation there,
a per-step learning-rate schedule, a checkpoint after every epoch, and the evaluation written
next to the config that produced it.

Randomness is reseeded at every epoch from (seed, epoch), so a run resumed from the checkpoint of
epoch k replays epochs k+1.. exactly as the uninterrupted run would (bit for bit on the CPU).
"""
from __future__ import annotations

from .errors import RunConflict, TrainingDiverged

import contextlib
import json
import logging
import math
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from . import config as config_mod
from . import distributed
from .augment import Preprocess, batch_indices, make_generator
from .config import CnnvitError, Config, ConfigError
from .data import Dataset, dataset_from_config, prepare_dataset
from .datasets import get_dataset
from .metrics import classification_metrics, majority_baseline, multilabel_metrics
from .models import (check_model_config, count_flops, count_parameters, create_model, is_fixed_size,
                     native_size, set_memory_format)
from .schedules import lr_at
from .tracking import Tracker, check_tracking
from .weights import check_pretrained, layer_decay_groups, prepare_model

log = logging.getLogger(__name__)

# keys that may differ between the run on disk and the config asking for it: where the data and
# a starting checkpoint lie (their folders move with the project), how the work is executed, and
# what is recorded beside the results
IDENTITY_EXEMPT = {"data.root", "data.download", "device", "train.compile", "train.eval_batch_size",
                   "model.pretrained_path", "train.tensorboard", "train.wandb", "train.keep_epoch_weights"}
NAN_CHECK_EVERY = 50  # optimizer steps between loss checks (each check syncs the GPU)






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
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _with_defaults(d: dict[str, Any]) -> dict[str, Any]:
    # a run saved before a key existed holds that key's default
    try:
        return config_mod.from_dict(d).to_dict()
    except ConfigError:  # a key since removed or renamed: compare as saved
        return d


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two config dicts (missing keys read as their defaults),
    apart from :data:`IDENTITY_EXEMPT`."""
    fa, fb = config_mod.flatten(_with_defaults(a)), config_mod.flatten(_with_defaults(b))
    return {k: (fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb))
            if k not in IDENTITY_EXEMPT and fa.get(k) != fb.get(k)}


def saved_config(run_dir: Path) -> Optional[dict[str, Any]]:
    path = Path(run_dir) / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else None


def run_state(cfg: Config, run_dir: Path) -> str:
    """'new', 'complete', 'partial' (a checkpoint to resume), or 'conflict' (other config)."""
    run_dir = Path(run_dir)
    saved = saved_config(run_dir)
    if saved is None:
        return "new"
    if config_differences(saved, cfg.to_dict()):
        return "conflict"
    if (run_dir / "metrics.json").exists():
        return "complete"
    return "partial" if (run_dir / "checkpoint.pt").exists() else "new"


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    lines = [",".join(keys)] + [",".join(_fmt(r[k]) for k in keys) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _fmt(v: Any) -> str:
    return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))


def _optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
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
    if o.name == "sgd":
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov)
    if o.name == "adam":
        return torch.optim.Adam(groups, lr=o.lr, betas=(o.beta1, o.beta2))
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2))
    raise ConfigError(f"optim.name: unknown optimizer {o.name!r}")


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, prep: Preprocess,
                   batch_size: int, device: torch.device, amp: bool) -> torch.Tensor:
    """Logits (float32, on the CPU) for uint8 N x H x W x 3 images, in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = prep.eval(images[start:start + batch_size].to(device, non_blocking=True))
        with _autocast(device, amp):
            out.append(model(x).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def check_run_inputs(cfg: Config) -> None:
    """Everything that can be checked before data are read: fail fast, before long work."""
    native = get_dataset(cfg.data.name).image_side(cfg.data)
    size = cfg.data.image_size or native
    check_model_config(cfg.model, size)  # name, options, input size, published weights
    if size is None and is_fixed_size(cfg.model.name):  # a data set of any image size (CelebA)
        raise ConfigError(f"model {cfg.model.name} takes {native_size(cfg.model.name)} px inputs: set "
                          f"data.image_size={native_size(cfg.model.name)} for {cfg.data.name}")
    if (cfg.train.mixup or cfg.train.cutmix) and (cfg.train.batch_size // cfg.train.nproc) % 2:
        raise ConfigError("the batch of each process (train.batch_size / train.nproc) must be even "
                          "when mixup or cutmix is on")
    check_tracking(cfg.train.tensorboard, cfg.train.wandb)


def train(cfg: Config, out_dir: str | Path, *, name: Optional[str] = None,
          dataset: Optional[Dataset] = None, progress: bool = True) -> Path:
    """Train (or resume, or skip if complete) one run into ``out_dir``; return the folder.

    A folder holding a run with a different config raises :class:`RunConflict` and is left alone.
    """
    out = Path(out_dir)
    name = name or out.name
    dist = distributed.from_env()
    if dist.active and cfg.train.nproc != dist.world_size:
        if cfg.train.nproc != 1:
            raise ConfigError(f"train.nproc={cfg.train.nproc} but torchrun started {dist.world_size} "
                              f"processes")
        cfg = config_mod.from_dict(cfg.to_dict())  # started by hand under torchrun: record it
        cfg.train.nproc = dist.world_size
    check_run_inputs(cfg)
    state = run_state(cfg, out)
    if state == "conflict":
        diff = config_differences(saved_config(out), cfg.to_dict())
        shown = "; ".join(f"{k}: {a!r} on disk, {b!r} now" for k, (a, b) in list(diff.items())[:5])
        raise RunConflict(f"{out} holds a run with another config ({shown}); choose another --out "
                          f"or move that folder away")
    if state == "complete":
        log.info("%s: already complete in %s, nothing to do", name, out)
        return out
    check_device(cfg)
    check_pretrained(cfg)
    if cfg.train.nproc > 1 and not dist.active:  # the workers load the data themselves
        return distributed.launch(cfg, out, name, progress)

    device = resolve_device(cfg.device, dist.local_rank if dist.active else None)
    if cfg.train.sync_bn and device.type != "cuda":
        raise ConfigError(f"train.sync_bn: SyncBatchNorm runs on CUDA only, and this run is on {device}")
    distributed.init(dist, device)
    try:
        if dist.active:  # one process per machine fills a data cache or downloads; the rest wait
            if dist.local_rank == 0:
                prepare_dataset(cfg.data)
            distributed.barrier(dist)
        if dataset is None:
            dataset = dataset_from_config(cfg.data, cfg.seed)
        return _train_logged(cfg, out, name, dataset, device, progress, dist)
    finally:
        if dist.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _train_logged(cfg: Config, out: Path, name: str, dataset: Dataset, device: torch.device,
                  progress: bool, dist: distributed.Dist) -> Path:
    """Write the run's config and data description, and its log (rank 0 only), around training."""
    n_train, per_step = len(dataset.train_labels), cfg.train.batch_size * cfg.train.grad_accum
    if per_step > n_train:
        raise ConfigError(f"train.batch_size x train.grad_accum = {per_step} exceeds the {n_train} "
                          f"training images: no optimizer step would happen")
    pkg_log = logging.getLogger("cnnvit")
    level = pkg_log.level
    if not dist.main:  # one log, one progress bar and one tracker: rank 0's
        pkg_log.setLevel(logging.WARNING)
        try:
            return _train(cfg, out, name, dataset, device, False, dist,
                          Tracker(out, name, tensorboard=False, wandb=False))
        finally:
            pkg_log.setLevel(level)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config_mod.dump(cfg))
    (out / "data.json").write_text(json.dumps({
        "name": dataset.name, "classes": dataset.classes, "multilabel": dataset.multilabel,
        "mean": dataset.mean, "std": dataset.std,
        "native_size": list(dataset.image_size), "source": dataset.source,
        "n_train": int(len(dataset.train_labels)), "n_val": int(len(dataset.val_labels)),
        "n_test": int(len(dataset.test_labels)),
        "class_counts": {split: dataset.class_counts(y).tolist() for split, y in (
            ("train", dataset.train_labels), ("val", dataset.val_labels), ("test", dataset.test_labels))},
    }, indent=1))
    if dataset.split_files:  # which image went where: the split can be checked and reused
        rows = [f"{f},{split}" for split, files in dataset.split_files.items() for f in files]
        (out / "split.csv").write_text("file,split\n" + "\n".join(rows) + "\n")
    handler = logging.FileHandler(out / "train.log")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    if pkg_log.getEffectiveLevel() > logging.INFO:
        pkg_log.setLevel(logging.INFO)  # the run's log is complete whatever the caller configured
    pkg_log.addHandler(handler)
    tracker = Tracker(out, name, tensorboard=cfg.train.tensorboard, wandb=cfg.train.wandb,
                      config=cfg.to_dict())
    try:
        return _train(cfg, out, name, dataset, device, progress, dist, tracker)
    finally:
        tracker.close()
        pkg_log.removeHandler(handler)
        pkg_log.setLevel(level)
        handler.close()


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights, n / (C x count), so that every class weighs the same in the loss;
    for an N x K multi-label matrix, each label's positive weight negatives / positives (the
    ``pos_weight`` of binary cross-entropy), so that its positives weigh as much as its negatives."""
    if labels.ndim == 2:
        pos = labels.sum(0)
        return (len(labels) - pos) / np.maximum(pos, 1)
    counts = np.bincount(labels, minlength=num_classes)
    return len(labels) / (num_classes * np.maximum(counts, 1))


def task_loss(logits: torch.Tensor, y: torch.Tensor, weight: Optional[torch.Tensor] = None,
              label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy for class labels; for 0/1 label matrices, binary cross-entropy of one sigmoid
    per label (``weight`` then is each label's positive weight)."""
    if y.ndim == 2:
        return F.binary_cross_entropy_with_logits(logits.float(), y.float(), pos_weight=weight)
    return F.cross_entropy(logits.float(), y, weight=weight, label_smoothing=label_smoothing)


def task_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy; for label matrices, the mean over labels of the accuracy at p >= 0.5."""
    if y.ndim == 2:
        return float(((logits >= 0) == (y >= 0.5)).float().mean())
    return float((logits.argmax(1) == y).float().mean())


def _evaluate(model: torch.nn.Module, images: torch.Tensor, labels: np.ndarray, prep: Preprocess,
              tc, device: torch.device) -> tuple[torch.Tensor, float, float]:
    """(logits, loss, accuracy) of a split."""
    logits = predict_logits(model, images, prep, tc.eval_batch_size, device, tc.amp)
    y = torch.from_numpy(labels)
    return logits, float(task_loss(logits, y)), task_accuracy(logits, y)


def _train(cfg: Config, out: Path, name: str, ds: Dataset, device: torch.device,
           progress: bool, dist: distributed.Dist, tracker: Tracker) -> Path:
    t_start = time.time()
    tc = cfg.train
    on_cuda = device.type == "cuda"
    channels_last = tc.channels_last and on_cuda
    num_classes = len(ds.classes)
    local_batch = tc.batch_size // dist.world_size  # train.batch_size is the global batch

    train_x = torch.from_numpy(ds.train_images).to(device)  # whole split, uint8, on the device
    train_y = torch.from_numpy(ds.train_labels).to(device)
    # only rank 0 evaluates: the held-out splits stay on the CPU elsewhere
    test_x = torch.from_numpy(ds.test_images).to(device if dist.main else "cpu")
    test_y = ds.test_labels
    val_x = torch.from_numpy(ds.val_images).to(device if dist.main else "cpu")
    has_val = len(ds.val_labels) > 0
    prep = Preprocess.from_config(cfg.data, ds.mean, ds.std, channels_last)

    _seed_everything(cfg.seed)  # the same initial weights on every rank
    model = create_model(cfg.model.name, num_classes, drop_path=cfg.model.drop_path,
                         pretrained=cfg.model.pretrained and not cfg.model.pretrained_path)
    model, weights_origin = prepare_model(model, cfg.model)  # a checkpoint, then the freeze policy
    model = set_memory_format(model.to(device), channels_last)
    if dist.active and tc.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    opt = _optimizer(cfg, model)

    micro_per_epoch = len(ds.train_labels) // tc.batch_size  # drop_last: equal batches
    steps_per_epoch = micro_per_epoch // tc.grad_accum  # >= 1, checked in train()
    total_steps = steps_per_epoch * tc.epochs
    sched = dict(warmup_steps=int(cfg.sched.warmup_epochs * steps_per_epoch),
                 min_lr_ratio=cfg.sched.min_lr_ratio, step_every=cfg.sched.step_epochs * steps_per_epoch,
                 gamma=cfg.sched.gamma, pct_start=cfg.sched.pct_start)

    weight = None
    if tc.class_weights:
        weight = torch.tensor(class_weights(ds.train_labels, num_classes), dtype=torch.float32, device=device)
        log.info("%s: %s weights %s", name, "positive" if ds.multilabel else "class",
                 ", ".join(f"{w:.2f}" for w in weight.tolist()))
    sample_weights = None
    if tc.balanced_sampling:  # each image drawn with probability 1 / (C x its class's count)
        counts = np.bincount(ds.train_labels, minlength=num_classes)
        sample_weights = torch.from_numpy(1.0 / counts[ds.train_labels])
        log.info("%s: balanced sampling over class counts %s", name, counts.tolist())
    mixer = None
    if tc.mixup or tc.cutmix:
        from timm.data import Mixup
        from timm.loss import SoftTargetCrossEntropy

        soft_ce = SoftTargetCrossEntropy()
        mixer = Mixup(mixup_alpha=tc.mixup, cutmix_alpha=tc.cutmix,
                      label_smoothing=tc.label_smoothing, num_classes=num_classes)

    start_epoch, step, steps_log, epochs_log, train_time, wall_before = 0, 0, [], [], 0.0, 0.0
    val_log: list[dict[str, Any]] = []  # train.val_every_steps: validation within epochs
    dist_info: dict[str, Any] = {}
    diverged: Optional[dict[str, Any]] = None
    best: Optional[dict[str, Any]] = None  # early stopping: the best validation epoch so far
    stopped_early = False
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        start_epoch, step = ckpt["epoch"], ckpt["step"]
        steps_log, epochs_log, train_time = ckpt["steps_log"], ckpt["epochs_log"], ckpt["train_time"]
        val_log = ckpt.get("val_log", [])
        wall_before = ckpt.get("wall_time", 0.0)
        dist_info = ckpt.get("distributed", {})
        best = ckpt.get("best")
        diverged = ckpt.get("diverged")
        log.info("%s: resuming after epoch %d (step %d) from %s", name, start_epoch, step, ckpt_path)

    ema = None
    if tc.model_ema:  # timm's weight average; it is what gets evaluated and saved
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=tc.model_ema)
        if ckpt_path.exists() and ckpt.get("ema") is not None:
            ema.module.load_state_dict(ckpt["ema"])
    ddp = None
    if dist.active:  # after loading: DDP broadcasts rank 0's weights to the others
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)
        dist_info.setdefault("world_size", dist.world_size)
        dist_info.setdefault("backend", torch.distributed.get_backend())
        dist_info.setdefault("sync_bn", tc.sync_bn)
        if sample_weights is not None:
            dist_info.setdefault("sampling", "class-balanced, with replacement (no shard check)")
    fwd = torch.compile(ddp or model) if tc.compile else (ddp or model)
    eval_model = fwd if ddp is None else model  # rank 0 alone evaluates: no collective inside
    if ema is not None:
        eval_model = ema.module
    if on_cuda:
        torch.cuda.reset_peak_memory_stats(device)

    aug_seed = tc.aug_seed if tc.aug_seed is not None else cfg.seed + 7919
    n_params = count_parameters(model)
    n_trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    log.info("%s: weights %s; %.2fM of %.2fM parameters train", name, weights_origin["label"], n_trainable / 1e6,
             n_params / 1e6)
    log.info("%s: %s (%.2fM parameters) on %s%s, %d train / %d validation / %d test images, "
             "%d epochs x %d steps", name, cfg.model.name, n_params / 1e6, device_description(device),
             f" x {dist.world_size} processes" if dist.active else "", len(train_y), len(ds.val_labels),
             len(test_y), tc.epochs, steps_per_epoch)
    interactive = sys.stderr.isatty()
    last_logits = None  # the final epoch's evaluation doubles as the run's test predictions
    model.train()
    for epoch in range(start_epoch, tc.epochs if diverged is None else start_epoch):
        # each rank its own augmentation stream; with one process the same seeds as ever
        stream = (aug_seed * 1000 + epoch) * dist.world_size + dist.rank
        _seed_everything(stream)  # policies, erasing, mixup, dropout
        gen = make_generator(stream, device)
        batches = batch_indices(len(train_y), local_batch, True, cfg.seed * 1000 + epoch, True,
                                dist.rank, dist.world_size, weights=sample_weights)
        seen: list[torch.Tensor] = []  # this rank's samples, for the shard check
        pending: list[torch.Tensor] = []  # losses of micro-batches not yet logged (no GPU sync)
        pending_norm: list[torch.Tensor] = []  # gradient norm of each optimizer step not yet logged
        pending_lr: list[float] = []  # learning rate of each optimizer step not yet logged
        if on_cuda:
            torch.cuda.synchronize(device)
        t_epoch = time.time()
        bar = tqdm(total=steps_per_epoch, desc=f"{name} {epoch + 1}/{tc.epochs}", file=sys.stderr,
                   disable=not progress, mininterval=0.5 if interactive else 15, ncols=100,
                   ascii=not interactive)
        epoch_losses, done = [], 0  # done: micro-batches trained in this epoch
        val_time = 0.0  # spent on train.val_every_steps evaluations: not training time
        for micro, idx in enumerate(batches):
            if micro >= steps_per_epoch * tc.grad_accum:
                break
            done = micro + 1
            if dist.active and not dist_info.get("shard_check") and sample_weights is None:
                seen.append(idx)  # (weighted draws repeat images by design: nothing to check)
            x = prep.train(train_x[idx], gen)
            y = train_y[idx]
            accumulate = (micro + 1) % tc.grad_accum != 0
            # gradients of a step's earlier micro-batches stay local: one all-reduce per step
            with (ddp.no_sync() if ddp is not None and accumulate else contextlib.nullcontext()):
                with _autocast(device, tc.amp):
                    if mixer is not None:
                        x, soft = mixer(x, y)
                        logits = fwd(x)
                        loss = soft_ce(logits.float(), soft)
                    else:
                        logits = fwd(x)
                        loss = task_loss(logits, y, weight, tc.label_smoothing)
                (loss / tc.grad_accum).backward()
            pending.append(loss.detach())
            if accumulate:
                continue
            lr = lr_at(step, total_steps, cfg.optim.lr, cfg.sched.name, **sched)
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            grads = [q.grad for q in model.parameters() if q.grad is not None]
            pending_norm.append(torch.nn.utils.get_total_norm(grads))  # before clipping
            if tc.grad_clip:
                torch.nn.utils.clip_grads_with_norm_(model.parameters(), tc.grad_clip, pending_norm[-1])
            opt.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(model, step=step)
            pending_lr.append(lr)
            step += 1
            bar.update(1)
            if tc.val_every_steps and step % tc.val_every_steps == 0 and dist.main:
                if on_cuda:  # the steps queued so far count as training, not validation
                    torch.cuda.synchronize(device)
                t_val = time.time()
                _, v_loss, v_acc = _evaluate(eval_model, val_x, ds.val_labels, prep, tc, device)
                val_time += time.time() - t_val
                val_log.append({"step": step, "epoch": epoch + 1, "val_loss": v_loss, "val_accuracy": v_acc})
                tracker.log(step, {"val/loss": v_loss, "val/accuracy": v_acc})
            if step % NAN_CHECK_EVERY == 0 or micro + 1 == steps_per_epoch * tc.grad_accum:
                losses = torch.stack(pending).view(-1, tc.grad_accum).mean(1)
                values = distributed.mean_across_ranks(losses, dist).tolist()  # same on every rank
                norms = torch.stack(pending_norm).tolist()
                first = step - len(values)
                for i, (v, gn, step_lr) in enumerate(zip(values, norms, pending_lr)):
                    steps_log.append({"step": first + i + 1, "epoch": epoch + 1, "loss": v,
                                      "lr": step_lr, "grad_norm": gn})
                    tracker.log(first + i + 1, {"train/loss": v, "train/lr": step_lr, "train/grad_norm": gn})
                pending, pending_norm, pending_lr = [], [], []
                epoch_losses += values
                bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
                if bad and not tc.stop_on_nan:  # the divergence is the result: record, evaluate
                    diverged = {"epoch": epoch + 1, "step": first + bad[0] + 1, "loss": str(values[bad[0]])}
                    log.warning("%s: loss became %s at step %d (epoch %d); the run ends here as "
                                "diverged (train.stop_on_nan=false)", name, diverged["loss"],
                                diverged["step"], epoch + 1)
                    break
                if bad:
                    bad = [values[i] for i in bad]
                    bar.close()
                    raise TrainingDiverged(
                        f"{name}: loss became {bad[0]} in epoch {epoch + 1} (by step {step}); stopped. "
                        + (f"The last good checkpoint (epoch {len(epochs_log)}) is kept "
                           f"in {ckpt_path}." if ckpt_path.exists() else "No epoch had finished, so "
                           "there is no checkpoint.") + " Lower optim.lr or set train.grad_clip.")
                bar.set_postfix(loss=f"{values[-1]:.3f}", lr=f"{lr:.2e}", refresh=False)
        bar.close()
        if on_cuda:
            torch.cuda.synchronize(device)
        epoch_time = time.time() - t_epoch - val_time
        train_time += epoch_time
        if seen:
            dist_info["shard_check"] = {"epoch": epoch + 1, **distributed.shard_check(
                seen, steps_per_epoch * tc.grad_accum * tc.batch_size, dist)}
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(epoch_losses)), "val_loss": None,
               "val_accuracy": None, "test_loss": None, "test_accuracy": None, "lr": lr,
               "epoch_time_s": epoch_time,
               "images_per_s": done * tc.batch_size / epoch_time}
        last = epoch + 1 == tc.epochs or diverged is not None
        if dist.main and ((epoch + 1) % tc.eval_every == 0 or last):
            if has_val:  # with a validation split the test split is read once, at the end
                _, row["val_loss"], row["val_accuracy"] = _evaluate(eval_model, val_x, ds.val_labels,
                                                                    prep, tc, device)
            if (last or not has_val) and not tc.early_stop_patience:  # (else: the best epoch's, after)
                last_logits, row["test_loss"], row["test_accuracy"] = _evaluate(
                    eval_model, test_x, test_y, prep, tc, device)
        if dist.main and tc.early_stop_patience and row["val_accuracy"] is not None:
            if best is None or row["val_accuracy"] > best["val_accuracy"]:
                best = {"epoch": epoch + 1, "val_accuracy": row["val_accuracy"], "evaluations_since": 0,
                        "state": {k: v.detach().cpu().clone() for k, v in eval_model.state_dict().items()}}
            else:
                best["evaluations_since"] += 1
        stop = bool(best and best["evaluations_since"] >= (tc.early_stop_patience or 0))
        stopped_early = distributed.agree(stop, dist) and epoch + 1 < tc.epochs  # rank 0 decides
        epochs_log.append(row)
        tracker.log(step, {f"epoch/{k}": v for k, v in row.items() if k not in ("epoch", "lr")})
        shown = "val" if has_val else "test"
        acc = row[f"{shown}_accuracy"]
        log.info("%s epoch %d/%d: train loss %.4f, %s acc %s, %.1fs, %.0f img/s", name, epoch + 1,
                 tc.epochs, row["train_loss"], shown, "-" if acc is None else f"{acc:.4f}",
                 epoch_time, row["images_per_s"])
        if dist.main:
            _save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                          "step": step, "steps_log": steps_log, "epochs_log": epochs_log, "val_log": val_log,
                          "train_time": train_time, "wall_time": wall_before + time.time() - t_start,
                          "config": cfg.to_dict(), "distributed": dist_info, "diverged": diverged,
                          "best": best, "ema": None if ema is None else ema.module.state_dict()},
                         ckpt_path)
            if tc.keep_epoch_weights:  # the weights that epoch's evaluation used, for later study
                (out / "epochs").mkdir(exist_ok=True)
                _save_atomic((ema.module if ema is not None else model).state_dict(),
                             out / "epochs" / f"{epoch + 1:03d}.pt")
            _write_csv(out / "steps.csv", steps_log)
            _write_csv(out / "epochs.csv", epochs_log)
            _write_csv(out / "val_steps.csv", val_log)
        distributed.barrier(dist)  # no rank runs ahead of rank 0's checkpoint
        if diverged:
            break
        if stopped_early:
            log.info("%s: no better validation accuracy for %d evaluations; stopping after epoch %d "
                     "and testing epoch %d's weights", name, tc.early_stop_patience, epoch + 1,
                     best["epoch"])
            break

    if not dist.main:
        distributed.barrier(dist)  # wait for rank 0's final files
        return out
    result = ema.module if ema is not None else model  # the weights that are the run's result
    if best is not None:  # early stopping: the best validation epoch's weights are the result
        result.load_state_dict(best["state"])
        last_logits = None
    if last_logits is None:  # resumed from the last epoch's checkpoint, or the best epoch's weights
        last_logits, _, _ = _evaluate(eval_model, test_x, test_y, prep, tc, device)
    logits = last_logits.numpy()
    if ds.multilabel:
        metrics = multilabel_metrics(logits, test_y, ds.classes)
        predictions = (logits >= 0).astype(np.uint8)  # p >= 0.5
    else:
        metrics = classification_metrics(logits, test_y, ds.classes)
        predictions = logits.argmax(1)
    np.savez_compressed(out / "predictions.npz", logits=logits.astype(np.float32), labels=test_y,
                        predictions=predictions)
    _save_atomic(result.state_dict(), out / "model.pt")
    flops = count_flops(result, cfg.data.image_size or ds.image_size, device)  # (h, w) when not resized
    val_acc = [r["val_accuracy"] for r in epochs_log if r.get("val_accuracy") is not None]
    summary = {
        "run": name, "model": cfg.model.name, "parameters": n_params,
        "trainable_parameters": n_trainable, "weights": weights_origin, "epochs": tc.epochs,
        "gflops_per_image": None if flops is None else flops / 1e9,
        "checkpoint_mb": (out / "model.pt").stat().st_size / 2**20,
        "peak_gpu_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if on_cuda else None,
        "model_ema": tc.model_ema,
        "epochs_run": len(epochs_log), "diverged": diverged,
        "early_stopping": None if best is None else {
            "patience": tc.early_stop_patience, "best_epoch": best["epoch"],
            "stopped_after_epoch": len(epochs_log) if stopped_early else None},
        "steps": step, "resumed_from_epoch": start_epoch, "test_accuracy": metrics["accuracy"],
        "test_top5": metrics.get("top5_accuracy"),
        "task": "multilabel" if ds.multilabel else "single-label",
        "majority_baseline": majority_baseline(ds.train_labels, test_y),
        "val_accuracy": val_acc[-1] if val_acc else None,
        "best_val_accuracy": max(val_acc) if val_acc else None,
        "train_time_s": train_time, "wall_time_s": wall_before + time.time() - t_start,
        "train_images_per_s": len(epochs_log) and float(np.mean([r["images_per_s"] for r in epochs_log])),
        "device": device_description(device) + (f" x {dist.world_size}" if dist.active else ""),
        "torch": torch.__version__,
        "dataset": {"name": ds.name, "source": ds.source, "n_train": int(len(ds.train_labels)),
                    "n_val": int(len(ds.val_labels)), "n_test": int(len(test_y))},
        "distributed": dist_info or None,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "test": metrics,
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    ckpt_path.unlink(missing_ok=True)  # model.pt holds the final weights; no optimizer state kept
    log.info("%s: test %saccuracy %.4f (majority baseline %.4f) after %d epochs, %.0fs", name,
             "mean label " if ds.multilabel else "", metrics["accuracy"], summary["majority_baseline"],
             len(epochs_log), summary["wall_time_s"])
    distributed.barrier(dist)
    return out
