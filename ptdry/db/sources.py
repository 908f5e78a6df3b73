"""The user's own source files behind a stored run: captured content-addressed, written back
to rerun it.

Captured: the files of the modules whose classes and functions a run's definition names,
the script being run (``__main__``), and the other imported modules under the same
directories — never the standard library, installed packages or ptdry itself. Each file is
stored once in the artifact store, whatever number of runs use it (content-addressed by
sha256); the run document lists ``sources`` (module, file, original path, sha256) and holds
their artifact records (named ``source/<file>``).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import sys
import sysconfig
from typing import Any, Callable, Iterable, Mapping

__all__ = ["MAX_FILE_BYTES", "MAX_FILES", "SOURCE_PREFIX", "capture_sources", "definition_names", "write_sources"]

SOURCE_PREFIX = "source/"
#: At most this many files, each at most this large, are captured per run.
MAX_FILES = 200
MAX_FILE_BYTES = 2 * 1024 * 1024

_MARKERS = ("__callable__",)


def definition_names(definition: Any) -> set[str]:
    """The ``"module:QualName"`` names a definition dict (``ObjectDef.to_dict()``) refers to."""
    out: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "cls" and isinstance(value, str):
                    out.add(value)
                elif key in _MARKERS and isinstance(value, str):
                    out.add(value)
                elif key == "__enum__" and isinstance(value, list) and value and isinstance(value[0], str):
                    out.add(value[0])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(definition)
    return out


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # ptdry itself
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs if d)


def _is_user_file(path: str, library: tuple[str, ...]) -> bool:
    real = os.path.realpath(path)
    parts = pathlib.PurePath(real).parts
    return (
        real.endswith(".py")
        and "site-packages" not in parts
        and "dist-packages" not in parts
        and not real.startswith(library)
        and os.path.isfile(real)
    )


def _relative(module: str, path: str) -> str:
    """Where a module's file goes so that ``import module`` finds it: ``pkg/sub/mod.py``."""
    if module == "__main__":
        return os.path.basename(path)
    base = module.replace(".", "/")
    return f"{base}/__init__.py" if os.path.basename(path) == "__init__.py" else f"{base}.py"


def _root(rel: str, path: str) -> str:
    """The directory that, on ``sys.path``, imports ``path`` as ``rel``."""
    suffix = os.sep + rel.replace("/", os.sep)
    return path[: -len(suffix)] if path.endswith(suffix) else os.path.dirname(path)


def _user_modules(names: Iterable[str]) -> list[tuple[str, str]]:
    """``(module, file)`` of the named modules, ``__main__`` and the imported modules under
    their directories, that are user files."""
    library = _library_dirs()
    named = {n.partition(":")[0] for n in names} | {"__main__"}
    found: dict[str, str] = {}
    for module in sorted(named):
        path = getattr(sys.modules.get(module), "__file__", None)
        if path and _is_user_file(path, library):
            found[module] = path
    roots = set()
    for module, path in found.items():
        rel = _relative(module, path)
        for form in (os.path.realpath(path), os.path.abspath(path)):  # as imported, and resolved
            roots.add(os.path.join(_root(rel, form), ""))
    prefixes = tuple(roots)
    for module, obj in list(sys.modules.items()):
        if len(found) >= MAX_FILES:
            break
        path = getattr(obj, "__file__", None)
        if module in found or not isinstance(path, str) or module.startswith("__"):
            continue
        if path.startswith(prefixes) and _is_user_file(path, library):  # a string test first: thousands of modules
            if module.replace(".", "").isidentifier():
                found[module] = path
    return sorted(found.items())[:MAX_FILES]


def capture_sources(definition: Any, store: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Store the user's source files behind ``definition`` (a definition dict) in ``store``
    (an :class:`~ptdry.db.artifacts.ArtifactStore`); returns ``(sources, artifact records)``.
    Files larger than :data:`MAX_FILE_BYTES` are listed without content (``"skipped"``)."""
    sources, records = [], []
    for module, path in _user_modules(definition_names(definition)):
        rel = _relative(module, path)
        entry = {"module": module, "file": rel, "path": os.path.abspath(path)}
        try:
            if os.stat(path).st_size > MAX_FILE_BYTES:
                sources.append({**entry, "skipped": f"larger than {MAX_FILE_BYTES} bytes"})
                continue
            data = pathlib.Path(path).read_bytes()
        except OSError:
            continue  # a file removed since it was imported: nothing to store
        record = store.put(data, name=SOURCE_PREFIX + rel, format="source")  # stored once per content
        sources.append({**entry, "sha256": record["sha256"], "bytes": record["bytes"]})
        records.append(record)
    return sources, records


def file_sha256(path: str) -> str | None:
    """The sha256 of a file's bytes, or None when it cannot be read."""
    try:
        return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def write_sources(sources: list[dict[str, Any]], fetch: Callable[[str], bytes], directory: str | os.PathLike) -> dict[str, str]:
    """Write stored sources into ``directory``, laid out by module name (so the directory on
    ``sys.path`` imports them); ``fetch(file)`` returns the bytes of ``source/<file>``.
    Returns ``{module: written path}``; the script (``__main__``) goes to ``__main__/``."""
    root = pathlib.Path(directory)
    written = {}
    for entry in sources:
        if "sha256" not in entry:
            continue
        target = root / ("__main__" if entry["module"] == "__main__" else "") / entry["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fetch(entry["file"]))
        written[entry["module"]] = str(target)
    return written
