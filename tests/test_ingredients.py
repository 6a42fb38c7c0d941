"""Recipe ingredients, one at a time: label smoothing without Mixup/CutMix, Mixup alone, CutMix
alone, and the weight average (train.model_ema).

Each test checks the ingredient's arithmetic against a hand computation, not only that a
setting was passed along: the loss of fixed logits, the kind of image mixing and the soft targets
of one mixed batch, the saved average of a few recorded optimizer steps.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data import Mixup

from cnnvit.datasets import Dataset
from cnnvit.training import losses, setup

CPU = torch.device("cpu")
EPS = 0.1  # the label smoothing of every test that smooths


def hand_smoothed_ce(logits: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """(1 - eps) x cross-entropy + eps x the mean over classes of -log p (uniform target mass)."""
    logp = F.log_softmax(logits.double(), dim=1)
    ce = -logp[torch.arange(len(y)), y].mean()
    return (1 - eps) * ce + eps * (-logp.mean(dim=1)).mean()


def hand_soft_targets(y: torch.Tensor, num_classes: int, lam: float, eps: float) -> torch.Tensor:
    """The mixed, smoothed targets of a batch mixed with its reverse: eps / C on every class,
    1 - eps + eps / C on the true one, then lam x own + (1 - lam) x the reversed batch's."""
    off = eps / num_classes
    one = torch.full((len(y), num_classes), off, dtype=torch.float64)
    one[torch.arange(len(y)), y] = 1 - eps + off
    return lam * one + (1 - lam) * one.flip(0)


# --------------------------------------------------------------------------- label smoothing

@pytest.mark.parametrize("eps", [EPS, 0.0])
def test_label_smoothing_without_mixup_is_the_smoothed_cross_entropy(make_cfg, tiny_ds: Dataset, eps: float):
    """mixup = cutmix = 0: the objective is (1 - eps) CE + eps mean(-log p); with eps = 0 plain CE."""
    objective = setup.make_objective(make_cfg({"train": {"label_smoothing": eps}}), tiny_ds, CPU, "t")
    assert objective.mixer is None  # the hard-label path, not the soft-target one
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, len(tiny_ds.classes), (12,), generator=g)
    logits = torch.randn(12, len(tiny_ds.classes), generator=g)
    logits[torch.arange(12), y] += 5  # confident and right: smoothing's penalty shows clearly
    loss = objective(lambda x: logits, torch.zeros(12, 3, 8, 8), y)
    plain = F.cross_entropy(logits.double(), y)
    assert float(loss) == pytest.approx(float(hand_smoothed_ce(logits, y, eps)), rel=1e-6)
    if eps:  # the two definitions are far apart here, so the check above tells them apart
        assert abs(float(loss) - float(plain)) > 1e-2
    else:
        assert float(loss) == pytest.approx(float(plain), rel=1e-6)


def test_label_smoothing_reaches_the_training_loss(tmp_path, monkeypatch, train_mod, make_cfg, tiny_ds):
    """In a real run every training step's cross-entropy is computed with train.label_smoothing
    (and evaluation's with none: the test loss stays the plain one)."""
    real_ce = F.cross_entropy
    training, evaluation = [], []

    def spy(input, target, *args, label_smoothing: float = 0.0, **kwargs):
        # the training loss is taken on logits that carry gradients; evaluation's do not
        (training if input.requires_grad else evaluation).append(label_smoothing)
        return real_ce(input, target, *args, label_smoothing=label_smoothing, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", spy)  # losses calls F.cross_entropy
    cfg = make_cfg({"train": {"label_smoothing": EPS}})
    train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    steps = len(tiny_ds.train_labels) // cfg.train.batch_size
    assert training == [EPS] * steps
    assert evaluation and set(evaluation) == {0.0}


# --------------------------------------------------------------------------- Mixup, CutMix

def mix_once(objective: losses.Objective, x: torch.Tensor, y: torch.Tensor, seed: int):
    """One call of the objective: (the images its forward saw, the soft targets its loss got,
    the loss, the logits it was computed from)."""
    seen, targets = {}, {}
    logits = torch.randn(len(y), objective.mixer.num_classes, generator=torch.Generator().manual_seed(seed))
    real_soft_ce = objective.soft_ce

    def forward(batch: torch.Tensor) -> torch.Tensor:
        seen["x"] = batch.clone()
        return logits

    def soft_ce(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        targets["y"] = target.clone()
        return real_soft_ce(out, target)

    objective.soft_ce = soft_ce
    np.random.seed(seed)  # timm's Mixup draws lambda (and the box) from NumPy's global stream
    try:
        loss = objective(forward, x.clone(), y)  # (Mixup mixes in place: the original stays intact)
    finally:
        objective.soft_ce = real_soft_ce
    return seen["x"], targets["y"], loss, logits


def random_batch(num_classes: int, n: int = 8, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, size, size, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return x, y


def check_soft_ce(loss: torch.Tensor, logits: torch.Tensor, soft: torch.Tensor) -> None:
    """The loss is the soft-target cross-entropy, mean over images of sum(-target x log p)."""
    want = (-soft.double() * F.log_softmax(logits.double(), dim=1)).sum(1).mean()
    assert float(loss) == pytest.approx(float(want), rel=1e-5)


def mixing_objective(make_cfg, ds: Dataset, mixup: float, cutmix: float):
    """The objective of a run with these alphas and label smoothing EPS, checked to hold timm's
    Mixup with exactly them (one lam per batch), and a random batch of ``ds``'s classes."""
    cfg = make_cfg({"train": {"mixup": mixup, "cutmix": cutmix, "label_smoothing": EPS}})
    objective = setup.make_objective(cfg, ds, CPU, "t")
    mixer = objective.mixer
    assert isinstance(mixer, Mixup)
    assert (mixer.mixup_alpha, mixer.cutmix_alpha, mixer.label_smoothing) == (mixup, cutmix, EPS)
    assert mixer.num_classes == len(ds.classes) and mixer.mode == "batch"
    return objective, mixer, random_batch(len(ds.classes))


def test_mixup_alone_blends_whole_images(make_cfg, tiny_ds: Dataset):
    """train.mixup > 0, cutmix = 0: each image becomes lam x itself + (1 - lam) x its partner in
    the reversed batch, one lam for the batch; the targets mix with the same lam, smoothed."""
    objective, mixer, (x, y) = mixing_objective(make_cfg, tiny_ds, mixup=0.8, cutmix=0.0)
    partner = x.flip(0)
    for seed in range(4):
        mixed, soft, loss, logits = mix_once(objective, x, y, seed)
        # the lam that best explains the mixed batch, then: is it exactly that blend everywhere?
        d = (x - partner).double()
        lam = float(((mixed.double() - partner) * d).sum() / (d * d).sum())
        assert 0.0 < lam < 1.0
        torch.testing.assert_close(mixed, lam * x + (1 - lam) * partner, rtol=0, atol=1e-5)
        torch.testing.assert_close(soft.double(), hand_soft_targets(y, mixer.num_classes, lam, EPS),
                                   rtol=0, atol=1e-5)
        check_soft_ce(loss, logits, soft)


def test_cutmix_alone_pastes_one_box(make_cfg, tiny_ds: Dataset):
    """train.cutmix > 0, mixup = 0: every pixel comes from the image itself or, inside one
    rectangle (the same for the whole batch), from its partner in the reversed batch; the target's
    lam is the share of the image outside the box, smoothed."""
    objective, mixer, (x, y) = mixing_objective(make_cfg, tiny_ds, mixup=0.0, cutmix=1.0)
    partner = x.flip(0)
    boxes = 0
    for seed in range(6):
        mixed, soft, loss, logits = mix_once(objective, x, y, seed)
        own, pasted = mixed == x, mixed == partner  # copies, not blends: exact equality
        assert bool((own ^ pasted).all())  # (random pixels: never equal in both images)
        box = pasted[0, 0]
        assert bool((pasted == box).all())  # one box for every image and channel
        rows, cols = box.any(1), box.any(0)
        assert torch.equal(box, rows[:, None] & cols[None, :])  # a rectangle ...
        for line in (rows, cols):  # ... of contiguous rows and columns
            idx = line.nonzero().flatten()
            assert len(idx) == 0 or int(idx[-1] - idx[0]) + 1 == len(idx)
        lam = 1.0 - float(box.double().mean())
        boxes += lam < 1.0
        torch.testing.assert_close(soft.double(), hand_soft_targets(y, mixer.num_classes, lam, EPS),
                                   rtol=0, atol=1e-5)
        check_soft_ce(loss, logits, soft)
    assert boxes >= 3  # the draws did paste boxes (not all left the images alone)


# --------------------------------------------------------------------------- EMA

def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters and buffers, floating ones in float64 (for the hand average)."""
    return {k: v.detach().clone().double() if v.is_floating_point() else v.detach().clone()
            for k, v in model.state_dict().items()}


def hand_average(weights: list[dict[str, torch.Tensor]], decay: float,
                 copied: int) -> dict[str, torch.Tensor]:
    """e_t = d x e_(t-1) + (1 - d) x w_t over the weights after each optimizer step, the first
    ``copied`` steps taking the weights as they are (timm's ModelEmaV3 warm start, decay 0);
    integer buffers (BatchNorm's step count) are copied, as ModelEmaV3 does."""
    avg: dict[str, torch.Tensor] = {}
    for t, w in enumerate(weights, start=1):
        d = 0.0 if t <= copied else decay
        avg = {k: d * avg[k] + (1 - d) * v if d and v.is_floating_point() else v.clone()
               for k, v in w.items()}
    return avg


def max_gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def test_model_ema_is_the_exponential_average_of_the_steps(tmp_path, monkeypatch, train_mod, make_cfg,
                                                           tiny_ds):
    """The saved weights of a train.model_ema run are the exponential average, with the configured
    decay, of the weights after every optimizer step (recorded right after each step)."""
    decay = 0.6  # (far from decay ** 2 and from 1: each step's weights weigh visibly)
    after_step: list[dict[str, torch.Tensor]] = []
    real_make_optimizer: Callable = setup.make_optimizer

    def recording_optimizer(cfg, model):
        opt = real_make_optimizer(cfg, model)
        real_step = opt.step

        def step(*args, **kwargs):
            out = real_step(*args, **kwargs)
            after_step.append(state_copy(model))  # w_t, whatever the average does next
            return out

        opt.step = step
        return opt

    monkeypatch.setattr(setup, "make_optimizer", recording_optimizer)
    cfg = make_cfg({"train": {"model_ema": decay, "epochs": 2}})  # 12 steps, across an epoch's end
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    assert len(after_step) == 2 * (len(tiny_ds.train_labels) // cfg.train.batch_size)
    saved = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert max_gap(saved, after_step[-1]) > 1e-3  # the average, not the live weights
    # ModelEmaV3.update(model, step) uses decay 0 (a copy) while step <= 1, d after; the loop
    # passes the 1-based count of updates, as timm's own train.py does, so only the first copies
    gap = max_gap(saved, hand_average(after_step, decay, 1))
    assert gap < 1e-5, f"largest deviation from the hand average: {gap}"
