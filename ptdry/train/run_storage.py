"""RunStorage: a run's checkpoints kept as artifacts of its document in the database.

Each checkpoint's state goes to the Repo's artifact store (files under ``$PTDRY_HOME`` for
the embedded server, GridFS otherwise); its record — ``{name: "checkpoint/<name>", store,
ref, sha256, bytes, format, meta}`` — is pushed onto the run document's ``artifacts``.

Training must go on when the database is away: a checkpoint that cannot reach it is written
to the local file store and its record waits in memory (and in a small local index under
``$PTDRY_HOME/pending``); every later save, and :meth:`flush` at the end of the run, pushes
the waiting records.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

from ptdry.core.home import ptdry_home
from ptdry.core.state import State
from ptdry.db.artifacts import FileStore
from ptdry.db.interface import db_down_errors
from ptdry.io.archive import state_from_bytes, state_to_bytes
from ptdry.train.callbacks.checkpoint import CheckpointStorage, _check_name

__all__ = ["RunStorage"]

log = logging.getLogger(__name__)

PREFIX = "checkpoint/"
FILE_PREFIX = "file/"


class RunStorage(CheckpointStorage):
    """Checkpoints of run ``run_id`` in ``repo`` (a :class:`ptdry.db.repo.Repo`).

    Example:
        >>> from ptdry.db.repo import Repo
        >>> storage = RunStorage(Repo("mongomock://doc-run-storage"), "run-1")
        >>> storage.list()
        []
    """

    def __init__(self, repo: Any, run_id: str) -> None:
        self.repo = repo
        self.run_id = run_id
        self._pending: list[dict[str, Any]] = []
        self._index = ptdry_home("pending", create=False) / f"{run_id}.json"

    # -- writing -----------------------------------------------------------------------------
    def save(self, name: str, state: Mapping[str, Any], meta: dict[str, Any]) -> None:
        data = state_to_bytes(state)
        try:
            record = self.repo.artifacts.put(data, name=PREFIX + _check_name(name), format="ptdry-state")
        except db_down_errors() as exc:
            log.warning("database unreachable (%s): checkpoint %s goes to the local file store", type(exc).__name__, name)
            record = self._local().put(data, name=PREFIX + name, format="ptdry-state")
        record["meta"] = {**meta, "name": name}
        self._pending.append(record)
        self.flush()

    def put_file(self, name: str, data: bytes, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store ``data`` as the run's file ``name`` (record ``file/<name>``), replacing a file
        of that name; while the database is away it waits like a checkpoint. Returns the record."""
        full = FILE_PREFIX + name
        try:
            record = self.repo.artifacts.put(data, name=full, format="file")
        except db_down_errors() as exc:
            log.warning("database unreachable (%s): file %s goes to the local file store", type(exc).__name__, name)
            record = self._local().put(data, name=full, format="file")
        record["meta"] = dict(meta or {})
        old = self._records_named(full)
        self._pending = [r for r in self._pending if r.get("name") != full]
        try:
            self.repo.modules.update_one({"_id": self.run_id}, {"$pull": {"artifacts": {"name": full}}})
            for stale in old:
                if stale.get("ref") != record["ref"]:
                    self.repo._release(stale)
        except db_down_errors():
            pass  # the record below is pushed later; the old one stays listed until then
        self._pending.append(record)
        self.flush()
        return record

    def _records_named(self, full: str) -> list[dict[str, Any]]:
        try:
            doc = self.repo.modules.find_one({"_id": self.run_id}, {"artifacts": 1}) or {}
        except db_down_errors():
            return []
        return [a for a in doc.get("artifacts", []) if a.get("name") == full]

    def flush(self) -> bool:
        """Push waiting checkpoint records to the run document; True when none wait."""
        while self._pending:
            record = self._pending[0]
            try:
                self.repo.modules.update_one({"_id": self.run_id}, {"$push": {"artifacts": record}})
            except db_down_errors():
                self._write_index()
                return False
            self._pending.pop(0)
        self._index.unlink(missing_ok=True)
        return True

    def _write_index(self) -> None:
        self._index.parent.mkdir(parents=True, exist_ok=True)
        self._index.write_text(json.dumps({"run": self.run_id, "records": self._pending}, default=str))

    def _local(self) -> FileStore:
        return self.repo._store("file")  # it records this database's reference to the file

    # -- reading -----------------------------------------------------------------------------
    def _records(self) -> list[dict[str, Any]]:
        try:
            doc = self.repo.modules.find_one({"_id": self.run_id}, {"artifacts": 1}) or {}
        except db_down_errors():
            doc = {}
        stored = [a for a in doc.get("artifacts", []) if a.get("name", "").startswith(PREFIX)]
        return stored + [r for r in self._pending if r not in stored]

    def list(self) -> list[dict[str, Any]]:
        metas = [dict(r.get("meta", {}), name=r["name"][len(PREFIX) :]) for r in self._records()]
        return sorted(metas, key=lambda m: (m.get("step", 0), m.get("epoch", 0), m.get("t", 0.0)))

    def load(self, name: str) -> State:
        for record in self._records():
            if record["name"] == PREFIX + name:
                data = self.repo._store(record["store"]).get(record)
                return state_from_bytes(
                    data,
                    trusted=getattr(self.repo, "trusted", False),
                    allowed=getattr(self.repo, "allowed", ()),
                    source=f"checkpoint {name!r} of run {self.run_id}",
                )
        raise self._missing(name)

    def remove(self, name: str) -> None:
        for record in self._records():
            if record["name"] == PREFIX + name:
                self._pending = [r for r in self._pending if r is not record and r != record]
                try:
                    self.repo.modules.update_one({"_id": self.run_id}, {"$pull": {"artifacts": {"name": record["name"]}}})
                    self.repo._release(record)
                except db_down_errors():
                    log.warning("database unreachable: checkpoint %s of run %s is removed later", name, self.run_id)

    def __repr__(self) -> str:
        return f"RunStorage(run {self.run_id!r})"
