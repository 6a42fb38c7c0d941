"""The command line, run as ``python -m cnnvit`` in a subprocess."""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE_STUDY = REPO / "params" / "smoke" / "01_cifar10_vit_vs_resnet.yaml"

TRAINING_OUTPUTS = {"config.yaml", "data.json", "steps.csv", "epochs.csv", "metrics.json",
                    "predictions.npz", "model.pt", "checkpoint.pt", "train.log"}


def cli(python_exe, env, *args, timeout=120):
    t = time.monotonic()
    proc = subprocess.run([python_exe, "-m", "cnnvit", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    proc.elapsed = time.monotonic() - t
    return proc


def test_help(python_exe, cli_env):
    proc = cli(python_exe, cli_env, "--help", timeout=60)
    assert proc.returncode == 0, proc.stderr
    for word in ("train", "study", "data", "models", "--set"):
        assert word in proc.stdout


def test_bad_key_fails_fast_and_writes_nothing(tmp_path, python_exe, cli_env):
    out = tmp_path / "run"
    proc = cli(python_exe, cli_env, "train", "--set", "optim.lrr=0.1", "--out", out, timeout=30)
    assert proc.returncode != 0
    assert proc.elapsed < 10, f"took {proc.elapsed:.1f}s to reject a bad key"
    assert "optim.lrr" in proc.stderr
    assert "Traceback" not in proc.stderr  # a clean message, not a crash
    assert not out.exists() or not (set(p.name for p in out.iterdir()) & TRAINING_OUTPUTS)


def test_data_describes_synthetic(python_exe, cli_env):
    from cnnvit.config import DataConfig

    n_train, n_test = DataConfig().synthetic_train, DataConfig().synthetic_test
    proc = cli(python_exe, cli_env, "data", "--set", "data.name=synthetic", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "image size: 32x32" in proc.stdout
    assert f"train: {n_train} images" in proc.stdout and f"test: {n_test} images" in proc.stdout
    counts = re.findall(r"^\s+\d+ class_\d+\s+(\d+)$", proc.stdout, flags=re.M)
    assert [int(c) for c in counts] == [n_train // 10] * 10 + [n_test // 10] * 10


def test_data_missing_cifar_names_the_path(python_exe, cli_env):
    proc = cli(python_exe, cli_env, "data", "--set", "data.name=cifar10", "data.root=/nonexistent",
               timeout=60)
    assert proc.returncode != 0
    assert "/nonexistent" in proc.stderr
    assert "data.download" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_a_run_of_the_study_file(tmp_path, python_exe, cli_env):
    out = tmp_path / "strong_vit"
    proc = cli(python_exe, cli_env, "-q", "train", SMOKE_STUDY, "--run", "strong_vit", "--set",
               "train.epochs=1", "--out", out, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test accuracy" in proc.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 1 and m["model"] == "test_vit_cifar"
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"]["name"] == "test_vit_cifar"
    assert saved["train"]["mixup"] == 0.8 and saved["train"]["epochs"] == 1
    assert saved["data"]["policy"] == "autoaugment"  # the run's config on top of base
    assert saved["data"]["synthetic_train"] == 2000 and saved["device"] == "cpu"  # from base


def test_study_file_without_run_is_a_clear_error(tmp_path, python_exe, cli_env):
    proc = cli(python_exe, cli_env, "train", SMOKE_STUDY, "--out", tmp_path / "x", timeout=60)
    assert proc.returncode != 0
    assert "--run" in proc.stderr and "study file" in proc.stderr
    assert "strong_vit" in proc.stderr  # lists the runs to choose from
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------- in-process, for speed

@pytest.fixture
def main(monkeypatch):
    """``cnnvit.__main__.main`` without its logging.basicConfig (which would outlive the test)."""
    import logging

    from cnnvit.__main__ import main as cli_main

    monkeypatch.setattr(logging, "basicConfig", lambda **kw: None)
    return cli_main


def test_bad_type_in_params_file_names_key_and_file(tmp_path, main, capsys):
    params = tmp_path / "mine.yaml"
    params.write_text("train: {epochs: ten}\ndevice: cpu\n")
    assert main(["train", str(params), "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert "train.epochs" in err and "mine.yaml" in err
    assert not (tmp_path / "run").exists()


def test_unknown_run_and_run_on_plain_config(tmp_path, main, capsys):
    assert main(["train", str(SMOKE_STUDY), "--run", "nosuchrun", "--out", str(tmp_path / "x")]) != 0
    assert "nosuchrun" in capsys.readouterr().err
    plain = tmp_path / "plain.yaml"
    plain.write_text("device: cpu\n")
    assert main(["train", str(plain), "--run", "a", "--out", str(tmp_path / "x")]) != 0
    assert "not a study file" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_plain_params_file_with_overrides_trains(tmp_path, main, capsys):
    params = tmp_path / "mine.yaml"
    params.write_text("data: {synthetic_train: 64, synthetic_test: 20}\n"
                      "model: {name: test_vit_cifar}\n"
                      "train: {epochs: 3, batch_size: 16}\n"
                      "optim: {name: adam, lr: 1.0e-3}\n"
                      "device: cpu\n")
    out = tmp_path / "run"
    assert main(["-q", "train", str(params), "--set", "train.epochs=1", "--out", str(out)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 1 and saved["model"]["name"] == "test_vit_cifar"
    # a second call with another config is refused, not silently mixed in
    assert main(["-q", "train", str(params), "--out", str(out)]) != 0
    assert "another config" in capsys.readouterr().err


def test_models_lists_registry(main, capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^vit_base_patch16_224\s+224 px$", out, flags=re.M)
    assert re.search(r"^test_resnet_cifar\s+32 px$", out, flags=re.M)
