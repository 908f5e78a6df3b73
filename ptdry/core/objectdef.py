"""ObjectDef: a class plus its constructor arguments — a value that builds an object tree.

``module.definition()`` returns one; ``ObjectDef(cls, *args, **kwargs)`` writes one by hand.
Nested definitions of ptdry Modules are built by :meth:`ObjectDef.build` (the same node
reached twice builds one shared object, as in Fiddle). A definition of a *foreign* class
(a ``torch.nn.Module``, an optimizer class, any callable) nested inside another stays a
definition: it is a recipe that the owning Module builds itself, e.g.
``Model(net=ObjectDef(MLP, 64, 10))``.

``Configuration`` is the same concept seen as a metamodule: ``module.configuration`` is the
module's definition, with ``to_document()`` for the database.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from typing import Any, Iterator

from ptdry.core import serialize
from ptdry.core.classpath import class_path, import_path
from ptdry.core.metamodule import Metamodule
from ptdry.errors import ConfigError

__all__ = ["ObjectDef", "Configuration", "build"]

FORMAT = 1


class ObjectDef:
    """A class (or any importable callable) with the arguments to call it.

    Example:
        >>> d = ObjectDef(dict, a=1, b=(2, 3))
        >>> d.build()
        {'a': 1, 'b': (2, 3)}
    """

    __slots__ = ("cls", "args", "kwargs")

    def __init__(self, cls: Any, /, *args: Any, **kwargs: Any) -> None:
        if not callable(cls):
            raise ConfigError(f"ObjectDef needs a class or callable first; received {cls!r}")
        self.cls = cls
        self.args = tuple(args)
        self.kwargs = dict(kwargs)

    # -- identity -------------------------------------------------------------------------
    @property
    def dry_id(self) -> str | None:
        """The ``dry_id`` this definition builds with, or None for a category definition."""
        return self.kwargs.get("dry_id")

    def without_ids(self) -> "ObjectDef":
        """A copy with every ``dry_id`` removed: builds fresh ids each time (the category)."""
        return _copy_def(self, {}, strip_ids=True)

    @property
    def category_hash(self) -> str:
        """sha256 of the canonical id-free definition: equal hyperparameters, equal hash."""
        text = _canonical_text(self.without_ids())
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    # -- building -------------------------------------------------------------------------
    def build(self) -> Any:
        """Make the object (and every nested ptdry Module definition)."""
        return build(self)

    # -- serialization ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON/BSON-safe data; :meth:`from_dict` gives back an equal definition."""
        counts: dict[int, int] = {}
        for node in _iter_defs(self):
            counts[id(node)] = counts.get(id(node), 0) + 1
        numbers: dict[int, int] = {}

        def body(d: ObjectDef, path: str) -> dict:
            out: dict[str, Any] = {}
            if counts[id(d)] > 1:
                numbers[id(d)] = len(numbers)
                out["node"] = numbers[id(d)]
            out["cls"] = _path_of(d.cls, path)
            out["args"] = [serialize.encode(a, f"{path}.args[{i}]", hook) for i, a in enumerate(d.args)]
            out["kwargs"] = {k: serialize.encode(v, f"{path}.{k}", hook) for k, v in d.kwargs.items()}
            return out

        def hook(value: Any, path: str) -> Any:
            if not isinstance(value, ObjectDef):
                return serialize.NOT_HANDLED
            if id(value) in numbers:
                return {"__ref__": numbers[id(value)]}
            return {"__def__": body(value, path)}

        return {"format": FORMAT, **body(self, _short_name(self.cls))}

    @classmethod
    def from_dict(cls, data: dict) -> "ObjectDef":
        """Rebuild a definition from :meth:`to_dict` data (classes are imported by path)."""
        if not isinstance(data, dict) or "cls" not in data:
            raise ConfigError(f"not a ptdry definition (no 'cls' key): {str(data)[:120]}")
        if data.get("format", FORMAT) > FORMAT:
            raise ConfigError(
                f"definition format {data['format']} is newer than this ptdry understands "
                f"({FORMAT}); upgrade ptdry"
            )
        nodes: dict[int, ObjectDef] = {}
        bodies = _shared_bodies(data)  # a reference may come first (e.g. JSON with sorted keys)

        def make(body: dict) -> ObjectDef:
            if "node" in body and body["node"] in nodes:
                return nodes[body["node"]]
            d = ObjectDef.__new__(ObjectDef)
            if "node" in body:
                nodes[body["node"]] = d
            d.cls = import_path(body["cls"])
            d.args = tuple(serialize.decode(a, hook) for a in body.get("args", []))
            d.kwargs = {k: serialize.decode(v, hook) for k, v in body.get("kwargs", {}).items()}
            return d

        def hook(marker: str, payload: Any) -> Any:
            if marker == "__def__":
                return make(payload)
            if marker == "__ref__":
                if payload in nodes:
                    return nodes[payload]
                if payload in bodies:
                    return make(bodies[payload])
                raise ConfigError(f"definition refers to shared node {payload!r}, which it does not define")
            return serialize.NOT_HANDLED

        return make(data)

    # -- readable views ---------------------------------------------------------------------
    def config(self) -> dict:
        """Readable hyperparameter tree for queries: arguments by name, ``dry_id`` left out.

        Positional arguments are named after the class's parameters where its signature
        allows; nested definitions appear as dicts with a ``"__class__"`` key.
        """
        out: dict[str, Any] = {}
        names = _positional_names(self.cls, len(self.args))
        if names is None:
            out["__args__"] = serialize.readable(list(self.args), readable_hook)
        else:
            for name, value in zip(names, self.args):
                out[name] = serialize.readable(value, readable_hook)
        for key, value in self.kwargs.items():
            if key != "dry_id":
                out[key] = serialize.readable(value, readable_hook)
        return out

    def query_document(self) -> dict:
        """The fields selectors match on: ``_id``, ``cls``, ``mro``, ``args``, ``config``."""
        doc: dict[str, Any] = {}
        if self.dry_id is not None:
            doc["_id"] = self.dry_id
        doc["cls"] = class_path(self.cls)
        mro = getattr(self.cls, "__mro__", (self.cls,))
        doc["mro"] = [class_path(c) for c in mro if c is not object]
        doc["args"] = serialize.readable(list(self.args), readable_hook)
        doc["config"] = self.config()
        return doc

    # -- value semantics ----------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectDef):
            return NotImplemented
        if self is other:
            return True
        try:
            return _canonical_text(self) == _canonical_text(other)
        except ConfigError:  # something is not storable (a local class, a lambda): compare
            try:  # the trees themselves, classes and such values by identity/equality
                return _structure(self) == _structure(other)
            except Exception:
                return False

    __hash__ = None  # type: ignore[assignment]  # mutable value

    def __copy__(self) -> "ObjectDef":
        return _copy_def(self, {}, strip_ids=False)

    def __deepcopy__(self, memo: dict) -> "ObjectDef":
        return _copy_def(self, {}, strip_ids=False)

    def __repr__(self) -> str:
        parts = [_short_name(self.cls)]
        parts += [repr(a) for a in self.args]
        parts += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"


class Configuration(ObjectDef, Metamodule):
    """A module's definition seen as a metamodule (``module.configuration``).

    Same data as :class:`ObjectDef`; adds ``to_document()`` / ``from_document()`` carrying
    both the exact definition and the readable ``config`` tree the database queries.
    """

    __slots__ = ()

    @classmethod
    def of(cls, definition: ObjectDef) -> "Configuration":
        """View ``definition`` as a Configuration (no copy of its arguments)."""
        conf = cls.__new__(cls)
        conf.cls, conf.args, conf.kwargs = definition.cls, definition.args, definition.kwargs
        return conf

    def to_document(self) -> dict:
        """``{"definition", "config", "category"}``, BSON-safe."""
        return {"definition": self.to_dict(), "config": self.config(), "category": self.category_hash}

    @classmethod
    def from_document(cls, doc: dict) -> "Configuration":
        """Invert :meth:`to_document`."""
        return cls.of(ObjectDef.from_dict(doc["definition"]))


def build(definition: ObjectDef, memo: dict[int, Any] | None = None) -> Any:
    """Build ``definition``; a node reached twice (same object) is built once and shared.

    Errors raised by a constructor keep their type; a note says where in the tree it failed.
    """
    memo = {} if memo is None else memo
    return _build(definition, memo, _short_name(definition.cls))


def _build(d: ObjectDef, memo: dict[int, Any], path: str) -> Any:
    if id(d) in memo:
        return memo[id(d)]
    args = [_build_value(a, memo, f"{path}.args[{i}]") for i, a in enumerate(d.args)]
    kwargs = {k: _build_value(v, memo, f"{path}.{k}") for k, v in d.kwargs.items()}
    try:
        obj = d.cls(*args, **kwargs)
    except Exception as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"while building {path} = {_short_name(d.cls)}(...) from an ObjectDef")
        raise
    memo[id(d)] = obj
    return obj


def _build_value(value: Any, memo: dict[int, Any], path: str) -> Any:
    if isinstance(value, ObjectDef):
        if _is_module_class(value.cls):
            return _build(value, memo, path)
        return _copy_def(value, {}, strip_ids=False)  # a recipe the owner builds itself
    if isinstance(value, list):
        return [_build_value(v, memo, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_build_value(v, memo, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: _build_value(v, memo, f"{path}.{k}") for k, v in value.items()}
    return copy.deepcopy(value)


def _is_module_class(cls: Any) -> bool:
    from ptdry.core.module import Module  # module.py imports this file

    return isinstance(cls, type) and issubclass(cls, Module)


def _copy_def(d: ObjectDef, memo: dict[int, ObjectDef], strip_ids: bool) -> ObjectDef:
    if id(d) in memo:
        return memo[id(d)]
    new = ObjectDef.__new__(type(d))
    memo[id(d)] = new
    new.cls = d.cls
    new.args = tuple(_copy_value(a, memo, strip_ids) for a in d.args)
    new.kwargs = {
        k: _copy_value(v, memo, strip_ids) for k, v in d.kwargs.items() if not (strip_ids and k == "dry_id")
    }
    return new


def _copy_value(value: Any, memo: dict[int, ObjectDef], strip_ids: bool) -> Any:
    if isinstance(value, ObjectDef):
        return _copy_def(value, memo, strip_ids)
    if isinstance(value, list):
        return [_copy_value(v, memo, strip_ids) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy_value(v, memo, strip_ids) for v in value)
    if isinstance(value, dict):
        return {k: _copy_value(v, memo, strip_ids) for k, v in value.items()}
    return copy.deepcopy(value)


def _iter_defs(value: Any) -> Iterator[ObjectDef]:
    """Every ObjectDef reached in a tree, once per *reference* (shared nodes repeat)."""
    seen: set[int] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, ObjectDef):
            yield v
            if id(v) in seen:
                continue
            seen.add(id(v))
            stack.extend(reversed(list(v.args) + list(v.kwargs.values())))
        elif isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        elif isinstance(v, dict):
            stack.extend(reversed(list(v.values())))


def _canonical_text(d: ObjectDef) -> str:
    """Canonical JSON of ``d`` with keyword arguments and dict entries in key order, so that
    neither argument order nor which reference of a shared node comes first changes it."""
    return serialize.canonical_json(_sorted_def(d, {}).to_dict())


def _sorted_def(d: ObjectDef, memo: dict[int, ObjectDef]) -> ObjectDef:
    if id(d) in memo:
        return memo[id(d)]
    new = ObjectDef.__new__(ObjectDef)
    memo[id(d)] = new
    new.cls = d.cls
    new.args = tuple(_sorted_value(a, memo) for a in d.args)
    new.kwargs = {k: _sorted_value(d.kwargs[k], memo) for k in sorted(d.kwargs)}
    return new


def _sorted_value(value: Any, memo: dict[int, ObjectDef]) -> Any:
    if isinstance(value, ObjectDef):
        return _sorted_def(value, memo)
    if isinstance(value, list):
        return [_sorted_value(v, memo) for v in value]
    if isinstance(value, tuple):
        return tuple(_sorted_value(v, memo) for v in value)
    if isinstance(value, dict):
        return {k: _sorted_value(v, memo) for k, v in _sorted_items(value)}
    return value


def _structure(value: Any) -> Any:
    """A comparable form of a definition tree that needs no importable names."""
    if isinstance(value, ObjectDef):
        args = [_structure(a) for a in value.args]
        return ("def", value.cls, args, {k: _structure(v) for k, v in value.kwargs.items()})
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_structure(v) for v in value])
    if isinstance(value, dict):
        return ("dict", [(_structure(k), _structure(v)) for k, v in _sorted_items(value)])
    try:
        return ("value", serialize.canonical_json(serialize.encode(value)))
    except ConfigError:
        return ("object", value)


def _sorted_items(value: dict) -> list:
    """Items in the order of their keys' canonical JSON (insertion order if keys can't be stored)."""
    try:
        return sorted(value.items(), key=lambda kv: serialize.canonical_json(serialize.encode(kv[0], "key")))
    except ConfigError:
        return list(value.items())


def _shared_bodies(data: Any) -> dict[Any, dict]:
    """``{node number: body}`` of every shared node written by :meth:`ObjectDef.to_dict`."""
    found: dict[Any, dict] = {}
    stack = [data]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            body = v.get("__def__") if len(v) == 1 else v if v is data else None
            if isinstance(body, dict) and "node" in body:
                found.setdefault(body["node"], body)
            stack.extend(v.values())
    return found


def readable_hook(value: Any, path: str) -> Any:
    """How a nested definition appears in a ``config`` tree: ``{"__class__": path, "dry_id":
    id (if it has one), **config}``. A plain dict's own ``"__class__"`` key is stored as
    ``"＿＿class＿＿"``, so a plain value never looks like a nested definition."""
    if isinstance(value, ObjectDef):
        identity = {} if value.dry_id is None else {"dry_id": value.dry_id}
        return {"__class__": class_path(value.cls), **identity, **value.config()}
    if isinstance(value, dict) and "__class__" in value:
        return {
            ("\uff3f\uff3fclass\uff3f\uff3f" if k == "__class__" else serialize.escape_key(k)): serialize.readable(v, readable_hook)
            for k, v in value.items()
        }
    return serialize.NOT_HANDLED


def _positional_names(cls: Any, n: int) -> list[str] | None:
    if n == 0:
        return []
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    names = []
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            return None if len(names) < n else names[:n]
    return names[:n] if len(names) >= n else None


def _path_of(cls: Any, path: str) -> str:
    try:
        path_text = class_path(cls)
        if import_path(path_text) is not cls:
            raise ConfigError("not importable")
        return path_text
    except ConfigError:
        raise serialize_error(cls, path) from None


def serialize_error(cls: Any, path: str) -> Exception:
    from ptdry.errors import SerializationError

    return SerializationError(
        f"{path}: class {cls!r} cannot be imported by name (defined in a function or "
        "interactively?); define it at module level so the definition can be rebuilt"
    )


def _short_name(cls: Any) -> str:
    return getattr(cls, "__qualname__", None) or repr(cls)
