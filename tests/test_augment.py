"""Batch augmentation on tensors: crops, flips, seeding, eval preprocessing, sharding, policies."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnvit.training.augment import (Preprocess, apply_policy, batch_indices, make_generator,
                                     random_crop, random_flip)
from cnnvit import config
from cnnvit.datasets.synthetic import synthetic


def _images(n=16, h=8, w=8, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=g, dtype=torch.uint8)


def test_random_crop_is_a_shifted_window_of_the_padded_input():
    pad = 2
    x = _images(24, 8, 10)
    out = random_crop(x, pad, make_generator(0, torch.device("cpu")))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = set()
    for i in range(len(x)):
        matches = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                   if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 10])]
        assert matches, f"image {i} is not a window of its padded input"
        offsets.update(matches)
    assert len(offsets) > 3  # the windows really move


def test_random_crop_zero_padding_fills_with_zeros():
    x = torch.full((64, 3, 6, 6), 200, dtype=torch.uint8)
    out = random_crop(x, 3, make_generator(1, torch.device("cpu")))
    # a window that moved shows zero rows or columns; one that did not is unchanged
    moved = (out == 0).flatten(1).any(1)
    assert moved.any() and (~moved).sum() < 64
    assert set(out.unique().tolist()) <= {0, 200}


def test_random_flip_mirrors_about_half():
    x = _images(400, 6, 6)
    out = random_flip(x, make_generator(3, torch.device("cpu")))
    assert out.shape == x.shape
    same = torch.tensor([torch.equal(out[i], x[i]) for i in range(len(x))])
    mirrored = torch.tensor([torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))])
    assert bool((same | mirrored).all())  # each is either untouched or exactly mirrored
    assert not bool((same & mirrored).any())  # random images are not symmetric
    n = int(mirrored.sum())
    assert 140 <= n <= 260, n  # Binomial(400, 0.5): mean 200, sd 10


def test_same_seed_same_output_different_seed_different():
    x = torch.from_numpy(synthetic(64, 10).train_images)
    prep = Preprocess(mean=(0.5,) * 3, std=(0.25,) * 3, crop_padding=4, flip=True)
    a = prep.train(x, make_generator(11, torch.device("cpu")))
    b = prep.train(x, make_generator(11, torch.device("cpu")))
    c = prep.train(x, make_generator(12, torch.device("cpu")))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (64, 3, 32, 32) and a.dtype == torch.float32


def test_eval_normalises_to_zero_mean_unit_std():
    ds = synthetic(500, 100)
    prep = Preprocess(mean=ds.mean, std=ds.std)
    x = prep.eval(torch.from_numpy(ds.train_images))
    assert x.shape == (500, 3, 32, 32) and x.dtype == torch.float32
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-3), mean
    assert torch.allclose(std, torch.ones(3), atol=1e-2), std
    t = prep.eval(torch.from_numpy(ds.test_images))  # other split: close, not exact
    assert t.mean(dim=(0, 2, 3)).abs().max() < 0.1
    assert (t.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1


def test_eval_channel_order_and_no_normalise():
    img = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
    img[..., 0] = 255  # pure red, N x H x W x C
    prep = Preprocess(mean=(0.5, 0.25, 0.125), std=(0.5, 0.25, 0.125))
    x = prep.eval(img)
    assert x.shape == (1, 3, 4, 4)
    assert torch.allclose(x[0, 0], torch.ones(4, 4))
    assert torch.allclose(x[0, 1], -torch.ones(4, 4))
    assert torch.allclose(x[0, 2], -torch.ones(4, 4))
    raw = Preprocess(mean=(0.5,) * 3, std=(0.5,) * 3, normalize=False).eval(img)
    assert torch.equal(raw[0, 0], torch.ones(4, 4)) and raw[0, 1:].abs().max() == 0


@pytest.mark.parametrize("size", [64, 16])
def test_eval_resizes_to_image_size(size):
    ds = synthetic(20, 10)
    prep = Preprocess(mean=ds.mean, std=ds.std, image_size=size)
    x = prep.eval(torch.from_numpy(ds.train_images))
    assert x.shape == (20, 3, size, size)
    # a constant image stays constant (and at the same value) after resizing
    flat = torch.full((2, 32, 32, 3), 128, dtype=torch.uint8)
    y = Preprocess(mean=(0,) * 3, std=(1,) * 3, image_size=size).eval(flat)
    assert torch.allclose(y, torch.full_like(y, 128 / 255), atol=1e-5)


def test_eval_is_deterministic_and_train_path_without_aug_equals_eval():
    x = torch.from_numpy(synthetic(16, 10).train_images)
    prep = Preprocess(mean=(0.4,) * 3, std=(0.2,) * 3, image_size=48)
    assert torch.equal(prep.eval(x), prep.eval(x))
    assert torch.equal(prep.train(x, make_generator(0, torch.device("cpu"))), prep.eval(x))


def test_random_erasing_changes_images_keeps_shape():
    x = torch.from_numpy(synthetic(32, 10).train_images)
    prep = Preprocess(mean=(0.5,) * 3, std=(0.25,) * 3, random_erasing=1.0)
    torch.manual_seed(0)
    out = prep.train(x, make_generator(0, torch.device("cpu")))
    assert out.shape == (32, 3, 32, 32)
    assert not torch.equal(out, prep.eval(x))


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_indices_shards_disjoint_and_cover(world_size, drop_last):
    n, bs = 103, 10
    shards = {r: list(batch_indices(n, bs, True, 5, drop_last, rank=r, world_size=world_size))
              for r in range(world_size)}
    everything = torch.cat([b for r in shards for b in shards[r]]).tolist()
    assert len(everything) == len(set(everything))  # disjoint, no repeats
    if drop_last:
        expected = (n // (bs * world_size)) * bs * world_size
        assert len(everything) == expected
        assert all(len(b) == bs for r in shards for b in shards[r])
        assert len({len(shards[r]) for r in shards}) == 1  # ranks take the same number of steps
    else:
        assert sorted(everything) == list(range(n))
    assert all(0 <= i < n for i in everything)


def test_batch_indices_seeded_and_ordered():
    a = torch.cat(list(batch_indices(50, 8, True, 1, False)))
    b = torch.cat(list(batch_indices(50, 8, True, 1, False)))
    c = torch.cat(list(batch_indices(50, 8, True, 2, False)))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert sorted(a.tolist()) == list(range(50))
    plain = torch.cat(list(batch_indices(50, 8, False, 1, False)))
    assert plain.tolist() == list(range(50))


def test_batch_indices_world_size_two_matches_single_process_order():
    """Together, rank 0 and rank 1 process exactly the global batches of one process of
    twice the batch size."""
    single = list(batch_indices(64, 16, True, 9, True))
    r0 = list(batch_indices(64, 8, True, 9, True, rank=0, world_size=2))
    r1 = list(batch_indices(64, 8, True, 9, True, rank=1, world_size=2))
    assert len(single) == len(r0) == len(r1)
    for g, a, b in zip(single, r0, r1):
        assert sorted(g.tolist()) == sorted(a.tolist() + b.tolist())


@pytest.mark.parametrize("policy", ["autoaugment", "randaugment"])
def test_policy_keeps_dtype_and_shape(policy):
    x = torch.from_numpy(synthetic(40, 10).train_images).permute(0, 3, 1, 2).contiguous()
    torch.manual_seed(0)
    out = apply_policy(x, policy, group=8)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert not torch.equal(out, x)  # 5 groups of random ops: something changed


def test_policy_path_in_preprocess():
    x = torch.from_numpy(synthetic(20, 10).train_images)
    prep = Preprocess(mean=(0.5,) * 3, std=(0.25,) * 3, policy="autoaugment", policy_group=4,
                      crop_padding=2, flip=True, image_size=40)
    torch.manual_seed(0)
    out = prep.train(x, make_generator(0, torch.device("cpu")))
    assert out.shape == (20, 3, 40, 40) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_unknown_policy_rejected():
    with pytest.raises(ValueError, match="bogus"):
        apply_policy(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "bogus", 4)


def test_from_config_copies_fields():
    from cnnvit import config

    cfg = config.build(overrides=["data.crop_padding=4", "data.flip=true", "data.image_size=64",
                                  "data.normalize=false", "data.policy=randaugment"])
    prep = Preprocess.from_config(cfg.data, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    assert prep.crop_padding == 4 and prep.flip and prep.image_size == 64
    assert prep.normalize is False and prep.policy == "randaugment"
    assert prep.mean == (0.1, 0.2, 0.3) and prep.std == (0.4, 0.5, 0.6)


# ------------------------------------------------------------------- random resized crop

def test_random_resized_crop_whole_image_is_the_identity():
    from cnnvit.training.augment import random_resized_crop

    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    out = random_resized_crop(x, 16, 1.0, make_generator(0, torch.device("cpu")), ratio=(1.0, 1.0))
    assert torch.equal(out, x.float())


def test_random_resized_crop_boxes_have_the_requested_area_and_ratio():
    """Pixels encode their own column and row, so each output shows which box it came from."""
    from cnnvit.training.augment import random_resized_crop

    n, size = 400, 32
    cols = torch.arange(size).view(1, size).expand(size, size)
    rows = torch.arange(size).view(size, 1).expand(size, size)
    x = torch.stack([cols, rows, torch.zeros_like(cols)]).unsqueeze(0).expand(n, 3, size, size)
    out = random_resized_crop(x.to(torch.uint8), size, 0.25, make_generator(1, torch.device("cpu")))
    assert out.shape == (n, 3, size, size)
    width = out[:, 0, :, -1] - out[:, 0, :, 0]  # column span seen (box width - 1, bilinear)
    height = out[:, 1, -1, :] - out[:, 1, 0, :]
    area = ((width[:, 0] + 1) * (height[:, 0] + 1)) / size ** 2
    assert area.min() >= 0.25 - 0.08 and area.max() <= 1.0 + 1e-6
    assert area.std() > 0.1  # a spread of scales, not one box
    assert (out[:, 0].amin((1, 2)) >= 0).all() and (out[:, 0].amax((1, 2)) <= size - 1).all()


def test_preprocess_random_resized_crop_to_the_target_size():
    cfg = config.build(overrides=["data.random_resized_crop=true", "data.image_size=24",
                                  "data.rrc_min_scale=0.5"])
    prep = Preprocess.from_config(cfg.data, (0.5,) * 3, (0.25,) * 3)
    x = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    a = prep.train(x, make_generator(3, torch.device("cpu")))
    b = prep.train(x, make_generator(3, torch.device("cpu")))
    assert a.shape == (6, 3, 24, 24) and torch.equal(a, b)
    assert prep.eval(x).shape == (6, 3, 24, 24)


def test_color_jitter_changes_colours_per_group_of_images():
    cfg = config.build(overrides=["data.color_jitter=0.2", "data.policy_group=4"])
    prep = Preprocess.from_config(cfg.data, (0.5,) * 3, (0.25,) * 3)
    x = torch.full((8, 8, 8, 3), 128, dtype=torch.uint8)
    x[..., 0] = 200  # a reddish image, so that hue and saturation moves show
    torch.manual_seed(0)
    out = prep.train(x, make_generator(0, torch.device("cpu")))
    assert out.shape == (8, 3, 8, 8)
    means = out.mean((2, 3))
    assert not torch.allclose(means[0], prep.eval(x)[0].mean((1, 2)))  # colours moved
    assert torch.allclose(means[0], means[3]) and not torch.allclose(means[0], means[4])  # per group


def test_bicubic_resize_on_the_device():
    x = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    cfg = config.build(overrides=["data.image_size=48", "data.resize_mode=bicubic", "data.normalize=false"])
    bicubic = Preprocess.from_config(cfg.data, (0.5,) * 3, (0.25,) * 3).eval(x)
    ref = F.interpolate(x.permute(0, 3, 1, 2).float() / 255, size=(48, 48), mode="bicubic", align_corners=False)
    assert torch.allclose(bicubic, ref)
    cfg = config.build(overrides=["data.image_size=48", "data.normalize=false"])
    assert not torch.allclose(Preprocess.from_config(cfg.data, (0.5,) * 3, (0.25,) * 3).eval(x), ref)


def test_weighted_batches_draw_rare_classes_as_often_as_common_ones():
    labels = np.repeat([0, 1], [900, 100])
    counts = np.bincount(labels)
    weights = torch.from_numpy(1.0 / counts[labels])
    drawn = torch.cat(list(batch_indices(1000, 100, True, 5, True, weights=weights))).numpy()
    assert len(drawn) == 1000
    share = np.bincount(labels[drawn], minlength=2) / len(drawn)
    assert abs(share[1] - 0.5) < 0.06  # 10% of the data, half of the draws
    again = torch.cat(list(batch_indices(1000, 100, True, 5, True, weights=weights))).numpy()
    np.testing.assert_array_equal(drawn, again)
