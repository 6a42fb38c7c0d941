"""The figures fit a printed page and say what they show: tiny synthetic frames, no training."""
from __future__ import annotations

import io
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from cnnvit.studies import plots, pooled_confusions  # noqa: E402
from cnnvit.studies.core import RunSpec, Study  # noqa: E402
from helpers import tiny_config  # noqa: E402

PRINT_WIDTH = 7.0  # inches a figure is read at in the report
CLASSES = [f"class {i}" for i in range(10)]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def printed_size(fig: plt.Figure) -> tuple[float, float]:
    """Width and height (inches) of the figure as the notebook saves it (bbox_inches='tight')."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50, bbox_inches="tight")
    h, w = plt.imread(io.BytesIO(buf.getvalue())).shape[:2]
    return w / 50, h / 50


def smallest_print_font(fig: plt.Figure) -> float:
    """The smallest text of the figure, in points, once it is scaled to at most the page width."""
    width, _ = printed_size(fig)
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * min(1.0, PRINT_WIDTH / width)


def epochs_frame(n: int = 6, val: bool = True, seed: int = 0) -> pd.DataFrame:
    """A run's epochs.csv: with a validation split, read every epoch and the test split only at
    the last; without one, the test split every epoch."""
    rng = np.random.default_rng(seed)
    acc = np.linspace(0.3, 0.8, n) + rng.uniform(0, 0.02, n)
    df = pd.DataFrame({"epoch": np.arange(1, n + 1), "train_loss": np.linspace(2.0, 0.5, n),
                       "val_loss": np.nan, "val_accuracy": np.nan, "test_loss": np.nan, "test_accuracy": np.nan})
    if val:
        df["val_loss"], df["val_accuracy"] = np.linspace(2.1, 0.7, n), acc
        df.loc[n - 1, ["test_loss", "test_accuracy"]] = 0.7, acc[-1] - 0.01
    else:
        df["test_loss"], df["test_accuracy"] = np.linspace(2.1, 0.7, n), acc
    return df


def steps_frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame({"step": np.arange(1, n + 1), "loss": np.linspace(2.3, 0.4, n),
                         "grad_norm": np.linspace(3.0, 1.0, n), "val_loss": np.linspace(2.3, 0.6, n),
                         "val_accuracy": np.linspace(0.1, 0.8, n)})


TWELVE = {f"a run with a fairly long label, number {i}": i for i in range(12)}


@pytest.mark.parametrize("draw", [
    lambda: plots.plot_accuracy_curves({k: epochs_frame(seed=i) for k, i in TWELVE.items()}),
    lambda: plots.plot_epoch_losses({k: epochs_frame(seed=i) for k, i in TWELVE.items()}),
    lambda: plots.plot_loss_curves({k: steps_frame() for k in TWELVE}, chance_loss=2.3),
    lambda: plots.plot_gradient_norms({k: steps_frame() for k in TWELVE}),
    lambda: plots.plot_validation_steps({k: steps_frame() for k in TWELVE}),
], ids=["accuracy", "epoch_losses", "loss", "grad_norms", "validation_steps"])
def test_twelve_series_fit_the_page_in_twelve_colours_with_the_legend_outside(draw):
    fig = draw()
    width, height = printed_size(fig)
    assert height / width <= 1.3
    assert smallest_print_font(fig) >= 6.9
    ax = fig.axes[0]
    solid = [line for line in ax.get_lines() if line.get_alpha() is None and line.get_label() in TWELVE]
    drawn = solid or [line for line in ax.get_lines() if line.get_linestyle() == "-"][:12]
    assert len({to_hex(line.get_color()) for line in drawn}) == 12, "no colour is reused"
    assert not ax.get_legend(), "the legend sits outside the axes (the figure's)"
    legend = fig.legends[0]
    fig.canvas.draw()
    assert not legend.get_window_extent().overlaps(ax.get_window_extent())


def test_twelve_confusion_matrices_fit_the_page_readably_with_a_colour_bar():
    fig = plots.plot_confusions({f"setting {i} (3 seeds)": np.eye(10, dtype=int) * 5 + 1 for i in range(12)}, CLASSES)
    width, height = printed_size(fig)
    assert height / width <= 1.3
    assert smallest_print_font(fig) >= 6.9
    heatmaps = [ax for ax in fig.axes if ax.collections and ax.get_title()]
    assert len(heatmaps) == 12 and max(len(set(ax.get_position().x0 for ax in heatmaps)), 1) <= 4
    assert len(fig.axes) - len(heatmaps) - sum(not ax.axison for ax in fig.axes) == 1, "one colour bar"


@pytest.mark.parametrize("n", [1, 2, 5])
def test_few_confusion_matrices_fit_and_each_figure_has_a_colour_bar(n):
    fig = plots.plot_confusions({f"m{i}": np.ones((10, 10), dtype=int) for i in range(n)}, CLASSES)
    width, height = printed_size(fig)
    assert height / width <= 1.3 and width <= PRINT_WIDTH + 0.5
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_a_single_confusion_matrix_is_normalised_per_true_class_and_has_a_colour_bar():
    fig = plots.plot_confusion([[3, 1], [0, 4]], ["cat", "dog"])
    values = fig.axes[0].collections[0].get_array().reshape(2, 2)
    assert np.allclose(values, [[75, 25], [0, 100]])
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def _study_with_seeds() -> tuple[Study, dict]:
    cfg = tiny_config()
    runs = {"a": RunSpec("a", "ResNet (seed setting)", "seed", cfg),
            "a.seed1": RunSpec("a.seed1", "ResNet (seed setting) (seed 1)", "seed", cfg, replica_of="a"),
            "a.seed2": RunSpec("a.seed2", "ResNet (seed setting) (seed 2)", "seed", cfg, replica_of="a"),
            "b": RunSpec("b", "ViT", "seed", cfg)}
    matrices = {"a": [[4, 0], [1, 3]], "a.seed1": [[2, 2], [0, 4]], "a.seed2": [[3, 1], [1, 3]], "b": [[1, 3], [3, 1]]}
    results = {n: SimpleNamespace(metrics=SimpleNamespace(test={"confusion_matrix": m})) for n, m in matrices.items()}
    return Study("01_cifar10_vit_vs_resnet", "smoke", "t", runs, "params.yaml"), results


def test_pooled_confusion_sums_the_seeds_of_each_setting():
    study, results = _study_with_seeds()
    pooled = pooled_confusions(study, results)
    assert list(pooled) == ["ResNet (seed setting) (3 seeds)", "ViT"]
    assert pooled["ResNet (seed setting) (3 seeds)"].tolist() == [[9, 3], [2, 10]]
    assert pooled["ViT"].tolist() == [[1, 3], [3, 1]]
    del results["a.seed2"]  # a repeat that has not finished is left out of the pool
    only_a = pooled_confusions(study, results, ["a"])
    assert list(only_a) == ["ResNet (seed setting) (2 seeds)"] and only_a[list(only_a)[0]].tolist() == [[6, 2], [1, 7]]
    assert list(pooled_confusions(study, results, ["a.seed1", "b"])) == ["ResNet (seed setting) (2 seeds)", "ViT"], \
        "a repeat (the best run, say) stands for its setting"
    fig = plots.plot_confusions(pooled_confusions(study, results), ["cat", "dog"])
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["ResNet (seed setting) (2 seeds)", "ViT"]


def test_a_test_split_read_only_at_the_end_is_not_drawn_as_a_test_curve():
    end_only = epochs_frame(val=False)
    end_only.loc[: len(end_only) - 2, ["test_loss", "test_accuracy"]] = np.nan  # eval_every longer than the run
    with_val = epochs_frame(val=True)  # its test accuracy exists at the last epoch only
    fig = plots.plot_accuracy_curves({"end only": end_only, "with val": with_val})
    ax = fig.axes[0]
    drawn = [line for line in ax.get_lines() if len(line.get_xdata())]
    assert len(drawn) == 1 and len(drawn[0].get_xdata()) == len(with_val), "only the validation curve"
    assert np.allclose(drawn[0].get_ydata(), 100 * with_val["val_accuracy"])
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any(t.startswith("end only") and "only at the end" in t for t in texts)
    assert "validation" in ax.get_ylabel() and "test" not in ax.get_ylabel()
    fig = plots.plot_effects({"depth": {"end only": end_only, "with val": with_val}})
    assert sum(len(line.get_xdata()) > 0 for line in fig.axes[0].get_lines()) == 1


def test_a_test_split_read_every_epoch_is_a_test_curve():
    fig = plots.plot_accuracy_curves({"no val": epochs_frame(val=False)})
    assert len(fig.axes[0].get_lines()[0].get_xdata()) == 6 and "test" in fig.axes[0].get_ylabel()


@pytest.mark.parametrize("draw", [
    lambda e: plots.plot_accuracy_curves({"r": e}),
    lambda e: plots.plot_epoch_losses({"r": e}),
    lambda e: plots.plot_effects({"BatchNorm": {"r": e}}),
], ids=["accuracy", "epoch_losses", "effects"])
def test_epoch_axes_have_integer_ticks(draw):
    fig = draw(epochs_frame(n=3))  # three epochs: matplotlib's own ticks would be 1.0, 1.5, 2.0, ...
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.get_lines():
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_five_effects_take_two_rows_of_at_most_three_and_fit_the_page():
    panels = {f"effect {i}": {f"ResNet-{i} (label {j})": epochs_frame(seed=j) for j in range(3)} for i in range(5)}
    fig = plots.plot_effects(panels, chance=0.005)
    width, height = printed_size(fig)
    assert height / width <= 1.3
    assert smallest_print_font(fig) >= 6.9
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 5 and len({round(ax.get_position().x0, 3) for ax in titled}) == 3


@pytest.mark.parametrize("params", [[0.05, 0.3, 2.5, 11.0, 60.0], [1.1, 1.4, 1.9, 2.6], [0.02, 150.0, 3000.0]])
def test_accuracy_vs_size_labels_points_by_run_and_its_ticks_do_not_overlap(params):
    table = pd.DataFrame({"model": [f"code_{i}" for i in range(len(params))], "params (M)": params,
                          "accuracy": np.linspace(0.6, 0.9, len(params)),
                          "run": [f"Run {i}" for i in range(len(params))]})
    fig = plots.plot_accuracy_vs_size(table)
    ax = fig.axes[0]
    assert {t.get_text() for t in ax.texts} == set(table["run"])
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels(which="both") if t.get_text() and t.get_visible()]
    assert len(boxes) >= 2
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
