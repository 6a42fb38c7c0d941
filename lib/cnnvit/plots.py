# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.studies.plots`."""
from .studies.plots import (plot_accuracy_curves, plot_accuracy_vs_size, plot_confusion,  # noqa: F401
                            plot_confusions, plot_effects, plot_gradient_norms, plot_loss_curves,
                            plot_preprocessing_grid, plot_roc_curves, plot_validation_steps)
