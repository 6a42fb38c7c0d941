# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.training.metrics`."""
from .training.metrics import (binary_roc, classification_metrics, majority_baseline,  # noqa: F401
                               multilabel_metrics, topk_accuracy)
