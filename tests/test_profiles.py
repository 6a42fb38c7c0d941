"""Every parameter file of every profile builds without training: configs valid, models known,
sizes that fit, groups that name existing runs. The laptop profile also promises a CPU and no
downloaded weights."""
from __future__ import annotations

from pathlib import Path

import pytest

from cnnvit.studies import load_study

PARAMS = Path(__file__).resolve().parents[1] / "params"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
FILES = sorted(PARAMS.glob("*/*.yaml"))
LAPTOP = sorted((PARAMS / "laptop").glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_parameter_file_builds(path, tmp_path):
    study = load_study(path, out_dir=tmp_path, data_dir=tmp_path / "data")
    assert study.profile == path.parent.name, "a file's profile must be its folder's"
    assert (NOTEBOOKS / f"{path.stem}.ipynb").exists(), f"no notebook for {path.name}"
    for name in study.groups:
        assert study.members(name), name


def test_there_is_a_laptop_profile():
    assert LAPTOP, "params/laptop/ holds no parameter file"


@pytest.mark.parametrize("path", LAPTOP, ids=[p.stem for p in LAPTOP])
def test_laptop_runs_on_a_cpu_from_real_data_without_hub_weights(path, tmp_path):
    study = load_study(path, out_dir=tmp_path, data_dir=tmp_path / "data")
    for name, spec in study.runs.items():
        cfg = spec.config
        assert cfg.device == "cpu", f"{name}: the laptop profile runs on the CPU"
        assert not cfg.model.pretrained, f"{name}: no hub weights on a laptop (pretrain in the study instead)"
        assert cfg.data.name != "synthetic" and cfg.data.root, f"{name}: real data, under DATA_DIR"
        assert not cfg.model.name.startswith("test_"), f"{name}: a test stand-in in a real profile"
    repeated = [n for n in study.runs if len(study.repeats(n)) >= 3]
    assert repeated, f"{path.name}: the headline comparison is repeated over 3 seeds"


PAPER = sorted((PARAMS / "paper").glob("*.yaml"))


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
def test_every_paper_file_states_its_deviations_from_the_seed(path, tmp_path):
    """Each paper study lists what it does differently from its seed and why; the table the
    notebook shows renders from it, every cell filled."""
    from cnnvit.studies import deviations_table

    table = deviations_table(load_study(path, out_dir=tmp_path))
    assert list(table.columns) == ["what", "the seed", "here (paper)", "why"]
    assert len(table) >= 3 and (table.map(len) > 0).all().all(), table


def test_a_deviation_entry_needs_every_field(tmp_path):
    import yaml

    raw = yaml.safe_load((PARAMS / "smoke" / "04_cifar10_finetune.yaml").read_text())
    raw["deviations"] = [{"what": "epochs", "seed": 50, "here": 4}]  # no 'why'
    bad = tmp_path / "04_cifar10_finetune.yaml"
    bad.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(Exception, match=r"deviations\[0\]: expected the keys what, seed, here, why"):
        load_study(bad, out_dir=tmp_path)
