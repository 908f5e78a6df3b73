"""Provenance: which libraries, host and git commit produced a stored object."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import socket
import subprocess
from typing import Any

__all__ = ["library_versions", "provenance"]

_LIBRARIES = ("ptdry", "torch", "numpy", "pymongo", "safetensors", "scikit-learn", "pandas", "tensorflow")


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions (read from package metadata; nothing is imported)."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def _git_commit() -> dict[str, Any] | None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


@functools.lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """``{"library_versions", "host", "git"}`` of this process (computed once)."""
    return {"library_versions": library_versions(), "host": socket.gethostname(), "git": _git_commit()}
