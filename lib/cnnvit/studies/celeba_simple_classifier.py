"""Study 5, a simple classifier on CelebA attributes: tables per task, class balance, and the
conclusions, from the runs its parameter file's ``groups:`` name (and each run's task)."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ..training.run import Run
from .common import (comparison_noise, not_run, not_run_note, pct, pct_seeds, profile_caveat, pts,
                     rank_correlation, seed_columns, seed_stats, signed, skipped, verdict, weights_kind)
from .core import Study
from .groups import one, parts, runs
from .plateau import under_training_note

STUDY = "05_celeba_simple_classifier"
_MAIN = ("seed_cnn", "seed_vit", "strong_cnn", "strong_vit")
GROUPS = {
    "preview": one("the run whose augmentation the notebook shows"),
    "binary": parts("the binary task's seed settings and stronger recipes, CNN and ViT", *_MAIN),
    "hair5": parts("the five-hair-colour task's seed settings and stronger recipes, CNN and ViT", *_MAIN),
    "multilabel_seed": one("the multi-label seed setting, whose attributes the notebook lists"),
    "pretraining": parts("the same ViT on the binary task from scratch and pretrained", "scratch", "pretrained"),
    "cnn_family": runs("the CNNs on the binary task with the seed's recipe", minimum=3),
}
TASKS = {"binary": "Binary", "hair5": "Five hair colours", "multilabel": "Multi-label"}
# each single-label task's group pairs: the stronger recipe's run and the seed setting it improves on
RECIPE_PAIRS = (("CNN", "strong_cnn", "seed_cnn"), ("ViT", "strong_vit", "seed_vit"))


def task_runs(study: Study, task: str) -> list[str]:
    """The study's runs of a CelebA task, less the runs others start from (helpers pretrained
    for them, not contenders) and the repeats of a run with other seeds (the summary table gives
    their spread)."""
    return [n for n in study.contenders() if study.runs[n].config.data.task == task]


def celeba_table(study: Study, results: Mapping[str, Run], task: str) -> pd.DataFrame:
    """One row per run of a CelebA task, with that task's metrics on the test split beside the
    majority-class baseline and the seed's figure. Binary: accuracy, balanced accuracy, precision,
    recall and F1 of the positive class, auROC from the scores and from hard labels (the seed's,
    which is the balanced accuracy). ``hair5``: accuracy, balanced accuracy, macro F1.
    ``multilabel``: mean per-label accuracy, exact match, macro F1, mean average precision."""
    rows = []
    for name in [n for n in task_runs(study, task) if n in results]:
        m, spec = results[name].metrics, study.runs[name]
        t = m.test
        # (no role column: the labels say "seed setting" or "stronger recipe", and the page is narrow)
        row = {"run": spec.label, "model": spec.config.model.name, "weights": weights_kind(m.weights),
               "params (M)": m.parameters / 1e6, "epochs run": m.epochs_trained}
        if task == "binary":
            positive = results[name].classes[1]
            pc = t["per_class"][positive]
            row.update({"accuracy": t["accuracy"], "balanced acc": t["balanced_accuracy"],
                        "precision": pc["precision"], "recall": pc["recall"], "F1": pc["f1"],
                        "auROC": t.get("auroc"),
                        # the seed's "auROC" equals balanced accuracy: the ROC of hard 0/1 predictions
                        "auROC of hard labels (the seed's)": t["balanced_accuracy"],
                        **seed_columns(spec, "seed", ("precision", "recall", "f1", "auroc"))})
        elif task == "hair5":
            row.update({"accuracy": t["accuracy"], "balanced acc": t["balanced_accuracy"], "macro F1": t["macro_f1"]})
        else:
            row.update({"mean acc": t["mean_accuracy"], "exact match": t["exact_match"], "macro F1": t["macro_f1"],
                        "mAP": t["mean_average_precision"]})
        row.update({"majority baseline": m.majority_baseline, "seed reported": spec.reported,
                    "profile": study.profile})
        rows.append(row)
    return pd.DataFrame(rows)


def class_balance(run: Run) -> pd.DataFrame:
    """Images per class in each split of a run (per label: images having it, for a multi-label
    task), with each class's share of the training split."""
    counts = run.data_info["class_counts"]
    table = pd.DataFrame({split: counts[split] for split in ("train", "val", "test")}, index=run.classes)
    table["train share"] = table["train"] / (run.data_info["n_train"] or 1)
    return table.rename_axis("label" if run.data_info.get("multilabel") else "class")


def per_label_table(run: Run) -> pd.DataFrame:
    """A multi-label run's attributes on the test split: how often each is present, the accuracy
    of always answering its majority value, the model's accuracy, F1, average precision and
    auROC; sorted by average precision (best learnt first)."""
    rows = [{"attribute": a, "positive rate": v["positive_rate"],
             "majority acc": max(v["positive_rate"], 1 - v["positive_rate"]), "accuracy": v["accuracy"],
             "F1": v["f1"], "AP": v["average_precision"], "auROC": v["auroc"]}
            for a, v in run.metrics.test["per_label"].items()]
    return pd.DataFrame(rows).sort_values("AP", ascending=False, na_position="last").reset_index(drop=True)


def roc_curves(study: Study, results: Mapping[str, Run], names: list[str]) -> dict[str, dict]:
    """``{label: {"fpr", "tpr", "auroc"}}`` of two-class runs, for :func:`plots.plot_roc_curves`."""
    return {study.runs[n].label: {**results[n].metrics.test["roc_curve"], "auroc": results[n].metrics.test["auroc"]}
            for n in names if "roc_curve" in results[n].metrics.test}


def family_table(study: Study, results: Mapping[str, Run], names: list[str]) -> pd.DataFrame:
    """Model, parameters (M) and test accuracy of the named runs, for an accuracy-against-size plot."""
    return pd.DataFrame([{"model": study.runs[n].config.model.name, "params (M)": results[n].metrics.parameters / 1e6,
                          "accuracy": results[n].metrics.test_accuracy, "run": study.runs[n].label}
                         for n in names])


def same_balance(study: Study, declared: list[str], names: list[str]) -> tuple[list[str], list[str]]:
    """``names`` split into the runs on the class balance of the task's seed setting (the first
    of ``declared`` with a reported number; data.class_ratio) and those on another one, whose
    test images differ and whose accuracy is not compared with theirs."""
    ratio = next((study.runs[n].config.data.class_ratio for n in declared if study.runs[n].reported is not None),
                 study.runs[declared[0]].config.data.class_ratio if declared else None)
    same = [n for n in names if study.runs[n].config.data.class_ratio == ratio]
    return same, [n for n in names if n not in same]


def _task_bullet(study: Study, results: Mapping[str, Run], task: str,
                 stats: Mapping[str, tuple[float, float, int]]) -> str:
    declared = task_runs(study, task)
    names, other = same_balance(study, declared, [n for n in declared if n in results])
    if not names:
        return skipped(f"{TASKS[task]}.", not_run(declared, results))
    best = max(names, key=lambda n: stats[n][0])  # by the mean over seeds, as every number here
    m = results[best].metrics
    what = "mean per-label accuracy" if task == "multilabel" else "accuracy"
    line = (f"- **{TASKS[task]}.** Highest test {what}: {study.runs[best].label}, {pct_seeds(stats[best])} against "
            f"{pct(m.majority_baseline)} for always answering the majority "
            f"({pts(stats[best][0], m.majority_baseline)})")
    if task != "multilabel":
        line += f"; balanced accuracy {pct(_seed_mean(study, results, best, 'balanced_accuracy'))}"
    else:
        line += f"; mAP {_seed_mean(study, results, best, 'mean_average_precision'):.3f}"
    reported = [(study.runs[n].label, study.runs[n].reported, stats[n])
                for n in names if study.runs[n].reported is not None]
    if reported:
        line += ". Seed settings: " + "; ".join(f"{label} {pct_seeds(ours)} (seed reported {pct(rep)})"
                                                for label, rep, ours in reported)
    if task == "binary" and reported:
        test_counts = results[best].data_info["class_counts"]["test"]
        line += (f". The seed's precision and recall imply about 50% positives (a balanced set); "
                 f"{pct(test_counts[1] / max(1, sum(test_counts)))} of this test split are "
                 f"positive, so its accuracy compares with balanced accuracy here")
    if other:  # another class balance: other test images, so beside, not against, the others
        line += (". On another class balance (other test images, not compared): " + "; ".join(
            f"{study.runs[n].label} {pct(results[n].metrics.test_accuracy)} against "
            f"{pct(results[n].metrics.majority_baseline)} for the majority" for n in other))
    trades = _recipe_trades(study, results, task, names)
    if trades:
        line += ". " + trades
    rests_on = [best] + [n for n in names if study.runs[n].reported is not None]
    return line + "." + under_training_note(study, results, rests_on) + not_run_note(declared, results)


def _seed_mean(study: Study, results: Mapping[str, Run], name: str, metric: str) -> float:
    """A test metric of run ``name`` (metrics.json's ``test`` entry), the mean over it and its
    finished repeats with other seeds, as :func:`~.common.seed_stats` gives accuracy."""
    return float(np.mean([results[r].metrics.test[metric] for r in study.repeats(name) if r in results]))


def _recipe_trades(study: Study, results: Mapping[str, Run], task: str, names: list[str]) -> str:
    """Each stronger recipe against its seed setting (a single-label task's group pairs), in both
    accuracy and balanced accuracy: a recipe that counters the imbalance (class weights, balanced
    sampling) may buy one with the other, and a verdict on one alone would hide that."""
    if task not in study.groups or task == "multilabel":
        return ""
    parts = []
    for kind, strong, seed in RECIPE_PAIRS:
        a, b = study.member(task, strong), study.member(task, seed)
        if a not in names or b not in names:  # (not run, or on another class balance)
            continue
        d_acc = 100 * (_seed_mean(study, results, a, "accuracy") - _seed_mean(study, results, b, "accuracy"))
        d_bal = 100 * (_seed_mean(study, results, a, "balanced_accuracy")
                       - _seed_mean(study, results, b, "balanced_accuracy"))
        trade = ""
        if round(d_acc, 1) * round(d_bal, 1) < 0:  # opposite signs, each beyond the rounding
            gained, lost = ("balanced accuracy", "accuracy") if d_bal > 0 else ("accuracy", "balanced accuracy")
            trade = f": it trades {lost} for {gained}"
        parts.append(f"{kind} {signed(d_acc, 1)} points of accuracy and {signed(d_bal, 1)} of balanced "
                     f"accuracy{trade}")
    return ("Stronger recipe against the seed setting: " + "; ".join(parts)) if parts else ""


def _pretraining(study: Study, results: Mapping[str, Run]) -> str:
    scratch, pre = study.member("pretraining", "scratch"), study.member("pretraining", "pretrained")
    missing = not_run((scratch, pre), results)
    if missing:
        return skipped("Pretraining", missing)
    curves = {n: results[n].val_steps for n in (scratch, pre)}
    first = {n: (c["val_accuracy"].iloc[0] if len(c) else None) for n, c in curves.items()}
    one_seed = f" of seed {study.runs[pre].config.seed}'s runs" if len(study.repeats(pre)) > 1 else ""
    early = (f" At the first validation{one_seed} ({int(curves[pre]['step'].iloc[0])} steps) it stood at "
             f"{pct(first[pre])} against {pct(first[scratch])}." if all(v is not None for v in first.values()) else "")
    stats = seed_stats(study, results)
    noise = comparison_noise(stats[pre], stats[scratch], results[scratch].metrics.dataset.n_test)
    helped = verdict(stats[pre][0] - stats[scratch][0], noise, "pretraining helped", "pretraining hurt")
    return (f"- **Pretraining** ({study.runs[pre].label} against {study.runs[scratch].label}): "
            f"{pct_seeds(stats[pre])} against {pct_seeds(stats[scratch])} "
            f"({pts(stats[pre][0], stats[scratch][0])}, noise ±{100 * noise:.1f}: {helped}).{early}"
            + under_training_note(study, results, (scratch, pre)))


def _cnn_size(study: Study, results: Mapping[str, Run]) -> str:
    family = study.members("cnn_family")
    fam = [n for n in family if n in results]
    if len(fam) < 3:  # a rank correlation of two points says nothing
        return skipped("CNN size.", not_run(family, results))
    t = family_table(study, results, fam)
    rho, p = rank_correlation(t["params (M)"], t["accuracy"])
    kinds = {n: weights_kind(results[n].metrics.weights) for n in fam}
    mixed = "" if len(set(kinds.values())) == 1 else (" Their starting points differ (" + "; ".join(
        f"{study.runs[n].config.model.name}: {k}" for n, k in kinds.items()) + "), which this comparison mixes in.")
    return (f"- **CNN size.** Over {len(fam)} CNNs ({', '.join(t['model'])}), the rank correlation "
            f"of parameters and accuracy is {_correlation_words(rho, p, len(fam))}.{mixed}"
            + under_training_note(study, results, fam) + not_run_note(family, results))


def _correlation_words(rho: float, p: float, n: int) -> str:
    """A rank correlation of size and accuracy, its direction against the seed's finding (the
    larger, the more accurate) and how much ``n`` models can show (``p``: the chance of a
    correlation as strong under a random order, :func:`~.common.rank_correlation`)."""
    if rho != rho:  # every model equally accurate (or of one size): no order
        return "undefined (no order to correlate), so the seed's finding is untested here"
    if abs(rho) < 1e-9:
        direction = "0.00: no order by size here, unlike the seed's finding (larger, more accurate)"
    elif rho > 0:
        direction = f"{signed(rho)}: larger models were more accurate here, as the seed found"
    else:
        direction = f"{signed(rho)}: larger models were less accurate here, unlike the seed's finding"
    strength = ("weak evidence" if p > 0.05 else "unlikely to be chance alone")
    return (f"{direction}; a random order of {n} models gives a correlation this strong with "
            f"probability {p:.2f}, so this is {strength}")


def conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 5, every number read from the runs."""
    lines = [f"*Computed from the runs of profile `{study.profile}`, on each run's test split.*", ""]
    stats = seed_stats(study, results)  # a run repeated over seeds: its mean ± std
    lines += [_task_bullet(study, results, task, stats) for task in TASKS if task_runs(study, task)]
    lines += [_pretraining(study, results), _cnn_size(study, results)]
    lines += profile_caveat(study, "tiny stand-in models on a generated set in CelebA's format, and "
                                   "\"pretrained\" weights from a run of this study on another task", "CelebA")
    return "\n".join(lines)
