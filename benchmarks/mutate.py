"""Mutation testing for cnnvit: do the tests notice a plausible one-line bug?

Each *mutant* below is one explicit, reviewable edit of the library: an exact piece of one line
in one file, what replaces it, what bug that stands for, and the test files that ought to notice.
For every mutant the script copies the working tree (tracked files and untracked files that git
does not ignore, so tests being written now are included) into a scratch folder, plants that one
bug there, and runs only the mutant's tests against the scratch library:

    python -m pytest -x -q -p no:cacheprovider TESTS     (cwd: the scratch copy, its lib/ first on
                                                          PYTHONPATH, OMP_NUM_THREADS=1)

The working tree itself is never modified. This is a habit for before a release or after a
change to the tests, not part of ``make test`` (it retrains tiny models once per mutant).

How to run (from the repository root)::

    .venv/bin/python benchmarks/mutate.py --list              # the mutants, where each applies
    .venv/bin/python benchmarks/mutate.py --check             # each applies once and compiles; tests collect
    .venv/bin/python benchmarks/mutate.py                     # everything (tens of minutes)
    .venv/bin/python benchmarks/mutate.py --area splits --area resume --json mutants.json
    .venv/bin/python benchmarks/mutate.py --mutant split-val-on-test --keep   # one, keep the scratch copy

Options: ``--area NAME`` and ``--mutant NAME`` (repeatable) select; ``--jobs N`` runs N mutants at
once (each in its own scratch copy; default 1); ``--timeout S`` per mutant; ``--keep`` leaves the
scratch copies and the pytest log of every mutant; ``--no-baseline`` skips the unmutated run.

How to read the result. First the selected tests run once without any mutant (the *baseline*):
they must pass, or every "kill" would mean nothing, so a failing baseline stops the run. Then one
line per mutant:

* ``KILLED``: a test failed with the bug planted; the table names the first failing test. Good.
* ``SURVIVED``: all of the mutant's tests passed with the bug in place. Either a test is missing
  (write one that fails for this bug, then rerun ``--mutant NAME``) or the mutant does not change
  behaviour the project cares about (then fix or drop the mutant, and say why in its description).
* ``TIMEOUT``: the tests ran past ``--timeout`` (the bug probably made training hang or crawl).
* ``ERROR``: pytest could not run (usage error, crash); see the log (``--keep``).
* ``NO TESTS``: none of the mutant's test files exists any more; update its test list.

The table is followed by the survivors (their bug and edit) and the mutation score, killed / run.
The full run takes roughly 30-60 minutes on 2 cores (the baseline alone runs the union of every
mutant's tests, three study notebooks included); ``--json OUT`` keeps every result, with the tail
of each pytest log. Exit status: 0 when every mutant was killed; 1 when some survived, timed out,
errored or had no tests; 2 when the setup is wrong (a mutant's original text is not found exactly
once, the baseline fails, the scratch copy is not what gets imported, or, with ``--check``, a test
target does not collect).

A mutant's ``original`` must occur exactly once in its file: when the code changes and a mutant no
longer applies, ``--check`` (and every run) says which, so the list is kept honest by hand.
"""
from __future__ import annotations

import argparse
import ast
import glob
import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

log = logging.getLogger("mutate")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TIMEOUT_S = 900  # the slowest sets (a notebook study, test_science) take minutes; a hang must not stall the run


@dataclass(frozen=True)
class Mutant:
    """One planted bug: in ``file`` (relative to the repository root), the exact text ``original``
    (part of one line, found exactly once in the file) becomes ``replacement``."""

    name: str
    area: str
    file: str
    original: str
    replacement: str
    description: str
    tests: tuple[str, ...]  # pytest arguments: files, node ids (file::test) or globs (tests/test_x*.py)


# ----------------------------------------------------------------------------- the mutants
# The test lists are the files whose subject the bug belongs to; new test files of an area are
# added here by hand (a missing file is skipped with a warning, a glob may name files to come).

EPOCH = "lib/cnnvit/training/epoch.py"  # one epoch: steps, evaluation, early stopping
LOOP = "lib/cnnvit/training/loop.py"  # the run, top to bottom
STATE = "lib/cnnvit/training/state.py"  # what a checkpoint holds
IDENTITY = "lib/cnnvit/training/identity.py"  # which config is which run
SUMMARY = "lib/cnnvit/training/summary.py"  # metrics.json
SCIENCE = "tests/test_science.py"
T_TRAIN = "tests/test_train.py"
LABELS = "tests/test_labels.py"
OWN_DATA = "tests/test_own_data.py"
INGREDIENTS = "tests/test_ingredients.py"
PARAM_GROUPS = "tests/test_param_groups.py"

MUTANTS: tuple[Mutant, ...] = (
    # --------------------------------------------------------------- splits: which data each number comes from
    Mutant("split-val-on-test", "splits", EPOCH,
           "t.modules.eval_model, s.val_x, s.val_y, s.prep, tc, t.device)",
           "t.modules.eval_model, s.test_x, s.test_y, s.prep, tc, t.device)",
           "the per-epoch validation numbers are computed on the test split",
           (SCIENCE, T_TRAIN)),
    Mutant("split-step-val-on-test", "splits", EPOCH,
           "evaluate.evaluate_split(t.modules.eval_model, t.splits.val_x, t.splits.val_y,",
           "evaluate.evaluate_split(t.modules.eval_model, t.splits.test_x, t.splits.test_y,",
           "train.val_every_steps validation (val_steps.csv) is computed on the test split",
           (SCIENCE, T_TRAIN, "tests/test_celeba.py")),
    Mutant("split-early-stop-on-test", "splits", EPOCH,
           'if best is None or row["val_accuracy"] > best["val_accuracy"]:',
           'if best is None or evaluate.evaluate_split(t.modules.eval_model, t.splits.test_x, t.splits.test_y, '
           't.splits.prep, tc, t.device)[2] > best["val_accuracy"]:',
           "early stopping picks the best epoch by test accuracy (model selection on the test split)",
           (SCIENCE, T_TRAIN)),
    Mutant("split-majority-from-test", "splits", SUMMARY,
           'majority_baseline=majority_baseline(ds.train_labels, ds.test_labels),',
           'majority_baseline=majority_baseline(ds.test_labels, ds.test_labels),',
           "the majority-class baseline takes its majority class from the test split, not the training split",
           (SCIENCE, T_TRAIN, "tests/test_metrics.py", "tests/test_celeba.py")),
    Mutant("split-val-kept-in-train", "splits", "lib/cnnvit/datasets/base.py",
           "keep = np.setdiff1d(np.arange(len(ds.train_labels)), val)",
           "keep = np.arange(len(ds.train_labels))",
           "hold_out_validation copies the validation images but leaves them in the training split too",
           (SCIENCE, T_TRAIN, "tests/test_data.py", "tests/test_tiny_imagenet.py", LABELS)),

    # --------------------------------------------------------------- resume: what a checkpoint carries
    Mutant("resume-ema-not-saved", "resume", STATE,
           '"best": self.best, "ema": None if ema is None else ema.module.state_dict()}, path)',
           '"best": self.best, "ema": None}, path)',
           "the checkpoint omits the EMA weights: a resumed run restarts the average from the live weights",
           (SCIENCE, T_TRAIN, "tests/test_study.py")),
    Mutant("resume-best-not-restored", "resume", STATE,
           'self.best = ckpt.get("best")',
           "self.best = None",
           "early stopping's best epoch so far is not restored on resume",
           (SCIENCE, T_TRAIN, "tests/test_study.py")),
    Mutant("resume-val-log-not-restored", "resume", STATE,
           'self.val_log = ckpt.get("val_log", [])',
           "self.val_log = []",
           "the step-level validation log (val_steps.csv) restarts empty on resume",
           (SCIENCE, T_TRAIN, "tests/test_study.py")),
    Mutant("resume-lr-not-identity", "resume", IDENTITY,
           '"model.pretrained_path", "train.tensorboard",',
           '"model.pretrained_path", "optim.lr", "train.tensorboard",',
           "optim.lr is exempt from a run's identity: a run with another learning rate counts as done",
           (SCIENCE, T_TRAIN, "tests/test_study.py")),
    Mutant("resume-flip-not-identity", "resume", IDENTITY,
           'IDENTITY_EXEMPT = {"data.root", "data.download",',
           'IDENTITY_EXEMPT = {"data.root", "data.download", "data.flip",',
           "data.flip is exempt from a run's identity: a run without flips is reused for one with flips",
           (SCIENCE, T_TRAIN, "tests/test_study.py")),

    # --------------------------------------------------------------- augmentation: the options reach the batches
    Mutant("aug-erasing-never", "augmentation", "lib/cnnvit/training/augment.py",
           "if self.random_erasing > 0:",
           "if self.random_erasing > 1:",
           "random erasing is never applied (a probability is never above 1)",
           ("tests/test_augment.py", SCIENCE, T_TRAIN)),
    Mutant("aug-policy-result-dropped", "augmentation", "lib/cnnvit/training/augment.py",
           "x = apply_policy(x, self.policy, self.policy_group)",
           "apply_policy(x, self.policy, self.policy_group)",
           "the AutoAugment / RandAugment result is computed and thrown away: the policy is ignored",
           ("tests/test_augment.py", SCIENCE, T_TRAIN)),
    Mutant("aug-stream-seed-without-epoch", "augmentation", EPOCH,
           "stream = (t.aug_seed * 1000 + epoch) * dist.world_size + dist.rank",
           "stream = t.aug_seed * 1000 * dist.world_size + dist.rank",
           "the augmentation stream is not reseeded per epoch: every epoch gets the same crops and flips",
           (SCIENCE, T_TRAIN, "tests/test_augment.py", "tests/test_distributed.py")),
    Mutant("aug-order-seed-without-epoch", "augmentation", EPOCH,
           "cfg.seed * 1000 + epoch, True,",
           "cfg.seed * 1000, True,",
           "the data order is not reseeded per epoch: every epoch visits the images in the same order",
           (SCIENCE, T_TRAIN, "tests/test_augment.py", "tests/test_distributed.py")),
    Mutant("aug-flip-probability", "augmentation", "lib/cnnvit/training/augment.py",
           "device=gen.device).to(x.device) < 0.5",
           "device=gen.device).to(x.device) < 0.25",
           "random_flip mirrors a quarter of the images instead of half",
           ("tests/test_augment.py", SCIENCE)),

    # --------------------------------------------------------------- schedules: per optimizer step, under grad_accum
    Mutant("sched-total-in-micro-batches", "schedules", LOOP,
           "Schedule.for_run(cfg.sched, cfg.optim.lr, steps_per_epoch, tc.epochs)",
           "Schedule.for_run(cfg.sched, cfg.optim.lr, steps_per_epoch, tc.epochs * tc.grad_accum)",
           "the schedule's length counts micro-batches: stretched by train.grad_accum (never decays fully)",
           ("tests/test_schedules.py", SCIENCE, T_TRAIN)),
    Mutant("sched-warmup-in-wrong-unit", "schedules", "lib/cnnvit/training/schedules.py",
           "warmup_steps=int(sched.warmup_epochs * steps_per_epoch)",
           "warmup_steps=int(sched.warmup_epochs * steps_per_epoch * 2)",
           "warmup is counted in another unit (as micro-batches would be under grad_accum=2): twice too long",
           ("tests/test_schedules.py", SCIENCE, T_TRAIN)),
    Mutant("sched-loss-not-averaged", "schedules", EPOCH,
           "(loss / t.cfg.train.grad_accum).backward()",
           "loss.backward()",
           "the loss is not divided by train.grad_accum: accumulated gradients are grad_accum times too large",
           (SCIENCE, T_TRAIN)),
    Mutant("sched-cosine-floor-absolute", "schedules", "lib/cnnvit/training/schedules.py",
           "floor = min_lr_ratio * base_lr",
           "floor = min_lr_ratio",
           "the cosine floor is sched.min_lr_ratio itself, not that fraction of optim.lr",
           ("tests/test_schedules.py", SCIENCE, T_TRAIN)),
    Mutant("sched-layer-decay-ignored", "schedules", EPOCH,
           'g["lr"] = lr * g.get("lr_scale", 1.0)',
           'g["lr"] = lr',
           "each parameter group's lr_scale (layer-wise decay) is ignored: every layer gets the full rate",
           ("tests/test_weights.py", SCIENCE, T_TRAIN)),

    # --------------------------------------------------------------- labels: each image keeps its own label
    Mutant("label-hair-columns-swapped", "labels", "lib/cnnvit/datasets/celeba.py",
           'HAIR_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")',
           'HAIR_ATTRIBUTES = ("Black_Hair", "Brown_Hair", "Blond_Hair", "Gray_Hair")',
           "CelebA hair5: the Blond and Brown attribute columns are swapped against the class names",
           (LABELS, "tests/test_celeba.py")),
    Mutant("label-test-subset-truncated", "labels", "lib/cnnvit/datasets/base.py",
           "test_x, test_y = test_x[keep], test_y[keep]",
           "test_x, test_y = test_x[keep], test_y[:len(keep)]",
           "a test subset keeps the chosen images but the first labels: labels come apart from their images",
           (LABELS, "tests/test_data.py", "tests/test_tiny_imagenet.py")),
    Mutant("label-split-csv-swapped", "labels", "lib/cnnvit/datasets/celeba.py",
           '(("train", train), ("val", val), ("test", test))}',
           '(("train", train), ("val", test), ("test", val))}',
           "CelebA's split_files (written to split.csv) name the test images as val and the val images as test",
           (LABELS, "tests/test_celeba.py")),
    Mutant("label-tiny-val-files-sorted", "labels", "lib/cnnvit/datasets/tiny_imagenet.py",
           'decode_to_npy(val_files, into / "test_x.npy",',
           'decode_to_npy(sorted(val_files), into / "test_x.npy",',
           "Tiny-ImageNet val images decoded in file-name order, labels in annotation order (val_10 < val_2)",
           (LABELS, "tests/test_tiny_imagenet.py")),
    Mutant("label-tiny-wnids-sorted", "labels", "lib/cnnvit/datasets/tiny_imagenet.py",
           "index = {w: i for i, w in enumerate(wnids)}",
           "index = {w: i for i, w in enumerate(sorted(wnids))}",
           "Tiny-ImageNet labels number the sorted wnids while class names follow wnids.txt's order",
           (LABELS, "tests/test_tiny_imagenet.py")),

    # --------------------------------------------------------------- metrics: the numbers reported
    Mutant("metric-macro-is-micro", "metrics", "lib/cnnvit/training/metrics.py",
           'labels=ids, average="macro",',
           'labels=ids, average="micro",',
           "macro precision / recall / F1 are computed as micro averages (equal to accuracy)",
           ("tests/test_metrics.py", "tests/test_celeba.py")),
    Mutant("metric-top5-is-top4", "metrics", "lib/cnnvit/training/metrics.py",
           '"top5_accuracy": topk_accuracy(logits, labels, 5),',
           '"top5_accuracy": topk_accuracy(logits, labels, 4),',
           "the reported top-5 accuracy is top-4",
           ("tests/test_metrics.py", T_TRAIN)),
    Mutant("metric-multilabel-threshold-on-logits", "metrics", "lib/cnnvit/training/metrics.py",
           "pred = (prob >= threshold).astype(np.int64)",
           "pred = (logits >= threshold).astype(np.int64)",
           "multi-label predictions threshold the logits at 0.5 (p >= 0.62) instead of the probabilities",
           ("tests/test_metrics.py", "tests/test_celeba.py")),

    # --------------------------------------------------------------- conclusions: the sentences the report prints
    Mutant("concl-preprocessing-verdict-flipped", "conclusions", "lib/cnnvit/studies/cifar10_vit_vs_resnet.py",
           'helped = verdict(a - b, noise, "preprocessing helped here", "preprocessing did not help here")',
           'helped = verdict(b - a, noise, "preprocessing helped here", "preprocessing did not help here")',
           "study 1 says preprocessing helped when the ablation without it scored higher",
           ("tests/test_conclusions_cifar10.py",
            "tests/test_notebooks.py::test_study_smoke_runs_and_reports[01_cifar10_vit_vs_resnet]")),
    Mutant("concl-celeba-best-is-worst", "conclusions", "lib/cnnvit/studies/common.py",
           'return max(results, key=lambda n: results[n].metrics.test_accuracy)',
           'return min(results, key=lambda n: results[n].metrics.test_accuracy)',
           "best_run (study 5's best run of each task) names the least accurate run as the most accurate",
           ("tests/test_conclusions_tiny_imagenet.py",
            "tests/test_notebooks.py::test_study_smoke_runs_and_reports[05_celeba_simple_classifier]")),
    Mutant("concl-ablation-worst-first", "conclusions", "lib/cnnvit/studies/tiny_imagenet_transformers.py",
           '.sort_values("acc@1", ascending=False, kind="stable")',
           '.sort_values("acc@1", ascending=True, kind="stable")',
           "study 3's augmentation ablation is sorted worst first: 'best' and 'worst' variants are swapped",
           ("tests/test_conclusions_transformers.py",
            "tests/test_notebooks.py::test_study_smoke_runs_and_reports[03_tiny_imagenet_transformers]")),
    # --------------------------------------------------------------- own data, the cache and the host feed
    Mutant("split-imagefolder-test-also-trains", "splits", "lib/cnnvit/datasets/imagefolder.py",
           'idx["test"], idx["train"] = idx["train"][test], idx["train"][rest]',
           'idx["test"], idx["train"] = idx["train"][test], idx["train"]',
           "a single image-folder tree's test share stays in the training split too (test images trained on)",
           (OWN_DATA,)),
    Mutant("label-imagefolder-subset-labels", "labels", "lib/cnnvit/datasets/imagefolder.py",
           "idx[split], labels[split] = idx[split][keep], labels[split][keep]",
           "idx[split], labels[split] = idx[split][keep], labels[split][:len(keep)]",
           "an image-folder subset keeps the chosen images but the first labels: labels come apart from images",
           (OWN_DATA,)),
    Mutant("cache-key-ignores-decode-size", "labels", "lib/cnnvit/datasets/base.py",
           'extra=f"decode_size={decode_size}{key_extra}"',
           'extra=key_extra',
           "the decoded cache is reused for another data.decode_size: images of the old size come back",
           (OWN_DATA,)),
    Mutant("feed-host-labels-shifted", "labels", "lib/cnnvit/training/feed.py",
           "self.labels.index_select(0, idx).to(self.device), None)",
           "self.labels.index_select(0, idx.roll(1)).to(self.device), None)",
           "the host feed (data.on_device=false) pairs each image with another image's label",
           ("tests/test_placement.py",)),
    # --------------------------------------------------------------- recipe: each regularisation ingredient alone
    Mutant("recipe-ls-dropped", "recipe", "lib/cnnvit/training/losses.py",
           "return task_loss(logits, y, self.weight, self.label_smoothing)",
           "return task_loss(logits, y, self.weight)",
           "without mixup/cutmix, train.label_smoothing never reaches the loss (plain cross-entropy)",
           (INGREDIENTS,)),
    Mutant("recipe-mix-alphas-swapped", "recipe", "lib/cnnvit/training/setup.py",
           "Mixup(mixup_alpha=tc.mixup, cutmix_alpha=tc.cutmix,",
           "Mixup(mixup_alpha=tc.cutmix, cutmix_alpha=tc.mixup,",
           "train.mixup drives CutMix and train.cutmix drives Mixup (each single case is the other)",
           (INGREDIENTS,)),
    Mutant("recipe-mix-ls-dropped", "recipe", "lib/cnnvit/training/setup.py",
           "label_smoothing=tc.label_smoothing, num_classes=",
           "label_smoothing=0.0, num_classes=",
           "with mixup/cutmix on, the soft targets are not label-smoothed",
           (INGREDIENTS,)),
    Mutant("recipe-ema-decay-squared", "recipe", "lib/cnnvit/training/setup.py",
           "return ModelEmaV3(model, decay=decay)",
           "return ModelEmaV3(model, decay=decay ** 2)",
           "the weight average uses decay d**2 instead of train.model_ema",
           (INGREDIENTS, T_TRAIN)),
    Mutant("recipe-ema-every-other-step", "recipe", EPOCH,
           "if m.ema is not None:",
           "if m.ema is not None and step % 2 == 0:",
           "the weight average skips every other optimizer step",
           (INGREDIENTS,)),
    Mutant("recipe-ema-warm-start-twice", "recipe", EPOCH,
           "m.ema.update(m.model, step=step + 1)",
           "m.ema.update(m.model, step=step)",
           "the 0-based step reaches timm's warm start: the first two updates copy, step 1's weights are lost",
           (INGREDIENTS,)),
    Mutant("recipe-ld-no-weight-decay-dropped", "recipe", "lib/cnnvit/models/weights.py",
           "no_weight_decay_list=skip",
           "no_weight_decay_list=set()",
           "with model.layer_decay the model's no_weight_decay() names (cls token, position table) get weight decay",
           (PARAM_GROUPS,)),
    Mutant("recipe-ld-1d-params-decayed", "recipe", "lib/cnnvit/models/weights.py",
           "layer_decay=layer_decay)",
           "layer_decay=layer_decay, weight_decay_exclude_1d=False)",
           "with model.layer_decay norms and biases (1-d parameters) get weight decay",
           (PARAM_GROUPS,)),
    # --------------------------------------------------------------- metrics: the aggregates
    Mutant("metric-macro-is-weighted", "metrics", "lib/cnnvit/training/metrics.py",
           'labels=ids, average="macro",',
           'labels=ids, average="weighted",',
           "macro precision / recall / F1 are support-weighted means over classes",
           ("tests/test_metrics.py",)),
    Mutant("metric-multilabel-macro-f1-weighted", "metrics", "lib/cnnvit/training/metrics.py",
           '"macro_f1": float(f.mean()),',
           '"macro_f1": float(np.average(f, weights=support)),',
           "multi-label macro F1 weighted by each label's positives",
           ("tests/test_metrics.py",)),
    Mutant("metric-macro-auroc-first-label", "metrics", "lib/cnnvit/training/metrics.py",
           '"macro_auroc": float(np.mean(defined(auc)))',
           '"macro_auroc": float(defined(auc)[0])',
           "multi-label macro auROC is the first label's auROC only",
           ("tests/test_metrics.py",)),
    Mutant("metric-macro-auroc-weighted", "metrics", "lib/cnnvit/training/metrics.py",
           '"macro_auroc": float(np.mean(defined(auc)))',
           '"macro_auroc": float(np.average(defined(auc), weights=[s for s, b in zip(support, both) if b]))',
           "multi-label macro auROC weighted by each label's positives",
           ("tests/test_metrics.py",)),
    # --------------------------------------------------------------- partial reports and seed repeats
    Mutant("partial-complete-run-follows-its-source", "partial", "lib/cnnvit/studies/study.py",
           "} - stopped - complete",
           "} - stopped",
           "a complete run whose run:NAME source cannot train is left out (dropped, or the study fails to start)",
           ("tests/test_partial.py",)),
    Mutant("partial-complete-checked-for-inputs", "partial", "lib/cnnvit/studies/study.py",
           'study.run_dir(name)) == RunStatus.COMPLETE',
           'study.run_dir(name)) == "never"',
           "a complete run is checked for data and device too: it is dropped when its data is gone",
           ("tests/test_partial.py",)),
    Mutant("seeds-repeat-label-without-seed", "seeds", "lib/cnnvit/studies/study.py",
           'label=f"{run.label} (seed {s})"',
           'label=f"{run.label} (seed)"',
           "a repeat's label no longer names its seed: the repeats share one label in the tables",
           ("tests/test_seeds.py",)),
    # --------------------------------------------------------------- reliability (issue 26)
    Mutant("lock-not-taken", "reliability", "lib/cnnvit/training/files.py",
           "fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)",
           "pass",
           "no lock on the run folder: a second process trains beside the first and mixes their files",
           ("tests/test_reliability.py",)),
    Mutant("metrics-json-not-atomic", "reliability", "lib/cnnvit/training/loop.py",
           'files.write_text_atomic(t.out / "metrics.json", json.dumps(summary.to_json(), indent=1))',
           '(t.out / "metrics.json").write_text(json.dumps(summary.to_json(), indent=1))',
           "metrics.json written in place: a full disk leaves a torn file that marks the run complete",
           ("tests/test_reliability.py",)),
    Mutant("atomic-write-in-place", "reliability", "lib/cnnvit/training/files.py",
           'tmp = path.with_name(f".{path.name}.tmp")',
           "tmp = path",
           "the atomic write writes the file itself: a failed write tears the previous file",
           ("tests/test_reliability.py",)),
    Mutant("unreadable-metrics-complete", "reliability", "lib/cnnvit/training/identity.py",
           "    if read_metrics(run_dir) is not None:",
           "    if (run_dir / \"metrics.json\").exists():",
           "an unreadable metrics.json still marks the run complete (and every later call crashes)",
           ("tests/test_reliability.py",)),
    Mutant("checkpoint-unpickled", "reliability", "lib/cnnvit/training/state.py",
           'torch.load(path, map_location="cpu", weights_only=True)',
           'torch.load(path, map_location="cpu", weights_only=False)',
           "the checkpoint is unpickled: a payload in a shared run folder runs code",
           ("tests/test_reliability.py",)),
    Mutant("sixteen-bit-clipped", "reliability", "lib/cnnvit/datasets/cache.py",
           'if im.mode.startswith("I;16") or im.mode == "I":',
           "if False:",
           "16-bit greyscale images are clipped at 255 (a mid-grey PNG decodes white)",
           ("tests/test_reliability.py",)),
    Mutant("dead-fillers-kept", "reliability", "lib/cnnvit/datasets/cache.py",
           "        if not _alive(int(parts[-2])):",
           "        if False:",
           "a killed filler's temporary cache folder stays forever",
           ("tests/test_reliability.py",)),
    Mutant("takeover-of-finished-epochs", "reliability", "lib/cnnvit/training/identity.py",
           "        if holds_work(run_dir):",
           "        if False:",
           "a folder holding finished epochs is taken over by another config",
           ("tests/test_reliability.py",)),
    # --------------------------------------------------------------- laptop recipes (issue 25)
    Mutant("flip-tta-ignored", "recipes", "lib/cnnvit/training/evaluate.py",
           "        if flip:  # dim -1 is the width whatever the memory format",
           "        if False:",
           "train.eval_flip evaluates the images alone",
           ("tests/test_train.py",)),
    # --------------------------------------------------------------- fidelity to the seeds (issue 27)
    Mutant("any-run-compared-with-the-seed", "seeds", "lib/cnnvit/studies/core.py",
           "        if mine != seeds:",
           "        if False:",
           "the summary sets a laptop run's result against the seed's figure",
           ("tests/test_report.py",)),
    Mutant("seed-figures-of-another-source", "seeds", "lib/cnnvit/studies/common.py",
           "    given = spec.seed_figures.get(source, {})",
           "    given = next(iter(spec.seed_figures.values()), {})",
           "a table shows the paper's figure in the reproduction's column",
           ("tests/test_seed_figures.py",)),
    Mutant("study-3-on-the-last-epoch", "seeds", "lib/cnnvit/studies/tiny_imagenet_transformers.py",
           'SEED_METRIC = ("best epoch", best_epoch_accuracy)',
           'SEED_METRIC = ("best epoch", lambda run: run.metrics.test_accuracy)',
           "study 3's paper figures are set against the last epoch",
           ("tests/test_report.py",)),
    Mutant("gmacs-as-flops", "seeds", "lib/cnnvit/studies/tiny_imagenet_transformers.py",
           '                         "GMACs / image": None if flops is None else flops / 2,',
           '                         "GMACs / image": flops,',
           "the efficiency table calls FLOPs multiply-adds",
           ("tests/test_seed_figures.py",)),
    # the printed report (issue 30)
    Mutant("cells-break-inside-words", "layout", "lib/cnnvit/report/render.py",
           "vertical-align: top; overflow-wrap: normal; word-break: normal; hyphens: manual; }",
           "vertical-align: top; overflow-wrap: anywhere; word-break: break-all; hyphens: manual; }",
           "a wide table fits the page by cutting words in two ('inpu t px')",
           ("tests/test_report_layout.py",)),
    Mutant("figures-uncapped", "layout", "lib/cnnvit/report/render.py",
           "  img { max-height: 225mm; width: auto; max-width: 100%; object-fit: contain; }",
           "  img { width: auto; max-width: 100%; }",
           "a tall figure runs off the foot of its page",
           ("tests/test_report_layout.py",)),
    Mutant("no-landscape-pass", "layout", "lib/cnnvit/report/render.py",
           '    for level in ("1", "2"):  # smaller type for the tables too wide; then landscape for those still so',
           '    for level in ("1",):  # smaller type for the tables too wide; then landscape for those still so',
           "a table too wide even in small type is cut at the page's edge",
           ("tests/test_report_layout.py",)),
    Mutant("formats-reset", "layout", "lib/cnnvit/studies/tables.py",
           "    styler = table.style.format({c: given.get(c, plain) for c in table.columns}, na_rep=na_rep,",
           "    styler = table.style.format(given, na_rep=na_rep,",
           "cells not named in a table's formats print as Python values (0.090000, True)",
           ("tests/test_tables.py",)),
    Mutant("summary-row-per-seed", "layout", "lib/cnnvit/studies/common.py",
           "        if name not in results or (spec.replica_of and not seeds):  # not run here; or a repeat",
           "        if name not in results:  # not run here; or a repeat",
           "the results table repeats a setting once per seed",
           ("tests/test_seeds.py",)),
    # each thing in one place (issue 29): a data set's options, studies found, runs from runs
    Mutant("source-repr-without-options", "extend", "lib/cnnvit/datasets/base.py",
           "        keys = {**{f: getattr(self, f) for f in sorted(_source_fields(type(self)))}, **self.option_values()}",
           "        keys = {f: getattr(self, f) for f in sorted(_source_fields(type(self)))}",
           "runs that differ only in a data set's option (data.task) share one loaded data set",
           ("tests/test_extending.py",)),
    Mutant("option-rule-ignored", "extend", "lib/cnnvit/datasets/base.py",
           '        problem = f.metadata["rule"].problem(value)',
           "        problem = None",
           "a data set's option takes any value its type allows (data.task=hairx, a share of 1.5)",
           ("tests/test_extending.py", "tests/test_own_data.py")),
    Mutant("options-not-dumped", "extend", "lib/cnnvit/config.py",
           '        d["data"].update(self.data.own_option_values())',
           "        pass",
           "a data set's option is left out of config.yaml and of the run's identity",
           ("tests/test_extending.py", "tests/test_science.py")),
    Mutant("from-ignored", "extend", "lib/cnnvit/config.py",
           '        if "from" not in spec:',
           '        if True:',
           "a run's from: is accepted but it starts from base: alone",
           ("tests/test_params_from.py",)),
    Mutant("discovery-skips-studies", "extend", "lib/cnnvit/studies/registry.py",
           'if path.stem != "__init__" and _declares_study(path)]',
           'if path.stem != "__init__" and _declares_study(path) and not path.stem.startswith("c")]',
           "a study module of the package is not found (no conclusions, no groups checked)",
           ("tests/test_conclusions_common.py",)),
)

AREAS = tuple(dict.fromkeys(m.area for m in MUTANTS))


# ----------------------------------------------------------------------------- applying a mutant

class SetupError(RuntimeError):
    """The mutants or the scratch copy are not as they must be; nothing meaningful can run."""


def occurrences(text: str, sub: str) -> list[int]:
    """Start offsets of every (also overlapping) occurrence of ``sub`` in ``text``."""
    found, start = [], text.find(sub)
    while start != -1:
        found.append(start)
        start = text.find(sub, start + 1)
    return found


def mutate_text(m: Mutant, text: str) -> tuple[str, int]:
    """The file text with the mutant planted, and the line it is on; raises :class:`SetupError`
    unless ``m.original`` occurs exactly once."""
    where = occurrences(text, m.original)
    if len(where) != 1:
        raise SetupError(f"{m.name}: the original text occurs {len(where)} times in {m.file} "
                         f"(must be exactly once; update the mutant): {m.original!r}")
    i = where[0]
    return text[:i] + m.replacement + text[i + len(m.original):], text.count("\n", 0, i) + 1


def check_definitions(mutants: Sequence[Mutant]) -> None:
    """Static sanity of the list: unique names, one-line edits that change something, some tests."""
    seen: set[str] = set()
    for m in mutants:
        problems = []
        if m.name in seen:
            problems.append("duplicate name")
        seen.add(m.name)
        if not m.original or "\n" in m.original or "\n" in m.replacement:
            problems.append("original and replacement must be non-empty parts of one line")
        if m.original == m.replacement:
            problems.append("replacement equals original")
        if not m.tests:
            problems.append("no tests listed")
        if problems:
            raise SetupError(f"mutant {m.name}: " + "; ".join(problems))


def verify_in(root: Path, m: Mutant) -> int:
    """Plant ``m`` in a temporary copy of its file under ``root``: it must apply exactly once,
    compile, and change the code's syntax tree (not only a comment). Returns its line number."""
    import py_compile

    path = root / m.file
    if not path.is_file():
        raise SetupError(f"{m.name}: {m.file} does not exist")
    text = path.read_text(encoding="utf-8")
    mutated, line = mutate_text(m, text)
    with tempfile.TemporaryDirectory(prefix="mutate-check-") as tmp:
        src = Path(tmp) / path.name
        src.write_text(mutated, encoding="utf-8")
        try:
            py_compile.compile(str(src), cfile=str(Path(tmp) / (path.name + "c")), doraise=True)
        except py_compile.PyCompileError as exc:
            raise SetupError(f"{m.name}: the mutated {m.file} does not compile: {exc.msg}") from exc
    if ast.dump(ast.parse(mutated)) == ast.dump(ast.parse(text)):
        raise SetupError(f"{m.name}: the edit does not change the code of {m.file} (comment or whitespace only)")
    return line


def resolve_tests(root: Path, tests: Sequence[str]) -> tuple[list[str], list[str]]:
    """(pytest arguments that exist under ``root``, entries that name nothing there)."""
    found, missing = [], []
    for entry in tests:
        path, sep, node = entry.partition("::")
        if any(c in path for c in "*?["):
            matches = sorted(str(Path(p).relative_to(root)) for p in glob.glob(str(root / path)))
            if not matches:
                missing.append(entry)
            found += [p + sep + node for p in matches]
        elif (root / path).exists():
            found.append(entry)
        else:
            missing.append(entry)
    return list(dict.fromkeys(found)), missing


# ----------------------------------------------------------------------------- scratch copies

def working_tree_files(repo: Path) -> list[str]:
    """Tracked files and untracked files not ignored by git, as they are in the working tree now."""
    out = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         check=True, capture_output=True).stdout.decode()
    return sorted({f for f in out.split("\0") if f})


def make_copy(repo: Path, dest: Path) -> int:
    """Copy the working tree's files into ``dest``; returns how many."""
    n = 0
    for rel in working_tree_files(repo):
        src = repo / rel
        if src.is_dir() or not (src.exists() or src.is_symlink()):  # a submodule, or deleted in the tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
        n += 1
    return n


def scratch_env(root: Path) -> dict[str, str]:
    """The environment of every pytest run: the scratch library first on the path, one thread,
    and no bytecode caches (a mutant and its restored original can share size and mtime second,
    and a stale .pyc would then run the wrong code)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "lib")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # (no MPLBACKEND: it would reach the notebooks' kernels and stop their inline figures)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    return env


def check_import_location(python: str, root: Path) -> None:
    """The tests must import the scratch library, not the working tree's (installed editable)."""
    res = subprocess.run([python, "-c", "import cnnvit; print(cnnvit.__file__)"], cwd=root, env=scratch_env(root),
                         capture_output=True, text=True, timeout=300)
    where = res.stdout.strip()
    if res.returncode != 0 or not Path(where).resolve().is_relative_to((root / "lib").resolve()):
        raise SetupError(f"the tests would not import the scratch copy: `import cnnvit` in {root} gives "
                         f"{where or res.stderr.strip()[-500:]}")


# ----------------------------------------------------------------------------- running pytest

@dataclass
class Outcome:
    """What one pytest run of a mutant's tests gave."""

    status: str  # KILLED, SURVIVED, TIMEOUT, ERROR, NO TESTS
    seconds: float = 0.0
    returncode: Optional[int] = None
    killed_by: list[str] = field(default_factory=list)  # pytest's FAILED / ERROR summary lines
    tests: list[str] = field(default_factory=list)
    missing_tests: list[str] = field(default_factory=list)
    log: Optional[str] = None
    tail: str = ""


def run_pytest(python: str, root: Path, targets: Sequence[str], timeout: float, log_path: Path,
               stop_first: bool = True) -> tuple[Optional[int], float, str]:
    """Run pytest on ``targets`` in ``root``: (return code or None on timeout, seconds, output)."""
    basetemp = log_path.with_suffix(".tmp")
    shutil.rmtree(basetemp, ignore_errors=True)
    cmd = [python, "-m", "pytest", *(["-x"] if stop_first else []), "-q", "-p", "no:cacheprovider",
           f"--basetemp={basetemp}", *targets]
    t0 = time.time()
    with open(log_path, "w", encoding="utf-8") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        # own session: on timeout the whole group goes (papermill kernels, torchrun workers)
        proc = subprocess.Popen(cmd, cwd=root, env=scratch_env(root), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc: Optional[int] = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
        except BaseException:  # Ctrl-C reaches our group only: the tests' own session must go too
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    shutil.rmtree(basetemp, ignore_errors=True)
    return rc, time.time() - t0, log_path.read_text(encoding="utf-8", errors="replace")


def failures(output: str) -> list[str]:
    """pytest's short summary lines of failed or erroring tests (with -ra)."""
    return [ln.strip() for ln in output.splitlines() if ln.startswith(("FAILED ", "ERROR "))]


def classify(rc: Optional[int], output: str) -> str:
    if rc is None:
        return "TIMEOUT"
    if rc == 0:
        return "SURVIVED"
    if rc == 1:
        return "KILLED"
    if rc == 2 and failures(output):  # a collection error caused by the mutant (an import fails)
        return "KILLED"
    if rc == 5:
        return "NO TESTS"
    return "ERROR"


class Workspace:
    """One scratch copy of the repository, used by one mutant at a time."""

    def __init__(self, root: Path, logs: Path) -> None:
        self.root, self.logs = root, logs

    def run_mutant(self, m: Mutant, python: str, timeout: float) -> Outcome:
        targets, missing = resolve_tests(self.root, m.tests)
        for entry in missing:
            log.warning("%s: test %s not found in the working tree; skipped", m.name, entry)
        if not targets:
            return Outcome("NO TESTS", missing_tests=missing)
        path = self.root / m.file
        original = path.read_text(encoding="utf-8")
        mutated, _ = mutate_text(m, original)
        path.write_text(mutated, encoding="utf-8")
        try:
            log_path = self.logs / f"{m.name}.log"
            rc, secs, output = run_pytest(python, self.root, targets, timeout, log_path)
        finally:
            path.write_text(original, encoding="utf-8")  # the next mutant starts from the original
        status = classify(rc, output)
        return Outcome(status, secs, rc, failures(output), targets, missing, str(log_path),
                       "\n".join(output.splitlines()[-15:]))


# ----------------------------------------------------------------------------- reporting

def fmt_s(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{seconds:.1f}s"


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def short_failure(lines: list[str], width: int = 110) -> str:
    if not lines:
        return ""
    first = lines[0].removeprefix("FAILED ").removeprefix("ERROR ")
    return first if len(first) <= width else first[:width - 3] + "..."


def list_mutants(mutants: Sequence[Mutant]) -> None:
    rows = []
    for m in mutants:
        try:
            line = str(verify_in(REPO, m))
        except SetupError as exc:
            line = "BROKEN: " + str(exc).split(": ", 1)[1][:60]
        rows.append([m.name, m.area, f"{m.file}:{line}", m.description])
    print(table(rows, ["mutant", "area", "where", "bug"]))
    print()
    for m in mutants:
        print(f"{m.name}:\n    - {m.original}\n    + {m.replacement}\n    tests: {' '.join(m.tests)}")


def check(mutants: Sequence[Mutant], python: str, keep: bool) -> int:
    """Apply every mutant to a scratch copy and compile it, and collect (not run) their tests;
    report what does not apply."""
    base = Path(tempfile.mkdtemp(prefix="cnnvit-mutate-check-"))
    try:
        root = base / "repo"
        n = make_copy(REPO, root)
        log.info("scratch copy of %d files in %s", n, root)
        rows, bad = [], 0
        for m in mutants:
            try:
                where, result = f"{m.file}:{verify_in(root, m)}", "ok"
            except SetupError as exc:
                where, result, bad = m.file, "FAIL: " + str(exc).split(": ", 1)[1], bad + 1
            targets, missing = resolve_tests(root, m.tests)
            if not targets:
                result += " (no test file exists)"
            elif missing:
                result += f" (missing tests: {', '.join(missing)})"
            rows.append([m.name, m.area, where, result])
        print(table(rows, ["mutant", "area", "where", "check"]))
        print(f"\n{len(mutants) - bad}/{len(mutants)} mutants apply exactly once and compile")
        # the test lists must name tests pytest can find (a renamed test makes a node id stale)
        check_import_location(python, root)
        targets = list(dict.fromkeys(t for m in mutants for t in resolve_tests(root, m.tests)[0]))
        res = subprocess.run([python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *targets],
                             cwd=root, env=scratch_env(root), capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            bad += 1
            print(f"the mutants' tests do not all collect (pytest exit {res.returncode}):\n  "
                  + "\n  ".join((res.stdout + res.stderr).strip().splitlines()[-15:]))
        else:
            n_tests = sum(1 for ln in res.stdout.splitlines() if "::" in ln)
            print(f"their {len(targets)} test targets collect: {n_tests} tests")
        return 2 if bad else 0
    finally:
        if keep:
            log.info("kept %s", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


def run(mutants: Sequence[Mutant], python: str, jobs: int, timeout: float, keep: bool,
        baseline: bool, json_out: Optional[Path]) -> int:
    t_start = time.time()
    base = Path(tempfile.mkdtemp(prefix="cnnvit-mutate-"))
    logs = base / "logs"
    logs.mkdir()
    try:
        first = base / "repo-0"
        n = make_copy(REPO, first)
        log.info("scratch copy of %d files from %s in %s", n, REPO, first)
        for m in mutants:  # all must apply before any test runs
            verify_in(first, m)
        check_import_location(python, first)

        base_outcome = None
        if baseline:
            targets = list(dict.fromkeys(t for m in mutants for t in resolve_tests(first, m.tests)[0]))
            log.info("baseline: the selected tests without any mutant (%d targets)...", len(targets))
            rc, secs, output = run_pytest(python, first, targets, timeout * max(1, len(mutants)),
                                          logs / "baseline.log", stop_first=False)
            base_outcome = {"returncode": rc, "seconds": secs, "failures": failures(output), "tests": targets}
            if rc != 0:
                raise SetupError("the baseline fails (without any mutant), so kills would mean nothing:\n  "
                                 + "\n  ".join(failures(output)[:20] or output.splitlines()[-20:])
                                 + f"\nlog: {logs / 'baseline.log'} (use --keep to keep it; --no-baseline to skip)")
            log.info("baseline passed in %s", fmt_s(secs))

        spaces: queue.Queue[Workspace] = queue.Queue()
        spaces.put(Workspace(first, logs))
        for i in range(1, min(jobs, len(mutants))):
            shutil.copytree(first, base / f"repo-{i}", symlinks=True)
            spaces.put(Workspace(base / f"repo-{i}", logs))

        done, lock = [0], threading.Lock()
        results: dict[str, Outcome] = {}

        def one(m: Mutant) -> None:
            ws = spaces.get()
            try:
                log.info("%s (%s): running %s", m.name, m.area, " ".join(m.tests))
                out = ws.run_mutant(m, python, timeout)
            finally:
                spaces.put(ws)
            with lock:
                done[0] += 1
                results[m.name] = out
                note = f" by {short_failure(out.killed_by, 90)}" if out.killed_by else ""
                log.info("[%d/%d] %-40s %-8s in %s%s  (elapsed %s)", done[0], len(mutants), m.name, out.status,
                         fmt_s(out.seconds), note, fmt_s(time.time() - t_start))

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for f in [pool.submit(one, m) for m in mutants]:
                f.result()

        rows, counts = [], {}
        for i, m in enumerate(mutants, 1):
            o = results[m.name]
            counts[o.status] = counts.get(o.status, 0) + 1
            note = short_failure(o.killed_by) if o.status == "KILLED" else (
                "tests pass with the bug: " + " ".join(o.tests) if o.status == "SURVIVED" else
                f"pytest exit {o.returncode}" if o.status == "ERROR" else "")
            rows.append([str(i), m.name, m.area, o.status, fmt_s(o.seconds), note])
        ran = sum(v for k, v in counts.items() if k != "NO TESTS")
        killed = counts.get("KILLED", 0)
        print()
        print(table(rows, ["#", "mutant", "area", "result", "time", "first failing test / note"]))
        print()
        survivors = [m for m in mutants if results[m.name].status == "SURVIVED"]
        if survivors:
            print("Survivors (the bug went unnoticed):")
            for m in survivors:
                print(f"  {m.name} [{m.area}]: {m.description}\n    {m.file}: {m.original!r} -> {m.replacement!r}")
            print()
        print(f"mutation score: {killed}/{ran} killed" + (f" ({100 * killed / ran:.0f}%)" if ran else "")
              + "; " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items()))
              + f"; {fmt_s(time.time() - t_start)} in all")
        if json_out:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps({
                "repo": str(REPO), "python": python, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "seconds": time.time() - t_start, "timeout_s": timeout, "baseline": base_outcome,
                "summary": {"killed": killed, "ran": ran, "counts": counts},
                "mutants": [{**asdict(m), "tests": list(m.tests),
                             "result": {**asdict(results[m.name]), "log": results[m.name].log if keep else None}}
                            for m in mutants],
            }, indent=1))
            log.info("wrote %s", json_out)
        return 0 if killed == len(mutants) else 1
    finally:
        if keep:
            log.info("kept the scratch copies and logs in %s", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


def select(areas: Sequence[str], names: Sequence[str]) -> list[Mutant]:
    unknown = [a for a in areas if a not in AREAS] + [n for n in names if n not in {m.name for m in MUTANTS}]
    if unknown:
        raise SetupError(f"unknown area or mutant: {', '.join(unknown)} (areas: {', '.join(AREAS)}; --list for names)")
    if not areas and not names:
        return list(MUTANTS)
    return [m for m in MUTANTS if m.area in areas or m.name in names]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Areas: " + ", ".join(AREAS) + ". See the module docstring for how to read the result.")
    ap.add_argument("--area", action="append", default=[], help="run this area's mutants (repeatable)")
    ap.add_argument("--mutant", action="append", default=[], help="run this mutant (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the mutants and where they apply, then exit")
    ap.add_argument("--check", action="store_true",
                    help="only apply each mutant to a scratch copy and compile it, and collect (not run) the tests")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run at once, each in its own scratch copy")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per mutant's pytest run")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies and pytest logs")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the selected tests")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ap.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists()
                    else sys.executable, help="the interpreter that runs pytest (default: the project's .venv)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        check_definitions(MUTANTS)
        mutants = select(args.area, args.mutant)
        if args.list:
            list_mutants(mutants)
            return 0
        if args.check:
            return check(mutants, args.python, args.keep)
        return run(mutants, args.python, args.jobs, args.timeout, args.keep, not args.no_baseline, args.json)
    except SetupError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
