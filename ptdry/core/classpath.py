"""Name classes and callables as ``"pkg.module:QualName"`` strings, and import them back.

Definitions store classes by path so that a tree can be rebuilt in another process.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from ptdry.errors import ConfigError, SerializationError

__all__ = ["class_path", "import_path", "is_importable", "main_hint", "main_names", "warn_main_classes"]

log = logging.getLogger(__name__)
_WARNED: set[str] = set()


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
                f"module {module_name!r} has no attribute {qualname!r} (from class path {path!r})" + main_hint(path)
            ) from None
    return obj


def main_hint(path: str) -> str:
    """For a ``"__main__:Name"`` path that does not resolve: why, and what to do."""
    if not path.startswith("__main__:"):
        return ""
    name = path.partition(":")[2]
    return (
        f". {name} was defined in the script that stored this object (its __main__), so other "
        f"scripts cannot load it. Move {name} into a module you import (e.g. `from my_models import "
        f"{name}`) and store the object again. To load this one: in the script that stored it, call "
        f"ptdry.allow({name}) first; elsewhere, import {name}, set `__main__.{name} = {name}` and "
        f"load with trusted=True"
    )


def main_names(data: Any) -> list[str]:
    """The ``"__main__:..."`` class paths anywhere in stored data (a definition's dict)."""
    found: dict[str, None] = {}
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, str) and value.startswith("__main__:"):
            found[value] = None
    return sorted(found)


def warn_main_classes(data: Any, what: str) -> None:
    """Log a warning (once per class per process) when stored data names classes of the
    running script: other scripts cannot load them."""
    names = [n for n in main_names(data) if n not in _WARNED]
    if not names:
        return
    _WARNED.update(names)
    short = ", ".join(n.partition(":")[2] for n in names)
    log.warning(
        "%s is stored with %s defined in the running script (as %s), which only this script can "
        "load: Session.load, `ptdry` and other scripts cannot rebuild it. Move %s into a module "
        "you import (e.g. my_models.py, then `from my_models import ...`).",
        what, short, ", ".join(repr(n) for n in names), short,
    )  # fmt: skip
