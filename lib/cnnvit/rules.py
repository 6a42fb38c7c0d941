"""What a config key allows beyond its type, declared once beside the key: a :class:`Rule`
(choices, or a range). The config checks its own keys against a table of rules and a data set's
options against the rules its :class:`~cnnvit.datasets.DatasetSpec` declares; neither needs torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import yaml


@dataclass(frozen=True)
class Rule:
    """The values a key allows: one of ``choices``, or a number within ``low`` .. ``high``
    (None: no bound; ``*_open``: the bound itself is not allowed). A null value passes: whether
    a key may be null is its type's business."""

    choices: tuple[Any, ...] = ()
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any, nullable: bool = False) -> Optional[str]:
        """What is wrong with ``value`` (for a message ``"<key>: <problem>"``), or None;
        ``nullable``: the key may also be null, and the message says so."""
        if value is None:
            return None
        if self.choices:
            # bool is an int to Python: True must not pass for 1 (nor 1 for True)
            if not any(value == c and type(value) is type(c) for c in self.choices):
                return f"{value!r} is not one of {', '.join(map(scalar, self.choices))}"
            return None
        many = isinstance(value, (list, tuple))
        if all(self._within(v) for v in (value if many else [value])):
            return None
        allowed = self.describe() + (" or null" if nullable and not many else "")
        return f"{'every value ' if many else ''}{allowed}, got {list(value) if many else value}"

    def _within(self, v: float) -> bool:
        low_ok = self.low is None or (v > self.low if self.low_open else v >= self.low)
        high_ok = self.high is None or (v < self.high if self.high_open else v <= self.high)
        return low_ok and high_ok

    def describe(self) -> str:
        """The rule in words: "must be positive", "must be at least 2", "must lie in [0, 1)"."""
        if self.high is None:
            if self.low == 0 and self.low_open:
                return "must be positive"
            return f"must be at least {self.low:g}" if not self.low_open else f"must exceed {self.low:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"must lie in {left}{self.low:g}, {self.high:g}{right}"


POSITIVE = Rule(low=0, low_open=True)
FRACTION = Rule(low=0.0, high=1.0)  # [0, 1]


def scalar(value: Any) -> str:
    """``value`` as YAML writes it in flow style (true, null, 0.5, 'a b')."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
