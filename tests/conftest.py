"""Shared fixtures: tiny configs, tiny data sets, fake CIFAR-10 folders, and one finished run.

Nothing here needs a real data set, a GPU or the network. Everything is written under tmp_path.
"""
from __future__ import annotations

import copy
import importlib
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnvit import config as config_mod
from cnnvit.datasets import Dataset, load_dataset

REPO = Path(__file__).resolve().parents[1]

# The test models are tiny: one thread is faster than two (thread start-up and spinning dominate,
# badly so when other work shares the 2 cores) and keeps timings steady. Subprocesses get the
# same through OMP_NUM_THREADS (see ``cli_env``).
torch.set_num_threads(1)
SMOKE_STUDY = REPO / "params" / "smoke" / "01_cifar10_vit_vs_resnet.yaml"


def _train_module():
    # the training package (``cnnvit.train_run`` is its ``train`` function)
    return importlib.import_module("cnnvit.training")


@pytest.fixture
def train_mod():
    return _train_module()


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


@pytest.fixture
def interrupt_after_epoch(monkeypatch):
    """``arm(n)`` makes the next training run raise :class:`Interrupted` right after epoch n's
    checkpoint and CSVs are written; ``disarm()`` restores normal training."""
    files = importlib.import_module("cnnvit.training.files")  # where the loop writes its CSVs
    real_write_csv = files.write_csv

    def arm(n: int) -> None:
        def write_then_die(path, rows):
            real_write_csv(path, rows)
            if path.name == "epochs.csv" and len(rows) == n:
                raise Interrupted

        monkeypatch.setattr(files, "write_csv", write_then_die)

    def disarm() -> None:
        monkeypatch.setattr(files, "write_csv", real_write_csv)

    return arm, disarm


@pytest.fixture
def make_cfg():
    return tiny_config


def tiny_dataset() -> Dataset:
    """96 train / 40 test synthetic images (matches TINY_BASE's data section)."""
    return load_dataset("synthetic", synthetic_train=96, synthetic_test=40)


@pytest.fixture
def tiny_ds() -> Dataset:
    return tiny_dataset()


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


@pytest.fixture
def cifar_pickles():
    return write_cifar_pickles


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


@pytest.fixture
def image_folder():
    return write_image_folder


# --------------------------------------------------------------------------- one finished run

@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A complete 2-epoch run of the tiny config (read-only for the tests that use it)."""
    cfg = tiny_config({"train": {"epochs": 2}})
    out = tmp_path_factory.mktemp("finished") / "run"
    _train_module().train(cfg, out, dataset=tiny_dataset(), progress=False)
    return out, cfg


@pytest.fixture
def python_exe() -> str:
    return sys.executable


@pytest.fixture
def cli_env() -> dict:
    import os

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


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
