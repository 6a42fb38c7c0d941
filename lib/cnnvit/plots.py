"""Figures: each function takes data and returns a matplotlib Figure (seaborn styling)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

sns.set_theme(context="notebook", style="whitegrid")


def plot_loss_curves(steps: Mapping[str, pd.DataFrame], smooth: int = 25,
                     title: str = "Training loss per iteration") -> plt.Figure:
    """Per-step training loss of several runs (raw, faint; moving average, solid)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
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


def plot_accuracy_curves(epochs: Mapping[str, pd.DataFrame],
                         title: str = "Test accuracy per epoch") -> plt.Figure:
    """Test accuracy after each evaluated epoch, one line per run."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, df in epochs.items():
        d = df.dropna(subset=["test_accuracy"])
        ax.plot(d["epoch"], 100 * d["test_accuracy"], marker="o", markersize=3, label=label)
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=title)
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
