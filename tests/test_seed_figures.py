"""The seeds' own figures beside ours: every figure a study file gives under a run's
``seed_figures:`` (and its ``reported:``) appears in the table that shows that run, in the
column of its source and figure; the file's figures are checked as they are read; FLOPs are
given in the paper's unit (multiply-adds) and match the paper's within 3%."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import pandas as pd
import pytest
import torch

from cnnvit.config import ConfigError
from cnnvit.models import count_flops
from cnnvit.records import RunResult
from cnnvit.studies import load_study, project_root
from cnnvit.studies.celeba_simple_classifier import celeba_table
from cnnvit.studies.cifar10_finetune import finetune_table
from cnnvit.studies.core import SEED_FIGURES
from cnnvit.studies.tiny_imagenet_transformers import (BATCH_REPRODUCTION, PAPER, REPRODUCTION, SWIN_PAPER,
                                                       SWIN_REPRODUCTION, ablation_table, batch_size_table,
                                                       efficiency_table, optimizer_table, transformer_table)

ROOT = project_root()
PROFILES = ("smoke", "laptop", "paper")


@dataclass
class FakeRun:
    """The parts of a finished run the tables read."""

    metrics: RunResult
    epochs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        {"epoch": [1, 2], "epoch_time_s": [60.0, 60.0], "test_accuracy": [0.5, 0.6]}))
    classes: list = field(default_factory=lambda: ["no", "yes"])


def fake(acc: float = 0.6) -> FakeRun:
    pc = {"precision": 0.7, "recall": 0.6, "f1": 0.65}
    return FakeRun(RunResult.from_json({
        "run": "fake", "model": "fake", "steps": 20, "train_time_s": 120.0, "wall_time_s": 120.0, "torch": "2",
        "finished": "", "dataset": {"name": "fake", "source": "", "n_train": 100, "n_test": 50},
        "test_accuracy": acc, "test_top5": 0.9, "epochs": 2, "parameters": 1e6, "trainable_parameters": 1e6,
        "gflops_per_image": 2.0, "checkpoint_mb": 4.0, "train_images_per_s": 100.0,
        "peak_gpu_memory_gb": None, "device": "cpu (test)", "weights": {"kind": "scratch", "label": ""},
        "majority_baseline": 0.5,
        "test": {"accuracy": acc, "balanced_accuracy": acc, "auroc": 0.7, "macro_precision": 0.6,
                 "macro_recall": 0.6, "macro_f1": 0.6, "per_class": {"yes": pc, "no": pc}}}))


def study(name: str, profile: str):
    return load_study(ROOT / "params" / profile / f"{name}.yaml")


def shown(table: pd.DataFrame, key: str, value, column: str):
    """The cell of ``column`` in the row whose ``key`` column is ``value``."""
    rows = table[table[key] == value]
    assert len(rows) == 1, f"{value!r} is not one row of {list(table[key])}"
    return rows.iloc[0][column]


def expect_figures(table: pd.DataFrame, key: str, rows: dict, shows: dict[str, tuple[str, ...]]) -> int:
    """Every figure the table ``shows`` ({source: figures}) that each row's run gives, in that
    row's column of that source and figure; how many there were."""
    n = 0
    for value, spec in rows.items():
        for source, figures in shows.items():
            for figure, number in spec.seed_figures.get(source, {}).items():
                if figure not in figures:
                    continue
                column = f"{source} {SEED_FIGURES[figure]}"
                assert column in table.columns, f"no column {column!r}"
                assert shown(table, key, value, column) == pytest.approx(number), (value, column)
                n += 1
    return n


@pytest.mark.parametrize("profile", PROFILES)
def test_study_3_tables_show_the_papers_and_the_reproductions_figures(profile):
    s = study("03_tiny_imagenet_transformers", profile)
    results = {n: fake() for n in s.runs}
    models = {s.runs[n].label: s.runs[n] for n in s.members("models")}
    assert expect_figures(transformer_table(s, results), "run", models, {REPRODUCTION: ("acc1", "acc5")}) == 8
    table = transformer_table(s, results)
    for label, spec in models.items():
        assert shown(table, "run", label, "paper acc@1") == spec.reported
    eff = efficiency_table(s, results)
    assert expect_figures(eff, "run", models, {PAPER: ("params_m", "gmacs", "train_img_s"),
                                               REPRODUCTION: ("checkpoint_mb", "epoch_min")}) == 4 * 5
    assert (eff["GMACs / image"] == 1.0).all(), "a multiply-add counted once: GFLOPs / 2"
    ablation = ablation_table(s, results)
    variants = {"default recipe": s.runs[s.member("augmentation", "baseline")]}
    variants.update({s.runs[n].label.split(": ", 1)[-1]: s.runs[n] for n in s.members("augmentation", "variants")})
    assert expect_figures(ablation, "variant", variants, {SWIN_PAPER: ("acc1",), SWIN_REPRODUCTION: ("acc1",)}) >= 9
    opts = optimizer_table(s, results)
    names = s.members("optimizers")
    assert list(opts["optimizer"])[0] == "AdamW" and len(opts) == len(names)
    assert expect_figures(opts, "optimizer", dict(zip(opts["optimizer"], (s.runs[n] for n in names))),
                          {SWIN_PAPER: ("acc1",)}) == 3
    batches = batch_size_table(s, results)
    rows = {b: s.runs[n] for b, n in zip(batches["effective batch"], s.members("batch_sizes"))}
    if len(rows) == len(batches):  # (smoke runs two of its batch runs at the same effective batch)
        assert expect_figures(batches, "effective batch", rows, {BATCH_REPRODUCTION: ("acc1", "acc5")}) == 6
    # the reproduction's batch figures belong to each run's own effective batch
    by_batch = {32: 0.8179, 64: 0.8215, 128: 0.8211}
    for n in s.members("batch_sizes"):
        given = s.runs[n].seed_figures[BATCH_REPRODUCTION]["acc1"]
        spec = s.runs[n]
        assert given == by_batch[spec.config.train.batch_size * spec.config.train.grad_accum], n


def test_a_figure_the_seed_does_not_give_is_empty_not_zero():
    s = study("03_tiny_imagenet_transformers", "paper")
    ablation = ablation_table(s, {n: fake() for n in s.runs})
    no_reproduction = [n for n in s.members("augmentation", "variants")
                       if SWIN_REPRODUCTION not in s.runs[n].seed_figures]
    assert no_reproduction, "the reproduction report skipped some variants"
    label = s.runs[no_reproduction[0]].label.split(": ", 1)[-1]
    assert pd.isna(shown(ablation, "variant", label, f"{SWIN_REPRODUCTION} acc@1"))


@pytest.mark.parametrize("profile", PROFILES)
def test_study_5_binary_table_shows_the_seeds_precision_recall_f1_and_auroc(profile):
    s = study("05_celeba_simple_classifier", profile)
    results = {n: fake() for n in s.runs}
    table = celeba_table(s, results, "binary")
    seed_runs = {s.runs[n].label: s.runs[n] for n in s.runs if s.runs[n].seed_figures and not s.runs[n].replica_of}
    assert len(seed_runs) == 2
    assert expect_figures(table, "run", seed_runs, {"seed": ("precision", "recall", "f1", "auroc")}) == 8


@pytest.mark.parametrize("profile", PROFILES)
def test_study_4_table_gives_the_seeds_row_from_the_parameter_file(profile):
    s = study("04_cifar10_finetune", profile)
    spec = s.runs[s.member("seed_setting")]
    table = finetune_table(s, {n: fake() for n in s.runs})
    seed = table[table["profile"] == "seed"].iloc[0]
    assert seed["accuracy"] == spec.reported == 0.8523
    assert (seed["precision"], seed["recall"], seed["F1"]) == tuple(
        spec.seed_figures["seed"][k] for k in ("precision", "recall", "f1"))


def test_edited_figures_follow_the_file_not_the_code(tmp_path):
    """The tables read the file: a changed figure shows changed."""
    text = (ROOT / "params" / "paper" / "04_cifar10_finetune.yaml").read_text()
    path = tmp_path / "04.yaml"
    path.write_text(text.replace("precision: 0.8512", "precision: 0.1234"))
    s = load_study(path)
    table = finetune_table(s, {})
    assert table[table["profile"] == "seed"].iloc[0]["precision"] == 0.1234


@pytest.mark.parametrize("bad, message", [
    ("{paper: {speed: 3}}", "unknown figure(s) ['speed']"),
    ("{paper: {acc1: high}}", "acc1 must be numbers"),
    ("[0.9]", "expected {source: {figure: value}}"),
])
def test_bad_seed_figures_are_named(tmp_path, bad, message):
    text = (ROOT / "params" / "smoke" / "04_cifar10_finetune.yaml").read_text()
    path = tmp_path / "04.yaml"
    block = "    seed_figures:  # the seed's other figures, shown beside ours\n" \
            "      seed: {precision: 0.8512, recall: 0.8507, f1: 0.851}"
    assert block in text
    path.write_text(text.replace(block, f"    seed_figures: {bad}"))
    with pytest.raises(ConfigError, match=r"runs\.seed_linear_probe\.seed_figures") as err:
        load_study(path)
    assert message in str(err.value)


PAPER_GMACS = {"vit_large_patch16_384": 190.7, "cait_s36_384": 48.0, "deit_base_distilled_patch16_384": 55.5,
               "swin_large_patch4_window12_384": 103.9}


@pytest.mark.parametrize("model, gmacs", sorted(PAPER_GMACS.items()))
def test_multiply_adds_match_the_papers_gmacs(model, gmacs):
    """count_flops / 2 (a multiply-add counted once, the paper's and timm's GMACs) of the
    paper's four models at 384 px, built on the meta device (no memory, no arithmetic)."""
    import timm

    with torch.device("meta"):
        net = timm.create_model(model, pretrained=False, num_classes=200)
    flops = count_flops(net, 384, device="meta")
    assert flops is not None
    assert flops / 2 / 1e9 == pytest.approx(gmacs, rel=0.03)


def test_the_shipped_files_carry_the_same_figures_in_every_profile():
    """One seed, one set of figures: a run that exists in several profiles gives the same
    figures in each (except the batch runs, which follow each profile's own batch)."""
    files = {p: study("03_tiny_imagenet_transformers", p) for p in PROFILES}
    paper = files["paper"]
    for profile, s in files.items():
        for name, spec in s.runs.items():
            if name in paper.runs:
                theirs = copy.deepcopy(paper.runs[name].seed_figures)
                mine = copy.deepcopy(spec.seed_figures)
                theirs.pop(BATCH_REPRODUCTION, None)
                mine.pop(BATCH_REPRODUCTION, None)
                assert mine == theirs, (profile, name)
