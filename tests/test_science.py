"""Tests that fail when the science breaks, not only when the code crashes.

Each test instruments what the training loop actually read or did (which split an evaluation
used, which seeds an epoch drew from, what the augmentation did to each image, which learning
rate each optimizer step used) and compares it with what the run reports. A plausible one-line
bug (the wrong split, a lost piece of resume state, a dropped option, a schedule stretched by the
accumulation factor) makes one of them fail with a message naming it.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from cnnvit import config as config_mod
from cnnvit.datasets import Dataset, hold_out_validation
from cnnvit.training import epoch as epoch_mod
from cnnvit.training import evaluate
from cnnvit.training.augment import Preprocess
from cnnvit.training.run import load_run
from cnnvit.training.schedules import lr_at

from helpers import Interrupted, deep_merge, tiny_dataset


def _fingerprint(images, labels=None) -> str:
    """A content hash of an image array (and labels), to tell the splits apart by what they hold."""
    h = hashlib.sha1(np.ascontiguousarray(np.asarray(images)).tobytes())
    if labels is not None:
        h.update(np.ascontiguousarray(np.asarray(labels)).tobytes())
    return h.hexdigest()[:12]


def _split_names(ds: Dataset) -> tuple[dict[str, str], dict[str, str]]:
    """{image fingerprint: split} and {label fingerprint: split} for the data set's three splits."""
    images = {_fingerprint(getattr(ds, f"{s}_images")): s for s in ("train", "val", "test")}
    labels = {_fingerprint(getattr(ds, f"{s}_labels")): s for s in ("train", "val", "test")}
    return images, labels


@pytest.fixture
def record_evaluations(monkeypatch):
    """Wrap the loop's ``evaluate_split``: ``calls`` gets (split of the images, split of the labels,
    loss, accuracy) for every evaluation, the splits identified by content."""
    calls: list[tuple[str, str, float, float]] = []
    real = evaluate.evaluate_split
    known: dict[str, tuple[dict, dict]] = {}

    def watch(ds: Dataset) -> None:
        known["ds"] = _split_names(ds)

    def spy(model, images, labels, prep, tc, device):
        logits, loss, acc = real(model, images, labels, prep, tc, device)
        by_image, by_label = known["ds"]
        calls.append((by_image.get(_fingerprint(images.cpu().numpy()), "unknown images"),
                      by_label.get(_fingerprint(labels), "unknown labels"), loss, acc))
        return logits, loss, acc

    monkeypatch.setattr(evaluate, "evaluate_split", spy)  # every evaluation of the loop calls it there
    return watch, calls


def _val_dataset(fraction: float = 0.25) -> Dataset:
    return hold_out_validation(tiny_dataset(), fraction, 0)


# --------------------------------------------------------------------------- 1. split separation

@pytest.mark.parametrize("early_stop", [None, 3], ids=["plain", "early-stopping"])
def test_every_evaluation_reads_the_split_it_reports(tmp_path, train_mod, make_cfg, record_evaluations,
                                                     early_stop):
    """Per-epoch and per-step validation numbers come from the validation split, the test
    numbers from the test split (once, at the end), and never images of one with labels of another."""
    watch, calls = record_evaluations
    ds = _val_dataset()
    watch(ds)
    cfg = make_cfg({"data": {"val_fraction": 0.25},
                    "train": {"epochs": 3, "val_every_steps": 2, "early_stop_patience": early_stop}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=ds, progress=False)

    mixed = [(i, lab) for i, lab, _, _ in calls if i != lab]
    assert not mixed, f"an evaluation paired one split's images with another's labels: {mixed}"
    splits = [i for i, _, _, _ in calls]
    assert "train" not in splits, f"an evaluation read the training split: {splits}"
    assert splits.count("test") == 1 and splits[-1] == "test", \
        f"the test split must be read exactly once, after training; reads in order: {splits}"

    epochs = pd.read_csv(out / "epochs.csv")
    steps = pd.read_csv(out / "val_steps.csv")
    expected = []  # validation reads in loop order: the step-level ones, then the epoch's own
    for e in epochs["epoch"]:
        expected += steps.loc[steps["epoch"] == e, "val_accuracy"].tolist()
        expected.append(epochs.loc[epochs["epoch"] == e, "val_accuracy"].item())
    val_reads = [acc for s, _, _, acc in calls if s == "val"]
    assert len(val_reads) == len(expected), (len(val_reads), len(expected))
    np.testing.assert_allclose(val_reads, expected, rtol=1e-5,
                               err_msg="the validation numbers written are not the validation split's")
    m = json.loads((out / "metrics.json").read_text())
    assert m["test_accuracy"] == pytest.approx(calls[-1][3], abs=1e-6)
    assert m["best_val_accuracy"] == pytest.approx(epochs["val_accuracy"].max(), rel=1e-5)


@pytest.mark.parametrize("model", ["test_resnet_cifar", "test_vit_cifar"])
def test_early_stopping_decides_on_validation_and_tests_the_best_epochs_weights(
        tmp_path, train_mod, make_cfg, record_evaluations, model):
    """The best epoch is the first maximum of the validation accuracy (a tie is no improvement),
    the run stops `patience` evaluations after it, and the test numbers are that epoch's weights'."""
    watch, calls = record_evaluations
    ds = _val_dataset(0.3)
    watch(ds)
    # a large plain-SGD step: validation accuracy goes up and down, so "best" is not "last"
    # (in fp32, so that the curve does not depend on the CPU's bf16 kernels)
    cfg = make_cfg({"model": {"name": model}, "data": {"val_fraction": 0.3},
                    "train": {"epochs": 8, "batch_size": 8, "early_stop_patience": 2,
                              "keep_epoch_weights": True, "amp": False},  # fp32: bf16 kernels differ by CPU
                    "optim": {"name": "sgd", "lr": 0.3, "momentum": 0.0}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=ds, progress=False)
    epochs = pd.read_csv(out / "epochs.csv")
    val = epochs["val_accuracy"].to_numpy()
    best = int(np.argmax(val)) + 1  # first maximum
    m = json.loads((out / "metrics.json").read_text())
    stopped = best + 2 if best + 2 < 8 else None
    assert m["early_stopping"] == {"patience": 2, "best_epoch": best, "stopped_after_epoch": stopped}, \
        (val.tolist(), m["early_stopping"])
    assert len(val) == (stopped or 8), (val.tolist(), m["early_stopping"])
    assert 1 < best < len(val), f"scenario not informative: val accuracy {val.tolist()}"
    assert [s for s, _, _, _ in calls].count("val") == len(val)

    # the tested weights are the best epoch's (kept by keep_epoch_weights), not the last epoch's
    run = load_run(out, device="cpu")
    weights = torch.load(out / "epochs" / f"{best:03d}.pt", weights_only=True)
    saved = torch.load(out / "model.pt", weights_only=True)
    assert all(torch.equal(weights[k], saved[k]) for k in saved), "model.pt is not the best epoch's"
    acc = float((run.predict(ds.test_images).argmax(1) == ds.test_labels).mean())
    assert m["test_accuracy"] == acc


def test_majority_baseline_comes_from_the_training_split(tmp_path, train_mod, make_cfg):
    """Class 0 is the training majority, class 1 the test one, class 2 the validation one: the
    baseline is the test share of class 0."""
    base = tiny_dataset()
    rng = np.random.default_rng(0)
    y_train = np.where(rng.random(96) < 0.6, 0, rng.integers(1, 10, 96)).astype(np.int64)
    y_test = np.array([1] * 20 + [0] * 4 + list(range(2, 10)) * 2, dtype=np.int64)
    ds = Dataset("skewed", base.classes, base.train_images, y_train, base.test_images, y_test,
                 "test", base.mean, base.std)
    ds = hold_out_validation(ds, 0.25, 0)
    ds.val_labels = np.full_like(ds.val_labels, 2)
    assert np.bincount(ds.train_labels).argmax() == 0
    out = train_mod.train(make_cfg({"data": {"val_fraction": 0.25}}), tmp_path / "run", dataset=ds,
                          progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert m["majority_baseline"] == pytest.approx(4 / 40), \
        f"baseline {m['majority_baseline']}: 0.1 is the training majority's share of the test split"


# --------------------------------------------------------------------------- 2. resume state

RESUME_RICH = {
    "model": {"name": "test_vit_cifar"},
    "data": {"val_fraction": 0.25, "crop_padding": 2, "flip": True, "policy": "randaugment",
             "random_erasing": 0.3},
    "train": {"epochs": 4, "model_ema": 0.9, "early_stop_patience": 3, "val_every_steps": 2},
    "optim": {"name": "adamw", "lr": 2e-3, "weight_decay": 0.05},
    "sched": {"name": "cosine", "warmup_epochs": 1},
}
# lr ~0: validation accuracy never improves, so epoch 1 stays the best and the run stops after 3;
# a resume that forgot the best epoch would take a later one
RESUME_EARLY_STOP = {"model": {"name": "test_vit_cifar"}, "data": {"val_fraction": 0.25},
                     "train": {"epochs": 6, "early_stop_patience": 2},
                     "optim": {"name": "adamw", "lr": 1e-12}}
TIMING = ("epoch_time_s", "images_per_s", "train_time_s", "wall_time_s", "train_images_per_s",
          "finished", "resumed_from_epoch")


@pytest.mark.parametrize("extra,interrupt", [(RESUME_RICH, 2), (RESUME_EARLY_STOP, 1)],
                         ids=["ema-policies-step-validation", "early-stop-best-epoch"])
def test_resume_with_ema_early_stopping_and_step_validation_equals_uninterrupted(
        tmp_path, train_mod, make_cfg, interrupt_after_epoch, extra, interrupt):
    """Everything a run carries across epochs (EMA weights, the best epoch so far, the step-level
    validation log, the reseeded augmentation streams) survives an interruption: the resumed
    run's files equal the uninterrupted run's, timings apart."""
    cfg = make_cfg(extra)
    a, b = tmp_path / "a", tmp_path / "b"
    train_mod.train(cfg, a, name="run", dataset=_val_dataset(), progress=False)
    arm, disarm = interrupt_after_epoch
    arm(interrupt)
    with pytest.raises(Interrupted):
        train_mod.train(cfg, b, name="run", dataset=_val_dataset(), progress=False)
    disarm()
    train_mod.train(cfg, b, name="run", dataset=_val_dataset(), progress=False)

    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert mb["resumed_from_epoch"] == interrupt
    diff = {k: (ma[k], mb.get(k)) for k in ma if k not in TIMING and ma[k] != mb.get(k)}
    assert not diff, f"metrics.json differs after resume: {diff}"
    for csv in ("steps.csv", "epochs.csv", "val_steps.csv"):
        if not (a / csv).exists():
            continue
        ca, cb = (pd.read_csv(d / csv).drop(columns=list(TIMING), errors="ignore") for d in (a, b))
        pd.testing.assert_frame_equal(ca, cb, obj=csv)
    wa, wb = (torch.load(d / "model.pt", weights_only=True) for d in (a, b))
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"saved weights differ after resume: {different[:5]}"


def _perturbed(value, key: str):
    """Another valid-looking value for a config key, to test whether the key is part of a run's identity."""
    if key in config_mod.choices():
        return next(c for c in config_mod.choices()[key] if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.125
    if isinstance(value, str):
        return value + "_other"
    return 2  # None: any set value differs


# the keys that may differ between a run on disk and the config asking for it: where files lie,
# how the work is executed, and what is recorded beside the results. Every other key is identity.
NOT_IDENTITY = {"data.root", "data.download", "device", "train.compile", "train.eval_batch_size",
                "model.pretrained_path", "train.tensorboard", "train.wandb", "train.keep_epoch_weights",
                # where the training split lives (the same batches either way), where the machines meet
                "data.on_device", "train.rdzv_endpoint", "train.rdzv_id"}


def test_every_key_but_location_and_recording_is_part_of_a_runs_identity(tmp_path, train_mod,
                                                                        finished_run):
    """Change any one key of a finished run's config: the run is a conflict (a different
    experiment) unless the key only says where files lie, how work runs or what is recorded."""
    out, cfg = finished_run
    flat = config_mod.flatten(cfg.to_dict())
    wrong = []
    for key, value in flat.items():
        changed = config_mod.flatten(cfg.to_dict())
        changed[key] = _perturbed(value, key)
        nested: dict = {}
        for k, v in changed.items():
            section, _, leaf = k.rpartition(".")
            (nested.setdefault(section, {}) if section else nested)[leaf] = v
        state = "conflict" if train_mod.config_differences(cfg.to_dict(), nested) else "same run"
        expected = "same run" if key in NOT_IDENTITY else "conflict"
        if state != expected:
            wrong.append(f"{key}: {state}, expected {expected}")
    assert not wrong, "run identity is wrong for: " + "; ".join(wrong)
    assert train_mod.run_state(cfg, out) == "complete"


# --------------------------------------------------------------------------- 3. augmentation wiring

@pytest.fixture
def record_batches(monkeypatch):
    """Wrap the loop's batch order and preprocessing: ``epochs`` gets, per epoch, the list of
    (indices, uint8 input batch, preprocessed output, the same batch through the eval path)."""
    epochs: list[list] = []
    real_indices, real_train = epoch_mod.batch_indices, Preprocess.train

    def indices(*args, **kwargs):
        epochs.append([])
        for idx in real_indices(*args, **kwargs):
            epochs[-1].append([idx.clone()])
            yield idx

    def train(self, images, gen):
        out = real_train(self, images, gen)
        epochs[-1][-1] += [images.clone(), out.detach().clone(), self.eval(images)]
        return out

    monkeypatch.setattr(epoch_mod, "batch_indices", indices)  # where the epoch draws its batches
    monkeypatch.setattr(Preprocess, "train", train)
    return epochs


def _changed_share(epochs) -> float:
    """Share of training images that the random path changed (against the deterministic path)."""
    changed = [((out - ref).abs().flatten(1).amax(1) > 1e-5) for e in epochs for _, _, out, ref in e]
    return float(torch.cat(changed).float().mean())


@pytest.mark.parametrize("data,low,high", [
    ({}, 0.0, 0.0),
    ({"flip": True}, 0.35, 0.65),
    ({"random_erasing": 0.5}, 0.35, 0.65),
    ({"random_erasing": 1.0}, 1.0, 1.0),
    ({"crop_padding": 4}, 0.9, 1.0),
    ({"policy": "autoaugment"}, 0.5, 1.0),
    ({"policy": "randaugment"}, 0.5, 1.0),
    ({"color_jitter": 0.4}, 0.9, 1.0),
], ids=["none", "flip", "erasing-0.5", "erasing-1", "crop", "autoaugment", "randaugment", "jitter"])
def test_each_augmentation_setting_reaches_the_training_batches(tmp_path, train_mod, make_cfg,
                                                                record_batches, data, low, high):
    """The share of training images changed by the random path matches the setting (binomial
    bounds over 192 images), and evaluation never augments."""
    cfg = make_cfg({"data": data, "train": {"epochs": 2}})
    train_mod.train(cfg, tmp_path / "run", dataset=tiny_dataset(), progress=False)
    share = _changed_share(record_batches)
    assert low <= share <= high, f"{data}: {share:.2f} of training images changed, expected {low}-{high}"


@pytest.mark.parametrize("policy,op", [("autoaugment", "AutoAugment"), ("randaugment", "RandAugment")])
def test_the_named_policy_is_the_one_applied(tmp_path, train_mod, make_cfg, monkeypatch, policy, op):
    """data.policy picks torchvision's op of that name, once per group of images."""
    from torchvision.transforms import v2

    used: list[str] = []
    for name in ("AutoAugment", "RandAugment"):
        real = getattr(v2, name)
        monkeypatch.setattr(v2, name, type(name, (real,), {
            "forward": lambda self, *a, _n=name, _r=real: (used.append(_n), _r.forward(self, *a))[1]}))
    cfg = make_cfg({"data": {"policy": policy, "policy_group": 4}, "train": {"epochs": 1}})
    train_mod.train(cfg, tmp_path / "run", dataset=tiny_dataset(), progress=False)
    assert set(used) == {op}, f"data.policy={policy} applied {sorted(set(used))}"
    assert len(used) == 96 // 4, f"{len(used)} policy draws for 96 images in groups of 4"


def _flip_pattern(epoch) -> list[bool]:
    """For each batch position of an epoch, whether the image there was mirrored."""
    pattern = []
    for _, images, out, ref in epoch:
        mirrored = (out - ref.flip(-1)).abs().flatten(1).amax(1) < 1e-5
        pattern += mirrored.tolist()
    return pattern


def test_data_order_and_augmentation_are_reseeded_every_epoch_from_separate_seeds(
        tmp_path, train_mod, make_cfg, record_batches):
    """Each epoch draws a new order and new flips; train.aug_seed changes the flips but not the
    order, and seed changes the order; the same seeds repeat both exactly."""
    def run(name: str, extra: dict) -> tuple[list[list[int]], list[list[bool]]]:
        record_batches.clear()
        cfg = make_cfg(deep_merge({"data": {"flip": True}, "train": {"epochs": 3}}, extra))
        train_mod.train(cfg, tmp_path / name, dataset=tiny_dataset(), progress=False)
        orders = [torch.cat([b[0] for b in e]).tolist() for e in record_batches]
        return orders, [_flip_pattern(e) for e in record_batches]

    orders, flips = run("a", {})
    assert len(orders) == 3
    assert orders[0] != orders[1] != orders[2], "the data order repeats from one epoch to the next"
    assert flips[0] != flips[1] != flips[2], "the flips by batch position repeat from one epoch to the next"
    assert all(0.3 < np.mean(f) < 0.7 for f in flips), [np.mean(f) for f in flips]

    again = run("again", {})
    assert again == (orders, flips), "the same seeds did not repeat the same order and flips"
    aug = run("aug", {"train": {"aug_seed": 123}})
    assert aug[0] == orders, "train.aug_seed changed the data order (it must be a separate stream)"
    assert aug[1] != flips, "train.aug_seed did not change the augmentation"
    seeded = run("seed", {"seed": 1})
    assert seeded[0] != orders, "seed did not change the data order"


def test_erasing_draws_anew_every_epoch(tmp_path, train_mod, make_cfg, record_batches):
    """Random erasing (like the policies and dropout) draws from the global RNG, which each epoch
    reseeds from its own stream: which batch positions are erased changes from epoch to epoch."""
    cfg = make_cfg({"data": {"random_erasing": 0.5}, "train": {"epochs": 3}})
    train_mod.train(cfg, tmp_path / "run", dataset=tiny_dataset(), progress=False)
    erased = [torch.cat([((out - ref).abs().flatten(1).amax(1) > 1e-5) for _, _, out, ref in e]).tolist()
              for e in record_batches]
    assert erased[0] != erased[1] != erased[2], "the erased batch positions repeat every epoch"


# --------------------------------------------------------------------------- 4. schedules and grad_accum

@pytest.mark.parametrize("sched", [
    {"name": "cosine", "warmup_epochs": 1, "min_lr_ratio": 0.1},
    {"name": "onecycle", "pct_start": 0.3},
    {"name": "step", "step_epochs": 1, "gamma": 0.5},
    {"name": "constant", "warmup_epochs": 2},
], ids=["cosine-warmup", "onecycle", "step", "constant-warmup"])
def test_schedule_is_per_optimizer_step_under_grad_accum(tmp_path, train_mod, make_cfg, sched):
    """With 4 micro-batches per step, the learning rate follows the schedule over optimizer steps
    (3 per epoch here), exactly as with one batch of the same effective size."""
    base = {"sched": sched, "optim": {"name": "sgd", "lr": 0.01}}
    accum = make_cfg({**base, "train": {"epochs": 3, "batch_size": 8, "grad_accum": 4}})
    big = make_cfg({**base, "train": {"epochs": 3, "batch_size": 32}})
    la = pd.read_csv(train_mod.train(accum, tmp_path / "accum", dataset=tiny_dataset(),
                                     progress=False) / "steps.csv")
    lb = pd.read_csv(train_mod.train(big, tmp_path / "big", dataset=tiny_dataset(),
                                     progress=False) / "steps.csv")
    steps_per_epoch = 96 // 32
    total = 3 * steps_per_epoch
    kw = {"warmup_steps": int(sched.get("warmup_epochs", 0) * steps_per_epoch),
          "min_lr_ratio": sched.get("min_lr_ratio", 0.0),
          "step_every": sched.get("step_epochs", 30) * steps_per_epoch,
          "gamma": sched.get("gamma", 0.1), "pct_start": sched.get("pct_start", 0.25)}
    expected = [lr_at(s, total, 0.01, sched["name"], **kw) for s in range(total)]
    assert la["step"].tolist() == list(range(1, total + 1)), "optimizer steps miscounted under grad_accum"
    np.testing.assert_allclose(la["lr"], expected, rtol=1e-5,
                               err_msg="learning rates under grad_accum=4 are not the schedule's")
    np.testing.assert_allclose(la["lr"], lb["lr"], rtol=1e-6)


def test_layer_decay_scales_each_groups_rate_at_every_step(tmp_path, train_mod, make_cfg, monkeypatch):
    """With model.layer_decay, every optimizer step gives each parameter group the scheduled rate
    times its depth scale (head 1, earlier blocks smaller), not the full rate."""
    seen: list[list[tuple[float, float]]] = []
    real_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        seen.append([(g["lr"], g["lr_scale"]) for g in self.param_groups])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    cfg = make_cfg({"model": {"name": "test_vit_cifar", "layer_decay": 0.5},
                    "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},
                    "sched": {"name": "cosine", "warmup_epochs": 1}, "train": {"epochs": 2}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_dataset(), progress=False)
    scheduled = pd.read_csv(out / "steps.csv")["lr"].tolist()
    assert len(seen) == len(scheduled) == 12
    assert min(scale for _, scale in seen[0]) <= 0.125, "no group is scaled down"
    for lr, groups in zip(scheduled, seen):
        for group_lr, scale in groups:
            assert group_lr == pytest.approx(lr * scale, rel=1e-5), (group_lr, lr, scale)
