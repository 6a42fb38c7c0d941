"""What every study's notebook shares: tables of runs, previews, diagnoses and the small pieces
the conclusions are written with, so that no notebook holds a function definition or types a
number in by hand."""
from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from ..training.augment import Preprocess, make_generator
from ..config import Config
from ..datasets import dataset_from_config, get_dataset
from ..records import WeightsKind, WeightsOrigin
from ..training.run import Run
from .core import SEED_FIGURES, RunSpec, Study
from .plateau import plateau_of

# ------------------------------------------------------------------------- conclusions' wording


def pct(x: float) -> str:
    """A share as a percentage with one decimal (0.8812 -> '88.1%')."""
    return f"{100 * x:.1f}%"


def pts(a: float, b: float) -> str:
    """The signed difference a - b in percentage points ('+1.2 points'; never '-0.0')."""
    return f"{signed(100 * (a - b), 1)} points"


def signed(x: float, digits: int = 2) -> str:
    """``x`` with its sign and ``digits`` decimals ('+0.31', '-1.20'); a value that rounds to zero
    is '+0.00', not the signed zero '-0.00' that reads as a (tiny) fall."""
    return f"{round(x, digits) + 0.0:+.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def plural(n: int, one: str, many: Optional[str] = None) -> str:
    """'1 class', '3 classes': ``n`` and the noun that agrees with it (``many``: default one + 's')."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's rank correlation of ``x`` and ``y`` and its two-sided permutation p-value: the
    share of the orderings of ``y`` whose correlation is at least as far from zero (exact up to 8
    points, else 20,000 random orderings). A few points give weak evidence whatever the sign:
    three points in perfect order happen by chance in one ordering of three."""
    rx, ry = pd.Series(list(x)).rank(), pd.Series(list(y)).rank()
    rho = float(rx.corr(ry))
    if len(rx) < 3 or rho != rho:  # under 3 points, or a constant series: no correlation to test
        return rho, float("nan")
    if len(rx) <= 8:
        orders = [list(p) for p in itertools.permutations(ry)]
    else:
        rng = np.random.default_rng(0)
        orders = [list(rng.permutation(ry)) for _ in range(20_000)]
    hits = sum(abs(float(rx.corr(pd.Series(o)))) >= abs(rho) - 1e-12 for o in orders)
    return rho, hits / len(orders)


def profile_caveat(study: Study, uses: str, about: str) -> list[str]:
    """The closing line of a non-paper profile's conclusions: what it runs on, and what its
    numbers can say (the smoke profile's only that the pipeline works)."""
    if study.profile == "paper":
        return []
    if study.profile == "laptop":
        return ["", "*Profile `laptop`: small models and subsets of the real data, trained on a CPU in "
                    "minutes. The numbers and verdicts above are this scale's; the seed's own numbers need the "
                    "`paper` profile.*"]
    return ["", f"*Profile `{study.profile}` uses {uses}: these numbers test the pipeline and say "
                f"nothing about {about}.*"]


def difference_noise(a: float, b: float, n_test: int) -> float:
    """Half-width of a 95% interval for the difference of two accuracies ``a`` and ``b``, each
    measured on ``n_test`` test images (binomial sampling alone; no training noise)."""
    return 1.96 * float(np.sqrt((a * (1 - a) + b * (1 - b)) / n_test))


def comparison_noise(a: tuple[float, float, int], b: tuple[float, float, int], n_test: int) -> float:
    """Half-width of a 95% interval for the difference of two runs' mean accuracies, given as
    :func:`seed_stats` tuples (mean, std over seeds, seeds) measured on ``n_test`` test images:
    the larger of the test split's binomial sampling noise (:func:`difference_noise`) and, for
    runs repeated over seeds, the seed spread of the difference of the means (1.96 standard
    errors; a run of one seed adds nothing to it)."""
    binomial = difference_noise(a[0], b[0], n_test)
    seed_var = sum(std ** 2 / n for _, std, n in (a, b) if n > 1)
    return max(binomial, 1.96 * float(np.sqrt(seed_var)))


def verdict(diff: float, noise: float, positive: str, negative: str) -> str:
    """``positive`` when ``diff`` exceeds ``noise``, ``negative`` when it is below -``noise``,
    else that the difference is within the noise (no verdict)."""
    if diff > noise:
        return positive
    if diff < -noise:
        return negative
    return "no verdict, the difference is within the noise"


def same_direction(ours: float, seed: float, noise: float = 0.0) -> str:
    """Whether a difference of ours has the sign of the seed's: the verdict a conclusion gives;
    a difference within ``noise`` (see :func:`difference_noise`) has no sign to compare."""
    if abs(ours) <= noise:
        return f"within the noise, ±{100 * noise:.1f} points"
    if seed == 0:
        return "no direction to compare"
    return "same direction" if (ours > 0) == (seed > 0) else "the opposite direction"


def model_name(study: Study, name: str) -> str:
    """A run's model as its label names it: the label up to its first ' (' ('ResNet-50 (SGD 0.2)'
    -> 'ResNet-50'), so that a profile's smaller stand-ins are named as what they are."""
    return study.runs[name].label.split(" (")[0]


def seed_stats(study: Study, results: Mapping[str, Run]) -> dict[str, tuple[float, float, int]]:
    """For every run that is not itself a repeat: the mean and standard deviation (ddof 1; 0 for
    one run) of the test accuracy over it and its finished repeats with other seeds, and how many."""
    out = {}
    for name in study.runs:
        if study.runs[name].replica_of or name not in results:
            continue
        acc = [results[n].metrics.test_accuracy for n in study.repeats(name) if n in results]
        out[name] = (float(np.mean(acc)), float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0, len(acc))
    return out


def pct_seeds(stats: tuple[float, float, int]) -> str:
    """'88.1%' for one run; '88.1% ± 0.4 (3 seeds)' for a run repeated over seeds."""
    mean, std, n = stats
    return pct(mean) if n == 1 else f"{pct(mean)} ± {100 * std:.1f} ({n} seeds)"


def not_run(names: Iterable[str], results: Mapping[str, Any]) -> list[str]:
    """The runs of ``names`` that have no result, each once, in order."""
    return [n for n in dict.fromkeys(names) if n not in results]


def skipped(lead: str, names: Iterable[str]) -> str:
    """The bullet of a conclusion that cannot be drawn because its runs have no result."""
    return f"- **{lead}** Skipped, not run: {', '.join(names)}."


def not_run_note(names: Iterable[str], results: Mapping[str, Any]) -> str:
    """' Not run: a, b.' for the runs of ``names`` without a result ('' when all have one)."""
    missing = not_run(names, results)
    return f" Not run: {', '.join(missing)}." if missing else ""


# ----------------------------------------------------------------------- where weights came from
# (read from a run's record, ``run.metrics.weights``: older run folders' sentences are parsed there)

def weights_summary(origin: WeightsOrigin) -> str:
    """Where a run's weights came from, briefly, for a table cell (from the origin's fields,
    whatever its label says)."""
    if origin.kind == WeightsKind.RUN:
        return f"pretrained on {origin.data or '?'} by this project ({origin.model or '?'}, run {origin.run})"
    if origin.kind == WeightsKind.FILE:
        return f"pretrained weights from {origin.source}"
    return "pretrained" if origin.kind == WeightsKind.HUB else "trained from scratch"


def weights_kind(origin: WeightsOrigin) -> str:
    """'scratch', 'pretrained' (published weights or a file) or 'pretrained (this project)'."""
    return {WeightsKind.SCRATCH: "scratch", WeightsKind.RUN: "pretrained (this project)"}.get(origin.kind, "pretrained")


# ---------------------------------------------------------------------------------- run tables

def deviations_table(study: Study) -> pd.DataFrame:
    """The parameter file's ``deviations:`` as a table: what differs from the seed, the seed's
    setting, this profile's, and why (one row saying none is listed when there are none)."""
    rows = [{"what": d["what"], "the seed": d["seed"], f"here ({study.profile})": d["here"], "why": d["why"]}
            for d in study.deviations]
    if not rows:
        rows = [{"what": f"none listed in {Path(study.source).name}", "the seed": "",
                 f"here ({study.profile})": "", "why": ""}]
    return pd.DataFrame(rows)


def input_px(cfg: Config) -> str:
    """The side of a run's input images: ``data.image_size``, else the data set's native size
    ('32 px'; 'native size' where the data set does not fix it)."""
    if cfg.data.image_size:
        return f"{cfg.data.image_size} px"
    spec = get_dataset(cfg.data.name)
    side = spec.native_size or (spec.size_of(cfg.data) if spec.size_of else None)  # (size_of: config only)
    return f"{side} px" if side else "native size"


def training_images(cfg: Config) -> str:
    """How many training images a run draws, as its config says ('15,000 training images, 33%
    held out for validation'; 'all training images')."""
    n = f"{cfg.data.train_subset:,} training images" if cfg.data.train_subset else "all training images"
    share = cfg.data.val_fraction or 0.0
    return n + (f", {share:.0%} held out for validation" if share else "")


def study_intro(study: Study) -> str:
    """What this profile runs, read from its parameter file: each run (not the repeats with
    other seeds) by its label, with its model as the config names it, input size, epochs,
    training images and seeds; for a notebook's opening, whose fixed text holds only what is
    true of every profile (the question and the seed)."""
    lines = [f"**Here (profile `{study.profile}`).** {plural(len(study.contenders()), 'compared run')}"
             + (f" and {plural(len(study.pretraining_sources), 'pretraining run')} they start from"
                if study.pretraining_sources else "")
             + ", as the parameter file sets them; every number below is read from the runs this notebook "
               "executed (or found complete on disk with the same config).", ""]
    for name, spec in study.runs.items():
        if spec.replica_of:
            continue
        cfg, seeds = spec.config, len(study.repeats(name))
        start = f", from run `{spec.starts_from}`'s weights" if spec.starts_from else (
            ", pretrained weights" if cfg.model.pretrained or cfg.model.pretrained_path else "")
        lines.append(f"- {spec.label}: `{cfg.model.name}`{start}, {input_px(cfg)}, "
                     f"{plural(cfg.train.epochs, 'epoch')} on {training_images(cfg)}"
                     + (f", {plural(seeds, 'seed')}" if seeds > 1 else "") + ".")
    return "\n".join(lines)


def seed_columns(spec: RunSpec, source: str, figures: Sequence[str]) -> dict[str, Optional[float]]:
    """A run's ``figures`` as one seed ``source`` gives them (its ``seed_figures:``), as table
    columns named '<source> <figure>'; None where the seed is silent (the tables show —)."""
    given = spec.seed_figures.get(source, {})
    return {f"{source} {SEED_FIGURES[f]}": given.get(f) for f in figures}


def seed_notes(study: Study) -> str:
    """The seed's headline figure set beside each run (its ``reported:``) and what it is (its
    ``reported_note:``), as a Markdown list; '' when no run has one."""
    lines = [f"- {spec.label}: {100 * spec.reported:.2f}%"
             + (f" ({spec.reported_note})" if spec.reported_note else "")
             for spec in study.runs.values() if spec.reported is not None and not spec.replica_of]
    return ("**The seed's figures** set beside our runs:\n\n" + "\n".join(lines)) if lines else ""


SEED_FORMATS = {"acc@1": "{:.2%}", "acc@5": "{:.2%}", "precision": "{:.4f}", "recall": "{:.4f}", "F1": "{:.4f}",
                "auROC": "{:.4f}", "params (M)": "{:.4g}", "GMACs / image": "{:.1f}", "train img/s": "{:.1f}",
                "checkpoint (MB)": "{:.0f}", "min / epoch": "{:.1f}"}


def seed_formats(table: pd.DataFrame) -> dict[str, str]:
    """Display formats of a table's seed columns (:func:`seed_columns`), by the figure each
    column's name ends with; for a notebook's ``style.format`` (with ``na_rep="—"``)."""
    return {c: f for c in table.columns for figure, f in SEED_FORMATS.items()
            if c.endswith(f" {figure}") and c != figure}


def summary_table(study: Study, results: Mapping[str, Run], seeds: bool = False) -> pd.DataFrame:
    """One row per setting: our test accuracy (the mean over seeds where a run was repeated,
    with their spread in points and how many) beside the seed's reported number, with the model
    size, profile, epochs, wall time and throughput that produced it (and the last validation
    accuracy when the runs hold a validation split; ``data`` gives train/val/test sizes);
    ``plateau`` is the run's plateau check (:mod:`.plateau`). ``seeds=True``: one row per seed."""
    rows = []
    stats = seed_stats(study, results)
    for name, spec in study.runs.items():
        if name not in results or (spec.replica_of and not seeds):  # not run here; or a repeat
            continue
        m = results[name].metrics
        cfg = spec.config
        d = m.dataset
        splits = "/".join(map(str, (d.n_train, d.n_val, d.n_test) if d.n_val else (d.n_train, d.n_test)))
        mean, std, n = stats[name] if name in stats and not seeds else (m.test_accuracy, 0.0, 1)
        rows.append({
            "run": spec.label,
            "role": spec.role,
            "model": cfg.model.name,
            "input px": cfg.data.image_size or results[name].data_info["native_size"][0],
            "params (M)": round(m.parameters / 1e6, 2),
            **seed_columns(spec, "seed", ("params_m",)),
            "epochs": m.epochs if not m.diverged else f"{m.epochs_run} of {m.epochs} (diverged)",
            "val acc": m.val_accuracy,
            "test acc": mean,
            "± (points)": 100 * std if n > 1 else None,
            "seeds": n,
            "plateau": plateau_of(results[name]).cell(),
            "top-5": m.test_top5,
            "seed reported": spec.reported,
            "profile": study.profile,
            "data": f"{d.name} ({splits})",
            "wall time (s)": round(m.wall_time_s, 1),
            "train img/s": round(m.train_images_per_s),
            "device": m.device,
        })
    table = pd.DataFrame(rows)
    unused = [c for c in ("val acc", "± (points)", "seed params (M)") if c in table and table[c].isna().all()]
    if "seeds" in table and (table["seeds"] == 1).all():
        unused.append("seeds")
    return table.drop(columns=unused)


def settings(study: Study, results: Mapping[str, Run], names: Optional[Iterable[str]] = None) -> dict[str, list[str]]:
    """Each setting of ``names`` (default: every run that is not a repeat; a repeat named stands
    for the run it repeats) with a result, by its label ('(n seeds)' added where it was repeated):
    the names of its finished runs over every seed."""
    names = study.runs if names is None else names
    out: dict[str, list[str]] = {}
    for name in dict.fromkeys((study.runs[n].replica_of if n in study.runs else None) or n for n in names):
        if name not in results:
            continue
        done = [n for n in study.repeats(name) if n in results]
        out[study.label(name) + (f" ({len(done)} seeds)" if len(done) > 1 else "")] = done
    return out


def per_class_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """Per-class F1 of each setting (columns: runs under their labels, rows: classes); a run
    repeated over seeds by the mean over its seeds."""
    columns = {}
    for label, done in settings(study, results).items():
        per_class = [results[n].metrics.test["per_class"] for n in done]
        columns[label] = {c: float(np.mean([s[c]["f1"] for s in per_class])) for c in per_class[0]}
    return pd.DataFrame(columns).rename_axis("class")


def per_class_report(run: Run) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class on the test split (sklearn's report)."""
    return pd.DataFrame(run.metrics.test["per_class"]).T.rename_axis("class")


def class_accuracy_extremes(run: Run, k: int = 8) -> pd.DataFrame:
    """The ``k`` classes the run recognises best and worst on the test split (recall), by name."""
    per_class = run.metrics.test["per_class"]
    s = pd.Series({c: v["recall"] for c, v in per_class.items()}).sort_values(ascending=False)
    top, bottom = s.head(k), s.tail(k)[::-1]
    return pd.DataFrame({"best class": top.index, "recall": top.values,
                         "worst class": bottom.index, "recall ": bottom.values})


def best_run(results: Mapping[str, Run]) -> str:
    """Name of the run with the highest test accuracy."""
    return max(results, key=lambda n: results[n].metrics.test_accuracy)


def pooled_confusions(study: Study, results: Mapping[str, Run],
                      names: Optional[Iterable[str]] = None) -> dict[str, np.ndarray]:
    """One test-split confusion matrix (counts) per setting, for :func:`~.plots.plot_confusions`:
    each run of ``names`` (default: every run that is not a repeat; a repeat named stands for
    the run it repeats) summed with its finished repeats over other seeds (``seeds:``), so that
    the figure normalises the pooled counts per true class. Keyed by the run's label, with
    '(n seeds)' where more than one seed is pooled; runs without a result are left out, as
    :func:`seed_stats` leaves them."""
    return {label: sum(np.asarray(results[n].metrics.test["confusion_matrix"], dtype=np.int64) for n in done)
            for label, done in settings(study, results, names).items()}


def distributed_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """Runs trained in several processes: world size, backend, and the check that the ranks'
    shards of the first epoch were disjoint and covered it."""
    rows = []
    for name, run in results.items():
        info = run.metrics.distributed
        if info:
            shards = info.get("shard_check", {})
            rows.append({"run": study.runs[name].label, "processes": info["world_size"],
                         "backend": info["backend"], "SyncBatchNorm": info["sync_bn"],
                         "images per rank (epoch 1)": shards.get("per_rank"),
                         "shards disjoint": shards.get("disjoint"), "epoch covered": shards.get("complete"),
                         "train img/s": round(run.metrics.train_images_per_s),
                         "test acc": run.metrics.test_accuracy})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- data and diagnosis

def preview_preprocessing(cfg: Config, n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` test images (one per class where possible) before and after the run's training-time
    preprocessing: (uint8 N x H x W x 3, float N x H' x W' x 3, class names)."""
    data_cfg = copy.copy(cfg.data)  # its options are attributes, which dataclasses.replace drops
    data_cfg.train_subset, data_cfg.test_subset = 10 * n, 10 * n
    ds = dataset_from_config(data_cfg, cfg.seed)
    if ds.multilabel:  # no single class to show: the first images, titled by the labels they have
        picks = list(range(min(n, len(ds.test_labels))))
        names = [", ".join(c for c, v in zip(ds.classes, ds.test_labels[i]) if v)[:24] or "none" for i in picks]
    else:
        picks = [int(np.flatnonzero(ds.test_labels == c)[0]) for c in np.unique(ds.test_labels)][:n]
        names = [ds.classes[ds.test_labels[i]] for i in picks]
    before = ds.test_images[picks]
    prep = Preprocess.from_config(cfg.data, ds.mean, ds.std)
    after = prep.train(torch.from_numpy(before), make_generator(seed, torch.device("cpu")))
    return before, after.permute(0, 2, 3, 1).numpy(), names


def training_diagnosis(run: Run) -> dict:
    """Did the run learn? ``status`` is 'diverged' (the loss became NaN), 'stalled' (training loss
    still within 3% of ln C, the loss of a uniform guess, and accuracy under 2/C) or 'learned';
    with the evidence: losses, gradient norms at the start and end, and how many distinct classes
    the model predicts on the test split."""
    m, steps, epochs = run.metrics, run.steps, run.epochs
    n_classes = len(run.classes)
    chance_loss = float(np.log(n_classes))
    finite = epochs["train_loss"].dropna()
    last_loss = float(finite.iloc[-1]) if len(finite) else float("nan")
    preds = run.predictions()["predictions"]
    counts = np.bincount(preds, minlength=n_classes)
    norms = steps["grad_norm"].dropna() if "grad_norm" in steps else pd.Series(dtype=float)
    k = max(1, min(20, len(norms) // 10))
    if m.diverged:
        status = "diverged"
    elif last_loss > 0.97 * chance_loss and m.test_accuracy < 2 / n_classes:
        status = "stalled"
    else:
        status = "learned"
    return {"status": status, "final train loss": last_loss, "chance loss (ln C)": chance_loss,
            "grad norm, first steps": float(norms.head(k).median()) if len(norms) else None,
            "grad norm, last steps": float(norms.tail(k).median()) if len(norms) else None,
            "distinct predicted classes": int((counts > 0).sum()),
            "share of the most predicted class": float(counts.max() / max(1, counts.sum())),
            "test acc": m.test_accuracy, "chance acc (1/C)": 1 / n_classes}


def diagnosis_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """:func:`training_diagnosis` of every run, one row each."""
    return pd.DataFrame([{"run": study.runs[n].label, **training_diagnosis(r)} for n, r in results.items()])
