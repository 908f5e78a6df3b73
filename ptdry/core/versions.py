"""Versions of Python and of the libraries that shape a stored object (read once per process)."""

from __future__ import annotations

import functools
import importlib.metadata
import platform

__all__ = ["library_versions"]

_LIBRARIES = (
    "ptdry", "torch", "numpy", "safetensors", "pymongo", "scikit-learn", "pandas", "tensorflow", "tensorflow-cpu", "keras"
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = [("python", platform.python_version())]
    for name in _LIBRARIES:
        try:
            out.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            pass
    return tuple(out)


def library_versions() -> dict[str, str]:
    """``{"python": ..., "torch": ..., ...}`` for the installed libraries (package metadata;
    nothing is imported). A new dict each call; the lookup happens once.

    Example:
        >>> "python" in library_versions()
        True
    """
    return dict(_versions())
