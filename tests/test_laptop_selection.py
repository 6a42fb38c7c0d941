"""The laptop profile's data selections run from what `make data` leaves on a user's disk: on a
generated layout of the full official CelebA (202,599 listed rows, 178 x 218 images produced on
demand), each laptop file's CelebA runs decode exactly the images they declare, at the declared
size, and nothing else."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cnnvit.datasets import cache, celeba, dataset_from_config
from cnnvit.studies import load_study

REPO = Path(__file__).resolve().parents[1]
FULL_CELEBA = 202_599  # images the official list_attr_celeba.txt lists
OFFICIAL_SIZE = (218, 178)  # (height, width) of img_align_celeba's images


def laptop_files() -> list[Path]:
    return sorted((REPO / "params" / "laptop").glob("*.yaml"))


@pytest.fixture(scope="module")
def full_celeba(tmp_path_factory) -> Path:
    """DATA_DIR with celeba/ as the official download unpacks it: the full attribute file, and an
    img_align_celeba/ folder. Its files stand in for images (decoding is replaced below), and only
    the first ones exist, a few past the largest laptop selection: a loader that touched more
    would fail on a missing file, one that decoded a few more shows in the decoding log."""
    data_dir = tmp_path_factory.mktemp("data")
    folder = data_dir / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    values = np.where(rng.random((FULL_CELEBA, len(celeba.ATTRIBUTE_NAMES))) < 0.2, " 1", "-1")
    rows = [f"{i:06d}.jpg " + " ".join(v) for i, v in enumerate(values, start=1)]
    (folder / celeba.ATTR_FILE).write_text(
        f"{FULL_CELEBA}\n{' '.join(celeba.ATTRIBUTE_NAMES)}\n" + "\n".join(rows) + "\n")
    largest = max(s.config.data.first_images or 0 for p in laptop_files() if "celeba" in p.read_text()
                  for s in load_study(p).runs.values() if s.config.data.name == "celeba")
    for i in range(1, min(largest + 100, FULL_CELEBA) + 1):
        (folder / "img_align_celeba" / f"{i:06d}.jpg").touch()
    return data_dir


@pytest.fixture
def lazy_images(monkeypatch, full_celeba: Path) -> list[tuple[str, tuple]]:
    """Every image file decodes to a 178 x 218 picture generated from its number (resized to the
    size asked for); returns the log of (file, size decoded to)."""
    decoded: list[tuple[str, tuple]] = []
    def decode_one(path, resize):
        number = int(Path(path).stem)
        h, w = resize or OFFICIAL_SIZE
        decoded.append((Path(path).name, (h, w)))
        return np.full((h, w, 3), number % 251, np.uint8)

    monkeypatch.setattr(cache, "_decode_one", decode_one)
    return decoded


def celeba_runs(path: Path, data_dir: Path):
    study = load_study(path, out_dir=data_dir.parent / "out", data_dir=data_dir)
    return {n: s for n, s in study.runs.items() if s.config.data.name == "celeba"}


@pytest.mark.parametrize("path", [p for p in laptop_files() if "celeba" in p.read_text()], ids=lambda p: p.stem)
def test_laptop_celeba_runs_decode_only_their_declared_images_at_the_declared_size(
        path: Path, full_celeba: Path, lazy_images) -> None:
    runs = celeba_runs(path, full_celeba)
    assert runs, f"{path.name} names celeba but has no CelebA run"
    selections = {(s.config.data.first_images, s.config.data.decode_size) for s in runs.values()}
    for first, size in selections:
        assert first is not None and first < FULL_CELEBA, (
            f"{path.name}: a CelebA run decodes all {FULL_CELEBA} images of the official set; declare "
            f"data.first_images")
        assert size is not None, f"{path.name}: CelebA runs must declare data.decode_size (laptop memory)"
    # the notes describe what the runs use
    for first, size in selections:
        assert f"{first:,}" in re.sub(r"\s+", " ", load_study(path).notes), f"notes do not say {first:,} images"
    distinct = {repr(s.config.data): (n, s) for n, s in runs.items()}  # runs differing in model only load alike
    for name, spec in distinct.values():
        lazy_images.clear()
        ds = dataset_from_config(spec.config.data, spec.config.seed)
        first, size = spec.config.data.first_images, spec.config.data.decode_size
        names = [f"{i:06d}.jpg" for i in range(1, first + 1)]
        if lazy_images:  # the first run of a selection fills the cache; the others read it
            assert [f for f, _ in lazy_images] == names, f"{name}: decoded other images than 1..{first}"
            assert {s for _, s in lazy_images} == {(size, size)}
        assert len(ds.train_labels) + len(ds.val_labels) + len(ds.test_labels) == first
        assert ds.train_images.shape[1:] == ds.test_images.shape[1:] == (size, size, 3)
        assert sorted(f for split in ds.split_files.values() for f in split) == names


def test_more_images_than_the_file_lists_is_refused_by_name(full_celeba: Path, lazy_images) -> None:
    from cnnvit import config as config_mod
    from cnnvit.errors import ConfigError

    cfg = config_mod.build(overrides=["data.name=celeba", f"data.root={full_celeba / 'celeba'}",
                                      "data.first_images=300000", "data.decode_size=32"])
    with pytest.raises(ConfigError, match=r"data.first_images=300000: the attribute file lists only 202599"):
        dataset_from_config(cfg.data, 0)
    assert not lazy_images  # refused before any decoding


def test_first_images_is_refused_for_other_data_sets() -> None:
    from cnnvit import config as config_mod
    from cnnvit.errors import ConfigError

    with pytest.raises(ConfigError, match="data.first_images: only CelebA"):
        config_mod.build(overrides=["data.name=cifar10", "data.first_images=100"])
