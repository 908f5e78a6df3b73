"""Serve the dashboard with uvicorn: ``ptdry ui`` calls :func:`serve`.

The socket is bound before uvicorn starts, so a port in use or a bad address is one clear
error rather than a log line and an exit; the database is reached before the first page is
served, so an unreachable one fails at once.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Callable

from ptdry.db.interface import DBInterface, mask_uri
from ptdry.errors import ConfigError

__all__ = ["bind", "serve"]

log = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free port).

    Raises:
        ConfigError: the port is out of range, or the address cannot be listened on (in
            use, not an address of this machine).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port must be an integer from 0 to 65535; received {port!r}")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"host must be an address such as 127.0.0.1; received {host!r}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve host {host!r} ({exc.strerror}); use an address such as 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port (0 picks a free one)"
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(
    db: DBInterface | str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_edit: bool = False,
    on_ready: Callable[[str], Any] | None = None,
) -> None:
    """Run the dashboard until interrupted (Ctrl-C).

    Args:
        db: the database (a :class:`DBInterface`, a URI, or None for the embedded default).
        host: address to listen on; anything but loopback exposes the runs to the network
            (logged as a warning).
        port: TCP port (0: any free one).
        allow_edit: allow tagging and deleting runs.
        on_ready: called with the dashboard's URL once it listens.

    Raises:
        ConfigError: the address cannot be listened on.
        ServerUnavailableError: the database cannot be reached.
    """
    import uvicorn

    from ptdry.ui.app import create_app

    interface = db if isinstance(db, DBInterface) else DBInterface(db)
    interface.db  # reach the database now (ServerUnavailableError), not on the first page
    sock = bind(host, port)
    exposed = host not in LOOPBACK
    if exposed:
        log.warning(
            "listening on %s: anyone who can reach this machine can read your runs%s",
            host, " and delete them (--allow-edit)" if allow_edit else "",
        )  # fmt: skip
    app = create_app(interface, allow_edit=allow_edit, allowed_hosts=["*"] if exposed else None)
    bound = sock.getsockname()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{bound[1]}/"
    log.info("ptdry ui on %s for %s", url, mask_uri(interface.uri))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
