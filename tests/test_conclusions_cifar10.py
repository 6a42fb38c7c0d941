"""The conclusions of study 1 (CIFAR-10: ViT against ResNet) on synthetic results:
:mod:`cnnvit.studies.cifar10_vit_vs_resnet`.

Each test feeds hand-made results (:func:`helpers.fake_run`) to the study's conclusion function
with its real parameter file and checks what the text says; the fakes and the text checks are
in ``helpers.py``, what every study shares in ``test_conclusions_common.py``.
"""
from __future__ import annotations

import dataclasses

import pytest

from cnnvit import studies
from cnnvit.studies import common

from helpers import CIFAR, as_profile, assert_caveat, bullet, bullets, cifar_results, fake_run, study_of

# ----------------------------------------------------------------------------- study 1: CIFAR-10

def test_cifar10_header_names_profile_and_test_split_size() -> None:
    results = cifar_results()
    results["seed_resnet18"].raw["dataset"]["n_test"] = 9876
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), results)
    assert md.splitlines()[0].startswith("*Computed from the runs of profile `paper`; ")
    assert "full test split (9876 images)" in md.splitlines()[0]


@pytest.mark.parametrize("resnet, vit, lead, verdict", [
    (0.8812, 0.6543, "the CNN leads by 22.7 points", "reproduces in direction"),
    (0.6011, 0.7023, "the ViT leads by 10.1 points", "does not reproduce"),  # not "the CNN leads by -10.1"
])
def test_cifar10_seed_settings_name_the_leader_and_whether_the_seeds_gap_reproduces(
        resnet: float, vit: float, lead: str, verdict: str) -> None:
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), cifar_results(seed_resnet18=resnet, seed_vit_b16=vit))
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
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), cifar_results(
        seed_vit_b16=with_pre, ablation_vit_b16_no_preprocessing=without))
    line = bullet(md, "Preprocessing ablation.")
    assert (f"With the seed's flip and normalisation ViT-B/16 reached {100 * with_pre:.1f}%, without them "
            f"{100 * without:.1f}%: {verdict} ({diff} points, noise ±") in line


def test_cifar10_strong_recipes_compare_with_their_own_seed_run_and_meet_paper_targets() -> None:
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), cifar_results())
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
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), cifar_results(strong_resnet18=resnet))
    assert bullet(md, "ResNet-18, strong recipe").endswith(f"Target at least 95.0%: {met}.")
    assert bullet(md, "ViT, strong recipe").endswith("Target at least 90.0%: met.")


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_cifar10_targets_and_caveat_by_profile(profile: str) -> None:
    """The published targets only mean something for the paper profile; the caveat is the
    converse."""
    study = as_profile(study_of(CIFAR, "paper" if profile == "paper" else "smoke"), profile)
    md = studies.cifar10_vit_vs_resnet.conclusions(study, cifar_results())
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
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), results)
    assert bullet(md, "Trends.") == lead + (
        "the ViT is level at its end (flat: +0.0 pts, epochs 1-2) (unlike the seed) and the ResNet level at its "
        "end (flat: +0.0 pts, epochs 1-2) (as the seed saw).")
    rising = [0.40, 0.45, 0.50, 0.55, 0.60]
    results["seed_vit_b16"] = fake_run(0.6543, epochs=5, train_loss=[1.0] * 5, val_acc=rising)
    results["seed_resnet18"] = fake_run(0.8812, epochs=5, train_loss=[1.0] * 5, val_acc=rising)
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), results)
    assert bullet(md, "Trends.") == lead + (
        "the ViT is still rising at its end (rising: +5.0 pts, epochs 4-5) (as the seed saw) and the ResNet still "
        "rising at its end (rising: +5.0 pts, epochs 4-5) (unlike the seed).")


def test_cifar10_missing_runs_say_so_in_their_own_bullets() -> None:
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), cifar_results(seed_resnet18=None, strong_vit=None))
    assert bullets(md) == ["Seed settings.", "Trends.", "Preprocessing ablation.", "ResNet-18, strong recipe",
                           "ViT, strong recipe"]
    assert bullet(md, "Seed settings.") == "- **Seed settings.** Skipped, not run: seed_resnet18."
    assert bullet(md, "Trends.") == "- **Trends.** Skipped, not run: seed_resnet18."
    assert bullet(md, "ResNet-18, strong recipe") == "- **ResNet-18, strong recipe** Skipped, not run: seed_resnet18."
    assert bullet(md, "ViT, strong recipe") == "- **ViT, strong recipe** Skipped, not run: strong_vit."
    assert "not run" not in bullet(md, "Preprocessing ablation.")
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), cifar_results(ablation_vit_b16_no_preprocessing=None))
    assert bullet(md, "Preprocessing ablation.") == (
        "- **Preprocessing ablation.** Skipped, not run: ablation_vit_b16_no_preprocessing.")
    assert [lead for lead in bullets(md) if "not run" in bullet(md, lead)] == ["Preprocessing ablation."]


def test_cifar10_level_seed_settings_get_no_verdict() -> None:
    md = studies.cifar10_vit_vs_resnet.conclusions(study_of(CIFAR), cifar_results(seed_resnet18=0.7, seed_vit_b16=0.7))
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
    line = bullet(studies.cifar10_vit_vs_resnet.conclusions(study, results), "Preprocessing ablation.")
    assert f"no verdict, the difference is within the noise (+1.0 points, noise ±{100 * noise:.1f};" in line


def test_cifar10_verdict_on_a_run_still_rising_says_it_may_be_under_trained() -> None:
    rising = dict(train_loss=(2.0, 1.5, 1.2, 1.0, 0.9), val_acc=(0.5, 0.7, 0.8, 0.86, 0.9534))
    results = cifar_results()
    results["strong_resnet18"] = fake_run(0.9534, epochs=200, **rising)
    study = study_of(CIFAR)
    md = studies.cifar10_vit_vs_resnet.conclusions(study, results)
    label = study.runs["strong_resnet18"].label
    assert bullet(md, "ResNet-18, strong recipe").endswith(
        f"*May be under-trained: {label} was still rising (+9.3 points over the last 20% of epochs).*")
    assert "under-trained" not in bullet(md, "ViT, strong recipe")  # its runs are flat
    assert "under-trained" not in bullet(md, "Seed settings.")


# ------------------------------------------- issue 30: prose true of the profile that ran

def test_cifar10_laptop_names_its_stand_ins_as_what_they_are() -> None:
    study = study_of(CIFAR, "laptop")
    md = studies.cifar10_vit_vs_resnet.conclusions(study, cifar_results())
    assert bullet(md, "Seed settings.").startswith("- **Seed settings.** ResNet (`resnet10_mini_cifar`) reached "
                                                   "88.1% in 20 epochs and ViT (`vit_mini_cifar`) 65.4%")
    assert bullet(md, "ResNet, strong recipe").startswith("- **ResNet, strong recipe** (`resnet10_mini_cifar`).")
    assert "With the seed's flip and normalisation ViT reached" in bullet(md, "Preprocessing ablation.")
    assert "ResNet-18 (" not in md and "ViT-B/16 (" not in md
