"""Training throughput of every run of a study: the library's loop beside a plain PyTorch loop.

Each run trains for 2 short epochs on a stratified subset through the real training loop (its
config as the study gives it, so with the defaults this machine resolves: bf16 or fp32,
channels-last, compiled or not); the second epoch's images/s is reported (the first warms the
allocator and, on CUDA, cuDNN's autotuner). Beside it, a plain loop trains the same model at the
same batch size on the same training images with the same optimizer, the way a minimal PyTorch
script does: fp32, channels-first, eager, each batch indexed from a uint8 tensor, scaled,
normalised and flipped at random. ``ratio`` is ours over plain; ``GFLOP/s`` is what our loop
reaches (3 x the forward FLOPs per image, a standard estimate of forward + backward). Usage:

    python benchmarks/throughput.py params/laptop/01_cifar10_vit_vs_resnet.yaml \
        --data-dir DATA_DIR --subset 10000 --out outputs/bench

Run it on a quiet machine: two PyTorch processes on a 2-core CPU slow each other far more than
twice.
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from cnnvit.config import Config
from cnnvit.datasets import dataset_from_config
from cnnvit.models import create_model
from cnnvit.studies import load_study
from cnnvit.training import train

PLAIN_WARMUP_STEPS = 5  # untimed steps before the plain loop's clock starts


def plain_loop(cfg: Config, steps: int) -> float:
    """Training images/s of the minimal fp32 eager loop for ``cfg``'s model, batch, data and
    optimizer, timed over ``steps`` optimizer steps after a few untimed ones."""
    ds = dataset_from_config(cfg.data, cfg.seed)
    images = torch.from_numpy(ds.train_images)  # N x H x W x 3 uint8
    labels = torch.from_numpy(ds.train_labels)
    mean = torch.tensor(ds.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255
    std = torch.tensor(ds.std, dtype=torch.float32).view(1, 3, 1, 1) * 255
    size = cfg.data.image_size
    net = create_model(cfg.model.name, len(ds.classes))
    net.train()
    opt_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cfg.optim.name]
    opt = opt_cls(net.parameters(), lr=cfg.optim.lr)
    bs = cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        idx = torch.randint(len(labels), (bs,), generator=gen)
        x = images[idx].permute(0, 3, 1, 2).float()
        x = (x - mean) / std
        if size and size != x.shape[-1]:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        flip = torch.rand(bs, generator=gen) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        y = labels[idx]
        out = net(x)
        loss = (F.binary_cross_entropy_with_logits(out, y.float()) if y.ndim == 2
                else F.cross_entropy(out, y))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(PLAIN_WARMUP_STEPS):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return bs * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("params", type=Path)
    ap.add_argument("--set", nargs="+", action="extend", default=[])
    ap.add_argument("--data-dir", type=Path, help="the folder holding the data sets (DATA_DIR)")
    ap.add_argument("--runs", help="comma-separated subset of run names")
    ap.add_argument("--subset", type=int, default=10000, help="training images per epoch")
    ap.add_argument("--no-plain", action="store_true", help="leave out the plain reference loop")
    ap.add_argument("--out", type=Path, help="write throughput.csv here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = args.set + ["train.epochs=2", f"data.train_subset={args.subset}",
                            "data.test_subset=1000", "train.eval_every=2", "train.val_every_steps=null",
                            "train.early_stop_patience=null"]
    study = load_study(args.params, overrides, only=args.runs.split(",") if args.runs else None,
                       data_dir=args.data_dir)
    rows = []
    seen: set[tuple] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in study.runs.items():
            c = spec.config
            key = (c.model.name, c.data.name, c.data.image_size, c.train.batch_size, c.optim.name,
                   c.model.freeze, c.train.amp)
            if spec.replica_of or key in seen:  # a seed repeat or the same model and batch again
                continue
            seen.add(key)
            c.model.pretrained_path = None  # a run's weights (run:NAME, a file) do not change its speed
            c.model.pretrained = False
            run_dir = train(c, Path(tmp) / name, name=name, progress=False)
            epochs = pd.read_csv(run_dir / "epochs.csv")
            m = json.loads((run_dir / "metrics.json").read_text())
            ours = float(epochs["images_per_s"].iloc[-1])
            row = {"run": name, "model": c.model.name, "px": c.data.image_size or 32,
                   "batch": c.train.batch_size, "params_M": round(m["parameters"] / 1e6, 2),
                   "compute": f"{m['compute']['autocast']}{' CL' if m['compute']['channels_last'] else ''}"
                              f"{' compiled' if m['compute']['compiled'] else ''}",
                   "ours_img_s": round(ours)}
            if m.get("gflops_per_image"):
                row["GFLOP/s"] = round(3 * m["gflops_per_image"] * ours, 1)
            if not args.no_plain and c.model.freeze == "none":
                plain = plain_loop(c, steps=max(10, args.subset // c.train.batch_size // 2))
                row.update(plain_img_s=round(plain), ratio=round(ours / plain, 2))
            row.update(device=m["device"], torch=m["torch"])
            rows.append(row)
            print(row, flush=True)
    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.out / "throughput.csv", index=False)


if __name__ == "__main__":
    main()
