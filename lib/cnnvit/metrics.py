"""Classification metrics from logits, through scikit-learn."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support,
                             roc_auc_score, roc_curve)

ROC_POINTS = 200  # the ROC curve kept in metrics.json, thinned to about this many points


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of samples whose label is among the ``k`` highest logits."""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(1).mean())


def classification_metrics(logits: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, top-5, macro and per-class precision/recall/F1, and the confusion matrix
    (rows: true class, columns: predicted class)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    pred = logits.argmax(1)
    ids = list(range(len(classes)))
    p, r, f, support = precision_recall_fscore_support(labels, pred, labels=ids, zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(labels, pred, labels=ids, average="macro",
                                                    zero_division=0)
    out = {
        "accuracy": float((pred == labels).mean()),
        "balanced_accuracy": float(balanced_accuracy_score(labels, pred)) if len(labels) else 0.0,
        "top5_accuracy": topk_accuracy(logits, labels, 5),
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "macro_f1": float(mf),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(support[i])} for i, c in enumerate(classes)},
        "confusion_matrix": confusion_matrix(labels, pred, labels=ids).tolist(),
        "n": int(len(labels)),
    }
    if len(classes) == 2 and len(np.unique(labels)) == 2 and np.isfinite(logits).all():
        out.update(binary_roc(logits[:, 1] - logits[:, 0], labels))  # the logit margin ranks like p(1)
    return out


def binary_roc(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Area under the ROC curve and the curve itself (thinned), for scores of the positive class."""
    fpr, tpr, _ = roc_curve(labels, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).round().astype(int))
    return {"auroc": float(roc_auc_score(labels, scores)),
            "roc_curve": {"fpr": fpr[keep].round(5).tolist(), "tpr": tpr[keep].round(5).tolist()}}
