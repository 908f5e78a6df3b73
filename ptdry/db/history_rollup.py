"""History rollups: each metric's extremes per bucket of steps, so that a curve of millions of
steps is drawn from a few thousand documents.

Reading a run's raw ``history`` costs ≈24 µs a record on the embedded server (≈25 s for a
run of 1M steps), far too slow for a plot. So every batch of history records written also
updates, at six levels of detail (buckets of 16, 128, 1024, 8192, 65536 and 524288 steps),
one document per (run, phase, level, bucket) in the ``history_rollups`` collection::

    {"_id": "<run>\\x1f<phase>\\x1f<level>\\x1f<bucket>", "run", "phase", "level", "b",
     "m": {metric: {"first": [step, value, epoch], "last": [step, value, epoch],
                    "lo": [value, step, epoch], "hi": [value, step, epoch]}}}

— the first, last, lowest and highest point of the bucket: what a plot needs to draw the
bucket exactly at pixel resolution (M4 aggregation). The updates use only ``$min`` and
``$max`` (the server compares the arrays element by element), so they commute and are
idempotent: a batch written twice (a journal replayed after an outage, a resumed run that
repeats steps) or out of order gives the same documents. Records without a step have no
place on a curve and are left out (the Trainer always sets one), and so are NaN values (a
gap in the curve).

Records are only dropped when a resumed run replaces those after its checkpoint (see
:func:`~ptdry.db.history_store.truncate_history`): :func:`rebuild_rollups` then rebuilds the
buckets from the first dropped step on — the finest from the records, each coarser one from
the eight below it — so a curve never shows values of the discarded steps.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from ptdry.core.serialize import escape_key

__all__ = ["COLLECTION", "LEVELS", "TOP_LEVEL", "rebuild_rollups", "rollup_updates", "unescape_key", "write_rollups"]

COLLECTION = "history_rollups"

#: Bucket width in steps of each level (1 = finest).
LEVELS: dict[int, int] = {1: 16, 2: 128, 3: 1024, 4: 8192, 5: 65536, 6: 524288}
TOP_LEVEL = max(LEVELS)

_SEP = "\x1f"


def unescape_key(key: str) -> str:
    """The metric name a rollup stores as ``key`` (the inverse of ``escape_key``)."""
    return key.replace("\uff0e", ".").replace("\uff04", "$")


def _x(doc: dict[str, Any]) -> float | None:
    x = doc.get("step")
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return x


def _epoch_key(epoch: Any) -> float:
    # BSON orders null before every number; so does -inf here.
    return -math.inf if epoch is None else epoch


def rollup_updates(docs: Iterable[dict[str, Any]], levels: Iterable[int] = LEVELS) -> dict[str, dict[str, Any]]:
    """The update of every rollup document (of ``levels``, default all) a batch of history
    records touches: ``{_id: {"$setOnInsert": identity, "$min": {...}, "$max": {...}}}``,
    already reduced within the batch (one update per bucket)."""
    widths = {level: LEVELS[level] for level in levels}
    lows: dict[str, dict[str, list]] = {}
    highs: dict[str, dict[str, list]] = {}
    idents: dict[str, dict[str, Any]] = {}
    for doc in docs:
        x = _x(doc)
        if x is None:
            continue
        epoch = doc.get("epoch")
        values = [
            (escape_key(k), v)
            for k, v in (doc.get("metrics") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
        ]
        if not values:
            continue
        run, phase = doc["run"], doc.get("phase") or ""
        for level, width in widths.items():
            b = int(x // width)
            _id = f"{run}{_SEP}{phase}{_SEP}{level}{_SEP}{b}"
            if _id not in idents:
                idents[_id] = {"run": run, "phase": phase, "level": level, "b": b}
                lows[_id], highs[_id] = {}, {}
            low, high = lows[_id], highs[_id]
            for key, v in values:
                by_value = [v, x, epoch]
                by_step = [x, v, epoch]
                _keep(low, f"m.{key}.lo", by_value, min)
                _keep(high, f"m.{key}.hi", by_value, max)
                _keep(low, f"m.{key}.first", by_step, min)
                _keep(high, f"m.{key}.last", by_step, max)
    return {_id: {"$setOnInsert": idents[_id], "$min": lows[_id], "$max": highs[_id]} for _id in idents}


def _keep(store: dict[str, list], field: str, point: list, pick: Any) -> None:
    old = store.get(field)
    if old is None:
        store[field] = point
        return
    key = lambda p: (p[0], p[1], _epoch_key(p[2]))  # noqa: E731
    store[field] = pick(old, point, key=key)


def write_rollups(history: Any, docs: list[dict[str, Any]]) -> int:
    """Update the rollups of the records ``docs`` (written, or about to be, to the
    collection ``history``); returns how many rollup documents were touched.

    Buckets new to the database are inserted in one command (an upsert costs the embedded
    server ≈10x an insert); only those already stored (the ends of the previous batch, the
    coarse levels) are updated with ``$min``/``$max``.
    """
    return _write(history.database[COLLECTION], rollup_updates(docs))


def rebuild_rollups(history: Any, run: str, step: float) -> None:
    """Rebuild ``run``'s rollups of the buckets holding ``step`` and later, from the records
    now in the collection ``history`` (after those from ``step`` on were dropped or
    replaced). Reads the records from the start of ``step``'s finest bucket, and at most
    eight rollup documents per coarser bucket rebuilt."""
    coll = history.database[COLLECTION]
    for level, width in LEVELS.items():
        coll.delete_many({"run": run, "level": level, "b": {"$gte": int(step // width)}})
    start = int(step // LEVELS[1]) * LEVELS[1]
    _write(coll, rollup_updates(history.find({"run": run, "step": {"$gte": start}}, {"_id": 0}), levels=[1]))
    for level in range(2, TOP_LEVEL + 1):
        ratio = LEVELS[level] // LEVELS[level - 1]
        first_child = int(step // LEVELS[level]) * ratio
        children = coll.find({"run": run, "level": level - 1, "b": {"$gte": first_child}}, {"_id": 0})
        _write(coll, _merged(children, level, ratio))


def _merged(children: Iterable[dict[str, Any]], level: int, ratio: int) -> dict[str, dict[str, Any]]:
    """The updates of the level-``level`` buckets made of rollup documents one level finer."""
    lows: dict[str, dict[str, list]] = {}
    highs: dict[str, dict[str, list]] = {}
    idents: dict[str, dict[str, Any]] = {}
    for child in children:
        run, phase, b = child["run"], child["phase"], child["b"] // ratio
        _id = f"{run}{_SEP}{phase}{_SEP}{level}{_SEP}{b}"
        if _id not in idents:
            idents[_id] = {"run": run, "phase": phase, "level": level, "b": b}
            lows[_id], highs[_id] = {}, {}
        for key, point in child.get("m", {}).items():
            _keep(lows[_id], f"m.{key}.lo", point["lo"], min)
            _keep(highs[_id], f"m.{key}.hi", point["hi"], max)
            _keep(lows[_id], f"m.{key}.first", point["first"], min)
            _keep(highs[_id], f"m.{key}.last", point["last"], max)
    return {_id: {"$setOnInsert": idents[_id], "$min": lows[_id], "$max": highs[_id]} for _id in idents}


def _write(coll: Any, updates: dict[str, dict[str, Any]]) -> int:
    from pymongo.errors import BulkWriteError

    if not updates:
        return 0
    ids = list(updates)
    try:
        coll.insert_many([_as_document(_id, updates[_id]) for _id in ids], ordered=False)
        return len(ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        stored = [ids[e["index"]] for e in errors]
    if type(coll).__module__.startswith("mongomock"):  # its bulk UpdateOne breaks under pymongo >= 4.11
        for _id in stored:
            coll.update_one({"_id": _id}, updates[_id], upsert=True)
        return len(ids)
    from pymongo import UpdateOne

    coll.bulk_write([UpdateOne({"_id": _id}, updates[_id], upsert=True) for _id in stored], ordered=False)
    return len(ids)


def _as_document(_id: str, update: dict[str, Any]) -> dict[str, Any]:
    """The document an upsert of ``update`` into an empty collection would create."""
    doc: dict[str, Any] = {"_id": _id, **update["$setOnInsert"]}
    for field, value in (*update["$min"].items(), *update["$max"].items()):
        node = doc
        *parents, leaf = field.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return doc
