"""Curves of a run's metrics, down-sampled in the server to what a plot can show.

:func:`metric_series` picks the coarsest rollup level (:mod:`ptdry.db.history_rollup`) that
still has about one bucket per pixel in the asked range, starting from the top (a few
documents) and going finer only while there are too few buckets; below the finest level it
reads the raw records of that small range. The points found are then reduced to at most
four per pixel column (first, lowest, highest, last: M4), so the plot is exact at its
resolution whatever the run's length. A run written before rollups existed is read raw.
Records without a step are not drawn (they have no place on the x axis).

Example:
    >>> from ptdry import Statistic
    >>> from ptdry.db.history_store import history_document, insert_history
    >>> from ptdry.db.interface import DBInterface
    >>> db = DBInterface("mongomock://history-query-example")
    >>> docs = [history_document("r", i, Statistic("train", {"loss": 1 / (i + 1)}, step=i)) for i in range(100)]
    >>> _ = insert_history(db.collection("history"), docs)
    >>> run_metrics(db, "r")
    ['train.loss']
    >>> curve = metric_series(db, "r", ["train.loss"], points=10)["series"]["train.loss"]
    >>> curve["source"], curve["step"][:4], len(curve["step"]) <= 4 * 10
    ('rollup level 1', [0, 15, 16, 31], True)
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from ptdry.core.serialize import escape_key
from ptdry.db.history_rollup import COLLECTION, LEVELS, TOP_LEVEL, unescape_key
from ptdry.errors import ConfigError, NotFoundError

__all__ = ["metric_series", "run_metrics"]

#: Most raw steps read below the finest rollup level, per pixel asked for.
RAW_STEPS_PER_POINT = 16

Point = tuple  # (step, value, epoch)


def _full(phase: str, key: str) -> str:
    return f"{phase}.{key}" if phase else key


def _top(db: Any, run: str) -> list[dict[str, Any]]:
    return list(db.collection(COLLECTION).find({"run": run, "level": TOP_LEVEL}, {"_id": 0, "phase": 1, "b": 1, "m": 1}))


def run_metrics(db: Any, run: str) -> list[str]:
    """Names of the metrics ``run`` logged (``"val.loss"``, …), sorted; read from a few
    rollup documents. Empty for a run without history or written before rollups existed."""
    names = {_full(d["phase"], unescape_key(k)) for d in _top(db, run) for k in d.get("m", {})}
    return sorted(names)


def metric_series(
    db: Any,
    run: str,
    metrics: Sequence[str] | None = None,
    *,
    points: int = 1000,
    start: float | None = None,
    end: float | None = None,
) -> dict[str, Any]:
    """Down-sampled curves of ``metrics`` (default: all) of ``run`` between steps ``start``
    and ``end`` (default: all), for a plot ``points`` pixels wide.

    Returns ``{"run", "series": {metric: {"step": [...], "value": [...], "epoch": [...],
    "source": "rollup level L" or "raw"}}, "start", "end"}`` with at most ``4 * points``
    points a curve, sorted by step; ``start``/``end`` are the extent of the whole run when
    not given.

    Raises:
        ConfigError: ``points`` or the range are not usable.
        NotFoundError: the run has no such metric (the message lists those it has).
    """
    if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= 20000:
        raise ConfigError(f"points must be an integer from 2 to 20000 (the plot's width); received {points!r}")
    for name, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise ConfigError(f"{name} must be a finite step number or None; received {value!r}")
    if start is not None and end is not None and start > end:
        raise ConfigError(f"start must not be after end; received start={start}, end={end}")
    top = _top(db, run)
    if not top:
        return _legacy_series(db, run, metrics, points, start, end)
    known = {_full(d["phase"], unescape_key(k)): (d["phase"], k) for d in top for k in d.get("m", {})}
    wanted = sorted(known) if metrics is None else list(dict.fromkeys(metrics))
    missing = [m for m in wanted if m not in known]
    if missing:
        raise NotFoundError(f"run {run} has no metric {missing[0]!r}; its metrics: {', '.join(sorted(known)) or 'none'}")
    by_phase: dict[str, list[str]] = {}
    for m in wanted:
        by_phase.setdefault(known[m][0], []).append(m)
    extent = _extent([d for d in top if d["phase"] in by_phase], {known[m][1] for m in wanted})
    lo = extent[0] if start is None else start
    hi = extent[1] if end is None else end
    series: dict[str, Any] = {}
    for phase, names in by_phase.items():
        keys = {m: known[m][1] for m in names}
        level, docs = _descend(db, run, phase, [d for d in top if d["phase"] == phase], keys.values(), lo, hi, points)
        if level == 0:
            raw = _raw_points(db, run, phase, [unescape_key(k) for k in keys.values()], lo, hi)
            for m, k in keys.items():
                series[m] = _m4(raw.get(unescape_key(k), []), lo, hi, points) | {"source": "raw"}
            continue
        for m, k in keys.items():
            pts: list[Point] = []
            for d in docs:
                e = d.get("m", {}).get(k)
                if e:
                    pts += [tuple(e["first"]), (e["lo"][1], e["lo"][0], e["lo"][2])]
                    pts += [(e["hi"][1], e["hi"][0], e["hi"][2]), tuple(e["last"])]
            series[m] = _m4(pts, lo, hi, points) | {"source": f"rollup level {level}"}
    return {"run": run, "series": series, "start": lo, "end": hi}


def _extent(docs: list[dict[str, Any]], keys: set[str]) -> tuple[float, float]:
    firsts = [e["first"][0] for d in docs for k, e in d.get("m", {}).items() if k in keys]
    lasts = [e["last"][0] for d in docs for k, e in d.get("m", {}).items() if k in keys]
    return (min(firsts), max(lasts)) if firsts else (0, 0)


def _descend(
    db: Any, run: str, phase: str, top: list[dict[str, Any]], keys: Iterable[str], lo: float, hi: float, points: int
) -> tuple[int, list[dict[str, Any]]]:
    """``(level, documents in [lo, hi])`` of the coarsest level with at least ``points / 2``
    buckets there; level 0 means: read the raw records (the range is small)."""
    keys = list(keys)
    projection = {"_id": 0, "b": 1, **{f"m.{k}": 1 for k in keys}}
    level = TOP_LEVEL
    docs = [d for d in top if lo // LEVELS[level] <= d["b"] <= hi // LEVELS[level]]
    while len(docs) < points // 2 and level > 1:
        level -= 1
        width = LEVELS[level]
        filt = {"run": run, "level": level, "phase": phase, "b": {"$gte": int(lo // width), "$lte": int(hi // width)}}
        docs = list(db.collection(COLLECTION).find(filt, projection))
    if len(docs) < points // 2 and hi - lo <= RAW_STEPS_PER_POINT * points:
        return 0, []
    return level, [d for d in docs if any(k in d.get("m", {}) for k in keys)]


def _raw_points(db: Any, run: str, phase: str, keys: list[str], lo: float, hi: float) -> dict[str, list[Point]]:
    """``{metric key: [(step, value, epoch), ...]}`` of the raw records of ``phase`` in
    [lo, hi]."""
    fields = {"_id": 0, "step": 1, "epoch": 1, "phase": 1, "metrics": 1}
    # The phase is checked here: the embedded server scans the whole collection when a
    # filter has a field besides those of the (run, step) index.
    docs = db.collection("history").find({"run": run, "step": {"$gte": lo, "$lte": hi}}, fields)
    out: dict[str, list[Point]] = {k: [] for k in keys}
    for d in docs:
        if (d.get("phase") or "") != phase:
            continue
        values = d.get("metrics") or {}
        for k in keys:
            v = values.get(k)
            if _number(v) and _number(d.get("step")):
                out[k].append((d["step"], v, d.get("epoch")))
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _legacy_series(
    db: Any, run: str, metrics: Sequence[str] | None, points: int, start: float | None, end: float | None
) -> dict[str, Any]:
    """Curves of a run without rollups, from all its raw records (slow for long runs)."""
    filt: dict[str, Any] = {"run": run}
    if start is not None or end is not None:
        filt["step"] = {k: v for k, v in (("$gte", start), ("$lte", end)) if v is not None}
    docs = list(db.collection("history").find(filt, {"_id": 0, "step": 1, "epoch": 1, "phase": 1, "metrics": 1}))
    by_metric: dict[str, list[Point]] = {}
    for d in docs:
        phase, x = d.get("phase") or "", d.get("step")
        for k, v in (d.get("metrics") or {}).items():
            if _number(v) and _number(x):
                by_metric.setdefault(_full(phase, k), []).append((x, v, d.get("epoch")))
    wanted = sorted(by_metric) if metrics is None else list(dict.fromkeys(metrics))
    missing = [m for m in wanted if m not in by_metric]
    if missing:
        raise NotFoundError(f"run {run} has no metric {missing[0]!r}; its metrics: {', '.join(sorted(by_metric)) or 'none'}")
    xs = [p[0] for m in wanted for p in by_metric[m]]
    lo = start if start is not None else (min(xs) if xs else 0)
    hi = end if end is not None else (max(xs) if xs else 0)
    series = {m: _m4(by_metric[m], lo, hi, points) | {"source": "raw"} for m in wanted}
    return {"run": run, "series": series, "start": lo, "end": hi}


def _m4(pts: list[Point], lo: float, hi: float, points: int) -> dict[str, list]:
    """At most four points (first, lowest, highest, last) per pixel column of [lo, hi]."""
    if len(pts) > 4 * points:
        span = (hi - lo) or 1
        cols: dict[int, list[Point]] = {}
        for p in pts:
            i = min(points - 1, max(0, int((p[0] - lo) / span * points)))
            c = cols.get(i)
            if c is None:
                cols[i] = [p, p, p, p]
                continue
            if p[0] < c[0][0]:
                c[0] = p
            if p[1] < c[1][1]:
                c[1] = p
            if p[1] > c[2][1]:
                c[2] = p
            if p[0] >= c[3][0]:
                c[3] = p
        pts = [p for c in cols.values() for p in c]
    unique = sorted(set(pts), key=lambda p: (p[0], -math.inf if p[2] is None else p[2], p[1]))
    return {
        "step": [p[0] for p in unique],
        "value": [p[1] if math.isfinite(p[1]) else None for p in unique],
        "epoch": [p[2] for p in unique],
    }
