"""The training loop: learning, resume, divergence, run-folder identity, outputs, reloading."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cnnvit import config
from cnnvit.config import ConfigError
from cnnvit.datasets import Dataset
from cnnvit.errors import RunConflict, TrainingDiverged
from cnnvit.records import WeightsOrigin
from cnnvit.training import loop, setup
from cnnvit.training.losses import class_weights
from cnnvit.training.run import load_run

from helpers import Interrupted

OUTPUT_FILES = ["config.yaml", "data.json", "steps.csv", "epochs.csv", "metrics.json",
                "predictions.npz", "model.pt"]


def snapshot(folder):
    """{relative path: (bytes, mtime_ns)} of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def accuracy_from_predictions(run_dir):
    with np.load(run_dir / "predictions.npz") as f:
        return float((f["predictions"] == f["labels"]).mean()), {k: f[k] for k in f.files}


# --------------------------------------------------------------------------- (a) learning

def test_overfits_a_tiny_set(tmp_path, train_mod, make_cfg, tiny_ds):
    """32 images, tested on the same 32: the loop must drive accuracy to ~100%."""
    x, y = tiny_ds.train_images[:32], tiny_ds.train_labels[:32]
    ds = Dataset("tiny", tiny_ds.classes, x, y, x.copy(), y.copy(), "test", tiny_ds.mean,
                 tiny_ds.std)
    cfg = make_cfg({"train": {"epochs": 15, "batch_size": 8, "eval_every": 100}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=ds, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert m["test_accuracy"] >= 0.95, m["test_accuracy"]
    losses = pd.read_csv(out / "epochs.csv")["train_loss"]
    assert losses.iloc[-1] < 0.5 * losses.iloc[0]
    # eval_every=100 > epochs: only the last epoch is evaluated
    acc = pd.read_csv(out / "epochs.csv")["test_accuracy"]
    assert acc.isna().sum() == 14 and not np.isnan(acc.iloc[-1])


# --------------------------------------------------------------------------- (b) resume

@pytest.mark.parametrize("extra", [
    {"data": {"crop_padding": 4, "flip": True},
     "optim": {"name": "sgd", "lr": 0.05, "weight_decay": 5e-4},
     "sched": {"name": "cosine", "warmup_epochs": 1}},
    {"model": {"name": "test_vit_cifar", "drop_path": 0.1},
     "data": {"crop_padding": 2, "flip": True, "random_erasing": 0.5},
     "train": {"mixup": 0.8, "cutmix": 1.0, "grad_clip": 1.0, "label_smoothing": 0.1},
     "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},
     "sched": {"name": "onecycle"}},
], ids=["cnn-sgd-cosine", "vit-mixup-droppath"])
def test_resume_equals_uninterrupted(tmp_path, interrupt_after_epoch, train_mod, make_cfg, tiny_ds,
                                     extra):
    cfg = make_cfg({**extra, "train": {**extra.get("train", {}), "epochs": 3}})
    a, b = tmp_path / "a", tmp_path / "b"
    train_mod.train(cfg, a, dataset=tiny_ds, progress=False)

    # run B dies right after epoch 2's checkpoint and CSVs are written
    arm, disarm = interrupt_after_epoch
    arm(2)
    with pytest.raises(Interrupted):
        train_mod.train(cfg, b, dataset=tiny_ds, progress=False)
    disarm()

    assert train_mod.run_state(cfg, b) == "partial"
    assert not (b / "metrics.json").exists() and not (b / "model.pt").exists()
    ckpt = torch.load(b / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 2
    epochs_before = ckpt["epochs_log"]

    train_mod.train(cfg, b, dataset=tiny_ds, progress=False)  # resumes from checkpoint.pt
    assert not (b / "checkpoint.pt").exists()

    sa = torch.load(a / "model.pt", weights_only=True)
    sb = torch.load(b / "model.pt", weights_only=True)
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"tensors differ after resume: {different[:5]}"

    ma = json.loads((a / "metrics.json").read_text())
    mb = json.loads((b / "metrics.json").read_text())
    assert ma["test_accuracy"] == mb["test_accuracy"]
    assert ma["test"]["confusion_matrix"] == mb["test"]["confusion_matrix"]
    assert ma["steps"] == mb["steps"]
    assert mb["resumed_from_epoch"] == 2 and ma["resumed_from_epoch"] == 0
    # the resumed run really resumed: epochs 1-2 come from the checkpoint, not a retrain
    eb = pd.read_csv(b / "epochs.csv")
    assert len(eb) == 3
    np.testing.assert_allclose(eb["epoch_time_s"][:2], [r["epoch_time_s"] for r in epochs_before],
                               rtol=1e-5)
    # and the per-step losses match the uninterrupted run's
    la, lb = pd.read_csv(a / "steps.csv"), pd.read_csv(b / "steps.csv")
    assert la["step"].tolist() == lb["step"].tolist()
    np.testing.assert_array_equal(la["loss"].to_numpy(), lb["loss"].to_numpy())
    np.testing.assert_array_equal(la["lr"].to_numpy(), lb["lr"].to_numpy())
    _, pa = accuracy_from_predictions(a)
    _, pb = accuracy_from_predictions(b)
    np.testing.assert_array_equal(pa["logits"], pb["logits"])


# --------------------------------------------------------------------------- (c) divergence

def _nan_after(monkeypatch, n_calls):
    """Make the model return NaN logits from its (n_calls + 1)-th training-mode forward on."""
    real_create = setup.create_model
    calls = {"n": 0}

    def hook(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] > n_calls:
                return output * float("nan")
        return output

    def create(*args, **kwargs):
        model = real_create(*args, **kwargs)
        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(setup, "create_model", create)  # where the loop builds its model


def test_nan_in_epoch_two_keeps_epoch_one_checkpoint(tmp_path, monkeypatch, train_mod, make_cfg,
                                                     tiny_ds):
    cfg = make_cfg({"train": {"epochs": 3}})
    steps_per_epoch = len(tiny_ds.train_labels) // cfg.train.batch_size
    _nan_after(monkeypatch, steps_per_epoch)  # NaN from epoch 2's first step
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as exc:
        train_mod.train(cfg, out, dataset=tiny_ds, progress=False)
    msg = str(exc.value)
    assert "nan" in msg and "epoch 2" in msg
    assert "last good checkpoint (epoch 1)" in msg
    assert str(out / "checkpoint.pt") in msg
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    assert not (out / "metrics.json").exists() and not (out / "model.pt").exists()
    assert len(pd.read_csv(out / "epochs.csv")) == 1
    assert train_mod.run_state(cfg, out) == "partial"  # can be resumed (e.g. with a lower lr)


def test_nan_in_first_epoch_says_there_is_no_checkpoint(tmp_path, monkeypatch, train_mod, make_cfg,
                                                        tiny_ds):
    _nan_after(monkeypatch, 0)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="no checkpoint"):
        train_mod.train(make_cfg(), out, dataset=tiny_ds, progress=False)
    assert not (out / "checkpoint.pt").exists()
    assert not (out / "metrics.json").exists()


def test_huge_learning_rate_diverges(tmp_path, train_mod, make_cfg, tiny_ds):
    cfg = make_cfg({"optim": {"name": "sgd", "lr": 1e6}, "train": {"epochs": 2}})
    with pytest.raises(TrainingDiverged, match="Lower optim.lr"):
        train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_divergence_recorded_as_the_result_when_asked(tmp_path, monkeypatch, train_mod, make_cfg,
                                                      tiny_ds):
    """train.stop_on_nan=false (an ablation expected to fail): the run ends at the NaN, keeps the
    curves up to it, and its metrics say it diverged and where."""
    cfg = make_cfg({"train": {"epochs": 4, "stop_on_nan": False}})
    steps_per_epoch = len(tiny_ds.train_labels) // cfg.train.batch_size
    _nan_after(monkeypatch, steps_per_epoch + 2)  # NaN from epoch 2's third step
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert m["diverged"] == {"epoch": 2, "step": steps_per_epoch + 3, "loss": "nan"}
    assert m["epochs"] == 4 and m["epochs_run"] == 2
    epochs = pd.read_csv(out / "epochs.csv")
    assert len(epochs) == 2 and np.isnan(epochs["train_loss"].iloc[1])
    assert train_mod.run_state(cfg, out) == "complete"  # not retrained on the next call


# --------------------------------------------------------------------------- (d) identity

def test_other_config_raises_run_conflict_and_touches_nothing(tmp_path, monkeypatch, train_mod,
                                                              make_cfg, tiny_ds):
    cfg = make_cfg()
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    before = snapshot(out)
    other = make_cfg({"optim": {"lr": 0.01}})
    with pytest.raises(RunConflict) as exc:
        train_mod.train(other, out, dataset=tiny_ds, progress=False)
    assert "optim.lr" in str(exc.value) and str(out) in str(exc.value)
    assert snapshot(out) == before
    assert train_mod.run_state(other, out) == "conflict"


def test_complete_run_is_skipped(tmp_path, monkeypatch, train_mod, make_cfg, tiny_ds):
    cfg = make_cfg()
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    before = snapshot(out)

    def no_training(*a, **k):
        raise AssertionError("a complete run was trained again")

    monkeypatch.setattr(loop, "_train", no_training)
    monkeypatch.setattr(loop, "dataset_from_config", no_training)
    assert train_mod.train(cfg, out, progress=False) == out
    # keys that do not change what is computed do not make a conflict
    same = make_cfg({"train": {"eval_batch_size": 7, "compile": False}, "data": {"root": "/x"}})
    assert train_mod.run_state(same, out) == "complete"
    assert train_mod.train(same, out, progress=False) == out
    assert snapshot(out) == before


def test_run_state_new_for_empty_folder(tmp_path, train_mod, make_cfg):
    assert train_mod.run_state(make_cfg(), tmp_path / "nothing") == "new"
    (tmp_path / "empty").mkdir()
    assert train_mod.run_state(make_cfg(), tmp_path / "empty") == "new"


# --------------------------------------------------------------------------- (e) outputs

def test_files_written_and_consistent(finished_run, train_mod, tiny_ds):
    out, cfg = finished_run
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    assert not (out / "checkpoint.pt").exists()
    m = json.loads((out / "metrics.json").read_text())
    acc, pred = accuracy_from_predictions(out)
    assert m["test_accuracy"] == pytest.approx(acc, abs=1e-12)
    assert m["test"]["accuracy"] == m["test_accuracy"]
    np.testing.assert_array_equal(pred["labels"], tiny_ds.test_labels)
    np.testing.assert_array_equal(pred["predictions"], pred["logits"].astype(np.float32).argmax(1))
    assert pred["logits"].shape == (len(tiny_ds.test_labels), 10)
    assert np.sum(m["test"]["confusion_matrix"]) == len(tiny_ds.test_labels)
    assert m["epochs"] == 2 and m["model"] == "test_resnet_cifar"
    steps_per_epoch = len(tiny_ds.train_labels) // cfg.train.batch_size
    assert m["steps"] == 2 * steps_per_epoch
    assert m["dataset"]["n_train"] == 96 and m["dataset"]["n_test"] == 40
    # the config on disk is the config that ran
    assert config.from_dict(yaml.safe_load((out / "config.yaml").read_text())) == cfg
    assert "# default:" in (out / "config.yaml").read_text()
    data = json.loads((out / "data.json").read_text())
    assert data["n_train"] == 96 and data["native_size"] == [32, 32]
    assert data["mean"] == pytest.approx(list(tiny_ds.mean))
    steps = pd.read_csv(out / "steps.csv")
    assert steps["step"].tolist() == list(range(1, 2 * steps_per_epoch + 1))
    assert set(steps["epoch"]) == {1, 2}
    assert (steps["lr"] == cfg.optim.lr).all()  # constant schedule
    epochs = pd.read_csv(out / "epochs.csv")
    assert epochs["epoch"].tolist() == [1, 2]
    assert epochs["test_accuracy"].iloc[-1] == pytest.approx(m["test_accuracy"], abs=1e-6)
    assert (out / "train.log").exists()


@pytest.fixture
def log_levels():
    """Set logger levels for one test (through setLevel, which clears the loggers' caches)."""
    import logging

    saved = {}

    def set_level(name, level):
        logger = logging.getLogger(name)
        saved.setdefault(name, logger.level)
        logger.setLevel(level)

    yield set_level
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_train_log_records_epochs_when_logging_is_on(tmp_path, log_levels, train_mod, make_cfg,
                                                     tiny_ds):
    import logging

    log_levels("cnnvit", logging.INFO)  # as the CLI's basicConfig(level=INFO) does
    out = train_mod.train(make_cfg({"train": {"epochs": 2}}), tmp_path / "run", dataset=tiny_ds,
                          progress=False)
    text = (out / "train.log").read_text()
    assert "epoch 1/2" in text and "epoch 2/2" in text and "test accuracy" in text


def test_train_log_records_epochs_from_python(tmp_path, log_levels, train_mod, make_cfg, tiny_ds):
    import logging

    log_levels("", logging.WARNING)  # Python's default
    log_levels("cnnvit", logging.NOTSET)
    out = train_mod.train(make_cfg(), tmp_path / "run", dataset=tiny_ds, progress=False)
    assert "epoch 1/1" in (out / "train.log").read_text()


def test_lr_schedule_logged_per_step(tmp_path, train_mod, make_cfg, tiny_ds):
    from cnnvit.training.schedules import lr_at

    cfg = make_cfg({"sched": {"name": "cosine", "warmup_epochs": 1}, "train": {"epochs": 2}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    steps = pd.read_csv(out / "steps.csv")
    total = len(steps)
    per_epoch = total // 2
    want = [lr_at(s, total, cfg.optim.lr, "cosine", warmup_steps=per_epoch) for s in range(total)]
    np.testing.assert_allclose(steps["lr"], want, rtol=1e-5)


# --------------------------------------------------------------------------- (f) reloading

def test_load_run_predict_reproduces_metrics(finished_run, tiny_ds):
    out, cfg = finished_run
    run = load_run(out, device="cpu")
    assert run.complete and run.config == cfg and run.classes == tiny_ds.classes
    logits = run.predict(tiny_ds.test_images)
    assert logits.shape == (len(tiny_ds.test_labels), 10)
    acc = float((logits.argmax(1) == tiny_ds.test_labels).mean())
    assert acc == run.metrics.test_accuracy
    saved = run.predictions()["logits"].astype(np.float32)
    np.testing.assert_allclose(logits, saved, rtol=1e-2, atol=1e-2)  # saved as float16
    assert len(run.epochs) == 2 and len(run.steps) == run.metrics.steps
    assert "complete" in repr(run)


def test_weights_record_is_kept_as_data(tmp_path, monkeypatch, train_mod, make_cfg, tiny_ds):
    """Whatever prepare_model says about the weights goes into metrics.json unchanged, and
    load_run gives it back as it is (no sentence to parse)."""
    record = {"kind": "run", "source": "/elsewhere/run", "data": "synthetic", "model": "test_resnet_cifar",
              "run": "pretrain", "label": "pretrained on synthetic by this project (test_resnet_cifar, run pretrain)"}
    real = setup.prepare_model
    origin = WeightsOrigin.from_json(record)
    monkeypatch.setattr(setup, "prepare_model", lambda model, cfg: (real(model, cfg)[0], origin))
    out = train_mod.train(make_cfg(), tmp_path / "run", dataset=tiny_ds, progress=False)
    assert json.loads((out / "metrics.json").read_text())["weights"] == record
    assert load_run(out, device="cpu").weights == origin and origin.to_json() == record


def test_predict_rejects_wrong_images(finished_run, tiny_ds):
    run = load_run(finished_run[0], device="cpu")
    with pytest.raises(ValueError, match="16x16"):
        run.predict(np.zeros((2, 16, 16, 3), np.uint8))
    with pytest.raises(ValueError):
        run.predict(tiny_ds.test_images.astype(np.float32))
    with pytest.raises(ValueError):
        run.predict(tiny_ds.test_images[..., :1])


def test_load_run_of_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path)


def test_resized_run_predicts_at_native_size(tmp_path, train_mod, make_cfg, tiny_ds):
    cfg = make_cfg({"model": {"name": "test_vit"}, "data": {"image_size": 64}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    run = load_run(out, device="cpu")
    acc = float((run.predict(tiny_ds.test_images).argmax(1) == tiny_ds.test_labels).mean())
    assert acc == run.metrics.test_accuracy


def test_flip_test_time_augmentation_averages_each_image_and_its_mirror(tmp_path, train_mod, make_cfg,
                                                                        tiny_ds):
    """train.eval_flip: the saved test logits (and predict's) are the mean of the model's logits
    on the images and on their mirror images, not those of the images alone."""
    cfg = make_cfg({"train": {"epochs": 1, "eval_flip": True}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    run = load_run(out, device="cpu")
    x = torch.from_numpy(tiny_ds.test_images)
    prep = run.preprocess()
    with torch.no_grad():
        plain = run.model(prep.eval(x)).float().numpy()
        mirror = run.model(prep.eval(x.flip(2))).float().numpy()  # N x H x W x 3: dim 2 is the width
    assert np.abs(plain - mirror).max() > 1e-3  # the mirror images give other logits
    np.testing.assert_allclose(run.predict(tiny_ds.test_images), (plain + mirror) / 2, rtol=1e-4, atol=1e-5)
    saved = run.predictions()["logits"].astype(np.float32)
    np.testing.assert_allclose(saved, (plain + mirror) / 2, rtol=1e-2, atol=1e-2)  # saved as float16
    acc = float((((plain + mirror) / 2).argmax(1) == tiny_ds.test_labels).mean())
    assert acc == run.metrics.test_accuracy


# --------------------------------------------------------------------------- (g) other paths

def test_mixup_cutmix_accum_and_clip(tmp_path, monkeypatch, train_mod, make_cfg, tiny_ds):
    calls = []
    real_clip = torch.nn.utils.clip_grads_with_norm_

    def clip(params, max_norm, total_norm, *a, **k):
        calls.append((max_norm, float(total_norm)))
        return real_clip(params, max_norm, total_norm, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grads_with_norm_", clip)
    cfg = make_cfg({"train": {"mixup": 0.8, "cutmix": 1.0, "grad_accum": 2, "grad_clip": 0.5,
                              "label_smoothing": 0.1, "epochs": 1},
                    "data": {"policy": "randaugment", "random_erasing": 0.25, "crop_padding": 2}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    micro = len(tiny_ds.train_labels) // cfg.train.batch_size  # 6
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == micro // 2
    assert len(pd.read_csv(out / "steps.csv")) == micro // 2
    assert [c[0] for c in calls] == [0.5] * (micro // 2)
    steps = pd.read_csv(out / "steps.csv")
    assert np.isfinite(steps["loss"]).all()
    # the logged gradient norm is the one measured before clipping
    assert steps["grad_norm"].tolist() == pytest.approx([c[1] for c in calls], rel=1e-5)
    assert (steps["grad_norm"] > 0).all()


def test_grad_accum_leftover_micro_batches_are_dropped(tmp_path, train_mod, make_cfg, tiny_ds):
    cfg = make_cfg({"train": {"grad_accum": 4, "epochs": 2}})  # 6 micro-batches: 1 step each
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    assert json.loads((out / "metrics.json").read_text())["steps"] == 2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_grad_accum_larger_than_epoch_fails_cleanly(tmp_path, train_mod, make_cfg, tiny_ds):
    cfg = make_cfg({"train": {"grad_accum": 8}})  # 96 images / 16 = 6 micro-batches < 8
    try:
        train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    except ConfigError:
        return
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["steps"] >= 1


def test_input_checks_fail_before_any_file(tmp_path, train_mod, make_cfg, tiny_ds):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="data.image_size=64"):
        train_mod.train(make_cfg({"model": {"name": "test_vit"}}), out, dataset=tiny_ds,
                        progress=False)
    with pytest.raises(ConfigError, match="even"):
        train_mod.train(make_cfg({"train": {"mixup": 0.2, "batch_size": 15}}), out,
                        dataset=tiny_ds, progress=False)
    assert not out.exists()
    with pytest.raises(ConfigError, match="batch_size"):
        train_mod.train(make_cfg({"train": {"batch_size": 500}}), out, dataset=tiny_ds,
                        progress=False)
    assert not (out / "metrics.json").exists()


def test_validation_split_is_evaluated_each_epoch_and_test_once(tmp_path, train_mod, make_cfg):
    cfg = make_cfg({"data": {"val_fraction": 0.25}, "train": {"epochs": 3}})
    out = train_mod.train(cfg, tmp_path / "run", progress=False)
    epochs = pd.read_csv(out / "epochs.csv")
    assert epochs["val_accuracy"].notna().all() and epochs["val_loss"].notna().all()
    assert epochs["test_accuracy"].isna().tolist() == [True, True, False]  # test read once, at the end
    m = json.loads((out / "metrics.json").read_text())
    assert m["dataset"]["n_train"] == 72 and m["dataset"]["n_val"] == 24 and m["dataset"]["n_test"] == 40
    assert m["val_accuracy"] == epochs["val_accuracy"].iloc[-1]
    assert m["best_val_accuracy"] == epochs["val_accuracy"].max()
    assert m["test_accuracy"] == epochs["test_accuracy"].iloc[-1]
    assert json.loads((out / "data.json").read_text())["n_val"] == 24


def test_model_no_weight_decay_is_honoured(train_mod, make_cfg):
    """timm's convention: a model's no_weight_decay() names (T2T-ViT: its cls token) get none."""
    from cnnvit.models import create_model

    model = create_model("test_t2t_vit", 10)
    opt = setup.make_optimizer(make_cfg({"optim": {"name": "adamw", "weight_decay": 0.05}}), model)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(model.cls_token) not in decayed
    assert id(model.head.weight) in decayed and id(model.head.bias) not in decayed


def test_run_saved_before_a_key_existed_is_still_complete(tmp_path, train_mod, make_cfg, tiny_ds):
    """A config.yaml written before a key was added holds that key's default: same run."""
    import yaml

    cfg = make_cfg()
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    del saved["train"]["stop_on_nan"], saved["data"]["rrc_min_scale"]
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    assert train_mod.run_state(cfg, out) == "complete"
    assert train_mod.run_state(make_cfg({"train": {"stop_on_nan": False}}), out) == "conflict"


@pytest.mark.parametrize("batch_size,grad_accum", [(16, 2), (8, 4)])
def test_grad_accum_makes_the_same_update_as_one_big_batch(tmp_path, train_mod, make_cfg, tiny_ds,
                                                           batch_size, grad_accum):
    """K micro-batches accumulate to the step of one batch K times larger (BN-free model, no
    augmentation). SGD, unlike Adam, is sensitive to the gradient's scale, so a loss not divided
    by K (a K-times larger step) shows; measured difference about 2e-8, tolerance 1e-6. In fp32:
    bf16 autocast rounds one batch and K micro-batches apart by ~1e-4."""
    base = {"model": {"name": "test_vit_cifar"}, "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9}}
    big = make_cfg({**base, "train": {"epochs": 2, "batch_size": 32, "amp": False}})
    accum = make_cfg({**base, "train": {"epochs": 2, "batch_size": batch_size, "grad_accum": grad_accum,
                                        "amp": False}})
    a = train_mod.train(big, tmp_path / "big", dataset=tiny_ds, progress=False)
    b = train_mod.train(accum, tmp_path / "accum", dataset=tiny_ds, progress=False)
    la, lb = pd.read_csv(a / "steps.csv"), pd.read_csv(b / "steps.csv")
    assert len(la) == len(lb) == 6
    np.testing.assert_allclose(lb["loss"], la["loss"], rtol=1e-5)
    np.testing.assert_allclose(lb["grad_norm"], la["grad_norm"], rtol=1e-5)
    wa, wb = (torch.load(d / "model.pt", weights_only=True) for d in (a, b))
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert worst < 1e-6, f"accumulated weights differ from the big batch's by up to {worst:.2e}"


def test_early_stopping_tests_the_best_validation_epoch(tmp_path, train_mod, make_cfg, tiny_ds):
    """A run that stops improving on validation stops after `patience` evaluations, and its test
    numbers and saved weights are the best epoch's (lr ~0: validation accuracy never improves)."""
    from cnnvit.datasets import hold_out_validation

    ds = hold_out_validation(tiny_ds, 0.25, 0)
    cfg = make_cfg({"model": {"name": "test_vit_cifar"}, "data": {"val_fraction": 0.25},
                    "train": {"epochs": 6, "early_stop_patience": 2},
                    "optim": {"name": "adamw", "lr": 1e-12}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=ds, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert m["early_stopping"] == {"patience": 2, "best_epoch": 1, "stopped_after_epoch": 3}
    assert m["epochs_run"] == 3 and len(pd.read_csv(out / "epochs.csv")) == 3
    run = load_run(out, device="cpu")
    assert float((run.predict(ds.test_images).argmax(1) == ds.test_labels).mean()) == m["test_accuracy"]


def test_early_stopping_needs_a_validation_split(make_cfg):
    with pytest.raises(config.ConfigError, match="validation split"):
        make_cfg({"train": {"early_stop_patience": 3}})


def test_model_ema_is_what_gets_evaluated_and_saved(tmp_path, train_mod, make_cfg, tiny_ds):
    plain = train_mod.train(make_cfg({"train": {"epochs": 2}}), tmp_path / "plain", dataset=tiny_ds,
                            progress=False)
    ema = train_mod.train(make_cfg({"train": {"epochs": 2, "model_ema": 0.9}}), tmp_path / "ema",
                          dataset=tiny_ds, progress=False)
    w_plain, w_ema = (torch.load(d / "model.pt", weights_only=True) for d in (plain, ema))
    assert not torch.equal(w_plain["fc.weight"], w_ema["fc.weight"])  # same run, averaged weights
    run = load_run(ema, device="cpu")
    assert run.metrics.model_ema == 0.9
    assert float((run.predict(tiny_ds.test_images).argmax(1) == tiny_ds.test_labels).mean()) == \
        run.metrics.test_accuracy


def test_efficiency_figures_are_recorded(tmp_path, train_mod, make_cfg, tiny_ds):
    from cnnvit.models import count_flops

    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10))
    assert count_flops(lin, 4) == 2 * 48 * 10  # a multiply-add is 2 operations
    wide = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 6, 10))
    assert count_flops(wide, (4, 6)) == 2 * 72 * 10  # (height, width) of non-square data
    out = train_mod.train(make_cfg(), tmp_path / "run", dataset=tiny_ds, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert m["gflops_per_image"] > 0 and m["peak_gpu_memory_gb"] is None  # CPU run
    assert m["checkpoint_mb"] == pytest.approx((out / "model.pt").stat().st_size / 2**20)


def test_class_weights_balance_an_imbalanced_training_split(tmp_path, monkeypatch, train_mod, make_cfg, tiny_ds):
    w = class_weights(np.array([0, 0, 0, 1]), 2)
    assert w.tolist() == [4 / 6, 2.0] and (np.bincount([0, 0, 0, 1]) * w).tolist() == [2.0, 2.0]
    seen = []
    real = torch.nn.functional.cross_entropy

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weight"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", spy)
    train_mod.train(make_cfg({"train": {"class_weights": True}}), tmp_path / "run", dataset=tiny_ds, progress=False)
    expected = class_weights(tiny_ds.train_labels, len(tiny_ds.classes))
    assert seen[0] is not None and np.allclose(seen[0].numpy(), expected)
    with pytest.raises(config.ConfigError, match="not with mixup"):
        make_cfg({"train": {"class_weights": True, "mixup": 0.8}})
