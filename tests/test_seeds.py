"""Runs repeated over seeds (`seeds:` in a study file): one run per seed, and the mean and spread
over them in the tables and conclusions."""
from __future__ import annotations

import numpy as np
import pytest

from cnnvit.config import ConfigError
from cnnvit.studies import load_study, run_study, summary_table
from cnnvit.studies.common import model_name, pct_seeds, seed_stats

STUDY = """study: my_study
profile: smoke
base:
  data: {{name: synthetic, synthetic_train: 64, synthetic_test: 32}}
  model: {{name: test_resnet_cifar}}
  train: {{epochs: 1, batch_size: 16}}
  device: cpu
runs:
  a:
    label: "model A"
    seeds: {seeds}
  b:
    label: "model B"
"""


def _study(tmp_path, seeds="[3, 5, 8]"):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(seeds=seeds))
    return load_study(path, out_dir=tmp_path / "out")


def test_a_run_with_seeds_becomes_one_run_per_seed(tmp_path):
    study = _study(tmp_path)
    assert list(study.runs) == ["a", "a.seed5", "a.seed8", "b"]
    assert [study.runs[n].config.seed for n in study.repeats("a")] == [3, 5, 8]
    assert study.repeats("b") == ["b"]
    base = study.runs["a"].config.to_dict()
    for n in ("a.seed5", "a.seed8"):
        other = study.runs[n].config.to_dict()
        assert {k for k in base if base[k] != other[k]} == {"seed"}, "a repeat differs by more than its seed"
        assert study.runs[n].replica_of == "a" and study.runs[n].label.startswith("model A")


def test_a_repeat_is_labelled_with_its_seed(tmp_path):
    """The first run keeps its label; each repeat adds its seed, which model_name drops again."""
    study = _study(tmp_path)
    assert {n: spec.label for n, spec in study.runs.items()} == {
        "a": "model A", "a.seed5": "model A (seed 5)", "a.seed8": "model A (seed 8)", "b": "model B"}
    assert [model_name(study, n) for n in study.runs] == ["model A"] * 3 + ["model B"]


@pytest.mark.parametrize("bad", ["[]", "[1, 1]", "[-1, 2]", "3", "[1.5]", "[true]"])
def test_bad_seed_lists_are_refused_naming_the_run(tmp_path, bad):
    with pytest.raises(ConfigError, match=r"runs\.a\.seeds"):
        _study(tmp_path, bad)


def test_tables_give_the_mean_and_spread_over_seeds(tmp_path):
    study = _study(tmp_path)
    results = run_study(study, progress=False)
    acc = [results[n].metrics.test_accuracy for n in ("a", "a.seed5", "a.seed8")]
    assert len(set(acc)) > 1, f"three seeds gave the same accuracy {acc}: the seed does not reach training"
    stats = seed_stats(study, results)
    assert set(stats) == {"a", "b"}
    assert stats["a"] == pytest.approx((np.mean(acc), np.std(acc, ddof=1), 3))
    assert stats["b"] == (results["b"].metrics.test_accuracy, 0.0, 1)
    # one row per setting: the mean, the spread in points and how many seeds, on the first run's
    table = summary_table(study, results)
    assert list(table["run"]) == ["model A", "model B"]
    table = table.set_index("run")
    mean, std, n = stats["a"]
    assert table.loc["model A", "test acc"] == pytest.approx(mean)
    assert table.loc["model A", "± (points)"] == pytest.approx(100 * std)
    assert list(table["seeds"]) == [3, 1] and np.isnan(table.loc["model B", "± (points)"])
    # and one row per seed on demand, each with its own number
    per_seed = summary_table(study, results, seeds=True)
    assert list(per_seed["run"]) == ["model A", "model A (seed 5)", "model A (seed 8)", "model B"]
    assert list(per_seed["test acc"][:3]) == pytest.approx(acc) and "seeds" not in per_seed


def test_pct_seeds_wording():
    assert pct_seeds((0.8812, 0.0, 1)) == "88.1%"
    assert pct_seeds((0.8812, 0.0043, 3)) == "88.1% ± 0.4 (3 seeds)"
