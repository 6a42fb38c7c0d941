"""Decode and cached-reload times of the data sets that decode image files, on real data:
an image-folder copy of Tiny-ImageNet (links to its JPEGs, in the ``train/<class>/*``,
``test/<class>/*`` layout) and the CelebA copy under DATA_DIR, with a projection to full CelebA.

    python benchmarks/decode_cache.py --data-dir DIR [--out outputs/decode-cache] [--work TMP]

The caches are written under a scratch folder (``--work``), never beside the real data: both data
sets are read through links from there. Writes OUT/decode_cache.md and .csv.

Full CelebA is projected from the measured copy: decoding time per image scaled by the pixel
ratio (JPEG decoding is linear in pixels) and by the image count, and the cache's size from its
shape; the reload of a split from the cache is projected from the measured read speed of the
cache in bytes per second (a fresh machine's page cache holds none of it; this one's may).
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cnnvit import config as config_mod  # noqa: E402
from cnnvit.datasets import celeba, dataset_from_config  # noqa: E402
from cnnvit.datasets.cache import image_size  # noqa: E402
from cnnvit.datasets import tiny_imagenet as tin  # noqa: E402
from gpu_check import table_md  # noqa: E402 (this folder is on the path of a script run from it)

FULL_CELEBA = (202_599, 218, 178)  # images, height, width of img_align_celeba


def link_tiny_as_image_folder(tiny: Path, dest: Path) -> int:
    """``dest/train/<wnid>/*`` and ``dest/test/<wnid>/*`` as links to Tiny-ImageNet's JPEGs."""
    wnids, train_files, train_y, val_files, val_y = tin.list_files(tiny)
    for split, files, labels in (("train", train_files, train_y), ("test", val_files, val_y)):
        for f, y in zip(files, labels):
            folder = dest / split / wnids[y]
            folder.mkdir(parents=True, exist_ok=True)
            os.symlink(f, folder / os.path.basename(f))
    return len(train_files) + len(val_files)


def timed_load(overrides: list[str]) -> tuple[float, object]:
    cfg = config_mod.build(overrides=overrides)
    start = time.perf_counter()
    ds = dataset_from_config(cfg.data, 0)
    return time.perf_counter() - start, ds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "decode-cache")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="cnnvit-decode-", dir=args.work))
    rows = []
    try:
        folder = work / "tiny-as-folders"
        n = link_tiny_as_image_folder(tin.find_folder(args.data_dir / "tiny-imagenet-200"), folder)
        keys = ["data.name=imagefolder", f"data.root={folder}"]
        first, ds = timed_load(keys)
        again, _ = timed_load(keys)
        rows.append({"data set": "image folder (Tiny-ImageNet JPEGs, 64x64)", "images": n,
                     "first decode s": first, "cached reload s": again, "cache MB": _cache_mb(folder),
                     "note": f"{len(ds.classes)} classes; load = decode + split + statistics"})

        src = celeba.find_folder(args.data_dir / "celeba")
        copy = work / "celeba"
        copy.mkdir()
        for entry in src.iterdir():  # links: the cache goes into the scratch copy, not the real data
            os.symlink(entry, copy / entry.name)
        attrs = celeba.parse_attributes(copy / celeba.ATTR_FILE)
        images = celeba.find_image_folder(copy, attrs.files)
        h, w = image_size(images / attrs.files[0])
        start = time.perf_counter()
        pixels, _ = celeba.decoded_images(copy, attrs, images, None)
        first = time.perf_counter() - start
        start = time.perf_counter()
        pixels, _ = celeba.decoded_images(copy, attrs, images, None)
        again = time.perf_counter() - start
        start = time.perf_counter()
        split = np.array(pixels[np.arange(0, len(pixels), 1)])  # every image read back from the cache
        read = time.perf_counter() - start
        rows.append({"data set": f"CelebA copy ({w}x{h})", "images": len(attrs.files), "first decode s": first,
                     "cached reload s": again, "cache MB": _cache_mb(copy),
                     "note": f"reading all {split.nbytes / 2**20:.0f} MB from the cache: {read:.2f} s"})
        n_full, h_full, w_full = FULL_CELEBA
        scale = n_full / len(attrs.files) * (h_full * w_full) / (h * w)
        full_bytes = n_full * h_full * w_full * 3
        rows.append({"data set": f"full CelebA ({w_full}x{h_full}), projected", "images": n_full,
                     "first decode s": first * scale, "cached reload s": again,
                     "cache MB": full_bytes / 2**20,
                     "note": f"decode x {scale:.1f} (count x pixels); reading the training 80% from the cache at "
                             f"the measured {split.nbytes / read / 2**20:.0f} MB/s: "
                             f"{0.8 * full_bytes / (split.nbytes / read):.0f} s"})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "decode_cache.csv", index=False)
    text = ("# Decode and cached reload (CPU, this machine)\n\n"
            + table_md(table) + "\n")
    (args.out / "decode_cache.md").write_text(text)
    print(text)
    return 0


def _cache_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in (folder / ".cnnvit-cache").rglob("*.npy")) / 2**20


if __name__ == "__main__":
    sys.exit(main())
