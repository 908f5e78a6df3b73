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
from typing import Any, Callable, Iterable, Iterator

from ptdry.core import serialize
from ptdry.core.allowed import ImportPolicy
from ptdry.core.classpath import class_path, import_path
from ptdry.core.metamodule import Metamodule
from ptdry.core.traverse import Walk
from ptdry.errors import ConfigError, SerializationError, add_note

__all__ = ["Configuration", "ObjectDef", "build", "is_module_class", "iter_defs"]

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
        return _copy_def(self, strip_ids=True)

    @property
    def category_hash(self) -> str:
        """sha256 of the canonical id-free definition: equal hyperparameters, equal hash."""
        text = _canonical_text(self.without_ids())
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    def replace(self, values: dict[str, Any]) -> "ObjectDef":
        """A copy with the value at each dotted path replaced (this definition is unchanged).

        A path names keyword arguments, positional arguments by their parameter's name
        (``ObjectDef(torch.nn.Linear, 4, 2)``: ``in_features``), the extra positional
        arguments of a ``*sizes`` parameter as ``sizes.0``, …, and dict keys and list indexes
        inside values. A last part may also name a parameter left at its default, or any
        key of a class taking ``**kwargs``. Ids are kept: call :meth:`without_ids` on the
        result for a definition that builds new objects.

        Example:
            >>> d = ObjectDef(dict, opt=ObjectDef(dict, lr=0.1), sizes=[64, 10])
            >>> d.replace({"opt.lr": 0.01, "sizes.0": 32})
            ObjectDef(dict, opt=ObjectDef(dict, lr=0.01), sizes=[32, 10])

        Raises:
            ConfigError: a part of a path does not exist; the message names the path and
                lists what exists where it stopped.
        """
        from ptdry.core.def_paths import set_paths

        new = _copy_def(self)
        set_paths(new, values, ObjectDef)
        return new

    # -- building -------------------------------------------------------------------------
    def build(self) -> Any:
        """Make the object (and every nested ptdry Module definition)."""
        return build(self)

    # -- serialization ----------------------------------------------------------------------
    def to_dict(self, *, fallback: Callable[[Any, str], Any] | None = None) -> dict:
        """JSON/BSON-safe data; :meth:`from_dict` gives back an equal definition.

        Args:
            fallback: ``fallback(value, path)`` stores an argument value that nothing else
                can encode (a lambda, a closure, a local class) and returns the JSON-safe
                marker that stands for it (``save_object(..., trusted=True)`` passes one that
                uses dill). Default: such values raise.

        Raises:
            SerializationError: a value cannot be stored; the message names its path.
        """
        counts: dict[int, int] = {}
        for node in iter_defs(self):
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
                return serialize.NOT_HANDLED if fallback is None else _or_fallback(value, path, fallback)
            if id(value) in numbers:
                return {"__ref__": numbers[id(value)]}
            return {"__def__": body(value, path)}

        return {"format": FORMAT, **body(self, _short_name(self.cls))}

    @classmethod
    def from_dict(
        cls,
        data: dict,
        *,
        trusted: bool = False,
        allowed: Iterable[Any] = (),
        decode_hook: serialize.DecodeHook | None = None,
    ) -> "ObjectDef":
        """Rebuild a definition from :meth:`to_dict` data.

        Classes and functions are looked up by path, and only those that loading may import
        and call (see :mod:`ptdry.core.allowed`) unless ``trusted`` is true.

        Args:
            data: the :meth:`to_dict` data.
            trusted: import every name in ``data`` (only for data whose writer you trust).
            allowed: classes or functions to allow besides those registered with ``ptdry.allow``.
            decode_hook: ``hook(marker, payload, path)`` for markers that a ``to_dict``
                fallback wrote (returns ``serialize.NOT_HANDLED`` for others).

        Raises:
            UntrustedArchiveError: ``data`` names something not allowed; the message gives
                its path in the tree (``definition.trainer.net``) and its name.
            ConfigError: ``data`` is not a definition, or is malformed.
        """
        if not isinstance(data, dict) or "cls" not in data:
            raise ConfigError(f"not a ptdry definition (no 'cls' key): {str(data)[:120]}")
        if not isinstance(data.get("format", FORMAT), int) or data.get("format", FORMAT) > FORMAT:
            raise ConfigError(
                f"definition format {data['format']!r} is newer than this ptdry understands "
                f"({FORMAT}); upgrade ptdry"
            )
        policy = ImportPolicy.of(trusted, allowed)
        nodes: dict[int, ObjectDef] = {}
        try:
            bodies = _shared_bodies(data)  # a reference may come first (e.g. JSON with sorted keys)
        except TypeError as exc:  # an unhashable node number
            raise ConfigError(f"malformed definition: {exc}") from None

        def make(body: dict, path: str) -> ObjectDef:
            args = body.get("args", []) if isinstance(body, dict) else None
            kwargs = body.get("kwargs", {}) if isinstance(body, dict) else None
            if not isinstance(args, list) or not isinstance(kwargs, dict) or type(body.get("node", 0)) is not int:
                raise ConfigError(f"{path}: malformed definition node {str(body)[:120]}")
            if "node" in body and body["node"] in nodes:
                return nodes[body["node"]]
            d = ObjectDef.__new__(ObjectDef)
            if "node" in body:
                nodes[body["node"]] = d
            d.cls = policy.resolve(body.get("cls"), path)
            d.args = tuple(
                serialize.decode(a, hook, policy=policy, path=f"{path}.args[{i}]") for i, a in enumerate(args)
            )
            d.kwargs = {k: serialize.decode(v, hook, policy=policy, path=f"{path}.{k}") for k, v in kwargs.items()}
            return d

        def hook(marker: str, payload: Any, path: str) -> Any:
            if marker == "__def__":
                return make(payload, path)
            if marker == "__ref__":
                if type(payload) is not int:
                    raise ConfigError(f"{path}: malformed reference to a shared node: {payload!r}")
                if payload in nodes:
                    return nodes[payload]
                if payload in bodies:
                    return make(bodies[payload], path)
                raise ConfigError(f"{path}: definition refers to shared node {payload!r}, which it does not define")
            return serialize.NOT_HANDLED if decode_hook is None else decode_hook(marker, payload, path)

        return make(data, "definition")

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
        return _copy_def(self)

    def __deepcopy__(self, memo: dict) -> "ObjectDef":
        return _copy_def(self)

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


def _or_fallback(value: Any, path: str, fallback: Callable[[Any, str], Any]) -> Any:
    """Encode a leaf value as usual, or hand it to ``fallback`` when that fails."""
    if isinstance(value, (dict, list, tuple)):
        return serialize.NOT_HANDLED  # containers: encode walks them, leaves come back here
    try:
        return serialize.encode(value, path)
    except SerializationError:
        return fallback(value, path)


def build(definition: ObjectDef, memo: dict[int, Any] | None = None) -> Any:
    """Build ``definition``; a node reached twice (same object) is built once and shared.

    The root is called whatever it names; nested definitions of ptdry Modules are built,
    and a nested definition of any other class stays a definition (a recipe its owner
    builds). Errors raised by a constructor keep their type; a note names where in the tree
    it failed (``while building Session.trainer.model.optimizer = Optimizer(...)``).

    Args:
        definition: the tree.
        memo: ``{id(node): object}`` of nodes already built (e.g. objects a Repo has
            loaded); filled with what this call builds.
    """

    def node(walk: Walk, d: ObjectDef, path: str) -> Any:
        if d is not definition and not is_module_class(d.cls):
            return _copy_def(d)  # a recipe the owner builds itself
        args, kwargs = walk.args(d.args, path), walk.kwargs(d.kwargs, path)
        try:
            return d.cls(*args, **kwargs)
        except Exception as exc:
            if not getattr(exc, "_dry_path_noted", False):  # the innermost node is where it happened
                exc._dry_path_noted = True  # type: ignore[attr-defined]
                add_note(exc, f"while building {path} = {_short_name(d.cls)}(...) from an ObjectDef")
            raise

    walk = Walk((ObjectDef,), node, _copy_leaf)
    if memo:
        walk.memo.update(memo)
    out = walk(definition, _short_name(definition.cls))
    if memo is not None:
        memo.update(walk.memo)
    return out


def is_module_class(cls: Any) -> bool:
    """True for ptdry Module subclasses (marked by ``Module``, so core/objectdef needs no import of it)."""
    return isinstance(cls, type) and getattr(cls, "_dry_module", False) is True


def _copy_leaf(value: Any, path: str) -> Any:
    return copy.deepcopy(value)


def _copy_def(d: ObjectDef, *, strip_ids: bool = False, sort: bool = False) -> ObjectDef:
    """A copy of the tree (shared nodes stay shared); without ``dry_id``\\ s when ``strip_ids``;
    with keyword arguments and dict entries in a canonical order when ``sort``."""

    def node(walk: Walk, value: ObjectDef, path: str) -> ObjectDef:
        new = ObjectDef.__new__(ObjectDef if sort else type(value))
        walk.remember(value, new)
        new.cls = value.cls
        new.args = walk.args(value.args, path)
        kwargs = {k: v for k, v in value.kwargs.items() if not (strip_ids and k == "dry_id")}
        new.kwargs = walk.kwargs(kwargs, path, sort=sort)
        return new

    walk = Walk((ObjectDef,), node, None if sort else _copy_leaf, sort_dicts=sort, sort_key=_canonical_key)
    return walk(d, "")


def iter_defs(value: Any) -> list[ObjectDef]:
    """Every ObjectDef in a tree, once per *reference* (a shared node appears each time it is
    reached), in depth-first order."""
    found: list[ObjectDef] = []

    def node(walk: Walk, d: ObjectDef, path: str) -> None:
        found.append(d)
        walk.args(d.args, path)
        walk.kwargs(d.kwargs, path)

    Walk((ObjectDef,), node, again=lambda d, path: found.append(d))(value, "")
    return found


def _canonical_text(d: ObjectDef) -> str:
    """Canonical JSON of ``d`` with keyword arguments and dict entries in key order, so that
    neither argument order nor which reference of a shared node comes first changes it."""
    return serialize.canonical_json(_copy_def(d, sort=True).to_dict())


def _canonical_key(key: Any) -> str:
    """How dict keys sort in canonical form: by their canonical JSON (repr if not storable)."""
    try:
        return serialize.canonical_json(serialize.encode(key, "key"))
    except ConfigError:
        return repr(key)


def _structure(d: ObjectDef) -> Any:
    """A comparable form of a definition tree that needs no importable names: nodes as
    ``("def", cls, args, kwargs)``, storable values as their canonical JSON, others as
    themselves (compared by equality)."""

    def node(walk: Walk, value: ObjectDef, path: str) -> tuple:
        return ("def", value.cls, list(walk.args(value.args, path)), walk.kwargs(value.kwargs, path))

    def leaf(value: Any, path: str) -> tuple:
        try:
            return ("value", serialize.canonical_json(serialize.encode(value)))
        except ConfigError:
            return ("object", value)

    return Walk((ObjectDef,), node, leaf)(d, "")


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
