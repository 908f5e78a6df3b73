"""Repo: persist Module trees, find them with selectors, and load them back lazily.

One document per Module in ``modules`` (nested Modules too, linked by ``root``/``parent``);
the root's state goes to an artifact store. Queries always run in the server. Loading
builds the object from its stored definition and fetches its state only then; within one
Repo an object already loaded is returned as the same Python object.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ptdry.core.module import Module
from ptdry.core.objectdef import ObjectDef, build, iter_defs
from ptdry.core.status import Status, utc_now
from ptdry.db.artifacts import ArtifactStore, FileStore, GridFSStore
from ptdry.db.history_rollup import COLLECTION as ROLLUPS
from ptdry.db.history_writer import history_document, insert_history
from ptdry.db.interface import SCHEMA_VERSION, DBInterface
from ptdry.db.provenance import provenance
from ptdry.db.query_plan import plan_filter
from ptdry.db.selector import as_filter
from ptdry.errors import ConfigError, MultipleFoundError, NotFoundError, UntrustedArchiveError

__all__ = ["Record", "Repo", "flat_summary", "nest_summary"]


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
        value: Any = self._doc
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return default
        return value

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
        >>> from ptdry import Module
        >>> class Tiny(Module):
        ...     def __init__(self, size=3):
        ...         self.size = size
        >>> repo = Repo("mongomock://doc-example")
        >>> rec = repo.add_object(Tiny(5))
        >>> repo.get_one({"config.size": 5}).size
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

            return FileStore(ptdry_home() / "artifacts")
        if kind == "gridfs":
            return GridFSStore(self.db.db)
        raise ConfigError(f"unknown artifact store {kind!r} in a stored record")

    def _scope(self, selector: Any) -> dict[str, Any]:
        filt = as_filter(selector)
        if self.project is not None:
            filt = {"$and": [{"project": self.project}, filt]} if filt else {"project": self.project}
        return plan_filter(filt)

    def next_version(self, name: str, project: str | None = None) -> int:
        """Atomically take the next version number for ``name`` (1, 2, 3, … without gaps)."""
        from pymongo import ReturnDocument
        from pymongo.errors import DuplicateKeyError

        key = f"{project or self.project or 'default'}\x1f{name}"
        counters = self.db.collection("counters")
        for _ in range(5):
            try:
                doc = counters.find_one_and_update(
                    {"_id": key}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
                )
                return int(doc["seq"])
            except DuplicateKeyError:  # two first upserts raced; the loser retries
                continue
        raise ConfigError(f"could not assign a version to {name!r} after 5 attempts")

    # -- writing -------------------------------------------------------------------------
    def add_object(
        self, obj: Module, name: str | None = None, tags: Sequence[str] = (), *, history: bool = True
    ) -> Record:
        """Store ``obj`` (and its nested Modules) with its definition, metamodules and state.

        Adding an object already stored (same ``dry_id``) updates it and keeps its version
        and its other artifacts (e.g. a run's checkpoints). ``history=False`` skips writing
        the object's History records (a Session streams them itself).
        """
        from ptdry.io.archive import state_to_bytes

        if not isinstance(obj, Module):
            raise ConfigError(f"add_object needs a ptdry Module; received {type(obj).__qualname__}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"name must be a non-empty string; received {name!r}")
        tags = [tags] if isinstance(tags, str) else list(tags)
        nodes = _ptdry_modules(obj)
        fields = {"name": 1, "version": 1, "created_at": 1, "project": 1, "artifacts": 1}
        existing = {d["_id"]: d for d in self.modules.find({"_id": {"$in": [m.dry_id for _, m, _ in nodes]}}, fields)}
        old = existing.get(obj.dry_id, {})
        old_artifacts = old.get("artifacts", [])
        record = self.artifacts.put(state_to_bytes(obj.state_dict()), name="state", format="ptdry-state")
        project = old.get("project") or self.project or "default"
        if old and (name is None or name == old["name"]):
            root_name, version, created = old["name"], old["version"], old["created_at"]
        else:
            root_name = name or type(obj).__name__
            version, created = self.next_version(root_name, project), utc_now()
        # One definition of the whole tree; each nested Module's node is its definition.
        defs = {d.dry_id: d for d in iter_defs(obj.definition()) if d.dry_id is not None}
        docs = []
        for path, module, parent in nodes:
            is_root = module is obj
            prior = existing.get(module.dry_id)
            if is_root:
                identity = (root_name, version, created, project)
            elif prior:  # a nested object keeps the name and version it was first stored with
                identity = (prior["name"], prior["version"], prior["created_at"], prior.get("project") or project)
            else:  # "digits-mlp/trainer.model" v3 is the model of run digits-mlp v3
                identity = (f"{root_name}/{path}", version, created, project)
            definition = defs.get(module.dry_id) or module.definition()
            doc = self._document(module, definition, *identity, tags=tags if is_root else [])
            doc.update(
                root=obj.dry_id,
                parent=None if parent is None else parent.dry_id,
                path=path,
                children=[m.dry_id for _, m, p in nodes if p is module],
                artifacts=[record, *(a for a in old_artifacts if a.get("name") != "state")] if is_root else [],
            )
            docs.append(doc)
        if old:  # nested Modules no longer in the tree (e.g. a replaced child) are dropped
            self.modules.delete_many({"root": obj.dry_id, "_id": {"$nin": [d["_id"] for d in docs]}})
        self._write_documents([d for d in docs if d["_id"] not in existing], [d for d in docs if d["_id"] in existing])
        if history:
            self._write_history(obj)
        for stale in old_artifacts:
            if stale.get("name") == "state" and stale.get("ref") != record["ref"]:
                self._release(stale)
        self._loaded[obj.dry_id] = obj
        return Record(docs[0], self)

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

    def _document(
        self,
        module: Module,
        definition: ObjectDef,
        name: str,
        version: int,
        created: dt.datetime,
        project: str,
        *,
        tags: list[str],
    ) -> dict[str, Any]:
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
            "name": name,
            "version": version,
            "project": project,
            "tags": tags,
            "status": module.status.to_document(),
            "statistics": module.statistics.to_document(),
            "callbacks": module.callbacks.to_document(),
            "summary": nest_summary(history.summary()) if history else {},
            **provenance(),
            "created_at": created,
            "updated_at": utc_now(),
        }

    def _write_history(self, obj: Module) -> None:
        history = obj.__dict__.get("_dry_history")
        if not history:
            return
        coll = self.db.collection("history")
        docs = [history_document(obj.dry_id, i, stat) for i, stat in enumerate(history)]
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
        """The bytes of an artifact record of a stored document (checked against its sha256)."""
        return self._store(record["store"]).get(dict(record))

    def find(
        self,
        selector: Any = None,
        *,
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
        projection: Any = None,
    ) -> list[Record]:
        """Light records (documents, no state) of matching objects, selected in the server."""
        filt = self._scope(selector)
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

    def get_obj_by_id(self, dry_id: str) -> Module:
        """The object stored with ``dry_id``."""
        doc = self.modules.find_one({"_id": dry_id})
        if doc is None:
            raise NotFoundError(f"no stored object has dry_id {dry_id!r}")
        return self._load(doc)

    def __len__(self) -> int:
        """Number of stored root objects (nested Modules are not counted)."""
        return self.modules.count_documents(self._scope({"parent": None}))

    def __iter__(self) -> Iterator[Record]:
        return iter(self.find({"parent": None}, sort=[("created_at", 1)]))

    def to_dataframe(self, selector: Any = None, columns: Sequence[str] | None = None) -> Any:
        """A pandas DataFrame with one row per matching object; ``columns`` are dotted paths
        (default: id, name, version, status, created_at and every config value)."""
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
            columns = base + list(keys)
        rows = [{c: rec.get_path(c) for c in columns} for rec in records]
        return pandas.DataFrame(rows, columns=list(columns))

    def _load(self, doc: dict[str, Any]) -> Module:
        from ptdry.io.archive import state_from_bytes

        if doc["_id"] in self._loaded:
            return self._loaded[doc["_id"]]
        try:
            definition = ObjectDef.from_dict(doc["definition"], trusted=self.trusted, allowed=self.allowed)
        except UntrustedArchiveError as exc:  # nothing was imported or called
            raise UntrustedArchiveError(f"cannot load stored object {doc['_id']}: {exc}") from None
        # Nested objects this Repo already loaded are reused, so one stored id stays one object.
        memo = {id(d): self._loaded[d.dry_id] for d in iter_defs(definition) if d.dry_id in self._loaded}
        obj = build(definition, memo)
        root = doc if doc.get("root", doc["_id"]) == doc["_id"] else self.modules.find_one({"_id": doc["root"]})
        if root is None:
            raise NotFoundError(f"object {doc['_id']} belongs to {doc['root']}, which is no longer stored")
        records = [a for a in root.get("artifacts", []) if a["name"] == "state"]
        if records:
            art = records[0]
            data = self._store(art["store"]).get(art)
            state = state_from_bytes(
                data, trusted=self.trusted, allowed=self.allowed, source=f"artifact state of {root['_id']}"
            )
            prefix = "" if root is doc else doc["path"] + "."
            obj.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        status = Status.from_document(doc["status"])
        status._owner = obj
        obj.__dict__["_dry_status"] = status
        for _, module, _ in _ptdry_modules(obj):
            self._loaded.setdefault(module.dry_id, module)
        return obj


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
    """``(path, module, parent)`` for ``obj`` and every ptdry Module below it, once each."""
    out: list[tuple[str, Module, Module | None]] = []
    seen: set[int] = set()

    def walk(path: str, module: Module, parent: Module | None) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        out.append((path, module, parent))
        for name, child in module.named_children():
            if isinstance(child, Module):
                walk(f"{path}.{name}" if path else name, child, module)

    walk("", obj, None)
    return out


def _flatten(prefix: str, value: Any) -> Iterator[str]:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}", v)
    else:
        yield prefix
