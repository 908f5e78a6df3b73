"""History: the sequence of statistics a run computed, with per-metric series and summaries."""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

from ptdry.core.metamodule import Metamodule
from ptdry.core.statistic import Statistic
from ptdry.errors import ConfigError

__all__ = ["History", "metric_mode"]

_MAX_WORDS = ("acc", "accuracy", "f1", "auc", "precision", "recall", "r2", "iou", "dice", "score")


def metric_mode(metric: str) -> str:
    """``"max"`` for metrics that grow when better (accuracy, f1, auc, ...), else ``"min"``."""
    last = metric.rsplit(".", 1)[-1].lower()
    return "max" if any(last == w or last.endswith("_" + w) for w in _MAX_WORDS) else "min"


def _check_mode(mode: str) -> str:
    if mode not in ("min", "max"):
        raise ConfigError(f"mode must be 'min' or 'max'; received {mode!r}")
    return mode


class History(Metamodule):
    """Every :class:`Statistic` logged, in order.

    Example:
        >>> h = History()
        >>> _ = h.log("val", {"loss": 0.5}, step=1); _ = h.log("val", {"loss": 0.4}, step=2)
        >>> h.last("val.loss"), h.best("val.loss"), h.series("val.loss")
        (0.4, 0.4, [(1, 0.5), (2, 0.4)])
    """

    def __init__(self, records: list[Statistic] | None = None) -> None:
        self.records: list[Statistic] = list(records or [])

    def log(
        self,
        name: str | Statistic,
        values: Mapping[str, Any] | None = None,
        *,
        step: int | None = None,
        epoch: int | None = None,
    ) -> Statistic:
        """Append a Statistic (given, or made from ``name`` and ``values``) and return it."""
        stat = name if isinstance(name, Statistic) else Statistic(name, values, step=step, epoch=epoch)
        self.records.append(stat)
        return stat

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Statistic]:
        return iter(self.records)

    def metrics(self) -> list[str]:
        """Metric names in the order first seen."""
        seen: dict[str, None] = {}
        for stat in self.records:
            seen.update(dict.fromkeys(stat))
        return list(seen)

    def series(self, metric: str) -> list[tuple[int | None, float]]:
        """``[(step, value), ...]`` of one metric."""
        return [(s.step, s[metric]) for s in self.records if metric in s]

    def last(self, metric: str) -> float:
        values = self.series(metric)
        if not values:
            raise KeyError(f"no values logged for metric {metric!r}; logged: {self.metrics()}")
        return values[-1][1]

    def best(self, metric: str, mode: str | None = None) -> float:
        """Lowest (``mode="min"``) or highest value; mode defaults by :func:`metric_mode`."""
        return self._best(metric, mode)[1]

    def _best(self, metric: str, mode: str | None) -> tuple[int | None, float]:
        mode = _check_mode(mode or metric_mode(metric))
        values = [(s, v) for s, v in self.series(metric) if not math.isnan(v)]
        if not values:
            raise KeyError(f"no non-NaN values logged for metric {metric!r}; logged: {self.metrics()}")
        pick = min if mode == "min" else max
        return pick(values, key=lambda sv: sv[1])

    def summary(self, modes: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """``{metric: {"last", "best", "best_step", "mode"}}`` for every metric, in one pass
        over the records (runs may log millions of points). Ties keep the earliest best;
        NaN is never best (``best`` is NaN only when every value is)."""
        entries: dict[str, dict[str, Any]] = {}
        lower: dict[str, bool] = {}
        for stat in self.records:
            prefix = f"{stat.name}." if stat.name else ""
            for key, value in stat.values.items():
                metric = prefix + key
                entry = entries.get(metric)
                if entry is None:
                    mode = _check_mode((modes or {}).get(metric) or metric_mode(metric))
                    entry = entries[metric] = {"last": value, "mode": mode, "best_step": None, "best": math.nan}
                    lower[metric] = mode == "min"
                entry["last"] = value
                if value == value:  # not NaN
                    best = entry["best"]
                    if best != best or (value < best if lower[metric] else value > best):
                        entry["best"], entry["best_step"] = value, stat.step
        return {m: {"last": e["last"], "mode": e["mode"], "best_step": e["best_step"], "best": e["best"]} for m, e in entries.items()}

    def to_dataframe(self) -> Any:
        """A pandas DataFrame: one row per Statistic, columns step, epoch, t and metrics."""
        try:
            import pandas
        except ImportError:
            raise ImportError("History.to_dataframe() needs pandas: pip install pandas") from None
        rows = [{"step": s.step, "epoch": s.epoch, "t": s.t, **dict(s)} for s in self.records]
        return pandas.DataFrame(rows, columns=["step", "epoch", "t", *self.metrics()])

    def to_document(self) -> dict[str, Any]:
        return {"records": [s.to_document() for s in self.records]}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "History":
        return cls([Statistic.from_document(r) for r in doc.get("records", [])])

    def __repr__(self) -> str:
        return f"History({len(self.records)} records, metrics={self.metrics()})"
