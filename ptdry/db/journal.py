"""RunJournal: the local, append-only log of one run's database work.

Every database write of a run (history records, checkpoints attached or removed, the final
document) is first a line of ``$PTDRY_HOME/journal/<run>.jsonl``; a background writer
applies the lines in order and records in ``<run>.pos`` the byte offset up to which they
are applied. Whatever a crash, an outage or a kill leaves there, ``ptdry sync`` (or the
next ptdry process that opens the run's database) applies. Every operation is idempotent,
so applying a line twice is harmless.

The first line names the run and its database, so a journal is only ever applied to the
database it was written for. While a run is live its process holds an exclusive ``flock``
on the journal: nobody else applies it meanwhile, and the lock dies with the process.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pathlib
from typing import Any, Iterator

from ptdry.errors import ConfigError

__all__ = ["RunJournal", "db_key", "journal_dir", "journal_paths"]

log = logging.getLogger(__name__)

VERSION = 1
_OP = b'{"op"'


def journal_dir(path: str | os.PathLike | None = None) -> pathlib.Path:
    """``path``, or ``$PTDRY_HOME/journal``."""
    if path is not None:
        return pathlib.Path(path)
    from ptdry.core.home import ptdry_home

    return ptdry_home("journal", create=False)


def journal_paths(directory: str | os.PathLike | None = None) -> list[pathlib.Path]:
    """Every run journal in ``directory`` (default ``$PTDRY_HOME/journal``)."""
    root = journal_dir(directory)
    return sorted(root.glob("*.jsonl")) if root.is_dir() else []


def db_key(db: Any) -> str:
    """Which database a journal belongs to: the :class:`~ptdry.db.interface.DBInterface`'s
    ``identity`` (kind, hosts and database name; no credentials)."""
    return db.identity


def encode(op: dict[str, Any]) -> bytes:
    """One journal line. History records (the bulk) are plain JSON; other operations carry
    dates and use MongoDB's extended JSON."""
    if "op" in op:
        from bson import json_util

        return json_util.dumps(op, json_options=json_util.RELAXED_JSON_OPTIONS).encode() + b"\n"
    return json.dumps(op).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if line.startswith(_OP):
        from bson import json_util

        return json_util.loads(line)
    return json.loads(line)


class RunJournal:
    """The journal of run ``run`` at ``path``; see the module docstring.

    Use :meth:`open` (a live run, creating the file) or :meth:`acquire` (applying a journal
    left behind); :meth:`release` unlocks it.
    """

    def __init__(self, path: pathlib.Path, handle: Any, header: dict[str, Any]) -> None:
        self.path = path
        self.pos_path = path.with_suffix(".pos")
        self._file = handle
        self.header = header
        self.run: str = header.get("run") or path.stem
        self.db: str | None = header.get("db")

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, directory: str | os.PathLike | None, run: str, key: str) -> "RunJournal":
        """The journal of a run starting now in this process (created if new, locked).

        Raises:
            ConfigError: another process holds it: the run is live elsewhere.
        """
        root = journal_dir(directory)
        root.mkdir(parents=True, exist_ok=True)
        path = root / f"{run}.jsonl"
        handle = open(path, "a+b")
        if not _lock(handle):
            handle.close()
            raise ConfigError(
                f"run {run} is live in another process on this machine (it holds {path}); "
                "wait for it to end, or stop it, before running it here"
            )
        header = _header(path)
        if header is None:
            header = {"op": "journal", "run": run, "db": key, "version": VERSION}
            handle.seek(0, os.SEEK_END)
            if handle.tell():  # a journal of an older ptdry (records only): keep it, add nothing
                header = {"run": run, "db": None}
            else:
                handle.write(encode(header))
                handle.flush()
                os.fsync(handle.fileno())
        elif header.get("db") not in (None, key):
            handle.close()
            raise ConfigError(
                f"run {run} has a journal for database {header['db']!r} in {path}, not for {key!r}; "
                f"run `ptdry sync --db <that database>` first"
            )
        _end_with_newline(handle)
        return cls(path, handle, header)

    @classmethod
    def acquire(cls, path: pathlib.Path) -> "RunJournal | None":
        """A journal left behind, locked for applying it; None if a live process holds it."""
        try:
            handle = open(path, "r+b")
        except FileNotFoundError:
            return None
        if not _lock(handle):
            handle.close()
            return None
        header = _header(path) or {"run": path.stem, "db": None}
        return cls(path, handle, header)

    @staticmethod
    def is_live(directory: str | os.PathLike | None, run: str) -> bool:
        """True when a process on this machine is running ``run`` (it holds its journal)."""
        path = journal_dir(directory) / f"{run}.jsonl"
        try:
            with open(path, "rb") as handle:
                if _lock(handle):
                    fcntl.flock(handle, fcntl.LOCK_UN)
                    return False
                return True
        except FileNotFoundError:
            return False

    # -- writing -------------------------------------------------------------------------------
    def append(self, ops: list[dict[str, Any]], *, fsync: bool) -> int:
        """Append ``ops``; returns the new end offset. ``fsync``: durable before returning."""
        data = b"".join(encode(op) for op in ops)
        self._file.seek(0, os.SEEK_END)
        self._file.write(data)
        self._file.flush()
        if fsync:
            os.fsync(self._file.fileno())
        return self._file.tell()

    def sync(self) -> None:
        """fsync what was appended."""
        os.fsync(self._file.fileno())

    def end(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    # -- reading -------------------------------------------------------------------------------
    @property
    def applied(self) -> int:
        """Byte offset up to which the operations are applied (0: none)."""
        try:
            return int(self.pos_path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def set_applied(self, offset: int) -> None:
        tmp = self.pos_path.with_suffix(".pos.tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self.pos_path)

    def read(self, offset: int, limit: int, end: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` operations from byte ``offset`` (not past ``end``) and the offset
        after the last line read. The header and torn lines (a crash mid-write) are skipped;
        an unfinished last line is left for later."""
        ops: list[dict[str, Any]] = []
        position = offset
        with open(self.path, "rb") as f:
            f.seek(offset)
            for line, position in _lines(f, offset, end):
                if not line.strip():
                    continue
                try:
                    op = decode(line)
                except ValueError:
                    log.warning("skipping a torn line before byte %d of %s", position, self.path)
                    continue
                if op.get("op") != "journal":
                    ops.append(op)
                if len(ops) >= limit:
                    break
        return ops, position

    # -- ending --------------------------------------------------------------------------------
    def remove(self) -> None:
        """Delete the journal (everything is applied); the lock is released too."""
        self.path.unlink(missing_ok=True)
        self.pos_path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()

    def __repr__(self) -> str:
        return f"RunJournal({str(self.path)!r})"


def _lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _header(path: pathlib.Path) -> dict[str, Any] | None:
    with open(path, "rb") as f:
        first = f.readline()
    if not first.startswith(_OP):
        return None
    try:
        op = decode(first)
    except ValueError:
        return None
    return op if op.get("op") == "journal" else None


def _end_with_newline(handle: Any) -> None:
    """After a crash mid-line, start the next operation on a line of its own."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    if size:
        handle.seek(size - 1)
        if handle.read(1) != b"\n":
            handle.seek(0, os.SEEK_END)
            handle.write(b"\n")
            handle.flush()


def _lines(f: Any, offset: int, end: int | None) -> Iterator[tuple[bytes, int]]:
    """Complete lines from ``offset`` (each with the offset after it), not past ``end``."""
    position = offset
    while end is None or position < end:
        line = f.readline()
        if not line or not line.endswith(b"\n"):
            return  # end of file, or a line still being written
        position += len(line)
        if end is not None and position > end:
            return
        yield line, position
