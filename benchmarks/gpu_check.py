"""One prepared check of a GPU machine (`make gpu-check`): every CUDA-only branch of the training
core on real CIFAR-10, the host syncs of a training step, and training throughput beside a
minimal reference loop in plain PyTorch, with the projected time of every paper-profile run.

Needs only the training core's dependencies (torch, torchvision, timm, numpy, pandas, scikit-
learn, PyYAML, tqdm) and no network; reads CIFAR-10 from DATA_DIR/cifar10. Usage:

    python benchmarks/gpu_check.py --data-dir DIR [--device cuda|cpu] [--out outputs/gpu-check]
                                   [--budget SECONDS] [--time-to-accuracy]

Rewrites OUT/summary.md (versions, checks, throughput, projection) and OUT/throughput.csv after
every part, so that a time-out or a crash keeps what was measured; each part runs under its own
deadline, and a part that fails or hangs is recorded with its last log lines while the next one
runs; --budget skips the parts that would not fit. Exits 1 when a check fails. ``--device cpu``
runs the same logic at a CPU's scale (small models, few steps) in a few minutes; ``--quick`` is
the reduced form a test runs.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import signal
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cnnvit import config as config_mod  # noqa: E402
from cnnvit.datasets import dataset_from_config  # noqa: E402
from cnnvit.models import apply_freeze, create_model, native_size  # noqa: E402
from cnnvit.report.cost import Projector, input_px, train_images, training_passes  # noqa: E402
from cnnvit.training import load_run, train  # noqa: E402
from cnnvit.config import config_layers  # noqa: E402

log = logging.getLogger("gpu-check")

# functions of the training loop whose syncs are scheduled (logging, NaN checks, epoch edges,
# validation); a sync anywhere else inside train_epoch happens at every step
SCHEDULED_SYNCS = {"_log_steps", "check_losses", "_sync", "_validate"}


@dataclass
class Check:
    """One line of the summary: what was checked, whether it held, and the evidence."""

    name: str
    ok: Optional[bool]  # None: not applicable on this device
    detail: str
    seconds: float = 0.0


@dataclass
class Scale:
    """How big a check is on this device."""

    device: str
    subset: int  # training images of the feature runs
    test: int  # test images of every run
    small: str  # a CNN of the paper profile, or its laptop-sized sibling on a CPU
    big224: str  # a fixed-size 224 px model (resize to 224)
    big384: str  # a fixed-size 384 px model (resize to 384)
    models: list[tuple[str, int, int, str]] = field(default_factory=list)  # (model, px, batch, freeze)
    steps: int = 30  # measured steps per throughput epoch
    batch: int = 128  # batch of the feature, resume and sync runs
    compile: bool = True  # the resume check under torch.compile (a CPU compiles for a minute)
    # seconds each part is expected to take: --budget skips a part that would not fit, and a part
    # is stopped at DEADLINE_FACTOR times its estimate (a hang must not take the other parts' time)
    estimates: dict[str, float] = field(default_factory=dict)


DEADLINE_FACTOR = 4.0
# first guesses for an H100/H200-class GPU (nothing has been measured on one yet), then a 2-core CPU
CUDA_ESTIMATES = {"feature": 40, "resume": 120, "sync": 30, "time_to_accuracy": 240, "throughput": 25,
                  "projection": 5}
CPU_ESTIMATES = {"feature": 45, "resume": 120, "sync": 1, "time_to_accuracy": 1, "throughput": 20,
                 "projection": 10}
QUICK_ESTIMATES = {"feature": 20, "resume": 30, "sync": 1, "time_to_accuracy": 1, "throughput": 10,
                   "projection": 10}


def scale_for(device: str, quick: bool) -> Scale:
    if device == "cuda":
        return Scale("cuda", 4096, 2000, "resnet18_cifar", "vit_base_patch16_224", "deit_base_distilled_patch16_384",
                     models=paper_models(), estimates=dict(CUDA_ESTIMATES))
    models = [("resnet10_mini_cifar", 32, 64, "none"), ("vit_mini_cifar", 32, 64, "none")]
    if quick:
        return Scale("cpu", 256, 200, "resnet10_mini_cifar", "resnet10_mini_cifar", "resnet10_mini_cifar",
                     models=models[:1], steps=4, batch=16, compile=False, estimates=dict(QUICK_ESTIMATES))
    return Scale("cpu", 1024, 1000, "resnet10_mini_cifar", "resnet10_mini_cifar", "resnet10_mini_cifar",
                 models=models + [("vit_mini_cifar", 32, 64, "head")], steps=12, batch=64,
                 estimates=dict(CPU_ESTIMATES))


# --------------------------------------------------------------------------- the paper profile

def paper_runs() -> list[tuple[str, str, config_mod.Config]]:
    """(study, run, config) of every run of params/paper/ (each seed of a repeated run once)."""
    out = []
    for path in sorted((ROOT / "params" / "paper").glob("*.yaml")):
        raw = config_mod.load_yaml(path)
        base = raw.get("base", {})
        for name, spec in raw.get("runs", {}).items():
            cfg = config_mod.build((base, f"{path.name}: base"), *config_layers(raw["runs"], name, path.name))
            for seed in spec.get("seeds", [None]):
                out.append((path.stem, name if seed is None else f"{name}.seed{seed}", cfg))
    return out


def paper_models() -> list[tuple[str, int, int, str]]:
    """The models the issue names, each at the batch size and input size of its first paper run."""
    wanted = [("resnet18_cifar", "none"), ("resnet18", "none"), ("vit_base_patch16_224", "none"),
              ("vit_small_cifar", "none"), ("resnet50_cifar", "none"), ("t2t_vit_t_14_64", "none"),
              ("deit_base_patch16_224", "head"), ("deit_base_patch16_224", "none")]
    runs = paper_runs()
    out = []
    for model, freeze in wanted:
        cfg = next((c for _, _, c in runs if c.model.name == model and c.model.freeze == freeze), None)
        out.append((model, input_px(cfg) if cfg else native_size(model), cfg.train.batch_size if cfg else 128,
                    freeze))
    return out


# --------------------------------------------------------------------------- runs of the library

def config(data_root: str, device: str, **sections: dict) -> config_mod.Config:
    """A run on CIFAR-10 at DATA_DIR on ``device``; ``sections`` are merged over the defaults."""
    defaults = {"data": {"name": "cifar10", "root": data_root}, "device": device,
                "train": {"tensorboard": False, "eval_batch_size": 250}}
    return config_mod.build((defaults, "gpu-check"), (sections, "gpu-check"))


def features(sc: Scale) -> dict[str, dict]:
    """Short runs that between them take every CUDA-only branch the issue lists: {what: sections}."""
    features = {
        "bf16, channels_last, crop, flip, erasing, Mixup/CutMix, EMA, early stopping": dict(
            model={"name": sc.small}, data={"val_fraction": 0.1, "crop_padding": 4, "flip": True,
                                             "random_erasing": 0.25},
            train={"epochs": 3, "batch_size": sc.batch, "mixup": 0.8, "cutmix": 1.0, "label_smoothing": 0.1,
                   "model_ema": 0.99, "early_stop_patience": 1},
            optim={"name": "sgd", "lr": 0.05}),
        "random resized crop, RandAugment, colour jitter, resize to 224": dict(
            model={"name": sc.big224}, data={"image_size": 224, "random_resized_crop": True,
                                             "policy": "randaugment", "color_jitter": 0.2,
                                             "train_subset": max(sc.subset // 8, 64)},
            train={"epochs": 1, "batch_size": min(32, sc.batch)}, optim={"name": "adamw", "lr": 1e-4}),
        "AutoAugment, bicubic resize to 384, frozen backbone": dict(
            model={"name": sc.big384, "freeze": "head"},
            data={"image_size": 384, "resize_mode": "bicubic", "policy": "autoaugment",
                  "train_subset": max(sc.subset // 16, 64)},
            train={"epochs": 1, "batch_size": min(32, sc.batch)}, optim={"name": "adam", "lr": 1e-3}),
        "training split in host memory (data.on_device=false): pinned staging, side-stream copies": dict(
            model={"name": sc.small}, data={"on_device": False, "val_fraction": 0.1, "crop_padding": 4,
                                            "flip": True},
            train={"epochs": 2, "batch_size": sc.batch, "balanced_sampling": True, "val_every_steps": 4},
            optim={"name": "sgd", "lr": 0.05}),
    }
    for sections in features.values():
        data = sections.setdefault("data", {})
        data.setdefault("train_subset", sc.subset)
        # a resized run tests a quarter of the images: a CPU evaluates 1000 at 384 px for minutes,
        # and what these runs check is the pipeline, not an accuracy
        data["test_subset"] = sc.test if data.get("image_size", 32) == 32 else max(sc.test // 4, 50)
    return features


def feature_check(i: int, what: str, sections: dict, sc: Scale, root: str, work: Path) -> list[Check]:
    """One feature run: it trains, and a forced data placement is the one it used (the first
    run is also reloaded and predicts on the device)."""
    t0 = time.time()
    run_dir = train(config(root, sc.device, **sections), work / f"feature{i}", name=f"feature{i}",
                    dataset=None, progress=False)
    m = load_run(run_dir, device=sc.device).metrics
    placed = sections["data"].get("on_device", m.data_placement["on_device"])
    checks = [Check(what, m.data_placement["on_device"] == placed,
                    f"test accuracy {m.test_accuracy:.3f} ({m.model}); "
                    f"{m.data_placement['reason']}", time.time() - t0)]
    if i == 0:
        checks.append(predict_check(run_dir, sc))
    return checks


def predict_check(run_dir: Path, sc: Scale) -> Check:
    """load_run().predict on the device gives the predictions the run saved (on its test split,
    loaded again as the run loaded it)."""
    t0 = time.time()
    run = load_run(run_dir, device=sc.device)
    saved = run.predictions()
    ds = dataset_from_config(run.config.data, run.config.seed)
    logits = run.predict(ds.test_images)
    agree = float((logits.argmax(1) == saved["predictions"]).mean())
    return Check("load_run().predict on the device against the saved predictions", agree >= 0.999,
                 f"{agree:.2%} of {len(logits)} predictions agree", time.time() - t0)


def missing_compiler() -> Optional[str]:
    """Why torch.compile cannot build here, or None: Inductor and Triton compile C with the
    system's compiler against the Python headers (a bare machine may have neither)."""
    cc = os.environ.get("CC", "").split()[:1] or [c for c in ("cc", "gcc", "clang") if shutil.which(c)][:1]
    if not cc or not shutil.which(cc[0]):
        return "no C compiler on PATH (cc, gcc or clang): torch.compile builds its kernels with one"
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not header.exists():
        return f"no Python headers ({header}; e.g. the python3-dev package): torch.compile needs them"
    return None


def resume_check(sc: Scale, root: str, work: Path, logs: Path, timeout_s: float) -> list[Check]:
    """torch.compile with early stopping, killed (SIGKILL) after its first checkpoint and resumed
    by a second process: the run finishes and records where it resumed. Without a compiler the
    compile is skipped (a row says why) and the kill-and-resume runs without it. Each process
    has a deadline; the log of one that failed stays in ``logs``."""
    t0 = time.time()
    checks, compiled = [], sc.compile
    reason = missing_compiler() if sc.compile else None
    if reason:
        checks.append(Check("torch.compile", None, f"skipped: {reason}"))
        compiled = False
    sections = dict(model={"name": sc.small}, data={"train_subset": sc.subset, "test_subset": sc.test,
                                                      "val_fraction": 0.1, "crop_padding": 4, "flip": True},
                    train={"epochs": 3 if sc.device == "cpu" else 30, "batch_size": sc.batch,
                           "compile": compiled, "early_stop_patience": 2},
                    optim={"name": "sgd", "lr": 0.05})
    what = ("torch.compile with" if compiled else "(no compile)") + " early stopping, killed and resumed"
    cfg_file = work / "resume.yaml"
    cfg_file.write_text(config_mod.dump(config(root, sc.device, **sections)))
    out = work / "resume"
    cmd = [sys.executable, "-m", "cnnvit", "-q", "train", str(cfg_file), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    first, second = logs / "resume-first.log", logs / "resume-second.log"
    deadline = t0 + timeout_s
    with open(first, "w") as log_file:  # (a pipe nobody reads could fill and block it)
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        while proc.poll() is None and not (out / "checkpoint.pt").exists() and time.time() < deadline:
            time.sleep(0.05)
        if proc.poll() is not None:
            why = ("the run finished before it could be killed (make it longer)" if proc.returncode == 0
                   else f"the first process failed (exit {proc.returncode}); its log: {first}")
            return checks + [Check(what, False, why, time.time() - t0)]
        if not (out / "checkpoint.pt").exists():
            return checks + [Check(what, False, f"no checkpoint within {timeout_s:.0f} s; its log: {first}",
                                   time.time() - t0)]
        proc.send_signal(signal.SIGKILL)  # the checkpoint is written atomically: kill at once, in epoch 2
        proc.wait()
    finally:
        if proc.poll() is None:  # (a deadline of the part, or an error, must not leave it running)
            proc.kill()
            proc.wait()
    with open(second, "w") as log_file:
        try:
            done = subprocess.run(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                  timeout=max(deadline - time.time(), 1.0))
        except subprocess.TimeoutExpired:
            return checks + [Check(what, False, f"the resumed process ran past {timeout_s:.0f} s; its log: "
                                   f"{second}", time.time() - t0)]
    try:
        m = load_run(out, device=sc.device).metrics
        resumed = m.resumed_from_epoch
        ok = done.returncode == 0 and bool(resumed)
        detail = f"resumed after epoch {resumed}, test accuracy {m.test_accuracy:.3f}"
    except Exception as e:
        ok, detail = False, f"{type(e).__name__}: {e}"
    if ok:
        first.unlink(missing_ok=True)
        second.unlink(missing_ok=True)
    else:
        detail += f" (exit {done.returncode}; logs: {first}, {second})"
    return checks + [Check(what, ok, detail, time.time() - t0)]


# --------------------------------------------------------------------------- syncs of a step

LIBRARY = Path(config_mod.__file__).resolve().parent  # lib/cnnvit/


def _in_library(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(LIBRARY)
    except (OSError, ValueError):
        return False


def count_step_syncs(run: Callable[[], Any]) -> tuple[int, int, list[str]]:
    """Run ``run`` with CUDA's sync debug mode on; (syncs inside a training step outside the
    scheduled ones, all syncs, where the first unscheduled ones came from)."""
    found: list[list[traceback.FrameSummary]] = []
    real_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" in str(message):
            found.append(traceback.extract_stack())
        else:
            real_show(message, category, filename, lineno, file, line)
    warnings.showwarning = show
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = show
            run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
        warnings.showwarning = real_show
    in_step = [s for s in found if any(f.name == "train_epoch" for f in s)
               and not any(f.name in SCHEDULED_SYNCS for f in s)]
    where = []
    for stack in in_step[:3]:  # the innermost frame of the caller's code (not warnings', not ours)
        own = [f for f in stack if Path(f.filename).name not in ("warnings.py", Path(__file__).name)]
        # the library's own files, by its package folder: a path that merely contains "cnnvit"
        # (a virtual environment, a checkout's name) is not the library
        lib = [f for f in own if _in_library(f.filename)] or own
        where.append(f"{Path(lib[-1].filename).name}:{lib[-1].lineno} {lib[-1].name}")
    return len(in_step), len(found), where


def sync_check(sc: Scale, root: str, work: Path) -> Check:
    """A warm run, then the same run counted: no sync inside a step but the scheduled ones."""
    if sc.device != "cuda":
        return Check("host syncs per training step", None, "CUDA only (torch.cuda.set_sync_debug_mode)")
    t0 = time.time()
    sections = dict(model={"name": sc.small}, data={"train_subset": sc.subset, "test_subset": sc.test,
                                                      "crop_padding": 4, "flip": True, "random_erasing": 0.25},
                    train={"epochs": 1, "batch_size": 256, "mixup": 0.8, "cutmix": 1.0},
                    optim={"name": "sgd", "lr": 0.05})
    train(config(root, sc.device, **sections), work / "sync-warm", name="sync-warm", progress=False)
    bad, total, where = count_step_syncs(lambda: train(config(root, sc.device, **sections), work / "sync",
                                                       name="sync", progress=False))
    steps = sc.subset // 256
    return Check("host syncs per training step", bad == 0,
                 f"{bad} unscheduled syncs in {steps} steps ({total} in all, evaluation and logging included)"
                 + (f"; first at {', '.join(where)}" if where else ""), time.time() - t0)


def time_to_accuracy(sc: Scale, root: str, work: Path, targets: tuple[float, ...] = (0.94, 0.95),
                     limit_min: float = 3.0) -> Check:
    """The paper profile's strong CIFAR-10 ResNet-18, as its parameter file has it: training time
    until its test accuracy first reaches each target (goal: 95% within ``limit_min`` minutes)."""
    name = "strong ResNet-18 (paper profile): time to " + " and ".join(f"{t:.0%}" for t in targets)
    if sc.device != "cuda":
        return Check(name, None, "GPU only (60 epochs of ResNet-18)")
    t0 = time.time()
    cfg = next(c for s, r, c in paper_runs() if s.startswith("01_") and r == "strong_resnet18")
    cfg.data.root = root
    cfg.train.tensorboard = False
    run_dir = train(cfg, work / "strong_resnet18", name="strong_resnet18", progress=False)
    epochs = pd.read_csv(run_dir / "epochs.csv")
    elapsed = epochs["epoch_time_s"].cumsum() / 60
    reached = {t: next((float(m) for m, a in zip(elapsed, epochs["test_accuracy"]) if a >= t), math.nan)
               for t in targets}
    final = float(epochs["test_accuracy"].iloc[-1])
    detail = ", ".join(f"{t:.0%} after {m:.2f} min" if m == m else f"{t:.0%} not reached" for t, m in reached.items())
    return Check(name, bool(reached[targets[-1]] <= limit_min),
                 f"{detail} of training; final {final:.2%} after {elapsed.iloc[-1]:.2f} min", time.time() - t0)


# --------------------------------------------------------------------------- throughput

def ours(sc: Scale, root: str, work: Path, model: str, px: int, batch: int, freeze: str) -> dict[str, Any]:
    """Training images/s of the library's loop: the second of two short epochs (the first warms
    cuDNN and the allocator), and the run's peak GPU memory."""
    n = batch * sc.steps
    cfg = config(root, sc.device, model={"name": model, "freeze": freeze},
                 data={"train_subset": n, "test_subset": min(sc.test, 500), "image_size": px,
                       "crop_padding": 4, "flip": True},
                 train={"epochs": 2, "batch_size": batch, "eval_every": 2}, optim={"name": "adamw", "lr": 1e-4})
    run_dir = train(cfg, work / f"tp-{model}-{px}-{freeze}", name=model, progress=False)
    epochs = pd.read_csv(run_dir / "epochs.csv")
    m = load_run(run_dir, device=sc.device).metrics
    return {"ours img/s": float(epochs["images_per_s"].iloc[-1]), "peak GPU GB": m.peak_gpu_memory_gb,
            "params (M)": m.parameters / 1e6}


def reference(sc: Scale, model: str, px: int, batch: int, freeze: str) -> float:
    """Training images/s of a minimal loop in plain PyTorch: the same model, bf16 autocast and
    channels_last on CUDA, one random batch already on the device, AdamW."""
    dev = torch.device(sc.device)
    net = create_model(model, num_classes=10).to(dev)
    apply_freeze(net, freeze)
    cuda = dev.type == "cuda"
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW([q for q in net.parameters() if q.requires_grad], lr=1e-4)
    x = torch.randn(batch, 3, px, px, device=dev)
    x = x.contiguous(memory_format=torch.channels_last) if cuda else x
    y = torch.randint(0, 10, (batch,), device=dev)
    net.train()

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(net(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(max(3, sc.steps // 5)):
        step()
    if cuda:
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(sc.steps):
        step()
    if cuda:
        torch.cuda.synchronize(dev)
    return batch * sc.steps / (time.perf_counter() - t0)


def throughput_row(sc: Scale, root: str, work: Path, model: str, px: int, batch: int, freeze: str) -> dict:
    """Ours beside the reference loop for one model, with the ratio (an error, e.g. out of
    memory, is the row's result)."""
    row: dict[str, Any] = {"model": model, "px": px, "batch": batch, "freeze": freeze}
    try:
        row.update(ours(sc, root, work, model, px, batch, freeze))
        row["reference img/s"] = reference(sc, model, px, batch, freeze)
        row["ratio"] = row["ours img/s"] / row["reference img/s"]
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        if sc.device == "cuda":
            torch.cuda.empty_cache()
    log.info("%s", row)
    return row


def projection(table: pd.DataFrame) -> pd.DataFrame:
    """Every paper run's training images and projected time: at the measured speed of its model
    (same input size and freeze), else from its FLOPs at the FLOP rate the measured models
    sustained here (their median)."""
    measured = table.dropna(subset=["ours img/s"]) if "ours img/s" in table else table.iloc[0:0]
    proj = Projector(measured)
    rates = [r["ours img/s"] * (proj.flops(r["model"], r["px"]) or math.nan) * training_passes(r["freeze"])
             for _, r in measured.iterrows()]
    if rates and not all(math.isnan(r) for r in rates):
        proj.flops_per_s = float(np.nanmedian(rates))
    rows = []
    for study, name, cfg in paper_runs():
        minutes, how = proj.minutes(cfg)
        rows.append({"study": study, "run": name, "model": cfg.model.name, "px": input_px(cfg),
                     "train images": train_images(cfg), "speed": how, "projected min": minutes})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- versions

def versions(device: str) -> list[str]:
    """What the results were measured with: Python and the packages, and on CUDA the runtime, the
    driver and the GPU (name, memory, compute capability)."""
    import torchvision
    try:
        import timm
        timm_version = timm.__version__
    except ImportError:
        timm_version = "absent"
    lines = [f"Python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
             f"timm {timm_version}, numpy {np.__version__}, pandas {pd.__version__}"]
    if device == "cuda":
        p = torch.cuda.get_device_properties(0)
        lines.append(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}, "
                     f"{torch.cuda.device_count()} visible; CUDA runtime {torch.version.cuda}, "
                     f"cuDNN {torch.backends.cudnn.version()}, driver {driver_version()}")
    else:
        lines.append(f"CPU: {cpu_name()}, {os.cpu_count()} cores, "
                     f"{torch.get_num_threads()} threads")
    return lines


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def driver_version() -> str:
    """The NVIDIA driver's version from nvidia-smi ('unknown' without it)."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
        return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


# --------------------------------------------------------------------------- parts, deadlines, files

class PartTimeout(BaseException):
    """A part ran past its deadline (a BaseException: a part's own ``except Exception`` must not
    swallow it)."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`PartTimeout` in the main thread after ``seconds`` (SIGALRM: stops a part
    stuck in Python code or a wait; not one stuck inside a single C call)."""
    def ring(signum: int, frame: Any) -> None:
        raise PartTimeout()
    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Tail(logging.Handler):
    """The last lines the library and the check logged, to show with a part that failed."""

    def __init__(self, lines: int = 4) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=lines)
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record).replace("\n", " ")[:160])


@dataclass
class Part:
    """One guarded step of the check: ``run(limit_s)`` adds its results; ``row`` is set for a
    throughput row (a failure becomes that row's error)."""

    name: str
    run: Callable[[float], None]
    estimate_s: float
    row: Optional[dict] = None


@dataclass
class Results:
    """What the check has measured so far; :meth:`save` rewrites OUT's files from it."""

    out: Path
    sc: Scale
    t0: float
    header: list[str]
    checks: list[Check] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    plan: pd.DataFrame = field(default_factory=pd.DataFrame)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def record(self, part: Part, ok: Optional[bool], detail: str, seconds: float) -> None:
        """A part that failed (``ok`` False) or was skipped (None), as a check or its row."""
        if part.row is not None:
            self.rows.append({**part.row, ("error" if ok is False else "note"): detail})
        else:
            self.checks.append(Check(part.name, ok, detail, seconds))

    def failed(self) -> list[str]:
        table = self.table()
        rows = list(table["model"][table["error"].notna()]) if "error" in table else []
        return [c.name for c in self.checks if c.ok is False] + rows

    def save(self) -> None:
        """throughput.csv and summary.md, each replaced whole (a reader never sees half a file)."""
        write_atomic(self.out / "throughput.csv", self.table().to_csv(index=False))
        write_atomic(self.out / "summary.md", summary(self))


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def run_parts(parts: list[Part], results: Results, budget: Optional[float], tail: Tail) -> None:
    """Each part under its deadline, the files saved after each; a part that raises or runs past
    its deadline is recorded as failed with the last lines logged, and the next part runs; one
    that would not fit the remaining --budget is skipped and says so."""
    for part in parts:
        left = math.inf if budget is None else budget - (time.time() - results.t0)
        if part.estimate_s > left:
            results.record(part, None, f"skipped: needs about {part.estimate_s:.0f} s, "
                                       f"{max(left, 0):.0f} s of the budget left", 0.0)
            results.save()
            continue
        own = DEADLINE_FACTOR * part.estimate_s
        limit = min(own, left)
        tail.lines.clear()
        t0 = time.time()
        log.info("%s (deadline %.0f s)", part.name, limit)
        try:
            with deadline(limit):
                part.run(limit)
        except PartTimeout:  # past its own deadline: failed; cut by the budget's end: not measured
            results.record(part, False if limit == own else None,
                           (f"stopped at its deadline of {limit:.0f} s" if limit == own else
                            f"stopped after {limit:.0f} s, when the budget ran out") + last_lines(tail),
                           time.time() - t0)
        except Exception as e:
            log.exception("%s failed", part.name)
            results.record(part, False, f"{type(e).__name__}: {str(e)[:300]}{last_lines(tail)}", time.time() - t0)
        results.save()


def last_lines(tail: Tail) -> str:
    lines = [x for x in tail.lines if "(deadline" not in x]
    return ("; last lines logged: " + " / ".join(lines)) if lines else ""


def plan_parts(sc: Scale, root: str, work: Path, logs: Path, results: Results, tta: bool,
               quick: bool) -> list[Part]:
    """The check's parts in order: the feature runs, compile with kill-and-resume, the syncs,
    (time to accuracy), one throughput row per model, and the projection."""
    est = sc.estimates
    parts = [Part(what, lambda limit, i=i, w=what, s=sections: results.checks.extend(
        feature_check(i, w, s, sc, root, work)), est["feature"])
        for i, (what, sections) in enumerate(features(sc).items())]
    parts.append(Part("killed and resumed", lambda limit: results.checks.extend(
        resume_check(sc, root, work, logs, limit)), est["resume"]))
    parts.append(Part("host syncs per training step", lambda limit: results.checks.append(
        sync_check(sc, root, work)), est["sync"]))
    if tta:
        parts.append(Part("strong ResNet-18 (paper profile): time to accuracy", lambda limit: results.checks.append(
            time_to_accuracy(sc, root, work)), est["time_to_accuracy"]))
    for model, px, batch, freeze in sc.models:
        parts.append(Part(f"throughput of {model}", lambda limit, a=(model, px, batch, freeze): results.rows.append(
            throughput_row(sc, root, work, *a)), est["throughput"],
            row={"model": model, "px": px, "batch": batch, "freeze": freeze}))
    if not quick:
        parts.append(Part("projection of the paper profile", lambda limit: setattr(
            results, "plan", projection(results.table())), est["projection"]))
    return parts


# --------------------------------------------------------------------------- report

def summary(r: Results) -> str:
    """summary.md: versions, the checks, the throughput table against the 0.9x goal, the projection."""
    sc = r.sc
    dev = torch.cuda.get_device_name(0) if sc.device == "cuda" else f"cpu ({os.cpu_count()} cores)"
    mark = {True: "pass", False: "**FAIL**", None: "n/a"}
    lines = [f"# GPU check: {dev}", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - r.t0) / 60:.1f} min so far.", ""]
    lines += [f"- {x}" for x in r.header]
    lines += ["", "## Checks", "", "| check | result | evidence | s |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {mark[c.ok]} | {c.detail.replace('|', '/')} | {c.seconds:.0f} |" for c in r.checks]
    lines += ["", "## Training throughput beside a minimal reference loop", "",
              "Goal: every model at >= 0.9x the reference loop's images/s.", "", table_md(r.table())]
    plan = r.plan
    if len(plan):
        total = plan["projected min"].sum()
        lines += ["", f"## Projected time of the paper profile at these speeds ({total / 60:.1f} h in all)", "",
                  table_md(plan.groupby("study", as_index=False)["projected min"].sum()), "",
                  table_md(plan)]
    return "\n".join(lines) + "\n"


def table_md(df: pd.DataFrame) -> str:
    fmt = df.copy()
    for c in fmt.select_dtypes("number"):
        fmt[c] = fmt[c].map(lambda v: "" if pd.isna(v) else f"{v:,.2f}" if abs(v) < 10 else f"{v:,.0f}")
    fmt = fmt.astype(object).where(fmt.notna(), "")  # (e.g. no peak GPU memory on a CPU)
    head = "| " + " | ".join(fmt.columns) + " |"
    rule = "|" + "---|" * len(fmt.columns)
    return "\n".join([head, rule] + ["| " + " | ".join(map(str, r)) + " |" for r in fmt.itertuples(index=False)])


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR") or
                                                         Path.home() / ".cache" / "cnnvit-data"))
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "gpu-check")
    ap.add_argument("--budget", type=float, metavar="SECONDS",
                    help="skip the parts that would not fit in this many seconds (each says so)")
    ap.add_argument("--quick", action="store_true", help="the reduced CPU form the tests run")
    ap.add_argument("--time-to-accuracy", action="store_true",
                    help="also train the paper's strong ResNet-18 (60 epochs; about 3 minutes on an H100)")
    args = ap.parse_args(argv)
    if args.budget is not None and args.budget <= 0:
        print(f"error: --budget {args.budget:g}: needs a positive number of seconds", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # the library's per-epoch lines go only to the tail a failed part shows (its warnings to
    # stderr too); the check prints its own
    lib = logging.getLogger("cnnvit")
    saved = (lib.level, lib.propagate, log.level)
    warn = logging.StreamHandler(sys.stderr)
    warn.setLevel(logging.WARNING)
    lib.setLevel(logging.INFO)
    lib.propagate = False
    lib.addHandler(warn)
    log.setLevel(logging.INFO)
    try:
        return _check(args)
    finally:  # (main() also runs inside the tests' process)
        lib.removeHandler(warn)
        lib.setLevel(saved[0])
        lib.propagate = saved[1]
        log.setLevel(saved[2])


def _check(args: argparse.Namespace) -> int:
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available here (use --device cpu)", file=sys.stderr)
        return 2
    root = args.data_dir.expanduser() / "cifar10"
    if not root.exists():
        print(f"error: no CIFAR-10 at {root} (make data DATA_DIR=...)", file=sys.stderr)
        return 2
    sc = scale_for(args.device, args.quick)
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results = Results(args.out, sc, time.time(), versions(args.device))
    tail = Tail()
    watched = [logging.getLogger("cnnvit"), log]
    for logger in watched:
        logger.addHandler(tail)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        # Triton's kernel cache (else ~/.triton) and Inductor's go with the check's temporary files
        saved = {k: os.environ.get(k) for k in ("TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR")}
        os.environ["TRITON_CACHE_DIR"] = str(work / "triton")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(work / "inductor")
        try:
            run_parts(plan_parts(sc, str(root), work, logs, results, args.time_to_accuracy, args.quick),
                      results, args.budget, tail)
        finally:
            for logger in watched:
                logger.removeHandler(tail)
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    results.save()
    print(summary(results))
    failed = results.failed()
    if failed:
        print(f"error: failed: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
