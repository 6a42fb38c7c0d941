"""The CUDA path's defects that a CPU can show (issue: fast and correct on a real GPU):
torch.compile with early stopping and a resume, host-device copies in every step, the backend
flags, and what a resumed checkpoint leaves behind."""
from __future__ import annotations

import functools
import json

import pytest
import torch

from cnnvit.datasets import hold_out_validation
from cnnvit.training import augment, device as device_mod, state as state_mod

from helpers import Interrupted, tiny_dataset

# the model's weights stay put while accuracy is read (lr ~0): epoch 1 stays the best, early
# stopping ends the run after 3 epochs and loads epoch 1's weights before testing
COMPILED_EARLY_STOP = {"model": {"name": "test_vit_cifar"}, "data": {"val_fraction": 0.25},
                       "train": {"epochs": 5, "early_stop_patience": 2, "compile": True},
                       "optim": {"name": "adamw", "lr": 1e-12}}


@pytest.fixture
def eager_compile(monkeypatch):
    """torch.compile with its eager backend: the same wrapper (keys prefixed ``_orig_mod.``),
    no C compiler needed."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))


def test_compile_with_early_stopping_finishes_and_resumes(tmp_path, train_mod, make_cfg, eager_compile,
                                                          interrupt_after_epoch):
    """The best epoch's weights are taken from the bare module: loading them into the result
    (and resuming from a checkpoint that holds them) works under torch.compile."""
    cfg = make_cfg(COMPILED_EARLY_STOP)
    ds = lambda: hold_out_validation(tiny_dataset(), 0.25, 0)  # noqa: E731
    a, b = tmp_path / "a", tmp_path / "b"
    train_mod.train(cfg, a, name="run", dataset=ds(), progress=False)
    ma = json.loads((a / "metrics.json").read_text())
    assert ma["early_stopping"]["best_epoch"] == 1
    keys = torch.load(a / "model.pt", weights_only=True)
    assert not [k for k in keys if k.startswith("_orig_mod.")], "model.pt holds the compiled wrapper's keys"

    arm, disarm = interrupt_after_epoch
    arm(2)
    with pytest.raises(Interrupted):
        train_mod.train(cfg, b, name="run", dataset=ds(), progress=False)
    disarm()
    best = torch.load(b / "checkpoint.pt", weights_only=False)["best"]["state"]
    assert not [k for k in best if k.startswith("_orig_mod.")]
    train_mod.train(cfg, b, name="run", dataset=ds(), progress=False)
    mb = json.loads((b / "metrics.json").read_text())
    assert mb["resumed_from_epoch"] == 2 and mb["test_accuracy"] == ma["test_accuracy"]


def test_batch_indices_are_made_on_the_device_once_per_epoch(monkeypatch):
    """Every batch of indices lies on the device asked for (the meta device stands for a GPU),
    with the same order as on the CPU."""
    on_cpu = [b.tolist() for b in augment.batch_indices(50, 8, True, 3, True)]
    moved = []
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        moved.append(args)
        return real_to(self, *args, **kwargs)
    monkeypatch.setattr(torch.Tensor, "to", to)
    batches = list(augment.batch_indices(50, 8, True, 3, True, device=torch.device("meta")))
    assert all(b.device.type == "meta" for b in batches) and len(moved) == 1, "one copy per epoch"
    monkeypatch.undo()
    assert [b.shape[0] for b in batches] == [len(b) for b in on_cpu]


def test_normalisation_makes_its_mean_and_std_once(monkeypatch):
    """The mean and std tensors are built once per device, not for every batch (each would be a
    host-to-device copy)."""
    prep = augment.Preprocess(mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    images = torch.randint(0, 256, (4, 8, 8, 3), dtype=torch.uint8)
    first = prep.eval(images)
    built = []
    real_tensor = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: built.append(a) or real_tensor(*a, **k))
    for _ in range(3):
        again = prep.eval(images)
    assert not built, f"{len(built)} tensors built from Python numbers in 3 batches"
    torch.testing.assert_close(again, first)


def test_backend_flags_on_cuda_only(monkeypatch):
    """cuDNN's autotuner and TF32 are switched on for a CUDA run, and left alone on the CPU."""
    flags = {"cudnn.benchmark": (torch.backends.cudnn, "benchmark"),
             "cudnn.allow_tf32": (torch.backends.cudnn, "allow_tf32")}
    for mod, attr in flags.values():
        monkeypatch.setattr(mod, attr, False)
    precision = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", precision.append)
    device_mod.configure_backends(torch.device("cpu"))
    assert not any(getattr(mod, attr) for mod, attr in flags.values()) and not precision
    device_mod.configure_backends(torch.device("cuda"))
    off = [name for name, (mod, attr) in flags.items() if not getattr(mod, attr)]
    assert not off, f"left off for CUDA: {off}"
    assert precision == ["high"], "float32 matmuls in TF32 on CUDA"


def test_resume_reads_the_checkpoint_to_the_cpu(tmp_path, train_mod, make_cfg, interrupt_after_epoch, monkeypatch):
    """A resumed run reads its checkpoint to the CPU (load_state_dict copies onto the device), so
    no second copy of the weights, the average or the best epoch stays on the GPU."""
    cfg = make_cfg({"train": {"epochs": 2}})
    arm, disarm = interrupt_after_epoch
    arm(1)
    with pytest.raises(Interrupted):
        train_mod.train(cfg, tmp_path, name="run", dataset=tiny_dataset(), progress=False)
    disarm()
    where = []
    real_load = torch.load
    monkeypatch.setattr(state_mod.torch, "load", lambda *a, **k: where.append(k.get("map_location")) or
                        real_load(*a, **k))
    train_mod.train(cfg, tmp_path, name="run", dataset=tiny_dataset(), progress=False)
    assert where == ["cpu"]
