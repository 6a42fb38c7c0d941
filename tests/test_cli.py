"""The command line, run as ``python -m cnnvit`` in a subprocess."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from helpers import write_celeba, write_cifar_pickles, write_tiny_imagenet

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


MODEL_COLUMNS = ("name", "kind", "input", "params", "weights")
KINDS = ("real", "stand-in (laptop)", "stand-in (test)")  # in the order the table lists them


def models_table(out: str) -> dict[str, dict[str, str]]:
    """``cnnvit models``'s rows by name, each cell cut where its heading starts (the numbers'
    column, right-aligned, where its heading ends): a row out of line with the header gives
    cells that the checks below refuse."""
    header, *rows = out.split("\n\n", 1)[0].splitlines()
    assert header.split() == list(MODEL_COLUMNS)
    kind, size, weights = (header.index(c) for c in ("kind", "input", "weights"))
    params_end = header.index("params") + len("params")
    table = {}
    for row in rows:
        cells = [row[:kind], row[kind:size], row[size:params_end], row[params_end:weights], row[weights:]]
        assert all(c.endswith("  ") for c in cells[:2]) and cells[3] == "  ", row  # columns 2 spaces apart
        number = re.fullmatch(r"(\d+ px(?: fixed)?) +(\d+\.\d\dM)", cells[2].strip())
        assert number and not cells[2].startswith(" " * 4), row  # 3 digits of px at the heading
        cells = [cells[0].strip(), cells[1].strip(), number[1], number[2], cells[4]]
        assert re.fullmatch(r"\S+", cells[0]) and cells[1] in KINDS, row
        assert cells[4] in ("timm", "torchvision", "-"), row
        table[cells[0]] = dict(zip(MODEL_COLUMNS, cells))
    return table


def test_models_table_is_aligned_counts_parameters_and_marks_stand_ins(main, capsys):
    from cnnvit.models import count_parameters, create_model, list_models

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    table = models_table(out)
    assert list(table) != sorted(table) and set(table) == set(list_models())  # grouped, each once
    assert [KINDS.index(r["kind"]) for r in table.values()] == sorted(KINDS.index(r["kind"]) for r in table.values())
    for name, row in table.items():
        kind = "stand-in (test)" if name.startswith("test_") else (
            "stand-in (laptop)" if "_mini" in name else "real")
        assert row["kind"] == kind, name
    assert table["vit_base_patch16_224"] == {"name": "vit_base_patch16_224", "kind": "real",
                                             "input": "224 px fixed", "params": "85.81M", "weights": "timm"}
    assert table["resnet18_cifar"]["input"] == "32 px" and table["resnet18_cifar"]["weights"] == "-"
    # counted on the meta device (t2t_vit: on the CPU), as a model built for real counts
    for name in ("resnet18_cifar", "resnet10_mini_cifar", "test_t2t_vit"):
        assert table[name]["params"] == f"{count_parameters(create_model(name, 10)) / 1e6:.2f}M"
    assert "stand-in (laptop) = " in out and "stand-in (test) = " in out  # the legend


# ----------------------------------------------------------------- data fetch and check

def test_data_fetch_help_lists_every_registered_data_set(main, capsys):
    from cnnvit.datasets import DatasetSpec, cifar10, register_dataset, registered, unregister_dataset

    name = "blobs-fetchable"  # a data set registered now must show up: the list is not by hand
    register_dataset(DatasetSpec(name=name, load=lambda cfg, seed: None, locate=lambda cfg: "a test",
                                 folder=name, native_size=8, fetch=dataclasses.replace(cifar10.FETCH, name=name)))
    try:
        with pytest.raises(SystemExit):
            main(["data", "fetch", "--help"])
        names = [s.name for s in registered() if s.fetch is not None]
    finally:
        unregister_dataset(name)
    text = " ".join(capsys.readouterr().out.split())
    assert {"cifar10", "cifar100", "tiny-imagenet", "celeba", name} <= set(names)
    for n in names:  # a whole word: "cifar10" inside "cifar100" does not count
        assert re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text), (n, text)


def test_data_check_of_a_missing_folder_says_so_in_one_line(tmp_path, main, capsys):
    missing = tmp_path / "no-such-folder"
    assert main(["data", "check", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # not one "missing" line per data set
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"{missing} does not exist" in lines[0]
    assert f"data fetch cifar10 tiny-imagenet celeba --to {missing}" in lines[0]
    assert not missing.exists()


def test_data_sets_the_studies_read_come_from_their_parameter_files(tmp_path):
    from cnnvit.config import needed_by_studies

    needed = needed_by_studies()
    assert set(needed) - {"synthetic"} == {"cifar10", "tiny-imagenet", "celeba"}  # no cifar100
    assert "03_tiny_imagenet_transformers" in needed["cifar10"]  # a run's data.name over base's
    profile = tmp_path / "params" / "mine"
    profile.mkdir(parents=True)
    (profile / "01_a.yaml").write_text(
        "study: 01_a\nprofile: mine\nbase: {data: {name: cifar10}}\ngenerated: {celeba: {images: 10}}\n"
        "runs:\n  a: {config: {model: {name: test_vit}}}\n  b: {config: {data: {name: celeba}}}\n"
        "  c: {config: {data: {name: cifar100}}}\n")
    (profile / "plain.yaml").write_text("data: {name: tiny-imagenet}\n")  # not a study file
    assert needed_by_studies(tmp_path / "params") == {"cifar10": ["01_a"], "cifar100": ["01_a"]}
    assert needed_by_studies(tmp_path / "empty") is None


def test_data_check_passes_when_only_sets_no_study_reads_are_absent(tmp_path, main, capsys):
    data = tmp_path / "data"  # what `make data` leaves: the studies' three data sets, no CIFAR-100
    write_cifar_pickles(data / "cifar10" / "cifar-10-batches-py", per_batch=10, n_test=10)
    write_tiny_imagenet(data)
    write_celeba(data / "celeba", n=20)
    assert main(["data", "check", str(data)]) == 0
    out = capsys.readouterr().out
    for name in ("cifar10", "tiny-imagenet", "celeba"):
        assert re.search(rf"^{name}\s+present", out, re.M)
    assert re.search(r"^cifar100\s+missing\s+not needed by any study", out, re.M)
    assert f"python -m cnnvit data fetch cifar100 --to {data}" in out
    assert "every data set the studies read is present; not needed by any study: cifar100" in out
    assert main(["data", "check", str(data), "cifar100"]) == 1  # named, it must be there
    capsys.readouterr()
    shutil.rmtree(data / "celeba")  # a set a study reads still counts
    assert main(["data", "check", str(data)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^celeba\s+missing\s+no CelebA", out, re.M) and "missing or corrupt: celeba" in out


def test_data_fetch_studies_names_the_sets_the_study_files_read():
    from cnnvit.__main__ import _studies_named
    from cnnvit.config import needed_by_studies

    named = _studies_named(["studies"])
    assert set(named) == set(needed_by_studies()) - {"synthetic"} and "cifar100" not in named
    assert _studies_named(["cifar100", "studies"])[0] == "cifar100"
