"""``from: RUN`` in a study file: a run's config starts from another run's (deep-merged over base),
chains resolve, a bad ``from:`` fails at load naming the file and the run, and a run's config (its
identity) is the same whether its settings are inherited or written out."""
from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from cnnvit.errors import ConfigError
from cnnvit.studies import load_study
from cnnvit.studies.dry_run import _model_named
from cnnvit.studies.study import config_layers, study_config_for_run
from cnnvit.training.identity import config_differences, identity_of

REPO = Path(__file__).resolve().parents[1]
SMOKE_STUDY = REPO / "params" / "smoke" / "01_cifar10_vit_vs_resnet.yaml"


def variant(tmp_path: Path, runs: dict) -> Path:
    """The smoke study 1 file with ``runs`` added to (or replacing) its runs."""
    raw = copy.deepcopy(yaml.safe_load(SMOKE_STUDY.read_text()))
    raw["runs"].update(runs)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_run_from_another_inherits_its_config_only(tmp_path):
    path = variant(tmp_path, {
        "strong_vit_seeds": {"label": "strong ViT over seeds", "role": "strong", "reported": 0.5,
                             "seeds": [3, 4], "seed_figures": {"paper": {"acc1": 0.9}},
                             "from": "strong_vit", "config": {"optim": {"lr": 1.0e-3}}},
        "child": {"label": "child", "role": "ablation", "from": "strong_vit_seeds",
                  "config": {"optim": {"lr": 5.0e-4}, "data": {"flip": False}}}})
    study = load_study(path, out_dir=tmp_path)
    parent, child = study.runs["strong_vit"].config, study.runs["child"].config
    # the source's config over base, then the run's own over that, key by key
    assert config_differences(parent.to_dict(), child.to_dict()) == {
        "data.flip": (True, False), "optim.lr": (1.0e-3, 5.0e-4)}
    assert child.data.policy == "autoaugment" and child.data.crop_padding == 4 and child.device == "cpu"
    spec = study.runs["child"]
    # label, role, reported, seed figures and seeds stay the run's own
    assert (spec.label, spec.role, spec.reported, spec.seed_figures) == ("child", "ablation", None, {})
    assert study.runs["strong_vit_seeds"].config.seed == 3 and child.seed == 0
    assert "child.seed4" not in study.runs and "strong_vit_seeds.seed4" in study.runs


def test_chains_resolve_in_any_order_and_with_only_and_overrides(tmp_path):
    path = variant(tmp_path, {  # c is listed before b, which it starts from
        "c": {"label": "c", "from": "b", "config": {"train": {"epochs": 7}}},
        "b": {"label": "b", "from": "strong_vit", "config": {"optim": {"lr": 5.0e-4}, "train": {"epochs": 6}}}})
    study = load_study(path, out_dir=tmp_path, overrides=["train.batch_size=32"])
    c = study.runs["c"].config
    assert (c.model.name, c.optim.lr, c.train.epochs, c.train.label_smoothing) == ("test_vit_cifar", 5.0e-4, 7, 0.1)
    assert c.train.batch_size == 32  # --set comes last, over every layer
    # one run alone (`cnnvit train FILE --run c`) still resolves through runs it does not keep
    assert study_config_for_run(path, "c").to_dict() == load_study(path, only=["c"]).runs["c"].config.to_dict()
    assert study_config_for_run(path, "c").optim.lr == 5.0e-4
    assert [src.rsplit(".", 1)[-1] for _, src in config_layers(yaml.safe_load(path.read_text())["runs"], "c", path)] \
        == ["strong_vit", "b", "c"]


def test_inheriting_leaves_a_run_s_config_and_identity_as_written_out(tmp_path):
    """Study 1's preprocessing ablation starts from the ViT seed run; written out in full, it is
    the same run (the same config, so the same run folder identity)."""
    assert yaml.safe_load(SMOKE_STUDY.read_text())["runs"]["ablation_vit_b16_no_preprocessing"]["from"] == "seed_vit_b16"
    explicit = {"label": "x", "role": "ablation", "config": {
        "model": {"name": "test_vit"}, "data": {"image_size": 64, "flip": False, "normalize": False},
        "train": {"epochs": 3, "batch_size": 64}, "optim": {"name": "adam", "lr": 1.0e-4},
        "sched": {"name": "constant"}}}
    shipped = load_study(SMOKE_STUDY, out_dir=tmp_path).runs["ablation_vit_b16_no_preprocessing"].config
    written = load_study(variant(tmp_path, {"explicit": explicit}), out_dir=tmp_path).runs["explicit"].config
    assert written.to_dict() == shipped.to_dict()
    assert identity_of(written.to_dict()) == identity_of(shipped.to_dict())


@pytest.mark.parametrize("runs, run, words", [
    ({"a": {"from": "nosuch"}}, "a", ["runs.a.from", "no run named 'nosuch'", "runs: seed_resnet18"]),
    ({"a": {"from": "a"}}, "a", ["runs.a.from", "'a' is the run itself"]),
    ({"a": {"from": "b"}, "b": {"from": "a"}}, "a", ["runs.a.from", "a cycle, a -> b -> a"]),
    ({"a": {"from": "b"}, "b": {"from": "c"}, "c": {"from": "b"}}, "a", ["runs.a.from", "a cycle, a -> b -> c -> b"]),
    ({"a": {"from": "b"}, "b": {"from": "nosuch"}}, "a", ["runs.a.from", "a -> b -> nosuch: no run named 'nosuch'"]),
    ({"a": {"from": ["b"]}}, "a", ["runs.a.from", "expected the name of another run", "['b']"]),
])
def test_a_bad_from_is_one_config_error_at_load_naming_file_run_and_problem(tmp_path, runs, run, words):
    path = variant(tmp_path, {n: {"label": n, **spec} for n, spec in runs.items()})
    with pytest.raises(ConfigError) as exc:
        load_study(path, out_dir=tmp_path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: runs.{run}.from: ") and "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    # a dry run keeps the error under the run's name and reports the other runs
    errors: dict = {}
    study = load_study(path, out_dir=tmp_path, run_errors=errors)
    assert str(errors[run]) == msg and set(runs) == set(errors) and "strong_vit" in study.runs


def test_a_failing_run_s_dry_run_line_names_its_inherited_model(tmp_path):
    path = variant(tmp_path, {"child": {"from": "strong_vit", "config": {"optim": {"lrr": 1}}}})
    errors: dict = {}
    load_study(path, out_dir=tmp_path, run_errors=errors)
    assert "optim.lrr" in str(errors["child"]) and "runs.child" in str(errors["child"])
    assert _model_named(path, "child") == "test_vit_cifar"  # strong_vit's, not base's or the default


def test_the_gpu_check_builds_the_paper_runs_as_the_study_does():
    """benchmarks/gpu_check.py reads the paper files itself: its configs follow ``from:`` too."""
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod
    spec.loader.exec_module(mod)
    path = REPO / "params" / "paper" / "03_tiny_imagenet_transformers.yaml"
    study = load_study(path)
    theirs = {run: cfg for s, run, cfg in mod.paper_runs() if s == path.stem}
    assert set(theirs) == set(study.runs)
    for name, cfg in theirs.items():
        assert identity_of(cfg.to_dict()) == identity_of(study.runs[name].config.to_dict()), name
    assert theirs["aug_ema"].model.name == "deit_base_distilled_patch16_384"
