"""README's "How to add a data set, a model or a study", done from this test module alone: a
tiny data set with an option of its own, a tiny model and a tiny study, each registered here and
used through the normal entry points (config, parameter file, training, conclusions), with no
file of the library touched."""
from __future__ import annotations

import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from torch import nn

from cnnvit import config as config_mod
from cnnvit.config import ConfigError
from cnnvit.datasets import (DataSource, Dataset, DatasetSpec, dataset_from_config, get_dataset, names, option, register_dataset,
                             take_subsets, unregister_dataset)
from cnnvit.models import list_models, register_model, unregister_model
from cnnvit.studies import (best_run, group_schema, load_study, register_study, run_study, study_module,
                            summary_table, unregister_study)
from cnnvit.studies.groups import parts

DATASET, MODEL, STUDY = "test-bars", "test_bars_net", "test_bars_study"


@dataclass(frozen=True)
class BarsOptions:
    """The test data set's own key: how bright the noise over its bars is."""

    bar_noise: float = option(0.1, "noise over the bars (0: clean bars)", low=0.0, high=1.0)


def _bars(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Images of one bright bar, vertical (class 0) or horizontal (class 1), under noise."""
    labels = np.arange(n) % 2
    images = rng.uniform(0, noise, (n, 16, 16, 3))
    for img, y, at in zip(images, labels, rng.integers(2, 14, n)):
        if y:
            img[at - 1:at + 1] = 1.0
        else:
            img[:, at - 1:at + 1] = 1.0
    return (images * 255).astype(np.uint8), labels.astype(np.int64)


def _load_bars(source: DataSource, seed: int) -> Dataset:
    opts: BarsOptions = get_dataset(DATASET).options_of(source)
    rng = np.random.default_rng(11)
    train, test = _bars(80, opts.bar_noise, rng), _bars(40, opts.bar_noise, rng)
    tr_x, tr_y, te_x, te_y = take_subsets(train, test, seed, train_subset=source.train_subset,
                                          test_subset=source.test_subset)
    return Dataset(DATASET, ["vertical", "horizontal"], tr_x, tr_y, te_x, te_y,
                   f"generated bars, noise {opts.bar_noise}", (0.5,) * 3, (0.25,) * 3)


def _bars_net(num_classes: int) -> nn.Module:
    """A two-layer CNN for the bars (the test's own model)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(8 * 16, num_classes))


def _conclusions(study, results) -> str:
    """The tiny study's one conclusion, computed from its runs."""
    clean, noisy = study.member("noise", "clean"), study.member("noise", "noisy")
    best = best_run({n: results[n] for n in (clean, noisy)})
    return f"- **Noise.** The most accurate run: {study.label(best)}."


@pytest.fixture
def extended():
    """The three registered for the test, and forgotten after it."""
    register_dataset(DatasetSpec(name=DATASET, load=_load_bars, locate=lambda source: "generated bars",
                                 native_size=16, options=BarsOptions, num_classes=lambda source: 2))
    _bars_net.__name__ = MODEL
    register_model(native_size=16)(_bars_net)
    module = types.ModuleType(STUDY)
    module.STUDY, module.GROUPS, module.conclusions = STUDY, {"noise": parts("clean against noisy bars",
                                                                             "clean", "noisy")}, _conclusions
    register_study(module)
    yield module
    unregister_study(STUDY)
    unregister_model(MODEL)
    unregister_dataset(DATASET)


def _study_file(folder: Path) -> Path:
    path = folder / "bars.yaml"
    path.write_text(yaml.safe_dump({
        "study": STUDY, "profile": "smoke", "title": "Bars",
        "base": {"data": {"name": DATASET}, "model": {"name": MODEL},
                 "train": {"epochs": 2, "batch_size": 16, "tensorboard": False}, "device": "cpu"},
        "runs": {"clean": {"label": "clean bars", "role": "seed", "config": {"data": {"bar_noise": 0.0}}},
                 "noisy": {"label": "noisy bars", "role": "ablation", "from": "clean",
                           "config": {"data": {"bar_noise": 0.9}}}},
        "groups": {"noise": {"clean": "clean", "noisy": "noisy"}}}))
    return path


def test_a_data_set_model_and_study_added_from_a_test_module_run_end_to_end(extended, tmp_path):
    assert DATASET in names() and MODEL in list_models() and study_module(STUDY) is extended
    assert list(group_schema(STUDY)) == ["noise"]
    study = load_study(_study_file(tmp_path), out_dir=tmp_path / "out")
    assert study.runs["noisy"].config.data.bar_noise == 0.9 and study.runs["clean"].config.data.bar_noise == 0.0
    assert study.runs["noisy"].config.model.name == MODEL  # inherited from the run it starts from
    results = run_study(study, progress=False)
    table = summary_table(study, results)
    assert list(table["run"]) == ["clean bars", "noisy bars"]
    md = extended.conclusions(study, results)
    best = max(results, key=lambda n: float(table.loc[table["run"] == study.label(n), "test acc"].iloc[0]))
    assert md == f"- **Noise.** The most accurate run: {study.label(best)}."
    # the option reached the loader, typed, for each run (the two differ in it alone, so they must
    # not share one loaded data set), and is part of the run's identity
    assert dataset_from_config(study.runs["noisy"].config.data, 0).source == "generated bars, noise 0.9"
    assert [results[n].metrics.dataset.source for n in ("clean", "noisy")] == [
        "generated bars, noise 0.0", "generated bars, noise 0.9"]
    assert "bar_noise: 0.9" in (study.run_dir("noisy") / "config.yaml").read_text()


def test_a_data_sets_own_option_is_checked_by_its_rule_and_left_alone_by_others(extended):
    cfg = config_mod.build({"data": {"name": DATASET, "bar_noise": 0.5}})
    assert cfg.data.bar_noise == 0.5 and config_mod.non_defaults(cfg)["data.bar_noise"] == (0.5, 0.1)
    assert "bar_noise: 0.5  # default: 0.1" in config_mod.dump(cfg)
    assert config_mod.from_dict(cfg.to_dict()).data.bar_noise == 0.5
    with pytest.raises(ConfigError, match=r"data.bar_noise: must lie in \[0, 1\], got 1.5"):
        config_mod.build({"data": {"name": DATASET, "bar_noise": 1.5}})
    with pytest.raises(ConfigError, match="data.bar_noise: expected float"):
        config_mod.build({"data": {"name": DATASET, "bar_noise": "high"}})
    with pytest.raises(ConfigError, match="did you mean 'data.bar_noise'"):
        config_mod.build({"data": {"name": DATASET, "bar_nosie": 0.5}})
    # two sources that differ in an option alone are not equal, nor printed alike
    other = config_mod.build({"data": {"name": DATASET, "bar_noise": 0.6}})
    assert cfg.data != other.data and repr(cfg.data) != repr(other.data) and "bar_noise=0.5" in repr(cfg.data)
    # another data set ignores it (a study's base may set it for some runs only), and it is no
    # part of that data set's runs: their config.yaml and identity do not change while it is registered
    other_set = config_mod.build({"data": {"name": "synthetic", "bar_noise": 0.5}})
    assert other_set.data.name == "synthetic" and "bar_noise" not in config_mod.dump(other_set)
    assert "data.bar_noise" not in config_mod.flatten(other_set.to_dict())


def test_the_data_sets_a_study_reads_follow_from_chains(tmp_path):
    from cnnvit.config import needed_by_studies

    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "s.yaml").write_text(yaml.safe_dump({
        "study": "s", "profile": "smoke", "base": {"data": {"name": "synthetic"}},
        "runs": {"a": {"config": {"data": {"name": "celeba"}}}, "b": {"from": "a"}, "c": {}}}))
    assert needed_by_studies(tmp_path) == {"celeba": ["s"], "synthetic": ["s"]}
    (tmp_path / "smoke" / "s.yaml").write_text(yaml.safe_dump({
        "study": "s", "profile": "smoke", "base": {"data": {"name": "synthetic"}},
        "runs": {"b": {"from": "a"}, "a": {"config": {"data": {"name": "celeba"}}}}}))
    assert needed_by_studies(tmp_path) == {"celeba": ["s"]}


def test_unregistering_forgets_the_option_and_the_study(tmp_path):
    register_dataset(DatasetSpec(name=DATASET, load=_load_bars, locate=lambda source: "", options=BarsOptions))
    unregister_dataset(DATASET)
    with pytest.raises(ConfigError, match="unknown config key 'data.bar_noise'"):
        config_mod.build({"data": {"bar_noise": 0.5}})
    assert study_module(STUDY) is None and group_schema(STUDY) == {}


def test_a_data_sets_option_may_not_take_a_key_that_exists(extended):
    @dataclass(frozen=True)
    class Clash:
        root: str = option("x", "a key every data set has")

    with pytest.raises(ValueError, match="'root' is a key of every data set already"):
        register_dataset(DatasetSpec(name="test-clash", load=_load_bars, locate=lambda s: "", options=Clash))
    assert "test-clash" not in names()


def test_a_study_needs_groups_and_conclusions(extended):
    with pytest.raises(ValueError, match="registered already"):
        register_study(extended)
    with pytest.raises(ValueError, match="has no conclusions"):
        register_study(types.SimpleNamespace(STUDY="test-incomplete", GROUPS={}))


def test_the_notebooks_input_check_stands_for_the_first_run_study_only(extended, tmp_path):
    """open_study keeps its input check on the study; the run_study right after uses it, a
    later one (the cell run again, after the data came) checks afresh."""
    study = load_study(_study_file(tmp_path), out_dir=tmp_path / "out")
    study.inputs_checked = (True, ["noisy"])  # as open_study(partial=True) leaves it: noisy cannot train
    assert list(run_study(study, progress=False, partial=True)) == ["clean"]
    assert study.inputs_checked is None
    assert list(run_study(study, progress=False, partial=True)) == ["clean", "noisy"]
