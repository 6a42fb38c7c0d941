"""The conclusions of study 4 (fine-tuning on CIFAR-10) on synthetic results:
:mod:`cnnvit.studies.cifar10_finetune`.

Each test feeds hand-made results (:func:`helpers.fake_run`) to the study's conclusion function
with its real parameter file and checks what the text says; the fakes and the text checks are
in ``helpers.py``, what every study shares in ``test_conclusions_common.py``.
"""
from __future__ import annotations

import pytest

from cnnvit import studies

from helpers import (FINETUNE, as_profile, assert_caveat, bullet, bullets, fake_run,
                     finetune_results, origin, study_of)

# ----------------------------------------------------------------------- study 4: fine-tuning

def test_finetune_seed_setting_against_the_seeds_figures() -> None:
    md = studies.cifar10_finetune.conclusions(study_of(FINETUNE), finetune_results())
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
    md = studies.cifar10_finetune.conclusions(study_of(FINETUNE, "smoke"), results)
    assert bullet(md, "Seed setting").endswith(
        "Its weights: pretrained on synthetic by this project (test_vit, run pretrain).")


def test_finetune_each_finetuning_is_signed_against_the_frozen_backbone() -> None:
    study = study_of(FINETUNE)
    md = studies.cifar10_finetune.conclusions(study, finetune_results())
    assert bullet(md, study.runs["partial_finetune"].label) == (
        f"- **{study.runs['partial_finetune'].label}**: 93.1% (+7.0 points against the frozen backbone).")
    md = studies.cifar10_finetune.conclusions(study, finetune_results(full_finetune=0.8011))
    assert bullet(md, study.runs["full_finetune"].label) == (
        f"- **{study.runs['full_finetune'].label}**: 80.1% (-6.0 points against the frozen backbone).")
    md = studies.cifar10_finetune.conclusions(study, finetune_results(seed_linear_probe=None))
    assert bullets(md) == ["Seed setting", study.runs["partial_finetune"].label, study.runs["full_finetune"].label,
                           "Pretraining."]
    assert bullet(md, study.runs["full_finetune"].label) == (
        f"- **{study.runs['full_finetune'].label}** Skipped, not run: seed_linear_probe."), \
        "without the frozen backbone there is nothing to compare with"
    assert bullet(md, "Seed setting") == "- **Seed setting** Skipped, not run: seed_linear_probe."
    assert "not run" not in bullet(md, "Pretraining.")


def test_finetune_pretraining_compares_scratch_with_the_best_pretrained_run() -> None:
    study = study_of(FINETUNE)
    md = studies.cifar10_finetune.conclusions(study, finetune_results())
    assert bullet(md, "Pretraining.") == (
        f"- **Pretraining.** The same architecture from scratch reached 70.2%; the best run from pretrained "
        f"weights ({study.runs['full_finetune'].label}) 97.6%: pretraining helped (+27.4 points, noise ±0.9) here. "
        f"The frozen backbone alone, against training from scratch: better (+15.9 points, noise ±1.1).")
    # within the sampling noise of 10,000 test images (±0.4 points here): no verdict either way
    md = studies.cifar10_finetune.conclusions(study, finetune_results(scratch=0.9731))
    assert ": pretraining made no difference beyond the noise (+0.3 points, noise ±0.4)" in bullet(md, "Pretraining.")
    # scratch ahead of everything: still compared with the best *pretrained* run
    md = studies.cifar10_finetune.conclusions(study, finetune_results(scratch=0.9901, partial_finetune=0.9801))
    assert bullet(md, "Pretraining.").endswith(
        f"({study.runs['partial_finetune'].label}) 98.0%: pretraining hurt (-1.0 points, noise ±0.3) here. The "
        f"frozen backbone alone, against training from scratch: worse (-12.9 points, noise ±0.7).")
    md = studies.cifar10_finetune.conclusions(study, finetune_results(seed_linear_probe=None, partial_finetune=None,
                                                             full_finetune=None))
    assert bullet(md, "Pretraining.") == (
        "- **Pretraining.** Skipped, not run: seed_linear_probe, partial_finetune, full_finetune.")
    assert all("Skipped, not run: " in bullet(md, lead) for lead in bullets(md))


def test_finetune_smoke_pretraining_run_is_not_a_pretrained_contender() -> None:
    study = study_of(FINETUNE, "smoke")
    results = finetune_results()
    results["pretrain"] = fake_run(0.9911)  # on another (generated) task: not comparable
    assert study.pretraining_sources == {"pretrain"}
    line = bullet(studies.cifar10_finetune.conclusions(study, results), "Pretraining.")
    assert f"({study.runs['full_finetune'].label}) 97.6%" in line


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_finetune_caveat_by_profile(profile: str) -> None:
    study = as_profile(study_of(FINETUNE, "paper" if profile == "paper" else "smoke"), profile)
    assert_caveat(studies.cifar10_finetune.conclusions(study, finetune_results()), profile, "DeiT on CIFAR-10")
