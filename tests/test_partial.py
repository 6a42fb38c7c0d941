"""Partial studies: on a machine that cannot train some runs (no GPU, data or weights missing),
a study shows its complete runs and lists the others with their projected GPU time; a study
with no complete run still fails."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnvit.errors import StudyInputError
from cnnvit.report.build import StudyEntry, missing_runs, plan_study
from cnnvit.report.cost import Projector, input_px, train_images
from cnnvit.studies import load_study, run_study
from cnnvit.studies.study import check_study_inputs, runs_that_cannot_train

from helpers import write_cifar_pickles

STUDY = """study: 01_cifar10_vit_vs_resnet
profile: smoke
title: partial
base:
  data: {name: cifar10, train_subset: 60}
  model: {name: test_resnet_cifar}
  train: {epochs: 1, batch_size: 16, tensorboard: false}
  device: cpu
runs:
  seed_resnet18: {label: one, role: seed}
  seed_vit_b16: {label: two, role: seed, config: {model: {name: test_vit_cifar}}}
  ablation_vit_b16_no_preprocessing: {label: three, role: ablation, config: {data: {normalize: false}}}
  strong_resnet18: {label: four, role: strong, config: {model: {pretrained_path: "run:seed_resnet18"}}}
  strong_vit: {label: five, role: strong}
groups:
  seed_settings: {cnn: seed_resnet18, vit: seed_vit_b16}
  preprocessing: {with: seed_vit_b16, without: ablation_vit_b16_no_preprocessing}
  resnet_recipes: {seed: seed_resnet18, strong: strong_resnet18}
  vit_recipes: {seed: seed_vit_b16, strong: strong_vit}
"""


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    write_cifar_pickles(tmp_path / "data" / "cifar10" / "cifar-10-batches-py", per_batch=20, n_test=20)
    path = tmp_path / "01_cifar10_vit_vs_resnet.yaml"
    path.write_text(STUDY)
    return path


def _study(path: Path, data: Path):
    return load_study(path, out_dir=path.parent / "out", data_dir=data)


def test_partial_study_shows_complete_runs_and_leaves_out_what_cannot_train(study_file: Path) -> None:
    data = study_file.parent / "data"
    first = _study(study_file, data)
    run_study(load_study(study_file, out_dir=first.out_dir, data_dir=data, only=["seed_vit_b16"]), progress=False)
    shutil.rmtree(data)  # now nothing can train: only the complete run can be shown
    study = _study(study_file, data)
    with pytest.raises(StudyInputError, match="CIFAR-10 not found"):
        run_study(study, progress=False)  # without partial: as before, before any training
    results = run_study(study, progress=False, partial=True)
    assert list(results) == ["seed_vit_b16"]
    assert results["seed_vit_b16"].metrics.test_accuracy >= 0


def test_a_run_whose_source_cannot_train_cannot_train_either(study_file: Path) -> None:
    study = _study(study_file, study_file.parent / "nowhere")
    problems = {"no data": ["seed_resnet18"]}
    assert runs_that_cannot_train(study, problems) == ["seed_resnet18", "strong_resnet18"]


# with seed_vit_b16 complete too the study can start, so a dropped strong_resnet18 would go unseen
@pytest.mark.parametrize("also_complete", [[], ["seed_vit_b16"]], ids=["alone", "beside_another"])
def test_a_complete_run_is_shown_though_its_source_cannot_train(study_file: Path, also_complete) -> None:
    """strong_resnet18, complete on disk, is loaded as it is when seed_resnet18 (whose weights it
    was fine-tuned from) is gone and cannot train again; seed_resnet18 is listed as missing."""
    data = study_file.parent / "data"
    out = _study(study_file, data).out_dir
    # strong_resnet18 needs seed_resnet18's weights: both train now
    run_study(load_study(study_file, out_dir=out, data_dir=data,
                         only=["seed_resnet18", *also_complete, "strong_resnet18"]), progress=False)
    before = json.loads((out / "runs" / "strong_resnet18" / "metrics.json").read_text())
    shutil.rmtree(out / "runs" / "seed_resnet18")
    shutil.rmtree(data)  # nothing can train: the complete runs are all there is to show
    study = _study(study_file, data)
    assert "strong_resnet18" not in check_study_inputs(study, partial=True)
    results = run_study(study, progress=False, partial=True)
    assert list(results) == [*also_complete, "strong_resnet18"]
    assert results["strong_resnet18"].metrics.to_json() == before  # loaded, not retrained
    # what the report lists as not run here: every run not complete, the source included
    entry = StudyEntry(out.name, study_file.with_suffix(".ipynb"), study_file, study_file.name)
    plan = plan_study(study_file.parent, entry, "smoke", out.parent, str(data))
    missing = missing_runs(plan, Projector(flops_per_s=1e12))
    assert [m["run"] for m in missing] == [n for n in ("seed_resnet18", "seed_vit_b16",
                                                       "ablation_vit_b16_no_preprocessing", "strong_vit")
                                           if n not in also_complete]
    assert all(m["minutes"] > 0 and m["how"] == "from FLOPs" for m in missing)


def test_partial_study_without_any_complete_run_still_fails(study_file: Path) -> None:
    study = _study(study_file, study_file.parent / "nowhere")
    with pytest.raises(StudyInputError, match="cannot start"):
        check_study_inputs(study, partial=True)
    with pytest.raises(StudyInputError):
        run_study(study, progress=False, partial=True)


def test_projection_from_the_gpu_check_table_else_from_flops(study_file: Path, tmp_path: Path) -> None:
    cfg = _study(study_file, tmp_path).runs["seed_resnet18"].config
    assert (input_px(cfg), train_images(cfg)) == (32, 60)
    import pandas as pd
    table = pd.DataFrame([{"model": "test_resnet_cifar", "px": 32, "freeze": "none", "ours img/s": 6.0}])
    assert Projector(table).minutes(cfg) == (pytest.approx(60 / 6.0 / 60), "measured by make gpu-check")
    minutes, how = Projector(None, flops_per_s=1e6).minutes(cfg)
    flops = Projector().flops("test_resnet_cifar", 32)
    assert how == "from FLOPs" and minutes == pytest.approx(60 * flops * 3 / 1e6 / 60)


@pytest.mark.parametrize("name, full", [("cifar10", 50_000), ("cifar100", 50_000), ("tiny-imagenet", 100_000),
                                        ("celeba", 162_079)])
def test_a_run_on_a_whole_data_set_is_projected_on_its_full_training_split(name: str, full: int) -> None:
    """The full split comes from the data set's spec (``DatasetSpec.train_images``), less the
    validation share, every epoch; a subset counts as itself."""
    from cnnvit import config as config_mod

    cfg = config_mod.build(overrides=[f"data.name={name}", "train.epochs=3"])
    assert train_images(cfg) == int(full * (1 - (cfg.data.val_fraction or 0)) * 3)
    cfg.data.train_subset = 1000
    assert train_images(cfg) == int(1000 * (1 - (cfg.data.val_fraction or 0)) * 3)
