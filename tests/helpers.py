"""Helpers shared by several test modules: plain functions, classes and constants, imported as
``from helpers import ...``.

Pytest fixtures (and hooks) stay in ``conftest.py``, which imports what it needs from here;
nothing here is a fixture, and nothing needs a real data set, a GPU or the network.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from cnnvit import config as config_mod
from cnnvit.datasets import Dataset, load_dataset
from cnnvit.datasets import celeba as celeba_mod
from cnnvit.records import RunResult
from cnnvit.studies import Study, load_study, project_root

REPO = Path(__file__).resolve().parents[1]
SMOKE_STUDY = REPO / "params" / "smoke" / "01_cifar10_vit_vs_resnet.yaml"


# --------------------------------------------------------------------------- tiny configs and data

def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


TINY_BASE = {
    "data": {"name": "synthetic", "synthetic_train": 96, "synthetic_test": 40},
    "model": {"name": "test_resnet_cifar"},
    "train": {"epochs": 1, "batch_size": 16, "eval_batch_size": 64},
    "optim": {"name": "adam", "lr": 3e-3},
    "sched": {"name": "constant"},
    "device": "cpu",
}


def tiny_config(extra: dict | None = None) -> config_mod.Config:
    """A CPU config for a tiny model on tiny synthetic data; ``extra`` is merged on top."""
    return config_mod.build((deep_merge(TINY_BASE, extra or {}), "tiny test config"))


class Interrupted(Exception):
    """Raised inside training to stand for a run killed between two epochs."""


def tiny_dataset() -> Dataset:
    """96 train / 40 test synthetic images (matches TINY_BASE's data section)."""
    return load_dataset("synthetic", synthetic_train=96, synthetic_test=40)


# --------------------------------------------------------------------------- fake CIFAR-10

def write_cifar_pickles(folder: Path, per_batch: int = 20, n_test: int = 20, seed: int = 0,
                        label_names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Write torchvision's CIFAR-10 pickle layout (data_batch_1..5, test_batch, batches.meta)
    with random images; return the HWC arrays and labels that the files encode."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def batch(n: int, offset: int):
        imgs = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)  # N x H x W x C
        labels = [(offset + i) % 10 for i in range(n)]  # balanced classes
        flat = imgs.transpose(0, 3, 1, 2).reshape(n, 3072)  # CIFAR rows: R plane, G plane, B plane
        return imgs, np.asarray(labels), {"data": flat, "labels": labels, "batch_label": "fake"}

    train_x, train_y = [], []
    for i in range(1, 6):
        x, y, d = batch(per_batch, i)
        train_x.append(x)
        train_y.append(y)
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(d))
    test_x, test_y, d = batch(n_test, 0)
    (folder / "test_batch").write_bytes(pickle.dumps(d))
    if label_names is not None:
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": label_names,
                                                            "num_vis": 3072}))
    return {"train_x": np.concatenate(train_x), "train_y": np.concatenate(train_y),
            "test_x": test_x, "test_y": test_y}


def write_image_folder(root: Path, classes=("cat", "dog", "emu"), n_train: int = 4, n_test: int = 2,
                       size: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Write ``train/<class>/*.png`` and ``test/<class>/*.png``; return the expected arrays
    (classes sorted, files sorted within a class, as the loader orders them)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        xs, ys = [], []
        for ci, c in enumerate(sorted(classes)):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for j in range(n):
                img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(img).save(d / f"img_{j:03d}.png")
                xs.append(img)
                ys.append(ci)
        out[f"{split}_x"] = np.stack(xs)
        out[f"{split}_y"] = np.asarray(ys)
    out["classes"] = sorted(classes)
    return out


# --------------------------------------------------------------------------- headless chromium

def open_in_chromium(page: Path, profile_dir: Path) -> tuple[str, list[str]]:
    """Load ``page`` in Debian's headless Chromium: (the DOM it built, its console messages).
    The flags keep it off this machine's closed network."""
    import subprocess

    res = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile_dir}", "--enable-logging=stderr", "--log-level=0",
         "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    return res.stdout, [line for line in res.stderr.splitlines() if ":CONSOLE" in line]


# --------------------------------------------------------------------------- models

def drop_rates(model: torch.nn.Module) -> set[float]:
    """The stochastic-depth rates of a model's DropPath layers."""
    return {m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"}


def forward_fails(model: torch.nn.Module, size: int) -> bool:
    """Whether a forward pass at ``size`` x ``size`` px fails (a fixed-size model's other sizes)."""
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
    except Exception:
        return True
    return False


# =========================================================================== conclusions
# For tests/test_conclusions_*.py: the studies as their notebooks load them, fake finished runs
# (FakeRun, fake_run and each study's set of results) and checks of the text the conclusions
# print. The numbers are chosen so that picking the wrong run, flipping a comparison or a
# difference, or rounding differently gives other text.

# the checkout of the imported package (not of this file): a scratch copy of lib/, params/ and
# notebooks/ put first on PYTHONPATH is then tested as a whole
ROOT = project_root()
CIFAR, TINY, TRANSFORMERS, FINETUNE, CELEBA = (
    "01_cifar10_vit_vs_resnet", "02_tiny_imagenet_cnn_ablations", "03_tiny_imagenet_transformers",
    "04_cifar10_finetune", "05_celeba_simple_classifier")
STUDY_NAMES = (CIFAR, TINY, TRANSFORMERS, FINETUNE, CELEBA)
PROFILES = ("smoke", "paper")
CAVEAT_MARK = "these numbers test the pipeline and say nothing about"


@functools.lru_cache(maxsize=None)
def _load(name: str, profile: str) -> Study:
    return load_study(ROOT / "params" / profile / f"{name}.yaml")


def origin(kind: str = "scratch", source: Optional[str] = None, **fields: str) -> dict[str, Any]:
    """A ``weights`` entry of metrics.json (where a run's starting weights came from)."""
    label = {"scratch": "trained from scratch", "hub": f"pretrained: timm weights {source}"}.get(kind, "")
    return {"kind": kind, "source": source, "data": None, "model": None, "run": None, "label": label, **fields}


SCRATCH, HUB = origin(), origin("hub", "timm/deit_base_patch16_224.fb_in1k")


def study_of(name: str, profile: str = "paper") -> Study:
    """The study as its notebook loads it (a copy: tests may edit it)."""
    return copy.deepcopy(_load(name, profile))


def as_profile(study: Study, profile: str) -> Study:
    """The same study under another profile name (e.g. a user's own ``dev`` profile)."""
    return dataclasses.replace(study, profile=profile)


@dataclass
class FakeRun:
    """What the conclusions read of a :class:`cnnvit.training.Run`, without a run folder: ``raw``
    is its metrics.json as written (a test edits it), ``metrics`` the record read from it."""

    raw: dict
    classes: list[str]
    epochs: pd.DataFrame
    steps: pd.DataFrame
    data_info: dict
    val_steps: pd.DataFrame
    preds: np.ndarray = field(repr=False)

    @property
    def metrics(self) -> RunResult:
        return RunResult.from_json(self.raw)

    def predictions(self) -> dict[str, np.ndarray]:
        return {"predictions": self.preds}


def fake_run(acc: float, *, epochs: int = 10, n_test: int = 10_000, n_classes: int = 10,
             train_loss: Sequence[float] = (2.0, 1.0), val_loss: Optional[Sequence[float]] = None,
             grad_norms: Optional[Sequence[float]] = None, preds: Optional[np.ndarray] = None,
             test: Optional[dict] = None, test_counts: Optional[list[int]] = None,
             val_steps: Optional[pd.DataFrame] = None, val_acc: Optional[Sequence[float]] = None,
             **metrics) -> FakeRun:
    """A finished run with test accuracy ``acc``; ``metrics`` replace or add metrics.json keys;
    ``val_acc`` is its validation curve (default: flat at ``acc``, a run at its plateau)."""
    n_ep = len(train_loss)
    epoch_log = pd.DataFrame({"epoch": range(1, n_ep + 1), "train_loss": list(train_loss),
                              "val_loss": list(val_loss) if val_loss is not None else [float("nan")] * n_ep,
                              "val_accuracy": list(val_acc) if val_acc is not None else [acc] * n_ep})
    steps = pd.DataFrame({"step": range(1, (len(grad_norms) if grad_norms is not None else 4) + 1)})
    if grad_norms is not None:
        steps["grad_norm"] = list(grad_norms)
    m = {"run": "fake", "model": "fake", "steps": 100, "test_top5": None, "train_time_s": 1.0, "wall_time_s": 1.0,
         "train_images_per_s": 1.0, "device": "cpu", "torch": "2", "finished": "2026-01-01T00:00:00+0000",
         "test_accuracy": acc, "epochs": epochs,
         "dataset": {"name": "fake", "source": "made up", "n_train": 10 * n_test, "n_test": n_test},
         "test": {"accuracy": acc, "balanced_accuracy": acc, "macro_f1": acc, **(test or {})},
         "parameters": 1e6, "weights": SCRATCH, "majority_baseline": 0.5,
         "diverged": None, **metrics}
    counts = test_counts if test_counts is not None else [n_test // n_classes] * n_classes
    return FakeRun(m, [f"c{i}" for i in range(n_classes)], epoch_log, steps,
                   {"class_counts": {"test": counts}},
                   val_steps if val_steps is not None else pd.DataFrame(columns=["step", "val_accuracy"]),
                   preds if preds is not None else np.arange(200) % n_classes)


def bullets(md: str) -> list[str]:
    """The bold lead of every bullet, in order."""
    return re.findall(r"^- \*\*(.+?)\*\*", md, flags=re.M)


def bullet(md: str, lead: str) -> str:
    """The one bullet that starts with ``lead`` in bold."""
    found = [line for line in md.splitlines() if line.startswith(f"- **{lead}")]
    assert len(found) == 1, f"expected one bullet {lead!r}, got {found} in:\n{md}"
    return found[0]


def caveat_lines(md: str) -> list[str]:
    return [line for line in md.splitlines() if CAVEAT_MARK in line]


def assert_caveat(md: str, profile: str, about: str) -> None:
    """Paper: no caveat at all. Otherwise: the closing line, naming the profile and the data set."""
    lines = md.splitlines()
    if profile == "paper":
        assert caveat_lines(md) == [], md
        assert not lines[-1].startswith("*Profile"), md
    else:
        assert caveat_lines(md) == [lines[-1]], "one caveat, as the last line"
        assert lines[-1].startswith(f"*Profile `{profile}` uses ") and lines[-1].endswith("*")
        assert f"say nothing about {about}" in lines[-1]
        assert lines[-2] == "", "the caveat is a paragraph of its own"


# ----------------------------------------------------------------------------- study 1: CIFAR-10

def cifar_results(**acc: float) -> dict[str, FakeRun]:
    """All five runs of study 1 (seed CNN ahead, as the seed found); ``acc`` overrides, None drops."""
    base = {"seed_resnet18": 0.8812, "seed_vit_b16": 0.6543, "ablation_vit_b16_no_preprocessing": 0.6011,
            "strong_resnet18": 0.9534, "strong_vit": 0.9021}
    epochs = {"seed_resnet18": 20, "seed_vit_b16": 30, "ablation_vit_b16_no_preprocessing": 31,
              "strong_resnet18": 200, "strong_vit": 300}
    base.update(acc)
    return {n: fake_run(a, epochs=epochs[n]) for n, a in base.items() if a is not None}


# ------------------------------------------------------------------------- study 2: Tiny-ImageNet

TINY_ACC = {"vgg19_bn": 0.5201, "vgg19": 0.4102, "resnet18": 0.5511, "resnet34": 0.5622, "resnet50": 0.5933,
            "resnet50_noskip": 0.5012, "resnext50": 0.6044, "t2t_vit": 0.4511, "t2t_vit_64": 0.4822,
            "strong_resnet50": 0.6311}


def tiny_results(vgg19_run: Optional[FakeRun] = None, **acc: Optional[float]) -> dict[str, FakeRun]:
    """Study 2's paper runs (200 classes; every model learned); ``acc`` overrides, None drops."""
    base = {**TINY_ACC, **acc}
    out = {n: fake_run(a, n_classes=200, train_loss=(4.0, 2.0)) for n, a in base.items() if a is not None}
    if vgg19_run is not None:
        out["vgg19"] = vgg19_run
    return out


# ---------------------------------------------------------------------- study 3: transformers

TRANSFORMER_ACC = {"swin": 0.8811, "vit_l": 0.8512, "cait": 0.8677, "deit": 0.8733, "deit_head_only": 0.7012,
                   "opt_sgd": 0.7801, "opt_sgd_nesterov": 0.7911, "aug_no_mixup": 0.8801, "aug_ema": 0.8702,
                   "aug_randaugment": 0.8102, "bs_32": 0.8411, "bs_64": 0.8523}


def transformer_results(**acc: Optional[float]) -> dict[str, FakeRun]:
    base = {**TRANSFORMER_ACC, **acc}
    return {n: fake_run(a, n_classes=200) for n, a in base.items() if a is not None}


# ----------------------------------------------------------------------- study 4: fine-tuning

def finetune_results(**acc: Optional[float]) -> dict[str, FakeRun]:
    base = {"seed_linear_probe": 0.8611, "partial_finetune": 0.9312, "full_finetune": 0.9761, "scratch": 0.7023,
            **acc}
    out = {n: fake_run(a, test={"macro_f1": a - 0.0011}, weights=HUB) for n, a in base.items() if a is not None}
    if "scratch" in out:
        out["scratch"].raw["weights"] = SCRATCH
    return out


# ----------------------------------------------------------------------------- study 5: CelebA

CELEBA_PRETRAINING = ("binary_vit_b32_scratch", "seed_binary_vit_b32")
IMAGENET = origin("hub", "https://download.pytorch.org/models/resnet152-394f9c45.pth")
CELEBA_PARAMS = {"cnn_naive": 0.2e6, "cnn_alexnet": 57e6, "cnn_vgg16": 134e6, "cnn_resnet101": 42.5e6,
                 "seed_binary_resnet152": 58e6}


def celeba_results(**acc: Optional[float]) -> dict[str, FakeRun]:
    """Study 5's paper runs: the best binary run is strong_binary_resnet152, the CNN family's
    accuracy follows its size, every CNN but the naive one pretrained."""
    base = {"seed_binary_resnet152": 0.9311, "seed_binary_vit_b32": 0.9102, "binary_vit_b32_scratch": 0.8012,
            "cnn_naive": 0.8811, "cnn_alexnet": 0.9122, "cnn_vgg16": 0.9401, "cnn_resnet101": 0.9211,
            "strong_binary_resnet152": 0.9512, "strong_binary_vit_b32": 0.9403,
            "seed_hair5_resnet152": 0.8302, "seed_hair5_vit_b32": 0.8411, "strong_hair5_resnet152": 0.8512,
            "natural_hair5_resnet152": 0.9901,  # on another class balance: beside, never the best
            "strong_hair5_vit_b32": 0.8623, "seed_multilabel_resnet152": 0.9011, "strong_multilabel_vit_b32": 0.9102,
            **acc}
    out = {}
    for n, a in base.items():
        if a is None:
            continue
        if "multilabel" in n:
            run = fake_run(a, n_classes=40, majority_baseline=0.8734,
                           test={"mean_average_precision": 0.6123, "mean_accuracy": a, "exact_match": 0.25})
        elif "hair5" in n:
            run = fake_run(a, n_classes=5, majority_baseline=0.3512, test={"balanced_accuracy": a - 0.1})
        else:
            run = fake_run(a, n_classes=2, majority_baseline=0.8521, test_counts=[17000, 2962],
                           test={"balanced_accuracy": a - 0.0501})
        run.raw["parameters"] = CELEBA_PARAMS.get(n, 88e6)
        run.raw["weights"] = SCRATCH if n in ("cnn_naive", "binary_vit_b32_scratch") else IMAGENET
        out[n] = run
    for n, first in zip(CELEBA_PRETRAINING, (0.6, 0.85)):
        if n in out:
            out[n].val_steps = pd.DataFrame({"step": [50, 100], "val_accuracy": [first, first + 0.05]})
    return out


# --------------------------------------------------------------- data sets written in their formats

NAMES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Eyeglasses", "Gray_Hair", "Smiling"]


def write_celeba(root, n: int = 60, seed: int = 0, newline: str = "\n", folder: str = "img_align_celeba_17x21",
                 size=(17, 21)) -> np.ndarray:
    """The official layout with ``n`` generated images: returns the 0/1 attribute matrix written."""
    return celeba_mod.write_generated(root, n, seed, size, NAMES, folder, newline)


WNIDS = ["n01443537", "n01629819", "n01641577"]
WORDS = {"n01443537": "goldfish, Carassius auratus", "n01629819": "European fire salamander",
         "n01641577": "bullfrog, Rana catesbeiana", "n99999999": "not a class"}


def write_tiny_imagenet(root: Path, n_train: int = 10, n_val: int = 4, gray_every: int = 5) -> Path:
    """``root/tiny-imagenet-200`` with 3 classes; every ``gray_every``-th image is grayscale.
    Each image is filled with its label's value so that tests can check the labels."""
    folder = root / "tiny-imagenet-200"
    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (folder / "words.txt").write_text("".join(f"{w}\t{t}\n" for w, t in WORDS.items()))
    n = 0
    for label, wnid in enumerate(WNIDS):
        images = folder / "train" / wnid / "images"
        images.mkdir(parents=True)
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in range(n_train):
            n += 1
            mode = "L" if n % gray_every == 0 else "RGB"
            Image.new(mode, (64, 64), 40 * label + 20 if mode == "L" else (40 * label + 20,) * 3).save(
                images / f"{wnid}_{i}.JPEG", quality=95)
    lines = []
    for i in range(n_val * len(WNIDS)):
        label = i % len(WNIDS)
        name = f"val_{i}.JPEG"
        Image.new("RGB", (64, 64), (40 * label + 20,) * 3).save(folder / "val" / "images" / name, quality=95)
        lines.append(f"{name}\t{WNIDS[label]}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


# --------------------------------------------------------------------------- processes

# BatchNorm-free and dropout-free (LayerNorm ViT), no augmentation: two processes of 16 images
# must then compute the same averaged gradient as one process of 32, up to float rounding.
DDP_CONFIG = {
    "data": {"name": "synthetic", "synthetic_train": 200, "synthetic_test": 100},
    "model": {"name": "test_vit_cifar"},
    # fp32: bf16 autocast (on a CPU with native bf16) rounds a batch of 32 and two of 16 apart by
    # ~2e-4 in the loss; the comparison is of the sharding, not of the precision
    "train": {"epochs": 2, "batch_size": 32, "eval_batch_size": 100, "amp": False},
    "optim": {"name": "adamw", "lr": 1.0e-3, "weight_decay": 0.05},
    "sched": {"name": "cosine", "warmup_epochs": 0.5},
    "device": "cpu",
}


def _cli(args: list[str], env: dict, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
