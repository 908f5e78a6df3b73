"""The ``trials`` collection: a sweep's trials, claimed atomically by workers anywhere.

One document per trial::

    {_id: "<sweep id>/<number>", sweep, number, state, params, worker, claim, heartbeat,
     run_id, value, intermediate: {"<epoch>": value}, error, attempts, requeued, ...}

``state`` goes ``pending → running → completed | pruned | failed``. A worker claims the
lowest pending number with one ``find_one_and_update`` (the server serializes it: two
workers never get the same trial) and a fresh ``claim`` token; every later write of that
worker is conditioned on its token, so once a trial has been re-queued (its worker's
heartbeat went stale) the old worker's writes match nothing and it learns it lost the trial.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any, Iterable

from ptdry.core import serialize
from ptdry.core.allowed import ImportPolicy
from ptdry.core.status import utc_now

__all__ = ["FINISHED", "STATES", "Claim", "Trial", "TrialStore"]

log = logging.getLogger(__name__)

STATES = ("pending", "running", "completed", "pruned", "failed")
FINISHED = ("completed", "pruned", "failed")


@dataclasses.dataclass(frozen=True)
class Trial:
    """One trial of a sweep, as stored: its point in the space, state and result.

    ``value`` is the run's best (or last, see ``Sweep(value=...)``) value of the sweep's
    monitored metric; ``run_id`` the run that trained it (``Session.load(trial.run_id)``).
    """

    number: int
    state: str
    params: dict[str, Any] | None
    value: float | None
    run_id: str | None
    worker: str | None
    error: dict[str, Any] | None
    intermediate: dict[int, float]
    attempts: int
    requeued: int
    started_at: dt.datetime | None
    ended_at: dt.datetime | None

    @classmethod
    def from_document(cls, doc: dict[str, Any], policy: ImportPolicy | None = None) -> "Trial":
        params = doc.get("params")
        if params is not None:
            params = serialize.decode(params, policy=policy, path=f"trial {doc['number']} params")
        return cls(
            number=doc["number"],
            state=doc["state"],
            params=params,
            value=doc.get("value"),
            run_id=doc.get("run_id"),
            worker=doc.get("worker"),
            error=doc.get("error"),
            intermediate={int(k): v for k, v in (doc.get("intermediate") or {}).items()},
            attempts=doc.get("attempts", 0),
            requeued=doc.get("requeued", 0),
            started_at=doc.get("started_at"),
            ended_at=doc.get("ended_at"),
        )

    def __repr__(self) -> str:
        value = "" if self.value is None else f", value={self.value:.6g}"
        return f"Trial({self.number}, {self.state}{value}, params={self.params!r}, run_id={self.run_id!r})"


@dataclasses.dataclass
class Claim:
    """A worker's hold on a running trial: the document as claimed and the token that
    conditions every write the worker makes to it."""

    doc: dict[str, Any]
    token: str

    @property
    def id(self) -> str:
        return self.doc["_id"]

    @property
    def number(self) -> int:
        return self.doc["number"]


class TrialStore:
    """The trials of one sweep in a database.

    Args:
        db: a :class:`~ptdry.db.interface.DBInterface`.
        sweep_id: the sweep's ``dry_id``.
    """

    def __init__(self, db: Any, sweep_id: str) -> None:
        self.db, self.sweep_id = db, sweep_id
        self._indexed = False

    @property
    def coll(self) -> Any:
        coll = self.db.collection("trials")
        if not self._indexed:
            coll.create_index([("sweep", 1), ("state", 1), ("number", 1)], name="sweep_state_number")
            coll.create_index([("sweep", 1), ("number", 1)], name="sweep_number", unique=True)
            self._indexed = True
        return coll

    # -- creating --------------------------------------------------------------------------
    def create(self, points: Iterable[dict[str, Any] | None]) -> int:
        """Store one pending trial per point (None: the point is asked when claimed), numbered
        from 0; trials already stored are kept. Returns how many were new."""
        from ptdry.db.history_store import insert_new

        now = utc_now()
        docs = [
            {
                "_id": f"{self.sweep_id}/{i}",
                "sweep": self.sweep_id,
                "number": i,
                "state": "pending",
                "params": None if p is None else serialize.encode(p, "params"),
                "attempts": 0,
                "requeued": 0,
                "created_at": now,
            }
            for i, p in enumerate(points)
        ]
        return insert_new(self.coll, docs)

    # -- claiming --------------------------------------------------------------------------
    def claim(self, worker: str) -> Claim | None:
        """Take the lowest-numbered pending trial for ``worker`` (atomically), or None."""
        from pymongo import ReturnDocument

        token, now = uuid.uuid4().hex, utc_now()
        doc = self.coll.find_one_and_update(
            {"sweep": self.sweep_id, "state": "pending"},
            {
                "$set": {"state": "running", "worker": worker, "claim": token, "heartbeat": now, "started_at": now},
                "$inc": {"attempts": 1},
            },
            sort=[("number", 1)],
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else Claim(doc, token)

    def update(self, claim: Claim, fields: dict[str, Any]) -> bool:
        """Set ``fields`` on the claimed trial; False if the claim was lost (re-queued)."""
        result = self.coll.update_one({"_id": claim.id, "claim": claim.token}, {"$set": fields})
        claim.doc.update(fields)
        return result.matched_count == 1

    def beat(self, claim: Claim) -> bool:
        """Refresh the claim's heartbeat; False if the claim was lost."""
        return self.update(claim, {"heartbeat": utc_now()})

    def finish(self, claim: Claim, state: str, value: float | None = None, error: dict | None = None) -> bool:
        """End the claimed trial as ``completed``, ``pruned`` or ``failed``."""
        if state not in FINISHED:
            raise ValueError(f"a trial finishes as one of {FINISHED}; received {state!r}")
        fields = {"state": state, "value": value, "error": error, "ended_at": utc_now(), "claim": None}
        return self.update(claim, fields)

    def release(self, claim: Claim) -> bool:
        """Put the claimed trial back to pending (its worker stops); its run resumes later."""
        return self.update(claim, {"state": "pending", "worker": None, "claim": None})

    # -- recovering ------------------------------------------------------------------------
    def requeue_stale(self, stale_after: float) -> list[int]:
        """Put back to pending the running trials whose heartbeat is older than
        ``stale_after`` seconds (their worker died); returns their numbers."""
        cutoff = utc_now() - dt.timedelta(seconds=stale_after)
        return self._requeue({"heartbeat": {"$lt": cutoff}}, f"heartbeat older than {stale_after:g} s")

    def requeue_worker(self, worker: str) -> list[int]:
        """Put back to pending the running trials of ``worker`` (known to be dead)."""
        return self._requeue({"worker": worker}, f"worker {worker} exited")

    def _requeue(self, condition: dict[str, Any], why: str) -> list[int]:
        numbers = []
        for doc in self.coll.find({"sweep": self.sweep_id, "state": "running", **condition}):
            # only if it is still the same claim: a worker that beat meanwhile keeps its trial
            done = self.coll.update_one(
                {"_id": doc["_id"], "state": "running", "claim": doc.get("claim")},
                {"$set": {"state": "pending", "worker": None, "claim": None}, "$inc": {"requeued": 1}},
            )
            if done.modified_count:
                log.warning("trial %d re-queued (%s); its run resumes from its last checkpoint", doc["number"], why)
                numbers.append(doc["number"])
        return numbers

    # -- reading ---------------------------------------------------------------------------
    def documents(self, states: Iterable[str] | None = None) -> list[dict[str, Any]]:
        filt: dict[str, Any] = {"sweep": self.sweep_id}
        if states is not None:
            filt["state"] = {"$in": list(states)}
        return list(self.coll.find(filt).sort("number", 1))

    def counts(self) -> dict[str, int]:
        """``{state: number of trials}`` for every state."""
        out = dict.fromkeys(STATES, 0)
        for doc in self.coll.find({"sweep": self.sweep_id}, {"state": 1}):
            out[doc["state"]] = out.get(doc["state"], 0) + 1
        return out

    def unfinished(self) -> int:
        """How many trials are pending or running."""
        return self.coll.count_documents({"sweep": self.sweep_id, "state": {"$in": ["pending", "running"]}})
