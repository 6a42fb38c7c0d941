"""Nothing silently wrong, nothing lost: run folders that cannot be mixed or wedged, completion
files that cannot be torn, checkpoints read as data, caches that heal, faithful decoding, and one
``error:`` line for user mistakes (issue 26, items numbered as there)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import REPO, TINY_BASE, deep_merge, tiny_config
from cnnvit import config as config_mod
from cnnvit.datasets import cache
from cnnvit.errors import CheckpointError, ConfigError, RunConflict, RunInUse
from cnnvit.training import files, identity, loop


# ------------------------------------------------------------------ 1. one process per run folder

def test_a_folder_held_by_another_process_is_refused_and_left_alone(tmp_path, train_mod, tiny_ds):
    """The race of item 1, made deterministic: another process holds the folder (it is still
    loading its data, so nothing is written yet); a second train into it is refused at once."""
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, pathlib, sys, time\n"
        f"p = pathlib.Path({str(out)!r}); p.mkdir(parents=True)\n"
        "f = open(p / '.lock', 'a'); fcntl.flock(f.fileno(), fcntl.LOCK_EX)\n"
        "print('held', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunInUse, match="is in use: another process is training into it"):
            train_mod.train(tiny_config(), out, dataset=tiny_ds, progress=False)
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written beside it
    finally:
        holder.kill()
        holder.wait()
    # the holder died: the system released its lock, the folder is free
    train_mod.train(tiny_config(), out, dataset=tiny_ds, progress=False)
    assert identity.run_state(tiny_config(), out) == "complete"


def _train_command(out: Path, lr: float) -> list[str]:
    cfg = deep_merge(TINY_BASE, {"train": {"epochs": 3}, "optim": {"lr": lr},
                                 "data": {"synthetic_train": 512}})
    sets = [f"{section}.{k}={json.dumps(v)}" for section, d in cfg.items() if isinstance(d, dict)
            for k, v in d.items()] + [f"device={cfg['device']}"]
    return [sys.executable, "-m", "cnnvit", "-q", "train", "--out", str(out), "--set", *sets]


def test_two_train_processes_on_one_folder_leave_one_configs_results(tmp_path, cli_env):
    """Two real processes with different configs started at once: one trains, the other is
    refused (in use, or another config's folder); the folder holds the winner's files only."""
    out = tmp_path / "run"
    procs = {lr: subprocess.Popen(_train_command(out, lr), env=cli_env, cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for lr in (1e-3, 2e-3)}
    done = {lr: (p.wait(timeout=300), p.stderr.read()) for lr, p in procs.items()}
    winners = [lr for lr, (rc, _) in done.items() if rc == 0]
    assert len(winners) == 1, done
    loser = next(lr for lr in done if lr not in winners)
    rc, err = done[loser]
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error: ") and (
        "is in use" in err or "holds a run with another config" in err), err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["optim"]["lr"] == winners[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and len((out / "epochs.csv").read_text().splitlines()) == 4
    assert identity.run_state(config_mod.from_dict(saved), out) == "complete"


# ------------------------------------------------------------------ 2. faithful decoding

def test_a_16_bit_greyscale_png_is_scaled_not_saturated(tmp_path):
    from PIL import Image

    grey = np.array([[0, 257, 30000], [32768, 65535, 12345]], np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = cache.decode_images([tmp_path / "g16.png"])[0]
    expected = np.rint(grey * (255 / 65535)).astype(np.uint8)  # 30000 -> 117, not 255
    assert (out == expected[..., None]).all()


def test_palette_and_8_bit_images_decode_as_before(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "l.png")
    p = Image.fromarray(rgb).quantize(16)
    p.save(tmp_path / "p.png")
    out = cache.decode_images([tmp_path / "rgb.png", tmp_path / "l.png", tmp_path / "p.png"])
    assert (out[0] == rgb).all() and (out[1] == rgb[..., :1]).all()
    assert (out[2] == np.asarray(p.convert("RGB"))).all()


# ------------------------------------------------------------------ 3. duplicate keys

@pytest.mark.parametrize("text, line, first", [
    ("base:\n  train: {epochs: 30}\n  train: {batch_size: 8}\n", 3, 2),
    ("runs:\n  a: {config: {}}\n  b: {config: {}}\n  a: {config: {optim: {lr: 1}}}\n", 4, 2),
    ("base:\n  train: {epochs: 30, epochs: 3}\n", 2, 2),
])
def test_a_key_given_twice_is_refused_with_file_and_line(tmp_path, text, line, first):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        config_mod.load_yaml(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}, line {line}: ") and f"(first on line {first})" in msg and "\n" not in msg


def test_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("a: &x {lr: 1, wd: 2}\nb: {<<: *x, lr: 3}\n")
    assert config_mod.load_yaml(path)["b"] == {"lr": 3, "wd": 2}


def test_every_shipped_parameter_file_has_no_duplicate_key():
    for path in sorted((REPO / "params").glob("*/*.yaml")):
        config_mod.load_yaml(path)


def test_a_duplicate_key_in_set_is_one_config_error():
    with pytest.raises(ConfigError, match="given twice"):
        config_mod.parse_override("train={epochs: 3, epochs: 4}")


# ------------------------------------------------------------------ 4. completion files

def test_metrics_json_is_written_atomically(tmp_path, monkeypatch, train_mod, tiny_ds):
    """A full disk while metrics.json is written leaves no torn file: the run is not complete,
    no traceback follows on the next call, and the rerun completes it."""
    real = files.write_text_atomic
    written = []

    def full_disk(path, text):
        if path.name == "metrics.json":
            with open(path.with_name(f".{path.name}.tmp"), "w") as f:
                f.write(text[:10])
            raise OSError(28, "No space left on device")
        real(path, text)
        written.append(path.name)

    monkeypatch.setattr(files, "write_text_atomic", full_disk)
    with pytest.raises(OSError) as exc:
        train_mod.train(tiny_config(), tmp_path / "run", dataset=tiny_ds, progress=False)
    assert exc.value.errno == 28
    assert not (tmp_path / "run" / "metrics.json").exists()
    assert identity.run_state(tiny_config(), tmp_path / "run") != "complete"
    monkeypatch.setattr(files, "write_text_atomic", real)
    train_mod.train(tiny_config(), tmp_path / "run", dataset=tiny_ds, progress=False)
    assert identity.run_state(tiny_config(), tmp_path / "run") == "complete"


def test_write_text_atomic_keeps_the_previous_file_and_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    real_fsync = os.fsync

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError) as exc:
        files.write_text_atomic(path, "new")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert exc.value.filename == str(path) and path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temporary left


def test_an_unreadable_metrics_json_means_not_complete_with_a_warning(finished_run, tmp_path, caplog, train_mod,
                                                                      tiny_ds):
    import shutil

    src, cfg = finished_run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    (out / "metrics.json").write_text("")  # what a full disk left before the writes were atomic
    with caplog.at_level("WARNING"):
        assert identity.run_state(cfg, out) == "new"
    assert f"{out / 'metrics.json'} cannot be read" in caplog.text
    train_mod.train(cfg, out, dataset=tiny_ds, progress=False)  # trains again, no JSONDecodeError
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


def test_a_metrics_json_lacking_a_key_means_not_complete_with_a_warning(finished_run, tmp_path, caplog):
    """A metrics.json that parses but is no full record (a key missing) is as unreadable as a
    torn one: the run is not complete, rather than complete and failing in the first table."""
    import shutil

    src, cfg = finished_run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    metrics = json.loads((out / "metrics.json").read_text())
    del metrics["test_accuracy"]
    (out / "metrics.json").write_text(json.dumps(metrics))
    with caplog.at_level("WARNING"):
        assert identity.run_state(cfg, out) != "complete" and identity.read_result(out) is None
    assert f"{out / 'metrics.json'} cannot be read" in caplog.text and "test_accuracy" in caplog.text


# ------------------------------------------------------------------ 5 and 8. checkpoints

class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _partial_run(tmp_path, train_mod, tiny_ds, interrupt_after_epoch):
    from helpers import Interrupted

    arm, disarm = interrupt_after_epoch
    cfg = tiny_config({"train": {"epochs": 3}})
    out = tmp_path / "run"
    arm(1)
    with pytest.raises(Interrupted):
        train_mod.train(cfg, out, dataset=tiny_ds, progress=False)
    disarm()
    assert (out / identity.CHECKPOINT).exists()
    return cfg, out


def test_a_checkpoint_carrying_a_payload_is_not_unpickled(tmp_path, train_mod, tiny_ds, interrupt_after_epoch,
                                                          monkeypatch):
    cfg, out = _partial_run(tmp_path, train_mod, tiny_ds, interrupt_after_epoch)
    ckpt = torch.load(out / identity.CHECKPOINT, weights_only=True)
    ckpt["extra"] = _Payload()
    torch.save(ckpt, out / identity.CHECKPOINT)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="holds objects other than tensors"):
        train_mod.train(cfg, out, dataset=tiny_ds, progress=False)
    assert not (tmp_path / "PWNED").exists()


def test_a_plain_checkpoint_resumes_under_weights_only(tmp_path, train_mod, tiny_ds, interrupt_after_epoch):
    cfg, out = _partial_run(tmp_path, train_mod, tiny_ds, interrupt_after_epoch)
    train_mod.train(cfg, out, dataset=tiny_ds, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 3 and m["resumed_from_epoch"] == 1


def test_a_truncated_checkpoint_names_itself_and_the_way_forward(tmp_path, train_mod, tiny_ds,
                                                                interrupt_after_epoch):
    cfg, out = _partial_run(tmp_path, train_mod, tiny_ds, interrupt_after_epoch)
    data = (out / identity.CHECKPOINT).read_bytes()
    (out / identity.CHECKPOINT).write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError) as exc:
        train_mod.train(cfg, out, dataset=tiny_ds, progress=False)
    msg = str(exc.value)
    assert msg.startswith(f"{out / identity.CHECKPOINT} cannot be read") and "delete it" in msg and "\n" not in msg


# ------------------------------------------------------------------ 6 and 7. caches that heal

def _fill(values):
    def fill(folder):
        np.save(folder / "images.npy", np.asarray(values, np.uint8))
    return fill


def test_a_killed_fillers_temporary_folder_is_removed_on_the_next_fill(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".imgs-abc.{cache._HOST}.{dead.pid}.deadbeef.tmp"
    live = tmp_path / f".imgs-abc.{cache._HOST}.{os.getpid()}.cafecafe.tmp"  # a filler at work
    elsewhere = tmp_path / f".imgs-abc.otherhost.{dead.pid}.0badf00d.tmp"  # another machine's
    for d in (stale, live, elsewhere):
        d.mkdir()
        (d / "images.npy").write_bytes(b"x" * 100)
    got = cache.cached_arrays([tmp_path], "imgs", "abc", ("images",), _fill([1, 2, 3]), "test")
    assert list(got.arrays["images"]) == [1, 2, 3]
    assert not stale.exists() and live.exists() and elsewhere.exists()


def test_a_cache_folder_without_its_complete_mark_is_rebuilt(tmp_path, caplog):
    broken = tmp_path / "imgs-abc"
    broken.mkdir()
    np.save(broken / "images.npy", np.asarray([9, 9], np.uint8))  # a copy cut short: no mark
    with caplog.at_level("WARNING"):
        got = cache.cached_arrays([tmp_path], "imgs", "abc", ("images",), _fill([1, 2, 3]), "test")
    assert list(got.arrays["images"]) == [1, 2, 3] and (broken / "complete").exists()
    assert "no 'complete' mark" in caplog.text
    again = cache.cached_arrays([tmp_path], "imgs", "abc", ("images",), _fill([7]), "test")
    assert not again.filled and list(again.arrays["images"]) == [1, 2, 3]


# ------------------------------------------------------------------ 9. notebooks read their inputs first

def test_a_notebook_refuses_another_studys_file_before_any_training(monkeypatch):
    from cnnvit import studies

    monkeypatch.setattr(loop, "train", lambda *a, **k: pytest.fail("trained before the check"))
    with pytest.raises(ConfigError, match="is a parameter file of study '01_cifar10_vit_vs_resnet', not of "
                                          "'03_tiny_imagenet_transformers'"):
        studies.load_study(REPO / "params/smoke/01_cifar10_vit_vs_resnet.yaml", expect="03_tiny_imagenet_transformers")


def test_every_notebook_names_its_study_when_loading():
    """A notebook opens its study with expect=this.STUDY, ``this`` being the module of the study
    it is named after (so another study's parameter file is refused before any training)."""
    import re

    from cnnvit.studies import study_module

    for nb in sorted((REPO / "notebooks").glob("0*.ipynb")):
        text = nb.read_text()
        module = re.search(r"from cnnvit\.studies import (\w+) as this\b", text)
        assert module and "expect=this.STUDY" in text, nb.name
        assert study_module(nb.stem).__name__ == f"cnnvit.studies.{module.group(1)}", nb.name


# ------------------------------------------------------------------ 10. one error line

def test_ctrl_c_says_how_to_go_on(monkeypatch, capsys):
    from cnnvit import __main__ as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "train", interrupted)
    assert cli.main(["train", "--out", "x"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: interrupted; run the same command again")


def test_a_full_disk_is_one_error_line_naming_the_file(monkeypatch, capsys):
    from cnnvit import __main__ as cli

    def full(args):
        raise OSError(28, "No space left on device", "/runs/a/metrics.json")

    monkeypatch.setitem(cli.COMMANDS, "train", full)
    assert cli.main(["train", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error: no space left on the device writing /runs/a/metrics.json")


# ------------------------------------------------------------------ 11. a folder that never trained

def test_a_run_that_died_before_its_first_epoch_is_taken_over(tmp_path, train_mod, tiny_ds, monkeypatch, caplog):
    out = tmp_path / "run"
    bad = tiny_config({"optim": {"lr": 1.0}})

    def died_loading(*a, **k):
        raise RuntimeError("killed while loading")

    monkeypatch.setattr(loop, "_train", died_loading)
    with pytest.raises(RuntimeError):
        train_mod.train(bad, out, dataset=tiny_ds, progress=False)
    assert (out / "config.yaml").exists() and not identity.holds_work(out)
    monkeypatch.undo()
    with caplog.at_level("INFO"):
        train_mod.train(tiny_config(), out, dataset=tiny_ds, progress=False)
    assert "takes it over" in caplog.text
    assert yaml.safe_load((out / "config.yaml").read_text())["optim"]["lr"] == tiny_config().optim.lr


def test_a_folder_with_a_finished_epoch_stays_protected(tmp_path, train_mod, tiny_ds, interrupt_after_epoch):
    cfg, out = _partial_run(tmp_path, train_mod, tiny_ds, interrupt_after_epoch)
    with pytest.raises(RunConflict, match="holds a run with another config"):
        train_mod.train(tiny_config({"optim": {"lr": 1.0}}), out, dataset=tiny_ds, progress=False)


# ------------------------------------------------------------------ 10 and 12. data sets, said plainly

def _tree(folder, n=3):
    from PIL import Image

    for c in ("cat", "dog"):
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (40 * i, 90, 200)).save(folder / c / f"{i}.png")
    return folder


def test_dangling_and_looping_image_links_are_left_out_and_said(tmp_path, caplog):
    from cnnvit.datasets.base import class_tree

    root = _tree(tmp_path / "train")
    os.symlink(tmp_path / "gone.png", root / "cat" / "dangling.png")
    os.symlink(root / "dog" / "loop.png", root / "dog" / "loop.png")
    with caplog.at_level("WARNING"):
        tree = class_tree(root)
    assert [len(v) for v in tree.values()] == [3, 3]
    assert "2 image link(s)" in caplog.text and "dangling.png" in caplog.text and "loop.png" in caplog.text


def test_a_file_name_that_is_not_utf8_is_one_error_naming_it(tmp_path):
    from cnnvit.datasets import DatasetError
    from cnnvit.datasets.base import class_tree

    root = _tree(tmp_path / "train")
    bad = os.path.join(os.fsencode(root / "cat"), b"caf\xe9.png")
    with open(bad, "wb") as f:
        f.write((root / "cat" / "0.png").read_bytes())
    with pytest.raises(DatasetError, match=r"file name is not valid UTF-8: .*caf\\xe9\.png; rename it"):
        class_tree(root)


def test_a_listed_image_that_is_missing_is_named(tmp_path):
    from cnnvit.datasets import DatasetError

    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"1 listed image\(s\) not found: .*b\.png; restore them"):
        cache.source_key([tmp_path / "a.png", tmp_path / "b.png"])


def test_a_celeba_image_listed_twice_is_refused(tmp_path):
    from cnnvit.datasets import DatasetError, celeba

    celeba.write_generated(tmp_path, 20, seed=0)
    path = tmp_path / celeba.ATTR_FILE
    lines = path.read_text().splitlines()
    lines[0] = str(int(lines[0]) + 1)
    path.write_text("\n".join(lines + [lines[5]]) + "\n")
    with pytest.raises(DatasetError, match=rf"{lines[5].split()[0]} is listed twice \(first on line 6\)"):
        celeba.parse_attributes(path)


def test_a_subset_larger_than_the_split_is_said_not_clamped_silently(caplog):
    from cnnvit.datasets.base import stratified_indices

    with caplog.at_level("WARNING"):
        got = stratified_indices(np.arange(10) % 2, 25, seed=0)
    assert len(got) == 10 and "a subset of 25 images was asked of a split of 10" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        stratified_indices(np.arange(10) % 2, 10, seed=0)
    assert not caplog.text


def test_a_batch_that_clearly_cannot_fit_is_refused_before_the_data(monkeypatch, tmp_path, train_mod):
    from cnnvit.training import checks

    def no_data(*a, **k):
        raise AssertionError("data were loaded before the memory check")

    monkeypatch.setattr(loop, "dataset_from_config", no_data)
    cfg = tiny_config({"data": {"image_size": 4096}, "train": {"batch_size": 64}})
    with pytest.raises(ConfigError, match=r"test_resnet_cifar at 4096 px with a batch of 64 needs at least "
                                          r"[\d.]+ GiB of cpu memory .* lower train.batch_size or data.image_size"):
        train_mod.train(cfg, tmp_path / "run", progress=False)
    # the estimate scales with the batch and the image, and a small run passes
    checks.check_memory(tiny_config(), torch.device("cpu"), available=2**30)
    with pytest.raises(ConfigError):
        checks.check_memory(tiny_config({"train": {"batch_size": 16}}), torch.device("cpu"), available=2**10)


def test_a_full_disk_while_saving_weights_is_enospc_naming_the_file(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    def torn(obj, f):
        Path(f).write_bytes(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0; file write failed")

    monkeypatch.setattr(files.torch, "save", torn)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))
    with pytest.raises(OSError) as exc:
        files.save_atomic({"w": torch.zeros(1)}, tmp_path / "model.pt")
    assert exc.value.errno == 28 and exc.value.filename == str(tmp_path / "model.pt")
    assert not list(tmp_path.iterdir())  # the torn temporary is gone
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 0, 10**9))
    with pytest.raises(RuntimeError):  # another failure stays what it is
        files.save_atomic({"w": torch.zeros(1)}, tmp_path / "model.pt")
