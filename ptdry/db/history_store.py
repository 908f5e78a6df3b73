"""A run's history in the ``history`` collection: the record format, and the History store
that streams a Session's records there and reads them back on demand.

Each :class:`~ptdry.core.statistic.Statistic` is one small document ``{_id: "<run>:<seq>",
run, seq, step, epoch, phase, metrics, t}`` — never inside the run document (MongoDB's 16 MB
limit). The deterministic ``_id`` makes every write idempotent: a record written twice (a
journal replayed, a resumed run) is stored once. Every write also keeps the run's rollups
(:mod:`ptdry.db.history_rollup`), which plots read, in step: :func:`insert_history` and
:func:`truncate_history` are the two ways records reach or leave the collection.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ptdry.core.statistic import Statistic
from ptdry.db.history_rollup import rebuild_rollups, write_rollups

__all__ = ["RunHistoryStore", "history_document", "insert_history", "insert_new", "read_history", "truncate_history"]


def history_document(run: str, seq: int, stat: Statistic) -> dict[str, Any]:
    """The ``history`` document of one Statistic."""
    return {
        "_id": f"{run}:{seq}",
        "run": run,
        "seq": seq,
        "step": stat.step,
        "epoch": stat.epoch,
        "phase": stat.name,
        "metrics": dict(stat.values),
        "t": stat.t,
    }


def insert_new(collection: Any, docs: list[dict[str, Any]], batch: int = 5000) -> int:
    """Insert ``docs`` (``batch`` per command), skipping those whose ``_id`` is already
    stored; returns how many were new."""
    from pymongo.errors import BulkWriteError

    new = 0
    for start in range(0, len(docs), batch):
        chunk = docs[start : start + batch]
        try:
            new += len(collection.insert_many(chunk, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            new += len(chunk) - len(errors)
    return new


def insert_history(collection: Any, docs: list[dict[str, Any]]) -> int:
    """Insert history records (skipping those already stored) and update their rollups;
    returns how many records were new."""
    new = insert_new(collection, docs)
    write_rollups(collection, docs)
    return new


def truncate_history(collection: Any, run: str, seq: int) -> int:
    """Drop ``run``'s records from number ``seq`` on (a resumed run writes them again from
    its checkpoint) and rebuild the rollups they were part of; returns how many were dropped."""
    first = list(
        collection.find({"run": run, "seq": {"$gte": seq}, "step": {"$ne": None}}, {"_id": 0, "step": 1}).sort("step", 1).limit(1)
    )
    dropped = collection.delete_many({"run": run, "seq": {"$gte": seq}}).deleted_count
    if first:
        rebuild_rollups(collection, run, first[0]["step"])
    return dropped


def read_history(collection: Any, run: str, start: int = 0, stop: int | None = None) -> Iterator[Statistic]:
    """The records ``start`` to ``stop`` (default: all) of ``run``, in order, streamed."""
    seq: dict[str, int] = {"$gte": start}
    if stop is not None:
        seq["$lt"] = stop
    docs = collection.find({"run": run, "seq": seq}, {"_id": 0}).sort("seq", 1)
    for d in docs:
        yield Statistic(d.get("phase") or "", d.get("metrics") or {}, step=d.get("step"), epoch=d.get("epoch"), t=d.get("t"))


class RunHistoryStore:
    """The records of run ``run`` in ``db``'s ``history`` collection, as a History store.

    While the run is live, :meth:`attach` sends each new record to the run's background
    writer (nothing is kept in memory); afterwards reading asks the database. Records
    logged once the run has ended (e.g. ``trainer.evaluate`` after ``session.run()``) are
    kept in memory after the stored ones.

    Args:
        db: the run's :class:`~ptdry.db.interface.DBInterface`.
        run: the run's id.
        stored: how many records the run has in the database (its history's length).
    """

    start = 0

    def __init__(self, db: Any, run: str, stored: int = 0) -> None:
        self.db = db
        self.run = run
        self._sink: Callable[[Statistic], Any] | None = None
        self._stored = stored
        self._extra: list[Statistic] = []

    def attach(self, sink: Callable[[Statistic], Any], length: int) -> None:
        """Records from index ``length`` on go to ``sink`` (the run's writer)."""
        self._stored, self._extra, self._sink = length, [], sink

    def detach(self, length: int) -> None:
        """The run ended with ``length`` records stored (or journaled for ``ptdry sync``)."""
        self._stored, self._sink = length, None

    def append(self, stat: Statistic) -> None:
        if self._sink is not None:
            self._sink(stat)
        else:
            self._extra.append(stat)

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Statistic]:
        live = self._sink is not None
        stored_stop = stop if live else (self._stored if stop is None else min(stop, self._stored))
        if stored_stop is None or start < stored_stop:
            yield from read_history(self.db.collection("history"), self.run, start, stored_stop)
        if not live:
            lo = max(start - self._stored, 0)
            hi = None if stop is None else max(stop - self._stored, 0)
            yield from self._extra[lo:hi]

    def rewind(self, length: int) -> None:
        if length <= self._stored:
            self._stored, self._extra = length, []
        else:
            del self._extra[length - self._stored :]

    def __repr__(self) -> str:
        return f"RunHistoryStore(run {self.run!r}{', live' if self._sink else ''})"
