"""The embedded default database: a local SecantusDB server run as a daemon per ``$PTDRY_HOME``.

``DBInterface()`` with no URI calls :func:`embedded_uri`, which returns the URI of the server
already running for this home or starts one. The server is a separate process (SecantusDB
is GPL: ptdry runs it with ``python -m secantus``, never imports it), detached from the
process that started it, so every process of the user shares it and a training run that
ends or crashes does not take the database down. It keeps running until ``ptdry db stop``.

Layout under ``$PTDRY_HOME/db``: ``data/`` (the server's storage), ``server.json`` (pid,
port, URI; written atomically once the server answers), ``server.log``, ``lock`` (a file
lock so two processes starting at once make one server), ``secantusd.toml`` (empty: keeps
SecantusDB from picking up a config file from the working directory).

The server runs with ``--sync-on-commit`` (without it a kill -9 lost acknowledged writes)
and clients use ``retryWrites=false`` (retryable writes slow it down ~20x).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from typing import Any, Iterator

from ptdry.core.atomic import atomic_write
from ptdry.core.home import ptdry_home
from ptdry.db.file_lock import file_lock
from ptdry.errors import ServerUnavailableError

__all__ = ["EmbeddedServer", "embedded_uri"]

log = logging.getLogger(__name__)

_LISTENING = re.compile(r"listening on (?P<host>[\w.\-:\[\]]+):(?P<port>\d+)")
_CLIENT_OPTIONS = "retryWrites=false&directConnection=true"


class EmbeddedServer:
    """The SecantusDB daemon of one ptdry home.

    Args:
        home: the ptdry home directory (default: ``$PTDRY_HOME`` or ``~/.ptdry``).

    Example:
        >>> server = EmbeddedServer()            # doctest: +SKIP
        >>> uri = server.start()                  # reuses a running server  # doctest: +SKIP
        >>> server.stop()                         # doctest: +SKIP
    """

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home = pathlib.Path(home) if home is not None else ptdry_home(create=False)
        self.dir = self.home / "db"
        self.state_file = self.dir / "server.json"
        self.log_file = self.dir / "server.log"

    # -- queries -------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("ignoring unreadable server state file %s", self.state_file)
            return None

    def _alive(self, state: dict[str, Any]) -> bool:
        """True if the recorded process exists and is our server (not a reused pid)."""
        pid = int(state.get("pid", 0))
        if pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline")
        if cmdline.exists():
            try:
                args = cmdline.read_bytes().split(b"\0")
            except OSError:
                return False
            return b"secantus" in args and str(self.dir / "data").encode() in args
        return True

    def status(self) -> dict[str, Any]:
        """``{"running": bool, "uri", "pid", "storage", "started_at", "log"}`` for this home."""
        state = self._read_state()
        info: dict[str, Any] = {"running": False, "home": str(self.home), "log": str(self.log_file)}
        if state and self._alive(state) and _ping(state["uri"], 2.0):
            info.update(state, running=True)
        return info

    @property
    def uri(self) -> str | None:
        """The running server's URI, or None."""
        info = self.status()
        return info["uri"] if info["running"] else None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> str:
        """Return the URI of this home's server, starting it if it is not running.

        Raises:
            ServerUnavailableError: the server did not start within ``timeout`` seconds
                (the message quotes its log).
        """
        state = self._read_state()
        if state and self._alive(state) and _ping(state["uri"], 2.0):
            return state["uri"]
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock(timeout):
            state = self._read_state()  # another process may have started it meanwhile
            if state and self._alive(state) and _ping(state["uri"], 2.0):
                return state["uri"]
            if state and self._alive(state):
                self._terminate(int(state["pid"]))  # a hung server of ours
            old_port = int(state["port"]) if state and state.get("port") else 0
            try:
                return self._spawn(old_port, timeout)
            except ServerUnavailableError:
                if not old_port:
                    raise
                log.info("port %d is taken; starting the embedded server on a free port", old_port)
                return self._spawn(0, timeout)

    def _spawn(self, port: int, timeout: float) -> str:
        config = self.dir / "secantusd.toml"
        if not config.exists():
            config.write_text("# ptdry's embedded server: all settings are on the command line\n")
        cmd = [
            sys.executable, "-m", "secantus",
            "--config", str(config),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--storage-path", str(self.dir / "data"),
            "--sync-on-commit",
            "--cache-size", "256M",
        ]  # fmt: skip
        with open(self.log_file, "ab") as logf:
            offset = logf.tell()
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=logf,
                    start_new_session=True,  # a daemon: not killed with the starting process
                    close_fds=True,
                )
            except OSError as exc:
                raise ServerUnavailableError(f"cannot run the embedded database ({cmd[0]} -m secantus): {exc}") from exc
        deadline = time.monotonic() + timeout
        address = None
        while time.monotonic() < deadline:
            address = self._listening(offset)
            if address or proc.poll() is not None:
                break
            time.sleep(0.05)
        if address is None:
            if proc.poll() is None:
                self._terminate(proc.pid)
            raise ServerUnavailableError(
                f"the embedded database did not start within {timeout:g} s (exit code "
                f"{proc.poll()}). Its log {self.log_file} ends with:\n{self._log_tail(offset)}"
            )
        host, port_found = address
        uri = f"mongodb://{host}:{port_found}/?{_CLIENT_OPTIONS}"
        if not _ping(uri, max(1.0, deadline - time.monotonic())):
            self._terminate(proc.pid)
            raise ServerUnavailableError(f"the embedded database at {host}:{port_found} does not answer; see {self.log_file}")
        state = {
            "pid": proc.pid,
            "host": host,
            "port": port_found,
            "uri": uri,
            "storage": str(self.dir / "data"),
            "started_at": _now(),
        }
        self._write_state(state)
        log.info("started the embedded database (pid %d) at %s:%d for %s", proc.pid, host, port_found, self.home)
        return uri

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop this home's server. Returns False if none was running."""
        with self._lock(timeout):
            state = self._read_state()
            running = bool(state and self._alive(state))
            if running:
                self._terminate(int(state["pid"]), timeout)  # type: ignore[index]
            if state is not None:  # keep the port, so a restart gets the same URI
                self._write_state({"port": state.get("port"), "stopped_at": _now()})
            return running

    # -- helpers ---------------------------------------------------------------------------
    def _write_state(self, state: dict[str, Any]) -> None:
        atomic_write(self.state_file, json.dumps(state, indent=1).encode())

    @contextlib.contextmanager
    def _lock(self, timeout: float) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.dir / "lock", timeout, error=lambda m: ServerUnavailableError(f"{m}; check `ptdry db status`")):
            yield

    def _listening(self, offset: int) -> tuple[str, int] | None:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        m = _LISTENING.search(text)
        return (m["host"], int(m["port"])) if m else None

    def _log_tail(self, offset: int, lines: int = 15) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(cannot read the log: {exc})"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty)"

    @staticmethod
    def _terminate(pid: int, timeout: float = 10.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _exists(pid):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _exists(pid):
            time.sleep(0.05)

    def __repr__(self) -> str:
        return f"EmbeddedServer(home={str(self.home)!r})"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _exists(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (reaps it if it is our child)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _ping(uri: str, timeout: float) -> bool:
    import pymongo
    from pymongo.errors import PyMongoError

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000), connect=False)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def embedded_uri(home: str | os.PathLike | None = None, timeout: float = 30.0) -> str:
    """URI of the embedded server for ``home`` (default ``$PTDRY_HOME``), started if needed."""
    return EmbeddedServer(home).start(timeout=timeout)
