"""Figures: each function takes data and returns a matplotlib Figure (seaborn styling).

Every figure is drawn at the report's printed width (:data:`PAGE_WIDTH`), no taller than
:data:`MAX_ASPECT` times that, with text of at least :data:`SMALL` points, and its legend outside
the data; figures with more series than seaborn's ten colours take a palette of as many hues."""
from __future__ import annotations

import math
import textwrap
from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator

from ..config import Config
from ..datasets import DatasetError
from .common import preview_preprocessing

sns.set_theme(context="notebook", style="whitegrid")

PAGE_WIDTH = 7.0  # inches: the report's content width (182 mm), at which figures print
MAX_ASPECT = 1.3  # height / width: a figure and its caption fit one A4 page (263 mm of 182)
SMALL = 7.5  # points: the smallest text (legends, annotations, crowded ticks) at PAGE_WIDTH


def series_colors(n: int) -> list[tuple[float, float, float]]:
    """``n`` distinct colours: seaborn's default ten, or ``n`` evenly spaced hues (husl) beyond
    ten, so that no two series share a colour."""
    return sns.color_palette(n_colors=max(1, n)) if n <= 10 else sns.color_palette("husl", n)


def _legend_below(fig: plt.Figure, ax: plt.Axes, handles: Optional[list] = None,
                  labels: Optional[list[str]] = None, title: Optional[str] = None) -> None:
    """The legend of ``ax`` under the figure's axes (constrained layout makes room for it), in as
    many columns as its longest label allows across the page."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    longest = max(len(s) for s in labels)
    # a legend entry is about 0.55 em per character plus its line sample
    per_col = (0.55 * SMALL * longest + 3 * SMALL) / 72
    ncols = max(1, min(len(labels), 4, int(0.95 * fig.get_figwidth() / per_col)))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=SMALL, frameon=False,
               title=title, title_fontsize=SMALL)


def _legend_height(n: int, labels: Sequence[str] = ()) -> float:
    """Inches to add to a figure's height for a legend of ``n`` entries below it."""
    longest = max((len(s) for s in labels), default=20)
    per_col = (0.55 * SMALL * longest + 3 * SMALL) / 72
    ncols = max(1, min(n, 4, int(0.95 * PAGE_WIDTH / per_col)))
    return 0.2 + 0.17 * math.ceil(n / ncols)


def _figure(height: float, n_legend: int = 0, labels: Sequence[str] = (), **kw) -> tuple[plt.Figure, plt.Axes]:
    """One axes at the page width, ``height`` inches for the plot plus room for a legend below;
    never taller than :data:`MAX_ASPECT` times the width."""
    h = min(height + (_legend_height(n_legend, labels) if n_legend else 0), MAX_ASPECT * PAGE_WIDTH)
    return plt.subplots(figsize=(PAGE_WIDTH, h), layout="constrained", **kw)


def _integer_epochs(ax: plt.Axes) -> None:
    # epochs are whole numbers: no tick at epoch 2.5
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _along_training(df: pd.DataFrame, column: str) -> bool:
    """Whether ``column`` was read along training (a curve), not only at the end: it has a value
    at every epoch that was evaluated at all, and at more than one of them (unless the run had
    a single epoch)."""
    if column not in df or df[column].isna().all():
        return False
    read = df[[c for c in ("val_accuracy", "test_accuracy") if c in df]].notna().any(axis=1)
    have = df[column].notna()
    return bool((have == read).all() and (have.sum() > 1 or len(df) == 1))


def _curve_split(df: pd.DataFrame) -> Optional[str]:
    """The split a run's accuracy is followed on per epoch: validation where the run has one; else
    the test split where it was read along training; None where it was read only at the end (a
    run with a validation split, or ``train.eval_every`` longer than the run), which is no curve."""
    for split in ("val", "test"):
        if _along_training(df, f"{split}_accuracy"):
            return split
    return None


def _split_name(splits: set[str]) -> str:
    return " / ".join("validation" if s == "val" else "test" for s in sorted(splits)) or "validation"


def plot_loss_curves(steps: Mapping[str, pd.DataFrame], smooth: int = 25,
                     title: str = "Training loss per iteration",
                     chance_loss: Optional[float] = None) -> plt.Figure:
    """Per-step training loss of several runs (raw, faint; moving average, solid); with
    ``chance_loss`` (ln C) a line marks the loss of a model that has learned nothing."""
    labels = list(steps) + (["uniform guess"] if chance_loss is not None else [])
    fig, ax = _figure(3.6, len(labels), labels)
    if chance_loss is not None:
        ax.axhline(chance_loss, color="grey", linestyle=":", linewidth=1,
                   label=f"uniform guess (ln C = {chance_loss:.2f})")
    for color, (label, df) in zip(series_colors(len(steps)), steps.items()):
        window = max(1, min(smooth, len(df) // 10 or 1))
        ax.plot(df["step"], df["loss"], color=color, alpha=0.2, linewidth=0.8)
        ax.plot(df["step"], df["loss"].rolling(window, min_periods=1).mean(), color=color,
                label=label, linewidth=1.6)
    ax.set(xlabel="iteration (optimizer step)", ylabel="training loss", title=title)
    _legend_below(fig, ax)
    return fig


def _no_curve(label: str) -> str:
    return f"{label}: not drawn, its test split is read only at the end"


def plot_accuracy_curves(epochs: Mapping[str, pd.DataFrame], title: Optional[str] = None) -> plt.Figure:
    """Accuracy after each evaluated epoch, one line per run: on the validation split where the
    run has one, else on the test split where it was read along training. A run whose test split
    was read only at the end has no curve: the legend says so instead of drawing a dot."""
    splits = {label: _curve_split(df) for label, df in epochs.items()}
    shown = {s for s in splits.values() if s}
    mixed = len(shown) > 1  # then each line says which split it follows
    fig, ax = _figure(3.6, len(epochs), [_no_curve(k) if s is None else k for k, s in splits.items()])
    handles, names = [], []
    for color, (label, df) in zip(series_colors(len(epochs)), epochs.items()):
        split = splits[label]
        if split is None:
            handles.append(Line2D([], [], linestyle="none"))
            names.append(_no_curve(label))
            continue
        d = df.dropna(subset=[f"{split}_accuracy"])
        line, = ax.plot(d["epoch"], 100 * d[f"{split}_accuracy"], color=color, marker="o", markersize=3)
        handles.append(line)
        names.append(f"{label} ({'validation' if split == 'val' else 'test'})" if mixed else label)
    name = _split_name(shown)
    ax.set(xlabel="epoch", ylabel=f"{name} accuracy (%)", title=title or f"{name.capitalize()} accuracy per epoch")
    _integer_epochs(ax)
    _legend_below(fig, ax, handles, names)
    return fig


def plot_epoch_losses(epochs: Mapping[str, pd.DataFrame], title: str = "Loss per epoch") -> plt.Figure:
    """Training loss (solid) and validation loss (dashed, where the run has a validation split)
    after each epoch, one colour per run: a validation loss that turns up while the training
    loss keeps falling is overfitting."""
    fig, ax = _figure(3.6, len(epochs) + 2, list(epochs))
    handles, names = [], []
    for color, (label, df) in zip(series_colors(len(epochs)), epochs.items()):
        line, = ax.plot(df["epoch"], df["train_loss"], color=color, linewidth=1.6)
        if "val_loss" in df and df["val_loss"].notna().any():
            d = df.dropna(subset=["val_loss"])
            ax.plot(d["epoch"], d["val_loss"], color=color, linewidth=1.6, linestyle="--", marker="o", markersize=3)
        handles.append(line)
        names.append(label)
    # the line styles once, rather than two entries per run
    handles += [Line2D([], [], color="grey", linewidth=1.6), Line2D([], [], color="grey", linestyle="--")]
    names += ["training (solid)", "validation (dashed)"]
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    _integer_epochs(ax)
    _legend_below(fig, ax, handles, names)
    return fig


def plot_effects(panels: Mapping[str, Mapping[str, pd.DataFrame]], chance: Optional[float] = None,
                 ncols: int = 3) -> plt.Figure:
    """One column per effect (e.g. BatchNorm, depth), at most ``ncols`` to a row: validation (or
    test) accuracy per epoch above training loss per epoch, one line per run, the runs' legend
    under each column; ``chance`` marks 1/C on the accuracy axes."""
    n = max(1, len(panels))
    ncols = min(ncols, n)
    groups = -(-n // ncols)
    longest = max((len(label) for runs in panels.values() for label in runs), default=10)
    most = max((len(runs) for runs in panels.values()), default=1)
    # a legend line per run, wrapped to the column's width
    lines = most * (1 + int(0.55 * SMALL * longest / 72 / (PAGE_WIDTH / ncols)))
    height = min(groups * (2 * 1.55 + 0.35 + 0.16 * lines), MAX_ASPECT * PAGE_WIDTH)
    fig, axes = plt.subplots(2 * groups, ncols, figsize=(PAGE_WIDTH, height), squeeze=False, layout="constrained")
    splits = set()
    wrap = max(12, int(PAGE_WIDTH / ncols * 72 / (0.55 * SMALL)))
    for i, (effect, runs) in enumerate(panels.items()):
        top, bottom = axes[2 * (i // ncols), i % ncols], axes[2 * (i // ncols) + 1, i % ncols]
        handles, names = [], []
        for color, (label, df) in zip(series_colors(len(runs)), runs.items()):
            split = _curve_split(df)
            line, = bottom.plot(df["epoch"], df["train_loss"], color=color, linewidth=1.4)
            if split is None:
                label = _no_curve(label)
            else:
                splits.add(split)
                d = df.dropna(subset=[f"{split}_accuracy"])
                top.plot(d["epoch"], 100 * d[f"{split}_accuracy"], color=color, linewidth=1.4)
            handles.append(line)
            names.append(textwrap.fill(label, wrap))
        if chance is not None:
            top.axhline(100 * chance, color="grey", linestyle=":", linewidth=1)
        top.set_title(effect, fontsize=10)
        bottom.set_xlabel("epoch", fontsize=9)
        for ax in (top, bottom):
            _integer_epochs(ax)
            ax.tick_params(labelsize=SMALL)
        top.sharex(bottom)
        top.tick_params(labelbottom=False)
        bottom.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.32), fontsize=SMALL,
                      frameon=False, handlelength=1.5)
    for i in range(len(panels), groups * ncols):  # empty places of the last row
        axes[2 * (i // ncols), i % ncols].axis("off")
        axes[2 * (i // ncols) + 1, i % ncols].axis("off")
    for g in range(groups):
        axes[2 * g, 0].set_ylabel(f"{_split_name(splits)} acc. (%)", fontsize=9)
        axes[2 * g + 1, 0].set_ylabel("training loss", fontsize=9)
    return fig


def plot_gradient_norms(steps: Mapping[str, pd.DataFrame], smooth: int = 25,
                        title: str = "Gradient norm per iteration (before clipping)") -> plt.Figure:
    """Global gradient norm per optimizer step on a log axis: a network that has stopped
    learning shows it here first (vanishing or exploding gradients)."""
    shown = {label: df for label, df in steps.items() if "grad_norm" in df}
    fig, ax = _figure(3.4, len(shown), list(shown))
    for color, (label, df) in zip(series_colors(len(shown)), shown.items()):
        window = max(1, min(smooth, len(df) // 10 or 1))
        ax.plot(df["step"], df["grad_norm"].rolling(window, min_periods=1).median(), color=color, label=label,
                linewidth=1.4)
    ax.set(xlabel="iteration (optimizer step)", ylabel="gradient norm", yscale="log", title=title)
    _legend_below(fig, ax)
    return fig


def _annotate(n_classes: int, axes_inches: float) -> bool:
    # a cell must hold "100" at SMALL points (about 1.8 em) to be written in
    return bool(n_classes <= 12 and axes_inches * 72 / max(1, n_classes) >= 1.9 * SMALL)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "",
                   normalize: bool = True, ax: Optional[plt.Axes] = None, colorbar: bool = True,
                   tick_labels: tuple[bool, bool] = (True, True), annotate: Optional[bool] = None) -> plt.Figure:
    """Confusion matrix (rows: true class); normalised per true class (as a percentage) unless
    told otherwise; each cell written in where it is large enough at print size (``annotate``
    None), and a colour bar (``colorbar``; a grid draws one for all). ``tick_labels``: class
    names on the (x, y) axes."""
    cm = np.asarray(matrix, dtype=float)
    if normalize:
        cm = 100 * cm / np.maximum(cm.sum(1, keepdims=True), 1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.7 * PAGE_WIDTH, 0.6 * PAGE_WIDTH), layout="constrained")
    else:
        fig = ax.figure
    if annotate is None:
        box = ax.get_position()
        w, h = fig.get_size_inches()
        annotate = _annotate(len(classes), min(box.width * w, box.height * h))
    sns.heatmap(cm, annot=annotate, fmt=".0f" if normalize else "g",
                cmap="Blues", vmin=0, vmax=100 if normalize else None, square=True, ax=ax,
                xticklabels=list(classes) if tick_labels[0] else False,
                yticklabels=list(classes) if tick_labels[1] else False,
                cbar=colorbar, cbar_kws={"label": "% of the true class" if normalize else "images", "shrink": 0.8},
                annot_kws={"fontsize": SMALL})
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("predicted" if tick_labels[0] else "", fontsize=9)
    ax.set_ylabel("true" if tick_labels[1] else "", fontsize=9)
    ax.tick_params(labelsize=SMALL)
    if len(classes) > 30:  # hundreds of names would print as a black bar
        ax.xaxis.set_major_locator(NullLocator())
        ax.yaxis.set_major_locator(NullLocator())
    return fig


def _confusion_grid(n: int, margin: float, cbar: float = 0.8, title: float = 0.45,
                    max_panel: float = 3.2) -> tuple[int, float]:
    """Columns (at most 4) and panel size (inches) of a grid of ``n`` square matrices, with
    ``margin`` inches for the class names, that fills the page width and stays within
    :data:`MAX_ASPECT` (less a tenth: square axes leave some width unused, which the saved
    figure crops): the largest panels, or more columns where those are nearly as large."""
    sizes = {}
    for cols in range(1, min(4, n) + 1):
        rows = -(-n // cols)
        sizes[cols] = min(max_panel, (PAGE_WIDTH - cbar - margin) / cols,
                          (0.9 * MAX_ASPECT * PAGE_WIDTH - margin) / rows - title)
    best = max(sizes.values())
    cols = max(c for c, s in sizes.items() if s >= 0.8 * best)
    return cols, sizes[cols]


def plot_confusions(matrices: Mapping[str, Sequence[Sequence[int]]], classes: Sequence[str],
                    ncols: Optional[int] = None) -> plt.Figure:
    """Several normalised confusion matrices in a grid (at most 4 columns, chosen to fit the
    page unless ``ncols`` is given) with one colour bar for all; the class names on the left
    column and the bottom row. For runs repeated over seeds, pass their pooled matrices
    (:func:`~cnnvit.studies.common.pooled_confusions`)."""
    n = max(1, len(matrices))
    names = max((len(str(c)) for c in classes), default=1)
    margin = min(1.0, 0.55 * SMALL * names / 72) + 0.35  # class names and axis label
    cols, panel = _confusion_grid(n, margin)
    if ncols:
        cols = min(ncols, n)
        panel = min(3.2, (PAGE_WIDTH - 0.8 - margin) / cols)
    rows = -(-n // cols)
    width = min(PAGE_WIDTH, cols * panel + 0.8 + margin)
    height = min(rows * (panel + 0.45) + margin, 0.9 * MAX_ASPECT * width)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, layout="constrained")
    # titles wrap within their axes (about 0.6 em a character), never across a neighbour's
    wrap = max(10, int(0.85 * panel * 72 / (0.6 * 8.5)))
    for i, (ax, (label, cm)) in enumerate(zip(axes.flat, matrices.items())):
        last_row = i + cols >= len(matrices)
        plot_confusion(cm, classes, title=textwrap.fill(label, wrap), ax=ax, colorbar=False,
                       tick_labels=(last_row, i % cols == 0), annotate=_annotate(len(classes), 0.8 * panel))
        ax.title.set_fontsize(8.5)
    for ax in axes.flat[len(matrices):]:
        ax.axis("off")
    mappable = next((ax.collections[0] for ax in axes.flat if ax.collections), None)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, shrink=min(0.9, 3.0 / height), label="% of the true class")
    _fit_page(fig)
    return fig


def _fit_page(fig: plt.Figure) -> None:
    """Lower a figure whose saved (tight) box would be taller than :data:`MAX_ASPECT` times its
    width: square axes leave width unused that the saved figure crops."""
    for _ in range(4):
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        if box.height <= 0.98 * MAX_ASPECT * box.width:
            return
        w, h = fig.get_size_inches()
        fig.set_size_inches(w, 0.97 * h * MAX_ASPECT * box.width / box.height)


def plot_preprocessing_grid(before: np.ndarray, after: np.ndarray, labels: Sequence[str] = (),
                            title: str = "Before (top) and after (bottom) preprocessing") -> plt.Figure:
    """Raw uint8 images (N x H x W x 3) above their preprocessed versions (N x H' x W' x 3, any
    range: each is min-max scaled for display, as normalised tensors are not images)."""
    n = len(before)
    side = min(1.6, PAGE_WIDTH / max(1, n))
    fig, axes = plt.subplots(2, n, figsize=(min(PAGE_WIDTH, side * n + 0.4), 2 * side + 0.9), squeeze=False,
                             layout="constrained")
    wrap = max(8, int(side * 72 / (0.55 * SMALL)))
    for i in range(n):
        axes[0, i].imshow(before[i], interpolation="nearest")
        a = np.asarray(after[i], dtype=float)
        a = (a - a.min()) / max(a.max() - a.min(), 1e-8)
        axes[1, i].imshow(a, interpolation="nearest")
        if labels:
            # a multi-label image's names wrap onto two lines at most
            name = textwrap.shorten(str(labels[i]), 2 * wrap, placeholder="…")
            axes[0, i].set_title(textwrap.fill(name, wrap), fontsize=SMALL)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel(f"{before.shape[1]} px", fontsize=8)
    axes[1, 0].set_ylabel(f"{after.shape[1]} px", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def plot_roc_curves(curves: Mapping[str, Mapping[str, Sequence[float]]],
                    title: str = "ROC curves on the test split") -> plt.Figure:
    """ROC curves (``{label: {"fpr": [...], "tpr": [...], "auroc": float}}``), the area in the
    legend (right of the axes), with the diagonal of a guess."""
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.6 * PAGE_WIDTH), layout="constrained")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="guess (0.50)")
    for color, (label, c) in zip(series_colors(len(curves)), curves.items()):
        ax.plot(c["fpr"], c["tpr"], color=color, linewidth=1.6, label=f"{label} ({c['auroc']:.3f})")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.set_aspect("equal")
    ax.legend(loc="upper left", bbox_to_anchor=(1.03, 1.0), borderaxespad=0, fontsize=SMALL, frameon=False,
              title="auROC", title_fontsize=SMALL)
    return fig


def plot_validation_steps(curves: Mapping[str, pd.DataFrame], title: str = "Validation during training"
                          ) -> plt.Figure:
    """Validation accuracy (left) and loss (right) against the optimizer step, one line per run
    (from ``val_steps.csv``, written every ``train.val_every_steps`` steps)."""
    h = min(3.2 + _legend_height(len(curves), list(curves)), MAX_ASPECT * PAGE_WIDTH)
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, h), layout="constrained")
    for color, (label, df) in zip(series_colors(len(curves)), curves.items()):
        acc.plot(df["step"], 100 * df["val_accuracy"], color=color, marker="o", markersize=2, label=label)
        loss.plot(df["step"], df["val_loss"], color=color, marker="o", markersize=2, label=label)
    acc.set(xlabel="optimizer step", ylabel="validation accuracy (%)")
    loss.set(xlabel="optimizer step", ylabel="validation loss")
    fig.suptitle(title)
    _legend_below(fig, acc)
    return fig


def _log_ticks(lo: float, hi: float) -> tuple[float, ...]:
    """Mantissas of the labelled ticks of a log axis from ``lo`` to ``hi``: more within a decade,
    fewer over several, so that the labels never crowd each other."""
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    if decades > 2.5:
        return (1.0,)
    if decades > 0.8:
        return (1.0, 2.0, 5.0)
    return (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)


def plot_accuracy_vs_size(table: pd.DataFrame, x: str = "params (M)", y: str = "accuracy",
                          label: str = "run", title: str = "Accuracy against model size") -> plt.Figure:
    """One point per row of ``table`` (x on a log axis), labelled by its ``label`` column (a
    run's label; 'model' where the table has no 'run'): e.g. a CNN family's test accuracy
    against its parameter count."""
    label = label if label in table else "model"
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 0.62 * PAGE_WIDTH), layout="constrained")
    d = table.sort_values(x).reset_index(drop=True)
    colors = series_colors(len(d))
    ax.scatter(d[x], 100 * d[y], c=colors, s=60, zorder=2)
    for i, row in d.iterrows():
        # neighbours alternate above and below their points, so that their labels do not collide
        ax.annotate(str(row[label]), (row[x], 100 * row[y]), textcoords="offset points",
                    xytext=(5, 6 if i % 2 == 0 else -12), fontsize=SMALL)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=_log_ticks(d[x].min(), d[x].max())))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 0.05, 60 rather than 5x10^-2
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.25, y=0.15)  # room for the labels of the end points
    ax.set(xlabel=f"{x}, log scale", ylabel=f"test {y} (%)", title=title)
    return fig


def show_preprocessing(cfg: Config, title: str) -> Optional[plt.Figure]:
    """The grid of :func:`plot_preprocessing_grid` for a run's config; where its data set cannot
    be read here (a partial study on a machine without the data), a note in its place."""
    try:
        before, after, names = preview_preprocessing(cfg)
    except DatasetError as exc:
        from IPython.display import Markdown, display

        display(Markdown(f"*No preview of the preprocessing here: {exc}*"))
        return None
    return plot_preprocessing_grid(before, after, names, title=title)
