"""Was a run trained to its plateau? A verdict that compares two runs means little when one of
them was still learning at its last epoch: more epochs could reverse it. Each run is checked on
its learning curve, and a verdict resting on a run that fails the check says so.

The criterion: over the last :data:`PLATEAU_SHARE` of its epochs, a run gains less than
:data:`PLATEAU_GAIN` accuracy on its validation split (on the test split where it has none; the
check only reads the curve, it chooses nothing), measured as the mean over those epochs against
the mean over as many epochs before them (see :func:`check_plateau`). A run evaluated too rarely
to tell is flagged too: a curve that was not measured cannot show a plateau.
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
        """The check for a table cell, short: 'flat: +0.3 pts, epochs 16-20', 'rising: ...', or
        'not checked: one evaluation'."""
        if self.gain is None:
            return f"not checked: {self.reason}"
        state = "rising" if self.flagged else "flat"
        gain = round(100 * self.gain, 1) + 0.0  # + 0.0: a fall that rounds to zero is no '-0.0'
        return f"{state}: {gain:+.1f} pts, epochs {self.start}-{self.end}"


def check_plateau(epochs: pd.DataFrame) -> Plateau:
    """The plateau check of a learning curve (a run's epochs.csv: ``epoch`` and the accuracies of
    the evaluated epochs, ``val_accuracy`` and/or ``test_accuracy``): the mean accuracy over the
    last :data:`PLATEAU_SHARE` of the epochs against the mean over the same number of epochs just
    before them. Means of windows, not two single evaluations: one evaluation on a validation
    split of a few thousand images moves by a point or more from epoch to epoch (binomial noise
    alone is ±1.4 points at 5,000 images, and a constant learning rate adds to it)."""
    evaluated = {s: int(epochs[f"{s}_accuracy"].notna().sum()) if f"{s}_accuracy" in epochs else 0
                 for s in ("val", "test")}
    split = next((s for s, n in evaluated.items() if n >= 2), None)
    if split is None:
        return Plateau(None, None, None, None, "one evaluation" if any(evaluated.values()) else "no evaluation")
    curve = epochs.dropna(subset=[f"{split}_accuracy"]).set_index("epoch")[f"{split}_accuracy"]
    end = int(curve.index.max())
    window = max(1, round(PLATEAU_SHARE * end))
    last = curve[curve.index > end - window]
    before = curve[(curve.index > end - 2 * window) & (curve.index <= end - window)]
    if before.empty:
        return Plateau(None, None, end, split, f"no evaluation in epochs {max(1, end - 2 * window + 1)}-{end - window}")
    return Plateau(float(last.mean() - before.mean()), int(before.index.min()), end, split)


def plateau_of(run: Run) -> Plateau:
    """The plateau check of a finished run."""
    return check_plateau(run.epochs)


def under_training_note(study: Study, results: Mapping[str, Run], names: Iterable[str]) -> str:
    """The caveat of a verdict resting on runs ``names`` (with their seed repeats) when any of
    them failed the plateau check: ' *May be under-trained: ResNet (0.31M) was still rising (+2.1
    points over its last 20% of epochs); ViT (0.14M): 3 of 3 seeds still rising (+1.9 to +2.6
    points).*'; '' when every one reached its plateau, and in the smoke profile (one-epoch runs
    that prove the pipeline, whose numbers its caveat already disowns; the summary table still
    shows each run's check)."""
    if study.profile == "smoke":
        return ""
    parts = []
    for name in dict.fromkeys(names):
        repeats = [r for r in study.repeats(name) if r in results]
        flagged = [p for p in (plateau_of(results[r]) for r in repeats) if p.flagged]  # each run read once
        if not flagged:
            continue
        gains = sorted(100 * p.gain for p in flagged if p.gain is not None)
        reasons = [f"not checked ({p.reason})" for p in flagged if p.gain is None]
        if gains:
            span = f"{gains[0]:+.1f}" if gains[0] == gains[-1] else f"{gains[0]:+.1f} to {gains[-1]:+.1f}"
            reasons.insert(0, f"still rising ({span} points over the last {PLATEAU_SHARE:.0%} of epochs)")
        why, label = "; ".join(reasons[:2]), study.runs[name].label
        parts.append(f"{label} was {why}" if len(repeats) == 1 else
                     f"{label}: {len(flagged)} of {len(repeats)} seeds {why}")
    return f" *May be under-trained: {'; '.join(parts)}.*" if parts else ""
