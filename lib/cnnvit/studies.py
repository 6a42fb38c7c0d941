"""Study-specific helpers for the notebooks: data previews and conclusions computed from results,
so that no notebook holds a function definition or types a number in by hand."""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import pandas as pd
import torch

from .augment import Preprocess, make_generator
from .config import Config
from .data import dataset_from_config
from .run import Run
from .study import Study


def preview_preprocessing(cfg: Config, n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` test images (one per class where possible) before and after the run's training-time
    preprocessing: (uint8 N x H x W x 3, float N x H' x W' x 3, class names)."""
    data_cfg = dataclasses.replace(cfg.data, train_subset=10 * n, test_subset=10 * n)
    ds = dataset_from_config(data_cfg, cfg.seed)
    picks = [int(np.flatnonzero(ds.test_labels == c)[0]) for c in np.unique(ds.test_labels)][:n]
    before = ds.test_images[picks]
    prep = Preprocess.from_config(cfg.data, ds.mean, ds.std)
    after = prep.train(torch.from_numpy(before), make_generator(seed, torch.device("cpu")))
    return before, after.permute(0, 2, 3, 1).numpy(), [ds.classes[ds.test_labels[i]] for i in picks]


def per_class_table(results: Mapping[str, Run], labels: Mapping[str, str]) -> pd.DataFrame:
    """Per-class F1 of each run (columns: runs, rows: classes)."""
    return pd.DataFrame({labels[name]: {c: v["f1"] for c, v in run.metrics["test"]["per_class"].items()}
                         for name, run in results.items()})


# what a good recipe should reach on real CIFAR-10 (published recipes: ResNet-18 95-96%,
# small ViTs from scratch with strong augmentation above 90%)
STRONG_TARGETS = {"strong_resnet18": 0.95, "strong_vit": 0.90}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def cifar10_conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 1, every number read from the runs."""
    acc = {name: run.metrics["test_accuracy"] for name, run in results.items()}
    ep = {name: run.metrics["epochs"] for name, run in results.items()}
    prof = study.profile
    model = {name: f"`{spec.config.model.name}`" for name, spec in study.runs.items()}
    lines = [f"*Computed from the runs of profile `{prof}`; every number below is test accuracy on "
             f"the run's full test split ({next(iter(results.values())).metrics['dataset']['n_test']} "
             f"images).*", ""]
    if {"seed_resnet18", "seed_vit_b16"} <= acc.keys():
        r, v = acc["seed_resnet18"], acc["seed_vit_b16"]
        lines.append(f"- **Seed settings.** ResNet-18 ({model['seed_resnet18']}) reached {_pct(r)} in "
                     f"{ep['seed_resnet18']} epochs and ViT-B/16 ({model['seed_vit_b16']}) {_pct(v)} in "
                     f"{ep['seed_vit_b16']} epochs: the CNN leads by "
                     f"{100 * (r - v):+.1f} points (the seed reported about 88% vs 65%, +23 points, "
                     f"after 20-25 and 30-45 epochs).")
    if {"seed_vit_b16", "ablation_vit_b16_no_preprocessing"} <= acc.keys():
        a, b = acc["seed_vit_b16"], acc["ablation_vit_b16_no_preprocessing"]
        verdict = "helped" if a > b else "did not help"
        lines.append(f"- **Preprocessing ablation.** With the seed's flip and normalisation ViT-B/16 reached "
                     f"{_pct(a)}, without them {_pct(b)}: preprocessing {verdict} here "
                     f"({100 * (a - b):+.1f} points; the seed reported that it helps).")
    for family, seed_run, strong_run in (("ResNet-18", "seed_resnet18", "strong_resnet18"),
                                         ("ViT", "seed_vit_b16", "strong_vit")):
        if {seed_run, strong_run} <= acc.keys():
            s, g = acc[seed_run], acc[strong_run]
            target = STRONG_TARGETS.get(strong_run)
            met = "" if target is None or prof != "paper" else (
                f" Target at least {_pct(target)}: {'met' if g >= target else 'not met'}.")
            lines.append(f"- **{family}, strong recipe** ({model[strong_run]}). {_pct(g)} after "
                         f"{ep[strong_run]} epochs at 32 px, "
                         f"against {_pct(s)} for the seed setting ({100 * (g - s):+.1f} points).{met}")
    if prof != "paper":
        lines.append("")
        lines.append(f"*Profile `{prof}` uses small stand-in models and data: these numbers test the "
                     f"pipeline and say nothing about CIFAR-10. See the `paper` profile for the study.*")
    return "\n".join(lines)
