"""Check a document before it is written: what a MongoDB server would refuse, refused first.

``Repo.add_object`` builds every document of an object, checks them here, and only then
takes a version number and writes artifacts — so a refused object leaves nothing behind. The
errors name the path of the bad key or value inside the document.

Limits (MongoDB's documented ones; the embedded server is laxer, ptdry keeps stored data
portable): a document is at most 16 MiB of BSON, nests at most :data:`MAX_DEPTH` objects or
arrays, and its field names are strings without NUL characters.

Example:
    >>> check_document({"config": {"a\\x00b": 1}}, "Net")
    Traceback (most recent call last):
    ...
    ptdry.errors.SerializationError: Net: field name config['a\\x00b'] holds a NUL character, which BSON cannot store; rename the key
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from ptdry.core.module import Module
from ptdry.core.objectdef import ObjectDef
from ptdry.core.serialize import short_repr as _short
from ptdry.errors import SerializationError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "check_document", "clip", "deepest_path"]

#: MongoDB's maximum BSON document size.
MAX_BYTES = 16 * 1024 * 1024
#: MongoDB's documented maximum nesting of objects and arrays in a document.
MAX_DEPTH = 100


def check_document(doc: Mapping[str, Any], where: str) -> int:
    """Raise :class:`SerializationError` unless ``doc`` can be stored; return its BSON size.

    Args:
        doc: the document.
        where: what the document stands for, first in the message (e.g. ``"Session (trainer.model)"``).
    """
    import bson

    _check_structure(doc, where)
    try:
        size = len(bson.encode(doc))
    except (bson.errors.InvalidDocument, OverflowError) as exc:
        path, value = _first_unencodable(doc)
        raise SerializationError(
            f"{where}: {clip(path)} = {_short(value)} ({type(value).__qualname__}) cannot be stored in "
            f"BSON ({exc}); use plain data (numbers, strings, lists, dicts) or keep it in the state"
        ) from None
    if size > MAX_BYTES:
        path, big = _largest_value(doc)
        raise SerializationError(
            f"{where}: the document is {size / 2**20:.1f} MiB, over MongoDB's 16 MiB limit; most of "
            f"it is {clip(path)} ({big / 2**20:.1f} MiB). Keep big values out of constructor "
            "arguments (put them in the state, which goes to the artifact store)"
        )
    return size


def deepest_path(value: Any, path: str = "") -> tuple[str, int]:
    """``(path, depth)`` of the most deeply nested container in ``value``, found without
    recursion (so it works where recursion failed). Lists, tuples, dicts, ObjectDefs and
    Modules (through their recorded arguments) each count a level."""
    best = (path, 0)
    seen: set[int] = set()
    stack: list[tuple[Any, str, int]] = [(value, path, 1)]
    while stack:
        v, at, depth = stack.pop()
        if not isinstance(v, (Mapping, list, tuple, Module, ObjectDef)) or id(v) in seen:
            continue
        seen.add(id(v))
        if depth > best[1]:
            best = (at, depth)
        stack.extend((child, child_at, depth + 1) for child_at, child in _children(v, at))
    return best


def clip(path: str, most: int = 120) -> str:
    """``path`` shortened in the middle when longer than ``most`` characters (for messages)."""
    if len(path) <= most:
        return path
    half = (most - 1) // 2
    return f"{path[:half]}…{path[-half:]}"


def _check_structure(doc: Mapping[str, Any], where: str) -> None:
    stack: list[tuple[Any, str, int]] = [(doc, "", 1)]
    while stack:
        value, at, depth = stack.pop()
        if isinstance(value, Mapping):
            items: Iterator[tuple[Any, Any]] = iter(value.items())
        elif isinstance(value, (list, tuple)):
            items = enumerate(value)
        else:
            continue
        if depth > MAX_DEPTH:
            raise SerializationError(
                f"{where}: {clip(at)} nests more than {MAX_DEPTH} lists or dicts deep, beyond what MongoDB "
                "stores; flatten the value (or keep it in the state)"
            )
        is_doc = isinstance(value, Mapping)
        for key, sub in reversed(list(items)):  # reversed onto the stack: checked in document order
            if is_doc and not isinstance(key, str):
                raise SerializationError(f"{where}: {clip(_join(at, key))} has a {type(key).__qualname__} field name; BSON needs strings")
            if is_doc and "\x00" in key:
                raise SerializationError(
                    f"{where}: field name {clip(_join(at, key))} holds a NUL character, which BSON cannot store; rename the key"
                )
            stack.append((sub, _join(at, key), depth + 1))


def _first_unencodable(doc: Mapping[str, Any]) -> tuple[str, Any]:
    """The path and value of the first leaf ``bson.encode`` refuses."""
    import bson

    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, at = stack.pop()
        if isinstance(value, Mapping):
            stack.extend((v, _join(at, k)) for k, v in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, _join(at, i)) for i, v in reversed(list(enumerate(value))))
        else:
            try:
                bson.encode({"v": value})
            except (bson.errors.InvalidDocument, OverflowError):
                return at, value
    return "the document", doc  # pragma: no cover - encode failed, yet every leaf encodes


def _largest_value(doc: Mapping[str, Any]) -> tuple[str, int]:
    """The path of the value that makes ``doc`` big: its largest field (arguments appear in
    ``args``, ``config`` and ``definition`` alike), then into the largest part while that part
    holds most of it."""
    import bson

    def size(value: Any) -> int:
        return len(bson.encode({"v": value}))

    path, value, best = "", doc, size(doc)
    while isinstance(value, (Mapping, list, tuple)) and value:
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        key, sub, n = max(((k, v, size(v)) for k, v in items), key=lambda kv: kv[2])
        if path and n * 2 < best:
            break
        path, value, best = _join(path, key), sub, n
    return path, best


def _children(value: Any, at: str) -> list[tuple[str, Any]]:
    if isinstance(value, Module):
        value = {"args": list(value.dry_args), **value.dry_kwargs}
    elif isinstance(value, ObjectDef):
        value = {"args": list(value.args), **value.kwargs}
    if isinstance(value, Mapping):
        return [(_join(at, k), v) for k, v in value.items()]
    return [(_join(at, i), v) for i, v in enumerate(value)]


def _join(at: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{at}[{key}]"
    if isinstance(key, str) and key.isidentifier():
        return f"{at}.{key}" if at else key
    return f"{at}[{key!r}]"

