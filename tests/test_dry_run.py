"""``cnnvit study PARAMS --dry-run``: every run of a study file through the real loop for two
optimizer steps at its real input size, on tiny generated data, in a temporary folder."""
from __future__ import annotations

import tempfile

import pytest
import yaml

from cnnvit.__main__ import main
from cnnvit.studies import project_root
from cnnvit.studies.dry_run import _train_size

STUDY = "dry_run_test_study"  # a study of one's own: no groups to declare


def write_study(tmp_path, runs: dict, base: dict | None = None, seeds: dict | None = None):
    """A study file modelled on params/smoke/*.yaml, with ``runs`` (name -> its config) and
    ``seeds`` (name -> the seeds it repeats over)."""
    base = base or {"data": {"name": "synthetic", "synthetic_train": 200, "synthetic_test": 50},
                    "train": {"epochs": 5, "batch_size": 16, "eval_batch_size": 64},
                    "sched": {"name": "cosine", "warmup_epochs": 1}, "device": "cpu"}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"study": STUDY, "profile": "smoke", "base": base,
                                    "runs": {n: {"config": c, **({"seeds": seeds[n]} if n in (seeds or {}) else {})}
                                             for n, c in runs.items()}}, sort_keys=False))
    return path


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The dry run's temporary folders go here, so that a test can see that none is left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def dry_run_folders(tmp):
    """The dry run's temporary folders left under ``tmp`` (torch keeps caches of its own there)."""
    return [p for p in tmp.iterdir() if p.name.startswith("cnnvit-dry-run-")]


def test_dry_run_reports_every_run_and_fails_on_a_bad_one(tmp_path, private_tmp, capsys):
    out_dir = project_root() / "outputs" / "smoke" / STUDY
    assert not out_dir.exists()
    path = write_study(tmp_path, {
        "tiny": {"model": {"name": "test_resnet_cifar"}, "data": {"val_fraction": 0.1},
                 "train": {"grad_accum": 2, "early_stop_patience": 2, "nproc": 2}},
        "hub": {"model": {"name": "resnet10t", "pretrained": True}, "data": {"image_size": 48}},
        "bad": {"model": {"name": "no_such_model_xyz"}},
        "fine": {"model": {"name": "test_resnet_cifar", "pretrained_path": "run:tiny", "freeze": "head"}},
    }, seeds={"tiny": [3, 4]})
    rc = main(["-q", "study", str(path), "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 1
    lines = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in
             ("tiny", "hub", "fine")}
    assert set(lines) == {"tiny", "hub", "fine"}, out  # one line per run that passed ...
    assert "seed4" not in out + err  # (a run over seeds: its first seed only)
    assert "resnet10t" in lines["hub"] and "48x48 px" in lines["hub"] and "hub weights -> random init" in lines["hub"]
    assert "weights of run tiny -> random init" in lines["fine"]
    assert "train.nproc=2 -> one process" in lines["tiny"] and "1 val" in lines["tiny"]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: bad (no_such_model_xyz): ")  # ... and the failure
    assert "no_such_model_xyz" in errors[0]
    assert "3 of 4 runs passed" in err and "failed: bad" in err
    assert not out_dir.exists()  # the study's own folder: nothing written, nothing marked complete
    assert not dry_run_folders(private_tmp)  # the temporary folder is gone


def test_dry_run_takes_two_optimizer_steps_at_the_configured_size(tmp_path, private_tmp, monkeypatch, capsys):
    import cnnvit.training.epoch as epoch
    import cnnvit.training.setup as setup

    steps, shapes = [], []
    real_step, real_build = epoch._optimizer_step, setup.build_model

    def counting_step(t, step):
        steps.append(step)
        return real_step(t, step)

    def watched_model(*args, **kwargs):
        model, weights = real_build(*args, **kwargs)
        model.register_forward_pre_hook(lambda module, inputs: shapes.append(tuple(inputs[0].shape)))
        return model, weights

    monkeypatch.setattr(epoch, "_optimizer_step", counting_step)
    monkeypatch.setattr(setup, "build_model", watched_model)
    path = write_study(tmp_path, {"resized": {"model": {"name": "test_resnet_cifar"}, "data": {"image_size": 40},
                                              "train": {"grad_accum": 3, "mixup": 0.8, "cutmix": 1.0}}})
    rc = main(["-q", "study", str(path), "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 0, err[-3000:]
    assert steps == [0, 1]  # two optimizer steps, from step 0
    train_shapes = shapes[:6]  # 2 steps x 3 accumulated micro-batches of 2, then the evaluations
    assert train_shapes == [(2, 3, 40, 40)] * 6, shapes
    assert all(s[1:] == (3, 40, 40) for s in shapes)  # every input at the configured size
    assert "40x40 px" in out and "1 of 1 runs passed" in out
    assert not dry_run_folders(private_tmp)


def test_absent_data_sets_get_stand_ins_of_their_shape(tmp_path, private_tmp, capsys):
    missing = tmp_path / "nothing-here"
    path = write_study(tmp_path, {
        "cifar": {"model": {"name": "test_resnet_cifar"}, "data": {"name": "cifar10", "root": str(missing)}},
        "faces": {"model": {"name": "test_resnet_cifar"},
                  "data": {"name": "celeba", "root": str(missing), "task": "multilabel", "image_size": 32}},
    })
    rc = main(["-q", "study", str(path), "--dry-run"])
    out, err = capsys.readouterr()
    assert rc == 0, err[-3000:]
    cifar, faces = (next(line for line in out.splitlines() if line.startswith(n)) for n in ("cifar", "faces"))
    assert "synthetic 32 px stand-in, 10 classes" in cifar and "32x32 px" in cifar
    assert "generated 178x218 images in its format" in faces and "32x32 px" in faces
    assert not dry_run_folders(private_tmp)


def test_a_file_that_is_no_study_is_a_user_error(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"study": STUDY, "profile": "smoke", "runs": {"a": {}}, "bogus": 1}))
    assert main(["study", str(path), "--dry-run"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["study", str(path), "--dry-run", "--out", str(tmp_path / "o")]) == 2
    good = write_study(tmp_path, {"a": {"model": {"name": "test_resnet_cifar"}}})
    assert main(["study", str(good), "--dry-run", "--set", "trian.epochs=1"]) == 2
    assert "unknown config key 'trian'" in capsys.readouterr().err


@pytest.mark.parametrize("need, fraction, n", [(4, 0.0, 4), (4, 0.2, 5), (4, 0.1, 6), (16, 0.2, 20)])
def test_the_training_images_asked_leave_a_validation_image(need, fraction, n):
    assert _train_size(need, fraction) == n
