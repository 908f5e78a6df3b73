"""Provenance: which libraries, host and git commit produced a stored object."""

from __future__ import annotations

import functools
import socket
import subprocess
from typing import Any

from ptdry.core.versions import library_versions

__all__ = ["library_versions", "provenance"]


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
