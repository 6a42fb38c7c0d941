"""Study 2, CNN ablations on Tiny-ImageNet-200: the effects it isolates (each as the runs that
show it, from the parameter file's ``groups:``) and its conclusions."""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from ..training.run import Run
from .common import (comparison_noise, model_name, not_run, pct, pct_seeds, plural, profile_caveat, pts,
                     same_direction, seed_stats, signed, skipped, training_diagnosis)
from .core import Study
from .groups import one, pairs, parts, runs
from .plateau import under_training_note

STUDY = "02_tiny_imagenet_cnn_ablations"
DEPTH_NAMES = ("ResNet-18", "ResNet-34", "ResNet-50")
GROUPS = {
    "preview": one("the run whose augmentation the notebook shows"),
    "batchnorm": parts("VGG19 with and without BatchNorm", "with", "without"),
    "depth": runs(f"{', '.join(DEPTH_NAMES)}, in that order", count=len(DEPTH_NAMES)),
    "skip_connections": parts("ResNet-50 with and without skip connections, and a ResNet of similar size",
                              "with", "without", "similar_size"),
    "cardinality": parts("ResNet-50 and ResNeXt-50 at about the same size", "resnet", "resnext"),
    "cnn_vs_t2t": parts("ResNeXt-50 against T2T-ViT-t-14 (and T2T-ViT at its native size, if run)",
                        "cnn", "t2t", "native", optional=("native",)),
    "stronger_recipes": pairs("each stronger recipe's run -> the seed-setting run it improves on"),
}
# the effects the study isolates: figure title -> (group, its parts shown; all when empty)
EFFECTS = {
    "BatchNorm (VGG19)": ("batchnorm", ("with", "without")),
    "Depth (ResNet)": ("depth", ()),
    "Skip connections": ("skip_connections", ("with", "without", "similar_size")),
    "Cardinality": ("cardinality", ("resnet", "resnext")),
    "CNN vs T2T-ViT": ("cnn_vs_t2t", ("cnn", "t2t")),
}


def effect_panels(study: Study, results: Mapping[str, Run]) -> dict[str, dict[str, pd.DataFrame]]:
    """``{effect: {run label: per-epoch log}}`` for the effects whose runs all exist."""
    panels = {}
    for effect, (group, keys) in EFFECTS.items():
        names = study.members(group, *keys)
        if all(n in results for n in names):
            panels[effect] = {study.runs[n].label: results[n].epochs for n in names}
    return panels


def ablation_pairs(study: Study) -> list[str]:
    """The runs with and without BatchNorm and with and without skip connections (whose loss
    and gradient norms show whether each network trained)."""
    return study.members("batchnorm", "with", "without") + study.members("skip_connections", "with", "without")


def _failure(run: Run) -> str:
    """How a run that did not learn failed, with the evidence, by :func:`training_diagnosis` (the
    criterion of the notebook's 'Did every network learn?' table); '' for a run that learned."""
    d = training_diagnosis(run)
    if d["status"] == "stalled":
        why = (f"**stalled**: its training loss ended at {d['final train loss']:.3f}, against "
               f"ln C = {d['chance loss (ln C)']:.3f} for a uniform guess, and it predicts "
               f"{plural(d['distinct predicted classes'], 'distinct class', 'distinct classes')} on the test split")
        if d["grad norm, first steps"] is not None:
            why += (f"; its gradient norm went from {d['grad norm, first steps']:.2g} to "
                    f"{d['grad norm, last steps']:.2g}")
        return why
    if d["status"] == "diverged":
        where = run.metrics.diverged
        return f"**diverged**: the loss became {where.loss} at step {where.step}"
    return ""


def _batchnorm(study: Study, results: Mapping[str, Run], vs_seed) -> str:
    with_bn, without = study.member("batchnorm", "with"), study.member("batchnorm", "without")
    failed_without, failed_with = _failure(results[without]), _failure(results[with_bn])
    why = f"it {failed_without}" if failed_without else "it **did learn** here, unlike in the seed"
    if failed_with:  # the table marks it too: the pair then shows no effect of BatchNorm
        why += (f". With BatchNorm it also {failed_with}, so this pair cannot show what BatchNorm does here"
                if failed_without else f". With BatchNorm, though, it {failed_with}")
    return f"- **BatchNorm.** VGG19 with BatchNorm reached {vs_seed(with_bn)}, without it {vs_seed(without)}: {why}."


OVERFIT_RISE = 0.02  # a validation loss ending 2% above its lowest, with the training loss still falling


def _overfitting(log: pd.DataFrame) -> str:
    """Whether a run's curves show overfitting (its validation loss turned up from its lowest
    while its training loss kept falling), in words; '' with fewer than 3 validated epochs."""
    if len(log) < 3:
        return ""
    low = log.loc[log["val_loss"].idxmin()]
    end = log.iloc[-1]
    if int(low["epoch"]) == int(end["epoch"]):
        return "its validation loss was lowest at its last epoch: no overfitting (unlike the seed)"
    rise, fell = float(end["val_loss"] - low["val_loss"]), bool(end["train_loss"] < low["train_loss"])
    seen = rise > OVERFIT_RISE * float(low["val_loss"]) and fell
    return (f"its validation loss ended {signed(rise)} above its lowest (epoch {int(low['epoch'])}) while its training "
            f"loss {'kept falling' if fell else 'did not fall'}: "
            + ("overfitting, as the seed saw" if seen else "no overfitting (unlike the seed)"))


def _cnn_vs_t2t(study: Study, results: Mapping[str, Run], acc: Mapping[str, float], vs_seed, seed_gap) -> str:
    cnn, t2t = study.member("cnn_vs_t2t", "cnn"), study.member("cnn_vs_t2t", "t2t")
    logs = {n: results[n].epochs.dropna(subset=["val_loss"]) for n in (cnn, t2t)}
    gaps = {n: float(df["val_loss"].iloc[-1] - df["train_loss"].iloc[-1]) for n, df in logs.items() if len(df)}
    gap_text = ("; validation minus training loss at the end: " + ", ".join(
        f"{study.runs[n].label} {signed(g)}" for n, g in gaps.items())) if gaps else ""
    over = _overfitting(logs[t2t])
    if over:
        gap_text += f"; the seed saw T2T-ViT overfit strongly: here {over}"
    native = study.group("cnn_vs_t2t").get("native")  # optional: a profile may leave it out
    native_text = "" if native is None else (
        f"; at the native 64 px (16 tokens) T2T-ViT-t-14 reached {pct(acc[native])}" if native in acc
        else f"; at the native 64 px (16 tokens), not run: {native}")
    return (f"- **CNN vs T2T-ViT.** {model_name(study, t2t)} {vs_seed(t2t)} against {model_name(study, cnn)} "
            f"{pct(acc[cnn])}: {pts(acc[t2t], acc[cnn])}{seed_gap(t2t, cnn)}{gap_text}{native_text}.")


def _comparisons(study: Study, acc: Mapping[str, float], seed: Mapping[str, float], vs_seed,
                 seed_gap, note) -> list[str]:
    """The depth, skip-connection and cardinality bullets (``note``: the under-training caveat
    of the runs a bullet rests on)."""
    lines = []
    depth = study.members("depth")
    if all(n in acc for n in depth):
        order = [acc[n] for n in depth]
        rises = all(a < b for a, b in zip(order, order[1:]))  # a tie is no rise
        trend = "rises with depth" if rises else "does not rise monotonically with depth"
        as_seed = ""
        if all(seed.get(n) for n in depth):
            seed_rises = all(seed[a] < seed[b] for a, b in zip(depth, depth[1:]))
            as_seed = ", as in the seed" if rises == seed_rises else ", unlike in the seed"
        lines.append("- **Depth.** " + ", ".join(f"{name} {vs_seed(n)}" for name, n in zip(DEPTH_NAMES, depth))
                     + f": accuracy {trend} here{as_seed}." + note(depth))
    else:
        lines.append(skipped("Depth.", not_run(depth, acc)))
    skip = study.group("skip_connections")
    with_skip, without, similar = skip["with"], skip["without"], skip["similar_size"]
    if with_skip in acc and without in acc:
        extra = (f"; {model_name(study, similar)}, of similar size, "
                 f"{pct(acc[similar]) if similar in acc else 'not run: ' + similar}")
        lines.append(f"- **Skip connections.** Removing them from {model_name(study, with_skip)} changes top-1 by "
                     f"{pts(acc[without], acc[with_skip])}{seed_gap(without, with_skip)}{extra}."
                     + note((with_skip, without)))
    else:
        lines.append(skipped("Skip connections.", not_run((with_skip, without), acc)))
    resnet, resnext = study.member("cardinality", "resnet"), study.member("cardinality", "resnext")
    if resnet in acc and resnext in acc:
        lines.append(f"- **Cardinality.** {model_name(study, resnext)} against {model_name(study, resnet)} at about "
                     f"the same size: {pts(acc[resnext], acc[resnet])}{seed_gap(resnext, resnet)}."
                     + note((resnet, resnext)))
    else:
        lines.append(skipped("Cardinality.", not_run((resnet, resnext), acc)))
    return lines


def conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 2, every number read from the runs and the parameter file."""
    stats = seed_stats(study, results)  # a run repeated over seeds counts by its mean
    acc = {n: mean for n, (mean, _, _) in stats.items()}
    seed = {n: s.reported for n, s in study.runs.items()}

    def vs_seed(n: str) -> str:
        return f"{pct_seeds(stats[n])}" + (f" (seed {pct(seed[n])})" if seed.get(n) is not None else "")

    n_test = next(iter(results.values())).metrics.dataset.n_test

    def seed_gap(a: str, b: str) -> str:  # the seed's a - b, and whether ours goes its way beyond noise
        if seed.get(a) is None or seed.get(b) is None:
            return ""
        noise = comparison_noise(stats[a], stats[b], n_test)
        return f" (the seed: {pts(seed[a], seed[b])}; {same_direction(acc[a] - acc[b], seed[a] - seed[b], noise)})"

    lines = [f"*Computed from the runs of profile `{study.profile}`: top-1 accuracy on the "
             f"{n_test}-image test split, each model picked at its last "
             f"epoch (the validation split was only watched), the mean over seeds where a run was repeated.*",
             ""]
    def note(names) -> str:  # a verdict resting on a run still rising at its end says so
        return under_training_note(study, results, names)

    bn = study.members("batchnorm")
    lines.append(_batchnorm(study, results, vs_seed) + note(bn) if all(n in acc for n in bn)
                 else skipped("BatchNorm.", not_run(bn, acc)))
    lines += _comparisons(study, acc, seed, vs_seed, seed_gap, note)
    pair = study.members("cnn_vs_t2t", "cnn", "t2t")
    lines.append(_cnn_vs_t2t(study, results, acc, vs_seed, seed_gap) + note(pair) if all(n in acc for n in pair)
                 else skipped("CNN vs T2T-ViT.", not_run(pair, acc)))
    for strong, base in study.group("stronger_recipes"):
        lead = f"Stronger recipe: {study.label(strong)}."
        if strong not in acc:
            lines.append(skipped(lead, [strong]))
            continue
        cmp = f", against {pct(acc[base])} for its seed setting ({pts(acc[strong], acc[base])})" if base in acc else ""
        lines.append(f"- **{lead}** {pct(acc[strong])}{cmp}." + note((strong, base)))
    lines += profile_caveat(study, "tiny stand-in models on generated data", "Tiny-ImageNet")
    return "\n".join(lines)
