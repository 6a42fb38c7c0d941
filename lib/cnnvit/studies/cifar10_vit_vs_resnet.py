"""Study 1, ViT-B/16 vs ResNet-18 on CIFAR-10: the conclusions, from the runs its parameter
file's ``groups:`` name."""
from __future__ import annotations

from typing import Mapping

from ..training.run import Run
from .common import not_run, pct, pct_seeds, profile_caveat, seed_stats, skipped
from .core import Study
from .groups import parts

STUDY = "01_cifar10_vit_vs_resnet"
GROUPS = {
    "seed_settings": parts("the seed's two settings, compared", "cnn", "vit"),
    "preprocessing": parts("the seed's ViT setting with and without its preprocessing", "with", "without"),
    "resnet_recipes": parts("ResNet-18: its seed setting and the strong recipe", "seed", "strong"),
    "vit_recipes": parts("ViT: its seed setting and the strong recipe", "seed", "strong"),
}
# each family's strong recipe: its group, its name in the text, and what a good recipe should
# reach on real CIFAR-10 (published recipes: ResNet-18 95-96%, small ViTs from scratch with
# strong augmentation above 90%)
RECIPES = (("resnet_recipes", "ResNet-18", 0.95), ("vit_recipes", "ViT", 0.90))


def _seed_settings(study: Study, stats: Mapping[str, tuple[float, float, int]], ep: Mapping[str, int]) -> str:
    cnn, vit = study.member("seed_settings", "cnn"), study.member("seed_settings", "vit")
    r, v = stats[cnn][0], stats[vit][0]
    model = {n: f"`{study.runs[n].config.model.name}`" for n in (cnn, vit)}
    if r == v:
        lead = "the two are level"
    else:
        lead = f"the {'CNN' if r > v else 'ViT'} leads by {100 * abs(r - v):.1f} points"
    line = (f"- **Seed settings.** ResNet-18 ({model[cnn]}) reached {pct_seeds(stats[cnn])} in {ep[cnn]} "
            f"epochs and ViT-B/16 ({model[vit]}) {pct_seeds(stats[vit])} in {ep[vit]} epochs: {lead}")
    seed_r, seed_v = study.runs[cnn].reported, study.runs[vit].reported
    if seed_r is None or seed_v is None:
        return line + "."
    verdict = "reproduces in direction" if r > v else "does not reproduce"
    return (line + f", so the seed's gap {verdict} (the seed reported about {seed_r:.0%} vs {seed_v:.0%}, "
                   f"{100 * (seed_r - seed_v):+.0f} points, after 25 and 45 epochs).")


def conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 1, every number read from the runs."""
    stats = seed_stats(study, results)  # a run repeated over seeds counts by its mean
    acc = {name: mean for name, (mean, _, _) in stats.items()}
    ep = {name: run.metrics["epochs"] for name, run in results.items()}
    prof = study.profile
    lines = [f"*Computed from the runs of profile `{prof}`; every number below is test accuracy on "
             f"the run's full test split ({next(iter(results.values())).metrics['dataset']['n_test']} "
             f"images), the mean over seeds where a run was repeated.*", ""]
    missing = not_run(study.members("seed_settings"), acc)
    lines.append(skipped("Seed settings.", missing) if missing else _seed_settings(study, stats, ep))
    with_pre, without = study.member("preprocessing", "with"), study.member("preprocessing", "without")
    missing = not_run((with_pre, without), acc)
    if missing:
        lines.append(skipped("Preprocessing ablation.", missing))
    else:
        a, b = acc[with_pre], acc[without]
        verdict = "helped" if a > b else "did not help"
        lines.append(f"- **Preprocessing ablation.** With the seed's flip and normalisation ViT-B/16 reached "
                     f"{pct_seeds(stats[with_pre])}, without them {pct_seeds(stats[without])}: preprocessing "
                     f"{verdict} here "
                     f"({100 * (a - b):+.1f} points; the seed reported that it helps).")
    for group, family, target in RECIPES:
        seed_run, strong_run = study.member(group, "seed"), study.member(group, "strong")
        missing = not_run((seed_run, strong_run), acc)
        if missing:
            lines.append(skipped(f"{family}, strong recipe", missing))
            continue
        s, g = acc[seed_run], acc[strong_run]
        met = "" if prof != "paper" else f" Target at least {pct(target)}: {'met' if g >= target else 'not met'}."
        lines.append(f"- **{family}, strong recipe** (`{study.runs[strong_run].config.model.name}`). {pct(g)} "
                     f"after {ep[strong_run]} epochs at 32 px, "
                     f"against {pct(s)} for the seed setting ({100 * (g - s):+.1f} points).{met}")
    lines += profile_caveat(study, "small stand-in models and data", "CIFAR-10. See the `paper` profile "
                            "for the study")
    return "\n".join(lines)
