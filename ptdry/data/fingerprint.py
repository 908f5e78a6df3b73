"""Content fingerprints of files and folders, so a stored run knows when its data changed.

A file up to :data:`FULL_HASH_BYTES` is hashed whole (sha256). A larger one is hashed by its
size and :data:`BLOCKS` blocks of :data:`BLOCK_BYTES` spread evenly over it (first and last
included): reading a few megabytes instead of gigabytes, it catches a file replaced,
truncated, appended to or rewritten, though not a change confined to bytes between the
blocks. A folder is hashed by the relative path, size and fingerprint of every file in it, in
sorted order (LMDB's ``lock.mdb``, which readers rewrite, is left out).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ptdry.errors import DataError

__all__ = ["BLOCKS", "BLOCK_BYTES", "FULL_HASH_BYTES", "fingerprint"]

#: Files up to this size are hashed whole.
FULL_HASH_BYTES = 64 * 2**20
#: Larger files: this many blocks ...
BLOCKS = 16
#: ... of this many bytes.
BLOCK_BYTES = 2**20

_IGNORED = frozenset(["lock.mdb"])
_PREFIX = "sha256:"


def fingerprint(path: str | os.PathLike) -> str:
    """``"sha256:<hex>"`` of the file or folder at ``path`` (see the module doc).

    Raises:
        DataError: the path does not exist or cannot be read.
    """
    p = Path(path)
    h = hashlib.sha256()
    try:
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.name not in _IGNORED)
            for f in files:
                h.update(f"{f.relative_to(p).as_posix()}\0{f.stat().st_size}\0".encode())
                _feed_file(h, f)
        elif p.is_file():
            _feed_file(h, p)
        else:
            raise DataError(f"{p}: no such file or folder")
    except OSError as exc:
        raise DataError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    return _PREFIX + h.hexdigest()


def _feed_file(h: "hashlib._Hash", path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size <= FULL_HASH_BYTES:
            for chunk in iter(lambda: f.read(2**20), b""):
                h.update(chunk)
            return
        h.update(f"sampled:{size}:{BLOCKS}x{BLOCK_BYTES}".encode())
        for i in range(BLOCKS):
            f.seek((size - BLOCK_BYTES) * i // (BLOCKS - 1))
            h.update(f.read(BLOCK_BYTES))
