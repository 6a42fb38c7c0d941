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


def per_class_table(results: Mapping[str, Run], labels: Mapping[str, str]) -> pd.DataFrame:
    """Per-class F1 of each run (columns: runs, rows: classes)."""
    return pd.DataFrame({labels[name]: {c: v["f1"] for c, v in run.metrics["test"]["per_class"].items()}
                         for name, run in results.items()})


# what a good recipe should reach on real CIFAR-10 (published recipes: ResNet-18 95-96%,
# small ViTs from scratch with strong augmentation above 90%)
STRONG_TARGETS = {"strong_resnet18": 0.95, "strong_vit": 0.90}


def _profile_caveat(study: Study, uses: str, about: str) -> list[str]:
    """The closing line of a non-paper profile's conclusions: what it runs on, and that its
    numbers test the pipeline only."""
    if study.profile == "paper":
        return []
    return ["", f"*Profile `{study.profile}` uses {uses}: these numbers test the pipeline and say "
                f"nothing about {about}.*"]


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


# ----------------------------------------------------------------------- study 2: Tiny-ImageNet

# the effects study 2 isolates, each as the seed-setting runs that show it (params run names)
TINY_IMAGENET_EFFECTS = {
    "BatchNorm (VGG19)": ("vgg19_bn", "vgg19"),
    "Depth (ResNet)": ("resnet18", "resnet34", "resnet50"),
    "Skip connections": ("resnet50", "resnet50_noskip", "resnet34"),
    "Cardinality": ("resnet50", "resnext50"),
    "CNN vs T2T-ViT": ("resnext50", "t2t_vit"),
}


def effect_panels(study: Study, results: Mapping[str, Run],
                  effects: Mapping[str, tuple[str, ...]] = TINY_IMAGENET_EFFECTS
                  ) -> dict[str, dict[str, pd.DataFrame]]:
    """``{effect: {run label: per-epoch log}}`` for the effects whose runs all exist."""
    return {effect: {study.runs[n].label: results[n].epochs for n in names}
            for effect, names in effects.items() if all(n in results for n in names)}


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
    if m.get("diverged"):
        status = "diverged"
    elif last_loss > 0.97 * chance_loss and m["test_accuracy"] < 2 / n_classes:
        status = "stalled"
    else:
        status = "learned"
    return {"status": status, "final train loss": last_loss, "chance loss (ln C)": chance_loss,
            "grad norm, first steps": float(norms.head(k).median()) if len(norms) else None,
            "grad norm, last steps": float(norms.tail(k).median()) if len(norms) else None,
            "distinct predicted classes": int((counts > 0).sum()),
            "share of the most predicted class": float(counts.max() / max(1, counts.sum())),
            "test acc": m["test_accuracy"], "chance acc (1/C)": 1 / n_classes}


def diagnosis_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """:func:`training_diagnosis` of every run, one row each."""
    return pd.DataFrame([{"run": study.runs[n].label, **training_diagnosis(r)} for n, r in results.items()])


def class_accuracy_extremes(run: Run, k: int = 8) -> pd.DataFrame:
    """The ``k`` classes the run recognises best and worst on the test split (recall), by name."""
    per_class = run.metrics["test"]["per_class"]
    s = pd.Series({c: v["recall"] for c, v in per_class.items()}).sort_values(ascending=False)
    top, bottom = s.head(k), s.tail(k)[::-1]
    return pd.DataFrame({"best class": top.index, "recall": top.values,
                         "worst class": bottom.index, "recall ": bottom.values})


def _pts(a: float, b: float) -> str:
    return f"{100 * (a - b):+.1f} points"


def tiny_imagenet_conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 2, every number read from the runs and the parameter file."""
    acc = {n: r.metrics["test_accuracy"] for n, r in results.items()}
    seed = {n: s.reported for n, s in study.runs.items()}
    have = lambda *names: all(n in acc for n in names)  # noqa: E731 - a local predicate
    def vs_seed(n: str) -> str:
        return f"{_pct(acc[n])}" + (f" (seed {_pct(seed[n])})" if seed.get(n) is not None else "")

    first = next(iter(results.values()))
    lines = [f"*Computed from the runs of profile `{study.profile}`: top-1 accuracy on the "
             f"{first.metrics['dataset']['n_test']}-image test split, each model picked at its last "
             f"epoch (the validation split was only watched).*", ""]
    if have("vgg19_bn", "vgg19"):
        d = training_diagnosis(results["vgg19"])
        if d["status"] == "stalled":
            why = (f"it **stalled**: its training loss ended at {d['final train loss']:.3f}, against "
                   f"ln C = {d['chance loss (ln C)']:.3f} for a uniform guess, and it predicts "
                   f"{d['distinct predicted classes']} distinct class(es) on the test split")
            if d["grad norm, first steps"] is not None:
                why += (f"; its gradient norm went from {d['grad norm, first steps']:.2g} to "
                        f"{d['grad norm, last steps']:.2g}")
        elif d["status"] == "diverged":
            where = results["vgg19"].metrics["diverged"]
            why = f"it **diverged**: the loss became {where['loss']} at step {where['step']}"
        else:
            why = "it **did learn** here, unlike in the seed"
        lines.append(f"- **BatchNorm.** VGG19 with BatchNorm reached {vs_seed('vgg19_bn')}, without it "
                     f"{vs_seed('vgg19')}: {why}.")
    if have("resnet18", "resnet34", "resnet50"):
        order = [acc["resnet18"], acc["resnet34"], acc["resnet50"]]
        trend = "rises with depth" if order == sorted(order) else "does not rise monotonically with depth"
        lines.append(f"- **Depth.** ResNet-18 {vs_seed('resnet18')}, ResNet-34 {vs_seed('resnet34')}, "
                     f"ResNet-50 {vs_seed('resnet50')}: accuracy {trend} here.")
    if have("resnet50", "resnet50_noskip"):
        extra = f"; ResNet-34, of similar size, {_pct(acc['resnet34'])}" if "resnet34" in acc else ""
        seed_gap = (f" (the seed: {_pts(seed['resnet50_noskip'], seed['resnet50'])})"
                    if seed.get("resnet50") and seed.get("resnet50_noskip") else "")
        lines.append(f"- **Skip connections.** Removing them from ResNet-50 changes top-1 by "
                     f"{_pts(acc['resnet50_noskip'], acc['resnet50'])}{seed_gap}{extra}.")
    if have("resnet50", "resnext50"):
        seed_gap = (f" (the seed: {_pts(seed['resnext50'], seed['resnet50'])})"
                    if seed.get("resnet50") and seed.get("resnext50") else "")
        lines.append(f"- **Cardinality.** ResNeXt-50 32x4d against ResNet-50 at about the same size: "
                     f"{_pts(acc['resnext50'], acc['resnet50'])}{seed_gap}.")
    if have("resnext50", "t2t_vit"):
        gap = {n: results[n].epochs.dropna(subset=["val_loss"]) for n in ("resnext50", "t2t_vit")}
        gaps = {n: float(df["val_loss"].iloc[-1] - df["train_loss"].iloc[-1]) for n, df in gap.items()
                if len(df)}
        gap_text = ("; validation minus training loss at the end: " + ", ".join(
            f"{study.runs[n].label} {g:+.2f}" for n, g in gaps.items())) if gaps else ""
        native = (f"; at the native 64 px (16 tokens) T2T-ViT-t-14 reached {_pct(acc['t2t_vit_64'])}"
                  if "t2t_vit_64" in acc else "")
        lines.append(f"- **CNN vs T2T-ViT.** T2T-ViT-t-14 {vs_seed('t2t_vit')} against ResNeXt-50 "
                     f"{_pct(acc['resnext50'])}: {_pts(acc['t2t_vit'], acc['resnext50'])}{gap_text}{native}.")
    for name, spec in study.runs.items():
        if spec.role == "strong" and name in acc:
            base = name.removeprefix("strong_")
            cmp = f", against {_pct(acc[base])} for its seed setting ({_pts(acc[name], acc[base])})" \
                if base in acc else ""
            lines.append(f"- **Stronger recipe: {spec.label}.** {_pct(acc[name])}{cmp}.")
    lines += _profile_caveat(study, "tiny stand-in models on generated data", "Tiny-ImageNet")
    return "\n".join(lines)


def best_run(results: Mapping[str, Run]) -> str:
    """Name of the run with the highest test accuracy."""
    return max(results, key=lambda n: results[n].metrics["test_accuracy"])


def distributed_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """Runs trained in several processes: world size, backend, and the check that the ranks'
    shards of the first epoch were disjoint and covered it."""
    rows = []
    for name, run in results.items():
        info = run.metrics.get("distributed")
        if info:
            shards = info.get("shard_check", {})
            rows.append({"run": study.runs[name].label, "processes": info["world_size"],
                         "backend": info["backend"], "SyncBatchNorm": info["sync_bn"],
                         "images per rank (epoch 1)": shards.get("per_rank"),
                         "shards disjoint": shards.get("disjoint"), "epoch covered": shards.get("complete"),
                         "train img/s": round(run.metrics["train_images_per_s"]),
                         "test acc": run.metrics["test_accuracy"]})
    return pd.DataFrame(rows)


def factor_out_constants(table: pd.DataFrame, columns: tuple[str, ...] = ("input px", "data", "device")
                         ) -> tuple[pd.DataFrame, str]:
    """Drop the ``columns`` that hold one value for every row, and say that value once instead
    (a caption): keeps a wide table within a printed page."""
    same = [c for c in columns if c in table and table[c].nunique(dropna=False) == 1]
    caption = "; ".join(f"{c}: {table[c].iloc[0]}" for c in same)
    return table.drop(columns=same), (f"All runs: {caption}." if same else "")


# ----------------------------------------------------------------------- study 4: fine-tuning

# the seed's test-set figures for its frozen-backbone DeiT-B/16 (macro averages over classes)
FINETUNE_SEED = {"accuracy": 0.8523, "macro_precision": 0.8512, "macro_recall": 0.8507, "macro_f1": 0.8510}


def finetune_table(study: Study, results: Mapping[str, Run]) -> pd.DataFrame:
    """One row per run: where its weights came from, how much of it trained, when it stopped,
    and accuracy with macro precision, recall and F1 on the test split; the seed's figures in a
    row of their own."""
    rows = []
    for name, run in results.items():
        m, spec = run.metrics, study.runs[name]
        stop = m.get("early_stopping") or {}
        rows.append({"run": spec.label, "role": spec.role, "weights": m.get("weights", "").split(":")[0],
                     "trainable (M)": m.get("trainable_parameters", m["parameters"]) / 1e6,
                     "epochs run": m.get("epochs_run", m["epochs"]), "best epoch": stop.get("best_epoch"),
                     "accuracy": m["test"]["accuracy"], "precision": m["test"]["macro_precision"],
                     "recall": m["test"]["macro_recall"], "F1": m["test"]["macro_f1"],
                     "profile": study.profile})
    rows.append({"run": "Seed report (DeiT-B/16, frozen backbone)", "role": "seed",
                 "weights": "pretrained: ImageNet-1k (torch.hub)", "accuracy": FINETUNE_SEED["accuracy"],
                 "precision": FINETUNE_SEED["macro_precision"], "recall": FINETUNE_SEED["macro_recall"],
                 "F1": FINETUNE_SEED["macro_f1"], "profile": "seed"})
    return pd.DataFrame(rows)


def per_class_report(run: Run) -> pd.DataFrame:
    """Precision, recall, F1 and support of every class on the test split (sklearn's report)."""
    return pd.DataFrame(run.metrics["test"]["per_class"]).T.rename_axis("class")


def finetune_conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 4, every number read from the runs."""
    acc = {n: r.metrics["test_accuracy"] for n, r in results.items()}
    f1 = {n: r.metrics["test"]["macro_f1"] for n, r in results.items()}
    src = {n: r.metrics.get("weights", "") for n, r in results.items()}
    lines = [f"*Computed from the runs of profile `{study.profile}`: test split, each run's best "
             f"validation epoch where it stopped early.*", ""]
    if "seed_linear_probe" in acc:
        lines.append(f"- **Seed setting** (frozen backbone, new head): accuracy {_pct(acc['seed_linear_probe'])}, "
                     f"macro F1 {f1['seed_linear_probe']:.4f}, against the seed's "
                     f"{_pct(FINETUNE_SEED['accuracy'])} / {FINETUNE_SEED['macro_f1']:.4f}. Its weights: "
                     f"{src['seed_linear_probe'].split(':')[0]}.")
    for name in ("partial_finetune", "full_finetune"):
        if name in acc and "seed_linear_probe" in acc:
            lines.append(f"- **{study.runs[name].label}**: {_pct(acc[name])} "
                         f"({_pts(acc[name], acc['seed_linear_probe'])} against the frozen backbone).")
    if "scratch" in acc:
        best_pre = max((n for n in acc if n not in ("scratch", "pretrain")), key=acc.get, default=None)
        if best_pre:
            lines.append(f"- **Pretraining.** The same architecture from scratch reached {_pct(acc['scratch'])}; "
                         f"the best run from pretrained weights ({study.runs[best_pre].label}) "
                         f"{_pct(acc[best_pre])} ({_pts(acc[best_pre], acc['scratch'])}).")
    lines += _profile_caveat(study, "a tiny stand-in model, generated data and weights pretrained by this "
                                    "project on another generated task", "DeiT on CIFAR-10")
    return "\n".join(lines)


# ----------------------------------------------------------------------- study 3: transformers

TRANSFORMER_MODELS = ("swin", "vit_l", "cait", "deit", "deit_head_only")  # run names (params)
OPTIMIZER_RUNS = ("deit", "opt_sgd", "opt_sgd_nesterov")
BATCH_RUNS = ("bs_32", "bs_64", "deit")


def _setting(spec) -> str:
    m = spec.config.model
    what = {"none": "full fine-tuning", "head": "new head on a frozen backbone",
            "last_k": f"last {m.trainable_blocks} blocks fine-tuned"}[m.freeze]
    return what


def transformer_table(study: Study, results: Mapping[str, Run],
                      names: tuple[str, ...] = TRANSFORMER_MODELS) -> pd.DataFrame:
    """acc@1 and acc@5 of each model beside the paper's, and which setting produced it."""
    rows = []
    for n in names:
        if n in results:
            m, spec = results[n].metrics, study.runs[n]
            rows.append({"run": spec.label, "setting": _setting(spec), "weights": m.get("weights", "").split(":")[0],
                         "acc@1": m["test_accuracy"], "acc@5": m["test_top5"], "paper acc@1": spec.reported,
                         "vs paper (points)": None if spec.reported is None else 100 * (m["test_accuracy"] - spec.reported),
                         "epochs": m["epochs"], "profile": study.profile})
    return pd.DataFrame(rows)


def efficiency_table(study: Study, results: Mapping[str, Run],
                     names: tuple[str, ...] = TRANSFORMER_MODELS) -> pd.DataFrame:
    """Parameters, GFLOPs per image, checkpoint size, time per epoch, training images/s and peak
    GPU memory of each model's run (as measured by the run itself)."""
    rows = []
    for n in names:
        if n in results:
            m, ep = results[n].metrics, results[n].epochs
            rows.append({"run": study.runs[n].label, "params (M)": m["parameters"] / 1e6,
                         "GFLOPs / image": m.get("gflops_per_image"), "checkpoint (MB)": m.get("checkpoint_mb"),
                         "s / epoch": float(ep["epoch_time_s"].mean()), "train img/s": m["train_images_per_s"],
                         "peak GPU memory (GB)": m.get("peak_gpu_memory_gb"), "device": m["device"]})
    return pd.DataFrame(rows)


def ablation_table(study: Study, results: Mapping[str, Run], baseline: str = "deit",
                   prefix: str = "aug_") -> pd.DataFrame:
    """Each variant's acc@1 against the baseline run's (difference in points), best first."""
    if baseline not in results:
        return pd.DataFrame()
    base = results[baseline].metrics["test_accuracy"]
    rows = [{"variant": "default recipe", "acc@1": base, "vs default (points)": 0.0}]
    rows += [{"variant": study.runs[n].label.split(": ", 1)[-1], "acc@1": r.metrics["test_accuracy"],
              "vs default (points)": 100 * (r.metrics["test_accuracy"] - base)}
             for n, r in results.items() if n.startswith(prefix)]
    return pd.DataFrame(rows).sort_values("acc@1", ascending=False, kind="stable")


def transformers_conclusions(study: Study, results: Mapping[str, Run]) -> str:
    """Markdown conclusions of study 3, every number read from the runs."""
    acc = {n: r.metrics["test_accuracy"] for n, r in results.items()}
    lines = [f"*Computed from the runs of profile `{study.profile}`: top-1 on the test split (Tiny-ImageNet's "
             f"labelled val split in the paper profile), after the last epoch.*", ""]
    models = [n for n in TRANSFORMER_MODELS[:4] if n in acc]
    if models:
        ranked = sorted(models, key=acc.get, reverse=True)
        lines.append("- **Models** (full fine-tuning): " + ", ".join(
            f"{study.runs[n].label.split(',')[0]} {_pct(acc[n])}"
            + (f" (paper {_pct(study.runs[n].reported)})" if study.runs[n].reported else "") for n in ranked)
            + f". Best: {study.runs[ranked[0]].label.split(',')[0]}.")
    if {"deit", "deit_head_only"} <= acc.keys():
        lines.append(f"- **Frozen backbone vs fine-tuning** (DeiT): new head only {_pct(acc['deit_head_only'])}, "
                     f"everything fine-tuned {_pct(acc['deit'])} ({_pts(acc['deit'], acc['deit_head_only'])}).")
    opts = [n for n in OPTIMIZER_RUNS if n in acc]
    if len(opts) > 1:
        lines.append("- **Optimizers** (DeiT): " + ", ".join(
            f"{'AdamW' if n == 'deit' else study.runs[n].label.split(': ', 1)[-1]} {_pct(acc[n])}" for n in opts) + ".")
    table = ablation_table(study, results)
    if len(table) > 1:
        best, worst = table.iloc[0], table.iloc[-1]
        lines.append(f"- **Augmentation ablation** (DeiT, {len(table) - 1} variants): best "
                     f"\"{best['variant']}\" {_pct(best['acc@1'])}, worst \"{worst['variant']}\" "
                     f"{_pct(worst['acc@1'])} ({worst['vs default (points)']:+.1f} points against the default).")
    sizes = [n for n in BATCH_RUNS if n in acc]
    if len(sizes) > 1:
        lines.append("- **Batch size** (DeiT, effective): " + ", ".join(
            f"{128 if n == 'deit' else n.split('_')[1]}: {_pct(acc[n])}" for n in sizes) + ".")
    lines += _profile_caveat(study, "tiny stand-ins, generated data and weights this study pretrained on "
                                    "another generated task", "Tiny-ImageNet")
    return "\n".join(lines)


# ----------------------------------------------------------------------- study 5: CelebA

def _task_runs(study: Study, results: Mapping[str, Run], task: str) -> list[str]:
    return [n for n in results if study.runs[n].config.data.task == task]


def _weights(m: dict) -> str:
    source = m.get("weights", "")
    if not source.startswith("pretrained"):
        return "scratch"
    return "pretrained (this project)" if "by this project" in source else "pretrained"


def celeba_table(study: Study, results: Mapping[str, Run], task: str) -> pd.DataFrame:
    """One row per run of a CelebA task, with that task's metrics on the test split beside the
    majority-class baseline and the seed's figure. Binary: accuracy, balanced accuracy, precision,
    recall and F1 of the positive class, auROC. ``hair5``: accuracy, balanced accuracy, macro F1.
    ``multilabel``: mean per-label accuracy, exact match, macro F1, mean average precision."""
    rows = []
    for name in _task_runs(study, results, task):
        m, spec = results[name].metrics, study.runs[name]
        t = m["test"]
        # (no role column: the labels say "seed setting" or "stronger recipe", and the page is narrow)
        row = {"run": spec.label, "model": spec.config.model.name, "weights": _weights(m),
               "params (M)": m["parameters"] / 1e6, "epochs run": m.get("epochs_run", m["epochs"])}
        if task == "binary":
            positive = results[name].classes[1]
            pc = t["per_class"][positive]
            row.update({"accuracy": t["accuracy"], "balanced acc": t["balanced_accuracy"],
                        "precision": pc["precision"], "recall": pc["recall"], "F1": pc["f1"],
                        "auROC": t.get("auroc")})
        elif task == "hair5":
            row.update({"accuracy": t["accuracy"], "balanced acc": t["balanced_accuracy"], "macro F1": t["macro_f1"]})
        else:
            row.update({"mean acc": t["mean_accuracy"], "exact match": t["exact_match"], "macro F1": t["macro_f1"],
                        "mAP": t["mean_average_precision"]})
        row.update({"majority baseline": m["majority_baseline"], "seed reported": spec.reported,
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
            for a, v in run.metrics["test"]["per_label"].items()]
    return pd.DataFrame(rows).sort_values("AP", ascending=False, na_position="last").reset_index(drop=True)


def roc_curves(study: Study, results: Mapping[str, Run], names: list[str]) -> dict[str, dict]:
    """``{label: {"fpr", "tpr", "auroc"}}`` of two-class runs, for :func:`plots.plot_roc_curves`."""
    return {study.runs[n].label: {**results[n].metrics["test"]["roc_curve"], "auroc": results[n].metrics["test"]["auroc"]}
            for n in names if "roc_curve" in results[n].metrics["test"]}


def family_table(study: Study, results: Mapping[str, Run], names: list[str]) -> pd.DataFrame:
    """Model, parameters (M) and test accuracy of the named runs, for an accuracy-against-size plot."""
    return pd.DataFrame([{"model": study.runs[n].config.model.name, "params (M)": results[n].metrics["parameters"] / 1e6,
                          "accuracy": results[n].metrics["test_accuracy"], "run": study.runs[n].label}
                         for n in names])


def celeba_conclusions(study: Study, results: Mapping[str, Run], pretraining: tuple[str, str],
                       family: list[str]) -> str:
    """Markdown conclusions of study 5, every number read from the runs. ``pretraining`` names the
    (from scratch, pretrained) pair of runs; ``family`` the CNN runs ordered by size."""
    lines = [f"*Computed from the runs of profile `{study.profile}`, on each run's test split.*", ""]
    names = {"binary": "Binary", "hair5": "Five hair colours", "multilabel": "Multi-label"}
    for task, title in names.items():
        runs = _task_runs(study, results, task)
        if not runs:
            continue
        best = max(runs, key=lambda n: results[n].metrics["test_accuracy"])
        m = results[best].metrics
        what = "mean per-label accuracy" if task == "multilabel" else "accuracy"
        line = (f"- **{title}.** Highest test {what}: {study.runs[best].label}, {_pct(m['test_accuracy'])} against "
                f"{_pct(m['majority_baseline'])} for always answering the majority "
                f"({_pts(m['test_accuracy'], m['majority_baseline'])})")
        if task != "multilabel":
            line += f"; balanced accuracy {_pct(m['test']['balanced_accuracy'])}"
        else:
            line += f"; mAP {m['test']['mean_average_precision']:.3f}"
        reported = [(study.runs[n].label, study.runs[n].reported, results[n].metrics["test_accuracy"])
                    for n in runs if study.runs[n].reported is not None]
        if reported:
            line += ". Seed settings: " + "; ".join(f"{label} {_pct(ours)} (seed reported {_pct(rep)})"
                                                    for label, rep, ours in reported)
        if task == "binary" and reported:
            test_counts = results[best].data_info["class_counts"]["test"]
            line += (f". The seed's precision and recall imply about 50% positives (a balanced set); "
                     f"{_pct(test_counts[1] / max(1, sum(test_counts)))} of this test split are "
                     f"positive, so its accuracy compares with balanced accuracy here")
        lines.append(line + ".")
    scratch, pre = pretraining
    if scratch in results and pre in results:
        a, b = results[scratch].metrics, results[pre].metrics
        curves = {n: results[n].val_steps for n in pretraining}
        first = {n: (c["val_accuracy"].iloc[0] if len(c) else None) for n, c in curves.items()}
        early = (f" At the first validation ({int(curves[pre]['step'].iloc[0])} steps) it stood at "
                 f"{_pct(first[pre])} against {_pct(first[scratch])}." if all(v is not None for v in first.values()) else "")
        lines.append(f"- **Pretraining** ({study.runs[pre].label} against {study.runs[scratch].label}): "
                     f"{_pct(b['test_accuracy'])} against {_pct(a['test_accuracy'])} "
                     f"({_pts(b['test_accuracy'], a['test_accuracy'])}).{early}")
    fam = [n for n in family if n in results]
    if len(fam) > 2:
        t = family_table(study, results, fam)
        rho = t["params (M)"].rank().corr(t["accuracy"].rank())
        kinds = {n: _weights(results[n].metrics) for n in fam}
        mixed = "" if len(set(kinds.values())) == 1 else (" Their starting points differ (" + "; ".join(
            f"{study.runs[n].config.model.name}: {k}" for n, k in kinds.items()) + "), which this comparison mixes in.")
        lines.append(f"- **CNN size.** Over {len(fam)} CNNs ({', '.join(t['model'])}), the rank correlation "
                     f"of parameters and accuracy is {rho:+.2f} (+1: the larger, the more accurate, as the "
                     f"seed found).{mixed}")
    lines += _profile_caveat(study, "tiny stand-in models on a generated set in CelebA's format, and "
                                    "\"pretrained\" weights from a run of this study on another task", "CelebA")
    return "\n".join(lines)
