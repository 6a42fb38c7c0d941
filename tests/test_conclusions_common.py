"""What the conclusions of every study share, on synthetic results (:mod:`cnnvit.studies`).

The notebooks only run the smoke profile, so without these tests (and the per-study ones,
``test_conclusions_<study>.py``) the paper profile's branches (targets met or not, no caveat)
never execute. Each test feeds hand-made results to a conclusion function with the study's real
parameter file (smoke or paper) and checks what the text *says*. The fakes and the text checks
are in ``helpers.py``.

Here: the wording helpers (percentages, signed points, plurals, the rank correlation), the
study introduction, the weights' origin, the summary table, and what holds for every study and
profile. Which runs a conclusion compares comes from the ``groups:`` of the parameter files: every
group of both profiles names runs of its file, no study module or notebook spells a run name, a
conclusion whose runs did not run says so, and a run renamed in a copy of a parameter file is
still named by the conclusions, by its new name.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Optional

import nbformat
import pandas as pd
import pytest
import yaml

from cnnvit import studies
from cnnvit.records import WeightsOrigin
from cnnvit.studies import Study, common, load_study, study_modules, summary_table

from helpers import (CELEBA, CIFAR, FINETUNE, FakeRun, IMAGENET, PROFILES, ROOT, SCRATCH,
                     STUDY_NAMES, TINY, TRANSFORMERS, _load, as_profile, bullet, bullets,
                     caveat_lines, celeba_results, cifar_results, fake_run, finetune_results,
                     origin, study_of, tiny_results, transformer_results)

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
    setup = next(i for i, c in enumerate(nb.cells) if "open_study(" in c.source)
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
    return study_modules()[study.study].conclusions(study, results)


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
    assert list(study_modules()) == list(STUDY_NAMES)
    for name, module in study_modules().items():
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
    for module in study_modules().values():
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
    assert list(study.groups) == list(study_modules()[name].GROUPS)
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
    ``runs:``, the groups, every ``run:NAME`` reference and every ``from:``. Returns the copy and
    old -> new."""
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
    kinds = {g: spec.kind for g, spec in study_modules()[name].GROUPS.items()}
    raw["groups"] = {g: swap(v, keys=kinds[g] == "pairs") for g, v in raw["groups"].items()}
    for spec in raw["runs"].values():
        if "from" in spec:
            spec["from"] = new.get(spec["from"], spec["from"])
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
    md = {CIFAR: studies.cifar10_vit_vs_resnet.conclusions, TINY: studies.tiny_imagenet_cnn_ablations.conclusions,
          TRANSFORMERS: studies.tiny_imagenet_transformers.conclusions, FINETUNE: studies.cifar10_finetune.conclusions}[name](study, results)
    line = bullet(md, lead)
    for k, _ in enumerate(headline):
        assert f"{40 + k:.1f}% ± 10.0 (3 seeds)" in line, line
    assert "the mean over seeds where a run was repeated" in md.splitlines()[0]
    assert md.splitlines()[-1].startswith("*Profile `laptop`")


# ------------------------------------------------------------- every study: verdicts and the plateau

RISING = dict(train_loss=(2.0, 1.5, 1.2, 1.0, 0.9), val_acc=(0.3, 0.4, 0.45, 0.5, 0.56))  # +6 points at the end


@pytest.mark.parametrize("name, results, run, lead", [
    (TINY, tiny_results, "resnet50", "Depth."),
    (TINY, tiny_results, "resnext50", "Cardinality."),
    (TRANSFORMERS, transformer_results, "swin", "Models"),
    (FINETUNE, finetune_results, "scratch", "Pretraining."),
    (CELEBA, celeba_results, "binary_vit_b32_scratch", "Pretraining"),
    (CELEBA, celeba_results, "seed_hair5_resnet152", "Five hair colours."),
    (CELEBA, celeba_results, "cnn_naive", "CNN size."),
], ids=["02-depth", "02-cardinality", "03-models", "04-pretraining", "05-pretraining", "05-task", "05-cnn-size"])
def test_a_verdict_resting_on_a_run_still_rising_says_so_and_only_that_one(name, results, run, lead):
    """Every study: a run still gaining at its last epochs puts 'may be under-trained' on the
    verdicts that use it, naming it, and on no other bullet."""
    res = results()
    flat = study_modules()[name].conclusions(study_of(name), res)
    assert "under-trained" not in flat  # the fakes are flat by default
    rising = fake_run(res[run].metrics.test_accuracy, **RISING)
    rising.raw = {**res[run].raw}
    rising.val_steps, rising.data_info, rising.preds = res[run].val_steps, res[run].data_info, res[run].preds
    res[run] = rising
    study = study_of(name)
    md = study_modules()[name].conclusions(study, res)
    line = bullet(md, lead)
    assert line.endswith(f"*May be under-trained: {study.runs[run].label} was still rising (+6.0 points over "
                         f"the last 20% of epochs).*")
    assert md.count("under-trained") == sum("under-trained" in bullet(md, b) for b in bullets(md))
    # the smoke profile's one-epoch runs prove the pipeline: no caveat on numbers it already disowns
    assert "under-trained" not in study_modules()[name].conclusions(as_profile(study, "smoke"), res)
    assert "under-trained" in study_modules()[name].conclusions(as_profile(study, "laptop"), res)


def test_the_caveat_counts_a_runs_seeds_that_are_still_rising() -> None:
    results = cifar_results()
    study = study_of(CIFAR)
    for i, val in enumerate(((0.5, 0.55, 0.6, 0.62, 0.652), (0.5, 0.55, 0.6, 0.65, 0.652)), start=1):
        results[f"seed_vit_b16.seed{i}"] = fake_run(0.65, epochs=30, train_loss=(2.0,) * 5, val_acc=val)
        study.runs[f"seed_vit_b16.seed{i}"] = dataclasses.replace(study.runs["seed_vit_b16"], replica_of="seed_vit_b16")
    line = bullet(studies.cifar10_vit_vs_resnet.conclusions(study, results), "Preprocessing ablation.")
    assert line.endswith(f"*May be under-trained: {study.runs['seed_vit_b16'].label}: 1 of 3 seeds still rising "
                         f"(+3.2 points over the last 20% of epochs).*")
