"""The conclusions of study 2 (Tiny-ImageNet CNN ablations) on synthetic results:
:mod:`cnnvit.studies.tiny_imagenet_cnn_ablations`.

Each test feeds hand-made results (:func:`helpers.fake_run`) to the study's conclusion function
with its real parameter file and checks what the text says; the fakes and the text checks are
in ``helpers.py``, what every study shares in ``test_conclusions_common.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

from cnnvit import studies
from cnnvit.studies.tiny_imagenet_cnn_ablations import EFFECTS

from helpers import (FakeRun, TINY, as_profile, assert_caveat, bullet, bullets, fake_run, study_of,
                     tiny_results)

# ------------------------------------------------------------------------- study 2: Tiny-ImageNet

def stalled_vgg19() -> FakeRun:
    """VGG19 without BatchNorm as the seed saw it: loss at ln 200, one class predicted, gradients gone."""
    return fake_run(0.005, n_classes=200, train_loss=(5.3, 5.2960), preds=np.full(200, 7),
                    grad_norms=[1.5] * 20 + [0.01] * 160 + [0.0002] * 20)


def test_tiny_imagenet_batchnorm_names_a_stall_with_its_evidence() -> None:
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(vgg19_run=stalled_vgg19()))
    assert bullet(md, "BatchNorm.") == (
        "- **BatchNorm.** VGG19 with BatchNorm reached 52.0% (seed 52.8%), without it 0.5% (seed 0.5%): "
        "it **stalled**: its training loss ended at 5.296, against ln C = 5.298 for a uniform guess, and it "
        "predicts 1 distinct class on the test split; its gradient norm went from 1.5 to 0.0002.")


def test_tiny_imagenet_batchnorm_says_when_vgg19_learned_or_diverged() -> None:
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results())
    assert bullet(md, "BatchNorm.").endswith("without it 41.0% (seed 0.5%): it **did learn** here, unlike in the seed.")
    diverged = fake_run(0.005, n_classes=200, train_loss=(5.3, float("nan")), preds=np.full(200, 3),
                        diverged={"epoch": 2, "step": 123, "loss": "nan"})
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(vgg19_run=diverged))
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
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(
        resnet18=accs[0], resnet34=accs[1], resnet50=accs[2]))
    r18, r34, r50 = (f"{100 * a:.1f}%" for a in accs)
    assert bullet(md, "Depth.") == (f"- **Depth.** ResNet-18 {r18} (seed 55.1%), ResNet-34 {r34} (seed 56.0%), "
                                    f"ResNet-50 {r50} (seed 59.0%): accuracy {trend}.")


def test_tiny_imagenet_skip_and_cardinality_are_signed_against_resnet50_and_the_seeds_gap() -> None:
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results())
    assert bullet(md, "Skip connections.") == (
        "- **Skip connections.** Removing them from ResNet-50 changes top-1 by -9.2 points "
        "(the seed: -4.9 points; same direction); ResNet-34, of similar size, 56.2%.")
    assert bullet(md, "Cardinality.") == (
        "- **Cardinality.** ResNeXt-50 32x4d against ResNet-50 at about the same size: +1.1 points "
        "(the seed: +0.3 points; within the noise, ±1.4 points).")
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(resnext50=0.6233))
    assert bullet(md, "Cardinality.").endswith(": +3.0 points (the seed: +0.3 points; same direction).")
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(resnext50=0.5633))
    assert bullet(md, "Cardinality.").endswith(": -3.0 points (the seed: +0.3 points; the opposite direction).")
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(resnet34=None, resnet50_noskip=0.6101))
    assert bullet(md, "Skip connections.").endswith(
        "changes top-1 by +1.7 points (the seed: -4.9 points; the opposite direction); ResNet-34, of similar size, "
        "not run: resnet34.")


def test_tiny_imagenet_t2t_overfitting_is_read_from_its_curves() -> None:
    """The seed's claim that T2T-ViT overfits: a validation loss that turned up from its lowest
    while the training loss kept falling is overfitting; one still falling is not."""
    results = tiny_results()
    results["t2t_vit"] = fake_run(0.4511, n_classes=200, train_loss=(3.5, 2.7, 2.0), val_loss=(3.6, 2.9, 3.1))
    line = bullet(studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), results), "CNN vs T2T-ViT.")
    assert ("; the seed saw T2T-ViT overfit strongly: here its validation loss ended +0.20 above its lowest "
            "(epoch 2) while its training loss kept falling: overfitting, as the seed saw") in line
    results["t2t_vit"] = fake_run(0.4511, n_classes=200, train_loss=(3.5, 2.7, 2.0), val_loss=(3.6, 2.9, 2.8))
    line = bullet(studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), results), "CNN vs T2T-ViT.")
    assert ("here its validation loss was lowest at its last epoch: no overfitting (unlike the seed)") in line


def test_tiny_imagenet_cnn_vs_t2t_uses_the_last_validated_epoch_and_the_native_run() -> None:
    results = tiny_results()
    # validation only every other epoch: the gap is read at the last epoch that has one
    results["resnext50"] = fake_run(0.6044, n_classes=200, train_loss=(3.0, 1.1, 0.7),
                                    val_loss=(3.2, 2.4, float("nan")))
    results["t2t_vit"] = fake_run(0.4511, n_classes=200, train_loss=(3.5, 2.7), val_loss=(3.6, 2.9))
    line = bullet(studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), results), "CNN vs T2T-ViT.")
    assert line == ("- **CNN vs T2T-ViT.** T2T-ViT-t-14 at 224 px 45.1% (seed 41.6%) against ResNeXt-50 32x4d "
                    "60.4%: -15.3 points (the seed: -17.7 points; same direction); validation minus training loss at the end: ResNeXt-50 32x4d (SGD 0.1, batch 128) +1.30, "
                    "T2T-ViT-t-14 at 224 px (AdamW, its paper's recipe) +0.20; at the native 64 px (16 tokens) "
                    "T2T-ViT-t-14 reached 48.2%.")
    line = bullet(studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(t2t_vit_64=None)), "CNN vs T2T-ViT.")
    assert line == ("- **CNN vs T2T-ViT.** T2T-ViT-t-14 at 224 px 45.1% (seed 41.6%) against ResNeXt-50 32x4d "
                    "60.4%: -15.3 points (the seed: -17.7 points; same direction); at the native 64 px (16 tokens), not run: t2t_vit_64.")
    # a profile without the native run (smoke) does not mention it
    line = bullet(studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY, "smoke"), tiny_results(t2t_vit_64=None)),
                  "CNN vs T2T-ViT.")
    assert line == ("- **CNN vs T2T-ViT.** T2T-ViT stand-in 45.1% (seed 41.6%) against ResNeXt-50 stand-in 60.4%: "
                    "-15.3 points (the seed: -17.7 points; same direction).")


def test_tiny_imagenet_stronger_recipe_compares_with_its_own_seed_run() -> None:
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results())
    label = study_of(TINY).runs["strong_resnet50"].label
    assert bullet(md, "Stronger recipe") == (f"- **Stronger recipe: {label}.** 63.1%, against 59.3% for its seed "
                                             f"setting (+3.8 points).")
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(resnet50=None))
    assert bullet(md, "Stronger recipe") == f"- **Stronger recipe: {label}.** 63.1%."


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_tiny_imagenet_caveat_by_profile(profile: str) -> None:
    study = as_profile(study_of(TINY, "paper" if profile == "paper" else "smoke"), profile)
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study, tiny_results())
    assert md.splitlines()[0].startswith(f"*Computed from the runs of profile `{profile}`: top-1 accuracy on the "
                                         f"10000-image test split")
    assert_caveat(md, profile, "Tiny-ImageNet")


def test_tiny_imagenet_missing_runs_say_so_in_their_own_bullets() -> None:
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(
        vgg19=None, resnet34=None, t2t_vit=None))
    strong = study_of(TINY).runs["strong_resnet50"].label
    assert bullets(md) == ["BatchNorm.", "Depth.", "Skip connections.", "Cardinality.", "CNN vs T2T-ViT.",
                           f"Stronger recipe: {strong}."]
    assert bullet(md, "BatchNorm.") == "- **BatchNorm.** Skipped, not run: vgg19."
    assert bullet(md, "Depth.") == "- **Depth.** Skipped, not run: resnet34."
    assert bullet(md, "CNN vs T2T-ViT.") == "- **CNN vs T2T-ViT.** Skipped, not run: t2t_vit."
    # ResNet-34 only adds a clause to the skip-connection bullet, which says it did not run
    assert bullet(md, "Skip connections.").endswith("; ResNet-34, of similar size, not run: resnet34.")
    md = studies.tiny_imagenet_cnn_ablations.conclusions(study_of(TINY), tiny_results(strong_resnet50=None, resnext50=None))
    assert bullet(md, "Stronger recipe") == f"- **Stronger recipe: {strong}.** Skipped, not run: strong_resnet50."
    assert bullet(md, "Cardinality.") == "- **Cardinality.** Skipped, not run: resnext50."


def test_effect_panels_hold_each_effects_own_runs_and_skip_incomplete_effects() -> None:
    study, results = study_of(TINY), tiny_results(resnet50_noskip=None)
    panels = studies.tiny_imagenet_cnn_ablations.effect_panels(study, results)
    expected = {"BatchNorm (VGG19)": ["vgg19_bn", "vgg19"], "Depth (ResNet)": ["resnet18", "resnet34", "resnet50"],
                "Cardinality": ["resnet50", "resnext50"], "CNN vs T2T-ViT": ["resnext50", "t2t_vit"]}
    assert list(panels) == list(expected)
    for effect, names in expected.items():
        assert list(panels[effect]) == [study.runs[n].label for n in names]
        assert all(panels[effect][study.runs[n].label] is results[n].epochs for n in names)
    assert set(EFFECTS) == set(expected) | {"Skip connections"}
    full = studies.tiny_imagenet_cnn_ablations.effect_panels(study, tiny_results())["Skip connections"]
    assert list(full) == [study.runs[n].label for n in ("resnet50", "resnet50_noskip", "resnet34")]


def test_best_run_and_class_extremes_pick_the_highest() -> None:
    results = tiny_results()
    assert studies.best_run(results) == "strong_resnet50"
    run = fake_run(0.5)
    run.raw["test"]["per_class"] = {c: {"recall": r} for c, r in zip("abcde", (0.5, 0.9, 0.1, 0.7, 0.3))}
    ext = studies.class_accuracy_extremes(run, k=2)
    assert list(ext["best class"]) == ["b", "d"] and list(ext["worst class"]) == ["c", "e"]
    assert list(ext["recall"]) == [0.9, 0.7] and list(ext["recall "]) == [0.1, 0.3]


# ------------------------------------------- issue 30: prose true of the profile that ran

def test_tiny_imagenet_batchnorm_says_when_both_vgg19s_stalled() -> None:
    """The bullet uses the diagnosis table's criterion for both runs: when the run with BatchNorm
    stalled too, it says so, and that the pair shows nothing of BatchNorm."""
    results = tiny_results(vgg19_run=stalled_vgg19())
    results["vgg19_bn"] = stalled_vgg19()
    study = study_of(TINY)
    table = studies.diagnosis_table(study, {n: results[n] for n in ("vgg19_bn", "vgg19")})
    assert list(table["status"]) == ["stalled", "stalled"]
    line = bullet(studies.tiny_imagenet_cnn_ablations.conclusions(study, results), "BatchNorm.")
    assert line.count("**stalled**") == 2
    assert line.endswith("to 0.0002. With BatchNorm it also **stalled**: its training loss ended at 5.296, "
                         "against ln C = 5.298 for a uniform guess, and it predicts 1 distinct class on the test "
                         "split; its gradient norm went from 1.5 to 0.0002, so this pair cannot show what BatchNorm "
                         "does here.")
    # only the run with BatchNorm stalled: the run without it learned, and the bullet says both
    results = tiny_results()
    results["vgg19_bn"] = stalled_vgg19()
    line = bullet(studies.tiny_imagenet_cnn_ablations.conclusions(study, results), "BatchNorm.")
    assert "it **did learn** here, unlike in the seed. With BatchNorm, though, it **stalled**: " in line
