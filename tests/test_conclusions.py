"""The conclusion logic of the five studies (:mod:`cnnvit.studies`, one module per study) on
synthetic results.

The notebooks only run the smoke profile, so without these tests the paper profile's branches
(targets met or not, no caveat) never execute. Each test feeds hand-made results to a
conclusion function with the study's real parameter file (smoke or paper) and checks what the
text *says*: which run won, the right numbers with their sign, the caveat exactly when the
profile is not ``paper``. The numbers are chosen so that picking the wrong run, flipping a
comparison or a difference, or rounding differently gives other text.

Which runs a conclusion compares comes from the ``groups:`` of the parameter files. The last
part checks that every group of both profiles names runs of its file, that no study module or
notebook spells a run name, that a conclusion whose runs did not run says so, and that a run
renamed in a copy of a parameter file is still named by the conclusions, by its new name.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml

from cnnvit import studies
from cnnvit.records import RunResult, WeightsOrigin
from cnnvit.studies import STUDIES, Study, common, load_study, project_root, summary_table
from cnnvit.studies.tiny_imagenet_cnn_ablations import EFFECTS

# the checkout of the imported package (not of this file): a scratch copy of lib/, params/ and
# notebooks/ put first on PYTHONPATH is then tested as a whole
ROOT = project_root()
CIFAR, TINY, TRANSFORMERS, FINETUNE, CELEBA = (
    "01_cifar10_vit_vs_resnet", "02_tiny_imagenet_cnn_ablations", "03_tiny_imagenet_transformers",
    "04_cifar10_finetune", "05_celeba_simple_classifier")
STUDY_NAMES = (CIFAR, TINY, TRANSFORMERS, FINETUNE, CELEBA)
PROFILES = ("smoke", "paper")
CAVEAT_MARK = "these numbers test the pipeline and say nothing about"


# ------------------------------------------------------------------------------------ helpers

@functools.lru_cache(maxsize=None)
def _load(name: str, profile: str) -> Study:
    return load_study(ROOT / "params" / profile / f"{name}.yaml")


def origin(kind: str = "scratch", source: Optional[str] = None, **fields: str) -> dict[str, Any]:
    """A ``weights`` entry of metrics.json (where a run's starting weights came from)."""
    label = {"scratch": "trained from scratch", "hub": f"pretrained: timm weights {source}"}.get(kind, "")
    return {"kind": kind, "source": source, "data": None, "model": None, "run": None, "label": label, **fields}


SCRATCH, HUB = origin(), origin("hub", "timm/deit_base_patch16_224.fb_in1k")


def study_of(name: str, profile: str = "paper") -> Study:
    """The study as its notebook loads it (a copy: tests may edit it)."""
    return copy.deepcopy(_load(name, profile))


def as_profile(study: Study, profile: str) -> Study:
    """The same study under another profile name (e.g. a user's own ``dev`` profile)."""
    return dataclasses.replace(study, profile=profile)


@dataclass
class FakeRun:
    """What the conclusions read of a :class:`cnnvit.training.Run`, without a run folder: ``raw``
    is its metrics.json as written (a test edits it), ``metrics`` the record read from it."""

    raw: dict
    classes: list[str]
    epochs: pd.DataFrame
    steps: pd.DataFrame
    data_info: dict
    val_steps: pd.DataFrame
    preds: np.ndarray = field(repr=False)

    @property
    def metrics(self) -> RunResult:
        return RunResult.from_json(self.raw)

    def predictions(self) -> dict[str, np.ndarray]:
        return {"predictions": self.preds}


def fake_run(acc: float, *, epochs: int = 10, n_test: int = 10_000, n_classes: int = 10,
             train_loss: Sequence[float] = (2.0, 1.0), val_loss: Optional[Sequence[float]] = None,
             grad_norms: Optional[Sequence[float]] = None, preds: Optional[np.ndarray] = None,
             test: Optional[dict] = None, test_counts: Optional[list[int]] = None,
             val_steps: Optional[pd.DataFrame] = None, val_acc: Optional[Sequence[float]] = None,
             **metrics) -> FakeRun:
    """A finished run with test accuracy ``acc``; ``metrics`` replace or add metrics.json keys;
    ``val_acc`` is its validation curve (default: flat at ``acc``, a run at its plateau)."""
    n_ep = len(train_loss)
    epoch_log = pd.DataFrame({"epoch": range(1, n_ep + 1), "train_loss": list(train_loss),
                              "val_loss": list(val_loss) if val_loss is not None else [float("nan")] * n_ep,
                              "val_accuracy": list(val_acc) if val_acc is not None else [acc] * n_ep})
    steps = pd.DataFrame({"step": range(1, (len(grad_norms) if grad_norms is not None else 4) + 1)})
    if grad_norms is not None:
        steps["grad_norm"] = list(grad_norms)
    m = {"run": "fake", "model": "fake", "steps": 100, "test_top5": None, "train_time_s": 1.0, "wall_time_s": 1.0,
         "train_images_per_s": 1.0, "device": "cpu", "torch": "2", "finished": "2026-01-01T00:00:00+0000",
         "test_accuracy": acc, "epochs": epochs,
         "dataset": {"name": "fake", "source": "made up", "n_train": 10 * n_test, "n_test": n_test},
         "test": {"accuracy": acc, "balanced_accuracy": acc, "macro_f1": acc, **(test or {})},
         "parameters": 1e6, "weights": SCRATCH, "majority_baseline": 0.5,
         "diverged": None, **metrics}
    counts = test_counts if test_counts is not None else [n_test // n_classes] * n_classes
    return FakeRun(m, [f"c{i}" for i in range(n_classes)], epoch_log, steps,
                   {"class_counts": {"test": counts}},
                   val_steps if val_steps is not None else pd.DataFrame(columns=["step", "val_accuracy"]),
                   preds if preds is not None else np.arange(200) % n_classes)


def bullets(md: str) -> list[str]:
    """The bold lead of every bullet, in order."""
    return re.findall(r"^- \*\*(.+?)\*\*", md, flags=re.M)


def bullet(md: str, lead: str) -> str:
    """The one bullet that starts with ``lead`` in bold."""
    found = [line for line in md.splitlines() if line.startswith(f"- **{lead}")]
    assert len(found) == 1, f"expected one bullet {lead!r}, got {found} in:\n{md}"
    return found[0]


def caveat_lines(md: str) -> list[str]:
    return [line for line in md.splitlines() if CAVEAT_MARK in line]


def assert_caveat(md: str, profile: str, about: str) -> None:
    """Paper: no caveat at all. Otherwise: the closing line, naming the profile and the data set."""
    lines = md.splitlines()
    if profile == "paper":
        assert caveat_lines(md) == [], md
        assert not lines[-1].startswith("*Profile"), md
    else:
        assert caveat_lines(md) == [lines[-1]], "one caveat, as the last line"
        assert lines[-1].startswith(f"*Profile `{profile}` uses ") and lines[-1].endswith("*")
        assert f"say nothing about {about}" in lines[-1]
        assert lines[-2] == "", "the caveat is a paragraph of its own"


# --------------------------------------------------------------------------- _pct, _pts, caveat

@pytest.mark.parametrize("x, text", [(0.8812, "88.1%"), (0.005, "0.5%"), (1.0, "100.0%"), (0.0, "0.0%")])
def test_pct_is_a_percentage_with_one_decimal(x: float, text: str) -> None:
    assert common.pct(x) == text


@pytest.mark.parametrize("a, b, text", [(0.9, 0.8, "+10.0 points"), (0.8, 0.9, "-10.0 points"),
                                        (0.5, 0.5, "+0.0 points")])
def test_pts_is_a_signed_difference_in_points(a: float, b: float, text: str) -> None:
    assert common.pts(a, b) == text


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_profile_caveat_only_outside_the_paper_profile(profile: str) -> None:
    study = as_profile(study_of(TINY, "smoke"), profile)
    lines = common.profile_caveat(study, "tiny stand-ins", "Tiny-ImageNet")
    if profile == "paper":
        assert lines == []
    else:
        assert lines == ["", f"*Profile `{profile}` uses tiny stand-ins: these numbers test the pipeline "
                             f"and say nothing about Tiny-ImageNet.*"]


# ----------------------------------------------------------------------------- study 1: CIFAR-10

def cifar_results(**acc: float) -> dict[str, FakeRun]:
    """All five runs of study 1 (seed CNN ahead, as the seed found); ``acc`` overrides, None drops."""
    base = {"seed_resnet18": 0.8812, "seed_vit_b16": 0.6543, "ablation_vit_b16_no_preprocessing": 0.6011,
            "strong_resnet18": 0.9534, "strong_vit": 0.9021}
    epochs = {"seed_resnet18": 20, "seed_vit_b16": 30, "ablation_vit_b16_no_preprocessing": 31,
              "strong_resnet18": 200, "strong_vit": 300}
    base.update(acc)
    return {n: fake_run(a, epochs=epochs[n]) for n, a in base.items() if a is not None}


def test_cifar10_header_names_profile_and_test_split_size() -> None:
    results = cifar_results()
    results["seed_resnet18"].raw["dataset"]["n_test"] = 9876
    md = studies.cifar10_conclusions(study_of(CIFAR), results)
    assert md.splitlines()[0].startswith("*Computed from the runs of profile `paper`; ")
    assert "full test split (9876 images)" in md.splitlines()[0]


@pytest.mark.parametrize("resnet, vit, lead, verdict", [
    (0.8812, 0.6543, "the CNN leads by 22.7 points", "reproduces in direction"),
    (0.6011, 0.7023, "the ViT leads by 10.1 points", "does not reproduce"),  # not "the CNN leads by -10.1"
])
def test_cifar10_seed_settings_name_the_leader_and_whether_the_seeds_gap_reproduces(
        resnet: float, vit: float, lead: str, verdict: str) -> None:
    md = studies.cifar10_conclusions(study_of(CIFAR), cifar_results(seed_resnet18=resnet, seed_vit_b16=vit))
    line = bullet(md, "Seed settings.")
    assert f"ResNet-18 (`resnet18`) reached {100 * resnet:.1f}% in 20 epochs" in line
    assert line.endswith(f"ViT-B/16 (`vit_base_patch16_224`) {100 * vit:.1f}% in 30 epochs: {lead}, so the seed's "
                         f"gap {verdict} (the seed reported about 88% vs 65%, +23 points, after 25 and 45 "
                         f"epochs).")


@pytest.mark.parametrize("with_pre, without, verdict, diff", [
    (0.6543, 0.6011, "preprocessing helped here", "+5.3"),
    (0.6011, 0.6543, "preprocessing did not help here", "-5.3"),
    (0.6200, 0.6200, "no verdict, the difference is within the noise", "+0.0"),  # a tie says nothing
])
def test_cifar10_preprocessing_verdict_follows_the_comparison(with_pre: float, without: float, verdict: str,
                                                             diff: str) -> None:
    md = studies.cifar10_conclusions(study_of(CIFAR), cifar_results(
        seed_vit_b16=with_pre, ablation_vit_b16_no_preprocessing=without))
    line = bullet(md, "Preprocessing ablation.")
    assert (f"With the seed's flip and normalisation ViT-B/16 reached {100 * with_pre:.1f}%, without them "
            f"{100 * without:.1f}%: {verdict} ({diff} points, noise ±") in line


def test_cifar10_strong_recipes_compare_with_their_own_seed_run_and_meet_paper_targets() -> None:
    md = studies.cifar10_conclusions(study_of(CIFAR), cifar_results())
    resnet = bullet(md, "ResNet-18, strong recipe")
    assert resnet == ("- **ResNet-18, strong recipe** (`resnet18_cifar`). 95.3% after 200 epochs at 32 px, "
                      "against 88.1% for the seed setting (+7.2 points, noise ±0.8: better than the seed "
                      "setting). Target at least 95.0%: met.")
    vit = bullet(md, "ViT, strong recipe")
    assert vit == ("- **ViT, strong recipe** (`vit_small_cifar`). 90.2% after 300 epochs at 32 px, "
                   "against 65.4% for the seed setting (+24.8 points, noise ±1.1: better than the seed "
                   "setting). Target at least 90.0%: met.")


@pytest.mark.parametrize("resnet, met", [(0.95, "met"), (0.9499, "not met"), (0.8, "not met")])
def test_cifar10_target_met_at_or_above_it(resnet: float, met: str) -> None:
    md = studies.cifar10_conclusions(study_of(CIFAR), cifar_results(strong_resnet18=resnet))
    assert bullet(md, "ResNet-18, strong recipe").endswith(f"Target at least 95.0%: {met}.")
    assert bullet(md, "ViT, strong recipe").endswith("Target at least 90.0%: met.")


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_cifar10_targets_and_caveat_by_profile(profile: str) -> None:
    """The published targets only mean something for the paper profile; the caveat is the
    converse."""
    study = as_profile(study_of(CIFAR, "paper" if profile == "paper" else "smoke"), profile)
    md = studies.cifar10_conclusions(study, cifar_results())
    strong = [bullet(md, "ResNet-18, strong recipe"), bullet(md, "ViT, strong recipe")]
    assert all(("Target at least" in line) == (profile == "paper") for line in strong)
    assert_caveat(md, profile, "CIFAR-10")
    if profile != "paper":
        assert md.splitlines()[-1].endswith("See the `paper` profile for the study.*")


def test_cifar10_trends_are_read_from_the_seed_settings_curves() -> None:
    """The seed's claims (the ViT still improving at its end, the ResNet level from epoch 20) set
    against the plateau check of our seed-setting curves, each way round."""
    results = cifar_results()  # flat curves
    lead = ("- **Trends.** The seed saw ViT-B/16 still improving at its last epoch and ResNet-18 level from "
            "epoch 20. Here, by the plateau check (under 1 point gained over the last 20% of epochs), ")
    md = studies.cifar10_conclusions(study_of(CIFAR), results)
    assert bullet(md, "Trends.") == lead + (
        "the ViT is level at its end (flat: +0.0 pts, epochs 1-2) (unlike the seed) and the ResNet level at its "
        "end (flat: +0.0 pts, epochs 1-2) (as the seed saw).")
    rising = [0.40, 0.45, 0.50, 0.55, 0.60]
    results["seed_vit_b16"] = fake_run(0.6543, epochs=5, train_loss=[1.0] * 5, val_acc=rising)
    results["seed_resnet18"] = fake_run(0.8812, epochs=5, train_loss=[1.0] * 5, val_acc=rising)
    md = studies.cifar10_conclusions(study_of(CIFAR), results)
    assert bullet(md, "Trends.") == lead + (
        "the ViT is still rising at its end (rising: +5.0 pts, epochs 4-5) (as the seed saw) and the ResNet still "
        "rising at its end (rising: +5.0 pts, epochs 4-5) (unlike the seed).")


def test_cifar10_missing_runs_say_so_in_their_own_bullets() -> None:
    md = studies.cifar10_conclusions(study_of(CIFAR), cifar_results(seed_resnet18=None, strong_vit=None))
    assert bullets(md) == ["Seed settings.", "Trends.", "Preprocessing ablation.", "ResNet-18, strong recipe",
                           "ViT, strong recipe"]
    assert bullet(md, "Seed settings.") == "- **Seed settings.** Skipped, not run: seed_resnet18."
    assert bullet(md, "Trends.") == "- **Trends.** Skipped, not run: seed_resnet18."
    assert bullet(md, "ResNet-18, strong recipe") == "- **ResNet-18, strong recipe** Skipped, not run: seed_resnet18."
    assert bullet(md, "ViT, strong recipe") == "- **ViT, strong recipe** Skipped, not run: strong_vit."
    assert "not run" not in bullet(md, "Preprocessing ablation.")
    md = studies.cifar10_conclusions(study_of(CIFAR), cifar_results(ablation_vit_b16_no_preprocessing=None))
    assert bullet(md, "Preprocessing ablation.") == (
        "- **Preprocessing ablation.** Skipped, not run: ablation_vit_b16_no_preprocessing.")
    assert [lead for lead in bullets(md) if "not run" in bullet(md, lead)] == ["Preprocessing ablation."]


def test_cifar10_level_seed_settings_get_no_verdict() -> None:
    md = studies.cifar10_conclusions(study_of(CIFAR), cifar_results(seed_resnet18=0.7, seed_vit_b16=0.7))
    line = bullet(md, "Seed settings.")
    assert line.endswith("70.0% in 30 epochs: no verdict, the difference is within the noise (±1.3 points) "
                         "(the seed reported about 88% vs 65%).")
    assert "reproduce" not in line


def test_cifar10_seed_spread_widens_the_noise_beyond_the_test_split() -> None:
    """Three seeds of each run, 1 point apart on average but 2-3 points spread: no verdict, where
    the test split's noise alone (±1.3 points) would have given one."""
    results = cifar_results(seed_vit_b16=0.62, ablation_vit_b16_no_preprocessing=0.61)
    for i, (a, b) in enumerate(((0.65, 0.58), (0.59, 0.64)), start=1):
        results[f"seed_vit_b16.seed{i}"] = fake_run(a, epochs=30)
        results[f"ablation_vit_b16_no_preprocessing.seed{i}"] = fake_run(b, epochs=31)
    study = study_of(CIFAR)
    for n in ("seed_vit_b16", "ablation_vit_b16_no_preprocessing"):
        study.runs.update({f"{n}.seed{i}": dataclasses.replace(study.runs[n], replica_of=n) for i in (1, 2)})
    stats = common.seed_stats(study, results)
    noise = common.comparison_noise(stats["seed_vit_b16"], stats["ablation_vit_b16_no_preprocessing"], 10_000)
    assert noise > common.difference_noise(0.62, 0.61, 10_000) + 0.01
    line = bullet(studies.cifar10_conclusions(study, results), "Preprocessing ablation.")
    assert f"no verdict, the difference is within the noise (+1.0 points, noise ±{100 * noise:.1f};" in line


def test_cifar10_verdict_on_a_run_still_rising_says_it_may_be_under_trained() -> None:
    rising = dict(train_loss=(2.0, 1.5, 1.2, 1.0, 0.9), val_acc=(0.5, 0.7, 0.8, 0.86, 0.9534))
    results = cifar_results()
    results["strong_resnet18"] = fake_run(0.9534, epochs=200, **rising)
    study = study_of(CIFAR)
    md = studies.cifar10_conclusions(study, results)
    label = study.runs["strong_resnet18"].label
    assert bullet(md, "ResNet-18, strong recipe").endswith(
        f"*May be under-trained: {label} was still rising (+9.3 points over the last 20% of epochs).*")
    assert "under-trained" not in bullet(md, "ViT, strong recipe")  # its runs are flat
    assert "under-trained" not in bullet(md, "Seed settings.")


# ------------------------------------------------------------------------- study 2: Tiny-ImageNet

TINY_ACC = {"vgg19_bn": 0.5201, "vgg19": 0.4102, "resnet18": 0.5511, "resnet34": 0.5622, "resnet50": 0.5933,
            "resnet50_noskip": 0.5012, "resnext50": 0.6044, "t2t_vit": 0.4511, "t2t_vit_64": 0.4822,
            "strong_resnet50": 0.6311}


def tiny_results(vgg19_run: Optional[FakeRun] = None, **acc: Optional[float]) -> dict[str, FakeRun]:
    """Study 2's paper runs (200 classes; every model learned); ``acc`` overrides, None drops."""
    base = {**TINY_ACC, **acc}
    out = {n: fake_run(a, n_classes=200, train_loss=(4.0, 2.0)) for n, a in base.items() if a is not None}
    if vgg19_run is not None:
        out["vgg19"] = vgg19_run
    return out


def stalled_vgg19() -> FakeRun:
    """VGG19 without BatchNorm as the seed saw it: loss at ln 200, one class predicted, gradients gone."""
    return fake_run(0.005, n_classes=200, train_loss=(5.3, 5.2960), preds=np.full(200, 7),
                    grad_norms=[1.5] * 20 + [0.01] * 160 + [0.0002] * 20)


def test_tiny_imagenet_batchnorm_names_a_stall_with_its_evidence() -> None:
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(vgg19_run=stalled_vgg19()))
    assert bullet(md, "BatchNorm.") == (
        "- **BatchNorm.** VGG19 with BatchNorm reached 52.0% (seed 52.8%), without it 0.5% (seed 0.5%): "
        "it **stalled**: its training loss ended at 5.296, against ln C = 5.298 for a uniform guess, and it "
        "predicts 1 distinct class on the test split; its gradient norm went from 1.5 to 0.0002.")


def test_tiny_imagenet_batchnorm_says_when_vgg19_learned_or_diverged() -> None:
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results())
    assert bullet(md, "BatchNorm.").endswith("without it 41.0% (seed 0.5%): it **did learn** here, unlike in the seed.")
    diverged = fake_run(0.005, n_classes=200, train_loss=(5.3, float("nan")), preds=np.full(200, 3),
                        diverged={"epoch": 2, "step": 123, "loss": "nan"})
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(vgg19_run=diverged))
    assert bullet(md, "BatchNorm.").endswith(": it **diverged**: the loss became nan at step 123.")


@pytest.mark.parametrize("loss_share, acc, status", [
    (0.98, 0.005, "stalled"),   # loss within 3% of ln C and accuracy under 2/C
    (0.96, 0.005, "learned"),   # the loss fell more than 3% below ln C
    (0.98, 0.012, "learned"),   # accuracy above 2/C: it learnt something
    (0.20, 0.001, "learned"),
])
def test_training_diagnosis_stalled_needs_both_a_chance_loss_and_chance_accuracy(
        loss_share: float, acc: float, status: str) -> None:
    run = fake_run(acc, n_classes=200, train_loss=(5.3, loss_share * np.log(200)))
    assert studies.training_diagnosis(run)["status"] == status


def test_training_diagnosis_reports_its_evidence() -> None:
    d = studies.training_diagnosis(stalled_vgg19())
    assert d["status"] == "stalled" and d["final train loss"] == pytest.approx(5.296)
    assert d["chance loss (ln C)"] == pytest.approx(np.log(200)) and d["chance acc (1/C)"] == 1 / 200
    assert d["grad norm, first steps"] == 1.5 and d["grad norm, last steps"] == 0.0002
    assert d["distinct predicted classes"] == 1 and d["share of the most predicted class"] == 1.0
    # diverged wins over stalled, and the last finite loss is the one reported
    run = fake_run(0.005, n_classes=200, train_loss=(5.0, 5.29, float("nan")), diverged={"epoch": 3, "step": 9, "loss": "nan"})
    d = studies.training_diagnosis(run)
    assert d["status"] == "diverged" and d["final train loss"] == pytest.approx(5.29)
    assert d["grad norm, first steps"] is None, "no gradient norms logged: none claimed"


@pytest.mark.parametrize("accs, trend", [
    ((0.5511, 0.5622, 0.5933), "rises with depth here, as in the seed"),  # the seed's rose
    ((0.5511, 0.5933, 0.5622), "does not rise monotonically with depth here, unlike in the seed"),
    ((0.5933, 0.5622, 0.5511), "does not rise monotonically with depth here, unlike in the seed"),
    ((0.5511, 0.5511, 0.5933), "does not rise monotonically with depth here, unlike in the seed"),
    ((0.5622, 0.5622, 0.5622), "does not rise monotonically with depth here, unlike in the seed")])
def test_tiny_imagenet_depth_trend(accs: tuple[float, float, float], trend: str) -> None:
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(
        resnet18=accs[0], resnet34=accs[1], resnet50=accs[2]))
    r18, r34, r50 = (f"{100 * a:.1f}%" for a in accs)
    assert bullet(md, "Depth.") == (f"- **Depth.** ResNet-18 {r18} (seed 55.1%), ResNet-34 {r34} (seed 56.0%), "
                                    f"ResNet-50 {r50} (seed 59.0%): accuracy {trend}.")


def test_tiny_imagenet_skip_and_cardinality_are_signed_against_resnet50_and_the_seeds_gap() -> None:
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results())
    assert bullet(md, "Skip connections.") == (
        "- **Skip connections.** Removing them from ResNet-50 changes top-1 by -9.2 points "
        "(the seed: -4.9 points; same direction); ResNet-34, of similar size, 56.2%.")
    assert bullet(md, "Cardinality.") == (
        "- **Cardinality.** ResNeXt-50 32x4d against ResNet-50 at about the same size: +1.1 points "
        "(the seed: +0.3 points; within the noise, ±1.4 points).")
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(resnext50=0.6233))
    assert bullet(md, "Cardinality.").endswith(": +3.0 points (the seed: +0.3 points; same direction).")
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(resnext50=0.5633))
    assert bullet(md, "Cardinality.").endswith(": -3.0 points (the seed: +0.3 points; the opposite direction).")
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(resnet34=None, resnet50_noskip=0.6101))
    assert bullet(md, "Skip connections.").endswith(
        "changes top-1 by +1.7 points (the seed: -4.9 points; the opposite direction); ResNet-34, of similar size, "
        "not run: resnet34.")


def test_tiny_imagenet_t2t_overfitting_is_read_from_its_curves() -> None:
    """The seed's claim that T2T-ViT overfits: a validation loss that turned up from its lowest
    while the training loss kept falling is overfitting; one still falling is not."""
    results = tiny_results()
    results["t2t_vit"] = fake_run(0.4511, n_classes=200, train_loss=(3.5, 2.7, 2.0), val_loss=(3.6, 2.9, 3.1))
    line = bullet(studies.tiny_imagenet_conclusions(study_of(TINY), results), "CNN vs T2T-ViT.")
    assert ("; the seed saw T2T-ViT overfit strongly: here its validation loss ended +0.20 above its lowest "
            "(epoch 2) while its training loss kept falling: overfitting, as the seed saw") in line
    results["t2t_vit"] = fake_run(0.4511, n_classes=200, train_loss=(3.5, 2.7, 2.0), val_loss=(3.6, 2.9, 2.8))
    line = bullet(studies.tiny_imagenet_conclusions(study_of(TINY), results), "CNN vs T2T-ViT.")
    assert ("here its validation loss was lowest at its last epoch: no overfitting (unlike the seed)") in line


def test_tiny_imagenet_cnn_vs_t2t_uses_the_last_validated_epoch_and_the_native_run() -> None:
    results = tiny_results()
    # validation only every other epoch: the gap is read at the last epoch that has one
    results["resnext50"] = fake_run(0.6044, n_classes=200, train_loss=(3.0, 1.1, 0.7),
                                    val_loss=(3.2, 2.4, float("nan")))
    results["t2t_vit"] = fake_run(0.4511, n_classes=200, train_loss=(3.5, 2.7), val_loss=(3.6, 2.9))
    line = bullet(studies.tiny_imagenet_conclusions(study_of(TINY), results), "CNN vs T2T-ViT.")
    assert line == ("- **CNN vs T2T-ViT.** T2T-ViT-t-14 at 224 px 45.1% (seed 41.6%) against ResNeXt-50 32x4d "
                    "60.4%: -15.3 points (the seed: -17.7 points; same direction); validation minus training loss at the end: ResNeXt-50 32x4d (SGD 0.1, batch 128) +1.30, "
                    "T2T-ViT-t-14 at 224 px (AdamW, its paper's recipe) +0.20; at the native 64 px (16 tokens) "
                    "T2T-ViT-t-14 reached 48.2%.")
    line = bullet(studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(t2t_vit_64=None)), "CNN vs T2T-ViT.")
    assert line == ("- **CNN vs T2T-ViT.** T2T-ViT-t-14 at 224 px 45.1% (seed 41.6%) against ResNeXt-50 32x4d "
                    "60.4%: -15.3 points (the seed: -17.7 points; same direction); at the native 64 px (16 tokens), not run: t2t_vit_64.")
    # a profile without the native run (smoke) does not mention it
    line = bullet(studies.tiny_imagenet_conclusions(study_of(TINY, "smoke"), tiny_results(t2t_vit_64=None)),
                  "CNN vs T2T-ViT.")
    assert line == ("- **CNN vs T2T-ViT.** T2T-ViT stand-in 45.1% (seed 41.6%) against ResNeXt-50 stand-in 60.4%: "
                    "-15.3 points (the seed: -17.7 points; same direction).")


def test_tiny_imagenet_stronger_recipe_compares_with_its_own_seed_run() -> None:
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results())
    label = study_of(TINY).runs["strong_resnet50"].label
    assert bullet(md, "Stronger recipe") == (f"- **Stronger recipe: {label}.** 63.1%, against 59.3% for its seed "
                                             f"setting (+3.8 points).")
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(resnet50=None))
    assert bullet(md, "Stronger recipe") == f"- **Stronger recipe: {label}.** 63.1%."


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_tiny_imagenet_caveat_by_profile(profile: str) -> None:
    study = as_profile(study_of(TINY, "paper" if profile == "paper" else "smoke"), profile)
    md = studies.tiny_imagenet_conclusions(study, tiny_results())
    assert md.splitlines()[0].startswith(f"*Computed from the runs of profile `{profile}`: top-1 accuracy on the "
                                         f"10000-image test split")
    assert_caveat(md, profile, "Tiny-ImageNet")


def test_tiny_imagenet_missing_runs_say_so_in_their_own_bullets() -> None:
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(
        vgg19=None, resnet34=None, t2t_vit=None))
    strong = study_of(TINY).runs["strong_resnet50"].label
    assert bullets(md) == ["BatchNorm.", "Depth.", "Skip connections.", "Cardinality.", "CNN vs T2T-ViT.",
                           f"Stronger recipe: {strong}."]
    assert bullet(md, "BatchNorm.") == "- **BatchNorm.** Skipped, not run: vgg19."
    assert bullet(md, "Depth.") == "- **Depth.** Skipped, not run: resnet34."
    assert bullet(md, "CNN vs T2T-ViT.") == "- **CNN vs T2T-ViT.** Skipped, not run: t2t_vit."
    # ResNet-34 only adds a clause to the skip-connection bullet, which says it did not run
    assert bullet(md, "Skip connections.").endswith("; ResNet-34, of similar size, not run: resnet34.")
    md = studies.tiny_imagenet_conclusions(study_of(TINY), tiny_results(strong_resnet50=None, resnext50=None))
    assert bullet(md, "Stronger recipe") == f"- **Stronger recipe: {strong}.** Skipped, not run: strong_resnet50."
    assert bullet(md, "Cardinality.") == "- **Cardinality.** Skipped, not run: resnext50."


def test_effect_panels_hold_each_effects_own_runs_and_skip_incomplete_effects() -> None:
    study, results = study_of(TINY), tiny_results(resnet50_noskip=None)
    panels = studies.effect_panels(study, results)
    expected = {"BatchNorm (VGG19)": ["vgg19_bn", "vgg19"], "Depth (ResNet)": ["resnet18", "resnet34", "resnet50"],
                "Cardinality": ["resnet50", "resnext50"], "CNN vs T2T-ViT": ["resnext50", "t2t_vit"]}
    assert list(panels) == list(expected)
    for effect, names in expected.items():
        assert list(panels[effect]) == [study.runs[n].label for n in names]
        assert all(panels[effect][study.runs[n].label] is results[n].epochs for n in names)
    assert set(EFFECTS) == set(expected) | {"Skip connections"}
    full = studies.effect_panels(study, tiny_results())["Skip connections"]
    assert list(full) == [study.runs[n].label for n in ("resnet50", "resnet50_noskip", "resnet34")]


def test_best_run_and_class_extremes_pick_the_highest() -> None:
    results = tiny_results()
    assert studies.best_run(results) == "strong_resnet50"
    run = fake_run(0.5)
    run.raw["test"]["per_class"] = {c: {"recall": r} for c, r in zip("abcde", (0.5, 0.9, 0.1, 0.7, 0.3))}
    ext = studies.class_accuracy_extremes(run, k=2)
    assert list(ext["best class"]) == ["b", "d"] and list(ext["worst class"]) == ["c", "e"]
    assert list(ext["recall"]) == [0.9, 0.7] and list(ext["recall "]) == [0.1, 0.3]


# ---------------------------------------------------------------------- study 3: transformers

TRANSFORMER_ACC = {"swin": 0.8811, "vit_l": 0.8512, "cait": 0.8677, "deit": 0.8733, "deit_head_only": 0.7012,
                   "opt_sgd": 0.7801, "opt_sgd_nesterov": 0.7911, "aug_no_mixup": 0.8801, "aug_ema": 0.8702,
                   "aug_randaugment": 0.8102, "bs_32": 0.8411, "bs_64": 0.8523}


def transformer_results(**acc: Optional[float]) -> dict[str, FakeRun]:
    base = {**TRANSFORMER_ACC, **acc}
    return {n: fake_run(a, n_classes=200) for n, a in base.items() if a is not None}


def test_transformers_rank_models_best_first_with_the_papers_number() -> None:
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results())
    assert bullet(md, "Models") == (
        "- **Models** (full fine-tuning): Swin-L/4 88.1% (paper 91.3%), DeiT-B/16 distilled 87.3% (paper 87.3%), "
        "CaiT-S/36 86.8% (paper 86.7%), ViT-L/16 85.1% (paper 86.4%). Best: Swin-L/4. The paper's best, "
        "Swin-L/4, is also the best here; the paper's order reproduces.")
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results(cait=0.8750))
    assert bullet(md, "Models").endswith("Best: Swin-L/4. The paper's best, Swin-L/4, is also the best here; "
                                         "the paper's order does not reproduce.")
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results(vit_l=0.9001))
    assert bullet(md, "Models").endswith("Best: ViT-L/16. The paper's best, Swin-L/4, is not the best here; "
                                         "the paper's order does not reproduce.")
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results(vit_l=0.9001, swin=None))
    assert bullet(md, "Models").endswith("Best: ViT-L/16. Not run: swin.")
    assert "Swin" not in bullet(md, "Models")


def test_transformers_frozen_backbone_optimizers_and_batch_size() -> None:
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results())
    assert bullet(md, "Frozen backbone vs fine-tuning") == (
        "- **Frozen backbone vs fine-tuning** (DeiT): new head only 70.1%, everything fine-tuned 87.3% (+17.2 points).")
    assert bullet(md, "Optimizers") == ("- **Optimizers** (DeiT): AdamW 87.3%, SGD (momentum 0.9), lr 0.01 78.0%, "
                                        "SGD with Nesterov momentum, lr 0.01 79.1%.")
    assert bullet(md, "Batch size") == ("- **Batch size** (DeiT, effective): 32: 84.1%, 64: 85.2%, "
                                        "128 (the recipe's run): 87.3%.")


def _effective_batches(line: str) -> list[tuple[int, float]]:
    """``[(32, 0.841), ...]`` from the batch-size bullet, in its order."""
    return [(int(b), float(p) / 100)
            for b, p in re.findall(r"(\d+)(?: \([^)]*\))?: ([\d.]+)%", line.split("effective):", 1)[1])]


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_transformers_batch_sizes_are_each_runs_effective_batch(profile: str) -> None:
    """Each number is credited to its run's own batch_size x grad_accum (smoke's deit run: 16 x 4
    = 64, not the paper's 128)."""
    study = study_of(TRANSFORMERS, profile)
    md = studies.transformers_conclusions(study, transformer_results())
    expected = [(study.runs[n].config.train.batch_size * study.runs[n].config.train.grad_accum,
                 round(TRANSFORMER_ACC[n], 3)) for n in ("bs_32", "bs_64", "deit")]
    assert [(b, round(a, 3)) for b, a in _effective_batches(bullet(md, "Batch size"))] == expected
    if profile == "smoke":
        assert bullet(md, "Batch size") == ("- **Batch size** (DeiT, effective): 32: 84.1%, 64 (effective batch 64): "
                                            "85.2%, 64 (the recipe's run): 87.3%.")


def test_effective_batch_is_read_from_the_config_not_the_label() -> None:
    """``train.batch_size`` is the global batch (shared by ``train.nproc`` processes), so the
    effective batch is batch_size x grad_accum whatever the label says."""
    spec = copy.deepcopy(study_of(TRANSFORMERS, "smoke").runs["bs_32"])
    spec.label = "DeiT: effective batch 999"
    spec.config.train.batch_size, spec.config.train.grad_accum, spec.config.train.nproc = 48, 3, 2
    assert studies.effective_batch(spec) == 144


AUG_NOT_RUN = ("aug_no_erasing, aug_simple_crop, aug_no_drop_path, aug_no_label_smoothing, aug_autoaugment, "
               "aug_rrc, aug_no_cutmix")


def test_transformers_augmentation_ablation_names_best_and_worst_against_the_default() -> None:
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results())
    assert bullet(md, "Augmentation ablation") == (
        '- **Augmentation ablation** (DeiT, 3 variants): best "without Mixup" 88.0%, worst "with RandAugment (the '
        f"paper tried it and dropped it)\" 81.0% (-6.3 points against the default). Not run: {AUG_NOT_RUN}.")
    # no variant beats the default recipe: the default is the best
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results(aug_no_mixup=0.8601))
    assert bullet(md, "Augmentation ablation").startswith(
        '- **Augmentation ablation** (DeiT, 3 variants): best "default recipe" 87.3%, worst "with RandAugment (the paper tried it and dropped it)"')


def test_ablation_table_is_best_first_with_signed_points() -> None:
    table = studies.ablation_table(study_of(TRANSFORMERS), transformer_results())
    assert list(table["variant"]) == ["without Mixup", "default recipe", "with model EMA (decay 0.9998)",
                                      "with RandAugment (the paper tried it and dropped it)"]
    assert list(table["vs default (points)"].round(2)) == [0.68, 0.0, -0.31, -6.31]
    assert studies.ablation_table(study_of(TRANSFORMERS), transformer_results(deit=None)).empty


def test_transformer_table_sets_each_model_beside_the_paper() -> None:
    results = transformer_results()
    for run in results.values():
        run.raw.update(test_top5=0.97, weights=HUB)
    table = studies.transformer_table(study_of(TRANSFORMERS), results).set_index("run")
    deit, head = table.loc["DeiT-B/16 distilled, full fine-tuning"], table.loc[
        "DeiT-B/16 distilled: new head on the frozen backbone (the paper's code)"]
    assert deit["setting"] == "full fine-tuning" and deit["weights"] == "pretrained"
    assert deit["vs paper (points)"] == pytest.approx(100 * (0.8733 - 0.8729))
    assert head["setting"] == "new head on a frozen backbone" and pd.isna(head["vs paper (points)"])
    # the paper reports its best epoch: set against the best evaluated epoch, the last one shown too
    results["deit"].epochs["test_accuracy"] = [0.8801, 0.8733]
    table = studies.transformer_table(study_of(TRANSFORMERS), results).set_index("run")
    deit = table.loc["DeiT-B/16 distilled, full fine-tuning"]
    assert (deit["acc@1"], deit["best-epoch acc@1"]) == (0.8733, 0.8801)
    assert deit["vs paper (points)"] == pytest.approx(100 * (0.8801 - 0.8729))
    # on another data set than the paper's (the laptop profile's CIFAR-10): no difference taken
    laptop = study_of(TRANSFORMERS, "laptop")
    fake = {n: fake_run(0.3, n_classes=10, test_top5=0.8) for n in laptop.runs}
    assert studies.transformer_table(laptop, fake)["vs paper (points)"].isna().all()


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_transformers_caveat_by_profile(profile: str) -> None:
    study = as_profile(study_of(TRANSFORMERS, "paper" if profile == "paper" else "smoke"), profile)
    assert_caveat(studies.transformers_conclusions(study, transformer_results()), profile, "Tiny-ImageNet")


def test_transformers_missing_runs_say_so_in_their_own_bullets() -> None:
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results(
        deit_head_only=None, opt_sgd=None, opt_sgd_nesterov=None, bs_32=None, bs_64=None))
    assert bullets(md) == ["Models", "Frozen backbone vs fine-tuning", "Optimizers", "Augmentation ablation",
                           "Batch size"]
    assert bullet(md, "Frozen backbone") == "- **Frozen backbone vs fine-tuning** Skipped, not run: deit_head_only."
    assert bullet(md, "Optimizers") == "- **Optimizers** Skipped, not run: opt_sgd, opt_sgd_nesterov."
    assert bullet(md, "Batch size") == "- **Batch size** Skipped, not run: bs_32, bs_64."
    assert "not run" not in bullet(md, "Models")
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), {"opt_sgd": fake_run(0.5)})
    assert bullet(md, "Optimizers") == "- **Optimizers** Skipped, not run: deit, opt_sgd_nesterov.", \
        "one optimizer alone compares nothing"
    assert bullet(md, "Models") == "- **Models** Skipped, not run: swin, vit_l, cait, deit."
    assert all("Skipped, not run: " in bullet(md, lead) for lead in bullets(md))
    # some of a list missing: the others are compared, and the missing named
    md = studies.transformers_conclusions(study_of(TRANSFORMERS), transformer_results(opt_sgd=None, cait=None))
    assert bullet(md, "Optimizers") == ("- **Optimizers** (DeiT): AdamW 87.3%, SGD with Nesterov momentum, "
                                        "lr 0.01 79.1%. Not run: opt_sgd.")
    assert bullet(md, "Models").endswith("Best: Swin-L/4. Not run: cait.")


# ----------------------------------------------------------------------- study 4: fine-tuning

def finetune_results(**acc: Optional[float]) -> dict[str, FakeRun]:
    base = {"seed_linear_probe": 0.8611, "partial_finetune": 0.9312, "full_finetune": 0.9761, "scratch": 0.7023,
            **acc}
    out = {n: fake_run(a, test={"macro_f1": a - 0.0011}, weights=HUB) for n, a in base.items() if a is not None}
    if "scratch" in out:
        out["scratch"].raw["weights"] = SCRATCH
    return out


def test_finetune_seed_setting_against_the_seeds_figures() -> None:
    md = studies.finetune_conclusions(study_of(FINETUNE), finetune_results())
    assert bullet(md, "Seed setting") == (
        "- **Seed setting** (frozen backbone, new head): accuracy 86.1%, macro F1 0.8600, against the seed's "
        "85.2% / 0.8510. Its weights: pretrained.")


@pytest.mark.parametrize("weights", [
    origin("run", "/o/runs/pretrain", data="synthetic", model="test_vit", run="pretrain",
           label="pretrained on synthetic by this project (test_vit, run pretrain): 152 tensors loaded"),
    "pretrained on synthetic by this project (test_vit, run pretrain): 152 tensors loaded",  # an older run folder
])
def test_finetune_seed_setting_names_weights_this_project_trained(weights) -> None:
    results = finetune_results()
    results["seed_linear_probe"].raw["weights"] = weights
    md = studies.finetune_conclusions(study_of(FINETUNE, "smoke"), results)
    assert bullet(md, "Seed setting").endswith(
        "Its weights: pretrained on synthetic by this project (test_vit, run pretrain).")


def test_finetune_each_finetuning_is_signed_against_the_frozen_backbone() -> None:
    study = study_of(FINETUNE)
    md = studies.finetune_conclusions(study, finetune_results())
    assert bullet(md, study.runs["partial_finetune"].label) == (
        f"- **{study.runs['partial_finetune'].label}**: 93.1% (+7.0 points against the frozen backbone).")
    md = studies.finetune_conclusions(study, finetune_results(full_finetune=0.8011))
    assert bullet(md, study.runs["full_finetune"].label) == (
        f"- **{study.runs['full_finetune'].label}**: 80.1% (-6.0 points against the frozen backbone).")
    md = studies.finetune_conclusions(study, finetune_results(seed_linear_probe=None))
    assert bullets(md) == ["Seed setting", study.runs["partial_finetune"].label, study.runs["full_finetune"].label,
                           "Pretraining."]
    assert bullet(md, study.runs["full_finetune"].label) == (
        f"- **{study.runs['full_finetune'].label}** Skipped, not run: seed_linear_probe."), \
        "without the frozen backbone there is nothing to compare with"
    assert bullet(md, "Seed setting") == "- **Seed setting** Skipped, not run: seed_linear_probe."
    assert "not run" not in bullet(md, "Pretraining.")


def test_finetune_pretraining_compares_scratch_with_the_best_pretrained_run() -> None:
    study = study_of(FINETUNE)
    md = studies.finetune_conclusions(study, finetune_results())
    assert bullet(md, "Pretraining.") == (
        f"- **Pretraining.** The same architecture from scratch reached 70.2%; the best run from pretrained "
        f"weights ({study.runs['full_finetune'].label}) 97.6%: pretraining helped (+27.4 points, noise ±0.9) here. "
        f"The frozen backbone alone, against training from scratch: better (+15.9 points, noise ±1.1).")
    # within the sampling noise of 10,000 test images (±0.4 points here): no verdict either way
    md = studies.finetune_conclusions(study, finetune_results(scratch=0.9731))
    assert ": pretraining made no difference beyond the noise (+0.3 points, noise ±0.4)" in bullet(md, "Pretraining.")
    # scratch ahead of everything: still compared with the best *pretrained* run
    md = studies.finetune_conclusions(study, finetune_results(scratch=0.9901, partial_finetune=0.9801))
    assert bullet(md, "Pretraining.").endswith(
        f"({study.runs['partial_finetune'].label}) 98.0%: pretraining hurt (-1.0 points, noise ±0.3) here. The "
        f"frozen backbone alone, against training from scratch: worse (-12.9 points, noise ±0.7).")
    md = studies.finetune_conclusions(study, finetune_results(seed_linear_probe=None, partial_finetune=None,
                                                             full_finetune=None))
    assert bullet(md, "Pretraining.") == (
        "- **Pretraining.** Skipped, not run: seed_linear_probe, partial_finetune, full_finetune.")
    assert all("Skipped, not run: " in bullet(md, lead) for lead in bullets(md))


def test_finetune_smoke_pretraining_run_is_not_a_pretrained_contender() -> None:
    study = study_of(FINETUNE, "smoke")
    results = finetune_results()
    results["pretrain"] = fake_run(0.9911)  # on another (generated) task: not comparable
    assert study.pretraining_sources == {"pretrain"}
    line = bullet(studies.finetune_conclusions(study, results), "Pretraining.")
    assert f"({study.runs['full_finetune'].label}) 97.6%" in line


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_finetune_caveat_by_profile(profile: str) -> None:
    study = as_profile(study_of(FINETUNE, "paper" if profile == "paper" else "smoke"), profile)
    assert_caveat(studies.finetune_conclusions(study, finetune_results()), profile, "DeiT on CIFAR-10")


# ----------------------------------------------------------------------------- study 5: CelebA

CELEBA_PRETRAINING = ("binary_vit_b32_scratch", "seed_binary_vit_b32")
CELEBA_FAMILY = ["cnn_naive", "cnn_alexnet", "cnn_vgg16", "cnn_resnet101", "seed_binary_resnet152"]
IMAGENET = origin("hub", "https://download.pytorch.org/models/resnet152-394f9c45.pth")
CELEBA_PARAMS = {"cnn_naive": 0.2e6, "cnn_alexnet": 57e6, "cnn_vgg16": 134e6, "cnn_resnet101": 42.5e6,
                 "seed_binary_resnet152": 58e6}


def celeba_results(**acc: Optional[float]) -> dict[str, FakeRun]:
    """Study 5's paper runs: the best binary run is strong_binary_resnet152, the CNN family's
    accuracy follows its size, every CNN but the naive one pretrained."""
    base = {"seed_binary_resnet152": 0.9311, "seed_binary_vit_b32": 0.9102, "binary_vit_b32_scratch": 0.8012,
            "cnn_naive": 0.8811, "cnn_alexnet": 0.9122, "cnn_vgg16": 0.9401, "cnn_resnet101": 0.9211,
            "strong_binary_resnet152": 0.9512, "strong_binary_vit_b32": 0.9403,
            "seed_hair5_resnet152": 0.8302, "seed_hair5_vit_b32": 0.8411, "strong_hair5_resnet152": 0.8512,
            "natural_hair5_resnet152": 0.9901,  # on another class balance: beside, never the best
            "strong_hair5_vit_b32": 0.8623, "seed_multilabel_resnet152": 0.9011, "strong_multilabel_vit_b32": 0.9102,
            **acc}
    out = {}
    for n, a in base.items():
        if a is None:
            continue
        if "multilabel" in n:
            run = fake_run(a, n_classes=40, majority_baseline=0.8734,
                           test={"mean_average_precision": 0.6123, "mean_accuracy": a, "exact_match": 0.25})
        elif "hair5" in n:
            run = fake_run(a, n_classes=5, majority_baseline=0.3512, test={"balanced_accuracy": a - 0.1})
        else:
            run = fake_run(a, n_classes=2, majority_baseline=0.8521, test_counts=[17000, 2962],
                           test={"balanced_accuracy": a - 0.0501})
        run.raw["parameters"] = CELEBA_PARAMS.get(n, 88e6)
        run.raw["weights"] = SCRATCH if n in ("cnn_naive", "binary_vit_b32_scratch") else IMAGENET
        out[n] = run
    for n, first in zip(CELEBA_PRETRAINING, (0.6, 0.85)):
        if n in out:
            out[n].val_steps = pd.DataFrame({"step": [50, 100], "val_accuracy": [first, first + 0.05]})
    return out


def celeba_md(results: dict[str, FakeRun], profile: str = "paper") -> str:
    return studies.celeba_conclusions(study_of(CELEBA, profile), results)


@pytest.mark.parametrize("profile", PROFILES)
def test_celeba_groups_name_the_pretraining_pair_and_the_cnn_family(profile: str) -> None:
    study = study_of(CELEBA, profile)
    assert study.members("pretraining", "scratch", "pretrained") == list(CELEBA_PRETRAINING)
    assert study.members("cnn_family") == CELEBA_FAMILY


def test_celeba_binary_best_run_against_majority_and_the_seeds_balanced_set() -> None:
    assert bullet(celeba_md(celeba_results()), "Binary.") == (
        "- **Binary.** Highest test accuracy: ResNet-152, pretrained, stronger recipe, 95.1% against 85.2% for "
        "always answering the majority (+9.9 points); balanced accuracy 90.1%. Seed settings: ResNet-152, "
        "pretrained (seed setting) 93.1% (seed reported 92.4%); ViT-B/32, pretrained (seed setting) 91.0% "
        "(seed reported 91.9%). The seed's precision and recall imply about 50% positives (a balanced set); "
        "14.8% of this test split are positive, so its accuracy compares with balanced accuracy here. Stronger "
        "recipe against the seed setting: CNN +2.0 points of accuracy and +2.0 of balanced accuracy; ViT +3.0 "
        "points of accuracy and +3.0 of balanced accuracy.")


def test_celeba_hair5_and_multilabel_report_their_own_measures() -> None:
    md = celeba_md(celeba_results())
    assert bullet(md, "Five hair colours.") == (
        "- **Five hair colours.** Highest test accuracy: ViT-B/32, 5 hair colours, stronger recipe, balanced "
        "sampling, 86.2% against 35.1% for always answering the majority (+51.1 points); balanced accuracy 76.2%. "
        "Seed settings: ResNet-152, pretrained, 5 hair colours in the seed's 2:1:1:1:0.5 (seed setting) 83.0% "
        "(seed reported 83.8%); ViT-B/32, pretrained, 5 hair colours in the seed's 2:1:1:1:0.5 (seed setting) "
        "84.1% (seed reported 82.3%). On another class balance (other test images, not compared): ResNet-152, "
        "pretrained, 5 hair colours as CelebA has them (seed recipe) 99.0% against 35.1% for the majority. "
        "Stronger recipe against the seed setting: CNN +2.1 points of accuracy and +2.1 of balanced accuracy; "
        "ViT +2.1 points of accuracy and +2.1 of balanced accuracy.")
    assert bullet(md, "Multi-label.") == (
        "- **Multi-label.** Highest test mean per-label accuracy: ViT-B/32, pretrained, 40 attributes, stronger "
        "recipe, 91.0% against 87.3% for always answering the majority (+3.7 points); mAP 0.612. Seed settings: "
        "ResNet-152, pretrained, 40 attributes (seed setting; model not named by the seed) 90.1% (seed reported "
        "92.9%).")


def test_celeba_best_follows_the_numbers_and_missing_tasks_drop_out() -> None:
    md = celeba_md(celeba_results(seed_binary_vit_b32=0.9611, **{n: None for n in (
        "seed_hair5_resnet152", "seed_hair5_vit_b32", "strong_hair5_resnet152", "strong_hair5_vit_b32")}))
    assert bullet(md, "Binary.").startswith("- **Binary.** Highest test accuracy: ViT-B/32, pretrained (seed "
                                            "setting), 96.1% against 85.2%")
    assert bullet(md, "Five hair colours.") == ("- **Five hair colours.** Skipped, not run: seed_hair5_resnet152, "
                                                "seed_hair5_vit_b32, strong_hair5_resnet152, strong_hair5_vit_b32.")
    # (the run on CelebA's own balance, 99.0%, is never the best of runs on the seed's balance)
    # no seed setting among the binary runs: no seed numbers, so no remark on the seed's balanced set
    md = celeba_md({n: r for n, r in celeba_results().items() if not n.startswith("seed_binary")})
    assert "Seed settings" not in bullet(md, "Binary.") and "balanced set" not in md
    assert bullet(md, "Binary.").endswith("; balanced accuracy 90.1%. Not run: seed_binary_resnet152, "
                                          "seed_binary_vit_b32.")


def test_celeba_a_run_others_start_from_is_no_contender() -> None:
    """Smoke's ``pretrain`` run (multi-label, the ViTs start from it) is a helper: neither the
    multi-label bullet nor its table counts it, even when it scores highest."""
    study = study_of(CELEBA, "smoke")
    assert study.pretraining_sources == {"pretrain"}
    results = celeba_results()
    results["pretrain"] = fake_run(0.9911, n_classes=40, majority_baseline=0.8734, weights=SCRATCH,
                                   test={"mean_average_precision": 0.9, "mean_accuracy": 0.9911, "exact_match": 0.9})
    md = studies.celeba_conclusions(study, results)
    assert bullet(md, "Multi-label.").startswith("- **Multi-label.** Highest test mean per-label accuracy: ViT-B/32 "
                                                 "stand-in, pretrained, 40 attributes, stronger recipe, 91.0%")
    assert study.runs["pretrain"].label not in md
    table = studies.celeba_table(study, results, "multilabel")
    assert list(table["run"]) == [study.runs[n].label for n in ("seed_multilabel_resnet152", "strong_multilabel_vit_b32")]
    assert studies.task_runs(study, "multilabel") == ["seed_multilabel_resnet152", "strong_multilabel_vit_b32"]


def test_celeba_pretraining_compares_pretrained_with_scratch_from_the_first_validation() -> None:
    md = celeba_md(celeba_results())
    assert bullet(md, "Pretraining") == (
        "- **Pretraining** (ViT-B/32, pretrained (seed setting) against ViT-B/32 from scratch (effect of "
        "pretraining)): 91.0% against 80.1% (+10.9 points, noise ±1.0: pretraining helped). At the first "
        "validation (50 steps) it stood at "
        "85.0% against 60.0%.")
    results = celeba_results()
    results["binary_vit_b32_scratch"].val_steps = pd.DataFrame(columns=["step", "val_accuracy"])
    assert bullet(celeba_md(results), "Pretraining").endswith("(+10.9 points, noise ±1.0: pretraining helped).")
    assert bullet(celeba_md(celeba_results(binary_vit_b32_scratch=None)), "Pretraining") == (
        "- **Pretraining** Skipped, not run: binary_vit_b32_scratch.")


@pytest.mark.parametrize("reverse, rho", [
    (False, "+1.00: larger models were more accurate here, as the seed found"),
    (True, "-1.00: larger models were less accurate here, unlike the seed's finding")])
def test_celeba_cnn_size_rank_correlation_and_mixed_starting_points(reverse: bool, rho: str) -> None:
    by_size = sorted(CELEBA_FAMILY, key=CELEBA_PARAMS.get)
    accs = [0.80, 0.85, 0.90, 0.92, 0.95][::-1 if reverse else 1]
    md = celeba_md(celeba_results(**dict(zip(by_size, accs))))
    assert bullet(md, "CNN size.") == (
        f"- **CNN size.** Over 5 CNNs (naive_cnn, alexnet, vgg16, resnet101, resnet152), the rank correlation of "
        f"parameters and accuracy is {rho}; a random order of 5 models gives a correlation this strong with "
        f"probability 0.02, so this is unlikely to be chance alone. Their starting "
        f"points differ (naive_cnn: scratch; alexnet: pretrained; vgg16: pretrained; resnet101: pretrained; "
        f"resnet152: pretrained), which this comparison mixes in.")


def test_celeba_cnn_size_needs_three_cnns_and_says_nothing_of_equal_starts() -> None:
    results = celeba_results()
    results["cnn_naive"].raw["weights"] = IMAGENET
    assert bullet(celeba_md(results), "CNN size.").endswith("so this is weak evidence.")
    three = celeba_results(cnn_naive=None, cnn_alexnet=None)
    assert "Over 3 CNNs (vgg16, resnet101, resnet152)" in bullet(celeba_md(three), "CNN size.")
    assert bullet(celeba_md(three), "CNN size.").endswith("Not run: cnn_naive, cnn_alexnet.")
    two = celeba_md(celeba_results(cnn_naive=None, cnn_alexnet=None, cnn_vgg16=None))
    assert bullet(two, "CNN size.") == "- **CNN size.** Skipped, not run: cnn_naive, cnn_alexnet, cnn_vgg16."


# ------------------------------------------- issue 30: prose true of the profile that ran

@pytest.mark.parametrize("x, digits, text", [(-0.0004, 2, "+0.00"), (-0.004, 2, "+0.00"), (0.0, 2, "+0.00"),
                                             (-0.006, 2, "-0.01"), (0.31, 2, "+0.31"), (-0.04, 1, "+0.0")])
def test_signed_never_prints_a_signed_zero(x: float, digits: int, text: str) -> None:
    assert common.signed(x, digits) == text


def test_pts_of_a_tiny_fall_is_no_signed_zero() -> None:
    assert common.pts(0.5, 0.50004) == "+0.0 points"


def test_plateau_cell_of_a_tiny_fall_is_no_signed_zero() -> None:
    from cnnvit.studies.plateau import plateau_of
    run = fake_run(0.5, train_loss=[1.0] * 10, val_acc=[0.5] * 8 + [0.4996, 0.4996])  # -0.04 points
    assert plateau_of(run).cell() == "flat: +0.0 pts, epochs 7-10"


@pytest.mark.parametrize("n, text", [(0, "0 distinct classes"), (1, "1 distinct class"), (2, "2 distinct classes")])
def test_plural_agrees_with_its_count(n: int, text: str) -> None:
    assert common.plural(n, "distinct class", "distinct classes") == text


@pytest.mark.parametrize("x, y, rho, p", [
    ([1, 2, 3], [0.1, 0.2, 0.3], 1.0, 2 / 6),          # three in order: 1 ordering of 6 (and its reverse)
    ([1, 2, 3, 4, 5], [5, 4, 3, 2, 1], -1.0, 2 / 120),
    ([1, 2, 3], [0.5, 0.5, 0.5], float("nan"), float("nan")),  # no order to correlate
])
def test_rank_correlation_gives_its_permutation_p_value(x, y, rho: float, p: float) -> None:
    got_rho, got_p = common.rank_correlation(x, y)
    assert got_rho == pytest.approx(rho, nan_ok=True) and got_p == pytest.approx(p, nan_ok=True)


def test_celeba_cnn_size_of_three_models_is_weak_evidence() -> None:
    """Three CNNs in perfect order of size happen by chance once in three orderings: the bullet
    gives the direction and says how little three models show."""
    line = bullet(celeba_md(celeba_results(cnn_naive=None, cnn_alexnet=None)), "CNN size.")
    assert ("the rank correlation of parameters and accuracy is +1.00: larger models were more accurate here, "
            "as the seed found; a random order of 3 models gives a correlation this strong with probability "
            "0.33, so this is weak evidence.") in line
    assert "(+1: the larger" not in line


def test_tiny_imagenet_batchnorm_says_when_both_vgg19s_stalled() -> None:
    """The bullet uses the diagnosis table's criterion for both runs: when the run with BatchNorm
    stalled too, it says so, and that the pair shows nothing of BatchNorm."""
    results = tiny_results(vgg19_run=stalled_vgg19())
    results["vgg19_bn"] = stalled_vgg19()
    study = study_of(TINY)
    table = studies.diagnosis_table(study, {n: results[n] for n in ("vgg19_bn", "vgg19")})
    assert list(table["status"]) == ["stalled", "stalled"]
    line = bullet(studies.tiny_imagenet_conclusions(study, results), "BatchNorm.")
    assert line.count("**stalled**") == 2
    assert line.endswith("to 0.0002. With BatchNorm it also **stalled**: its training loss ended at 5.296, "
                         "against ln C = 5.298 for a uniform guess, and it predicts 1 distinct class on the test "
                         "split; its gradient norm went from 1.5 to 0.0002, so this pair cannot show what BatchNorm "
                         "does here.")
    # only the run with BatchNorm stalled: the run without it learned, and the bullet says both
    results = tiny_results()
    results["vgg19_bn"] = stalled_vgg19()
    line = bullet(studies.tiny_imagenet_conclusions(study, results), "BatchNorm.")
    assert "it **did learn** here, unlike in the seed. With BatchNorm, though, it **stalled**: " in line


def test_transformers_batch_size_marks_the_recipes_run_by_its_config() -> None:
    """The recipe's run (the augmentation ablation's baseline) is marked at whatever batch its
    config gives it, not at the paper's 128."""
    study = study_of(TRANSFORMERS)
    study.runs["deit"].config.train.grad_accum = 1  # the recipe's run now at batch 32, beside bs_32
    line = bullet(studies.transformers_conclusions(study, transformer_results()), "Batch size")
    batch = study.runs["deit"].config.train.batch_size
    assert f"{batch} (the recipe's run): 87.3%" in line
    assert "128 (the recipe's run)" not in line


def laptop_celeba_results() -> dict[str, FakeRun]:
    """Study 5's laptop binary runs over three seeds: seed 0 of the ResNet is the best single
    run, the ViT the best on the mean."""
    acc = {"seed_binary_resnet152": (0.92, 0.85, 0.85), "seed_binary_vit_b32": (0.91, 0.93, 0.915),
           "binary_vit_b32_scratch": (0.85,)}
    out = {}
    for n, seeds in acc.items():
        for i, a in enumerate(seeds):
            out[n if i == 0 else f"{n}.seed{i}"] = fake_run(
                a, n_classes=2, majority_baseline=0.6, test_counts=[600, 400], test={"balanced_accuracy": a - 0.05})
    return out


def test_celeba_binary_and_pretraining_give_the_same_mean_over_seeds() -> None:
    md = studies.celeba_conclusions(study_of(CELEBA, "laptop"), laptop_celeba_results())
    mean = "91.8% ± 1.0 (3 seeds)"
    binary, pre = bullet(md, "Binary."), bullet(md, "Pretraining")
    assert binary.startswith(f"- **Binary.** Highest test accuracy: ViT (0.14M), pretrained here, binary (seed "
                             f"setting), {mean} against 60.0% for always answering the majority (+31.8 points); "
                             f"balanced accuracy 86.8%.")
    assert f"{mean} against 85.0%" in pre
    # (the curves are one seed's: the bullet says which)
    results = laptop_celeba_results()
    for n in ("seed_binary_vit_b32", "binary_vit_b32_scratch"):
        results[n].val_steps = pd.DataFrame({"step": [50], "val_accuracy": [0.7]})
    pre = bullet(studies.celeba_conclusions(study_of(CELEBA, "laptop"), results), "Pretraining")
    assert " At the first validation of seed 0's runs (50 steps) it stood at 70.0% against 70.0%." in pre
    assert "91.0%" not in binary + pre  # seed 0's figure alone


def test_celeba_stronger_recipe_that_trades_accuracy_says_so() -> None:
    """Class weights buy balanced accuracy with accuracy: the bullet gives both differences."""
    results = celeba_results()
    results["seed_hair5_resnet152"] = fake_run(0.8302, n_classes=5, majority_baseline=0.3512,
                                               test={"balanced_accuracy": 0.7302})
    results["strong_hair5_resnet152"] = fake_run(0.7302, n_classes=5, majority_baseline=0.3512,
                                                 test={"balanced_accuracy": 0.8302})
    line = bullet(celeba_md(results), "Five hair colours.")
    assert ("Stronger recipe against the seed setting: CNN -10.0 points of accuracy and +10.0 of balanced "
            "accuracy: it trades accuracy for balanced accuracy; ViT +2.1 points of accuracy and +2.1 of balanced "
            "accuracy.") in line


def test_cifar10_laptop_names_its_stand_ins_as_what_they_are() -> None:
    study = study_of(CIFAR, "laptop")
    md = studies.cifar10_conclusions(study, cifar_results())
    assert bullet(md, "Seed settings.").startswith("- **Seed settings.** ResNet (`resnet10_mini_cifar`) reached "
                                                   "88.1% in 20 epochs and ViT (`vit_mini_cifar`) 65.4%")
    assert bullet(md, "ResNet, strong recipe").startswith("- **ResNet, strong recipe** (`resnet10_mini_cifar`).")
    assert "With the seed's flip and normalisation ViT reached" in bullet(md, "Preprocessing ablation.")
    assert "ResNet-18 (" not in md and "ViT-B/16 (" not in md


@pytest.mark.parametrize("name, profile, absent", [
    (CIFAR, "laptop", ("ResNet-18", "ViT-B/16")), (CELEBA, "laptop", ("AlexNet", "VGG16", "ResNet-101", "ResNet-152")),
    (CELEBA, "paper", ())])
def test_study_intro_lists_the_runs_of_the_profile_that_ran(name: str, profile: str, absent: tuple) -> None:
    study = study_of(name, profile)
    intro = studies.study_intro(study)
    assert intro.startswith(f"**Here (profile `{profile}`).** ")
    runs = [line for line in intro.splitlines() if line.startswith("- ")]
    originals = [n for n, spec in study.runs.items() if not spec.replica_of]
    assert len(runs) == len(originals)
    for line, n in zip(runs, originals):
        spec = study.runs[n]
        assert line.startswith(f"- {spec.label}: `{spec.config.model.name}`")
        assert f"{spec.config.train.epochs} epoch" in line
        assert (f"{len(study.repeats(n))} seeds" in line) == (len(study.repeats(n)) > 1)
    assert not [word for word in absent if word in intro]
    if profile == "paper":
        assert "AlexNet" in intro


@pytest.mark.parametrize("name", STUDY_NAMES)
def test_notebook_shows_the_profiles_runs_after_its_setup(name: str) -> None:
    """The fixed introduction holds what is true of every profile; the runs of the profile that
    ran are shown by code right after the cell that loads the study."""
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    here = nb.cells[0].source[nb.cells[0].source.index("**Here.**"):]
    assert not [w for w in ("ResNet-18", "ViT-B/32", "32 px", "AlexNet", "4x4") if w in here], here
    setup = next(i for i, c in enumerate(nb.cells) if "load_study(" in c.source)
    assert "study_intro(study)" in nb.cells[setup + 1].source

@pytest.mark.parametrize("weights, kind, summary", [
    (SCRATCH, "scratch", "trained from scratch"),
    (IMAGENET, "pretrained", "pretrained"),
    (origin("file", "/w/deit.pth", label="pretrained weights from /w/deit.pth: 150 tensors loaded"), "pretrained",
     "pretrained weights from /w/deit.pth"),
    (origin("run", "/o/runs/pretrain", data="celeba", model="test_vit", run="pretrain",
            label="pretrained on celeba by this project (test_vit, run pretrain): 152 tensors loaded"),
     "pretrained (this project)", "pretrained on celeba by this project (test_vit, run pretrain)"),
    # run folders written before metrics.json held the origin as data: its fixed sentences
    ("trained from scratch", "scratch", "trained from scratch"), ("", "scratch", "trained from scratch"),
    ("pretrained: torchvision weights https://x/resnet152.pth", "pretrained", "pretrained"),
    ("pretrained weights from /w/deit.pth: 150 tensors loaded", "pretrained", "pretrained weights from /w/deit.pth"),
    ("pretrained on celeba by this project (test_vit, run pretrain): 152 tensors loaded",
     "pretrained (this project)", "pretrained on celeba by this project (test_vit, run pretrain)"),
])
def test_weights_kind_and_summary_read_the_structured_origin(weights, kind: str, summary: str) -> None:
    origin = WeightsOrigin.from_json(weights)
    assert studies.weights_kind(origin) == kind
    assert studies.weights_summary(origin) == summary
    assert origin.label == (weights["label"] if isinstance(weights, dict) else weights or "trained from scratch")


def test_weights_are_read_from_the_structured_fields_not_the_label() -> None:
    """The label is for display: a run origin is named from its fields, whatever the label says."""
    run = origin("run", "/o/runs/pre", data="celeba", model="test_vit", run="pre", label="trained from scratch")
    assert studies.weights_kind(WeightsOrigin.from_json(run)) == "pretrained (this project)"
    assert studies.weights_summary(WeightsOrigin.from_json(run)) == "pretrained on celeba by this project (test_vit, run pre)"
    assert studies.weights_kind(WeightsOrigin.from_json({**SCRATCH, "label": "pretrained: timm weights x"})) == "scratch"


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_celeba_caveat_by_profile(profile: str) -> None:
    study = as_profile(study_of(CELEBA, "paper" if profile == "paper" else "smoke"), profile)
    md = studies.celeba_conclusions(study, celeba_results())
    assert_caveat(md, profile, "CelebA")


# ----------------------------------------------------------- a diverged run in the summary table

def test_summary_table_marks_a_diverged_run_and_keeps_its_number() -> None:
    study = study_of(CIFAR)
    results = cifar_results()
    for run in results.values():
        run.raw.update(test_top5=0.99, wall_time_s=10.0, train_images_per_s=100.0, device="cpu",
                           epochs_run=run.raw["epochs"])
        run.raw["dataset"].update(n_train=50_000, n_val=0)
        run.data_info["native_size"] = [32, 32]
    results["seed_vit_b16"].raw.update(diverged={"epoch": 4, "step": 900, "loss": "nan"}, epochs_run=4)
    table = summary_table(study, results).set_index("run")
    assert table.loc[study.runs["seed_vit_b16"].label, "epochs"] == "4 of 30 (diverged)"
    assert table.loc[study.runs["seed_resnet18"].label, "epochs"] == 20
    assert table.loc[study.runs["seed_vit_b16"].label, "test acc"] == 0.6543


# ------------------------------------------ every study's bullets with every run of each profile

def all_runs(name: str, profile: str, study: Optional[Study] = None) -> dict[str, FakeRun]:
    """A plausible finished run for every run of the study's parameter file."""
    study = study or study_of(name, profile)
    n_classes = {"binary": 2, "hair5": 5, "multilabel": 40}
    out = {}
    for i, (run, spec) in enumerate(study.runs.items()):
        classes = n_classes[spec.config.data.task] if spec.config.data.name == "celeba" else 10
        out[run] = fake_run(0.5 + 0.01 * i, n_classes=classes, test={"mean_average_precision": 0.5},
                            val_loss=(2.0, 1.5), val_steps=pd.DataFrame({"step": [10], "val_accuracy": [0.5]}))
    return out


def conclusions_of(study: Study, results: dict[str, FakeRun]) -> str:
    """The study's conclusions as its notebook computes them."""
    return STUDIES[study.study].conclusions(study, results)


def expected_bullets(name: str, profile: str) -> list[str]:
    label = study_of(name, profile).runs
    if name == TINY:
        return ["BatchNorm.", "Depth.", "Skip connections.", "Cardinality.", "CNN vs T2T-ViT.",
                f"Stronger recipe: {label['strong_resnet50'].label}."]
    if name == FINETUNE:
        return ["Seed setting", label["partial_finetune"].label, label["full_finetune"].label, "Pretraining."]
    return {CIFAR: ["Seed settings.", "Trends.", "Preprocessing ablation.", "ResNet-18, strong recipe",
                    "ViT, strong recipe"],
            TRANSFORMERS: ["Models", "Frozen backbone vs fine-tuning", "Optimizers", "Augmentation ablation",
                           "Batch size"],
            CELEBA: ["Binary.", "Five hair colours.", "Multi-label.", "Pretraining", "CNN size."]}[name]


def test_every_study_has_its_module() -> None:
    assert list(STUDIES) == list(STUDY_NAMES)
    for name, module in STUDIES.items():
        assert module.STUDY == name and callable(module.conclusions) and module.GROUPS


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", STUDY_NAMES)
def test_every_conclusion_is_drawn_from_each_profiles_full_set_of_runs(name: str, profile: str) -> None:
    """With every run of the parameter file finished, every bullet is drawn (none says a run is
    missing)."""
    md = conclusions_of(study_of(name, profile), all_runs(name, profile))
    assert bullets(md) == expected_bullets(name, profile)
    assert "not run" not in md.lower()
    assert (caveat_lines(md) == []) == (profile == "paper")
    if name == TINY:  # the optional clauses of runs that exist in the profile
        assert ("at the native 64 px" in md) == ("t2t_vit_64" in study_of(name, profile).runs)
        assert "for its seed setting" in bullet(md, "Stronger recipe")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", STUDY_NAMES)
def test_a_conclusion_whose_runs_did_not_run_says_so(name: str, profile: str) -> None:
    """Each run a group names, missing alone: no bullet disappears, and the text names the run."""
    study = study_of(name, profile)
    named = list(dict.fromkeys(n for g in study.groups for n in study.members(g)))
    for run in named:
        results = {n: r for n, r in all_runs(name, profile).items() if n != run}
        md = conclusions_of(study, results)
        assert bullets(md) == expected_bullets(name, profile), run
        said = [line for line in md.splitlines() if "not run: " in line.lower()]
        assert said and all(run in line for line in said), (run, md)


# ------------------------------------------------- the runs of each conclusion come from params/

def _group_vocabulary() -> set[str]:
    """The names of the groups and of their parts (words of the schema, not run names)."""
    words = set()
    for module in STUDIES.values():
        for group, spec in module.GROUPS.items():
            words |= {group, *spec.keys}
    return words


def _params_run_names() -> set[str]:
    return {n for name in STUDY_NAMES for profile in PROFILES for n in _load(name, profile).runs}


def _string_constants(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", STUDY_NAMES)
def test_every_group_names_runs_of_its_parameter_file(name: str, profile: str) -> None:
    """load_study refuses a group naming a run the file lacks; here, what that leaves: every
    group of the study's schema is declared and names runs of the file, and every role is known."""
    study = _load(name, profile)
    assert list(study.groups) == list(STUDIES[name].GROUPS)
    for group in study.groups:
        members = study.members(group)
        assert members and set(members) <= set(study.runs), group
    assert {spec.role for spec in study.runs.values()} <= {"seed", "ablation", "strong"}
    assert study.pretraining_sources <= set(study.runs)


def test_no_study_module_or_notebook_spells_a_run_name() -> None:
    """Which runs a conclusion compares is read from the parameter files' groups: no string in
    cnnvit/studies/ or in a notebook's code is a run name (group and part names aside, e.g.
    study 4's ``scratch`` group, whose run has the same name)."""
    runs = _params_run_names() - _group_vocabulary()
    package = Path(inspect.getfile(studies)).parent
    for path in sorted(package.glob("*.py")):
        assert _string_constants(ast.parse(path.read_text())) & runs == set(), path.name
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert _string_constants(ast.parse(code)) & runs == set(), path.name


def test_the_run_name_check_is_not_vacuous() -> None:
    """The check above finds a run name where one is spelled."""
    runs = _params_run_names() - _group_vocabulary()
    assert {"seed_resnet18", "resnet50_noskip", "deit", "seed_linear_probe", "cnn_naive", "pretrain"} <= runs
    assert _string_constants(ast.parse('acc["seed_resnet18"] if "deit" in acc else 0')) & runs == {
        "seed_resnet18", "deit"}


def renamed_copy(name: str, profile: str, tmp_path: Path, prefix: str = "renamed_") -> tuple[Path, dict[str, str]]:
    """A copy of the parameter file with every run that a group names renamed: its key under
    ``runs:``, the groups and every ``run:NAME`` reference. Returns the copy and old -> new."""
    raw = yaml.safe_load((ROOT / "params" / profile / f"{name}.yaml").read_text())
    study = _load(name, profile)
    new = {n: prefix + n for g in study.groups for n in study.members(g)}

    def swap(value, keys: bool = False):  # keys: a pairs group's keys are runs, a parts group's are not
        if isinstance(value, str):
            return new.get(value, value)
        if isinstance(value, list):
            return [swap(v) for v in value]
        return {(swap(k) if keys else k): swap(v) for k, v in value.items()}

    raw["runs"] = {new.get(n, n): spec for n, spec in raw["runs"].items()}
    kinds = {g: spec.kind for g, spec in STUDIES[name].GROUPS.items()}
    raw["groups"] = {g: swap(v, keys=kinds[g] == "pairs") for g, v in raw["groups"].items()}
    for spec in raw["runs"].values():
        model = (spec.get("config") or {}).get("model") or {}
        ref = model.get("pretrained_path", "")
        if ref.startswith("run:"):
            model["pretrained_path"] = "run:" + new.get(ref[4:], ref[4:])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path, new


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", STUDY_NAMES)
def test_a_run_renamed_in_a_copy_of_the_parameter_file_is_still_named_by_the_conclusions(
        name: str, profile: str, tmp_path: Path) -> None:
    """Rename the runs (in a copy of params/, with the groups and references that name them):
    the conclusions read the same, and a missing one is named by its new name."""
    path, new = renamed_copy(name, profile, tmp_path)
    renamed = load_study(path)
    assert set(new.values()) <= set(renamed.runs)
    original = study_of(name, profile)
    assert conclusions_of(renamed, all_runs(name, profile, renamed)) == \
        conclusions_of(original, all_runs(name, profile, original))
    old, run = next(iter(new.items()))
    results = {n: r for n, r in all_runs(name, profile, renamed).items() if n != run}
    md = conclusions_of(renamed, results)
    assert bullets(md) == expected_bullets(name, profile)
    said = [line for line in md.splitlines() if "not run: " in line.lower()]
    assert said and all(run in line for line in said) and not re.search(rf"\b{old}\b", md), md


# ------------------------------------------------------------------------------------ laptop
# The laptop profile repeats each study's headline over 3 seeds: its bullets give the mean ± std
# of the repeats (not the first seed's number), and say whether the seed's finding reproduces.

LAPTOP_HEADLINES = {  # study -> (the bullet of its headline, the runs repeated in it)
    CIFAR: ("Seed settings.", ("seed_resnet18", "seed_vit_b16")),
    TINY: ("BatchNorm.", ("vgg19_bn", "vgg19")),
    TRANSFORMERS: ("Frozen backbone vs fine-tuning", ("deit_head_only", "deit")),
    FINETUNE: ("Seed setting", ("seed_linear_probe",)),
}


@pytest.mark.parametrize("name", list(LAPTOP_HEADLINES))
def test_laptop_headline_is_the_mean_and_spread_over_its_seeds(name: str) -> None:
    study = study_of(name, "laptop")
    lead, headline = LAPTOP_HEADLINES[name]
    # every run at 0.40, each headline run's repeats at 0.30, 0.40, 0.50 (+0.01 per headline run)
    accs = {n: 0.40 for n in study.runs}
    for k, base in enumerate(headline):
        for seed_shift, repeat in zip((-0.1, 0.0, 0.1), study.repeats(base)):
            accs[repeat] = 0.40 + seed_shift + 0.01 * k
    assert all(len(study.repeats(b)) == 3 for b in headline), "the laptop headline runs over 3 seeds"
    n_classes = 20 if name == TINY else 10
    results = {n: fake_run(a, n_classes=n_classes, train_loss=(2.5, 2.0), test={"macro_f1": a}, weights=SCRATCH)
               for n, a in accs.items()}
    md = {CIFAR: studies.cifar10_conclusions, TINY: studies.tiny_imagenet_conclusions,
          TRANSFORMERS: studies.transformers_conclusions, FINETUNE: studies.finetune_conclusions}[name](study, results)
    line = bullet(md, lead)
    for k, _ in enumerate(headline):
        assert f"{40 + k:.1f}% ± 10.0 (3 seeds)" in line, line
    assert "the mean over seeds where a run was repeated" in md.splitlines()[0]
    assert md.splitlines()[-1].startswith("*Profile `laptop`")


def test_celeba_binary_table_shows_the_seeds_auroc_beside_the_score_based_one() -> None:
    """The seed's "auROC" is the ROC of hard labels, i.e. the balanced accuracy: shown, labelled,
    beside the auROC of the scores."""
    study = study_of(CELEBA)
    results = {n: fake_run(0.9, n_classes=2, test={"balanced_accuracy": 0.81, "auroc": 0.95,
                                                   "per_class": {"c1": {"precision": 0.9, "recall": 0.8, "f1": 0.85}}})
               for n in studies.task_runs(study, "binary")}
    table = studies.celeba_table(study, results, "binary")
    assert (table["auROC"] == 0.95).all() and (table["auROC of hard labels (the seed's)"] == 0.81).all()


# ------------------------------------------------------------- every study: verdicts and the plateau

RISING = dict(train_loss=(2.0, 1.5, 1.2, 1.0, 0.9), val_acc=(0.3, 0.4, 0.45, 0.5, 0.56))  # +6 points at the end


@pytest.mark.parametrize("name, conclude, results, run, lead", [
    (TINY, "tiny_imagenet_conclusions", tiny_results, "resnet50", "Depth."),
    (TINY, "tiny_imagenet_conclusions", tiny_results, "resnext50", "Cardinality."),
    (TRANSFORMERS, "transformers_conclusions", transformer_results, "swin", "Models"),
    (FINETUNE, "finetune_conclusions", finetune_results, "scratch", "Pretraining."),
    (CELEBA, "celeba_conclusions", celeba_results, "binary_vit_b32_scratch", "Pretraining"),
    (CELEBA, "celeba_conclusions", celeba_results, "seed_hair5_resnet152", "Five hair colours."),
    (CELEBA, "celeba_conclusions", celeba_results, "cnn_naive", "CNN size."),
], ids=["02-depth", "02-cardinality", "03-models", "04-pretraining", "05-pretraining", "05-task", "05-cnn-size"])
def test_a_verdict_resting_on_a_run_still_rising_says_so_and_only_that_one(name, conclude, results, run, lead):
    """Every study: a run still gaining at its last epochs puts 'may be under-trained' on the
    verdicts that use it, naming it, and on no other bullet."""
    res = results()
    flat = studies.__dict__[conclude](study_of(name), res)
    assert "under-trained" not in flat  # the fakes are flat by default
    rising = fake_run(res[run].metrics.test_accuracy, **RISING)
    rising.raw = {**res[run].raw}
    rising.val_steps, rising.data_info, rising.preds = res[run].val_steps, res[run].data_info, res[run].preds
    res[run] = rising
    study = study_of(name)
    md = studies.__dict__[conclude](study, res)
    line = bullet(md, lead)
    assert line.endswith(f"*May be under-trained: {study.runs[run].label} was still rising (+6.0 points over "
                         f"the last 20% of epochs).*")
    assert md.count("under-trained") == sum("under-trained" in bullet(md, b) for b in bullets(md))
    # the smoke profile's one-epoch runs prove the pipeline: no caveat on numbers it already disowns
    assert "under-trained" not in studies.__dict__[conclude](as_profile(study, "smoke"), res)
    assert "under-trained" in studies.__dict__[conclude](as_profile(study, "laptop"), res)


def test_the_caveat_counts_a_runs_seeds_that_are_still_rising() -> None:
    results = cifar_results()
    study = study_of(CIFAR)
    for i, val in enumerate(((0.5, 0.55, 0.6, 0.62, 0.652), (0.5, 0.55, 0.6, 0.65, 0.652)), start=1):
        results[f"seed_vit_b16.seed{i}"] = fake_run(0.65, epochs=30, train_loss=(2.0,) * 5, val_acc=val)
        study.runs[f"seed_vit_b16.seed{i}"] = dataclasses.replace(study.runs["seed_vit_b16"], replica_of="seed_vit_b16")
    line = bullet(studies.cifar10_conclusions(study, results), "Preprocessing ablation.")
    assert line.endswith(f"*May be under-trained: {study.runs['seed_vit_b16'].label}: 1 of 3 seeds still rising "
                         f"(+3.2 points over the last 20% of epochs).*")
