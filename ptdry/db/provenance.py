"""Provenance: which libraries, host, command line and git state produced a stored object.

Every stored document records ``library_versions``, ``host`` and ``git`` (commit, branch,
dirty flag). A stored *root* object (a run) records more, once: the ``command`` line that
started the process, ``torch_threads`` (CPU results depend on it), and, when the working tree
is dirty, the ``git.diff`` against the commit — capped at :data:`DIFF_LIMIT` bytes, with
``git.diff_truncated`` saying so. Git is asked in the directory of the script being run
(else the working directory); without git or outside a repository ``git`` is None.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from typing import Any

from ptdry.core.versions import library_versions
from ptdry.db.uri import mask_uris_in

__all__ = ["DIFF_LIMIT", "GIT_TTL", "git_state", "library_versions", "provenance", "run_provenance"]

#: The largest diff stored with a run (bytes of UTF-8 text).
DIFF_LIMIT = 256 * 1024


def _git(args: list[str], cwd: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def _script_dir() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) if path else os.getcwd()


#: Seconds a git state is reused: storing many objects in a row asks git once, while a
#: process that runs again after the code was edited (a notebook, a sweep) sees the edit.
GIT_TTL = 2.0
_GIT_CACHE: dict[str, tuple[float, dict[str, Any] | None]] = {}


def git_state(cwd: str | None = None) -> dict[str, Any] | None:
    """``{"commit", "branch", "dirty", "root", "diff", "diff_truncated"}`` of the repository
    holding ``cwd`` (default: the running script's directory), or None without one.
    ``branch`` is None on a detached HEAD; ``diff`` (``git diff HEAD``) only when dirty.
    A new dict each call."""
    cwd = cwd or _script_dir()
    now = time.monotonic()
    cached = _GIT_CACHE.get(cwd)
    if cached is None or now - cached[0] > GIT_TTL:
        cached = _GIT_CACHE[cwd] = (now, _read_git(cwd))
    return None if cached[1] is None else dict(cached[1])


def _read_git(cwd: str) -> dict[str, Any] | None:
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None
    branch = (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip()
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    state: dict[str, Any] = {
        "commit": commit.strip(),
        "branch": None if branch in ("", "HEAD") else branch,
        "dirty": bool(status.strip()),
        "root": (_git(["rev-parse", "--show-toplevel"], cwd) or "").strip() or None,
    }
    if state["dirty"]:
        diff = (_git(["diff", "HEAD"], cwd) or "").encode("utf-8")
        state["diff_truncated"] = len(diff) > DIFF_LIMIT
        state["diff"] = mask_uris_in(diff[:DIFF_LIMIT].decode("utf-8", "ignore"))
    return state


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")  # never imported for this: only a process using torch has threads to record
    get = getattr(torch, "get_num_threads", None)
    return int(get()) if callable(get) else None


@functools.lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def provenance() -> dict[str, Any]:
    """``{"library_versions", "host", "git"}`` of this process, for every stored document
    (``git`` without the diff)."""
    git = git_state()
    light = None if git is None else {k: git[k] for k in ("commit", "branch", "dirty")}
    return {"library_versions": library_versions(), "host": _host(), "git": light}


def run_provenance() -> dict[str, Any]:
    """What a stored root object records besides :func:`provenance`: the command line, the
    torch thread count and the git state with its diff."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    return {
        "command": {
            "argv": [mask_uris_in(a) for a in sys.argv],  # no passwords of --db URIs
            "executable": sys.executable,
            "cwd": os.getcwd(),
            "script": os.path.abspath(script) if script else None,
        },
        "torch_threads": _torch_threads(),
        "git": git_state(),
    }
