"""Learning-rate schedules as pure functions of the optimizer step."""
from __future__ import annotations

import math

import pytest

from cnnvit.training.schedules import lr_at

BASE = 0.4


def test_constant_is_flat():
    assert [lr_at(s, 100, BASE, "constant") for s in (0, 50, 99)] == [BASE] * 3


def test_linear_warmup():
    lrs = [lr_at(s, 100, BASE, "constant", warmup_steps=10) for s in range(12)]
    for s in range(10):
        assert lrs[s] == pytest.approx(BASE * (s + 1) / 10)
    diffs = [b - a for a, b in zip(lrs[:10], lrs[1:10])]
    assert all(d == pytest.approx(BASE / 10) for d in diffs)  # linear
    assert lrs[9] == pytest.approx(BASE) and lrs[10] == lrs[11] == BASE


@pytest.mark.parametrize("warmup", [0, 10])
@pytest.mark.parametrize("floor", [0.0, 0.1])
def test_cosine_starts_at_base_and_ends_at_floor(warmup, floor):
    total = 110
    f = lambda s: lr_at(s, total, BASE, "cosine", warmup_steps=warmup, min_lr_ratio=floor)
    assert f(warmup) == pytest.approx(BASE)  # the first step after warmup
    assert f(total) == pytest.approx(floor * BASE, abs=1e-12)
    assert f(total + 50) == pytest.approx(floor * BASE, abs=1e-12)  # clamped past the end
    mid = warmup + (total - warmup) // 2
    assert f(mid) == pytest.approx(floor * BASE + (BASE - floor * BASE) * 0.5)
    after = [f(s) for s in range(warmup, total + 1)]
    assert all(a >= b for a, b in zip(after, after[1:]))  # monotone decay
    assert min(after) >= floor * BASE - 1e-12
    if warmup:
        assert f(0) == pytest.approx(BASE / warmup)


def test_cosine_shape():
    total = 100
    for s in (0, 13, 37, 80):
        want = BASE * 0.5 * (1 + math.cos(math.pi * s / total))
        assert lr_at(s, total, BASE, "cosine") == pytest.approx(want)


def test_onecycle_peaks_at_pct_start():
    total, pct = 200, 0.3
    lrs = [lr_at(s, total, BASE, "onecycle", pct_start=pct) for s in range(total + 1)]
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert peak == int(pct * total)
    assert lrs[peak] == pytest.approx(BASE)
    assert lrs[0] == pytest.approx(BASE / 25)
    assert lrs[-1] == pytest.approx(BASE / 1e4)
    rise, fall = lrs[:peak + 1], lrs[peak:]
    assert all(a < b for a, b in zip(rise, rise[1:]))
    assert all(a >= b for a, b in zip(fall, fall[1:]))


def test_step_decays_by_gamma():
    f = lambda s: lr_at(s, 1000, BASE, "step", step_every=30, gamma=0.5)
    assert f(0) == f(29) == BASE
    assert f(30) == pytest.approx(BASE * 0.5)
    assert f(59) == pytest.approx(BASE * 0.5)
    assert f(60) == pytest.approx(BASE * 0.25)
    assert f(95) == pytest.approx(BASE * 0.125)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="linear"):
        lr_at(0, 10, BASE, "linear")
