"""Study 1, ViT-B/16 vs ResNet-18 on CIFAR-10: the conclusions, from the runs its parameter
file's ``groups:`` name."""
from __future__ import annotations

from typing import Mapping, Optional

from ..training.run import Run
from .common import comparison_noise, not_run, pct, pct_seeds, profile_caveat, pts, seed_stats, skipped, verdict
from .core import Study
from .groups import parts
from .plateau import PLATEAU_GAIN, PLATEAU_SHARE, plateau_of, under_training_note

STUDY = "01_cifar10_vit_vs_resnet"
GROUPS = {
    "seed_settings": parts("the seed's two settings, compared", "cnn", "vit"),
    "preprocessing": parts("the seed's ViT setting with and without its preprocessing", "with", "without"),
    "resnet_recipes": parts("ResNet-18: its seed setting and the strong recipe", "seed", "strong"),
    "vit_recipes": parts("ViT: its seed setting and the strong recipe", "seed", "strong"),
}
# each family's strong recipe: its group, and what a good recipe should reach on real CIFAR-10
# (published recipes: ResNet-18 95-96%, small ViTs from scratch with strong augmentation above 90%)
RECIPES = (("resnet_recipes", 0.95), ("vit_recipes", 0.90))


def _named(study: Study, name: str) -> str:
    """Run ``name``'s model as its label names it: the label up to its first comma or ' ('
    ('ResNet-18, seed setting (...)' -> 'ResNet-18'; laptop's 'ResNet (0.31M), ...' -> 'ResNet'),
    so that a profile's stand-in is never called the seed's model."""
    return study.runs[name].label.split(",")[0].split(" (")[0]


def _seed_settings(study: Study, results: Mapping[str, Run], stats: Mapping[str, tuple[float, float, int]],
                   ep: Mapping[str, int], n_test: int) -> str:
    cnn, vit = study.member("seed_settings", "cnn"), study.member("seed_settings", "vit")
    r, v = stats[cnn][0], stats[vit][0]
    noise = comparison_noise(stats[cnn], stats[vit], n_test)
    lead = verdict(r - v, noise, f"the CNN leads by {100 * (r - v):.1f} points",
                   f"the ViT leads by {100 * (v - r):.1f} points")
    if abs(r - v) <= noise:
        lead += f" (±{100 * noise:.1f} points)"
    model = {n: f"{_named(study, n)} (`{study.runs[n].config.model.name}`)" for n in (cnn, vit)}
    line = (f"- **Seed settings.** {model[cnn]} reached {pct_seeds(stats[cnn])} in {ep[cnn]} epochs and "
            f"{model[vit]} {pct_seeds(stats[vit])} in {ep[vit]} epochs: {lead}")
    caveat = under_training_note(study, results, (cnn, vit))
    seed_r, seed_v = study.runs[cnn].reported, study.runs[vit].reported
    if seed_r is None or seed_v is None:
        return line + "." + caveat
    if abs(r - v) <= noise:
        return line + f" (the seed reported about {seed_r:.0%} vs {seed_v:.0%})." + caveat
    reproduces = "reproduces in direction" if r > v else "does not reproduce"
    return (line + f", so the seed's gap {reproduces} (the seed reported about {seed_r:.0%} vs {seed_v:.0%}, "
                   f"{100 * (seed_r - seed_v):+.0f} points, after 25 and 45 epochs)." + caveat)


def _preprocessing(study: Study, results: Mapping[str, Run], stats: Mapping[str, tuple[float, float, int]],
                   n_test: int) -> str:
    with_pre, without = study.member("preprocessing", "with"), study.member("preprocessing", "without")
    a, b = stats[with_pre][0], stats[without][0]
    noise = comparison_noise(stats[with_pre], stats[without], n_test)
    helped = verdict(a - b, noise, "preprocessing helped here", "preprocessing did not help here")
    return (f"- **Preprocessing ablation.** With the seed's flip and normalisation {_named(study, with_pre)} "
            f"reached {pct_seeds(stats[with_pre])}, without them {pct_seeds(stats[without])}: "
            f"{helped} ({pts(a, b)}, noise ±{100 * noise:.1f}; the seed reported that "
            f"it helps)." + under_training_note(study, results, (with_pre, without)))


def _curve_state(study: Study, results: Mapping[str, Run], name: str) -> tuple[str, Optional[bool]]:
    """How a run's curves ended over its seeds, by the plateau check: ('still rising in 3 of 3
    seeds', True), ('level in 2 of 3 seeds', False), or why it cannot be told (None)."""
    checks = [plateau_of(results[r]) for r in study.repeats(name) if r in results]
    told = [p for p in checks if p.gain is not None]
    if not told:
        return f"cannot be told ({checks[0].reason})", None
    rising = sum(p.flagged for p in told)
    state = rising * 2 > len(told)  # (a tie counts as level)
    if len(told) == 1:
        return ("still rising" if state else "level") + f" at its end ({checks[0].cell()})", state
    told_as = f"still rising in {rising}" if state else f"level in {len(told) - rising}"
    return f"{told_as} of {len(told)} seeds", state


def _trends(study: Study, results: Mapping[str, Run]) -> str:
    """The seed's two trend claims, read from our seed-setting curves with the plateau check."""
    cnn, vit = study.member("seed_settings", "cnn"), study.member("seed_settings", "vit")
    vit_text, vit_rising = _curve_state(study, results, vit)
    cnn_text, cnn_rising = _curve_state(study, results, cnn)

    def agrees(state: Optional[bool], seed_saw: bool) -> str:
        return "untested" if state is None else ("as the seed saw" if state == seed_saw else "unlike the seed")
    return (f"- **Trends.** The seed saw ViT-B/16 still improving at its last epoch and ResNet-18 level from "
            f"epoch 20. Here, by the plateau check (under {100 * PLATEAU_GAIN:.0f} point gained over the last "
            f"{PLATEAU_SHARE:.0%} of epochs), the ViT is {vit_text} ({agrees(vit_rising, True)}) and the "
            f"ResNet {cnn_text} ({agrees(cnn_rising, False)}).")


def _strong_recipe(study: Study, results: Mapping[str, Run], stats: Mapping[str, tuple[float, float, int]],
                   ep: Mapping[str, int], n_test: int, group: str, target: float) -> str:
    seed_run, strong_run = study.member(group, "seed"), study.member(group, "strong")
    s, g = stats[seed_run][0], stats[strong_run][0]
    noise = comparison_noise(stats[seed_run], stats[strong_run], n_test)
    gain = verdict(g - s, noise, "better than the seed setting", "worse than the seed setting")
    met = "" if study.profile != "paper" else f" Target at least {pct(target)}: {'met' if g >= target else 'not met'}."
    return (f"- **{_named(study, strong_run)}, strong recipe** (`{study.runs[strong_run].config.model.name}`). "
            f"{pct_seeds(stats[strong_run])} after {ep[strong_run]} epochs at 32 px, against "
            f"{pct_seeds(stats[seed_run])} for the seed setting ({pts(g, s)}, noise "
            f"±{100 * noise:.1f}: {gain}).{met}" + under_training_note(study, results, (seed_run, strong_run)))


def conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 1, every number read from the runs. A difference within the
    noise (the test split's sampling noise or the spread over seeds, the larger) gets no verdict,
    and a verdict resting on a run still rising at its end says it may be under-trained."""
    stats = seed_stats(study, results)  # a run repeated over seeds counts by its mean
    ep = {name: run.metrics.epochs for name, run in results.items()}
    prof = study.profile
    n_test = next(iter(results.values())).metrics.dataset.n_test
    lines = [f"*Computed from the runs of profile `{prof}`; every number below is test accuracy on "
             f"the run's full test split ({n_test} images), the mean over seeds where a run was repeated.*", ""]
    missing = not_run(study.members("seed_settings"), stats)
    lines.append(skipped("Seed settings.", missing) if missing else _seed_settings(study, results, stats, ep, n_test))
    lines.append(skipped("Trends.", missing) if missing else _trends(study, results))
    missing = not_run(study.members("preprocessing"), stats)
    lines.append(skipped("Preprocessing ablation.", missing) if missing else _preprocessing(study, results, stats, n_test))
    for group, target in RECIPES:
        missing = not_run(study.members(group), stats)
        lead = _named(study, study.member(group, "strong"))
        lines.append(skipped(f"{lead}, strong recipe", missing) if missing
                     else _strong_recipe(study, results, stats, ep, n_test, group, target))
    lines += profile_caveat(study, "small stand-in models and data", "CIFAR-10. See the `paper` profile "
                            "for the study")
    return "\n".join(lines)
