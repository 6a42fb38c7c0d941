"""Training throughput of every run of a study, measured by the real training loop.

Each run trains for 2 short epochs on a stratified subset; the second epoch's images/s (after
cuDNN autotuning and allocator warm-up) is reported. Usage:

    python benchmarks/throughput.py params/paper/01_cifar10_vit_vs_resnet.yaml \
        --set data.root=DIR --subset 10000 --out outputs/bench
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import pandas as pd

from cnnvit.studies import load_study
from cnnvit.training import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("params", type=Path)
    ap.add_argument("--set", nargs="+", action="extend", default=[])
    ap.add_argument("--runs", help="comma-separated subset of run names")
    ap.add_argument("--subset", type=int, default=10000, help="training images per epoch")
    ap.add_argument("--out", type=Path, help="write throughput.csv and .json here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = args.set + ["train.epochs=2", f"data.train_subset={args.subset}",
                            "data.test_subset=1000", "train.eval_every=2"]
    study = load_study(args.params, overrides, only=args.runs.split(",") if args.runs else None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in study.runs.items():
            run_dir = train(spec.config, Path(tmp) / name, name=name, progress=False)
            epochs = pd.read_csv(run_dir / "epochs.csv")
            m = json.loads((run_dir / "metrics.json").read_text())
            c = spec.config
            rows.append({"run": name, "model": c.model.name, "px": c.data.image_size or 32,
                         "batch": c.train.batch_size, "params_M": round(m["parameters"] / 1e6, 2),
                         "img_per_s": round(float(epochs["images_per_s"].iloc[-1])),
                         "s_per_50k_epoch": round(50000 / float(epochs["images_per_s"].iloc[-1]), 1),
                         "device": m["device"], "torch": m["torch"]})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.out / "throughput.csv", index=False)


if __name__ == "__main__":
    main()
