"""Shared fixtures: tiny configs, tiny data sets, fake CIFAR-10 folders, and one finished run.

Only fixtures (and hooks) live here; the plain helpers they hand out, and that test modules
import directly, are in ``helpers.py``. Nothing here needs a real data set, a GPU or the
network. Everything is written under tmp_path.
"""
from __future__ import annotations

import importlib
import sys

import pytest
import torch

from cnnvit.datasets import Dataset

from helpers import Interrupted, tiny_config, tiny_dataset, write_cifar_pickles, write_image_folder

# The test models are tiny: one thread is faster than two (thread start-up and spinning dominate,
# badly so when other work shares the 2 cores) and keeps timings steady. Subprocesses get the
# same through OMP_NUM_THREADS (see ``cli_env``).
torch.set_num_threads(1)


def _train_module():
    # the training package (``cnnvit.train_run`` is its ``train`` function)
    return importlib.import_module("cnnvit.training")


@pytest.fixture
def train_mod():
    return _train_module()


@pytest.fixture
def interrupt_after_epoch(monkeypatch):
    """``arm(n)`` makes the next training run raise :class:`helpers.Interrupted` right after
    epoch n's checkpoint and CSVs are written; ``disarm()`` restores normal training."""
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


@pytest.fixture
def tiny_ds() -> Dataset:
    return tiny_dataset()


# --------------------------------------------------------------------------- fake CIFAR-10

@pytest.fixture
def cifar_pickles():
    return write_cifar_pickles


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
