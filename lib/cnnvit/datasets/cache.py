"""Image files decoded to uint8 arrays, and the decoded-data cache every data set that decodes
images shares (Tiny-ImageNet, CelebA, image folders).

Decoding runs in threads (PIL releases the GIL) and writes chunk by chunk into its output, so a
data set larger than memory decodes straight into a memory-mapped ``.npy`` file. Every file that
cannot be read is named in one error, after the pass, instead of the first one only.

A cache is a folder ``<prefix>-<key>/`` holding ``NAME.npy`` arrays and a ``complete`` mark, under
``<data folder>/.cnnvit-cache/`` (or, where the data folder is read-only, under the user's data
directory). Its key hashes the name, size and modification time of every source file and what
the decoding was asked for (e.g. ``data.decode_size``), so a changed, partial or differently
resized copy is decoded again. It is filled by one process into a temporary folder and renamed
into place: a reader never sees a cache in the making, and two processes filling it at once do not
mix their files. Arrays read back memory-mapped: a cached reload costs seconds whatever the size.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..errors import DatasetError

log = logging.getLogger(__name__)

CACHE_DIR = ".cnnvit-cache"
CHUNK = 2048  # images decoded per chunk: bounded memory, a progress step every few seconds
WORKERS = 8
MAX_NAMED = 10  # unreadable files named in one error (the rest counted)

Size = tuple[int, int]  # (height, width)


# --------------------------------------------------------------------------- decoding

def image_size(path: str | Path) -> Size:
    """(height, width) of an image file, from its header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.height, im.width
    except Exception as exc:
        raise DatasetError(f"unreadable image: {path}: {exc}") from exc


def _to_rgb(im):  # PIL.Image -> PIL.Image in mode RGB, 8 bits per channel
    """The image in 8-bit RGB, scaled from its own bit depth: PIL's ``convert("RGB")`` clips a
    16-bit greyscale image (modes I;16 and I, 0-65535) at 255 instead of scaling it, turning a
    mid-grey PNG white."""
    from PIL import Image

    if im.mode.startswith("I;16") or im.mode == "I":
        a = np.asarray(im, dtype=np.float64)
        if a.max(initial=0) > 65535 or a.min(initial=0) < 0:
            raise ValueError(f"{im.mode} pixels outside 0-65535 (min {a.min():.0f}, max {a.max():.0f})")
        im = Image.fromarray(np.rint(a * (255 / 65535)).astype(np.uint8), mode="L")
    elif im.mode == "F":  # 32-bit float pixels: read as 0-1 when they fit it, else as 0-255
        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 if a.max(initial=0) <= 1.0 else 1.0
        im = Image.fromarray(np.clip(np.rint(a * scale), 0, 255).astype(np.uint8), mode="L")
    return im.convert("RGB")


def _decode_one(path: str | Path, resize: Optional[Size]) -> np.ndarray | str:
    """The RGB pixels of one file (resized to ``resize`` when given), or the reason it failed."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = _to_rgb(im)
            if resize is not None and (im.height, im.width) != resize:
                # resized, not cropped, as data.image_size does on the device: nothing is cut off
                im = im.resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
            return np.asarray(im)
    except Exception as exc:  # truncated and foreign files fail in many ways inside PIL
        return f"{path}: {exc}"


def decode_into(files: Sequence[str | Path], out: np.ndarray, resize: Optional[Size] = None,
                workers: int = WORKERS, desc: Optional[str] = None) -> np.ndarray:
    """Decode ``files`` into ``out`` (uint8, N x H x W x 3, e.g. a memory-mapped ``.npy``), chunk
    by chunk. Without ``resize`` every image must already be H x W. Raises one
    :class:`DatasetError` naming every unreadable file, or the first image of another size."""
    size = tuple(out.shape[1:3])
    bad: list[str] = []
    interactive = sys.stderr.isatty()
    with ThreadPoolExecutor(workers) as pool, tqdm(
            total=len(files), desc=desc, unit="img", disable=desc is None or len(files) < CHUNK,
            file=sys.stderr, mininterval=0.5 if interactive else 15, ascii=not interactive) as bar:
        for start in range(0, len(files), CHUNK):
            chunk = files[start:start + CHUNK]
            for i, (path, arr) in enumerate(zip(chunk, pool.map(lambda p: _decode_one(p, resize), chunk))):
                if isinstance(arr, str):
                    bad.append(arr)
                elif arr.shape[:2] != size:
                    raise DatasetError(f"image {path} is {arr.shape[1]}x{arr.shape[0]}, expected "
                                       f"{size[1]}x{size[0]} like the others; set data.decode_size=N "
                                       f"to resize every image to N x N when decoding")
                else:
                    out[start + i] = arr
            bar.update(len(chunk))
    if bad:
        more = f" (and {len(bad) - MAX_NAMED} more)" if len(bad) > MAX_NAMED else ""
        raise DatasetError(f"{len(bad)} unreadable image(s){more}, remove or replace them:\n  "
                           + "\n  ".join(bad[:MAX_NAMED]))
    return out


def decode_images(files: Sequence[str | Path], size: Optional[Size] = None,
                  resize: Optional[Size] = None, workers: int = WORKERS) -> np.ndarray:
    """Decode image files to one uint8 N x H x W x 3 array in memory. ``resize``: every image
    resized to it; else all must share one size (``size``, or the first image's). Grayscale and
    palette images are converted to RGB; unreadable files are named in the error."""
    if not files:
        return np.zeros((0, *(resize or size or (32, 32)), 3), np.uint8)
    shape = resize or size or image_size(files[0])
    return decode_into(files, np.empty((len(files), *shape, 3), np.uint8), resize, workers)


# --------------------------------------------------------------------------- the cache

def source_key(files: Sequence[str | Path], extra: str = "") -> str:
    """Hash of every file's name (and its folder's), size and modification time, and ``extra``
    (what the decoding was asked for): what a cache is valid for. Paths above the file's folder
    are left out, so a data set moved elsewhere keeps its cache."""
    h = hashlib.sha256(extra.encode())
    missing = [str(p) for p in files if not os.path.isfile(p)]
    if missing:  # a listed image that is not there (or a link leading nowhere): named, not a traceback
        more = f" (and {len(missing) - MAX_NAMED} more)" if len(missing) > MAX_NAMED else ""
        raise DatasetError(f"{len(missing)} listed image(s) not found{more}: {', '.join(missing[:MAX_NAMED])}; "
                           "restore them, or fetch the data set again")
    for p in files:
        st = os.stat(p)
        parent, name = os.path.split(p)
        h.update(f"{os.path.basename(parent)}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def cache_roots(data_folder: Path, user_dir: Path) -> list[Path]:
    """Where the caches of ``data_folder`` may lie: beside the data, then (for a read-only data
    folder) under ``user_dir``, in a folder named after the data folder's path."""
    tag = hashlib.sha256(str(Path(data_folder).resolve()).encode()).hexdigest()[:12]
    return [Path(data_folder) / CACHE_DIR, Path(user_dir) / CACHE_DIR / f"{Path(data_folder).name}-{tag}"]


def read_cache(folder: Path, names: Sequence[str]) -> Optional[dict[str, np.ndarray]]:
    """The arrays of a complete cache, memory-mapped; None when there is none. A cache cut short
    (unreadable) is removed, so that it is filled again."""
    if not (folder / "complete").exists():
        return None
    try:
        return {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in names}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable cache %s: %s", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None


@dataclass(frozen=True)
class Cached:
    """What :func:`cached_arrays` found: the arrays, the cache folder (None: no writable one), and
    whether this call decoded them (``filled``) or read a cache filled before."""

    arrays: dict[str, np.ndarray]
    folder: Optional[Path]
    filled: bool

    def source(self, decoded_from: str) -> str:
        """Where the arrays came from, for the record: ``decoded_from`` (the data set's files)
        when this call decoded them, else the cache."""
        if not self.filled:
            return f"cache {self.folder}"
        return f"{decoded_from}, decoded into cache {self.folder}" if self.folder else f"{decoded_from} (no cache)"


def cached_arrays(roots: Sequence[Path], prefix: str, key: str, names: Sequence[str],
                  fill: Callable[[Path], None], title: str) -> Cached:
    """The arrays ``names`` of the cache ``<prefix>-<key>`` (memory-mapped). When no root holds it
    complete, ``fill(folder)`` writes each ``NAME.npy`` into a temporary folder under the first
    writable root, which is then renamed into place (older caches of the same prefix there are
    removed). Where no root is writable, the arrays are filled in a temporary folder and read
    into memory, with a warning."""
    for root in roots:
        arrays = read_cache(root / f"{prefix}-{key}", names)
        if arrays is not None:
            log.info("%s from cache %s", title, root / f"{prefix}-{key}")
            return Cached(arrays, root / f"{prefix}-{key}", filled=False)
    problems = []
    for root in roots:
        final = root / f"{prefix}-{key}"
        _remove_dead_fillers(root, prefix)
        tmp = root / f".{prefix}-{key}.{_HOST}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp.mkdir(parents=True)
        except OSError as exc:
            problems.append(f"{root}: {exc}")
            continue
        try:
            fill(tmp)
            (tmp / "complete").write_text("")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _replace_older(root, prefix, final.name)
        if final.is_dir() and not (final / "complete").exists():
            # a complete cache always holds its mark (it is renamed into place after the mark is
            # written): this one was left by something else (a copy cut short, a hand edit)
            log.warning("removing the cache folder %s: it has no 'complete' mark", final)
            shutil.rmtree(final, ignore_errors=True)
        size = sum(f.stat().st_size for f in tmp.iterdir())
        try:
            os.rename(tmp, final)
            log.info("wrote cache %s (%.0f MB)", final, size / 2**20)
        except OSError:  # another process put a complete cache there first: use that one
            shutil.rmtree(tmp, ignore_errors=True)
        arrays = read_cache(final, names)
        if arrays is None:
            raise DatasetError(f"the cache {final} was written but cannot be read back")
        return Cached(arrays, final, filled=True)
    log.warning("%s: no cache folder is writable (%s); decoding without a cache", title, "; ".join(problems))
    import tempfile

    with tempfile.TemporaryDirectory(prefix=f"cnnvit-{prefix}-") as tmp:
        fill(Path(tmp))
        return Cached({n: np.load(Path(tmp) / f"{n}.npy") for n in names}, None, filled=True)


_HOST = socket.gethostname().replace(".", "_")  # in a temporary folder's name, with the filler's pid


def _remove_dead_fillers(root: Path, prefix: str) -> None:
    """Remove the temporary folders that fillers on this machine left when they were killed
    (SIGTERM from timeout, SLURM or docker, or kill -9, runs no clean-up): each names its host
    and process, and one whose process is gone will never be renamed into place."""
    for tmp in root.glob(f".{prefix}-*.tmp"):
        parts = tmp.name[:-len(".tmp")].split(".")
        if len(parts) < 4 or parts[-3] != _HOST or not parts[-2].isdigit():
            continue  # another machine's (on a shared disk), or not ours
        if not _alive(int(parts[-2])):
            log.info("removing %s, left by a filler that was killed", tmp)
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _replace_older(root: Path, prefix: str, keep: str) -> None:
    # caches of an older copy of the same data: they would only fill the disk
    for old in root.glob(f"{prefix}-*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def decode_to_npy(files: Sequence[str | Path], path: Path, resize: Optional[Size] = None,
                  desc: Optional[str] = None) -> None:
    """Decode ``files`` into a new ``.npy`` file at ``path``, memory-mapped (any size fits on
    disk); ``resize`` as in :func:`decode_images`."""
    shape = resize or (image_size(files[0]) if files else (32, 32))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(files), *shape, 3))
    try:
        decode_into(files, out, resize, desc=desc)
        out.flush()
    finally:
        del out
