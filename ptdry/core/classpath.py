"""Name classes and callables as ``"pkg.module:QualName"`` strings, and import them back.

Definitions store classes by path so that a tree can be rebuilt in another process.
"""

from __future__ import annotations

import importlib
from typing import Any

from ptdry.errors import ConfigError, SerializationError

__all__ = ["class_path", "import_path", "is_importable"]


def class_path(obj: Any) -> str:
    """Return ``"module:QualName"`` for a class or function defined at module level."""
    module = getattr(obj, "__module__", None)
    if module is None:  # methods of built-in types, e.g. str.lower
        module = getattr(getattr(obj, "__objclass__", None), "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname:
        raise SerializationError(f"{obj!r} has no importable name (module and qualname needed)")
    path = f"{module}:{qualname}"
    name = getattr(obj, "__name__", None)
    if not isinstance(obj, type) and name and qualname != name and "<" not in qualname:
        # Some built-in functions report a private class in __qualname__ (torch.relu is
        # "_VariableFunctionsClass.relu"); use the public name when only that one resolves.
        public = f"{module}:{name}"
        if not _resolves(path, obj) and _resolves(public, obj):
            return public
    return path


def _resolves(path: str, obj: Any) -> bool:
    try:
        return import_path(path) is obj
    except ConfigError:
        return False


def is_importable(obj: Any) -> bool:
    """True when ``import_path(class_path(obj)) is obj``: lambdas and local classes are not."""
    try:
        return import_path(class_path(obj)) is obj
    except (ConfigError, SerializationError):
        return False


def import_path(path: str) -> Any:
    """Import the object named by ``"module:QualName"`` (a dotted ``"module.Name"`` also works)."""
    if not isinstance(path, str):
        raise ConfigError(f"class path must be a string like 'pkg.module:Name'; received {path!r}")
    if ":" in path:
        module_name, _, qualname = path.partition(":")
    else:
        module_name, _, qualname = path.rpartition(".")
    if not module_name or not qualname:
        raise ConfigError(f"class path {path!r} is not of the form 'pkg.module:QualName'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for {path!r}: {exc}") from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"module {module_name!r} has no attribute {qualname!r} (from class path {path!r})"
            ) from None
    return obj
