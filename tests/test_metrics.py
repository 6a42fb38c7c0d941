"""Classification metrics against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from cnnvit.training.metrics import classification_metrics, topk_accuracy

# 3 classes; true and predicted labels chosen so that precision != recall and the confusion
# matrix is not symmetric
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 0, 0, 1, 1, 2, 2, 2])


def _logits(pred, num_classes=3):
    rng = np.random.default_rng(0)
    logits = rng.uniform(-1, 0, (len(pred), num_classes))
    logits[np.arange(len(pred)), pred] = 2.0
    return logits


def test_hand_computed_three_class_example():
    m = classification_metrics(_logits(Y_PRED), Y_TRUE, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(6 / 8)
    # rows: true class, columns: predicted class
    assert m["confusion_matrix"] == [[3, 1, 0],
                                     [0, 1, 1],
                                     [0, 0, 2]]
    # precision: a 3/3, b 1/2, c 2/3; recall: a 3/4, b 1/2, c 2/2
    assert m["per_class"]["a"]["precision"] == pytest.approx(1.0)
    assert m["per_class"]["b"]["precision"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["a"]["recall"] == pytest.approx(0.75)
    assert m["per_class"]["b"]["recall"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["a"]["f1"] == pytest.approx(6 / 7)
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["f1"] == pytest.approx(0.8)
    assert [m["per_class"][c]["support"] for c in "abc"] == [4, 2, 2]
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 2 / 3) / 3)
    assert m["macro_recall"] == pytest.approx((0.75 + 0.5 + 1) / 3)
    assert m["macro_f1"] == pytest.approx((6 / 7 + 0.5 + 0.8) / 3)
    assert m["top5_accuracy"] == 1.0  # only 3 classes
    assert m["n"] == 8


def test_class_never_predicted_or_absent():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 0, 0, 1])
    m = classification_metrics(_logits(y_pred, 4), y_true, ["a", "b", "c", "d"])
    assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["confusion_matrix"][1] == [1, 1, 0, 0]
    assert len(m["confusion_matrix"]) == 4
    assert m["macro_recall"] == pytest.approx((1 + 0.5 + 0 + 0) / 4)


def test_topk_accuracy():
    logits = np.array([
        [9, 8, 7, 6, 5, 4, 3],  # label 0: rank 1
        [9, 8, 7, 6, 5, 4, 3],  # label 4: rank 5
        [9, 8, 7, 6, 5, 4, 3],  # label 6: rank 7
        [1, 2, 3, 4, 5, 6, 7],  # label 5: rank 2
    ], dtype=float)
    labels = np.array([0, 4, 6, 5])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(0.25)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(0.5)
    assert topk_accuracy(logits, labels, 4) == pytest.approx(0.5)
    assert topk_accuracy(logits, labels, 5) == pytest.approx(0.75)
    assert topk_accuracy(logits, labels, 7) == pytest.approx(1.0)
    assert topk_accuracy(logits, labels, 50) == pytest.approx(1.0)  # k capped at the classes
    m = classification_metrics(logits, labels, [str(i) for i in range(7)])
    assert m["top5_accuracy"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.25)


def test_top1_equals_accuracy_on_random_logits():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(200, 10))
    labels = rng.integers(0, 10, 200)
    m = classification_metrics(logits, labels, [str(i) for i in range(10)])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(m["accuracy"])
    assert m["accuracy"] <= m["top5_accuracy"]
    assert np.sum(m["confusion_matrix"]) == 200
    assert np.trace(m["confusion_matrix"]) == round(m["accuracy"] * 200)


def test_balanced_accuracy_by_hand():
    m = classification_metrics(_logits(Y_PRED), Y_TRUE, ["a", "b", "c"])
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2 + 2 / 2) / 3)  # mean recall
    assert "auroc" not in m  # three classes: no single ROC curve


def test_binary_auroc_and_roc_curve_by_hand():
    # positives scored 0.9, 0.4; negatives 0.6, 0.1: 3 of the 4 (pos, neg) pairs ranked right
    labels = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1])
    logits = np.stack([np.zeros(4), np.log(p / (1 - p))], 1)
    m = classification_metrics(logits, labels, ["no", "yes"])
    assert m["auroc"] == pytest.approx(3 / 4)
    assert m["roc_curve"]["fpr"][0] == 0.0 and m["roc_curve"]["tpr"][-1] == 1.0
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 2) / 2)  # threshold 0.5: 0.9 and 0.6 positive


def test_multilabel_metrics_hand_computed():
    from cnnvit.training.metrics import multilabel_metrics

    # 4 images x 2 labels; logits > 0 means predicted present (p >= 0.5)
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    logits = np.array([[2.0, -1.0], [-0.5, 3.0], [1.0, -2.0], [-3.0, -0.1]])
    m = multilabel_metrics(logits, labels, ["a", "b"])
    # label a: predictions 1,0,1,0 vs 1,1,0,0 -> accuracy 2/4, precision 1/2, recall 1/2
    # label b: predictions 0,1,0,0 vs 0,1,0,1 -> accuracy 3/4, precision 1/1, recall 1/2
    assert m["per_label"]["a"]["accuracy"] == pytest.approx(0.5)
    assert m["per_label"]["b"]["accuracy"] == pytest.approx(0.75)
    assert m["accuracy"] == m["mean_accuracy"] == pytest.approx(0.625)
    assert m["exact_match"] == pytest.approx(1 / 4)  # image 1 only
    assert m["per_label"]["b"]["precision"] == pytest.approx(1.0)
    assert m["per_label"]["b"]["recall"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    # micro: tp 2, fp 1, fn 2 -> F1 = 4 / (4 + 3)
    assert m["micro_f1"] == pytest.approx(4 / 7)
    # label a ranks (2.0, 1.0, -0.5, -3.0) with truths (1, 0, 1, 0): AP = (1 + 2/3) / 2, auROC 3/4
    assert m["per_label"]["a"]["average_precision"] == pytest.approx(5 / 6)
    assert m["per_label"]["a"]["auroc"] == pytest.approx(0.75)
    # label b ranks (3.0, -0.1, -1.0, -2.0) with truths (1, 1, 0, 0): perfect
    assert m["per_label"]["b"]["average_precision"] == pytest.approx(1.0)
    assert m["mean_average_precision"] == pytest.approx((5 / 6 + 1) / 2)
    assert m["per_label"]["a"]["positive_rate"] == pytest.approx(0.5)


def test_multilabel_metrics_skip_ap_of_labels_without_positives():
    from cnnvit.training.metrics import multilabel_metrics

    m = multilabel_metrics(np.array([[1.0, -1.0], [-1.0, -1.0]]), np.array([[1, 0], [0, 0]]), ["a", "b"])
    assert m["per_label"]["b"]["average_precision"] is None and m["per_label"]["b"]["auroc"] is None
    assert m["mean_average_precision"] == pytest.approx(1.0)


def test_majority_baseline_uses_the_training_split_majority():
    from cnnvit.training.metrics import majority_baseline

    assert majority_baseline(np.array([0, 1, 1, 2]), np.array([1, 0, 0, 0])) == pytest.approx(0.25)
    # per label: majority of a is 1, of b is 0; test agreement 1/2 and 2/2
    train = np.array([[1, 0], [1, 0], [0, 1]])
    assert majority_baseline(train, np.array([[1, 0], [0, 0]])) == pytest.approx(0.75)


def test_multilabel_threshold_is_on_the_probability_as_in_training():
    """A logit of 0.2 is p = 0.55: present. The test metrics must agree with the accuracy that
    training and validation use (logit >= 0), including logits between 0 and 0.5."""
    import torch

    from cnnvit.training.metrics import multilabel_metrics
    from cnnvit.training.losses import task_accuracy

    labels = np.array([[1, 0], [1, 1], [0, 1]])
    logits = np.array([[0.2, -0.3], [0.45, 0.1], [-0.05, 0.3]])
    m = multilabel_metrics(logits, labels, ["a", "b"])
    assert m["accuracy"] == 1.0 and m["exact_match"] == 1.0, m["per_label"]
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 0.6, (200, 5))
    labels = rng.integers(0, 2, (200, 5))
    assert multilabel_metrics(logits, labels, list("abcde"))["accuracy"] == pytest.approx(
        task_accuracy(torch.from_numpy(logits), torch.from_numpy(labels)), abs=1e-6)


# --------------------------------------------------------------------------- aggregates vs sklearn
# Means over classes or labels are where a weighting slips in unnoticed: on balanced data macro,
# weighted and micro averages nearly agree. These examples have very unequal supports (and
# per-label positive rates), so the averages differ and only the unweighted mean matches.

def _multilabel_example(n=400, rates=(0.05, 0.2, 0.5, 0.85), strength=(1.0, 0.3, 0.8, 2.5), seed=7):
    """Labels with unequal positive rates; logits that separate each label to a different
    degree (so per-label auROC and AP differ from label to label)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(rates))) < np.array(rates)).astype(np.int64)
    logits = rng.normal(0, 1, labels.shape) + np.array(strength) * (2 * labels - 1)
    return logits, labels


def test_multilabel_macro_auroc_and_map_are_unweighted_means_of_the_per_label_values():
    from sklearn.metrics import average_precision_score, roc_auc_score

    from cnnvit.training.metrics import multilabel_metrics

    logits, labels = _multilabel_example()
    names = list("abcd")
    m = multilabel_metrics(logits, labels, names)
    prob = 1 / (1 + np.exp(-logits))
    auc = [roc_auc_score(labels[:, j], prob[:, j]) for j in range(4)]
    ap = [average_precision_score(labels[:, j], prob[:, j]) for j in range(4)]
    for j, name in enumerate(names):  # the per-label table, label by label
        assert m["per_label"][name]["auroc"] == pytest.approx(auc[j]), name
        assert m["per_label"][name]["average_precision"] == pytest.approx(ap[j]), name
        assert m["per_label"][name]["positives"] == labels[:, j].sum()
        assert m["per_label"][name]["positive_rate"] == pytest.approx(labels[:, j].mean())
    assert m["macro_auroc"] == pytest.approx(np.mean(auc))
    assert m["macro_auroc"] == pytest.approx(roc_auc_score(labels, prob, average="macro"))
    assert m["mean_average_precision"] == pytest.approx(np.mean(ap))
    # the example tells the candidates apart: the first label alone, support-weighted means
    weighted_auc = roc_auc_score(labels, prob, average="weighted")
    assert abs(m["macro_auroc"] - weighted_auc) > 0.02 and abs(m["macro_auroc"] - auc[0]) > 0.02
    assert abs(m["mean_average_precision"] - average_precision_score(labels, prob, average="weighted")) > 0.02


def test_multilabel_macro_auroc_leaves_out_labels_without_both_classes():
    """A label with no negative has no auROC: the mean is over the other labels only."""
    from sklearn.metrics import roc_auc_score

    from cnnvit.training.metrics import multilabel_metrics

    logits, labels = _multilabel_example(n=200)
    labels[:, 2] = 1  # always present
    m = multilabel_metrics(logits, labels, list("abcd"))
    prob = 1 / (1 + np.exp(-logits))
    assert m["per_label"]["c"]["auroc"] is None
    assert m["macro_auroc"] == pytest.approx(np.mean([roc_auc_score(labels[:, j], prob[:, j]) for j in (0, 1, 3)]))


def test_multilabel_macro_and_micro_f1_precision_recall_match_sklearn():
    from sklearn.metrics import precision_recall_fscore_support

    from cnnvit.training.metrics import multilabel_metrics

    logits, labels = _multilabel_example()
    m = multilabel_metrics(logits, labels, list("abcd"))
    pred = (logits >= 0).astype(np.int64)  # p >= 0.5
    macro = precision_recall_fscore_support(labels, pred, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(labels, pred, average="weighted", zero_division=0)
    micro = precision_recall_fscore_support(labels, pred, average="micro", zero_division=0)
    got = (m["macro_precision"], m["macro_recall"], m["macro_f1"])
    assert got == pytest.approx(macro[:3])
    assert m["micro_f1"] == pytest.approx(micro[2])
    for mine, theirs, label in zip(got, weighted[:3], ("precision", "recall", "f1")):
        assert abs(mine - theirs) > 0.02, label  # macro is not the support-weighted mean here
    assert abs(m["macro_f1"] - micro[2]) > 0.02


def test_macro_precision_recall_f1_are_unweighted_over_classes_of_unequal_support():
    """Four classes with supports 60/25/10/5 and class-dependent errors: the module's macro
    numbers are sklearn's average="macro", which here differ from the support-weighted and the
    micro averages (micro = accuracy for single-label predictions)."""
    from sklearn.metrics import precision_recall_fscore_support

    rng = np.random.default_rng(11)
    y_true = np.repeat([0, 1, 2, 3], [60, 25, 10, 5])
    right = rng.random(len(y_true)) < np.array([0.9, 0.6, 0.4, 0.2])[y_true]  # big classes easier
    y_pred = np.where(right, y_true, rng.integers(0, 4, len(y_true)))
    m = classification_metrics(_logits(y_pred, 4), y_true, list("abcd"))
    macro = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(y_true, y_pred, average="weighted", zero_division=0)
    got = (m["macro_precision"], m["macro_recall"], m["macro_f1"])
    assert got == pytest.approx(macro[:3])
    for mine, theirs, label in zip(got, weighted[:3], ("precision", "recall", "f1")):
        assert abs(mine - theirs) > 0.02, label
    assert abs(m["macro_f1"] - m["accuracy"]) > 0.02  # micro F1 of single-label predictions
    per_class = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1, 2, 3], zero_division=0)
    for i, c in enumerate("abcd"):
        assert [m["per_class"][c][k] for k in ("precision", "recall", "f1")] == pytest.approx(
            [per_class[0][i], per_class[1][i], per_class[2][i]]), c
        assert m["per_class"][c]["support"] == per_class[3][i]
