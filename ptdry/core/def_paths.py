"""Dotted paths into a definition tree: ``"trainer.model.optimizer.lr"``, ``"seed"``.

A path walks from a definition through its arguments: a keyword argument by name, a
positional argument by its parameter's name (``Linear``'s ``in_features`` is ``args[0]``),
the extra positional arguments of a ``*sizes`` parameter as ``sizes.0``, ``sizes.1``, …,
and into plain values: dict keys and list/tuple indexes. :func:`set_paths` is what
``ObjectDef.replace`` does; its errors name the path and list what exists where it stopped.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Mapping

from ptdry.errors import ConfigError

__all__ = ["set_paths"]


def set_paths(root: Any, values: Mapping[str, Any], node_type: type) -> None:
    """Set each ``path: value`` of ``values`` inside ``root`` (a definition, of class
    ``node_type``: an ObjectDef), in place.

    Raises:
        ConfigError: a path is not a non-empty dotted string, or one of its parts does not
            exist (the message names the path and lists what exists there).
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"replace() needs a dict of dotted paths to values; received {type(values).__qualname__}")
    for path, value in values.items():
        if not isinstance(path, str) or not path or "" in path.split("."):
            raise ConfigError(f"a path is dotted names such as 'trainer.model.optimizer.lr'; received {path!r}")
        parts = path.split(".")
        _set(root, parts, copy.deepcopy(value), path, [], node_type)


def _set(node: Any, parts: list[str], value: Any, path: str, done: list[str], node_type: type) -> Any:
    """Set ``parts`` below ``node`` to ``value``; returns the node to put back in its parent
    (a new tuple where a tuple changed, else ``node`` itself)."""
    part, rest = parts[0], parts[1:]
    if isinstance(node, node_type):
        slot = _slot(node, part, last=not rest)
        if slot is None:
            raise _missing(path, done, node, part, node_type)
        kind, key = slot
        if kind == "varargs":
            return _set_varargs(node, key, rest, value, path, done + [part], node_type)
        container = node.kwargs if kind == "kwargs" else list(node.args)
        container[key] = value if not rest else _set(container[key], rest, value, path, done + [part], node_type)
        if kind == "args":
            node.args = tuple(container)
        return node
    if isinstance(node, dict):
        if part not in node and rest:
            raise _missing(path, done, node, part, node_type)
        node[part] = value if not rest else _set(node[part], rest, value, path, done + [part], node_type)
        return node
    if isinstance(node, (list, tuple)):
        if not part.isdigit() or int(part) >= len(node):
            raise ConfigError(
                f"cannot set {path!r}: {_where(done)} is a {type(node).__name__} of {len(node)} items; "
                f"{part!r} is not an index 0..{len(node) - 1}"
            )
        items = list(node)
        i = int(part)
        items[i] = value if not rest else _set(items[i], rest, value, path, done + [part], node_type)
        return items if isinstance(node, list) else tuple(items)
    raise ConfigError(
        f"cannot set {path!r}: {_where(done)} is the value {node!r} ({type(node).__qualname__}), "
        "not a definition, dict or list"
    )


def _set_varargs(
    node: Any, start: int, rest: list[str], value: Any, path: str, done: list[str], node_type: type
) -> Any:
    """The extra positional arguments (``*sizes``) seen as one tuple ``sizes``."""
    extra = tuple(node.args[start:])
    if not rest:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"cannot set {path!r}: it holds the extra positional arguments; give a list or tuple, not {value!r}"
            )
        node.args = node.args[:start] + tuple(value)
    else:
        node.args = node.args[:start] + tuple(_set(extra, rest, value, path, done, node_type))
    return node


def _slot(d: Any, part: str, *, last: bool) -> tuple[str, Any] | None:
    """Where ``part`` of definition ``d`` lives: ``("kwargs", name)``, ``("args", index)``,
    ``("varargs", first index)``, or None if nowhere."""
    if part == "dry_id":
        return None
    if part in d.kwargs:
        return "kwargs", part
    params = _parameters(d.cls)
    if params is None:
        return None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for i, p in enumerate(positional):
        if p.name == part and i < len(d.args):
            return "args", i
    for p in params:
        if p.kind == p.VAR_POSITIONAL and p.name == part and len(d.args) >= len(positional):
            return "varargs", len(positional)
    if last:  # a parameter left at its default, or a **kwargs key: add it as a keyword
        named = {p.name: p for p in params}
        if part in named and named[part].kind in (named[part].POSITIONAL_OR_KEYWORD, named[part].KEYWORD_ONLY):
            return "kwargs", part
        if any(p.kind == p.VAR_KEYWORD for p in params) and part not in named:
            return "kwargs", part
    return None


def _parameters(cls: Any) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return None


def _names(d: Any) -> list[str]:
    """What a path may name in definition ``d``, in argument order."""
    params = _parameters(d.cls)
    names: list[str] = []
    if params is None:
        names += [f"args[{i}] (no signature: not reachable)" for i in range(len(d.args))]
    else:
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        names += [p.name for p in positional[: len(d.args)]]
        var = [p.name for p in params if p.kind == p.VAR_POSITIONAL]
        if var and len(d.args) > len(positional):
            names.append(f"{var[0]}.0..{len(d.args) - len(positional) - 1}")
    names += [k for k in d.kwargs if k != "dry_id"]
    return names


def _where(done: list[str]) -> str:
    return ".".join(done) if done else "the definition"


def _missing(path: str, done: list[str], node: Any, part: str, node_type: type) -> ConfigError:
    if isinstance(node, node_type):
        name = getattr(node.cls, "__qualname__", repr(node.cls))
        there = ", ".join(_names(node)) or "no arguments"
        return ConfigError(f"cannot set {path!r}: {_where(done)} ({name}) has no {part!r}; it has: {there}")
    there = ", ".join(repr(k) for k in node) or "no keys"
    return ConfigError(f"cannot set {path!r}: {_where(done)} (a dict) has no key {part!r}; it has: {there}")
