"""Repo: persist Module trees, find them with selectors, and load them back lazily.

One document per Module in ``modules`` (nested Modules too, linked by ``root``/``parent``);
the root's state goes to an artifact store. Queries always run in the server. Loading
builds the object from its stored definition and fetches its state only then; within one
Repo an object already loaded is returned as the same Python object.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from ptdry.core.classpath import warn_main_classes
from ptdry.core.module import Module
from ptdry.core.objectdef import ObjectDef, build, iter_defs
from ptdry.core.status import Status, utc_now
from ptdry.db.artifacts import ArtifactStore, FileStore, GridFSStore, SpoolStore
from ptdry.db.bson_check import MAX_DEPTH, check_document, clip, deepest_path
from ptdry.db.history_rollup import COLLECTION as ROLLUPS
from ptdry.db.history_store import history_document, insert_history
from ptdry.db.interface import SCHEMA_VERSION, DBInterface, db_down_errors
from ptdry.db.provenance import provenance, run_provenance
from ptdry.db.query_options import validate_projection, validate_sort
from ptdry.db.sources import SOURCE_PREFIX, capture_sources
from ptdry.db.query_plan import plan_filter
from ptdry.db.selector import as_filter
from ptdry.db.versions import next_value
from ptdry.errors import ConfigError, DBError, MultipleFoundError, NotFoundError, SerializationError, UntrustedArchiveError

__all__ = ["Record", "Repo", "flat_summary", "get_path", "nest_summary"]

log = logging.getLogger(__name__)

#: Where the state's record goes in the root document while the documents are checked.
_STATE_PLACEHOLDER = {"name": "state", "store": "file", "ref": "0" * 64, "sha256": "0" * 64, "bytes": 0, "format": "ptdry-state"}


class Record(Mapping[str, Any]):
    """A stored object's document, without its state; :meth:`load` builds the object.

    Fields read as keys (``rec["config"]``) or attributes (``rec.version``); ``rec.id`` is
    the ``dry_id``.
    """

    def __init__(self, doc: dict[str, Any], repo: "Repo") -> None:
        self._doc = doc
        self._repo = repo

    @property
    def id(self) -> str:
        return self._doc["_id"]

    def load(self) -> Module:
        """Build the object and load its state (from the artifact store)."""
        return self._repo._load(self._doc)

    def get_path(self, path: str, default: Any = None) -> Any:
        """Value at a dotted path (``"config.trainer.optimizer.lr"``), or ``default``."""
        return get_path(self._doc, path, default)

    def __getitem__(self, key: str) -> Any:
        return self._doc[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._doc[key]
        except KeyError:
            raise AttributeError(f"record has no field {key!r}; fields: {sorted(self._doc)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._doc)

    def __len__(self) -> int:
        return len(self._doc)

    def __repr__(self) -> str:
        d = self._doc
        return f"Record({d.get('name')!r} v{d.get('version')}, id={d['_id']!r}, cls={d.get('cls')!r})"


class Repo:
    """Stored Modules in one database (and optionally one project).

    Args:
        db: a :class:`DBInterface`, a URI, or None for the embedded default.
        project: name recorded on added objects and used to scope queries (None: all).
        artifacts: where states go; default: files under ``$PTDRY_HOME`` for the embedded
            server, GridFS otherwise (see :mod:`ptdry.db.artifacts`).
        trusted: the database is trusted: loading may import and call any class or function
            a stored definition names, and unpickle state. By default it imports and calls
            only allowed ones (see :mod:`ptdry.core.allowed`).
        allowed: classes or functions stored objects may name besides the allowed ones.

    Example:
        >>> from ptdry import Looper
        >>> repo = Repo("mongomock://doc-example")
        >>> rec = repo.add_object(Looper(epochs=5))
        >>> repo.get_one({"config.epochs": 5}).epochs
        5
    """

    def __init__(
        self,
        db: DBInterface | str | None = None,
        *,
        project: str | None = None,
        artifacts: ArtifactStore | None = None,
        trusted: bool = False,
        allowed: Iterable[Any] = (),
    ) -> None:
        self.db = db if isinstance(db, DBInterface) else DBInterface(db)
        self.trusted, self.allowed = bool(trusted), tuple(allowed)
        self.project = project
        self._artifacts = artifacts
        self._loaded: dict[str, Module] = {}

    # -- plumbing ------------------------------------------------------------------------
    @property
    def modules(self) -> Any:
        return self.db.collection("modules")

    @property
    def artifacts(self) -> ArtifactStore:
        """The store new artifacts go to."""
        if self._artifacts is None:
            self._artifacts = self._store("file" if self.db.kind == "embedded" else "gridfs")
        return self._artifacts

    def _store(self, kind: str) -> ArtifactStore:
        if self._artifacts is not None and self._artifacts.kind == kind:
            return self._artifacts
        if kind == "file":
            from ptdry.core.home import ptdry_home

            return FileStore(ptdry_home() / "artifacts", owner=self.db.identity)
        if kind == "gridfs":
            return GridFSStore(self.db.db)
        if kind == "spool":  # a run's file waiting for upload (see ptdry.db.run_ops)
            from ptdry.core.home import ptdry_home

            return SpoolStore(ptdry_home("spool", create=False))
        raise ConfigError(f"unknown artifact store {kind!r} in a stored record")

    def _scope(self, selector: Any) -> dict[str, Any]:
        filt = as_filter(selector)
        if self.project is not None:
            filt = {"$and": [{"project": self.project}, filt]} if filt else {"project": self.project}
        return plan_filter(filt)

    def next_version(self, name: str, project: str | None = None) -> int:
        """Atomically take the next version number for ``name`` (1, 2, 3, … without gaps, also
        when several processes store the first object of a new name at once).

        Raises:
            DBError: the version counter could not be taken (see :mod:`ptdry.db.versions`).
        """
        key = f"{project or self.project or 'default'}\x1f{name}"
        return next_value(self.db.collection("counters"), key, repr(name))

    # -- writing -------------------------------------------------------------------------
    def add_object(
        self, obj: Module, name: str | None = None, tags: Sequence[str] = (), *, history: bool = True
    ) -> Record:
        """Store ``obj`` (and its nested Modules) with its definition, metamodules and state.

        Adding an object already stored (same ``dry_id``) updates it and keeps its version,
        its other artifacts (e.g. a run's checkpoints) and its links (:meth:`link`).
        ``history=False`` skips writing the object's History records (a Session streams them
        itself). It is :meth:`object_contents` and :meth:`write_object` in one call.

        Every document is built and checked before anything is written, so an object that
        cannot be stored takes no version number and leaves no artifact behind.

        Raises:
            SerializationError: an argument or the state cannot be stored (too big, too deeply
                nested, a NUL in a key, an unencodable value); the message names its path.
            DBError: the server refused the write.
        """
        if not isinstance(obj, Module):
            raise ConfigError(f"add_object needs a ptdry Module; received {type(obj).__qualname__}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"name must be a non-empty string; received {name!r}")
        contents, data = self._encode(obj)
        warn_main_classes(contents[0]["definition"], f"{type(obj).__name__} {obj.dry_id}")
        doc = self.write_object(contents, data, name=name, tags=tags)
        if history:
            self._write_history(obj)
        self._loaded[obj.dry_id] = obj
        return Record(doc, self)

    @property
    def artifact_kind(self) -> str:
        """The kind of store new artifacts go to (``"file"``, ``"gridfs"``), known without
        contacting the database."""
        if self._artifacts is not None:
            return self._artifacts.kind
        return "file" if self.db.kind == "embedded" else "gridfs"

    def object_contents(self, obj: Module) -> list[dict[str, Any]]:
        """The documents of ``obj`` and its nested Modules (root first) without the fields the
        database decides (name, version, project, creation date, tags, artifacts, links,
        provenance); computed and checked without contacting it, so they can be written later
        (see :meth:`write_object`). The root's also holds the fields the object asks for
        (``obj.__dict__["_dry_document"]``, e.g. a rerun's ``rerun_of``).

        Raises:
            SerializationError: a document cannot be stored (see :meth:`add_object`).
        """
        return self._encode(obj, state=False)[0]

    def _encode(self, obj: Module, state: bool = True) -> tuple[list[dict[str, Any]], bytes]:
        """:meth:`object_contents` and (with ``state``) the state's bytes, checked to be
        storable."""
        from ptdry.io.archive import state_to_bytes

        nodes = _ptdry_modules(obj)
        try:
            data = state_to_bytes(obj.state_dict()) if state else b""
            # One definition of the whole tree; each nested Module's node is its definition.
            defs = {d.dry_id: d for d in iter_defs(obj.definition()) if d.dry_id is not None}
            out = []
            for path, module, parent in nodes:
                doc = self._document(module, defs.get(module.dry_id) or module.definition())
                doc.update(
                    root=obj.dry_id,
                    parent=None if parent is None else parent.dry_id,
                    path=path,
                    children=[m.dry_id for _, m, p in nodes if p is module],
                )
                out.append(doc)
        except RecursionError:
            where, depth = deepest_path(obj, type(obj).__name__)
            raise SerializationError(
                f"{clip(where)} nests {depth} levels deep, too deep to store (MongoDB keeps at most "
                f"{MAX_DEPTH}); flatten the value or keep it in the state"
            ) from None
        out[0].update(obj.__dict__.get("_dry_document") or {})
        for doc, (path, module, _) in zip(out, nodes):
            check_document(doc, type(obj).__name__ + (f".{path} ({type(module).__name__})" if path else ""))
        return out, data

    def write_object(
        self,
        contents: list[dict[str, Any]],
        state: bytes | dict[str, Any],
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
        keep_initial: bool | None = None,
    ) -> dict[str, Any]:
        """Write :meth:`object_contents` with its state — its bytes (stored here), or the
        record of an artifact stored already (the caller's: never released here) — and
        returns the root document.

        A stored object keeps its name, version, links, provenance and its other artifacts
        (e.g. a run's checkpoints); the state it had is released. A new one takes the next
        version of its name only once its documents passed their checks, and records its
        provenance (command line, git state, source files: :mod:`ptdry.db.sources`). A
        failed write leaves no new document and releases what it stored.

        ``keep_initial``: True keeps the state being replaced as artifact ``state/initial``
        (unless one is kept already), so a run without checkpoints can restart from it;
        False drops a kept one; None leaves it as it is.

        Raises:
            DBError: the server refused the write (or the version counter could not be taken).
        """
        from bson.errors import InvalidDocument
        from pymongo.errors import OperationFailure

        tags = [tags] if isinstance(tags, str) else list(tags)
        root_id = contents[0]["_id"]
        fields = {"name": 1, "version": 1, "created_at": 1, "project": 1, "artifacts": 1, "links": 1, **dict.fromkeys(_RUN_PROVENANCE, 1)}
        existing = {d["_id"]: d for d in self.modules.find({"_id": {"$in": [c["_id"] for c in contents]}}, fields)}
        old = existing.get(root_id, {})
        project = old.get("project") or self.project or "default"
        if old and (name is None or name == old["name"]):
            root_name, version, created = old["name"], old["version"], old["created_at"]
        else:  # the version is taken once nothing can fail but the write itself
            root_name = name or contents[0]["cls"].rpartition(":")[2].rpartition(".")[2]
            version, created = self.next_version(root_name, project), utc_now()
        docs = []
        for content in contents:
            is_root = content is contents[0]
            prior = existing.get(content["_id"])
            if is_root:
                identity = (root_name, version, created, project)
            elif prior:  # a nested object keeps the name and version it was first stored with
                identity = (prior["name"], prior["version"], prior["created_at"], prior.get("project") or project)
            else:  # "digits-mlp/trainer.model" v3 is the model of run digits-mlp v3
                identity = (f"{root_name}/{content['path']}", version, created, project)
            doc = dict(content)
            doc.update(zip(("name", "version", "created_at", "project"), identity))
            doc.update(tags=tags if is_root else [], artifacts=[], links=(old.get("links") or {}) if is_root else {})
            docs.append(doc)
        ours = isinstance(state, (bytes, bytearray))
        record = self.artifacts.put(bytes(state), name="state", format="ptdry-state") if ours else state
        try:
            self._add_provenance(docs[0], record, old, keep_initial)
        except BaseException as exc:
            if ours:
                self._release_after_failure(record, exc)
            raise
        new = [d for d in docs if d["_id"] not in existing]
        puts = [a for a in _new_artifacts(docs[0], old) if ours or a is not record]
        try:
            if old:  # nested Modules no longer in the tree (e.g. a replaced child) are dropped
                self.modules.delete_many({"root": root_id, "_id": {"$nin": [d["_id"] for d in docs]}})
            self._write_documents(new, [d for d in docs if d["_id"] in existing])
        except (OperationFailure, InvalidDocument) as exc:  # refused by the server, which is up
            self.modules.delete_many({"_id": {"$in": [d["_id"] for d in new]}})
            for put in puts:
                self._release(put)
            what = contents[0]["cls"].rpartition(":")[2]
            raise DBError(
                f"the database refused to store {what} {root_id} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); nothing new was kept"
            ) from exc
        except BaseException as exc:
            for put in puts:
                self._release_after_failure(put, exc)
            raise
        refs = {(a["store"], a["ref"]) for a in docs[0]["artifacts"]}
        for stale in old.get("artifacts", []):
            if _replaced(stale) and (stale.get("store"), stale.get("ref")) not in refs:
                self._release(stale)
        return docs[0]

    def _release_after_failure(self, record: dict[str, Any], exc: BaseException) -> None:
        """Drop the artifact a failed write put, unless the server is out of reach (then the
        original error matters more; the orphan is reported in the log)."""
        try:
            self._release(record)
        except db_down_errors():
            log.warning(
                "could not remove artifact %s:%s after a failed write (%s); the database is unreachable",
                record["store"], record["ref"], type(exc).__name__,
            )  # fmt: skip

    def link(self, dry_id: str, name: str, value: Any) -> None:
        """Record on stored object ``dry_id`` that it belongs to something else: field
        ``links.<name>`` of its document (e.g. ``links.sweep = {"id", "name", "trial"}`` on a
        sweep's run), queryable (``{"links.sweep.name": "lr-grid"}``) and kept when the
        object is added again.

        Raises:
            ConfigError: ``name`` is not a plain field name.
            NotFoundError: nothing is stored with ``dry_id``.
        """
        if not isinstance(name, str) or not name or "." in name or name.startswith("$"):
            raise ConfigError(f"a link name is a plain field name such as 'sweep'; received {name!r}")
        from ptdry.core import serialize

        result = self.modules.update_one({"_id": dry_id}, {"$set": {f"links.{name}": serialize.encode(value, name)}})
        if result.matched_count == 0:
            raise NotFoundError(f"no stored object has dry_id {dry_id!r}; nothing to link")

    def _add_provenance(
        self, doc: dict[str, Any], state: dict[str, Any], old: dict[str, Any], keep_initial: bool | None
    ) -> None:
        """A root's document records the command line, the git diff, the torch thread count
        and the user's source files (see :mod:`ptdry.db.sources`) as they were when it was
        first stored (a run's code is the code that started it, whatever was edited while it
        trained); and its artifacts: ``state``, the source files, and what it kept of
        ``old``'s (see :meth:`write_object`)."""
        old_artifacts = old.get("artifacts", [])
        if "sources" in old:
            doc.update({k: old[k] for k in _RUN_PROVENANCE if k in old})
            doc["artifacts"] = [state, *_kept_artifacts(old_artifacts, keep_initial, sources=True)]
        else:
            sources, records = capture_sources(doc["definition"], self.artifacts)
            doc.update(run_provenance())
            doc["sources"] = sources
            doc["artifacts"] = [state, *records, *_kept_artifacts(old_artifacts, keep_initial, sources=False)]

    def _write_documents(self, new: list[dict[str, Any]], changed: list[dict[str, Any]]) -> None:
        """Insert ``new`` and replace ``changed`` documents, in one round trip each where the
        backend allows (each write to the embedded server is an fsync)."""
        if new:
            self.modules.insert_many(new, ordered=True)
        if not changed:
            return
        if self.db.kind == "mongomock":  # its bulk ReplaceOne breaks under pymongo >= 4.11
            for doc in changed:
                self.modules.replace_one({"_id": doc["_id"]}, doc)
            return
        from pymongo import ReplaceOne

        self.modules.bulk_write([ReplaceOne({"_id": d["_id"]}, d) for d in changed], ordered=True)

    def _document(self, module: Module, definition: ObjectDef) -> dict[str, Any]:
        query = definition.query_document()
        history = module.__dict__.get("_dry_history")
        return {
            "_id": module.dry_id,
            "schema": SCHEMA_VERSION,
            "cls": query["cls"],
            "mro": query["mro"],
            "args": query["args"],
            "config": query["config"],
            "definition": definition.to_dict(),
            "category": definition.category_hash,
            "status": module.status.to_document(),
            "statistics": module.statistics.to_document(),
            "callbacks": module.callbacks.to_document(),
            "summary": nest_summary(history.summary()) if history else {},
            **provenance(),
            "updated_at": utc_now(),
        }

    def _write_history(self, obj: Module) -> None:
        history = obj.__dict__.get("_dry_history")
        if not history:
            return
        coll = self.db.collection("history")
        start = getattr(history.store, "start", 0)
        docs = [history_document(obj.dry_id, i, stat) for i, stat in enumerate(history, start)]
        insert_history(coll, docs)  # records already stored are skipped

    def _release(self, record: dict[str, Any]) -> None:
        """Delete an artifact unless another document still refers to the same bytes."""
        if self.modules.count_documents({"artifacts.ref": record["ref"], "artifacts.store": record["store"]}) == 0:
            self._store(record["store"]).delete(record)

    def delete(self, selector: Any) -> int:
        """Delete matching objects, their nested documents, history and artifacts; returns how
        many documents were removed."""
        removed = 0
        filt = self._scope(selector)  # a bad filter fails before any server is contacted
        for doc in list(self.modules.find(filt, {"_id": 1, "root": 1, "artifacts": 1})):
            ids = [doc["_id"]]
            if doc.get("root") == doc["_id"]:
                ids += [d["_id"] for d in self.modules.find({"root": doc["_id"]}, {"_id": 1}) if d["_id"] != doc["_id"]]
                self.db.collection("history").delete_many({"run": doc["_id"]})
                self.db.collection(ROLLUPS).delete_many({"run": doc["_id"]})
            removed += self.modules.delete_many({"_id": {"$in": ids}}).deleted_count
            for record in doc.get("artifacts", []):
                self._release(record)
            for i in ids:
                self._loaded.pop(i, None)
        return removed

    # -- reading -------------------------------------------------------------------------
    def artifact_bytes(self, record: Mapping[str, Any]) -> bytes:
        """The bytes of an artifact record (of a stored document, or a run's spooled file),
        checked against its sha256."""
        return self._store(record["store"]).get(dict(record))

    def find(
        self,
        selector: Any = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
        projection: Any = None,
    ) -> list[Record]:
        """Light records (documents, no state) of matching objects, selected in the server.

        ``sort`` is a list of ``(field path, 1 or -1)`` and ``projection`` a dict
        ``{field path: 0 or 1}`` or a list of paths; both are checked like filters.

        Raises:
            SelectorError: a filter, sort or projection ptdry refuses (``$`` operators in
                sort or projection, server-side JavaScript anywhere).
        """
        filt = self._scope(selector)
        sort, projection = validate_sort(sort), validate_projection(projection)
        cursor = self.modules.find(filt, projection)
        if sort:
            cursor = cursor.sort(sort)
        if limit:
            cursor = cursor.limit(limit)
        return [Record(doc, self) for doc in cursor]

    def get(self, selector: Any = None) -> list[Module]:
        """Loaded objects matching ``selector`` (a Selector or a Mongo filter)."""
        filt = self._scope(selector)
        return [self._load(doc) for doc in self.modules.find(filt)]

    def get_one(self, selector: Any = None) -> Module:
        """The single matching object; :class:`NotFoundError` / :class:`MultipleFoundError` else."""
        filt = self._scope(selector)
        docs = list(self.modules.find(filt).limit(2))
        if not docs:
            raise NotFoundError(f"no stored object matches {as_filter(selector)}")
        if len(docs) > 1:
            raise MultipleFoundError(
                f"more than one stored object matches {as_filter(selector)} (e.g. {docs[0]['_id']} "
                f"and {docs[1]['_id']}); narrow the selector or use get()"
            )
        return self._load(docs[0])

    def get_obj_by_id(
        self,
        dry_id: str,
        *,
        state: str = "state",
        prepare: Callable[[Module], Any] | None = None,
        strict: bool = True,
    ) -> Module:
        """The object stored with ``dry_id``.

        Args:
            state: the artifact holding the state to load (a run keeps ``"state"``, and
                ``"state/initial"`` when it ended without checkpoints).
            prepare: called with the built object before its state is loaded (to replace a
                part of the tree).
            strict: report state keys that do not fit the tree.
        """
        doc = self.modules.find_one({"_id": dry_id})
        if doc is None:
            raise NotFoundError(f"no stored object has dry_id {dry_id!r}")
        return self._load(doc, state=state, prepare=prepare, strict=strict)

    def __len__(self) -> int:
        """Number of stored objects — what ``get(Selector())`` returns, nested Modules (each
        stored as its own document) included."""
        return self.modules.count_documents(self._scope(None))

    def __iter__(self) -> Iterator[Record]:
        """Records of every stored object (as :meth:`__len__` counts them), oldest first."""
        return iter(self.find(None, sort=[("created_at", 1)]))

    def to_dataframe(self, selector: Any = None, columns: Sequence[str] | None = None, *, summary: bool = True) -> Any:
        """A pandas DataFrame with one row per matching object; ``columns`` are dotted paths.

        By default: id, name, version, status, created_at, every config value and — with
        ``summary`` — the best and last value of every metric (``summary.val.accuracy.best``,
        ``summary.val.accuracy.last``, ...).
        """
        try:
            import pandas
        except ImportError:
            raise ImportError("Repo.to_dataframe() needs pandas: pip install pandas") from None
        records = self.find(selector)
        if columns is None:
            base = ["_id", "name", "version", "cls", "status.state", "created_at"]
            keys: dict[str, None] = {}
            for rec in records:
                keys.update(dict.fromkeys(_flatten("config", rec.get("config", {}))))
            metrics: dict[str, None] = {}
            if summary:
                for rec in records:
                    metrics.update(dict.fromkeys(flat_summary(rec.get("summary") or {})))
            columns = base + list(keys) + [f"summary.{m}.{k}" for m in metrics for k in ("best", "last")]
        rows = [{c: rec.get_path(c) for c in columns} for rec in records]
        return pandas.DataFrame(rows, columns=list(columns))

    def _load(
        self,
        doc: dict[str, Any],
        *,
        state: str = "state",
        prepare: Callable[[Module], Any] | None = None,
        strict: bool = True,
    ) -> Module:
        from ptdry.io.archive import state_from_bytes

        if doc["_id"] in self._loaded and prepare is None:
            return self._loaded[doc["_id"]]
        try:
            definition = ObjectDef.from_dict(doc["definition"], trusted=self.trusted, allowed=self.allowed)
        except UntrustedArchiveError as exc:  # nothing was imported or called
            raise UntrustedArchiveError(f"cannot load stored object {doc['_id']}: {exc}") from None
        # Nested objects this Repo already loaded are reused, so one stored id stays one object.
        memo = {id(d): self._loaded[d.dry_id] for d in iter_defs(definition) if d.dry_id in self._loaded}
        obj = build(definition, memo)
        if prepare is not None:
            prepare(obj)
        root = doc if doc.get("root", doc["_id"]) == doc["_id"] else self.modules.find_one({"_id": doc["root"]})
        if root is None:
            raise NotFoundError(f"object {doc['_id']} belongs to {doc['root']}, which is no longer stored")
        records = [a for a in root.get("artifacts", []) if a["name"] == state]
        if records:
            art = records[0]
            data = self._store(art["store"]).get(art)
            values = state_from_bytes(
                data, trusted=self.trusted, allowed=self.allowed, source=f"artifact {state} of {root['_id']}"
            )
            prefix = "" if root is doc else doc["path"] + "."
            obj.load_state_dict({k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}, strict=strict)
        elif state != "state":
            raise NotFoundError(f"stored object {root['_id']} has no artifact {state!r}")
        status = Status.from_document(doc["status"])
        status._owner = obj
        obj.__dict__["_dry_status"] = status
        for _, module, _ in _ptdry_modules(obj):
            self._loaded.setdefault(module.dry_id, module)
        return obj


#: Fields of a root's document recorded once, when it is first stored.
_RUN_PROVENANCE = ("command", "git", "torch_threads", "sources")


def _kept_artifacts(old: list[dict[str, Any]], keep_initial: bool | None, *, sources: bool) -> list[dict[str, Any]]:
    """The artifacts a rewritten document keeps of ``old``: all but those :func:`_replaced`
    (source files stay with ``sources``), and ``state/initial`` as :meth:`Repo.write_object`
    says."""
    rest = [a for a in old if not _replaced(a) or (sources and a.get("name", "").startswith(SOURCE_PREFIX))]
    initial = [a for a in old if a.get("name") == "state/initial"][:1]
    if keep_initial is False:
        initial = []
    elif keep_initial and not initial:
        initial = [{**a, "name": "state/initial"} for a in old if a.get("name") == "state"][:1]
    return rest + initial


def _new_artifacts(doc: Mapping[str, Any], old: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The artifacts ``doc`` names that ``old`` (its stored version) did not: what a failed
    write must release (the state, source files stored for the first time)."""
    before = {(a.get("store"), a.get("ref")) for a in old.get("artifacts", [])}
    return [a for a in doc.get("artifacts", []) if (a.get("store"), a.get("ref")) not in before]


def _replaced(artifact: Mapping[str, Any]) -> bool:
    """Artifacts every store of a root replaces: its state (and the kept initial one, see
    :meth:`Repo.write_object`) and its source files."""
    name = artifact.get("name", "")
    return name in ("state", "state/initial") or name.startswith(SOURCE_PREFIX)


def get_path(doc: Any, path: str, default: Any = None) -> Any:
    """The value at dotted ``path`` of a stored document (``"summary.val.loss.best"``; list
    items by index), or ``default`` when a part is missing."""
    value: Any = doc
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return default
    return value


def nest_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``{"val.accuracy": {...}}`` → ``{"val": {"accuracy": {...}}}``, so that queries and sorts
    can use dotted paths (``summary.val.accuracy.best``)."""
    out: dict[str, Any] = {}
    for metric, entry in summary.items():
        *parents, leaf = metric.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = entry
    return out


def flat_summary(summary: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """The inverse of :func:`nest_summary`: ``{"val.accuracy": {"last", "best", ...}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in summary.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and "last" in value:
            out[name] = dict(value)
        elif isinstance(value, Mapping):
            out.update(flat_summary(value, name))
    return out


def _ptdry_modules(obj: Module) -> list[tuple[str, Module, Module | None]]:
    """``(path, module, parent)`` for ``obj`` and every ptdry Module below it, once each, in
    depth-first order (without recursion: deep trees are refused later, with a message)."""
    out: list[tuple[str, Module, Module | None]] = []
    seen: set[int] = set()
    stack: list[tuple[str, Module, Module | None]] = [("", obj, None)]
    while stack:
        path, module, parent = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        out.append((path, module, parent))
        children = [(f"{path}.{n}" if path else n, c, module) for n, c in module.named_children() if isinstance(c, Module)]
        stack.extend(reversed(children))
    return out


def _flatten(prefix: str, value: Any) -> Iterator[str]:
    """Dotted paths of the leaves of a config tree, without nested objects' ids."""
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            if k != "dry_id":
                yield from _flatten(f"{prefix}.{k}", v)
    else:
        yield prefix
