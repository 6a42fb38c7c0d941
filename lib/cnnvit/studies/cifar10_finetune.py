"""Study 4, fine-tuning a pretrained ViT/DeiT on CIFAR-10: its table and conclusions, from the
runs its parameter file's ``groups:`` name."""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import pandas as pd

from ..training.run import Run
from .common import (comparison_noise, not_run, pct, pct_seeds, profile_caveat, pts, seed_stats, skipped,
                     weights_summary)
from .core import Study
from .groups import one, runs
from .plateau import under_training_note

STUDY = "04_cifar10_finetune"
GROUPS = {
    "seed_setting": one("the seed's setting: a new head on the frozen pretrained backbone"),
    "finetuning": runs("partial and full fine-tuning, each set against the seed setting"),
    "scratch": one("the same architecture trained from scratch, for contrast"),
}


def seed_report(study: Study) -> dict[str, Optional[float]]:
    """The seed's test figures for its frozen-backbone DeiT-B/16 (macro averages over classes),
    as the seed-setting run of the study file gives them (``reported:`` and ``seed_figures:``)."""
    spec = study.runs[study.member("seed_setting")]
    given = spec.seed_figures.get("seed", {})
    return {"accuracy": spec.reported, "macro_precision": given.get("precision"),
            "macro_recall": given.get("recall"), "macro_f1": given.get("f1")}


def finetune_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """One row per run: where its weights came from, how much of it trained, when it stopped,
    and accuracy with macro precision, recall and F1 on the test split; the seed's figures in a
    row of their own."""
    rows = []
    for name, run in results.items():
        m, spec = run.metrics, study.runs[name]
        trainable = m.parameters if m.trainable_parameters is None else m.trainable_parameters  # (older runs)
        rows.append({"run": spec.label, "role": spec.role, "weights": weights_summary(m.weights),
                     "trainable (M)": trainable / 1e6, "epochs run": m.epochs_trained,
                     "best epoch": m.early_stopping.best_epoch if m.early_stopping else None,
                     "accuracy": m.test["accuracy"], "precision": m.test["macro_precision"],
                     "recall": m.test["macro_recall"], "F1": m.test["macro_f1"],
                     "profile": study.profile})
    seed = seed_report(study)
    rows.append({"run": "Seed report (DeiT-B/16, frozen backbone)", "role": "seed",
                 "weights": "pretrained: ImageNet-1k (torch.hub)", "accuracy": seed["accuracy"],
                 "precision": seed["macro_precision"], "recall": seed["macro_recall"],
                 "F1": seed["macro_f1"], "profile": "seed"})
    return pd.DataFrame(rows)


def conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 4, every number read from the runs."""
    stats = seed_stats(study, results)  # a run repeated over seeds counts by its mean
    acc = {n: mean for n, (mean, _, _) in stats.items()}
    seed, scratch = study.member("seed_setting"), study.member("scratch")
    lines = [f"*Computed from the runs of profile `{study.profile}`: test split, each run's best "
             f"validation epoch where it stopped early, the mean over seeds where a run was repeated.*", ""]
    if seed in acc:
        m = results[seed].metrics
        f1 = np.mean([results[r].metrics.test["macro_f1"] for r in study.repeats(seed) if r in results])
        theirs = seed_report(study)
        their_f1 = "—" if theirs["macro_f1"] is None else f"{theirs['macro_f1']:.4f}"
        lines.append(f"- **Seed setting** (frozen backbone, new head): accuracy {pct_seeds(stats[seed])}, "
                     f"macro F1 {f1:.4f}, against the seed's "
                     f"{pct(theirs['accuracy'])} / {their_f1}. Its weights: "
                     f"{weights_summary(m.weights)}.")
    else:
        lines.append(skipped("Seed setting", [seed]))
    for name in study.members("finetuning"):
        if name in acc and seed in acc:
            lines.append(f"- **{study.runs[name].label}**: {pct(acc[name])} "
                         f"({pts(acc[name], acc[seed])} against the frozen backbone)."
                         + under_training_note(study, results, (name, seed)))
        else:
            lines.append(skipped(study.label(name), not_run((name, seed), acc)))
    # the runs from pretrained weights (a run other runs start from is a helper, never one of them)
    contenders = study.contenders()
    pretrained = [n for n in [seed, *study.members("finetuning")] if n in acc and n in contenders]
    if scratch in acc and pretrained:
        best_pre = max(pretrained, key=acc.get)
        n_test = results[scratch].metrics.dataset.n_test

        def gain(run: str, helped: str, not_helped: str) -> str:  # beyond the noise (sampling, seeds)?
            noise = comparison_noise(stats[run], stats[scratch], n_test)
            word = helped if acc[run] - acc[scratch] > noise else (
                not_helped if acc[run] - acc[scratch] < -noise else "made no difference beyond the noise")
            return f"{word} ({pts(acc[run], acc[scratch])}, noise ±{100 * noise:.1f})"
        frozen = (f" The frozen backbone alone, against training from scratch: "
                  f"{gain(seed, 'better', 'worse')}." if seed in pretrained else "")
        lines.append(f"- **Pretraining.** The same architecture from scratch reached {pct(acc[scratch])}; "
                     f"the best run from pretrained weights ({study.runs[best_pre].label}) "
                     f"{pct(acc[best_pre])}: pretraining {gain(best_pre, 'helped', 'hurt')} here.{frozen}"
                     + under_training_note(study, results, (scratch, best_pre, seed)))
    else:
        lines.append(skipped("Pretraining.", [n for n in [scratch, seed, *study.members("finetuning")]
                                              if n not in acc]))
    lines += profile_caveat(study, "a tiny stand-in model, generated data and weights pretrained by this "
                                   "project on another generated task", "DeiT on CIFAR-10")
    return "\n".join(lines)
