"""The plateau check (a run still rising at its end is flagged; a flat one is not) and its place
in the summary table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cnnvit.studies.plateau import PLATEAU_GAIN, check_plateau


def curve(val=None, test=None) -> pd.DataFrame:
    n = len(val if val is not None else test)
    nan = [np.nan] * n
    return pd.DataFrame({"epoch": range(1, n + 1), "val_accuracy": val if val is not None else nan,
                         "test_accuracy": test if test is not None else nan})


def test_a_run_still_rising_is_flagged() -> None:
    acc = [0.3, 0.5, 0.6, 0.65, 0.68, 0.70, 0.72, 0.74, 0.76, 0.78]  # epochs 9-10 vs 7-8: +4 points
    p = check_plateau(curve(acc))
    assert p.flagged and p.start == 7 and p.end == 10 and p.split == "val"
    assert p.gain == pytest.approx(0.04)
    assert p.cell() == "rising: +4.0 pts, epochs 7-10"


def test_a_flat_run_is_not_flagged() -> None:
    acc = [0.3, 0.5, 0.6, 0.65, 0.70, 0.72, 0.73, 0.735, 0.738, 0.74]  # epochs 9-10 vs 7-8: +0.65
    p = check_plateau(curve(acc))
    assert not p.flagged and p.gain == pytest.approx(0.0065)
    assert p.cell() == "flat: +0.7 pts, epochs 7-10"


def test_windows_not_single_evaluations_decide() -> None:
    """A flat run whose validation accuracy jumps by 3 points between its epochs (a constant
    learning rate on 5,000 images) is flat: the means of the last 3 epochs and the 3 before agree;
    comparing two single evaluations would call it rising (+3.2 points from epoch 12 to 15)."""
    acc = [0.45, 0.50, 0.55, 0.57, 0.59, 0.60, 0.60, 0.59, 0.617, 0.587, 0.594, 0.581, 0.6015, 0.566, 0.6135]
    p = check_plateau(curve(acc))
    assert not p.flagged and p.start == 10 and p.gain == pytest.approx((0.6015 + 0.566 + 0.6135 - 0.587 - 0.594
                                                                        - 0.581) / 3)


def test_a_run_that_falls_at_the_end_is_flat_and_the_threshold_is_a_gain_of_one_point() -> None:
    assert not check_plateau(curve([0.5, 0.7, 0.72, 0.71, 0.69])).flagged
    at = check_plateau(curve([0.5, 0.6, 0.7, 0.7, 0.7 + PLATEAU_GAIN]))
    assert at.flagged  # a gain of exactly one point is not under one point


def test_the_test_curve_serves_when_there_is_no_validation_split() -> None:
    p = check_plateau(curve(test=[0.2, 0.4, 0.5, 0.55, 0.6]))
    assert p.split == "test" and p.flagged and p.start == 4 and p.gain == pytest.approx(0.05)


def test_too_few_evaluations_cannot_show_a_plateau() -> None:
    one = check_plateau(curve(test=[np.nan, np.nan, 0.7]))
    assert one.flagged and one.gain is None and one.cell() == "not checked: one evaluation"
    # evaluated every 5 epochs of 10: nothing in epochs 7-8, the window before the last fifth
    sparse = check_plateau(curve([np.nan] * 4 + [0.6] + [np.nan] * 4 + [0.65]))
    assert sparse.flagged and sparse.gain is None
    assert sparse.cell() == "not checked: no evaluation in epochs 7-8"
