"""MonitorCallback: the shared base of callbacks that watch one metric (min or max is better).

EarlyStopping, Checkpoint (keep best) and LRScheduler (ReduceLROnPlateau) compare values of
one metric; the metric's name, the direction and the tolerance live here once.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from ptdry.core.callback import Callback
from ptdry.core.history import metric_mode
from ptdry.core.properties import Choice, Float, Str

__all__ = ["MonitorCallback"]


class MonitorCallback(Callback):
    """A callback watching ``monitor`` (e.g. ``"val.loss"``), where lower or higher is better.

    Subclasses call :meth:`_init_monitor` from their ``__init__``.

    Example:
        >>> cb = MonitorCallback(); cb._init_monitor("val.accuracy", "auto", min_delta=0.01)
        >>> cb.mode, cb.improved(0.9, 0.85), cb.improved(0.855, 0.85)
        ('max', True, False)
    """

    monitor = Str(nonempty=True, doc="a metric name such as 'val.loss'")
    mode = Choice(["auto", "min", "max"])
    min_delta = Float(min=0.0)

    def _init_monitor(self, monitor: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        self.monitor = monitor
        self.mode = mode
        if self.mode == "auto":
            self.mode = metric_mode(monitor)
        self.min_delta = min_delta

    def monitored(self, metrics: Mapping[str, Any]) -> float | None:
        """The monitored value in ``metrics``, or None when absent."""
        value = metrics.get(self.monitor)
        return None if value is None else float(value)

    def improved(self, value: float, best: float | None) -> bool:
        """True if ``value`` beats ``best`` by more than ``min_delta`` (NaN never does)."""
        if value is None or math.isnan(value):
            return False
        if best is None or math.isnan(best):
            return True
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta
