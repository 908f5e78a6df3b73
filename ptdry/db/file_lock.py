"""An exclusive lock between processes on one machine: ``flock`` on a lock file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Callable, Iterator

__all__ = ["file_lock"]


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike, timeout: float, error: Callable[[str], Exception] = TimeoutError
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    The operating system releases the lock when the process dies, so a crash never leaves
    it held.

    Raises:
        ``error(message)`` (default :class:`TimeoutError`): another process held the lock for
            more than ``timeout`` seconds.
    """
    with open(path, "a+") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise error(f"another process holds {path} for more than {timeout:g} s") from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
