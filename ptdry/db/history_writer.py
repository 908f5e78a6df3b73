"""HistoryWriter: per-step metrics to the ``history`` collection without stalling training.

``write()`` only appends to a queue; a background thread writes batches. Every record is
first appended to a journal file under ``$PTDRY_HOME/journal`` and carries a deterministic
``_id`` (``"<run>:<seq>"``), so:

- if the database is unreachable, training goes on, records wait in memory and in the
  journal, and are written when the server is back — or later by ``ptdry sync``;
- a record is never written twice (a duplicate ``_id`` is skipped), also when a resumed run
  repeats steps after its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import threading
import time
from typing import Any, Iterable

from ptdry.core.statistic import Statistic
from ptdry.db.history_rollup import write_rollups
from ptdry.db.interface import db_down_errors

__all__ = ["HistoryWriter", "insert_history", "read_history", "sync_journals"]

log = logging.getLogger(__name__)


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
    """Insert history records (skipping those already stored) and update their rollups
    (:mod:`ptdry.db.history_rollup`); returns how many records were new."""
    new = insert_new(collection, docs)
    write_rollups(collection, docs)
    return new


class HistoryWriter:
    """Background writer of one run's history records.

    Args:
        collection: a callable returning the ``history`` collection (called in the writer
            thread, so connecting never blocks the training loop).
        run: the run's id.
        journal_dir: where the append-only journal lives (default ``$PTDRY_HOME/journal``).
        start_seq: sequence number of the next record (a resumed run continues its count).
        flush_interval: seconds between batches.
    """

    def __init__(
        self,
        collection: Any,
        run: str,
        *,
        journal_dir: str | os.PathLike | None = None,
        start_seq: int = 0,
        flush_interval: float = 0.5,
        batch_size: int = 1000,
    ) -> None:
        if journal_dir is None:
            from ptdry.core.home import ptdry_home

            journal_dir = ptdry_home() / "journal"
        self._collection = collection
        self.run = run
        self.journal = pathlib.Path(journal_dir) / f"{run}.jsonl"
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self.seq = start_seq
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self._queue: list[dict[str, Any]] = []
        # Journaled, not yet known to be in the database: a journal left by a crashed
        # process of this run is picked up (duplicates are skipped on insert).
        self._pending: list[dict[str, Any]] = list(_read_journal(self.journal)) if self.journal.exists() else []
        self._journaled: list[dict[str, Any]] = []  # in the journal, not yet handed to the writer thread
        self._lock = threading.Lock()  # _queue, _journaled (held briefly)
        self._journal_lock = threading.Lock()  # the journal file
        self._flush_lock = threading.Lock()  # _pending and the database writes
        self._wake = threading.Event()
        self._closing = False
        self.written = 0
        self.db_down = False
        self._thread = threading.Thread(target=self._loop, name=f"ptdry-history-{run[:8]}", daemon=True)
        self._thread.start()

    def write(self, stat: Statistic) -> None:
        """Queue one record (never blocks on I/O)."""
        with self._lock:
            self._queue.append(history_document(self.run, self.seq, stat))
            self.seq += 1
            if len(self._queue) >= self.batch_size:
                self._wake.set()

    __call__ = write

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._flush_once()
            if self._closing:
                return

    def journal_now(self) -> None:
        """Append every queued record to the journal and fsync it, now (any thread).

        A Session calls this when a checkpoint is saved, so the history up to a checkpoint
        survives a kill even if the database never saw it.
        """
        with self._journal_lock:
            with self._lock:
                batch, self._queue = self._queue, []
            if not batch:
                return
            with open(self.journal, "a", encoding="utf-8") as f:
                for doc in batch:
                    f.write(json.dumps(doc) + "\n")
                f.flush()
                os.fsync(f.fileno())
            with self._lock:
                self._journaled.extend(batch)

    def _flush_once(self) -> None:
        self.journal_now()
        with self._flush_lock:
            with self._lock:
                self._pending.extend(self._journaled)
                self._journaled = []
            if not self._pending:
                return
            try:
                self.written += insert_history(self._collection(), self._pending)
                self._pending = []
                if self.db_down:
                    log.warning("database reachable again; history of run %s caught up", self.run)
                self.db_down = False
            except db_down_errors() as exc:
                if not self.db_down:
                    log.warning(
                        "database unreachable (%s); keeping history of run %s in the journal", type(exc).__name__, self.run
                    )
                self.db_down = True

    def _unwritten(self) -> bool:
        with self._lock:
            return bool(self._pending or self._queue or self._journaled)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush and stop. Returns True when every record reached the database (then the
        journal is removed); False leaves the journal for ``ptdry sync``."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self._unwritten() and time.monotonic() < deadline:
            self._flush_once()
            if self._pending:
                time.sleep(0.2)
        done = not self._unwritten()
        if done:
            self.journal.unlink(missing_ok=True)
        else:
            log.warning("history of run %s is kept in %s; run `ptdry sync` when the database is back", self.run, self.journal)
        return done


def sync_journals(
    collection: Any, journal_dir: str | os.PathLike | None = None, runs: Iterable[str] | None = None
) -> dict[str, int]:
    """Write every journaled record that is not in the database yet; remove finished journals.

    Args:
        collection: the ``history`` collection.
        journal_dir: default ``$PTDRY_HOME/journal``.
        runs: only these runs' journals (default: all).

    Returns ``{run: records newly written}``.
    """
    if journal_dir is None:
        from ptdry.core.home import ptdry_home

        journal_dir = ptdry_home() / "journal"
    paths = sorted(pathlib.Path(journal_dir).glob("*.jsonl"))
    if runs is not None:
        wanted = set(runs)
        paths = [p for p in paths if p.stem in wanted]
    out = {}
    for path in paths:
        docs = list(_read_journal(path))
        out[path.stem] = insert_history(collection, docs)
        path.unlink()
    return out


def read_history(collection: Any, run: str, count: int | None = None) -> list[Statistic]:
    """The first ``count`` (default: all) history records of ``run``, in order, as Statistics."""
    filt: dict[str, Any] = {"run": run}
    if count is not None:
        filt["seq"] = {"$lt": count}
    docs = collection.find(filt, {"_id": 0}).sort("seq", 1)
    return [Statistic(d.get("phase") or "", d.get("metrics") or {}, step=d.get("step"), epoch=d.get("epoch"), t=d.get("t")) for d in docs]


def _read_journal(path: pathlib.Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:  # a torn last line from a crash mid-write
                log.warning("skipping a torn line in %s", path)
