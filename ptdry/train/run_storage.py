"""RunStorage: a run's checkpoints kept as artifacts of its document in the database.

Each checkpoint's record — ``{name: "checkpoint/<name>", store, ref, sha256, bytes, format,
meta}`` — is on the run document's ``artifacts``; its bytes are in the run's artifact store
(files under ``$PTDRY_HOME`` for the embedded server, GridFS otherwise).

During a run (a Session passes its :class:`~ptdry.db.run_writer.RunWriter`) nothing waits on
the database: ``save`` writes the state to a local file (the file store itself, or the spool
from which the writer uploads it to GridFS) and journals the record; ``list`` and ``remove``
(retention) work on the run's own list of checkpoints and journal the removals. The writer
applies all of it in order, and ``ptdry sync`` whatever it could not.

Without a writer (``Session.load``, or a storage made by hand) every call goes to the
database directly.

The files a run keeps (``session.log_artifact``, record ``file/<name>``) go the same way.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ptdry.core.state import State
from ptdry.db.run_ops import CHECKPOINT_PREFIX, attach_checkpoint, detach_checkpoint, spool
from ptdry.io.archive import state_from_bytes, state_to_bytes
from ptdry.train.callbacks.checkpoint import CheckpointStorage, _check_name

__all__ = ["RunStorage"]

log = logging.getLogger(__name__)

PREFIX = CHECKPOINT_PREFIX
FILE_PREFIX = "file/"


class RunStorage(CheckpointStorage):
    """Checkpoints of run ``run_id`` in ``repo`` (a :class:`ptdry.db.repo.Repo`).

    Args:
        repo: the Repo of the run's database.
        run_id: the run's id.
        writer: the run's background writer while it is live (None: direct database calls).
        artifacts: the run document's artifact records when the writer starts (a live
            storage keeps its own list from there).

    Example:
        >>> from ptdry.db.repo import Repo
        >>> storage = RunStorage(Repo("mongomock://doc-run-storage"), "run-1")
        >>> storage.list()
        []
    """

    def __init__(self, repo: Any, run_id: str, writer: Any = None, artifacts: list[dict[str, Any]] | None = None) -> None:
        self.repo = repo
        self.run_id = run_id
        self.writer = writer
        self._live = [a for a in artifacts or [] if a.get("name", "").startswith(PREFIX)] if writer is not None else None

    # -- writing -----------------------------------------------------------------------------
    def put_local(self, data: bytes, name: str, format: str = "ptdry-state") -> dict[str, Any]:
        """Write ``data`` where the run's artifacts go, without the database: the local file
        store, or the spool of files the writer uploads. Returns the artifact record."""
        if self.repo.artifact_kind == "file":
            store = self.repo._store("file")  # it records this database's reference to the file
        else:
            store = spool(self.run_id)
        return store.put(data, name=name, format=format)

    def save(self, name: str, state: Mapping[str, Any], meta: dict[str, Any]) -> None:
        name = _check_name(name)
        data = state_to_bytes(state)
        if self._live is None:
            record = self.repo.artifacts.put(data, name=PREFIX + name, format="ptdry-state")
            record["meta"] = {**meta, "name": name}
            attach_checkpoint(self.repo, self.run_id, record)
            return
        record = self.put_local(data, PREFIX + name)
        record["meta"] = {**meta, "name": name}
        self._live = [r for r in self._live if r["name"] != record["name"]] + [record]
        self.writer.submit({"op": "checkpoint", "record": record})

    def put_file(self, name: str, data: bytes, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store ``data`` as the run's file ``name`` (record ``file/<name>``), replacing a file
        of that name. While the run is live it goes like a checkpoint: to a local file, then
        to the database through the run's writer. Returns the record."""
        full = FILE_PREFIX + name
        if self.writer is None:
            record = self.repo.artifacts.put(data, name=full, format="file")
            record["meta"] = dict(meta or {})
            attach_checkpoint(self.repo, self.run_id, record)
            return record
        record = self.put_local(data, full, format="file")
        record["meta"] = dict(meta or {})
        self.writer.submit({"op": "checkpoint", "record": record})
        return record

    def remove(self, name: str) -> None:
        for record in self._records():
            if record["name"] == PREFIX + name:
                if self._live is None:
                    detach_checkpoint(self.repo, self.run_id, record)
                else:
                    self._live = [r for r in self._live if r["name"] != record["name"]]
                    self.writer.submit({"op": "remove", "record": record})

    # -- reading -----------------------------------------------------------------------------
    def _records(self) -> list[dict[str, Any]]:
        if self._live is not None:
            return list(self._live)
        doc = self.repo.modules.find_one({"_id": self.run_id}, {"artifacts": 1}) or {}
        return [a for a in doc.get("artifacts", []) if a.get("name", "").startswith(PREFIX)]

    def list(self) -> list[dict[str, Any]]:
        metas = [dict(r.get("meta", {}), name=r["name"][len(PREFIX) :]) for r in self._records()]
        return sorted(metas, key=lambda m: (m.get("step", 0), m.get("epoch", 0), m.get("t", 0.0)))

    def load(self, name: str) -> State:
        for record in self._records():
            if record["name"] == PREFIX + name:
                return state_from_bytes(
                    self.repo.artifact_bytes(record),
                    trusted=getattr(self.repo, "trusted", False),
                    allowed=getattr(self.repo, "allowed", ()),
                    source=f"checkpoint {name!r} of run {self.run_id}",
                )
        raise self._missing(name)

    def __repr__(self) -> str:
        return f"RunStorage(run {self.run_id!r}{', live' if self._live is not None else ''})"
