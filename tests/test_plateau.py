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
    acc = [0.3, 0.5, 0.6, 0.65, 0.68, 0.70, 0.72, 0.74, 0.76, 0.78]  # +4 points over epochs 8-10
    p = check_plateau(curve(acc))
    assert p.flagged and p.start == 8 and p.end == 10 and p.split == "val"
    assert p.gain == pytest.approx(0.04)
    assert p.cell() == "still rising (+4.0 points, epochs 8-10, val)"


def test_a_flat_run_is_not_flagged() -> None:
    acc = [0.3, 0.5, 0.6, 0.65, 0.70, 0.72, 0.73, 0.735, 0.738, 0.74]  # +0.5 points over epochs 8-10
    p = check_plateau(curve(acc))
    assert not p.flagged and p.gain == pytest.approx(0.005)
    assert p.cell() == "flat (+0.5 points, epochs 8-10, val)"


def test_a_run_that_falls_at_the_end_is_flat_and_the_threshold_is_a_gain_of_one_point() -> None:
    assert not check_plateau(curve([0.5, 0.7, 0.72, 0.71, 0.69])).flagged
    at = check_plateau(curve([0.5, 0.6, 0.7, 0.7, 0.7 + PLATEAU_GAIN]))
    assert at.flagged  # a gain of exactly one point is not under one point


def test_the_test_curve_serves_when_there_is_no_validation_split() -> None:
    p = check_plateau(curve(test=[0.2, 0.4, 0.5, 0.55, 0.6]))
    assert p.split == "test" and p.flagged and p.start == 4


def test_too_few_evaluations_cannot_show_a_plateau() -> None:
    one = check_plateau(curve(test=[np.nan, np.nan, 0.7]))
    assert one.flagged and one.gain is None and "fewer than two" in one.cell()
    # evaluated every 5 epochs of 10: epoch 5 is the last evaluation before the final fifth
    sparse = check_plateau(curve([np.nan] * 4 + [0.6] + [np.nan] * 4 + [0.65]))
    assert sparse.start == 5 and sparse.flagged
    late = check_plateau(curve([np.nan] * 8 + [0.64, 0.65]))  # nothing at or before epoch 8
    assert late.flagged and late.gain is None and "epoch 8" in late.reason
