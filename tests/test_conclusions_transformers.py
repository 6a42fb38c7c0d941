"""The conclusions of study 3 (transformers on Tiny-ImageNet) on synthetic results:
:mod:`cnnvit.studies.tiny_imagenet_transformers`.

Each test feeds hand-made results (:func:`helpers.fake_run`) to the study's conclusion function
with its real parameter file and checks what the text says; the fakes and the text checks are
in ``helpers.py``, what every study shares in ``test_conclusions_common.py``.
"""
from __future__ import annotations

import copy
import re

import pandas as pd
import pytest

from cnnvit import studies

from helpers import (HUB, TRANSFORMERS, TRANSFORMER_ACC, as_profile, assert_caveat, bullet, bullets,
                     fake_run, study_of, transformer_results)

# ---------------------------------------------------------------------- study 3: transformers

def test_transformers_rank_models_best_first_with_the_papers_number() -> None:
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results())
    assert bullet(md, "Models") == (
        "- **Models** (full fine-tuning): Swin-L/4 88.1% (paper 91.3%), DeiT-B/16 distilled 87.3% (paper 87.3%), "
        "CaiT-S/36 86.8% (paper 86.7%), ViT-L/16 85.1% (paper 86.4%). Best: Swin-L/4. The paper's best, "
        "Swin-L/4, is also the best here; the paper's order reproduces.")
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results(cait=0.8750))
    assert bullet(md, "Models").endswith("Best: Swin-L/4. The paper's best, Swin-L/4, is also the best here; "
                                         "the paper's order does not reproduce.")
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results(vit_l=0.9001))
    assert bullet(md, "Models").endswith("Best: ViT-L/16. The paper's best, Swin-L/4, is not the best here; "
                                         "the paper's order does not reproduce.")
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results(vit_l=0.9001, swin=None))
    assert bullet(md, "Models").endswith("Best: ViT-L/16. Not run: swin.")
    assert "Swin" not in bullet(md, "Models")


def test_transformers_frozen_backbone_optimizers_and_batch_size() -> None:
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results())
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
    md = studies.tiny_imagenet_transformers.conclusions(study, transformer_results())
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
    assert studies.tiny_imagenet_transformers.effective_batch(spec) == 144


AUG_NOT_RUN = ("aug_no_erasing, aug_simple_crop, aug_no_drop_path, aug_no_label_smoothing, aug_autoaugment, "
               "aug_rrc, aug_no_cutmix")


def test_transformers_augmentation_ablation_names_best_and_worst_against_the_default() -> None:
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results())
    assert bullet(md, "Augmentation ablation") == (
        '- **Augmentation ablation** (DeiT, 3 variants): best "without Mixup" 88.0%, worst "with RandAugment (the '
        f"paper tried it and dropped it)\" 81.0% (-6.3 points against the default). Not run: {AUG_NOT_RUN}.")
    # no variant beats the default recipe: the default is the best
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results(aug_no_mixup=0.8601))
    assert bullet(md, "Augmentation ablation").startswith(
        '- **Augmentation ablation** (DeiT, 3 variants): best "default recipe" 87.3%, worst "with RandAugment (the paper tried it and dropped it)"')


def test_ablation_table_is_best_first_with_signed_points() -> None:
    table = studies.tiny_imagenet_transformers.ablation_table(study_of(TRANSFORMERS), transformer_results())
    assert list(table["variant"]) == ["without Mixup", "default recipe", "with model EMA (decay 0.9998)",
                                      "with RandAugment (the paper tried it and dropped it)"]
    assert list(table["vs default (points)"].round(2)) == [0.68, 0.0, -0.31, -6.31]
    assert studies.tiny_imagenet_transformers.ablation_table(study_of(TRANSFORMERS), transformer_results(deit=None)).empty


def test_transformer_table_sets_each_model_beside_the_paper() -> None:
    results = transformer_results()
    for run in results.values():
        run.raw.update(test_top5=0.97, weights=HUB)
    table = studies.tiny_imagenet_transformers.transformer_table(study_of(TRANSFORMERS), results).set_index("run")
    deit, head = table.loc["DeiT-B/16 distilled, full fine-tuning"], table.loc[
        "DeiT-B/16 distilled: new head on the frozen backbone (the paper's code)"]
    assert deit["setting"] == "full fine-tuning" and deit["weights"] == "pretrained"
    assert deit["vs paper (points)"] == pytest.approx(100 * (0.8733 - 0.8729))
    assert head["setting"] == "new head on a frozen backbone" and pd.isna(head["vs paper (points)"])
    # the paper reports its best epoch: set against the best evaluated epoch, the last one shown too
    results["deit"].epochs["test_accuracy"] = [0.8801, 0.8733]
    table = studies.tiny_imagenet_transformers.transformer_table(study_of(TRANSFORMERS), results).set_index("run")
    deit = table.loc["DeiT-B/16 distilled, full fine-tuning"]
    assert (deit["acc@1"], deit["best-epoch acc@1"]) == (0.8733, 0.8801)
    assert deit["vs paper (points)"] == pytest.approx(100 * (0.8801 - 0.8729))
    # on another data set than the paper's (the laptop profile's CIFAR-10): no difference taken
    laptop = study_of(TRANSFORMERS, "laptop")
    fake = {n: fake_run(0.3, n_classes=10, test_top5=0.8) for n in laptop.runs}
    assert studies.tiny_imagenet_transformers.transformer_table(laptop, fake)["vs paper (points)"].isna().all()


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_transformers_caveat_by_profile(profile: str) -> None:
    study = as_profile(study_of(TRANSFORMERS, "paper" if profile == "paper" else "smoke"), profile)
    assert_caveat(studies.tiny_imagenet_transformers.conclusions(study, transformer_results()), profile, "Tiny-ImageNet")


def test_transformers_missing_runs_say_so_in_their_own_bullets() -> None:
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results(
        deit_head_only=None, opt_sgd=None, opt_sgd_nesterov=None, bs_32=None, bs_64=None))
    assert bullets(md) == ["Models", "Frozen backbone vs fine-tuning", "Optimizers", "Augmentation ablation",
                           "Batch size"]
    assert bullet(md, "Frozen backbone") == "- **Frozen backbone vs fine-tuning** Skipped, not run: deit_head_only."
    assert bullet(md, "Optimizers") == "- **Optimizers** Skipped, not run: opt_sgd, opt_sgd_nesterov."
    assert bullet(md, "Batch size") == "- **Batch size** Skipped, not run: bs_32, bs_64."
    assert "not run" not in bullet(md, "Models")
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), {"opt_sgd": fake_run(0.5)})
    assert bullet(md, "Optimizers") == "- **Optimizers** Skipped, not run: deit, opt_sgd_nesterov.", \
        "one optimizer alone compares nothing"
    assert bullet(md, "Models") == "- **Models** Skipped, not run: swin, vit_l, cait, deit."
    assert all("Skipped, not run: " in bullet(md, lead) for lead in bullets(md))
    # some of a list missing: the others are compared, and the missing named
    md = studies.tiny_imagenet_transformers.conclusions(study_of(TRANSFORMERS), transformer_results(opt_sgd=None, cait=None))
    assert bullet(md, "Optimizers") == ("- **Optimizers** (DeiT): AdamW 87.3%, SGD with Nesterov momentum, "
                                        "lr 0.01 79.1%. Not run: opt_sgd.")
    assert bullet(md, "Models").endswith("Best: Swin-L/4. Not run: cait.")


# ------------------------------------------- issue 30: prose true of the profile that ran

def test_transformers_batch_size_marks_the_recipes_run_by_its_config() -> None:
    """The recipe's run (the augmentation ablation's baseline) is marked at whatever batch its
    config gives it, not at the paper's 128."""
    study = study_of(TRANSFORMERS)
    study.runs["deit"].config.train.grad_accum = 1  # the recipe's run now at batch 32, beside bs_32
    line = bullet(studies.tiny_imagenet_transformers.conclusions(study, transformer_results()), "Batch size")
    batch = study.runs["deit"].config.train.batch_size
    assert f"{batch} (the recipe's run): 87.3%" in line
    assert "128 (the recipe's run)" not in line
