"""Figures: each function takes data and returns a matplotlib Figure (seaborn styling)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..config import Config
from ..datasets import DatasetError
from .common import preview_preprocessing

sns.set_theme(context="notebook", style="whitegrid")


def plot_loss_curves(steps: Mapping[str, pd.DataFrame], smooth: int = 25,
                     title: str = "Training loss per iteration",
                     chance_loss: Optional[float] = None) -> plt.Figure:
    """Per-step training loss of several runs (raw, faint; moving average, solid); with
    ``chance_loss`` (ln C) a line marks the loss of a model that has learned nothing."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if chance_loss is not None:
        ax.axhline(chance_loss, color="grey", linestyle=":", linewidth=1,
                   label=f"uniform guess (ln C = {chance_loss:.2f})")
    palette = sns.color_palette(n_colors=max(1, len(steps)))
    for color, (label, df) in zip(palette, steps.items()):
        window = max(1, min(smooth, len(df) // 10 or 1))
        ax.plot(df["step"], df["loss"], color=color, alpha=0.2, linewidth=0.8)
        ax.plot(df["step"], df["loss"].rolling(window, min_periods=1).mean(), color=color,
                label=label, linewidth=1.6)
    ax.set(xlabel="iteration (optimizer step)", ylabel="training loss", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _curve_split(df: pd.DataFrame) -> str:
    # runs with a validation split are followed on it; the test split is then read only once
    return "val" if "val_accuracy" in df and df["val_accuracy"].notna().any() else "test"


def plot_accuracy_curves(epochs: Mapping[str, pd.DataFrame], title: Optional[str] = None) -> plt.Figure:
    """Accuracy after each evaluated epoch, one line per run: on the validation split where the
    runs have one, else on the test split."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    splits = set()
    for label, df in epochs.items():
        split = _curve_split(df)
        splits.add(split)
        d = df.dropna(subset=[f"{split}_accuracy"])
        ax.plot(d["epoch"], 100 * d[f"{split}_accuracy"], marker="o", markersize=3, label=label)
    name = " / ".join("validation" if s == "val" else "test" for s in sorted(splits))
    ax.set(xlabel="epoch", ylabel=f"{name} accuracy (%)", title=title or f"{name.capitalize()} accuracy per epoch")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_epoch_losses(epochs: Mapping[str, pd.DataFrame], title: str = "Loss per epoch") -> plt.Figure:
    """Training loss (solid) and validation loss (dashed, where the run has a validation split)
    after each epoch, one colour per run: a validation loss that turns up while the training
    loss keeps falling is overfitting."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    palette = sns.color_palette(n_colors=max(1, len(epochs)))
    for color, (label, df) in zip(palette, epochs.items()):
        ax.plot(df["epoch"], df["train_loss"], color=color, linewidth=1.6, label=f"{label}: training")
        if "val_loss" in df and df["val_loss"].notna().any():
            d = df.dropna(subset=["val_loss"])
            ax.plot(d["epoch"], d["val_loss"], color=color, linewidth=1.6, linestyle="--", marker="o", markersize=3,
                    label=f"{label}: validation")
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_effects(panels: Mapping[str, Mapping[str, pd.DataFrame]], chance: Optional[float] = None) -> plt.Figure:
    """One column per effect (e.g. BatchNorm, depth): validation (or test) accuracy per epoch
    above training loss per epoch, one line per run; ``chance`` marks 1/C on the accuracy axes."""
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 6.2), squeeze=False, sharex="col")
    for col, (effect, runs) in enumerate(panels.items()):
        top, bottom = axes[0, col], axes[1, col]
        for label, df in runs.items():
            split = _curve_split(df)
            d = df.dropna(subset=[f"{split}_accuracy"])
            line, = top.plot(d["epoch"], 100 * d[f"{split}_accuracy"], label=label, linewidth=1.4)
            bottom.plot(df["epoch"], df["train_loss"], color=line.get_color(), linewidth=1.4)
        if chance is not None:
            top.axhline(100 * chance, color="grey", linestyle=":", linewidth=1)
        top.set_title(effect, fontsize=10)
        top.legend(fontsize=7)
        bottom.set_xlabel("epoch")
    axes[0, 0].set_ylabel("validation accuracy (%)")
    axes[1, 0].set_ylabel("training loss")
    fig.tight_layout()
    return fig


def plot_gradient_norms(steps: Mapping[str, pd.DataFrame], smooth: int = 25,
                        title: str = "Gradient norm per iteration (before clipping)") -> plt.Figure:
    """Global gradient norm per optimizer step on a log axis: a network that has stopped
    learning shows it here first (vanishing or exploding gradients)."""
    fig, ax = plt.subplots(figsize=(8, 4.0))
    for label, df in steps.items():
        if "grad_norm" not in df:
            continue
        window = max(1, min(smooth, len(df) // 10 or 1))
        ax.plot(df["step"], df["grad_norm"].rolling(window, min_periods=1).median(), label=label,
                linewidth=1.4)
    ax.set(xlabel="iteration (optimizer step)", ylabel="gradient norm", yscale="log", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "",
                   normalize: bool = True, ax: Optional[plt.Axes] = None) -> plt.Figure:
    """Confusion matrix (rows: true class); normalised per true class unless told otherwise."""
    cm = np.asarray(matrix, dtype=float)
    if normalize:
        cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    sns.heatmap(cm, annot=len(classes) <= 12, fmt=".2f" if normalize else "g", cmap="Blues",
                xticklabels=classes, yticklabels=classes, ax=ax, cbar=False, square=True,
                annot_kws={"fontsize": 7})
    ax.set(xlabel="predicted", ylabel="true", title=title)
    ax.tick_params(labelsize=7)
    return fig


def plot_confusions(matrices: Mapping[str, Sequence[Sequence[int]]], classes: Sequence[str],
                    ncols: int = 2) -> plt.Figure:
    """Several normalised confusion matrices side by side."""
    n = len(matrices)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 5 * nrows), squeeze=False)
    for ax, (label, cm) in zip(axes.flat, matrices.items()):
        plot_confusion(cm, classes, title=label, ax=ax)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_preprocessing_grid(before: np.ndarray, after: np.ndarray, labels: Sequence[str] = (),
                            title: str = "Before (top) and after (bottom) preprocessing") -> plt.Figure:
    """Raw uint8 images (N x H x W x 3) above their preprocessed versions (N x H' x W' x 3, any
    range: each is min-max scaled for display, as normalised tensors are not images)."""
    n = len(before)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(before[i], interpolation="nearest")
        a = np.asarray(after[i], dtype=float)
        a = (a - a.min()) / max(a.max() - a.min(), 1e-8)
        axes[1, i].imshow(a, interpolation="nearest")
        if labels:
            axes[0, i].set_title(labels[i], fontsize=8)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel(f"{before.shape[1]} px", fontsize=8)
    axes[1, 0].set_ylabel(f"{after.shape[1]} px", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_roc_curves(curves: Mapping[str, Mapping[str, Sequence[float]]],
                    title: str = "ROC curves on the test split") -> plt.Figure:
    """ROC curves (``{label: {"fpr": [...], "tpr": [...], "auroc": float}}``), the area in the
    legend, with the diagonal of a guess."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="guess (0.50)")
    for label, c in curves.items():
        ax.plot(c["fpr"], c["tpr"], linewidth=1.6, label=f"{label} ({c['auroc']:.3f})")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="lower right", title="auROC", title_fontsize=7)
    fig.tight_layout()
    return fig


def plot_validation_steps(curves: Mapping[str, pd.DataFrame], title: str = "Validation during training"
                          ) -> plt.Figure:
    """Validation accuracy (left) and loss (right) against the optimizer step, one line per run
    (from ``val_steps.csv``, written every ``train.val_every_steps`` steps)."""
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 4))
    for label, df in curves.items():
        acc.plot(df["step"], 100 * df["val_accuracy"], marker="o", markersize=2, label=label)
        loss.plot(df["step"], df["val_loss"], marker="o", markersize=2, label=label)
    acc.set(xlabel="optimizer step", ylabel="validation accuracy (%)")
    loss.set(xlabel="optimizer step", ylabel="validation loss")
    acc.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_accuracy_vs_size(table: pd.DataFrame, x: str = "params (M)", y: str = "accuracy",
                          label: str = "model", title: str = "Accuracy against model size") -> plt.Figure:
    """One labelled point per row of ``table`` (x on a log axis): e.g. a CNN family's test
    accuracy against its parameter count."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    d = table.sort_values(x)
    sns.scatterplot(data=d.assign(**{y: 100 * d[y]}), x=x, y=y, hue=label, s=60, ax=ax, zorder=2, legend=False)
    for _, row in d.iterrows():
        ax.annotate(str(row[label]), (row[x], 100 * row[y]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.05, 60 rather than 5x10^-2
    ax.xaxis.set_major_formatter(plain)
    if d[x].max() < 20 * d[x].min():  # within about a decade the minor ticks need labels too
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize=7)
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.2, y=0.1)  # room for the labels of the end points
    ax.set(xlabel=f"{x}, log scale", ylabel=f"test {y} (%)", title=title)
    fig.tight_layout()
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
