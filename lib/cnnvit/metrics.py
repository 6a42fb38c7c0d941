"""Classification metrics from logits, through scikit-learn."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


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
    return {
        "accuracy": float((pred == labels).mean()),
        "top5_accuracy": topk_accuracy(logits, labels, 5),
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "macro_f1": float(mf),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(support[i])} for i, c in enumerate(classes)},
        "confusion_matrix": confusion_matrix(labels, pred, labels=ids).tolist(),
        "n": int(len(labels)),
    }
