"""MetricSummary: one metric's running summary (last, best both ways, mean, count) in O(1).

A History keeps one per metric instead of every value, so a run of millions of steps
answers ``last``/``best``/``summary`` without holding its records; the summary is part of
the trainer's state, so a resumed run's summary equals an uninterrupted run's.
"""

from __future__ import annotations

import math
from typing import Any

from ptdry.errors import ConfigError

__all__ = ["MetricSummary", "metric_mode"]

_MAX_WORDS = ("acc", "accuracy", "f1", "auc", "precision", "recall", "r2", "iou", "dice", "score")


def metric_mode(metric: str) -> str:
    """``"max"`` for metrics that grow when better (accuracy, f1, auc, ...), else ``"min"``."""
    last = metric.rsplit(".", 1)[-1].lower()
    return "max" if any(last == w or last.endswith("_" + w) for w in _MAX_WORDS) else "min"


class MetricSummary:
    """Running summary of one metric's values.

    NaN is counted but never best and not in the mean; ties keep the earliest best.

    Example:
        >>> m = MetricSummary()
        >>> for step, v in enumerate([0.5, float("nan"), 0.2, 0.2]):
        ...     m.add(v, step)
        >>> m.last, m.best("min"), m.mean, m.count
        (0.2, (2, 0.2), 0.3, 4)
    """

    __slots__ = ("count", "valid", "total", "last", "last_step", "low", "low_step", "high", "high_step")
    _FIELDS = __slots__

    def __init__(self) -> None:
        self.count = 0  # values seen
        self.valid = 0  # of which not NaN
        self.total = 0.0  # sum of the valid ones
        self.last = math.nan
        self.last_step: int | None = None
        self.low = self.high = math.nan
        self.low_step: int | None = None
        self.high_step: int | None = None

    def add(self, value: float, step: int | None) -> None:
        self.count += 1
        self.last, self.last_step = value, step
        if value != value:  # NaN
            return
        self.valid += 1
        self.total += value
        if self.valid == 1:
            self.low = self.high = value
            self.low_step = self.high_step = step
        elif value < self.low:
            self.low, self.low_step = value, step
        elif value > self.high:
            self.high, self.high_step = value, step

    @property
    def mean(self) -> float:
        """Mean of the non-NaN values (NaN when there are none)."""
        return self.total / self.valid if self.valid else math.nan

    def best(self, mode: str) -> tuple[int | None, float]:
        """``(step, value)`` of the lowest (``"min"``) or highest (``"max"``) non-NaN value;
        ``(None, nan)`` when every value was NaN."""
        return (self.low_step, self.low) if mode == "min" else (self.high_step, self.high)

    def to_state(self) -> list[Any]:
        """The fields as a list (what a trainer's state stores)."""
        return [getattr(self, f) for f in self._FIELDS]

    @classmethod
    def from_state(cls, fields: list[Any]) -> "MetricSummary":
        if not isinstance(fields, (list, tuple)) or len(fields) != len(cls._FIELDS):
            raise ConfigError(f"a metric summary state is a list of {len(cls._FIELDS)} fields; received {fields!r}")
        m = cls()
        for name, value in zip(cls._FIELDS, fields):
            setattr(m, name, value)
        return m

    def __repr__(self) -> str:
        return f"MetricSummary(last={self.last}, low={self.low}, high={self.high}, mean={self.mean}, count={self.count})"
