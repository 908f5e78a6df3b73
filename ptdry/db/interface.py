"""DBInterface: one pymongo code path to the three backends behind a URI.

- no URI → the embedded default (a SecantusDB daemon under ``$PTDRY_HOME``, started on need);
- ``mongodb://…`` / ``mongodb+srv://…`` → a real MongoDB server;
- ``mongomock://`` → in memory, for unit tests.

Credentials in a URI are never printed or logged, and the definition of a DBInterface
records the URI with its password masked (pass it again, or set ``$PTDRY_DB_URI``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ptdry.core.module import Module
from ptdry.db.uri import mask_uri, normalize_uri, scrub, uri_database, uri_hosts
from ptdry.errors import ConfigError, ServerUnavailableError

__all__ = ["DBInterface", "db_down_errors", "mask_uri"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# (collection, keys, options): created once per database, idempotently.
INDEXES: list[tuple[str, list[tuple[str, int]], dict[str, Any]]] = [
    ("modules", [("project", 1), ("name", 1), ("version", 1)], {"unique": True, "name": "name_version"}),
    ("modules", [("mro", 1)], {"name": "mro"}),
    ("modules", [("category", 1)], {"name": "category"}),
    ("modules", [("status.state", 1), ("status.heartbeat", 1)], {"name": "status"}),
    ("modules", [("created_at", -1)], {"name": "created_at"}),
    ("modules", [("parent", 1)], {"name": "parent"}),
    ("modules", [("root", 1)], {"name": "root"}),
    ("modules", [("tags", 1)], {"name": "tags"}),
    ("modules", [("artifacts.ref", 1)], {"name": "artifact_ref"}),
    ("history", [("run", 1), ("step", 1)], {"name": "run_step"}),
    ("history_rollups", [("run", 1), ("level", 1), ("phase", 1), ("b", 1)], {"name": "run_level_phase_b"}),
]


def db_down_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the database cannot be reached right now" (as opposed to a
    bad query): writers that must not stop training catch these and retry later."""
    from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

    return (AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError, ServerUnavailableError, OSError)


class DBInterface(Module):
    """A connection to ptdry's database; callable for queries.

    Args:
        uri: ``None`` (embedded default, or ``$PTDRY_DB_URI`` when set), ``"mongodb://…"``,
            or ``"mongomock://"``.
        database: database name; default: the one a ``mongodb://host/NAME`` URI names, else
            ``"ptdry"``.
        timeout: seconds to wait for the server before :class:`ServerUnavailableError`.
        socket_timeout: seconds a connection attempt or a reply may take before the
            operation fails (None: wait as long as the server takes). Background writers
            set it, so a hung server cannot hang them.

    Example:
        >>> db = DBInterface("mongomock://")
        >>> _ = db.collection("modules").insert_one({"_id": "a", "name": "x"})
        >>> db({"name": "x"})
        [{'_id': 'a', 'name': 'x'}]
    """

    def __init__(
        self, uri: str | None = None, database: str | None = None, timeout: float = 5.0, socket_timeout: float | None = None
    ) -> None:
        if uri is None:
            uri = os.environ.get("PTDRY_DB_URI") or None
        if uri is not None and not isinstance(uri, str):
            # only the type: the value may hold a password
            raise ConfigError(f"DBInterface uri must be a string or None; received {type(uri).__qualname__}")
        if uri is not None:
            uri = normalize_uri(uri) or None
        named = None if uri is None else uri_database(uri)
        if database is not None and (not isinstance(database, str) or not database):
            raise ConfigError(f"DBInterface database must be a non-empty string or None; received {database!r}")
        if database is not None and named is not None and database != named:
            raise ConfigError(
                f"DBInterface got database={database!r} and a URI naming database {named!r} "
                f"({mask_uri(uri)}); give the name once"
            )
        self.uri = uri
        self.database = database or named or "ptdry"
        self.timeout = float(timeout)
        self.socket_timeout = None if socket_timeout is None else float(socket_timeout)
        self._client: Any = None
        self._indexed = False  # this instance checked the indexes (a hot path: every collection())
        self._record_argument("uri", None if uri is None else mask_uri(uri))

    # -- connection ------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """``"embedded"``, ``"mongodb"`` or ``"mongomock"``."""
        if self.uri is None:
            return "embedded"
        if self.uri.startswith("mongomock://"):
            return "mongomock"
        if self.uri.startswith(("mongodb://", "mongodb+srv://")):
            return "mongodb"
        raise ConfigError(
            f"unsupported database URI {mask_uri(self.uri)!r}; use mongodb://…, mongodb+srv://…, "
            "mongomock:// or no URI for the embedded default"
        )

    @property
    def identity(self) -> str:
        """Which database this is, without credentials: ``"mongodb:host:27017/ptdry"``
        (the embedded default: ``"embedded:ptdry"``). Names this database's references to
        shared artifact files."""
        kind = self.kind
        if kind == "embedded":
            return f"embedded:{self.database}"
        return f"{kind}:{uri_hosts(self.uri)}/{self.database}"

    @property
    def client(self) -> Any:
        """The pymongo (or mongomock) client, connected on first use."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> Any:
        kind = self.kind
        if kind == "mongomock":
            import mongomock
            import mongomock.gridfs

            mongomock.gridfs.enable_gridfs_integration()
            return _shared_mongomock(self.uri, mongomock)
        import pymongo
        from pymongo.errors import PyMongoError

        uri = self.uri
        if kind == "embedded":
            from ptdry.db.server import embedded_uri

            uri = embedded_uri(timeout=max(self.timeout, 30.0))
        from pymongo.errors import ConfigurationError

        options: dict[str, Any] = {"serverSelectionTimeoutMS": int(self.timeout * 1000), "tz_aware": False}
        if self.socket_timeout is not None:
            options.update(socketTimeoutMS=int(self.socket_timeout * 1000), connectTimeoutMS=int(self.socket_timeout * 1000))
        try:
            client = pymongo.MongoClient(uri, **options)
        except ConfigurationError as exc:
            if uri.startswith("mongodb+srv://") and "DNS" in str(exc):  # the URI may be right: DNS is down
                raise ServerUnavailableError(
                    f"cannot use the database at {mask_uri(uri)}: {scrub(str(exc), uri)}"
                ) from None
            raise ConfigError(f"cannot use the database URI {mask_uri(uri)}: {scrub(str(exc), uri)}") from None
        except (PyMongoError, ValueError, TypeError) as exc:  # the driver's message may quote the URI
            raise ConfigError(f"cannot use the database URI {mask_uri(uri)}: {scrub(str(exc), uri)}") from None
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            client.close()
            raise ServerUnavailableError(
                f"cannot reach the database at {mask_uri(uri)} within {self.timeout:g} s "
                f"({type(exc).__name__}). Check that the server runs and the address is right, "
                "or use the embedded default: DBInterface() with no URI (or `ptdry db start`)."
            ) from None
        log.info("connected to %s", mask_uri(uri))
        return client

    @property
    def db(self) -> Any:
        """The pymongo Database, with ptdry's indexes in place."""
        database = self.client[self.database]
        if not self._indexed:
            server = id(self.client) if self.kind == "mongomock" else repr(self.client.address)
            _ensure_indexes(database, server)
            self._indexed = True
        return database

    def collection(self, name: str) -> Any:
        return self.db[name]

    def close(self) -> None:
        if self._client is not None and self.kind != "mongomock":
            self._client.close()
        self._client = None
        self._indexed = False

    # -- queries -----------------------------------------------------------------------------
    def access(
        self,
        filter: Any = None,
        *,
        collection: str = "modules",
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
        projection: Any = None,
    ) -> list[dict[str, Any]]:
        """Documents matching ``filter`` (a Selector or a Mongo filter dict), run in the server;
        ``sort`` and ``projection`` as in :meth:`Repo.find <ptdry.db.repo.Repo.find>`."""
        from ptdry.db.query_options import validate_projection, validate_sort
        from ptdry.db.query_plan import plan_filter
        from ptdry.db.selector import as_filter

        filt = plan_filter(as_filter(filter))  # a bad query fails before any server is contacted
        sort, projection = validate_sort(sort), validate_projection(projection)
        cursor = self.collection(collection).find(filt, projection)
        if sort:
            cursor = cursor.sort(sort)
        if limit:
            cursor = cursor.limit(limit)
        return list(cursor)

    __call__ = access

    def __repr__(self) -> str:
        return f"DBInterface({mask_uri(self.uri)!r}, database={self.database!r})"

    def __getstate__(self) -> dict:
        raise TypeError("DBInterface holds a live connection; pass its definition instead")


_MOCK_CLIENTS: dict[str, Any] = {}
_INDEXED: set[tuple[Any, str]] = set()


def _shared_mongomock(uri: str, mongomock: Any) -> Any:
    """One in-memory server per mongomock URI in a process, so several DBInterfaces share it."""
    if uri not in _MOCK_CLIENTS:
        _MOCK_CLIENTS[uri] = mongomock.MongoClient()
    return _MOCK_CLIENTS[uri]


def _ensure_indexes(database: Any, server: Any) -> None:
    """Create ptdry's indexes once per (server, database) in this process: a new client of
    the same server does not repeat the round trips."""
    key = (server, database.name)
    if key in _INDEXED:
        return
    for coll, keys, options in INDEXES:
        database[coll].create_index(keys, **options)
    _INDEXED.add(key)
