"""History: what a run recorded — per-metric summaries in memory, the records in a store.

A long run logs millions of :class:`Statistic` records; holding them all costs about 300 MB
per million. So a History keeps, in memory, only its *length* (how many records were
logged), a running :class:`~ptdry.core.metric_summary.MetricSummary` per metric (last,
best, mean, count) and a short tail of recent records; the records themselves go to its
*store*:

- :class:`MemoryStore` (the default): a list in memory — a bare Trainer's history;
- a Session's store (:class:`ptdry.db.history_store.RunHistoryStore`): streamed to the
  run's ``history`` collection and read back on demand;
- ``None``: records are not kept (summaries and tail only).

``state_dict()`` holds the length and the summaries — never the records — so a trainer's
state has one format whatever the store.
"""

from __future__ import annotations

import collections
from typing import Any, Iterator, Mapping

from ptdry.core.metamodule import Metamodule
from ptdry.core.metric_summary import MetricSummary, metric_mode
from ptdry.core.statistic import Statistic
from ptdry.errors import ConfigError

__all__ = ["History", "MemoryStore", "metric_mode"]


def _check_mode(mode: str) -> str:
    if mode not in ("min", "max"):
        raise ConfigError(f"mode must be 'min' or 'max'; received {mode!r}")
    return mode


class MemoryStore:
    """Records kept in a list. ``start`` is the index of the first one held (records before
    it were logged elsewhere, e.g. before the checkpoint this history was loaded from)."""

    def __init__(self, records: list[Statistic] | None = None, start: int = 0) -> None:
        self.items: list[Statistic] = list(records or [])
        self.start = start

    def append(self, stat: Statistic) -> None:
        self.items.append(stat)

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Statistic]:
        lo = max(start, self.start) - self.start
        hi = None if stop is None else max(stop - self.start, 0)
        return iter(self.items[lo:hi])

    def rewind(self, length: int) -> None:
        """Forget records from index ``length`` on (a state of that length was loaded)."""
        if self.start <= length <= self.start + len(self.items):
            del self.items[length - self.start :]
        else:  # the held records are of another stretch of the run
            self.items.clear()
            self.start = length

    def __repr__(self) -> str:
        return f"MemoryStore({len(self.items)} records from {self.start})"


class _NoStore:
    """Keeps no records."""

    start = 0

    def append(self, stat: Statistic) -> None:
        pass

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Statistic]:
        return iter(())

    def rewind(self, length: int) -> None:
        pass

    def __repr__(self) -> str:
        return "no store"


class History(Metamodule):
    """Every :class:`Statistic` logged: summaries in memory, records in a store.

    Args:
        records: Statistics to start with.
        store: where records go (default a :class:`MemoryStore`).
        tail: how many recent records :meth:`recent` keeps in memory.

    Example:
        >>> h = History()
        >>> _ = h.log("val", {"loss": 0.5}, step=1); _ = h.log("val", {"loss": 0.4}, step=2)
        >>> h.last("val.loss"), h.best("val.loss"), h.series("val.loss"), len(h)
        (0.4, 0.4, [(1, 0.5), (2, 0.4)], 2)
    """

    def __init__(self, records: list[Statistic] | None = None, *, store: Any = None, tail: int = 100) -> None:
        self._length = 0
        self._metrics: dict[str, MetricSummary] = {}
        self._tail: collections.deque[Statistic] = collections.deque(maxlen=tail)
        self._store: Any = MemoryStore() if store is None else store
        for stat in records or ():
            self.append(stat)

    # -- recording ---------------------------------------------------------------------------
    def append(self, stat: Statistic) -> Statistic:
        """Record ``stat``: update the summaries and the tail, hand it to the store."""
        metrics, name = self._metrics, stat.name
        for key, value in stat.values.items():
            metric = f"{name}.{key}" if name else key
            entry = metrics.get(metric)
            if entry is None:
                entry = metrics[metric] = MetricSummary()
            entry.add(value, stat.step)
        self._length += 1
        self._tail.append(stat)
        self._store.append(stat)
        return stat

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
        return self.append(stat)

    # -- the store -----------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        """Where the records are (a :class:`MemoryStore`, a run's database store, ...)."""
        return None if isinstance(self._store, _NoStore) else self._store

    def use_store(self, store: Any) -> None:
        """Send records to ``store`` from now on (None: keep no records). The store holds
        the records from index ``store.start`` on, and ``rewind(length)`` is called when a
        state is loaded."""
        if store is not None and not all(callable(getattr(store, m, None)) for m in ("append", "read", "rewind")):
            raise ConfigError(f"a history store needs append, read and rewind methods; received {store!r}")
        self._store = _NoStore() if store is None else store

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        """How many records were logged (whether or not the store holds them all)."""
        return self._length

    def __iter__(self) -> Iterator[Statistic]:
        return self._store.read(0, self._length)

    @property
    def records(self) -> list[Statistic]:
        """The records the store holds, in order (read from the database for a Session's
        history; records before ``store.start`` are not held)."""
        return list(self)

    def recent(self, n: int | None = None) -> list[Statistic]:
        """The last ``n`` (default: all kept) records logged in this process."""
        items = list(self._tail)
        return items if n is None else items[-n:] if n > 0 else []

    def metrics(self) -> list[str]:
        """Metric names in the order first seen."""
        return list(self._metrics)

    def series(self, metric: str) -> list[tuple[int | None, float]]:
        """``[(step, value), ...]`` of one metric (read from the store)."""
        return [(s.step, s[metric]) for s in self if metric in s]

    def _entry(self, metric: str) -> MetricSummary:
        entry = self._metrics.get(metric)
        if entry is None:
            raise KeyError(f"no values logged for metric {metric!r}; logged: {self.metrics()}")
        return entry

    def last(self, metric: str) -> float:
        return self._entry(metric).last

    def best(self, metric: str, mode: str | None = None) -> float:
        """Lowest (``mode="min"``) or highest value; mode defaults by :func:`metric_mode`."""
        mode = _check_mode(mode or metric_mode(metric))
        entry = self._metrics.get(metric)
        if entry is None or not entry.valid:
            raise KeyError(f"no non-NaN values logged for metric {metric!r}; logged: {self.metrics()}")
        return entry.best(mode)[1]

    def summary(self, modes: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """``{metric: {"last", "best", "best_step", "mode", "mean", "count"}}`` for every
        metric, from the running summaries (no record is read). Ties keep the earliest best;
        NaN is never best (``best`` is NaN only when every value is) and not in the mean."""
        out = {}
        for metric, entry in self._metrics.items():
            mode = _check_mode((modes or {}).get(metric) or metric_mode(metric))
            step, best = entry.best(mode)
            out[metric] = {
                "last": entry.last, "best": best, "best_step": step, "mode": mode, "mean": entry.mean, "count": entry.count
            }
        return out

    def to_dataframe(self) -> Any:
        """A pandas DataFrame: one row per record held, columns step, epoch, t and metrics."""
        try:
            import pandas
        except ImportError:
            raise ImportError("History.to_dataframe() needs pandas: pip install pandas") from None
        rows = [{"step": s.step, "epoch": s.epoch, "t": s.t, **dict(s)} for s in self]
        return pandas.DataFrame(rows, columns=["step", "epoch", "t", *self.metrics()])

    # -- state and documents ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"length", "summaries"}``: where the history is and what it summarizes."""
        return {"length": self._length, "summaries": {m: e.to_state() for m, e in self._metrics.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Go back (or forward) to a saved position: summaries restored, the tail emptied, and
        the store told to forget records past it."""
        length = state.get("length", 0)
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ConfigError(f"history length must be an integer >= 0; received {length!r}")
        metrics = {m: MetricSummary.from_state(f) for m, f in (state.get("summaries") or {}).items()}
        self._length, self._metrics = length, metrics
        self._tail.clear()
        self._store.rewind(length)

    def to_document(self) -> dict[str, Any]:
        return {"records": [s.to_document() for s in self], "start": self._store.start, **self.state_dict()}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "History":
        records = [Statistic.from_document(r) for r in doc.get("records", [])]
        if "length" not in doc:  # a document of only records
            return cls(records)
        h = cls(store=MemoryStore(records, start=doc.get("start", 0)))
        h._length = doc["length"]
        h._metrics = {m: MetricSummary.from_state(f) for m, f in (doc.get("summaries") or {}).items()}
        return h

    def __repr__(self) -> str:
        return f"History({self._length} records, metrics={self.metrics()}, store={self._store!r})"
