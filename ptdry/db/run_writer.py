"""RunWriter: all database work of a live run, off the training loop, through its journal.

The loop only appends to a queue (:meth:`RunWriter.write` for history records,
:meth:`RunWriter.submit` for checkpoints, retention and the run's end). A background thread
appends the queue to the run's journal (:mod:`ptdry.db.journal`), applies the journal to the
database in order (:mod:`ptdry.db.run_ops`) and sets the run's heartbeat. The journal, not
memory, is the buffer: however long the database is away, memory stays flat, and what was
not applied when the run ends is applied by ``ptdry sync`` (or by the next ptdry process
that opens the database).

The thread's connection has timeouts (server selection, connect, socket), so a hung server
(e.g. SIGSTOPped) makes operations fail and be retried; :meth:`RunWriter.close` returns
within its timeout whatever the server does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from ptdry.core.statistic import Statistic
from ptdry.db.artifacts import FileStore
from ptdry.db.history_store import history_document
from ptdry.db.interface import DBInterface, db_down_errors
from ptdry.db.journal import RunJournal, db_key
from ptdry.db.repo import Repo
from ptdry.db.run_ops import apply_ops, spool, sync_journals

__all__ = ["RunWriter"]

log = logging.getLogger(__name__)


def background_db(db: DBInterface, timeout: float, socket_timeout: float) -> DBInterface:
    """A connection to ``db``'s database for a background thread: its own client (made on
    first use), with timeouts."""
    uri = db.uri
    if db.kind == "embedded":
        from ptdry.db.server import embedded_uri

        uri = embedded_uri()
    return DBInterface(uri, database=db.database, timeout=timeout, socket_timeout=socket_timeout)


class RunWriter:
    """Background writer of run ``run``'s database work.

    Args:
        db: the run's :class:`DBInterface` (the writer opens its own connection to it).
        run: the run's id.
        project: the run's project (for the Repo that writes its documents).
        artifacts: the store the run's artifacts go to (default: the database's default).
        journal_dir: where journals live (default ``$PTDRY_HOME/journal``).
        start_seq: sequence number of the next history record (a resumed run continues).
        heartbeat: ``fn() -> {field: value}`` set on the run document every
            ``heartbeat_interval`` seconds (None: no heartbeat).
        flush_interval: seconds between rounds of the background thread.
        batch_size: operations per database round trip.
        queue_limit: records queued in memory before the caller's thread journals them
            itself (a loop logging faster than the thread can keep up).
        timeout, socket_timeout: the background connection's timeouts, in seconds.
    """

    def __init__(
        self,
        db: DBInterface,
        run: str,
        *,
        project: str | None = None,
        artifacts: Any = None,
        journal_dir: str | os.PathLike | None = None,
        start_seq: int = 0,
        heartbeat: Callable[[], dict[str, Any]] | None = None,
        heartbeat_interval: float = 5.0,
        flush_interval: float = 0.5,
        batch_size: int = 1000,
        queue_limit: int = 5000,
        timeout: float = 2.0,
        socket_timeout: float = 5.0,
        sync_others: bool = True,
    ) -> None:
        self.run = run
        self.journal = RunJournal.open(journal_dir, run, db_key(db))
        self._journal_dir = journal_dir
        self._source = db
        # Made now: the embedded server's address is looked up while it is known to run (a
        # lookup after an outage began would start the server again).
        self._db = background_db(db, timeout, socket_timeout)
        self._repo_args = {"project": project, "artifacts": artifacts}
        self.repo: Any = None  # made in the thread: connecting never blocks the caller
        self.seq = start_seq
        self.heartbeat, self.heartbeat_interval = heartbeat, heartbeat_interval
        self.flush_interval, self.batch_size, self.queue_limit = flush_interval, batch_size, queue_limit
        self._queue: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # the queue (held briefly)
        self._journal_lock = threading.Lock()  # appending to the journal
        self._end = self.journal.end()  # journal bytes written (complete lines)
        self._unsynced = False  # appended without fsync
        self._last_beat = 0.0
        self._applied = self.journal.applied
        self._wake = threading.Event()
        self._closing = False
        self._deadline: float | None = None
        self._done = False
        self._sync_others = sync_others
        self.db_down = False
        self.error: BaseException | None = None  # an operation the database refused
        self.applied_ops = 0
        self._thread = threading.Thread(target=self._main, name=f"ptdry-run-{run[:8]}", daemon=True)
        self._thread.start()

    # -- the caller's side -------------------------------------------------------------------
    def write(self, stat: Statistic) -> None:
        """Queue one history record (no I/O, unless the queue is over ``queue_limit``)."""
        with self._lock:
            self._queue.append(history_document(self.run, self.seq, stat))
            self.seq += 1
            size = len(self._queue)
        if size >= self.batch_size:
            self._wake.set()
        if size >= self.queue_limit:  # unless the thread is journaling the queue right now
            self.journal_now(fsync=False, blocking=False)

    __call__ = write

    def submit(self, op: dict[str, Any]) -> None:
        """Journal an operation (``{"op": ...}``) durably now, after every record queued
        before it; the thread applies it."""
        with self._lock:
            self._queue.append(op)
        self.journal_now(fsync=True)
        self._wake.set()

    def journal_now(self, fsync: bool = True, blocking: bool = True) -> None:
        """Append every queued operation to the journal (and fsync it): on disk from here on,
        even if the process is killed. ``blocking=False``: do nothing if another thread is
        appending."""
        if not self._journal_lock.acquire(blocking=blocking):
            return
        try:
            with self._lock:
                batch, self._queue = self._queue, []
            if batch:
                self._end = self.journal.append(batch, fsync=False)
                self._unsynced = True
            if fsync and self._unsynced:
                self.journal.sync()
                self._unsynced = False
        finally:
            self._journal_lock.release()

    def close(self, timeout: float = 10.0) -> bool:
        """Journal what is queued, then let the thread apply the rest for up to ``timeout``
        seconds. Returns True when everything reached the database (the journal is then
        removed); False leaves it for ``ptdry sync``."""
        self.journal_now(fsync=True)
        self._deadline = time.monotonic() + timeout
        self._closing = True
        self._wake.set()
        self._thread.join(timeout + 1.0)
        if not self._done:
            log.info(
                "run %s: not all of its writes are in the database yet; they wait in %s for `ptdry sync`",
                self.run, self.journal.path,
            )  # fmt: skip
        return self._done

    # -- the thread ------------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            args = dict(self._repo_args)
            if args["artifacts"] is None and self._source.kind == "embedded":  # (the connection's URI is explicit)
                from ptdry.core.home import ptdry_home

                args["artifacts"] = FileStore(ptdry_home() / "artifacts", owner=self._source.identity)
            self.repo = Repo(self._db, **args)
            self._beat()
            if self._sync_others:
                self._sync_other_runs()
            while True:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                self.journal_now(fsync=True)
                caught_up = self._apply_pending()
                self._beat()
                if self._closing and (caught_up or self._past_deadline() or self.error is not None):
                    break
            if caught_up and self.error is None:
                self.journal.remove()
                spool(self.run).cleanup()
                self._done = True
                if self._sync_others:  # journals released since the start (e.g. a run cut off just before)
                    self._sync_other_runs()
            else:
                self._mark_pending()
        except BaseException as exc:  # never silently: the journal stays for `ptdry sync`
            log.exception("run %s: the background writer stopped", self.run)
            self.error = exc
        finally:
            self.journal.release()

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _apply_pending(self) -> bool:
        """Apply journaled operations in order until caught up (True), the database is away,
        or the run's end is past its deadline."""
        while self.error is None:
            ops, after = self.journal.read(self._applied, self.batch_size, self._end)
            if after == self._applied:
                return True
            try:
                apply_ops(self.repo, self.run, ops)
            except db_down_errors() as exc:
                if not self.db_down:
                    log.warning(
                        "database unreachable (%s); run %s goes on, its writes wait in %s",
                        type(exc).__name__, self.run, self.journal.path,
                    )  # fmt: skip
                self.db_down = True
                return False
            except Exception as exc:
                log.error(
                    "run %s: the database refused a journaled operation (%r); the journal %s is kept",
                    self.run, exc, self.journal.path,
                )  # fmt: skip
                self.error = exc
                return False
            self._applied = after
            self.journal.set_applied(after)
            self.applied_ops += len(ops)
            if self.db_down:
                log.warning("database reachable again; run %s catches up", self.run)
                self.db_down = False
            self._beat()
            if self._past_deadline():
                return False
        return False

    def _mark_pending(self) -> None:
        """The run ends with writes left in its journal: say so on its document, if the
        database takes it (``history_pending``, shown by ``ptdry ui``; the run's end, when
        applied, rewrites the document without it)."""
        if self.db_down:
            return
        try:
            self.repo.modules.update_one({"_id": self.run}, {"$set": {"history_pending": True}})
        except Exception as exc:  # the journal says it all; this is only a hint
            log.debug("run %s: history_pending not set (%r)", self.run, exc)

    def _beat(self) -> None:
        """Set the heartbeat if one is due (and the database is not known to be away)."""
        if self.heartbeat is None or self.db_down or time.monotonic() - self._last_beat < self.heartbeat_interval:
            return
        self._last_beat = time.monotonic()
        try:
            self.repo.modules.update_one({"_id": self.run}, {"$set": self.heartbeat()})
        except db_down_errors() as exc:
            log.debug("heartbeat not written (%s)", type(exc).__name__)

    def _sync_other_runs(self) -> None:
        """Journals that ended or crashed runs of this database left behind."""
        try:
            done = sync_journals(self.repo, self._journal_dir, exclude=[self.run], key=db_key(self._source))
        except Exception as exc:  # the next process, or `ptdry sync`, tries again
            log.warning("could not apply journals left by other runs (%r)", exc)
            return
        for run, info in done.items():
            log.info("applied the journal of run %s: %s", run, info)
