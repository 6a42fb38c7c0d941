"""Study 3, Vision Transformers in 2022 on Tiny-ImageNet: tables of the models, their cost and
the ablations, and the conclusions, from the runs the parameter file's ``groups:`` name."""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from ..training.run import Run
from .common import (not_run, not_run_note, pct, pct_seeds, profile_caveat, pts, seed_columns, seed_stats,
                     signed, skipped, weights_summary)
from .core import RunSpec, Study
from .groups import parts, runs
from .plateau import under_training_note

STUDY = "03_tiny_imagenet_transformers"
GROUPS = {
    "models": runs("the models fine-tuned with the paper's recipe, compared"),
    "frozen_backbone": parts("DeiT with a new head on the frozen backbone, and fully fine-tuned",
                             "frozen", "finetuned"),
    "optimizers": runs("DeiT by optimizer, the recipe's run first", minimum=2),
    "augmentation": parts("DeiT's default recipe and its variants, each without or with one part",
                          "baseline", lists=("variants",)),
    "batch_sizes": runs("DeiT at several effective batch sizes", minimum=2),
}
OPTIMIZER_NAMES = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
# the sources of the seeds' figures (each run's seed_figures:), as the tables' columns name them:
# the paper's tables, the reproduction report's, and their Swin-L/4 runs of the ablation and the
# optimizers, which this study's DeiT runs stand for (see the deviations)
PAPER, REPRODUCTION = "paper", "reproduction"
SWIN_PAPER, SWIN_REPRODUCTION = "paper, Swin-L/4", "reproduction, Swin-L/4"
BATCH_REPRODUCTION = "reproduction, batch runs"
PAPER_DATA = "tiny-imagenet"  # the paper's figures are top-1 on it: only runs on it are set against them


def _setting(spec: RunSpec) -> str:
    m = spec.config.model
    return {"none": "full fine-tuning", "head": "new head on a frozen backbone",
            "last_k": f"last {m.trainable_blocks} blocks fine-tuned"}[m.freeze]


def _short(label: str) -> str:
    """A run's label up to its first comma (the model), for running text."""
    return label.split(",")[0]


def _variant(label: str) -> str:
    """What a variant's label says after its model ('DeiT-B/16 distilled: without Mixup')."""
    return label.split(": ", 1)[-1]


def effective_batch(spec: RunSpec) -> int:
    """Images per optimizer step: ``train.batch_size`` (the global batch, shared by the
    ``train.nproc`` processes) times ``train.grad_accum``."""
    return spec.config.train.batch_size * spec.config.train.grad_accum


def table_runs(study: Study) -> list[str]:
    """The runs the model tables show: the compared models, then the frozen-backbone run."""
    return list(dict.fromkeys(study.members("models") + study.members("frozen_backbone", "frozen")))


def best_epoch_accuracy(run: Run) -> float:
    """The highest test accuracy of any evaluated epoch: the paper's metric (it reports the best
    accuracy during training); the run's final figure where no epoch was evaluated on its own."""
    log = run.epochs["test_accuracy"].dropna() if "test_accuracy" in run.epochs else pd.Series(dtype=float)
    return float(log.max()) if len(log) else run.metrics.test_accuracy


SEED_METRIC = ("best epoch", best_epoch_accuracy)  # the summary sets the paper's figures against this


def transformer_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """acc@1 after the last epoch and at the best epoch (the paper's metric, which the paper's
    figure is set against, for runs on the paper's data set), acc@5, the mean ± std over seeds
    of a repeated run, and which setting produced each."""
    rows, stats = [], seed_stats(study, results)
    for n in table_runs(study):
        if n in results:
            m, spec = results[n].metrics, study.runs[n]
            best = best_epoch_accuracy(results[n])
            comparable = spec.reported is not None and spec.config.data.name == PAPER_DATA
            rows.append({"run": spec.label, "setting": _setting(spec), "weights": weights_summary(m.weights),
                         "acc@1": m.test_accuracy, "best-epoch acc@1": best,
                         "over seeds": pct_seeds(stats[n]) if stats[n][2] > 1 else "",
                         "acc@5": m.test_top5, "paper acc@1": spec.reported,
                         "vs paper (points)": 100 * (best - spec.reported) if comparable else None,
                         **seed_columns(spec, REPRODUCTION, ("acc1", "acc5")),
                         "epochs": m.epochs, "profile": study.profile})
    table = pd.DataFrame(rows)
    return table.drop(columns=[c for c in ("over seeds",) if c in table and not table[c].any()])


def efficiency_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """Parameters, multiply-adds (GMACs, the paper's unit: a multiply-add counts once; GFLOPs
    count it twice) per image, checkpoint size, time per epoch, training images/s and peak GPU
    memory of each model's run (as measured by the run itself), each beside the paper's and the
    reproduction report's figures."""
    rows = []
    for n in table_runs(study):
        if n in results:
            m, ep, spec = results[n].metrics, results[n].epochs, study.runs[n]
            flops = m.gflops_per_image
            rows.append({"run": spec.label, "params (M)": m.parameters / 1e6,
                         "GMACs / image": None if flops is None else flops / 2,
                         **seed_columns(spec, PAPER, ("params_m", "gmacs")),
                         "checkpoint (MB)": m.checkpoint_mb,
                         **seed_columns(spec, REPRODUCTION, ("checkpoint_mb",)),
                         "min / epoch": float(ep["epoch_time_s"].mean()) / 60,
                         **seed_columns(spec, REPRODUCTION, ("epoch_min",)),
                         "train img/s": m.train_images_per_s, **seed_columns(spec, PAPER, ("train_img_s",)),
                         "peak GPU memory (GB)": m.peak_gpu_memory_gb, "device": m.device})
    return pd.DataFrame(rows)


def ablation_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """Each augmentation variant's acc@1 against the default recipe's (difference in points),
    best first; empty without the default recipe's run."""
    baseline = study.member("augmentation", "baseline")
    if baseline not in results:
        return pd.DataFrame()
    base = seed_stats(study, results)[baseline][0]  # the mean, where the recipe ran over seeds

    def swin(n: str) -> dict:  # the paper's and the reproduction's Swin-L/4 figure of the same change
        return {**seed_columns(study.runs[n], SWIN_PAPER, ("acc1",)),
                **seed_columns(study.runs[n], SWIN_REPRODUCTION, ("acc1",))}
    rows = [{"variant": "default recipe", "acc@1": base, "vs default (points)": 0.0, **swin(baseline)}]
    rows += [{"variant": _variant(study.runs[n].label), "acc@1": results[n].metrics.test_accuracy,
              "vs default (points)": 100 * (results[n].metrics.test_accuracy - base), **swin(n)}
             for n in study.members("augmentation", "variants") if n in results]
    return pd.DataFrame(rows).sort_values("acc@1", ascending=False, kind="stable")


def _optimizer(study: Study, n: str) -> str:
    """An optimizer run's name: the recipe's (the group's first) by its optimizer, each other by
    what its label says."""
    optim = study.runs[n].config.optim.name
    return OPTIMIZER_NAMES.get(optim, optim) if n == study.members("optimizers")[0] else _variant(study.runs[n].label)


def optimizer_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """DeiT's acc@1 by optimizer (the recipe's run first; the mean over seeds where repeated)
    beside the paper's Swin-L/4 figures for the same optimizers."""
    stats = seed_stats(study, results)
    return pd.DataFrame([
        {"optimizer": _optimizer(study, n), "acc@1": stats[n][0],
         "best-epoch acc@1": best_epoch_accuracy(results[n]), **seed_columns(study.runs[n], SWIN_PAPER, ("acc1",))}
        for n in study.members("optimizers") if n in results])


def batch_size_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """DeiT's acc@1 and acc@5 by effective batch size beside the reproduction report's batch
    runs (its DeiT-B at batch 32, 64 and 128; the paper has no batch-size table)."""
    stats = seed_stats(study, results)
    return pd.DataFrame([
        {"effective batch": effective_batch(study.runs[n]), "acc@1": stats[n][0],
         "acc@5": results[n].metrics.test_top5,
         **seed_columns(study.runs[n], BATCH_REPRODUCTION, ("acc1", "acc5"))}
        for n in study.members("batch_sizes") if n in results])


def _models(study: Study, stats: Mapping[str, tuple[float, float, int]]) -> str:
    names = study.members("models")
    acc = {n: mean for n, (mean, _, _) in stats.items()}
    present = [n for n in names if n in acc]
    if not present:
        return skipped("Models", names)
    ranked = sorted(present, key=acc.get, reverse=True)
    paper = [n for n in present if study.runs[n].reported]
    verdict = ""
    if len(paper) == len(present) == len(names) > 1:  # every model ran: the paper's ranking applies
        paper_ranked = sorted(present, key=lambda n: study.runs[n].reported, reverse=True)
        best = _short(study.runs[paper_ranked[0]].label)
        verdict = (f" The paper's best, {best}, is {'also' if ranked[0] == paper_ranked[0] else 'not'} the best "
                   f"here; the paper's order {'reproduces' if ranked == paper_ranked else 'does not reproduce'}.")
    return ("- **Models** (full fine-tuning): " + ", ".join(
        f"{_short(study.runs[n].label)} {pct_seeds(stats[n])}"
        + (f" (paper {pct(study.runs[n].reported)})" if study.runs[n].reported else "") for n in ranked)
        + f". Best: {_short(study.runs[ranked[0]].label)}." + verdict + not_run_note(names, acc))


def _optimizers(study: Study, acc: Mapping[str, float]) -> str:
    names = study.members("optimizers")
    present = [n for n in names if n in acc]
    if len(present) < 2:  # one optimizer alone compares nothing
        return skipped("Optimizers", not_run(names, acc))
    return ("- **Optimizers** (DeiT): " + ", ".join(f"{_optimizer(study, n)} {pct(acc[n])}" for n in present) + "."
            + not_run_note(names, acc))


def _augmentation(study: Study, results: Mapping[str, Run], stats: Mapping[str, tuple[float, float, int]]) -> str:
    names = study.members("augmentation")
    table = ablation_table(study, results)
    if len(table) < 2:
        return skipped("Augmentation ablation", not_run(names, results))
    best, worst = table.iloc[0], table.iloc[-1]
    _, std, n = stats[study.member("augmentation", "baseline")]
    spread = f" The default recipe's spread over {n} seeds: ± {100 * std:.1f} points." if n > 1 else ""
    return (f"- **Augmentation ablation** (DeiT, {len(table) - 1} variants): best "
            f"\"{best['variant']}\" {pct(best['acc@1'])}, worst \"{worst['variant']}\" "
            f"{pct(worst['acc@1'])} ({signed(worst['vs default (points)'], 1)} points against the default)."
            + spread + not_run_note(names, results))


def _batch_sizes(study: Study, acc: Mapping[str, float]) -> str:
    names = study.members("batch_sizes")
    present = [n for n in names if n in acc]
    if len(present) < 2:
        return skipped("Batch size", not_run(names, acc))
    return ("- **Batch size** (DeiT, effective): " + ", ".join(
        f"{_batch_name(study, n, present)}: {pct(acc[n])}" for n in present) + "." + not_run_note(names, acc))


def _batch_name(study: Study, n: str, present: list[str]) -> str:
    """A batch-size run by its effective batch ('64'), marked where it is the default recipe's
    run (the augmentation ablation's baseline: which batch it has is its config's), and by what
    its label says where another run shares its batch ('64 (effective batch 64)')."""
    batch = effective_batch(study.runs[n])
    if n == study.member("augmentation", "baseline"):
        return f"{batch} (the recipe's run)"
    shared = sum(effective_batch(study.runs[m]) == batch for m in present) > 1
    return f"{batch} ({_variant(study.runs[n].label)})" if shared else str(batch)


def conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 3, every number read from the runs."""
    stats = seed_stats(study, results)  # a run repeated over seeds counts by its mean
    acc = {n: mean for n, (mean, _, _) in stats.items()}
    lines = [f"*Computed from the runs of profile `{study.profile}`: top-1 on the test split (Tiny-ImageNet's "
             f"labelled val split in the paper profile), after the last epoch, the mean over seeds where a run "
             f"was repeated.*", ""]

    def noted(line: str, group: str) -> str:  # a comparison resting on a run still rising says so
        return line if "Skipped, not run" in line else line + under_training_note(study, results, study.members(group))

    lines.append(noted(_models(study, stats), "models"))
    frozen, tuned = study.member("frozen_backbone", "frozen"), study.member("frozen_backbone", "finetuned")
    if frozen in acc and tuned in acc:
        lines.append(noted(f"- **Frozen backbone vs fine-tuning** (DeiT): new head only {pct_seeds(stats[frozen])}, "
                           f"everything fine-tuned {pct_seeds(stats[tuned])} ({pts(acc[tuned], acc[frozen])}).",
                           "frozen_backbone"))
    else:
        lines.append(skipped("Frozen backbone vs fine-tuning", not_run((frozen, tuned), acc)))
    lines += [noted(_optimizers(study, acc), "optimizers"), noted(_augmentation(study, results, stats), "augmentation"),
              noted(_batch_sizes(study, acc), "batch_sizes")]
    lines += profile_caveat(study, "tiny stand-ins, generated data and weights this study pretrained on "
                                   "another generated task", "Tiny-ImageNet")
    return "\n".join(lines)
