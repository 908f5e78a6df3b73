"""Worker: claims a sweep's trials from the database and runs them, until none is left.

The same loop runs in ``sweep.run()`` (in this process or in spawned local processes) and in
``ptdry worker NAME`` on any machine. Per trial: claim it (atomically), ask Optuna for its
point if it has none yet, build its Session — or resume the trial's run from its last
checkpoint if a dead worker left it — run it while beating the trial's heartbeat, and
store its value. Between trials the worker re-queues trials whose heartbeat went stale;
when none is pending it waits while others still run (one of them may die) and stops once
every trial is finished.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import uuid
from typing import Any

from ptdry.core import serialize
from ptdry.db.interface import db_down_errors
from ptdry.db.repo import Repo
from ptdry.errors import ConfigError
from ptdry.sweep.trials import Claim
from ptdry.train.session import Session

__all__ = ["Worker", "worker_name"]

log = logging.getLogger(__name__)


def worker_name() -> str:
    """``host:pid:random`` — unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _TrialHeartbeat(threading.Thread):
    """Refreshes the claimed trial's heartbeat; if the claim was lost (the trial was
    re-queued meanwhile), stops the trainer so that the run is not continued twice."""

    def __init__(self, worker: "Worker", claim: Claim, session: Session) -> None:
        super().__init__(name=f"ptdry-trial-{claim.number}", daemon=True)
        self.worker, self.claim, self.session = worker, claim, session
        self.done = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self.done.wait(self.worker.heartbeat_interval):
            try:
                alive = self.worker.store.beat(self.claim)
            except db_down_errors() as exc:
                log.debug("trial heartbeat not written (%s)", type(exc).__name__)
                continue
            if not alive:
                self.lost = True
                self.session.trainer.stop(f"trial {self.claim.number} was re-queued by another worker")
                return

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)


class _SweepLink:
    """Runtime callback (not in the definition or the state): writes ``links.sweep`` on the
    run document as soon as the run stores it."""

    def __init__(self, repo: Repo, link: dict[str, Any]) -> None:
        self.repo, self.link = repo, link

    def on_session_start(self, session: Any, **_: Any) -> None:
        self.repo.link(session.dry_id, "sweep", self.link)


class _Pruning:
    """Runtime callback: reports the monitored metric of each epoch to the trial and stops
    the run when the sweep's pruner says so."""

    def __init__(self, worker: "Worker", claim: Claim) -> None:
        self.worker, self.claim = worker, claim
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float], **_: Any) -> None:
        sweep, store = self.worker.sweep, self.worker.store
        if sweep.monitor not in metrics or self.pruned_at is not None:
            return
        value = float(metrics[sweep.monitor])
        intermediate = dict(self.claim.doc.get("intermediate") or {})
        intermediate[str(epoch)] = value
        store.update(self.claim, {"intermediate": intermediate})
        if sweep.pruner is None:
            return
        prune, attrs = sweep.optuna().should_prune(store.documents(), self.claim.doc)
        store.update(self.claim, {"system_attrs": serialize.encode(attrs, "system_attrs")})
        if prune:
            self.pruned_at = epoch
            trainer.stop(f"pruned by the sweep's pruner at epoch {epoch} ({sweep.monitor}={value:.6g})")


class Worker:
    """Runs a sweep's trials until every trial is finished.

    Args:
        sweep: the :class:`~ptdry.sweep.sweep.Sweep` (stored, e.g. by ``sweep.save()``).
        name: this worker's name in the trials (default ``host:pid:random``).
        heartbeat_interval: seconds between heartbeats on the running trial.
        stale_after: a running trial whose heartbeat is older than this many seconds is
            re-queued (its worker is taken for dead) and its run resumed by whoever claims it.
        wait: when no trial is pending but others still run, wait for them (one may be
            re-queued) instead of stopping.
        trusted, allowed: as for ``Session.load``, when resuming a trial's run.
    """

    def __init__(
        self,
        sweep: Any,
        *,
        name: str | None = None,
        heartbeat_interval: float = 5.0,
        stale_after: float = 60.0,
        wait: bool = True,
        trusted: bool = False,
        allowed: Any = (),
    ) -> None:
        if not heartbeat_interval > 0 or not stale_after > heartbeat_interval:
            raise ConfigError(
                f"need 0 < heartbeat_interval < stale_after; received heartbeat_interval={heartbeat_interval!r}, "
                f"stale_after={stale_after!r}"
            )
        self.sweep, self.store = sweep, sweep.store
        self.name = name or worker_name()
        self.heartbeat_interval, self.stale_after, self.wait = heartbeat_interval, stale_after, wait
        self.trusted, self.allowed = trusted, [*allowed, *sweep.callables()]

    def run(self, max_trials: int | None = None) -> int:
        """Claim and run trials until none is left (or ``max_trials`` ran); returns how many ran."""
        poll = max(0.1, min(2.0, self.stale_after / 4))
        ran = 0
        while max_trials is None or ran < max_trials:
            try:
                self.store.requeue_stale(self.stale_after)
                claim = self.store.claim(self.name)
            except db_down_errors() as exc:  # the database is away for a while: wait for it
                log.warning("sweep %s: database unreachable (%s); retrying", self.sweep.name, type(exc).__name__)
                time.sleep(poll)
                continue
            if claim is None:
                if not self.wait or self.store.unfinished() == 0:
                    break
                time.sleep(poll)
                continue
            self.run_trial(claim)
            ran += 1
        return ran

    # -- one trial -------------------------------------------------------------------------
    def run_trial(self, claim: Claim) -> str:
        """Run the claimed trial to its end; returns its final state (or ``"lost"``).

        Ctrl-C or SIGTERM puts the trial back to pending (its run ends ``interrupted`` with a
        checkpoint, which whoever claims it next resumes) and propagates."""
        try:
            return self._run_trial(claim)
        except KeyboardInterrupt:
            self.store.release(claim)
            raise

    def _run_trial(self, claim: Claim) -> str:
        sweep, store = self.sweep, self.store
        try:
            params = self._params(claim)
            if params is None:
                return "lost"
            session, resumed = self._session(claim, params)
        except Exception as exc:  # e.g. a value the definition's constructors refuse
            return self._failed(claim, exc)
        if session is None:  # its run had already completed: only the trial's end was missing
            return "completed"
        if not store.update(claim, {"run_id": session.dry_id}):
            return "lost"
        log.info(
            "trial %d of sweep %s: %s run %s with %s",
            claim.number, sweep.name, "resuming" if resumed else "starting", session.dry_id[:8], params,
        )  # fmt: skip
        link = {"id": sweep.dry_id, "name": sweep.name, "trial": claim.number}
        trainer = session.trainer
        trainer.add_callback(_SweepLink(Repo(sweep.db), link), name="ptdry.sweep.link")
        pruning = trainer.add_callback(_Pruning(self, claim), name="ptdry.sweep.pruning")
        beat = _TrialHeartbeat(self, claim, session)
        beat.start()
        try:
            result = session.run()
        except Exception as exc:
            return self._failed(claim, exc)
        finally:
            beat.stop()
            trainer.remove_callback("ptdry.sweep.link")
            trainer.remove_callback("ptdry.sweep.pruning")
        if beat.lost:
            what = "trial %d of sweep %s was re-queued while it ran here; its result is not recorded"
            log.warning(what, claim.number, sweep.name)
            return "lost"
        return self._finish(claim, result.summary, pruned=pruning.pruned_at is not None)

    def _failed(self, claim: Claim, exc: Exception) -> str:
        """The trial fails (its error stored); the worker goes on with the next one."""
        notes = "".join(f"\n{n}" for n in getattr(exc, "__notes__", []))
        name = self.sweep.name
        log.error("trial %d of sweep %s failed: %s: %s%s", claim.number, name, type(exc).__name__, exc, notes)
        self.store.finish(claim, "failed", error={"type": type(exc).__name__, "message": (str(exc) + notes)[:2000]})
        return "failed"

    def _params(self, claim: Claim) -> dict[str, Any] | None:
        """The trial's point: stored, or asked of Optuna now (and stored)."""
        if claim.doc.get("params") is not None:
            return serialize.decode(claim.doc["params"], policy=self.sweep.__dict__["_policy"])
        params, internal, attrs = self.sweep.optuna().ask(self.store.documents(), claim.number)
        fields = {
            "params": serialize.encode(params, "params"),
            "internal": internal,
            "system_attrs": serialize.encode(attrs, "system_attrs"),
        }
        return params if self.store.update(claim, fields) else None

    def _session(self, claim: Claim, params: dict[str, Any]) -> tuple[Session | None, bool]:
        """A new Session for the trial, or its run loaded to be resumed (``resumed`` True)."""
        run_id = claim.doc.get("run_id")
        modules = Repo(self.sweep.db).modules
        doc = None if run_id is None else modules.find_one({"_id": run_id}, {"status": 1, "summary": 1})
        if doc is None:
            return self.sweep.trial_session(params), False
        if (doc.get("status") or {}).get("state") == "completed":
            from ptdry.db.repo import flat_summary

            self._finish(claim, flat_summary(doc.get("summary") or {}), pruned=False)
            return None, True
        # From its last checkpoint, or (killed before its first one) from its initial state.
        return Session.prepare_resume(run_id, db=self.sweep.db, trusted=self.trusted, allowed=self.allowed), True

    def _finish(self, claim: Claim, summary: dict[str, Any], *, pruned: bool) -> str:
        sweep = self.sweep
        entry = summary.get(sweep.monitor)
        if entry is None:
            error = f"the run never logged {sweep.monitor!r} (the sweep's monitor); it logged: {sorted(summary)}"
            log.error("trial %d of sweep %s: %s", claim.number, sweep.name, error)
            self.store.finish(claim, "failed", error={"type": "ConfigError", "message": error})
            return "failed"
        value = entry.get(sweep.value)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            self.store.finish(claim, "failed", error={"type": "TrainingError", "message": f"{sweep.monitor} is NaN"})
            return "failed"
        state = "pruned" if pruned else "completed"
        if not self.store.finish(claim, state, value=float(value)):
            log.warning("trial %d of sweep %s was re-queued meanwhile; result not recorded", claim.number, sweep.name)
            return "lost"
        log.info("trial %d of sweep %s %s: %s = %.6g", claim.number, sweep.name, state, sweep.monitor, value)
        return state
