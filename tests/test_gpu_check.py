"""benchmarks/gpu_check.py in its reduced CPU form, on a fake CIFAR-10 made here: its checks,
its throughput table and its files, so that its logic cannot rot without a GPU."""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import write_cifar_pickles

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


@pytest.fixture()
def fake_cifar(tmp_path):
    write_cifar_pickles(tmp_path / "data" / "cifar10" / "cifar-10-batches-py", per_batch=60, n_test=40)
    return tmp_path / "data"


def one_feature(gpu_check, monkeypatch):
    """Only the first feature run (the others take the same guarded path)."""
    real = gpu_check.features
    monkeypatch.setattr(gpu_check, "features", lambda sc: dict(list(real(sc).items())[:1]))


def test_a_failing_and_a_hanging_part_do_not_stop_the_others(tmp_path, fake_cifar, gpu_check, monkeypatch):
    """One part raises, the next hangs past its deadline: both are recorded as failed (the hang
    with the last line it logged), the parts after them still run, and the files hold every
    result measured before and after."""
    one_feature(gpu_check, monkeypatch)
    real_scale = gpu_check.scale_for

    def scale(device, quick):
        sc = real_scale(device, quick)
        sc.estimates["sync"] = 0.25  # a deadline of 1 s
        return sc

    def boom(*a, **k):
        raise RuntimeError("boom in the resume check")

    out = tmp_path / "out"
    seen_before = []

    def hang(*a, **k):
        seen_before.append((out / "summary.md").read_text())
        gpu_check.log.info("waiting for the device")
        time.sleep(60)

    monkeypatch.setattr(gpu_check, "scale_for", scale)
    monkeypatch.setattr(gpu_check, "resume_check", boom)
    monkeypatch.setattr(gpu_check, "sync_check", hang)
    t0 = time.time()
    code = gpu_check.main(["--device", "cpu", "--quick", "--data-dir", str(fake_cifar), "--out", str(out)])
    assert time.time() - t0 < 50, "the hang was not cut at its deadline"
    summary = (out / "summary.md").read_text()
    assert code == 1, summary
    assert "early stopping | pass" in seen_before[0], "results before the hang were not on disk"
    assert "killed and resumed | **FAIL** | RuntimeError: boom in the resume check" in summary
    line = next(x for x in summary.splitlines() if x.startswith("| host syncs per training step"))
    assert "**FAIL** | stopped at its deadline of 1 s" in line and "waiting for the device" in line, line
    assert "early stopping | pass" in summary
    table = pd.read_csv(out / "throughput.csv")  # measured after the hang
    assert list(table["model"]) == ["resnet10_mini_cifar"] and (table["ours img/s"] > 0).all()


def test_without_a_compiler_the_compile_part_is_skipped_and_the_check_passes(tmp_path, fake_cifar, gpu_check,
                                                                             monkeypatch):
    one_feature(gpu_check, monkeypatch)
    real_scale = gpu_check.scale_for
    monkeypatch.setattr(gpu_check, "scale_for", lambda d, q: dataclasses.replace(real_scale(d, q), compile=True))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CC", raising=False)
    out = tmp_path / "out"
    code = gpu_check.main(["--device", "cpu", "--quick", "--data-dir", str(fake_cifar), "--out", str(out)])
    summary = (out / "summary.md").read_text()
    assert code == 0, summary
    assert "| torch.compile | n/a | skipped: no C compiler on PATH" in summary
    assert "(no compile) early stopping, killed and resumed | pass" in summary


def test_missing_python_headers_are_named(gpu_check, monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_check.sysconfig, "get_paths", lambda: {"include": str(tmp_path)})
    if gpu_check.shutil.which("cc") or gpu_check.shutil.which("gcc") or gpu_check.shutil.which("clang"):
        assert "no Python headers" in gpu_check.missing_compiler()
    (tmp_path / "Python.h").write_text("")
    assert gpu_check.missing_compiler() in (None, "no C compiler on PATH (cc, gcc or clang): torch.compile "
                                                  "builds its kernels with one")


def test_budget_skips_what_would_not_fit_and_versions_are_recorded(tmp_path, fake_cifar, gpu_check):
    out = tmp_path / "out"
    code = gpu_check.main(["--device", "cpu", "--quick", "--budget", "3", "--data-dir", str(fake_cifar),
                           "--out", str(out)])
    summary = (out / "summary.md").read_text()
    assert code == 0, summary
    # (the seconds left depend on how long the imports took)
    assert re.search(r"early stopping \| n/a \| skipped: needs about 20 s, [0-3] s of the budget left", summary)
    assert "skipped: needs about 10 s" in pd.read_csv(out / "throughput.csv")["note"].iloc[0]
    for package in ("Python 3", "torch ", "torchvision ", "timm ", "numpy "):
        assert package in summary
    assert gpu_check.main(["--device", "cpu", "--budget", "0", "--data-dir", str(fake_cifar)]) == 2


def test_gpu_run_script_on_a_cpu_checks_runs_and_packs_without_weights(tmp_path):
    """benchmarks/gpu_run.sh end to end with the CPU settings on a CIFAR-10 tarball made here:
    the data unpacked, the check within its share of the time, study 1's first paper run started
    (cut by the clock), and a tarball of the results with no weights or checkpoints."""
    write_cifar_pickles(tmp_path / "a" / "cifar-10-batches-py", per_batch=110, n_test=40)  # > one 512 batch
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "a" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "GPU_RUN_DEVICE": "cpu", "GPU_CHECK_SHARE": "15",
           "GPU_CHECK_ARGS": "--quick"}
    t0 = time.time()
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_run.sh"), str(archive), str(out), "60"],
                          env=env, capture_output=True, text=True, timeout=150)
    log = (out / "gpu_run.log").read_text()
    assert done.returncode == 0, log[-3000:]
    assert time.time() - t0 < 90, "ran far past its budget"
    assert "paper run strong_resnet18" in log and (out / "data" / "cifar10" / "cifar-10-batches-py").is_dir()
    with tarfile.open(out / "results.tar.gz") as tar:
        names = tar.getnames()
    assert {"gpu-check/summary.md", "gpu-check/throughput.csv", "gpu_run.log"} <= set(names), names
    assert "runs/strong_resnet18/config.yaml" in names
    assert not [n for n in names if n.endswith(".pt")]


def test_gpu_run_script_names_bad_input_before_any_work(tmp_path):
    script = str(ROOT / "benchmarks" / "gpu_run.sh")
    env = {**os.environ, "PYTHON": sys.executable, "GPU_RUN_DEVICE": "cpu"}
    done = subprocess.run(["bash", script, str(tmp_path / "none.tar.gz"), str(tmp_path / "o")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"error: no archive at {tmp_path / 'none.tar.gz'}" in done.stderr
    (tmp_path / "x.tar.gz").write_bytes(b"")
    done = subprocess.run(["bash", script, str(tmp_path / "x.tar.gz"), str(tmp_path / "o"), "soon"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "SECONDS must be a positive whole number, got 'soon'" in done.stderr
    assert not (tmp_path / "o").exists()


BARE = '''
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):  # what a bare GPU machine lacks
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"matplotlib", "seaborn", "papermill", "nbformat", "nbconvert", "jupyterlab",
                                  "IPython", "ipykernel", "weasyprint", "tensorboard"}:
            raise ImportError("not on a bare machine: " + name)
sys.meta_path.insert(0, Block())
import cnnvit.__main__, cnnvit.studies.study, cnnvit.training.loop
import cnnvit.report.cost  # the GPU check's projection
from cnnvit.studies import run_study, load_study
print("ok")
'''


def test_training_a_study_needs_none_of_the_report_packages():
    """gpu_run.sh's `cnnvit study` on a machine without matplotlib, seaborn, Jupyter or
    tensorboard: the training path imports none of them (the figures load on first use), nor
    does the cost projection that benchmarks/gpu_check.py takes from the report package."""
    done = subprocess.run([sys.executable, "-c", BARE], env={**os.environ, "PYTHONPATH": str(ROOT / "lib")},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
