"""The operations of a run's journal, applied to its database — and ``sync_journals``.

A journal (see :mod:`ptdry.db.journal`) holds, in order:

- history records (``{_id: "<run>:<seq>", ...}``): inserted, duplicates skipped, with their
  rollups (:mod:`ptdry.db.history_rollup`);
- ``{"op": "truncate", "seq": n}``: a resumed run drops the records from ``n`` on (their
  rollups are rebuilt);
- ``{"op": "checkpoint", "record": {...}}``: the artifact record of a checkpoint (or of a
  file the run keeps) to attach (a spooled file is uploaded first); one of the same name is
  replaced;
- ``{"op": "remove", "record": {...}}``: retention dropped that checkpoint;
- ``{"op": "finish", "contents": [...], "state": {...}, "name", "tags", "keep_initial"}``:
  the run's final documents (status, summary, ...) and final state.

Each is idempotent, so a journal applied twice (a crash between an operation and the
record of its offset) leaves the same database.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Iterable

from ptdry.db.artifacts import SpoolStore
from ptdry.db.history_store import insert_history, truncate_history
from ptdry.db.journal import RunJournal, db_key, journal_paths
from ptdry.errors import NotFoundError

__all__ = ["apply_ops", "attach_checkpoint", "detach_checkpoint", "left_journals", "sync_journals"]

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint/"


def spool(run: str | None = None) -> SpoolStore:
    """The spool of files waiting for upload (``$PTDRY_HOME/spool``)."""
    from ptdry.core.home import ptdry_home

    return SpoolStore(ptdry_home("spool", create=False), run)


def _upload(repo: Any, record: dict[str, Any]) -> dict[str, Any]:
    """A spooled record moved to the run's store (the new record); others as they are."""
    if record.get("store") != "spool":
        return record
    stored = repo.artifacts.put(repo.artifact_bytes(record), name=record["name"], format=record.get("format", "bytes"))
    if "meta" in record:
        stored["meta"] = record["meta"]
    return stored


def _unspool(record: dict[str, Any]) -> None:
    if record.get("store") == "spool":
        spool().delete(record)


def attach_checkpoint(repo: Any, run: str, record: dict[str, Any], releases: list[dict[str, Any]] | None = None) -> None:
    """Attach an artifact record (a checkpoint's, a file's) to the run, replacing one of the
    same name.
    The bytes of a replaced record are released now, or appended to ``releases``."""
    doc = repo.modules.find_one({"_id": run}, {"artifacts": 1})
    if doc is None:
        raise NotFoundError(f"run {run} is not in the database (deleted?); its artifact {record['name']} cannot be attached")
    old = next((a for a in doc.get("artifacts", []) if a.get("name") == record["name"]), None)
    if old is not None and old.get("sha256") == record.get("sha256"):
        _unspool(record)  # attached already (the operation is applied a second time)
        return
    stored = _upload(repo, record)
    if old is not None:
        repo.modules.update_one({"_id": run}, {"$pull": {"artifacts": {"name": record["name"]}}})
    repo.modules.update_one({"_id": run, "artifacts.name": {"$ne": record["name"]}}, {"$push": {"artifacts": stored}})
    if old is not None:
        _release(repo, old, releases)
    _unspool(record)


def detach_checkpoint(repo: Any, run: str, record: dict[str, Any], releases: list[dict[str, Any]] | None = None) -> None:
    """Detach the checkpoint named like ``record`` from the run and release its bytes (now,
    or appended to ``releases``)."""
    doc = repo.modules.find_one({"_id": run}, {"artifacts": 1}) or {}
    old = next((a for a in doc.get("artifacts", []) if a.get("name") == record["name"]), None)
    if old is not None:
        repo.modules.update_one({"_id": run}, {"$pull": {"artifacts": {"name": record["name"]}}})
        _release(repo, old, releases)
    if old is None or old.get("ref") != record.get("ref"):
        _release(repo, record, releases)  # written locally, never attached


def _release(repo: Any, record: dict[str, Any], releases: list[dict[str, Any]] | None) -> None:
    """Delete an artifact's bytes unless a stored document refers to them (a spooled file:
    always). With ``releases``, later: identical bytes (content-addressed files) may be
    attached by a later operation of the same batch."""
    if releases is not None:
        releases.append(record)
    elif record.get("store") == "spool":
        _unspool(record)
    else:
        repo._release(record)


def apply_ops(repo: Any, run: str, ops: list[dict[str, Any]]) -> None:
    """Apply journal operations in order. Raises what the database raises (an outage:
    :func:`~ptdry.db.interface.db_down_errors`); the caller applies them again later.

    History records between two truncations are inserted in one round trip, ahead of the
    other operations around them (they touch another collection); a checkpoint removed
    later in the same batch is never attached or uploaded (after an outage, retention has
    usually dropped most of the checkpoints taken meanwhile)."""
    history = repo.db.collection("history")
    last_removal = {op["record"]["name"]: i for i, op in enumerate(ops) if op.get("op") == "remove"}
    skipped: set[str] = set()  # checkpoints not attached: removed later in this batch
    attached: set[str] | None = None  # names attached to the run, read once when needed
    releases: list[dict[str, Any]] = []  # bytes to release once the batch is applied
    for segment in _segments(ops):
        first = segment[0][1]
        if first.get("op") == "truncate":  # before the records that follow it
            truncate_history(history, run, first["seq"])
        insert_history(history, [op for _, op in segment if "op" not in op])
        for i, op in segment:
            kind = op.get("op")
            if kind is None or kind == "truncate":
                continue
            if kind == "checkpoint":
                name = op["record"]["name"]
                if last_removal.get(name, -1) > i:
                    skipped.add(name)
                else:
                    attach_checkpoint(repo, run, op["record"], releases)
                    skipped.discard(name)
            elif kind == "remove":
                name = op["record"]["name"]
                if name in skipped:
                    if attached is None:
                        doc = repo.modules.find_one({"_id": run}, {"artifacts.name": 1}) or {}
                        attached = {a.get("name") for a in doc.get("artifacts", [])}
                    if name not in attached:  # only the local copy exists
                        releases.append(op["record"])
                        skipped.discard(name)
                        continue
                detach_checkpoint(repo, run, op["record"], releases)
                skipped.discard(name)
            elif kind == "finish":
                if repo.modules.count_documents({"_id": run}, limit=1) == 0:
                    raise NotFoundError(f"run {run} is not in the database (deleted?); its end cannot be recorded")
                state = _upload(repo, op["state"])
                repo.write_object(
                    op["contents"], state, name=op.get("name"), tags=op.get("tags", ()), keep_initial=op.get("keep_initial")
                )
                _unspool(op["state"])
            else:
                log.warning("run %s: unknown journal operation %r skipped", run, kind)
    for record in releases:
        _release(repo, record, None)


def _segments(ops: list[dict[str, Any]]) -> Iterable[list[tuple[int, dict[str, Any]]]]:
    """The operations (with their index), split before each truncation."""
    segment: list[tuple[int, dict[str, Any]]] = []
    for i, op in enumerate(ops):
        if op.get("op") == "truncate" and segment:
            yield segment
            segment = []
        segment.append((i, op))
    if segment:
        yield segment


def sync_journals(
    db: Any,
    journal_dir: str | os.PathLike | None = None,
    runs: Iterable[str] | None = None,
    *,
    exclude: Iterable[str] = (),
    key: str | None = None,
    batch: int = 5000,
) -> dict[str, dict[str, Any]]:
    """Apply every journal of ``db``'s runs left by ended, killed or cut-off processes:
    history, checkpoints, retention, final status and state. Journals of live runs (locked
    by their process) and of other databases are left alone.

    Args:
        db: the :class:`~ptdry.db.interface.DBInterface` (or a Repo) to apply them to.
        journal_dir: default ``$PTDRY_HOME/journal``.
        runs: only these runs (default: all).
        exclude: not these runs.
        key: the database's journal key (default: :func:`~ptdry.db.journal.db_key` of ``db``;
            a background connection to the embedded server passes the embedded one's).

    Returns:
        ``{run: {"records": n, "checkpoints": n, "finished": bool}}`` per journal applied;
        a journal of a run no longer in the database is dropped (``{"dropped": True}``).

    Raises:
        What the database raises when it cannot be reached (nothing is lost: the journals
        stay, with what was applied recorded).
    """
    from ptdry.db.repo import Repo

    repo = db if isinstance(db, Repo) else Repo(db)
    key = key or db_key(repo.db)
    wanted = None if runs is None else set(runs)
    skipped = set(exclude)
    out: dict[str, dict[str, Any]] = {}
    for path in journal_paths(journal_dir):
        if (wanted is not None and path.stem not in wanted) or path.stem in skipped:
            continue
        journal = RunJournal.acquire(path)
        if journal is None:
            continue  # live in another process
        try:
            if journal.db not in (None, key):
                continue
            out[journal.run] = _replay(repo, journal, batch)
        finally:
            journal.release()
    out.update(_sync_pending_index(repo, wanted))
    return out


def left_journals(journal_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """``[{"run", "db", "live"}]`` of the journals still in ``journal_dir``."""
    out = []
    for path in journal_paths(journal_dir):
        journal = RunJournal.acquire(path)
        if journal is None:
            out.append({"run": path.stem, "db": None, "live": True})
            continue
        out.append({"run": journal.run, "db": journal.db, "live": False})
        journal.release()
    return out


def _replay(repo: Any, journal: RunJournal, batch: int) -> dict[str, Any]:
    run = journal.run
    if repo.modules.count_documents({"_id": run}, limit=1) == 0:
        log.warning("run %s is not in %r (deleted?); dropping its journal %s", run, repo.db, journal.path)
        journal.remove()
        return {"dropped": True}
    done = {"records": 0, "checkpoints": 0, "finished": False}
    offset = journal.applied
    while True:
        ops, after = journal.read(offset, batch)
        if after == offset:
            break
        apply_ops(repo, run, ops)
        journal.set_applied(after)
        offset = after
        done["records"] += sum("op" not in op for op in ops)
        done["checkpoints"] += sum(op.get("op") == "checkpoint" for op in ops)
        done["finished"] = done["finished"] or any(op.get("op") == "finish" for op in ops)
    journal.remove()
    return done


def _sync_pending_index(repo: Any, wanted: set[str] | None) -> dict[str, dict[str, Any]]:
    """Checkpoint records an earlier ptdry left in ``$PTDRY_HOME/pending/<run>.json``."""
    from ptdry.core.home import ptdry_home

    out: dict[str, dict[str, Any]] = {}
    root = ptdry_home("pending", create=False)
    for path in sorted(root.glob("*.json")) if root.is_dir() else []:
        if wanted is not None and path.stem not in wanted:
            continue
        try:
            index = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("skipping unreadable %s", path)
            continue
        run = index.get("run", path.stem)
        if repo.modules.count_documents({"_id": run}, limit=1) == 0:
            continue  # another database's run
        for record in index.get("records", []):
            attach_checkpoint(repo, run, record)
        path.unlink()
        out[run] = {"records": 0, "checkpoints": len(index.get("records", [])), "finished": False}
    return out
