"""Was a run trained to its plateau? A verdict that compares two runs means little when one of
them was still learning at its last epoch: more epochs could reverse it. Each run is checked on
its learning curve, and a verdict resting on a run that fails the check says so.

The criterion (chosen once, before any laptop run was judged by it): over the last
:data:`PLATEAU_SHARE` of its epochs, a run gains less than :data:`PLATEAU_GAIN` accuracy on
its validation split (on the test split where it has none; the check only reads the curve, it
chooses nothing). A run evaluated too rarely to tell is flagged too: a curve that was not
measured cannot show a plateau.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

import pandas as pd

from ..training.run import Run
from .core import Study

PLATEAU_SHARE = 0.2  # the last fifth of the epochs ...
PLATEAU_GAIN = 0.01  # ... gains under 1 point of accuracy


@dataclass(frozen=True)
class Plateau:
    """The check of one run: the accuracy it gained from epoch ``start`` to its last evaluated
    epoch ``end`` on the ``split`` its curve was measured on (``gain`` None: too few
    evaluations to tell, ``reason`` says why)."""

    gain: Optional[float]
    start: Optional[int]
    end: Optional[int]
    split: Optional[str]
    reason: str = ""

    @property
    def flagged(self) -> bool:
        """Still rising, or not measured often enough to tell: the run may be under-trained."""
        return self.gain is None or self.gain >= PLATEAU_GAIN

    def cell(self) -> str:
        """The check for a table cell: 'flat (+0.3 points, epochs 16-20, val)' or 'still rising ...'."""
        if self.gain is None:
            return f"not checked: {self.reason}"
        state = "still rising" if self.flagged else "flat"
        return f"{state} ({100 * self.gain:+.1f} points, epochs {self.start}-{self.end}, {self.split})"


def check_plateau(epochs: pd.DataFrame) -> Plateau:
    """The plateau check of a learning curve (a run's epochs.csv: ``epoch`` and the accuracies of
    the evaluated epochs, ``val_accuracy`` and/or ``test_accuracy``)."""
    split = next((s for s in ("val", "test") if f"{s}_accuracy" in epochs
                  and epochs[f"{s}_accuracy"].notna().sum() >= 2), None)
    if split is None:
        return Plateau(None, None, None, None, "fewer than two evaluated epochs")
    curve = epochs.dropna(subset=[f"{split}_accuracy"]).set_index("epoch")[f"{split}_accuracy"]
    end = int(curve.index.max())
    window = max(1, round(PLATEAU_SHARE * end))
    before = curve[curve.index <= end - window]
    if before.empty:
        return Plateau(None, None, end, split, f"no evaluation at or before epoch {end - window} "
                                               f"(the start of the last {PLATEAU_SHARE:.0%} of epochs)")
    start = int(before.index.max())
    return Plateau(float(curve[end] - curve[start]), start, end, split)


def plateau_of(run: Run) -> Plateau:
    """The plateau check of a finished run."""
    return check_plateau(run.epochs)


def under_trained(results: Mapping[str, Run], names: Iterable[str]) -> list[str]:
    """The runs of ``names`` (those with a result, each once) that fail the plateau check."""
    return [n for n in dict.fromkeys(names) if n in results and plateau_of(results[n]).flagged]


def under_training_note(study: Study, results: Mapping[str, Run], names: Iterable[str]) -> str:
    """The caveat of a verdict resting on runs ``names`` (with their seed repeats) when any of
    them failed the plateau check: ' *May be under-trained: ResNet (0.31M) was still rising (+2.1
    points over its last 20% of epochs).*'; '' when every one reached its plateau."""
    runs = [r for n in names for r in study.repeats(n)]
    parts = []
    for n in under_trained(results, runs):
        p = plateau_of(results[n])
        why = (f"was still rising ({100 * p.gain:+.1f} points over its last {PLATEAU_SHARE:.0%} of epochs)"
               if p.gain is not None else f"could not be checked ({p.reason})")
        parts.append(f"{study.runs[n].label} {why}")
    return f" *May be under-trained: {'; '.join(parts)}.*" if parts else ""
