"""ptdry's exceptions: one small tree, so callers can catch ptdry's errors as a group.

Each class also inherits the matching built-in, so both ``except ptdry.ConfigError`` and
``except ValueError`` work::

    PtdryError
    ├── ConfigError (ValueError)            bad constructor argument or definition
    │   ├── SerializationError (TypeError)  a value ptdry cannot store
    │   └── ValidationError                 a property rejected a value
    ├── StateDictError (KeyError)           missing/unexpected/mismatched keys in load_state_dict
    ├── NotReadyError (RuntimeError)        Status.check() found problems
    ├── ArchiveError (ValueError)           unreadable, corrupt or foreign archive
    │   └── UntrustedArchiveError           loading would unpickle, or import or call a
    │                                       name not allowed (archive or database document)
    ├── DataError (ValueError)              data that cannot be read or used as asked (a
    │                                       file, a changed file, an empty dataset)
    ├── NotFoundError (LookupError)         no run, record or checkpoint matches
    ├── MultipleFoundError (LookupError)    more than one matches where one was asked for
    ├── DBError (RuntimeError)              database layer
    │   ├── ServerUnavailableError (ConnectionError)
    │   └── IntegrityError                  stored bytes do not match their checksum
    ├── SelectorError (ValueError)          a query ptdry refuses or cannot parse
    ├── TrainingError (RuntimeError)        the training loop cannot go on
    ├── ContextError (RuntimeError)         a compute context cannot be granted, or its
    │   │                                   subprocess died (signal, out of memory)
    │   └── ContextIncompatibilityError     the active context does not satisfy a request
    └── SweepError (RuntimeError)           a sweep's workers cannot go on

An exception raised by a callback keeps its type; a note names the callback and trigger.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "ConfigError",
    "ContextError",
    "ContextIncompatibilityError",
    "DataError",
    "DBError",
    "IntegrityError",
    "MultipleFoundError",
    "NotFoundError",
    "NotReadyError",
    "PtdryError",
    "SelectorError",
    "SerializationError",
    "ServerUnavailableError",
    "StateDictError",
    "SweepError",
    "TrainingError",
    "UntrustedArchiveError",
    "ValidationError",
    "add_note",
]


def add_note(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` (PEP 678; shown with the traceback, matched by pytest),
    keeping its type — also on Python 3.10, which lacks ``add_note``."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # pragma: no cover - Python 3.10
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


class PtdryError(Exception):
    """Base class of every error ptdry raises on purpose."""


class ConfigError(PtdryError, ValueError):
    """A constructor argument or definition is not acceptable."""


class SerializationError(ConfigError, TypeError):
    """A value cannot be stored in a definition; the message names its argument path."""


class ValidationError(ConfigError):
    """A typed property rejected a value; the old value is kept."""


class StateDictError(PtdryError, KeyError):
    """``load_state_dict`` found missing, unexpected or mismatched keys; nothing was loaded."""

    def __init__(
        self, message: str, missing: list[str] = (), unexpected: list[str] = (), mismatched: list[str] = ()
    ):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class NotReadyError(PtdryError, RuntimeError):
    """A module is not ready to run; the message lists why."""


class ArchiveError(PtdryError, ValueError):
    """An archive file is unreadable, corrupt, foreign or too new; names the file."""


class UntrustedArchiveError(ArchiveError):
    """Loading an archive or a database document would run code it chose: unpickle values,
    or import or call a class or function that is not allowed (see ``ptdry.allow``). The
    message names the path in the tree and the name; ``trusted=True`` loads it anyway."""


class DataError(PtdryError, ValueError):
    """Data cannot be read or used as asked: an unreadable or unsupported file, a file whose
    content changed since a run recorded it, an empty dataset asked for an element, elements
    of the wrong shape. The message names the file or dataset."""


class DBError(PtdryError, RuntimeError):
    """Something went wrong in the database layer."""


class ServerUnavailableError(DBError, ConnectionError):
    """The database server cannot be reached in time."""


class NotFoundError(PtdryError, LookupError):
    """Nothing matches: no stored run or record with that id or selector, no checkpoint of
    that name; the message says what there is."""

    def __str__(self) -> str:  # LookupError would not repr() it, but be explicit
        return str(self.args[0]) if self.args else ""


class MultipleFoundError(PtdryError, LookupError):
    """More than one stored object matches where exactly one was asked for."""


class IntegrityError(DBError):
    """Stored bytes do not match their recorded sha256."""


class SelectorError(PtdryError, ValueError):
    """A selector or filter is refused (e.g. server-side JavaScript) or malformed."""


class TrainingError(PtdryError, RuntimeError):
    """The training loop cannot go on."""


class ContextError(PtdryError, RuntimeError):
    """A compute context cannot be had: a resource request cannot be met (the message names
    what is missing), or a ``compute_context`` subprocess died without a result (the message
    gives its exit code or signal)."""


class ContextIncompatibilityError(ContextError):
    """``context_check`` found that the active compute context (or the lack of one) does not
    satisfy a request; the message names what is missing and how to enter one."""


class SweepError(PtdryError, RuntimeError):
    """A sweep cannot go on: e.g. every local worker process died with trials unfinished."""
