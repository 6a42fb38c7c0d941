"""data.on_device: the training split on the device or in host memory (batches copied ahead of
compute), the auto rule that chooses, its record in metrics.json, and that the two feeds give
the same run (bit for bit on the CPU; the same batches on a GPU)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from cnnvit.datasets import hold_out_validation
from cnnvit.errors import ConfigError
from cnnvit.training import feed as feed_mod
from cnnvit.training.augment import batch_indices
from cnnvit.training.distributed import Dist

from helpers import tiny_dataset

GB = 2**30
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


# --------------------------------------------------------------------------- the auto rule

def test_auto_rule_fits_up_to_half_the_free_memory():
    assert feed_mod.fits_on_device(4 * GB, 8 * GB)
    assert not feed_mod.fits_on_device(4 * GB + 1, 8 * GB)
    assert not feed_mod.fits_on_device(24 * GB, 22 * GB)  # full CelebA on a 24 GB card


@pytest.mark.parametrize("data, free, on_device", [(2 * GB, 10 * GB, True), (24 * GB, 11 * GB, False)],
                         ids=["fits", "does-not-fit"])
def test_auto_on_cuda_decides_from_data_and_free_memory(data, free, on_device):
    p = feed_mod.decide_placement("auto", "cuda", data, free)
    assert p.on_device is on_device
    rec = p.record()
    assert rec == {"on_device": on_device, "requested": "auto", "reason": p.reason, "data_bytes": data,
                   "free_bytes": free}
    assert "auto" in p.reason and ("<=" if on_device else ">") in p.reason  # the rule, as applied


def test_auto_on_the_cpu_keeps_the_data_where_it_is():
    p = feed_mod.decide_placement("auto", "cpu", 50 * GB, None)
    assert p.on_device and p.free_bytes is None and "cpu" in p.reason


@pytest.mark.parametrize("forced", [True, False])
def test_true_and_false_force_the_choice(forced):
    # against the rule's verdict either way
    free = 1 * GB if forced else 100 * GB
    p = feed_mod.decide_placement(forced, "cuda", 2 * GB, free)
    assert p.on_device is forced and p.requested is forced and "forced" in p.reason


def test_a_bad_request_is_named():
    with pytest.raises(ConfigError, match="data.on_device"):
        feed_mod.decide_placement("yes", "cpu", 1, None)


def test_auto_reads_the_free_memory_of_the_runs_gpu(monkeypatch):
    """placement_for asks the run's CUDA device for its free memory (faked here: no GPU needed)."""
    asked = []

    def mem_get_info(device):
        asked.append(device)
        return 3 * GB, 16 * GB
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    gpu = torch.device("cuda", 1)
    assert feed_mod.placement_for("auto", gpu, int(1.5 * GB), Dist()).on_device
    far = feed_mod.placement_for("auto", gpu, int(1.5 * GB) + 1, Dist())
    assert not far.on_device and far.free_bytes == 3 * GB
    assert asked == [gpu, gpu]


# --------------------------------------------------------------------------- the feeds

def _split(n: int = 60, multilabel: bool = False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 8, 6, 3), dtype=np.uint8)
    labels = (rng.integers(0, 2, (n, 4)).astype(np.float32) if multilabel
              else rng.integers(0, 5, n).astype(np.int64))
    return images, labels


def _orders(n: int, device=None):
    """Two epochs' index batches: a shuffle, and weighted draws (train.balanced_sampling)."""
    weights = torch.rand(n, generator=torch.Generator().manual_seed(1)).double()
    return [list(batch_indices(n, 8, True, 3, True, device=device)),
            list(batch_indices(n, 8, True, 4, True, weights=weights, device=device))]


@pytest.mark.parametrize("multilabel", [False, True])
def test_host_feed_yields_the_device_feeds_batches(multilabel):
    images, labels = _split(multilabel=multilabel)
    cpu = torch.device("cpu")
    dev, host = feed_mod.make_feed(images, labels, cpu, True), feed_mod.make_feed(images, labels, cpu, False)
    assert isinstance(host, feed_mod.HostFeed) and not host.on_device and dev.on_device
    assert host.index_device == cpu and len(host) == len(dev) == len(labels)
    for order in _orders(len(labels)):
        got, want = list(host.batches(order)), list(dev.batches(order))
        assert len(got) == len(want) == len(order)
        for (i_h, x_h, y_h), (i_d, x_d, y_d), idx in zip(got, want, order):
            assert torch.equal(i_h, idx) and torch.equal(i_d, idx)
            assert torch.equal(x_h, x_d) and torch.equal(y_h, y_d)
            np.testing.assert_array_equal(x_h.numpy(), images[idx.numpy()])  # and they are the right ones


def test_host_feed_reads_the_loaders_array_without_a_copy(tmp_path):
    """A plain array and a read-only memory map stay where they are: the feed's images are
    their memory."""
    images, labels = _split()
    np.save(tmp_path / "x.npy", images)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    for array in (images, mapped):
        host = feed_mod.HostFeed(array, labels, torch.device("cpu"))
        assert np.shares_memory(host.images.numpy(), array)
        idx = torch.tensor([5, 0, 59])
        (_, x, _), = host.batches([idx])
        np.testing.assert_array_equal(x.numpy(), images[[5, 0, 59]])


@pytest.mark.parametrize("on_device", [True, False])
def test_place_data_keeps_every_split_in_host_memory_with_the_host_feed(make_cfg, on_device):
    """The meta device stands in for a GPU: with data.on_device=false the training split and
    the held-out images stay in host memory (the loader's arrays, not copied) and only batches
    reach the device; with true all of it goes there."""
    from cnnvit.training.device import compute_for
    from cnnvit.training.setup import place_data

    meta = torch.device("meta")
    ds = hold_out_validation(tiny_dataset(), 0.25, 0)
    cfg = make_cfg({"data": {"on_device": on_device}})
    splits = place_data(ds, cfg, meta, Dist(), compute_for(cfg, meta, True))
    assert splits.placement.on_device is on_device and splits.train.on_device is on_device
    where = "meta" if on_device else "cpu"
    assert splits.train.images.device.type == splits.test_x.device.type == splits.val_x.device.type == where
    if not on_device:
        assert np.shares_memory(splits.train.images.numpy(), ds.train_images)
        assert np.shares_memory(splits.test_x.numpy(), ds.test_images)
    (_, x, y), = splits.train.batches([torch.arange(4, device=splits.train.index_device)])
    assert x.device == y.device == meta and x.shape == (4, *ds.image_size, 3)


# --------------------------------------------------------------------------- whole runs

def _run_files(out):
    metrics = json.loads((out / "metrics.json").read_text())
    return (metrics, np.load(out / "predictions.npz"), torch.load(out / "model.pt", weights_only=True),
            pd.read_csv(out / "steps.csv"))


@pytest.mark.parametrize("extra", [
    {},
    {"data": {"val_fraction": 0.25, "crop_padding": 2, "flip": True},
     "train": {"balanced_sampling": True, "grad_accum": 2, "batch_size": 8, "val_every_steps": 2}},
], ids=["plain", "balanced-val-accum"])
def test_both_feeds_give_the_same_run_on_the_cpu(tmp_path, monkeypatch, train_mod, make_cfg, extra):
    """data.on_device=true and =false: the same metrics, predictions, logits, weights and
    per-step losses, each run recording its placement; the false run went through the host
    feed's staging, once per micro-batch."""
    staged = []
    real_stage = feed_mod.HostFeed._stage

    def stage(self, idx):
        staged.append(len(idx))
        return real_stage(self, idx)
    monkeypatch.setattr(feed_mod.HostFeed, "_stage", stage)
    runs = {}
    for on_device in (True, False):
        cfg = make_cfg({**extra, "data": {**extra.get("data", {}), "on_device": on_device},
                        "train": {**extra.get("train", {}), "epochs": 2}})
        ds = hold_out_validation(tiny_dataset(), cfg.data.val_fraction or 0.0, cfg.seed)
        out = train_mod.train(cfg, tmp_path / str(on_device), dataset=ds, progress=False)
        runs[on_device] = _run_files(out)
        if on_device:
            assert not staged, "the device feed staged batches through the host feed"
    (m_dev, p_dev, w_dev, s_dev), (m_host, p_host, w_host, s_host) = runs[True], runs[False]

    micro = m_host["steps"] * cfg.train.grad_accum
    assert len(staged) == micro and set(staged) == {cfg.train.batch_size}
    assert m_dev["data_placement"]["on_device"] is True and m_dev["data_placement"]["requested"] is True
    assert m_host["data_placement"]["on_device"] is False and m_host["data_placement"]["requested"] is False
    for key in ("test_accuracy", "test", "val_accuracy", "best_val_accuracy", "steps"):
        assert m_dev[key] == m_host[key], key
    if cfg.train.val_every_steps:  # the held-out split (in host memory with the host feed) was read
        assert m_host["val_accuracy"] is not None
    for key in ("logits", "predictions", "labels"):
        np.testing.assert_array_equal(p_dev[key], p_host[key])
    assert w_dev.keys() == w_host.keys()
    assert not [k for k in w_dev if not torch.equal(w_dev[k], w_host[k])], "weights differ"
    np.testing.assert_array_equal(s_dev["loss"].to_numpy(), s_host["loss"].to_numpy())


def test_default_auto_run_records_its_choice(finished_run):
    """The default (auto) on the CPU: the data stays on the device, and metrics.json says why."""
    out, cfg = finished_run
    assert cfg.data.on_device == "auto"
    placement = json.loads((out / "metrics.json").read_text())["data_placement"]
    assert placement["on_device"] is True and placement["requested"] == "auto"
    assert "cpu" in placement["reason"] and placement["data_bytes"] > 0
    assert "training data on the device" in (out / "train.log").read_text()


# BatchNorm-free, dropout-free, no augmentation (as tests/test_distributed.py): two processes of
# 16 images compute one process's 32-image step, up to the all-reduce's float rounding
DDP = {"data": {"synthetic_train": 128, "synthetic_test": 40},
       "model": {"name": "test_vit_cifar"}, "train": {"epochs": 1, "batch_size": 32},
       "optim": {"name": "adamw", "lr": 1e-3}}


def test_two_processes_each_feed_their_shard_from_host_memory(tmp_path, train_mod, make_cfg, cli_env,
                                                             monkeypatch):
    """Two processes with the host feed match one process with the device feed, and their
    shards of every global batch are disjoint and complete."""
    for k in ("OMP_NUM_THREADS", "PYTHONUNBUFFERED"):
        monkeypatch.setenv(k, cli_env[k])
    one = train_mod.train(make_cfg({**DDP, "data": {**DDP["data"], "on_device": True}}), tmp_path / "one",
                          progress=False)
    two = train_mod.train(make_cfg({**DDP, "data": {**DDP["data"], "on_device": False},
                                    "train": {**DDP["train"], "nproc": 2}}), tmp_path / "two", progress=False)
    m_one, m_two = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m_two["data_placement"]["on_device"] is False and m_two["distributed"]["world_size"] == 2
    shards = m_two["distributed"]["shard_check"]
    assert shards["disjoint"] and shards["complete"] and shards["per_rank"] == [64, 64]
    losses = [pd.read_csv(d / "steps.csv")["loss"].to_numpy() for d in (one, two)]
    np.testing.assert_allclose(losses[1], losses[0], atol=1e-4)


# --------------------------------------------------------------------------- CUDA

@CUDA
def test_host_feed_on_a_gpu_yields_the_device_feeds_batches():
    """Pinned staging, copies on a side stream one batch ahead: every batch that arrives equals
    the device feed's, even with all of them kept and the GPU busy between them (a staging
    buffer refilled before its copy finished would show as a wrong batch)."""
    gpu = torch.device("cuda")
    images, labels = _split(n=4000)
    dev, host = feed_mod.make_feed(images, labels, gpu, True), feed_mod.make_feed(images, labels, gpu, False)
    busy = torch.randn(2048, 2048, device=gpu)
    for order_cpu, order_gpu in zip(_orders(len(labels)), _orders(len(labels), device=gpu)):
        kept = []
        for idx, x, y in host.batches(order_cpu):
            assert x.device.type == "cuda" and y.device.type == "cuda" and idx.device.type == "cpu"
            busy = busy @ busy / 2048  # queued compute the copies overlap
            kept.append((x, y, x.float().sum()))  # used on the compute stream, as a step would
        for (x, y, total), (_, x_d, y_d) in zip(kept, dev.batches(order_gpu)):
            assert torch.equal(x, x_d) and torch.equal(y, y_d)
            assert total.item() == x_d.float().sum().item()
    assert all(slot.images.is_pinned() for slot in host._slots)
