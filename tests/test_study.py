"""Studies: loading and validating a parameter file, running it, reloading, replacing, tables."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

import cnnvit.studies.study as study_mod
from cnnvit.errors import ConfigError, StudyInputError
from cnnvit.studies import load_study, run_study, summary_table

from helpers import Interrupted

REPO = Path(__file__).resolve().parents[1]
SMOKE_STUDY = REPO / "params" / "smoke" / "01_cifar10_vit_vs_resnet.yaml"
SMOKE_RUNS = ["seed_resnet18", "seed_vit_b16", "ablation_vit_b16_no_preprocessing",
              "strong_resnet18", "strong_vit"]
# two quick runs (test_vit at 64 px) on a smaller synthetic set
QUICK = ["seed_vit_b16", "ablation_vit_b16_no_preprocessing"]
QUICK_OVERRIDES = ["train.epochs=1", "data.synthetic_train=256", "data.synthetic_test=64"]
COLUMNS = ["run", "role", "model", "input px", "params (M)", "epochs", "test acc", "plateau", "top-5", "seed reported",
           "profile", "data", "wall time (s)", "train img/s", "device"]


def write_variant(tmp_path, edit) -> Path:
    """A copy of the smoke study file with ``edit(raw_dict)`` applied."""
    raw = copy.deepcopy(yaml.safe_load(SMOKE_STUDY.read_text()))
    edit(raw)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_load_smoke_study_builds_every_run(tmp_path):
    study = load_study(SMOKE_STUDY, out_dir=tmp_path)
    assert study.study == "01_cifar10_vit_vs_resnet" and study.profile == "smoke"
    assert list(study.runs) == SMOKE_RUNS
    for name, spec in study.runs.items():
        assert spec.name == name
        assert spec.role in ("seed", "ablation", "strong")
        assert spec.label
        assert spec.config.device == "cpu" and spec.config.data.name == "synthetic"  # from base
        assert spec.config.model.name.startswith("test_")
    sv = study.runs["strong_vit"].config
    assert sv.model.name == "test_vit_cifar" and sv.model.drop_path == 0.1
    assert sv.train.mixup == 0.8 and sv.optim.name == "adamw" and sv.data.policy == "autoaugment"
    assert study.runs["seed_resnet18"].reported == 0.88
    assert study.runs["seed_vit_b16"].reported == 0.65
    assert study.runs["strong_vit"].reported is None
    assert study.runs["ablation_vit_b16_no_preprocessing"].config.data.normalize is False
    assert study.run_dir("strong_vit") == tmp_path / "runs" / "strong_vit"


def test_default_out_dir_and_overrides_and_only():
    study = load_study(SMOKE_STUDY, overrides=["train.epochs=1", "seed=3"], only=["strong_vit"])
    assert list(study.runs) == ["strong_vit"]
    assert study.runs["strong_vit"].config.train.epochs == 1
    assert study.runs["strong_vit"].config.seed == 3
    assert study.out_dir == REPO / "outputs" / "smoke" / "01_cifar10_vit_vs_resnet"
    with pytest.raises(ConfigError, match="nosuch"):
        load_study(SMOKE_STUDY, only=["nosuch"])


def test_bad_key_in_one_run_fails_at_load_naming_file_and_run(tmp_path):
    path = write_variant(tmp_path, lambda raw: raw["runs"]["strong_vit"]["config"]["optim"]
                         .update({"lrr": 0.1}))
    with pytest.raises(ConfigError) as exc:
        load_study(path)
    msg = str(exc.value)
    assert str(path) in msg and "runs.strong_vit" in msg and "optim.lrr" in msg


def test_bad_type_in_base_names_base(tmp_path):
    path = write_variant(tmp_path, lambda raw: raw["base"]["train"].update({"eval_every": "often"}))
    with pytest.raises(ConfigError) as exc:
        load_study(path)
    assert "train.eval_every" in str(exc.value) and "base" in str(exc.value)
    assert str(path) in str(exc.value)


def test_wrong_vit_size_fails_at_load(tmp_path):
    path = write_variant(tmp_path, lambda raw: raw["runs"]["seed_vit_b16"]["config"]["data"]
                         .update({"image_size": 32}))
    with pytest.raises(ConfigError) as exc:
        load_study(path)
    assert "runs.seed_vit_b16" in str(exc.value) and "data.image_size=64" in str(exc.value)


@pytest.mark.parametrize("edit, words", [
    (lambda raw: raw["runs"]["strong_vit"].update({"lable": "x"}), ["runs.strong_vit", "lable"]),
    (lambda raw: raw["runs"]["strong_vit"].update({"role": "hero"}), ["strong_vit", "hero"]),
    (lambda raw: raw.update({"bases": {}}), ["bases"]),
    (lambda raw: raw.pop("runs"), ["runs"]),
    (lambda raw: raw.update({"runs": {}}), ["runs"]),
])
def test_malformed_study_files(tmp_path, edit, words):
    path = write_variant(tmp_path, edit)
    with pytest.raises(ConfigError) as exc:
        load_study(path)
    for w in words:
        assert w in str(exc.value)


# ------------------------------------------------------------------------------------ groups

ALL_PARAMS = sorted((REPO / "params").glob("*/*.yaml"))


def test_groups_say_which_runs_each_conclusion_compares():
    study = load_study(SMOKE_STUDY)
    assert study.group("seed_settings") == {"cnn": "seed_resnet18", "vit": "seed_vit_b16"}
    assert study.member("preprocessing", "without") == "ablation_vit_b16_no_preprocessing"
    assert study.members("vit_recipes") == ["seed_vit_b16", "strong_vit"]
    assert study.members("resnet_recipes", "strong", "seed") == ["strong_resnet18", "seed_resnet18"]
    with pytest.raises(ConfigError, match="no group 'nosuch'"):
        study.group("nosuch")
    # a subset of the runs keeps the groups, checked against every run of the file
    assert load_study(SMOKE_STUDY, only=["strong_vit"]).groups == study.groups


@pytest.mark.parametrize("edit, words", [
    (lambda raw: raw["groups"].update({"extra": "seed_vit_b16"}), ["groups: unknown group(s) ['extra']",
                                                                    "known: seed_settings"]),
    (lambda raw: raw["groups"].pop("vit_recipes"), ["groups: missing vit_recipes", "strong recipe"]),
    (lambda raw: raw["groups"]["seed_settings"].update({"cnn": "nosuch"}),
     ["groups.seed_settings.cnn: no run named 'nosuch'", "runs: seed_resnet18"]),
    (lambda raw: raw["groups"]["seed_settings"].update({"mlp": "seed_vit_b16"}),
     ["groups.seed_settings: expects the parts cnn, vit", "unknown: ['mlp']"]),
    (lambda raw: raw["groups"]["preprocessing"].pop("without"), ["groups.preprocessing", "missing: ['without']"]),
    (lambda raw: raw["groups"].update({"seed_settings": "seed_resnet18"}),
     ["groups.seed_settings: expected a mapping"]),
    (lambda raw: raw.update({"groups": ["seed_resnet18"]}), ["groups: expected a mapping"]),
    (lambda raw: raw.update({"study": "03_tiny_imagenet_transformers", "groups": {
        "models": ["seed_vit_b16"], "frozen_backbone": {"frozen": "strong_vit", "finetuned": "seed_vit_b16"},
        "optimizers": ["seed_vit_b16"], "augmentation": {"baseline": "seed_vit_b16", "variants": ["strong_vit"]},
        "batch_sizes": ["seed_vit_b16", "strong_vit"]}}), ["groups.optimizers: expected at least 2 runs"]),
    (lambda raw: raw.update({"study": "my_own_study"}), ["unknown group(s)", "this study reads no groups"]),
])
def test_malformed_groups_fail_at_load_naming_the_file(tmp_path, edit, words):
    path = write_variant(tmp_path, edit)
    with pytest.raises(ConfigError) as exc:
        load_study(path)
    assert str(path) in str(exc.value)
    for w in words:
        assert w in str(exc.value)


@pytest.mark.parametrize("path", ALL_PARAMS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_groups_are_no_part_of_any_runs_config(tmp_path, path):
    """Groups and roles only say how runs are compared: without groups (as a study of one's own)
    and with every role changed, every run has the same config, so it keeps its identity and is
    not trained again."""
    raw = yaml.safe_load(path.read_text())
    assert raw["groups"], "every study file declares its groups"
    for spec in raw["runs"].values():
        spec["role"] = "strong" if spec.get("role") != "strong" else "ablation"
    bare = tmp_path / path.name
    bare.write_text(yaml.safe_dump({**{k: v for k, v in raw.items() if k != "groups"}, "study": "own"}, sort_keys=False))
    with_groups, without = load_study(path, out_dir=tmp_path), load_study(bare, out_dir=tmp_path)
    assert list(with_groups.runs) == list(without.runs)
    for name, spec in with_groups.runs.items():
        assert spec.config.to_dict() == without.runs[name].config.to_dict(), name


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    """The two quick runs trained once, for the tests below (which must not retrain them)."""
    out = tmp_path_factory.mktemp("study")
    study = load_study(SMOKE_STUDY, QUICK_OVERRIDES, out_dir=out, only=QUICK)
    results = run_study(study, progress=False)
    return study, results


def test_run_study_trains_and_returns_runs(quick_study):
    study, results = quick_study
    assert list(results) == QUICK
    for name in QUICK:
        run_dir = study.run_dir(name)
        assert (run_dir / "model.pt").exists() and (run_dir / "metrics.json").exists()
        assert results[name].dir == run_dir and results[name].complete
        assert results[name].config == study.runs[name].config
        assert results[name].metrics.epochs == 1
        assert results[name].metrics.dataset.n_train == 256


def test_second_run_study_loads_without_retraining(quick_study, monkeypatch):
    study, _ = quick_study
    mtimes = {n: (study.run_dir(n) / "model.pt").stat().st_mtime_ns for n in QUICK}

    def no_training(*a, **k):
        raise AssertionError("a complete run was trained again")

    monkeypatch.setattr(study_mod, "train", no_training)
    monkeypatch.setattr(study_mod, "dataset_from_config", no_training)
    again = load_study(SMOKE_STUDY, QUICK_OVERRIDES, out_dir=study.out_dir, only=QUICK)
    results = run_study(again, progress=False)
    assert list(results) == QUICK
    assert {n: (study.run_dir(n) / "model.pt").stat().st_mtime_ns for n in QUICK} == mtimes


def test_summary_table(quick_study):
    study, results = quick_study
    table = summary_table(study, results)
    assert list(table.columns) == COLUMNS
    assert len(table) == len(QUICK)
    row = table.set_index("run").loc[study.runs["seed_vit_b16"].label]
    assert row["seed reported"] == 0.65
    assert row["role"] == "seed" and row["model"] == "test_vit"
    assert row["input px"] == 64 and row["epochs"] == 1 and row["profile"] == "smoke"
    assert row["test acc"] == results["seed_vit_b16"].metrics.test_accuracy
    assert row["plateau"] == "not checked: one evaluation"  # one epoch: no curve to read
    assert row["data"] == "synthetic (256/64)"
    assert row["params (M)"] == round(results["seed_vit_b16"].metrics.parameters / 1e6, 2)
    ablation = table.set_index("run").loc[study.runs["ablation_vit_b16_no_preprocessing"].label]
    assert ablation["seed reported"] is None or math.isnan(ablation["seed reported"])
    assert ablation["role"] == "ablation"


def test_changed_config_moves_old_run_aside(tmp_path):
    name = "seed_vit_b16"
    study = load_study(SMOKE_STUDY, QUICK_OVERRIDES, out_dir=tmp_path, only=[name])
    run_study(study, progress=False)
    old_metrics = (study.run_dir(name) / "metrics.json").read_text()

    changed = load_study(SMOKE_STUDY, QUICK_OVERRIDES + ["optim.lr=3.0e-4"], out_dir=tmp_path,
                         only=[name])
    results = run_study(changed, progress=False)
    aside = sorted((tmp_path / "runs").glob(f"{name}.replaced-*"))
    assert len(aside) == 1 and aside[0].is_dir()
    # the old run is kept whole, not deleted
    assert (aside[0] / "metrics.json").read_text() == old_metrics
    assert (aside[0] / "model.pt").exists()
    assert yaml.safe_load((aside[0] / "config.yaml").read_text())["optim"]["lr"] == 1.0e-4
    # and the new one was trained with the new config
    assert results[name].config.optim.lr == 3.0e-4
    assert json.loads((study.run_dir(name) / "metrics.json").read_text())["epochs"] == 1
    assert yaml.safe_load((study.run_dir(name) / "config.yaml").read_text())["optim"]["lr"] == 3.0e-4


def test_partial_run_is_resumed_by_the_study(tmp_path, interrupt_after_epoch, train_mod):
    name = "seed_vit_b16"
    overrides = ["train.epochs=2", "data.synthetic_train=256", "data.synthetic_test=64"]
    study = load_study(SMOKE_STUDY, overrides, out_dir=tmp_path, only=[name])
    arm, disarm = interrupt_after_epoch
    arm(1)
    with pytest.raises(Interrupted):
        run_study(study, progress=False)
    disarm()
    assert (study.run_dir(name) / "checkpoint.pt").exists()
    results = run_study(study, progress=False)
    assert results[name].metrics.resumed_from_epoch == 1
    assert not list((tmp_path / "runs").glob("*.replaced-*"))


# ------------------------------------------------------------------- data folder and input checks

def paper_variant(tmp_path, root=None) -> Path:
    """The smoke study on CIFAR-10 (optionally at an explicit data.root) on the CPU."""
    def edit(raw):
        raw["base"]["data"] = {**raw["base"].get("data", {}), "name": "cifar10"}
        if root:
            raw["base"]["data"]["root"] = str(root)
        raw["base"]["device"] = "cpu"
    return write_variant(tmp_path, edit)


def test_data_dir_sets_each_real_runs_root_unless_given(tmp_path):
    study = load_study(paper_variant(tmp_path), out_dir=tmp_path / "o", data_dir=tmp_path / "data")
    assert {s.config.data.root for s in study.runs.values()} == {str(tmp_path / "data" / "cifar10")}
    explicit = load_study(paper_variant(tmp_path, root="/elsewhere"), out_dir=tmp_path / "o",
                          data_dir=tmp_path / "data")
    assert {s.config.data.root for s in explicit.runs.values()} == {"/elsewhere"}
    synthetic = load_study(SMOKE_STUDY, out_dir=tmp_path / "o", data_dir=tmp_path / "data")
    assert {s.config.data.root for s in synthetic.runs.values()} == {None}


def test_input_check_lists_missing_data_and_device_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a GPU machine
    path = write_variant(tmp_path, lambda raw: raw["base"].update(
        {"data": {"name": "cifar10"}, "device": "cuda"}))
    study = load_study(path, out_dir=tmp_path / "o", data_dir=tmp_path / "nowhere")

    def no_work(*a, **k):
        raise AssertionError("data were read or a run trained")

    monkeypatch.setattr(study_mod, "dataset_from_config", no_work)
    monkeypatch.setattr(study_mod, "train", no_work)
    with pytest.raises(StudyInputError) as err:
        run_study(study, progress=False)
    msg = str(err.value)
    assert f"CIFAR-10 not found under {tmp_path / 'nowhere' / 'cifar10'}: looked for" in msg
    assert "device: 'cuda' requested but CUDA is not available" in msg
    assert msg.count("(runs: " + ", ".join(SMOKE_RUNS) + ")") == 2, "each problem once, with its runs"
    assert not (tmp_path / "o").exists()


def test_input_check_passes_for_found_data_and_skips_complete_runs(tmp_path, image_folder, monkeypatch):
    image_folder(tmp_path / "data" / "cifar10")
    study = load_study(paper_variant(tmp_path), out_dir=tmp_path / "o", data_dir=tmp_path / "data")
    study_mod.check_study_inputs(study)  # found: no error
    missing = load_study(paper_variant(tmp_path), out_dir=tmp_path / "o", data_dir=tmp_path / "gone")
    monkeypatch.setattr(study_mod, "run_state", lambda cfg, run_dir: "complete")
    study_mod.check_study_inputs(missing)  # complete runs need neither data nor device
