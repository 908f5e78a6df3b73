"""Selector: pick stored objects by class and hyperparameters, in the server or in memory.

A :class:`Selector` compiles to a MongoDB filter over the fields every stored Module has
(``_id``, ``mro``, ``args``, ``config``; see ``Module.query_document()``), and judges
in-memory objects with the *same* filter through :mod:`ptdry.db.matcher`, so
``repo.get(sel)`` and ``[o for o in objs if sel(o)]`` agree by construction.

Equality is exact (DRYML's semantics) although MongoDB's is not: ``{"a": "x"}`` also matches
an array holding ``"x"``, and ``{"a.b": 1}`` reaches into arrays of subdocuments. So a plain
value ``v`` compiles to ``{"$eq": v, "$not": {"$type": "array"}}`` (a list value to
``{"$eq": v, "$not": {"$elemMatch": {"$eq": v}}}``), and every dotted path is guarded with
``{prefix: {"$not": {"$type": "array"}}}``. Indexed equalities (``mro``, ``_id``) stay plain,
so the query planner (see :mod:`ptdry.db.query_plan`) still uses the indexes.

Raw Mongo filter dicts are accepted wherever a Selector is (:func:`as_filter`), after
:func:`~ptdry.db.matcher.validate_filter` has refused server-side JavaScript.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ptdry.core import serialize
from ptdry.core.classpath import class_path, import_path
from ptdry.core.objectdef import ObjectDef, _positional_names, readable_hook
from ptdry.core.serialize import short_repr as _short
from ptdry.db.matcher import compile_filter, validate_filter
from ptdry.errors import ConfigError, SelectorError, SerializationError

__all__ = ["Selector", "as_filter"]

# Operators whose operand is a list of values / a pattern / a flag or number kept as is.
_LIST_OPERANDS = ("$in", "$nin", "$all")
_RAW_OPERANDS = ("$regex", "$options", "$exists", "$size", "$type")


class Selector:
    """Select stored objects by class (subclasses included) and constructor arguments.

    Plain values compare *exactly*, as in DRYML: ``args=["test"]`` does not select an object
    whose first argument is ``["test", "other"]`` (MongoDB's "an array containing it" never
    applies), and a missing parameter matches nothing, not even ``None``. Operator dicts keep
    MongoDB's meaning.

    Args:
        cls: a class or a ``"pkg.module:Qual"`` path; objects of that class or of any
            subclass match (through the stored ``mro``). None: any class.
        args: positional arguments, matched position by position (``args.0``, ``args.1``…).
        kwargs: parameter names or dotted paths into the definition tree
            (``"trainer.optimizer.lr"``, ``"trainer.dry_id"``) mapped to values or to Mongo
            operator dicts (``{"$lt": 1e-3}``, ``{"$in": [...]}``, ``{"$regex": "^adam"}``).
            ``dry_id`` matches the object's own id.

    Values: tuples equal lists, NumPy scalars equal Python numbers, classes equal their path.
    A plain dict matches the keys it names (others are not checked); a list matches element
    by element and in length. A nested ``ObjectDef`` matches a nested definition of exactly
    its class whose arguments match the ones it names; with a ``dry_id`` (``obj.definition()``,
    or a Module itself) it matches that object only. A nested definition never matches a
    plain value.

    Raises:
        SelectorError: an argument cannot become a filter (the message names it).

    Example:
        >>> from ptdry import Module
        >>> class Net(Module):
        ...     def __init__(self, width=8, shape=(2, 2)):
        ...         pass
        >>> sel = Selector(kwargs={"width": {"$gte": 8}, "shape": (2, 2)})
        >>> sel.to_mongo()["config.shape"]
        {'$eq': [2, 2], '$not': {'$elemMatch': {'$eq': [2, 2]}}}
        >>> sel(Net()), sel(Net(width=4)), sel(Net(shape=((2, 2), 3)))
        (True, False, False)
    """

    __slots__ = ("_cls", "_args", "_kwargs", "_filter", "_predicate", "_text")

    def __init__(
        self,
        cls: type | str | None = None,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        clauses: list[tuple[str, Any]] = []
        if cls is not None:
            path = _class_path(cls)
            if path is not None:
                clauses.append(("mro", path))
        if args is not None:
            if isinstance(args, (str, bytes, Mapping)) or not isinstance(args, Sequence):
                raise SelectorError(
                    f"Selector args must be a list of positional values; received "
                    f"{type(args).__qualname__}: {_short(args)}"
                )
            for i, value in enumerate(args):
                clauses += _clauses(f"args.{i}", value, f"args[{i}]")
        if kwargs is not None:
            if not isinstance(kwargs, Mapping):
                raise SelectorError(
                    f"Selector kwargs must be a dict of parameter names to values; received "
                    f"{type(kwargs).__qualname__}: {_short(kwargs)}"
                )
            for key, value in kwargs.items():
                if not isinstance(key, str) or not key or key.startswith("$") or "" in key.split("."):
                    raise SelectorError(
                        f"Selector kwargs keys must be parameter names or dotted paths like "
                        f"'trainer.optimizer.lr'; received {key!r}"
                    )
                if key == "dry_id":  # the object's own id: a plain equality the index serves
                    clauses += [("_id", _operand(value, "kwargs['dry_id']"))]
                    continue
                field = f"config.{key}"
                clauses += _path_guards(field) + _clauses(field, value, f"kwargs[{key!r}]")
        self._cls, self._args, self._kwargs = cls, args, kwargs
        self._set_filter(_combine(clauses))

    def _set_filter(self, filt: dict) -> None:
        self._filter = filt
        self._predicate = compile_filter(filt)  # validates once
        self._text = None

    # -- the filter ----------------------------------------------------------------------
    def to_mongo(self) -> dict:
        """The MongoDB filter this selector stands for (a fresh copy; already validated)."""
        return _copy(self._filter)

    def __call__(self, obj: Any) -> bool:
        """True if ``obj`` (a Module, an ObjectDef, or a stored document dict) is selected.

        Modules and definitions are judged on their ``query_document()``: the fields a stored
        document has for them (``_id``, ``cls``, ``mro``, ``args``, ``config``).
        """
        return self._predicate(query_document(obj))

    # -- combination ---------------------------------------------------------------------
    def __and__(self, other: Any) -> "Selector":
        return self._joined("$and", other)

    def __or__(self, other: Any) -> "Selector":
        return self._joined("$or", other)

    def _joined(self, op: str, other: Any) -> "Selector":
        if not isinstance(other, (Selector, Mapping)):
            return NotImplemented
        parts = [self.to_mongo(), as_filter(other)]
        new = Selector.__new__(Selector)
        new._cls = new._args = new._kwargs = None
        new._set_filter({op: parts})
        new._text = f"({self!r} {'&' if op == '$and' else '|'} {_repr_other(other)})"
        return new

    # -- value semantics -----------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return self._filter == other._filter

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._text is not None:
            return self._text
        parts = []
        if self._cls is not None:
            parts.append(repr(self._cls if isinstance(self._cls, str) else _class_path(self._cls)))
        if self._args is not None:
            parts.append(f"args={list(self._args)!r}")
        if self._kwargs is not None:
            parts.append(f"kwargs={dict(self._kwargs)!r}")
        return f"Selector({', '.join(parts)})"


def as_filter(selector: Any) -> dict:
    """The Mongo filter for a :class:`Selector`, a raw filter dict (validated), or None (all).

    Raises:
        SelectorError: ``selector`` is something else, or a raw filter is refused.
    """
    if selector is None:
        return {}
    if isinstance(selector, Selector):
        return selector.to_mongo()
    if isinstance(selector, Mapping):
        return validate_filter(selector if isinstance(selector, dict) else dict(selector))
    hint = ""
    if isinstance(selector, type):
        hint = f"; to select by class write Selector({selector.__qualname__})"
    raise SelectorError(
        f"expected a Selector, a Mongo filter dict or None; received "
        f"{type(selector).__qualname__}: {_short(selector)}{hint}"
    )


def query_document(obj: Any) -> Mapping[str, Any]:
    """The document a selector judges for ``obj``: Modules and ObjectDefs give their
    ``query_document()``, dicts (stored documents, records) are used as they are."""
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, ObjectDef) or callable(getattr(obj, "query_document", None)):
        return obj.query_document()
    raise SelectorError(
        f"a Selector judges a Module, an ObjectDef or a document dict; received "
        f"{type(obj).__qualname__}: {_short(obj)}"
    )


# -- building clauses -------------------------------------------------------------------------
def _class_path(cls: Any) -> str | None:
    """The stored ``mro`` entry for ``cls`` (None for ``object``: every class matches)."""
    if cls is object:
        return None
    if isinstance(cls, str):
        if ":" in cls:
            module, _, qual = cls.partition(":")
            if module and qual:
                return cls
        else:  # "pkg.module.Name": find where the module ends by importing it
            try:
                return class_path(import_path(cls))
            except (ConfigError, SerializationError):
                pass
        raise SelectorError(
            f"Selector cls must be a class or a path like 'pkg.module:Name'; received {cls!r}"
        )
    if isinstance(cls, type):
        try:
            return class_path(cls)
        except SerializationError as exc:
            raise SelectorError(f"Selector cls {cls!r} has no importable name: {exc}") from None
    raise SelectorError(
        f"Selector cls must be a class, a 'pkg.module:Name' path or None; received "
        f"{type(cls).__qualname__}: {_short(cls)}"
    )


def _clauses(field: str, value: Any, where: str) -> list[tuple[str, Any]]:
    """``(field, condition)`` pairs that hold exactly when the value at ``field`` equals
    ``value`` (DRYML's rules: plain dicts and definitions match the keys / arguments they
    name, lists match element by element and in length, everything else by equality — never
    by MongoDB's "an array containing it"). Operator dicts and patterns are kept as they are."""
    if _is_operator_dict(value):
        return [(field, _operators(value, where))]
    if _is_pattern(value):
        return [(field, value)]
    if _is_module(value):
        value = _definition_of(value, where)
    if isinstance(value, ObjectDef):
        return _definition_clauses(field, value, where)
    if isinstance(value, Mapping) and value:
        out = [_not_an_array(field)]
        for key, sub in value.items():
            out += _clauses(f"{field}.{_escaped_key(key)}", sub, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)) and _holds_conditions(value):
        out = [(field, {"$size": len(value)})]
        for i, sub in enumerate(value):
            out += _clauses(f"{field}.{i}", sub, f"{where}[{i}]")
        return out
    return [(field, _exactly(_readable(value, where)))]


def _definition_clauses(field: str, d: ObjectDef, where: str) -> list[tuple[str, Any]]:
    """A nested definition: with a ``dry_id``, that object only; without, any nested
    definition of exactly its class whose arguments match the ones it names."""
    try:
        cls = class_path(d.cls)
    except (ConfigError, SerializationError) as exc:
        raise SelectorError(f"{where}: cannot compare with {_short(d)} ({exc})") from None
    out = [_not_an_array(field), (f"{field}.__class__", _exactly(cls))]
    if d.dry_id is not None:
        return out + [(f"{field}.dry_id", _exactly(d.dry_id))]
    for name, arg in _named_arguments(d).items():
        out += _clauses(f"{field}.{name}", arg, f"{where}.{name}")
    return out


def _named_arguments(d: ObjectDef) -> dict[str, Any]:
    """``d``'s arguments under the names its readable config gives them (``ObjectDef.config``)."""
    names = _positional_names(d.cls, len(d.args))
    out: dict[str, Any] = {"__args__": list(d.args)} if names is None else dict(zip(names, d.args))
    out.update((k, v) for k, v in d.kwargs.items() if k != "dry_id")
    return out


def _exactly(value: Any) -> dict:
    """The condition "equal to ``value``, and not an array merely containing it"."""
    if value is None:  # {"$eq": None} also matches a missing field
        return {"$eq": None, "$exists": True, "$not": {"$type": "array"}}
    if isinstance(value, list):
        return {"$eq": value, "$not": {"$elemMatch": {"$eq": value}}}
    return {"$eq": value, "$not": {"$type": "array"}}


def _not_an_array(field: str) -> tuple[str, Any]:
    """Keeps a dotted path below ``field`` from reaching into the elements of an array."""
    return (field, {"$not": {"$type": "array"}})


def _path_guards(field: str) -> list[tuple[str, Any]]:
    """:func:`_not_an_array` for every prefix of a dotted ``field`` below its top-level field,
    except before a position (``layers.0``), where an array is what is expected."""
    parts = field.split(".")
    return [
        _not_an_array(".".join(parts[: i + 1]))
        for i in range(1, len(parts) - 1)
        if not parts[i + 1].isdigit()
    ]


def _holds_conditions(values: Sequence[Any]) -> bool:
    """True if a list holds (at any depth) something that is not compared by plain equality:
    a dict, a definition, a Module, an operator dict or a pattern."""
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, (Mapping, ObjectDef)) or _is_module(v) or _is_pattern(v):
            return True
        if isinstance(v, (list, tuple)):
            stack.extend(v)
    return False


def _definition_of(module: Any, where: str) -> ObjectDef:
    try:
        return module.definition()
    except ConfigError as exc:
        raise SelectorError(f"{where}: cannot compare with {_short(module)} ({exc})") from None


def _operators(ops: Mapping[str, Any], where: str) -> dict:
    out: dict[str, Any] = {}
    for op, arg in ops.items():
        if not isinstance(op, str) or not op.startswith("$"):
            raise SelectorError(
                f"{where} mixes operators and field names ({op!r}); write either "
                "{'$op': value, …} or a plain dict of fields"
            )
        at = f"{where}[{op!r}]"
        if op in _RAW_OPERANDS or _is_pattern(arg):
            out[op] = arg
        elif op in _LIST_OPERANDS:
            if isinstance(arg, (str, bytes, Mapping)) or not isinstance(arg, (list, tuple)):
                raise SelectorError(f"{at} needs a list of values; received {_short(arg)}")
            out[op] = [_operand(item, f"{at}[{i}]") for i, item in enumerate(arg)]
        elif op == "$elemMatch" and isinstance(arg, Mapping):
            out[op] = _subfilter(arg, at)
        else:
            out[op] = _operand(arg, at)
    return out


def _subfilter(filt: Mapping[str, Any], where: str) -> dict:
    """A filter inside an operator (``$elemMatch``): fields, operators and ``$and``/``$or``."""
    out: dict[str, Any] = {}
    for key, value in filt.items():
        at = f"{where}[{key!r}]"
        if key in ("$and", "$or", "$nor") and isinstance(value, (list, tuple)):
            out[key] = [_subfilter(v, f"{at}[{i}]") if isinstance(v, Mapping) else v for i, v in enumerate(value)]
        elif isinstance(key, str) and key.startswith("$"):
            out.update(_operators({key: value}, where))
        else:
            out[key] = _operand(value, at)
    return out


def _operand(value: Any, where: str) -> Any:
    if _is_pattern(value):
        return value
    if _is_operator_dict(value):
        return _operators(value, where)
    return _readable(value, where)


def _readable(value: Any, where: str) -> Any:
    """The value as the stored ``config`` tree renders it (``serialize.readable``)."""
    try:
        return serialize.readable(value, _readable_hook)
    except Exception as exc:  # a value readable() itself cannot render
        raise SelectorError(f"{where}: cannot compare with {_short(value)} ({exc})") from None


def _readable_hook(value: Any, path: str) -> Any:
    # The same rendering ObjectDef.config() gives nested definitions.
    if _is_module(value):
        value = value.definition()
    if _is_pattern(value):
        return value
    return readable_hook(value, path)


#: A plain dict's own ``"__class__"`` key, as ``readable_hook`` stores it (so that a plain
#: dict never looks like a nested definition).
_PLAIN_CLASS_KEY = next(iter(readable_hook({"__class__": None}, "")))


def _escaped_key(key: Any) -> str:
    """A dict key as the stored ``config`` has it (``.`` and ``$`` replaced, ``__class__`` too)."""
    return _PLAIN_CLASS_KEY if key == "__class__" else serialize.escape_key(key)


def _is_module(value: Any) -> bool:
    from ptdry.core.module import Module

    return isinstance(value, Module)


def _is_operator_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value)


def _is_pattern(value: Any) -> bool:
    import re

    return isinstance(value, re.Pattern) or (
        type(value).__name__ == "Regex" and type(value).__module__.startswith("bson")
    )


def _combine(clauses: list[tuple[str, Any]]) -> dict:
    """One dict when every field is named once (the usual Mongo shape), else an ``$and``.
    A clause given twice (the same guard from two arguments) is kept once."""
    unique: list[tuple[str, Any]] = []
    for clause in clauses:
        if clause not in unique:
            unique.append(clause)
    clauses = unique
    fields = [f for f, _ in clauses]
    if len(set(fields)) == len(fields):
        return dict(clauses)
    return {"$and": [{f: c} for f, c in clauses]}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _repr_other(other: Any) -> str:
    return repr(other) if isinstance(other, Selector) else f"{dict(other)!r}"


