"""benchmarks/gpu_check.py in its reduced CPU form, on a fake CIFAR-10 made here: its checks,
its throughput table and its files, so that its logic cannot rot without a GPU."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_cifar_pickles

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # (its dataclasses look their module up there)
    spec.loader.exec_module(mod)
    return mod


def test_cpu_mode_runs_every_check_and_writes_its_files(tmp_path, gpu_check, capsys):
    write_cifar_pickles(tmp_path / "data" / "cifar10" / "cifar-10-batches-py", per_batch=60, n_test=40)
    out = tmp_path / "out"
    code = gpu_check.main(["--device", "cpu", "--quick", "--data-dir", str(tmp_path / "data"), "--out", str(out)])
    summary = (out / "summary.md").read_text()
    assert code == 0, summary
    for check in ("early stopping", "load_run().predict", "RandAugment", "AutoAugment", "killed and resumed",
                  "data.on_device=false"):
        line = next(x for x in summary.splitlines() if check in x)
        assert "| pass |" in line, line
    assert "host syncs per training step | n/a | CUDA only" in summary
    table = pd.read_csv(out / "throughput.csv")
    assert list(table["model"]) == ["resnet10_mini_cifar"]
    assert (table["ours img/s"] > 0).all() and (table["reference img/s"] > 0).all()
    assert table["ratio"].iloc[0] == pytest.approx(table["ours img/s"].iloc[0] / table["reference img/s"].iloc[0])


def test_missing_data_and_missing_cuda_are_named_before_any_work(tmp_path, gpu_check, capsys):
    assert gpu_check.main(["--device", "cpu", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert f"no CIFAR-10 at {tmp_path / 'cifar10'}" in capsys.readouterr().err
    if not gpu_check.torch.cuda.is_available():
        assert gpu_check.main(["--data-dir", str(tmp_path)]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_sync_counter_tells_a_step_sync_from_a_scheduled_one(gpu_check, monkeypatch):
    """The classifier of syncs by their stack: one inside train_epoch's step counts, one inside
    the scheduled logging does not (warnings stand in for CUDA's sync debug mode)."""
    import warnings
    monkeypatch.setattr(gpu_check.torch.cuda, "set_sync_debug_mode", lambda mode: None)

    def _log_steps():
        warnings.warn("called a synchronizing CUDA operation")

    def train_epoch():
        warnings.warn("called a synchronizing CUDA operation")  # a step's own sync
        _log_steps()

    bad, total, where = gpu_check.count_step_syncs(train_epoch)
    assert (bad, total) == (1, 2) and "train_epoch" in where[0]


def test_projection_covers_every_paper_run(gpu_check):
    runs = gpu_check.paper_runs()
    names = {(s, r) for s, r, _ in runs}
    assert ("01_cifar10_vit_vs_resnet", "strong_resnet18") in {(s, r.split(".seed")[0]) for s, r in names}
    assert len(names) == len(runs), "each run once"


def test_sync_attribution_knows_the_library_by_its_folder_not_by_a_word(gpu_check, tmp_path):
    """A sync is attributed to the library's own files, found by its package folder: an
    interpreter or checkout whose path merely contains "cnnvit" is not the library."""
    import cnnvit.training.epoch as epoch

    assert gpu_check._in_library(epoch.__file__)
    foreign = tmp_path / "cnnvit-venv" / "lib" / "site-packages" / "torch" / "cnnvit_hook.py"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("")
    assert not gpu_check._in_library(str(foreign))
    assert not gpu_check._in_library("<frozen importlib._bootstrap>")
