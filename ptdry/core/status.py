"""Status: where a Module is in its life (created → running → completed/failed/interrupted)."""

from __future__ import annotations

import datetime as dt
import traceback
from typing import TYPE_CHECKING, Any

from ptdry.core.metamodule import Metamodule
from ptdry.errors import ConfigError, NotReadyError

if TYPE_CHECKING:
    from ptdry.core.module import Module

__all__ = ["Status", "utc_now"]

STATES = ("created", "running", "completed", "failed", "interrupted")
_ALLOWED = {
    "created": {"running"},
    "running": {"completed", "failed", "interrupted", "running"},
    "completed": {"running"},
    "failed": {"running"},
    "interrupted": {"running"},
}


def utc_now() -> dt.datetime:
    """Naive UTC at millisecond precision: what a BSON date round-trips to."""
    t = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


class Status(Metamodule):
    """Lifecycle state, timestamps (UTC, millisecond precision like BSON) and error info.

    Example:
        >>> s = Status()
        >>> s.start(); s.complete(); s.state
        'completed'
    """

    def __init__(self, owner: "Module | None" = None) -> None:
        self._owner = owner
        self.state = "created"
        self.created_at: dt.datetime = utc_now()
        self.started_at: dt.datetime | None = None
        self.ended_at: dt.datetime | None = None
        self.heartbeat: dt.datetime | None = None
        self.error: dict[str, str] | None = None
        self.reason: str | None = None

    def _move(self, new: str) -> None:
        if new not in _ALLOWED[self.state]:
            raise ConfigError(f"status cannot go from {self.state!r} to {new!r}")
        self.state = new

    def start(self) -> None:
        """Mark running (also to resume a failed or interrupted run)."""
        self._move("running")
        self.started_at = self.heartbeat = utc_now()
        self.ended_at, self.error, self.reason = None, None, None

    def beat(self) -> None:
        """Record that the run is alive now."""
        self.heartbeat = utc_now()

    def complete(self, reason: str | None = None) -> None:
        """Mark completed; ``reason`` says why it ended (``"completed"``, ``"max_steps"``, or
        what stopped it early, e.g. ``"early stopping: val.loss did not improve ..."``)."""
        self._move("completed")
        self.ended_at = utc_now()
        self.reason = reason

    def fail(self, exc: BaseException) -> None:
        """Mark failed and keep the error's type, message and traceback."""
        self._move("failed")
        self.ended_at = utc_now()
        self.error = {
            "type": type(exc).__qualname__,
            "message": str(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        }

    def interrupt(self) -> None:
        self._move("interrupted")
        self.ended_at = utc_now()

    def check(self) -> None:
        """Raise :class:`NotReadyError` listing every reason the owning module cannot run."""
        problems = self._owner.problems() if self._owner is not None else []
        if problems:
            name = type(self._owner).__name__
            raise NotReadyError(f"{name} is not ready:\n" + "\n".join(f"  - {p}" for p in problems))

    def to_document(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "heartbeat": self.heartbeat,
            "error": self.error,
            "reason": self.reason,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "Status":
        s = cls()
        if doc.get("state") not in STATES:
            raise ConfigError(f"unknown status state {doc.get('state')!r}; expected one of {STATES}")
        for key in ("state", "created_at", "started_at", "ended_at", "heartbeat", "error", "reason"):
            if key in doc:
                setattr(s, key, doc[key])
        return s

    def __repr__(self) -> str:
        return f"Status({self.state!r})"
