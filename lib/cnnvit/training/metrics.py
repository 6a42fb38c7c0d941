"""Classification metrics from logits, through scikit-learn."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (average_precision_score, balanced_accuracy_score, confusion_matrix,
                             precision_recall_fscore_support, roc_auc_score, roc_curve)

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


def multilabel_metrics(logits: np.ndarray, labels: np.ndarray, names: list[str],
                       threshold: float = 0.5) -> dict[str, Any]:
    """Metrics of independent per-label sigmoids: ``accuracy`` is the mean over labels of the
    per-label accuracy at ``threshold`` (the seed's metric); also the exact-match ratio, macro and
    micro F1, mean average precision, macro auROC, and a per-label table. Labels with no positive
    (or no negative) in ``labels`` have no AP / auROC and are left out of those means."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    prob = 1.0 / (1.0 + np.exp(-logits))
    pred = (prob >= threshold).astype(np.int64)
    acc = (pred == labels).mean(0)
    p, r, f, support = precision_recall_fscore_support(labels, pred, average=None, zero_division=0)
    _, _, micro_f1, _ = precision_recall_fscore_support(labels, pred, average="micro", zero_division=0)
    both = [(labels[:, j].min() == 0 and labels[:, j].max() == 1) for j in range(labels.shape[1])]
    ap = [float(average_precision_score(labels[:, j], prob[:, j])) if both[j] else None
          for j in range(labels.shape[1])]
    auc = [float(roc_auc_score(labels[:, j], prob[:, j])) if both[j] else None
           for j in range(labels.shape[1])]
    defined = lambda xs: [x for x in xs if x is not None]  # noqa: E731
    return {
        "accuracy": float(acc.mean()),
        "mean_accuracy": float(acc.mean()),
        "exact_match": float((pred == labels).all(1).mean()),
        "macro_precision": float(p.mean()),
        "macro_recall": float(r.mean()),
        "macro_f1": float(f.mean()),
        "micro_f1": float(micro_f1),
        "mean_average_precision": float(np.mean(defined(ap))) if defined(ap) else None,
        "macro_auroc": float(np.mean(defined(auc))) if defined(auc) else None,
        "threshold": threshold,
        "per_label": {name: {"accuracy": float(acc[j]), "precision": float(p[j]), "recall": float(r[j]),
                             "f1": float(f[j]), "average_precision": ap[j], "auroc": auc[j],
                             "positives": int(support[j]), "positive_rate": float(labels[:, j].mean())}
                      for j, name in enumerate(names)},
        "n": int(len(labels)),
    }


def majority_baseline(train_labels: np.ndarray, test_labels: np.ndarray) -> float:
    """Test accuracy of always answering the training split's most frequent class (for each label
    separately, then averaged, when labels are an N x K 0/1 matrix): what a model must beat."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    if train_labels.ndim == 2:
        majority = (train_labels.mean(0) >= 0.5).astype(test_labels.dtype)
        return float((test_labels == majority).mean())
    majority = np.bincount(train_labels.astype(np.int64)).argmax()
    return float((test_labels == majority).mean())
